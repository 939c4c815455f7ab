//! Sync types as the engine sees them: what can be requested, how urgent it is, whether it takes
//! the global mutex, how long it may run, how it retries, and the task that does the work.
//!
//! Which tasks exist and how a `[sync_types.<name>]` table becomes one is the catalog's business
//! (`server::catalog`); the engine only runs [`SyncTask`]s.

use std::{sync::Arc, time::Duration};

use super::task::SyncTask;
use crate::server::lifecycle::retry::RetryPolicy;

/// How long an attempt may run unless its type says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How many finished jobs of a type are kept unless its type says otherwise.
pub const DEFAULT_KEEP: u32 = 100;

/// A sync type the engine can run.
#[derive(Clone)]
pub struct SyncType {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// Higher runs first.
    pub priority: i64,
    /// Takes the global mutex.
    pub exclusive: bool,
    /// May be requested.
    pub enabled: bool,
    /// Longest attempt.
    pub timeout: Duration,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Finished jobs kept.
    pub keep: u32,
    /// Needs input pushed with the job (so it is left out of a full sync).
    pub takes_records: bool,
    /// Part of a full sync (`POST /api/sync/full`): pulls, commands and the built-in simulated
    /// tasks; not pushed types, exports, calls to worker endpoints or validation, which run as
    /// workflow steps or when asked.
    pub in_full: bool,
    /// The work.
    pub task: Arc<dyn SyncTask>,
}

impl std::fmt::Debug for SyncType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncType")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("exclusive", &self.exclusive)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl SyncType {
    /// A type running `task`, with the default timeout, retry policy and history.
    pub fn new(name: &str, priority: i64, exclusive: bool, task: Arc<dyn SyncTask>) -> Self {
        Self {
            name: name.to_string(),
            priority,
            exclusive,
            enabled: true,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            keep: DEFAULT_KEEP,
            takes_records: false,
            in_full: true,
            task,
        }
    }
}

/// Whether `name` can name a sync type (it appears in URLs and config keys).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name != "full"
        && name != "status"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_safe_and_full_is_reserved() {
        assert!(valid_name("orders") && valid_name("hr-employees_2"));
        for bad in ["", "full", "status", "a b", "x/y", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}

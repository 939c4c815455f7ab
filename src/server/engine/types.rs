//! Sync types: what can be requested, how urgent it is, whether it takes the global mutex, how long
//! it may run, how it retries, and which task does the work.
//!
//! The built-in defaults are seed 001's six, all exclusive, plus `records` (non-exclusive: it takes
//! records pushed with `POST /api/jobs`). `[sync_types.<name>]` tables in `baton.toml` change them
//! or add more; tests define their own with [`Engine::define`](super::Engine::define).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    retry::RetryPolicy,
    task::{NoopTask, RecordsTask, SyncTask, WaitTask},
};

/// One sync type as written in `baton.toml`; every key but `priority` has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTypeConfig {
    /// Higher runs first.
    pub priority: i64,
    /// Takes the one global mutex: no other exclusive job runs at the same time.
    #[serde(default = "yes")]
    pub exclusive: bool,
    /// Whether it may be requested.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An attempt that runs longer fails (retryably) with a timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts and backoff.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Finished jobs kept in the history; older ones are pruned in the background.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// What a job of this type does; a built-in type left without one keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskConfig>,
}

/// Which task a sync type runs. The connectors (HTTP pull, HTTP call, command, export) join this
/// list; until then the six built-in types run `wait`, which works through steps over a duration,
/// reports progress, saves a checkpoint and honours cancellation like a real sync does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskConfig {
    /// Does nothing and succeeds (benchmarks measure the engine with it).
    Noop,
    /// Works through `steps` steps spread over `duration`, checkpointing after each.
    Wait {
        #[serde(with = "humantime_serde")]
        duration: Duration,
        steps: u32,
    },
    /// Upserts the records pushed with the job into the `records` table by their `id`.
    Records,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_keep() -> u32 {
    100
}

/// The built-in types: seed 001's six (exclusive, priorities 6 to 1) and `records`.
pub fn default_sync_types() -> BTreeMap<String, SyncTypeConfig> {
    let simulated = |priority: i64| SyncTypeConfig {
        priority,
        exclusive: true,
        enabled: true,
        timeout: default_timeout(),
        retry: RetryPolicy::default(),
        keep: default_keep(),
        task: Some(TaskConfig::Wait {
            duration: Duration::from_secs(3),
            steps: 30,
        }),
    };
    let mut types = BTreeMap::new();
    for (name, priority) in [
        ("orders", 6),
        ("customers", 5),
        ("ddt", 4),
        ("invoices", 3),
        ("prices", 2),
        ("products", 1),
    ] {
        types.insert(name.to_string(), simulated(priority));
    }
    types.insert(
        "records".to_string(),
        SyncTypeConfig {
            priority: 0,
            exclusive: false,
            task: Some(TaskConfig::Records),
            ..simulated(0)
        },
    );
    types
}

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
    /// A type from its configuration (a built-in type without a task keeps its own; a new type
    /// without one, which validation refuses, does nothing).
    pub fn from_config(name: &str, config: &SyncTypeConfig) -> Self {
        let task = config.task.clone().or_else(|| {
            default_sync_types()
                .remove(name)
                .and_then(|built_in| built_in.task)
        });
        let (task, takes_records): (Arc<dyn SyncTask>, bool) =
            match task.unwrap_or(TaskConfig::Noop) {
                TaskConfig::Noop => (Arc::new(NoopTask), false),
                TaskConfig::Wait { duration, steps } => (
                    Arc::new(WaitTask {
                        duration,
                        steps: steps.max(1),
                    }),
                    false,
                ),
                TaskConfig::Records => (Arc::new(RecordsTask::default()), true),
            };
        Self {
            name: name.to_string(),
            priority: config.priority,
            exclusive: config.exclusive,
            enabled: config.enabled,
            timeout: config.timeout,
            retry: config.retry,
            keep: config.keep,
            takes_records,
            task,
        }
    }

    /// A type running `task`, with the default timeout, retry policy and history.
    pub fn new(name: &str, priority: i64, exclusive: bool, task: Arc<dyn SyncTask>) -> Self {
        Self {
            name: name.to_string(),
            priority,
            exclusive,
            enabled: true,
            timeout: default_timeout(),
            retry: RetryPolicy::default(),
            keep: default_keep(),
            takes_records: false,
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
    fn the_six_built_in_types_are_exclusive_in_seed_001s_order_and_records_is_shared() {
        let types = default_sync_types();
        let mut by_priority: Vec<_> = types.iter().collect();
        by_priority.sort_by_key(|(_, t)| -t.priority);
        let names: Vec<_> = by_priority.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "orders",
                "customers",
                "ddt",
                "invoices",
                "prices",
                "products",
                "records"
            ]
        );
        assert!(by_priority[..6].iter().all(|(_, t)| t.exclusive));
        assert!(!types["records"].exclusive);
        assert!(SyncType::from_config("records", &types["records"]).takes_records);
    }

    #[test]
    fn a_type_in_toml_needs_only_a_priority() {
        let config: SyncTypeConfig = toml::from_str("priority = 9").unwrap();
        assert!(config.exclusive && config.enabled);
        assert_eq!(config.keep, 100);
        let config: SyncTypeConfig = toml::from_str(
            "priority = 1\nexclusive = false\ntask = { kind = \"wait\", duration = \"2s\", steps = 4 }",
        )
        .unwrap();
        assert_eq!(
            config.task,
            Some(TaskConfig::Wait {
                duration: Duration::from_secs(2),
                steps: 4
            })
        );
        let err = toml::from_str::<SyncTypeConfig>("priority = 1\ntask = { kind = \"teleport\" }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("teleport"), "{err}");
    }

    #[test]
    fn names_are_url_safe_and_full_is_reserved() {
        assert!(valid_name("orders") && valid_name("hr-employees_2"));
        for bad in ["", "full", "status", "a b", "x/y", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}

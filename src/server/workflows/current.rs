//! Rules over a session's rows that every part of the service applies the same way.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::server::store::{JobRow, SessionRow};

/// The session's current run.
pub(super) fn run_of(session: &SessionRow) -> u32 {
    session.run.clamp(0, i64::from(u32::MAX)) as u32
}

/// The jobs a step runs now, of all it started (oldest first): those queued since it (last)
/// began processing, the newest per sync type, by type; a retried step's earlier jobs do not
/// count.
pub(super) fn current_of(
    jobs: Vec<JobRow>,
    since: chrono::DateTime<Utc>,
) -> BTreeMap<String, JobRow> {
    // Oldest first (UUIDv7 order), so the newest of a type is inserted last.
    jobs.into_iter()
        .filter(|j| j.created_at >= since)
        .map(|j| (j.sync_type.clone(), j))
        .collect()
}

pub(super) fn warnings_of(session: &SessionRow) -> Vec<String> {
    serde_json::from_str(&session.warnings).unwrap_or_default()
}

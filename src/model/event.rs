//! Live events: what the server tells every open page as things happen.
//!
//! On the SSE stream each event is `event: <name>`, `id: <id>`, `data: <LiveEvent as JSON>`; the
//! polling fallback returns the same `LiveEvent`s in an [`EventPage`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Job, JobLogLine, JobProgress, QueueCounts, SessionCleared, SessionUpdate, SmartSyncEvent,
    StatusRow,
};

/// One event on the live stream.
///
/// `id` increases by one per event. A process starts counting at its start time in microseconds,
/// so ids also keep increasing across restarts and a client's `Last-Event-ID` from before a restart
/// is recognised as too old to replay (it gets a `resync`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveEvent {
    /// Position in the stream; what `Last-Event-ID` and `?after=` refer to.
    pub id: u64,
    /// When the server published it.
    pub at: DateTime<Utc>,
    /// What happened, tagged as `{"event": name, "data": {...}}`.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Everything the live stream can carry. Later subsystems add their variants here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "event", content = "data", rename_all = "kebab-case")]
pub enum EventKind {
    /// The server is alive; sent on a fixed interval with the state of its database.
    Heartbeat(Heartbeat),
    /// A worker claimed a job and its task starts.
    SyncStarted(Job),
    /// A job finished successfully.
    SyncCompleted(Job),
    /// An attempt failed: the job is `failed`, or `pending` again with a later `run_at` (a retry).
    SyncError(Job),
    /// A job ended cancelled.
    SyncCancelled(Job),
    /// A running job reported progress (every report, as it happens).
    JobProgress(JobProgress),
    /// The number of waiting or running jobs changed.
    QueueUpdated(QueueCounts),
    /// A running job wrote a log line.
    JobLog(JobLogLine),
    /// A workflow step wrote a row of the status table.
    StepStatus(StatusRow),
    /// A session was reset for a fresh run.
    SessionCleared(SessionCleared),
    /// A session's state changed (it waits, runs again, ended, …), or it started a new run.
    SessionUpdated(SessionUpdate),
    /// An order form opened in a tab: its lease began (the first holds the queue and refreshes
    /// the customers).
    SmartSyncStarted(SmartSyncEvent),
    /// A tab's lease ended: it closed, or vanished (no heartbeat for the grace).
    SmartSyncEnded(SmartSyncEvent),
    /// A tab's lease reached its hard expiry (`smart_sync_timeout`).
    SmartSyncTimeout(SmartSyncEvent),
    /// A schedule was changed (timing, on or off) or fired: what it looks like now.
    ScheduleUpdated(super::ScheduleView),
    /// A sync type turned late (its schedule's run was missed or did not succeed) or stale.
    SyncLate(super::FreshnessChange),
}

impl EventKind {
    /// The SSE `event:` names, one per variant, for clients that must subscribe by name.
    pub const NAMES: &'static [&'static str] = &[
        "heartbeat",
        "sync-started",
        "sync-completed",
        "sync-error",
        "sync-cancelled",
        "job-progress",
        "queue-updated",
        "job-log",
        "step-status",
        "session-cleared",
        "session-updated",
        "smart-sync-started",
        "smart-sync-ended",
        "smart-sync-timeout",
        "schedule-updated",
        "sync-late",
    ];

    /// This event's SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Heartbeat(_) => "heartbeat",
            EventKind::SyncStarted(_) => "sync-started",
            EventKind::SyncCompleted(_) => "sync-completed",
            EventKind::SyncError(_) => "sync-error",
            EventKind::SyncCancelled(_) => "sync-cancelled",
            EventKind::JobProgress(_) => "job-progress",
            EventKind::QueueUpdated(_) => "queue-updated",
            EventKind::JobLog(_) => "job-log",
            EventKind::StepStatus(_) => "step-status",
            EventKind::SessionCleared(_) => "session-cleared",
            EventKind::SessionUpdated(_) => "session-updated",
            EventKind::SmartSyncStarted(_) => "smart-sync-started",
            EventKind::SmartSyncEnded(_) => "smart-sync-ended",
            EventKind::SmartSyncTimeout(_) => "smart-sync-timeout",
            EventKind::ScheduleUpdated(_) => "schedule-updated",
            EventKind::SyncLate(_) => "sync-late",
        }
    }
}

/// The periodic sign of life of one server process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// The process that sent it (a row of the `instances` table).
    pub instance_id: String,
    /// When that process started.
    pub started_at: DateTime<Utc>,
    /// Whether the process could reach and write its database for this beat.
    pub database: DatabaseHealth,
}

/// Whether the database answered the last check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DatabaseHealth {
    /// It answered.
    Ok,
    /// It did not answer in time, or refused the write.
    Unavailable,
}

/// What the polling fallback returns for `GET /api/events/poll?after=<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// The events after `after`, oldest first.
    pub events: Vec<LiveEvent>,
    /// The newest id the server has issued. Poll next with the last event's id, or with this
    /// when `events` is empty (a page holds at most a bounded number of events).
    pub last_id: u64,
    /// True when the events after `after` are no longer all held: reload state instead.
    pub resync: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_event_serialises_with_its_name_and_payload_side_by_side() {
        let event = LiveEvent {
            id: 7,
            at: DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
                .unwrap()
                .into(),
            kind: EventKind::Heartbeat(Heartbeat {
                instance_id: "i-1".into(),
                started_at: DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z")
                    .unwrap()
                    .into(),
                database: DatabaseHealth::Ok,
            }),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["event"], "heartbeat");
        assert_eq!(json["data"]["database"], "ok");
        assert_eq!(json["data"]["instance_id"], "i-1");
        let back: LiveEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn every_variant_name_is_listed_for_subscribers() {
        let heartbeat = EventKind::Heartbeat(Heartbeat {
            instance_id: String::new(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            database: DatabaseHealth::Ok,
        });
        assert!(EventKind::NAMES.contains(&heartbeat.name()));
        let queue = EventKind::QueueUpdated(QueueCounts {
            pending: 1,
            running: 0,
        });
        // The serde tag and the SSE name are the same string.
        let json = serde_json::to_value(&queue).unwrap();
        assert_eq!(json["event"], queue.name());
        assert!(EventKind::NAMES.contains(&queue.name()));
    }
}

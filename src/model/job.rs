//! The job states and trigger sources, as the API and the UI see them.

use serde::{Deserialize, Serialize};

/// Where a job is in its life. `Pending → Running → Completed | Failed | Cancelled`; a running job
/// may also go back to `Pending` (a retryable error, a preemption, or a rescue after its process
/// died). The last three are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Queued; runs when claimed at or after its run-at time.
    Pending,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error that is fatal or came on the last attempt.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// True for the states a job never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// The lowercase name used in the database and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Who or what asked for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSource {
    /// A person, from the dashboard.
    Manual,
    /// A schedule (interval or cron).
    Scheduler,
    /// A client of the HTTP API.
    Api,
    /// An inbound webhook.
    Webhook,
    /// Smart customer sync, when the order form opens.
    Smart,
}

//! The job states and trigger sources, as the API and the UI see them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a job is in its life. `Pending → Running → Completed | Failed | Cancelled`; a running job
/// may also go back to `Pending` (a retryable error, a preemption, or a rescue after its process
/// died). The last three are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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

impl JobState {
    /// The state named `name` (as in [`JobState::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl JobSource {
    /// Every source.
    pub const ALL: [JobSource; 5] = [
        JobSource::Manual,
        JobSource::Scheduler,
        JobSource::Api,
        JobSource::Webhook,
        JobSource::Smart,
    ];

    /// The lowercase name used in the database and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JobSource::Manual => "manual",
            JobSource::Scheduler => "scheduler",
            JobSource::Api => "api",
            JobSource::Webhook => "webhook",
            JobSource::Smart => "smart",
        }
    }

    /// The source named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A job as the API and the UI see it: every field of its row except the task's input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Job {
    /// UUID v7.
    pub id: String,
    /// The sync type it runs.
    pub sync_type: String,
    /// Higher runs first.
    pub priority: i64,
    /// Whether it takes the global mutex.
    pub exclusive: bool,
    /// Where it is in its life.
    pub state: JobState,
    /// 0–100.
    pub progress: u8,
    /// Items done so far.
    pub processed: u64,
    /// Items in all, when the task knows.
    pub total: Option<u64>,
    /// What the task is doing (its last step message).
    pub message: Option<String>,
    /// The last error (kept across retries until a success).
    pub error: Option<String>,
    /// What the task returned on success.
    pub result: Option<serde_json::Value>,
    /// Things that went wrong without failing the job.
    pub warnings: Vec<String>,
    /// Attempts started.
    pub attempt: u32,
    /// Attempts whose worker died, hung or lost the database (they do not count against
    /// `max_attempts`).
    #[serde(default)]
    pub rescues: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not started before this time.
    pub run_at: DateTime<Utc>,
    /// Who or what asked for it.
    pub source: JobSource,
    /// The person or client that asked, if known.
    pub triggered_by: Option<String>,
    /// What the client said about the run when it asked (the text it sent as `triggered_by`;
    /// who asked is always `triggered_by`).
    #[serde(default)]
    pub note: Option<String>,
    /// The workflow session it belongs to.
    pub session_id: Option<String>,
    /// The job this one retries.
    pub retry_of: Option<String>,
    /// What the task saved to resume from.
    pub checkpoint: Option<serde_json::Value>,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When the current or last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last sign of life of its worker.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The process running it.
    pub lease_owner: Option<String>,
    /// When that process's claim runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When someone asked to cancel it.
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

/// A progress report of a running job, as the live stream carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobProgress {
    /// The job.
    pub job_id: String,
    /// Its sync type.
    pub sync_type: String,
    /// 0–100.
    pub progress: u8,
    /// Items done.
    pub processed: u64,
    /// Items in all, when known.
    pub total: Option<u64>,
    /// The step message.
    pub message: Option<String>,
}

/// How many jobs wait and run, sent when the queue changes (at most every 100 ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct QueueCounts {
    /// Jobs waiting to be claimed.
    pub pending: u64,
    /// Jobs running, in every process.
    pub running: u64,
}

/// A sync type's state as the status view shows it (seed 003's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Nothing runs and it never ran, or its last run was cancelled.
    Idle,
    /// A job of it runs now.
    Running,
    /// Its last finished job succeeded.
    Success,
    /// Its last finished job failed.
    Error,
}

/// One sync type in the status view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TypeStatus {
    /// Its name.
    pub name: String,
    /// Higher runs first.
    pub priority: i64,
    /// Whether it takes the global mutex.
    pub exclusive: bool,
    /// Whether it may be requested.
    pub enabled: bool,
    /// Its jobs carry pushed records (`POST /api/jobs`), so it cannot be run without them.
    pub takes_records: bool,
    /// Now.
    pub state: SyncState,
    /// Start of its last run.
    pub last_run: Option<DateTime<Utc>>,
    /// End of its last successful run.
    pub last_success: Option<DateTime<Utc>>,
    /// When a schedule runs it next (schedules come later; empty until then).
    pub next_run: Option<DateTime<Utc>>,
    /// The error of its last failed run, if that was its last finished run.
    pub last_error: Option<String>,
    /// Failed runs since the last success.
    pub consecutive_errors: u64,
    /// Items processed by the running job, or by the last finished one.
    pub processed: Option<u64>,
    /// Items in all, likewise.
    pub total: Option<u64>,
    /// How long its last finished run took, in milliseconds.
    pub last_duration_ms: Option<u64>,
    /// The id of its running job.
    pub running_job: Option<String>,
    /// The id of its waiting job.
    pub pending_job: Option<String>,
    /// Whether its data is as fresh as its schedule promises.
    #[serde(default)]
    pub freshness: Freshness,
    /// Why it is late or stale, in words.
    #[serde(default)]
    pub freshness_note: Option<String>,
}

/// How fresh a sync type's data is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Nothing to judge by: no schedule and no success yet.
    #[default]
    Unknown,
    /// Its last success is as recent as its schedule (or the stale age) asks.
    Fresh,
    /// Its schedule's last run was missed, or no run succeeded since the one before it.
    Late,
    /// Its last success is older than `stale_after`.
    Stale,
}

impl Freshness {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Unknown => "unknown",
            Freshness::Fresh => "fresh",
            Freshness::Late => "late",
            Freshness::Stale => "stale",
        }
    }
}

/// A sync type turned late or stale (`sync-late`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FreshnessChange {
    /// The type.
    pub sync_type: String,
    /// How fresh it is now.
    pub freshness: Freshness,
    /// Why, in words.
    pub note: Option<String>,
    /// Its last success.
    pub last_success: Option<DateTime<Utc>>,
}

/// `GET /api/sync/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SyncStatus {
    /// The running exclusive job (the holder of the global mutex), if any.
    pub current: Option<Job>,
    /// The pending jobs in claim order (at most 100).
    pub queue: Vec<Job>,
    /// Every sync type by name.
    pub types: std::collections::BTreeMap<String, TypeStatus>,
    /// Open order forms and the hold they put on the queue.
    #[serde(default)]
    pub smart_sync: super::SmartSyncStatus,
}

/// What a bulk action does to each selected job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Cancel it (a pending one at once, a running one when its task stops).
    Cancel,
    /// Run a failed or cancelled one again, as a new job.
    Retry,
}

/// What a bulk action did to one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BulkOutcome {
    /// The job asked about.
    pub id: String,
    /// Whether the action was taken.
    pub ok: bool,
    /// The job it made (a retry), if any.
    pub job_id: Option<String>,
    /// Why not, in words.
    pub error: Option<String>,
}

//! Workflow sessions and the status table: what each step of a session says about itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a step is, as it writes it (seed 000's four states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started, or waiting for a person (a gate).
    Waiting,
    /// Its jobs run.
    Processing,
    /// Done.
    Completed,
    /// Done badly.
    Failed,
}

impl StepStatus {
    /// Every status.
    pub const ALL: [StepStatus; 4] = [
        StepStatus::Waiting,
        StepStatus::Processing,
        StepStatus::Completed,
        StepStatus::Failed,
    ];

    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Waiting => "waiting",
            StepStatus::Processing => "processing",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Where a session is. It moves only as `server::lifecycle::session::apply` says: a new session
/// runs; a gate makes it wait and a press makes it run; its last step ends it completed (with
/// warnings, when steps allowed to fail did, or jobs noted some), a failing step ends it failed
/// (until the step is retried); a person may cancel it, or start it over from any state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// A step runs its jobs.
    Running,
    /// A step waits for a person to press its gate's button.
    Waiting,
    /// Every step ended well.
    Completed,
    /// Every step ended, some with failures they were allowed, or with warnings.
    CompletedWithWarnings,
    /// A step failed (it can be retried, or the session started over).
    Failed,
    /// A person stopped it.
    Cancelled,
}

impl SessionState {
    /// Every state.
    pub const ALL: [SessionState; 6] = [
        SessionState::Running,
        SessionState::Waiting,
        SessionState::Completed,
        SessionState::CompletedWithWarnings,
        SessionState::Failed,
        SessionState::Cancelled,
    ];

    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Running => "running",
            SessionState::Waiting => "waiting",
            SessionState::Completed => "completed",
            SessionState::CompletedWithWarnings => "completed_with_warnings",
            SessionState::Failed => "failed",
            SessionState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Running or waiting: its workflow has this one session open.
    pub fn is_open(self) -> bool {
        matches!(self, SessionState::Running | SessionState::Waiting)
    }
}

/// A session's state or run changed (`session-updated` events carry it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionUpdate {
    /// The session.
    pub session_id: String,
    /// Its workflow.
    pub workflow: String,
    /// Its current run.
    pub run: u32,
    /// Where it is now.
    pub state: SessionState,
    /// Its warnings so far.
    pub warnings: Vec<String>,
    /// When its current run started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it has.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One row of the status table: a step said this, at this time (`step-status` events carry it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatusRow {
    /// Increasing across all sessions.
    pub id: i64,
    /// The session.
    pub session_id: String,
    /// Which run of the session (a clear starts the next).
    pub run: u32,
    /// The step's number, from 1.
    pub step: u32,
    /// The step's name.
    pub name: String,
    /// What it says it is doing.
    pub status: StepStatus,
    /// In words.
    pub message: Option<String>,
    /// Counts, findings, errors: whatever the step wants shown.
    pub details: serde_json::Value,
    /// When it said so.
    pub at: DateTime<Utc>,
}

/// A session's status: each step's latest row in the current run, and the whole timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionStatus {
    /// The session.
    pub session_id: String,
    /// The current run.
    pub run: u32,
    /// Per step (in step order), its latest row of the current run.
    pub steps: Vec<StatusRow>,
    /// Every row of every run, oldest first.
    pub timeline: Vec<StatusRow>,
}

/// A session was reset for a fresh run (`session-cleared` events carry it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionCleared {
    /// The session.
    pub session_id: String,
    /// Its new run.
    pub run: u32,
}

/// A session as `GET /api/sessions/{id}` shows it (and the daily-sync page reads it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// The session.
    pub id: String,
    /// Its workflow's id.
    pub workflow: String,
    /// Its workflow's name.
    pub name: String,
    /// Where it is.
    pub state: SessionState,
    /// manual | scheduler | api | webhook.
    pub source: String,
    /// Who started it.
    pub triggered_by: Option<String>,
    /// What the client said about it (the `triggered_by` text it sent).
    #[serde(default)]
    pub note: Option<String>,
    /// The current run (a clear starts the next).
    pub run: u32,
    /// When the current run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// What went wrong without stopping it.
    pub warnings: Vec<String>,
    /// Every step of the workflow, in order; steps not reached yet read `waiting` with no message.
    pub steps: Vec<StepView>,
    /// The newest status rows of every run (at most the page asked for), oldest first.
    pub timeline: Vec<StatusRow>,
    /// Pass as `timeline_before` for the rows before these; absent when there are none.
    pub timeline_before: Option<i64>,
}

/// One step as the session view shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepView {
    /// Its number, from 1.
    pub step: u32,
    /// Its name.
    pub name: String,
    /// Its latest status in the current run.
    pub status: StepStatus,
    /// Its latest message.
    pub message: Option<String>,
    /// Its latest details.
    pub details: serde_json::Value,
    /// The gate's button label while it waits for a person.
    pub action: Option<String>,
    /// Whether the current run has reached it.
    pub reached: bool,
    /// When it last began processing (its gate pressed, or entered without one).
    pub started_at: Option<DateTime<Utc>>,
    /// The jobs it runs now (its latest try), one per sync type, with their stored progress.
    pub jobs: Vec<StepJob>,
}

/// A job of a step, as far as the step's view needs it (live progress follows `job-progress`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepJob {
    /// The job's id.
    pub id: String,
    /// Its sync type.
    pub sync_type: String,
    /// pending | running | completed | failed | cancelled.
    pub state: super::JobState,
    /// Items done, as last stored.
    pub processed: u64,
    /// Items in all, when known.
    pub total: Option<u64>,
}

/// What the page of a workflow reads: the workflow's steps, and its newest session if it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkflowOverview {
    /// The workflow's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its steps' names, in order.
    pub steps: Vec<String>,
    /// Its newest session; `None` before the first.
    pub session: Option<SessionView>,
}

/// One session in a list (the tasks view): what ran, how it went, who started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionLine {
    /// Where it is, with its workflow, run and times.
    pub update: SessionUpdate,
    /// manual | scheduler | api | webhook.
    pub source: String,
    /// Who started it.
    pub triggered_by: Option<String>,
}

//! What connectors leave behind: job log lines and the change sets of pulls.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How serious a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// What the task did (a page pulled, a line a command printed on stdout).
    Info,
    /// Something went wrong without failing the job (a command's stderr, a skipped record).
    Warn,
    /// What failed the attempt.
    Error,
}

impl LogLevel {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// Reads a stored name (anything unknown reads as `info`).
    pub fn parse(name: &str) -> Self {
        match name {
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// One line of a job's log, as stored and as the `job-log` event carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobLogLine {
    /// Its position in the job's log once stored (what `?after=` takes); absent on live events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The job.
    pub job_id: String,
    /// The attempt that wrote it.
    pub attempt: u32,
    /// Its position within one run of the task, from 1.
    pub seq: u32,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// How serious.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// What happened to one record in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Seen for the first time (or again after it was removed).
    Created,
    /// Its data differs from what was stored.
    Updated,
    /// A full pull no longer found it.
    Removed,
}

impl ChangeKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Removed => "removed",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "removed" => Some(ChangeKind::Removed),
            _ => None,
        }
    }
}

/// One entry of a run's change set (`GET /api/changes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EntityChange {
    /// Increasing; page with `?before=`.
    pub id: i64,
    /// The job whose run found it.
    pub job_id: String,
    /// customers, products, … or a configured name.
    pub entity: String,
    /// The record's key.
    pub key: String,
    /// What happened.
    pub change: ChangeKind,
    /// For updates: the top-level fields whose values changed.
    pub fields: Vec<String>,
    /// When the run found it.
    pub at: DateTime<Utc>,
}

/// How many records a connector created, updated, left unchanged and removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChangeCounts {
    /// New records.
    pub created: u64,
    /// Records whose data changed.
    pub updated: u64,
    /// Records seen again as they were.
    pub unchanged: u64,
    /// Records a full pull no longer found.
    pub removed: u64,
}

impl ChangeCounts {
    /// Adds another page's counts.
    pub fn add(&mut self, other: ChangeCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.removed += other.removed;
    }

    /// Records created, updated or removed.
    pub fn changes(&self) -> u64 {
        self.created + self.updated + self.removed
    }
}

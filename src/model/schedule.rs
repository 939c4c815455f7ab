//! Schedules as they cross the wire (and as `baton.toml` writes them): when a sync type, a
//! workflow or the full sync runs by itself, and what happened at each fire time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What to do about fire times that passed while no Baton process was running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnMissed {
    /// Run once for all of them (the latest), then go on as scheduled: never a burst.
    #[default]
    RunOnce,
    /// Record them as missed and wait for the next fire time.
    Skip,
}

impl OnMissed {
    /// Its name in `baton.toml` and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissed::RunOnce => "run_once",
            OnMissed::Skip => "skip",
        }
    }
}

/// When a schedule fires: `every` (an interval such as `30m`) or `cron` (five fields, read in
/// `tz`, the server's own zone when unset), on or off, and what to do about missed runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// An interval: `90s`, `30m`, `6h`, `1d` (at least 1 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// A cron expression: minute hour day-of-month month day-of-week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An IANA time zone (`Europe/Rome`) the cron expression is read in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Whether it fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What a start after downtime does about the fire times it missed.
    #[serde(default)]
    pub on_missed: OnMissed,
}

fn yes() -> bool {
    true
}

impl ScheduleSpec {
    /// Every `interval` (`"30m"`), enabled, missed runs run once.
    pub fn every(interval: &str) -> Self {
        Self {
            every: Some(interval.to_string()),
            cron: None,
            tz: None,
            enabled: true,
            on_missed: OnMissed::RunOnce,
        }
    }

    /// At the times of `expression`, read in `tz`, enabled, missed runs run once.
    pub fn cron(expression: &str, tz: Option<&str>) -> Self {
        Self {
            every: None,
            cron: Some(expression.to_string()),
            tz: tz.map(str::to_string),
            enabled: true,
            on_missed: OnMissed::RunOnce,
        }
    }

    /// The same timing, on or off.
    pub fn enabled(self, enabled: bool) -> Self {
        Self { enabled, ..self }
    }

    /// The timing in words: `every 30m`, `0 12 * * * (Europe/Rome)`.
    pub fn timing(&self) -> String {
        match (&self.every, &self.cron) {
            (Some(every), _) => format!("every {every}"),
            (None, Some(cron)) => match &self.tz {
                Some(tz) => format!("{cron} ({tz})"),
                None => cron.clone(),
            },
            (None, None) => "never".into(),
        }
    }
}

/// What a schedule runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ScheduleTarget {
    /// A job of one sync type.
    Sync(String),
    /// A session of a workflow.
    Workflow(String),
    /// Every type of the full sync (`POST /api/sync/full`).
    Full,
}

impl ScheduleTarget {
    /// In words: `sync customers`, `workflow daily-sync`, `full sync`.
    pub fn label(&self) -> String {
        match self {
            ScheduleTarget::Sync(name) => format!("sync {name}"),
            ScheduleTarget::Workflow(name) => format!("workflow {name}"),
            ScheduleTarget::Full => "full sync".into(),
        }
    }
}

/// What happened at one fire time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FireOutcome {
    /// It queued its job(s) or started its session.
    Fired,
    /// It was due, but its target was busy or could not run (the reason says which).
    Skipped,
    /// No Baton process was running at the time.
    Missed,
}

impl FireOutcome {
    /// Its name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FireOutcome::Fired => "fired",
            FireOutcome::Skipped => "skipped",
            FireOutcome::Missed => "missed",
        }
    }

    /// The outcome a stored name means.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fired" => Some(FireOutcome::Fired),
            "skipped" => Some(FireOutcome::Skipped),
            "missed" => Some(FireOutcome::Missed),
            _ => None,
        }
    }
}

/// One fire time of a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScheduleFire {
    /// The schedule.
    pub schedule: String,
    /// When it was due.
    pub fire_time: DateTime<Utc>,
    /// What happened.
    pub outcome: FireOutcome,
    /// Why it was skipped or missed, in words.
    pub reason: Option<String>,
    /// The jobs it queued.
    pub job_ids: Vec<String>,
    /// The session it started.
    pub session_id: Option<String>,
    /// When it was recorded: `recorded_at − fire_time` is how late it fired.
    pub recorded_at: DateTime<Utc>,
}

/// One schedule as `GET /api/schedules` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScheduleView {
    /// Its name: the sync type's or workflow's, or `full-sync`.
    pub id: String,
    /// What it runs.
    pub target: ScheduleTarget,
    /// The timing in effect.
    pub spec: ScheduleSpec,
    /// What `baton.toml` (or the built-in default) says, when it differs from `spec`.
    pub file: Option<ScheduleSpec>,
    /// Who last changed it from the UI or the API, and when (none: the file's value).
    pub edited_by: Option<String>,
    /// When.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it fires next (none while disabled).
    pub next_run: Option<DateTime<Utc>>,
    /// Its last fire times, newest first (at most 5).
    pub recent: Vec<ScheduleFire>,
}

/// `POST /api/schedules/{id}/preview`: the next fire times of a timing not yet saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SchedulePreview {
    /// The next five fire times from now.
    pub next: Vec<DateTime<Utc>>,
}

/// One finished run of a sync type (`GET /api/sync/{type}/history`, the chart's bars).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunRecord {
    /// The job.
    pub job_id: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it ran, in milliseconds.
    pub duration_ms: Option<u64>,
    /// `completed`, `failed` or `cancelled`.
    pub outcome: super::JobState,
    /// Items processed, and in all when known.
    pub processed: u64,
    /// Items in all.
    pub total: Option<u64>,
    /// Its error, when it failed.
    pub error: Option<String>,
    /// Where the request came from (`scheduler`, `manual`, …).
    pub source: super::JobSource,
}

/// A sync type's runs over a period (seed 004's statistics).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PeriodStats {
    /// The period, in days back from now.
    pub days: u32,
    /// Finished runs in it.
    pub runs: u64,
    /// Runs per day.
    pub per_day: f64,
    /// Completed runs / finished runs (cancelled ones left out), when any finished.
    pub success_rate: Option<f64>,
    /// The median duration of its runs, in milliseconds.
    pub median_ms: Option<u64>,
    /// Records created, updated or removed by its runs.
    pub changed: u64,
}

/// One sync type's statistics over the last 7 and 30 days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TypeStats {
    /// The type.
    pub sync_type: String,
    /// The last 7 days.
    pub week: PeriodStats,
    /// The last 30 days.
    pub month: PeriodStats,
    /// The oldest run still kept (older ones were pruned: `keep` per type), if it is inside
    /// the month: the figures cover only what is kept.
    pub kept_since: Option<DateTime<Utc>>,
}

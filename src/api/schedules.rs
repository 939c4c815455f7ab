//! Server functions of the schedules and the run history (the Syncs page): list, save with a
//! field error for a timing that cannot be used, preview the next five runs, run now, and the
//! last runs of every type. Thin calls into `server::schedules`; roles in `server/http/access/rules.rs`.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::UiError;
use crate::model::{OnMissed, RunRecord, ScheduleSpec, ScheduleView};

/// A timing the page sends: empty texts are absent.
pub fn spec_of(every: &str, cron: &str, tz: &str, enabled: bool, on_missed: &str) -> ScheduleSpec {
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    ScheduleSpec {
        every: some(every),
        cron: some(cron),
        tz: some(tz),
        enabled,
        on_missed: if on_missed == "skip" {
            OnMissed::Skip
        } else {
            OnMissed::RunOnce
        },
    }
}

/// What saving or previewing a timing gave: the result, or the field that cannot be used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Checked<T> {
    /// It was used.
    Ok(T),
    /// `field` (`every`, `cron`, `tz`) cannot be used, and why.
    Refused {
        /// The field.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
}

/// One sync type's last runs, for its chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeHistory {
    /// The type.
    pub sync_type: String,
    /// Its last finished runs, newest first (at most 100).
    pub runs: Vec<RunRecord>,
}

#[cfg(feature = "ssr")]
fn checked<T>(
    result: Result<T, crate::server::schedules::ScheduleError>,
) -> Result<Checked<T>, UiError> {
    use crate::server::{http::error::ApiError, schedules::ScheduleError};
    match result {
        Ok(value) => Ok(Checked::Ok(value)),
        Err(ScheduleError::Invalid(e)) => Ok(Checked::Refused {
            field: e.field.to_string(),
            message: e.message,
        }),
        Err(other) => Err(ApiError::from(other).into()),
    }
}

/// Every schedule.
#[server(prefix = "/api/fn", endpoint = "list_schedules")]
pub async fn list_schedules() -> Result<Vec<ScheduleView>, UiError> {
    let state = super::server::state()?;
    state
        .scheduler
        .list()
        .await
        .map_err(|e| crate::server::http::error::ApiError::from(e).into())
}

/// Puts a timing in effect for schedule `id` (created for a type or workflow without one).
#[server(prefix = "/api/fn", endpoint = "save_schedule")]
pub async fn save_schedule(
    id: String,
    every: String,
    cron: String,
    tz: String,
    enabled: bool,
    on_missed: String,
) -> Result<Checked<ScheduleView>, UiError> {
    let state = super::server::state()?;
    let who = super::server::who().actor().label();
    let spec = spec_of(&every, &cron, &tz, enabled, &on_missed);
    checked(state.scheduler.update(&id, &spec, &who, Utc::now()).await)
}

/// The next five runs of a timing, nothing saved.
#[server(prefix = "/api/fn", endpoint = "preview_schedule")]
pub async fn preview_schedule(
    every: String,
    cron: String,
    tz: String,
) -> Result<Checked<Vec<DateTime<Utc>>>, UiError> {
    let spec = spec_of(&every, &cron, &tz, true, "");
    checked(
        crate::server::schedules::Scheduler::preview(&spec, Utc::now())
            .map_err(crate::server::schedules::ScheduleError::from),
    )
}

/// Runs schedule `id`'s target now, in the caller's name.
#[server(prefix = "/api/fn", endpoint = "run_schedule")]
pub async fn run_schedule(id: String) -> Result<Vec<String>, UiError> {
    let state = super::server::state()?;
    let mut origin = super::server::dashboard();
    origin.note = Some(format!("run now from schedule {id}"));
    state
        .scheduler
        .run_now(&id, &origin)
        .await
        .map(|s| s.job_ids.into_iter().chain(s.session_id).collect())
        .map_err(|e| crate::server::http::error::ApiError::from(e).into())
}

/// The last 100 runs of every sync type that has run.
#[server(prefix = "/api/fn", endpoint = "run_histories")]
pub async fn run_histories() -> Result<Vec<TypeHistory>, UiError> {
    let state = super::server::state()?;
    let mut histories = Vec::new();
    let mut types = state.engine.types();
    types.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    for ty in types {
        let runs = crate::server::http::schedules::run_history(&state, &ty.name, 100).await?;
        if !runs.is_empty() {
            histories.push(TypeHistory {
                sync_type: ty.name,
                runs,
            });
        }
    }
    Ok(histories)
}

/// Seed 004's statistics of every type over the last 7 and 30 days.
#[server(prefix = "/api/fn", endpoint = "sync_stats")]
pub async fn sync_stats() -> Result<Vec<crate::model::TypeStats>, UiError> {
    let state = super::server::state()?;
    state
        .scheduler
        .stats(Utc::now())
        .await
        .map_err(|e| crate::server::http::error::ApiError::from(e).into())
}

/// The schedule fire that queued job `id`, if one did.
#[server(prefix = "/api/fn", endpoint = "job_fire")]
pub async fn job_fire(id: String) -> Result<Option<crate::model::ScheduleFire>, UiError> {
    let state = super::server::state()?;
    let job = state
        .engine
        .job(super::server::job_id(&id)?)
        .await
        .map_err(UiError::from)?;
    state
        .scheduler
        .fire_of(&job)
        .await
        .map_err(|e| crate::server::http::error::ApiError::from(e).into())
}

/// Turns sync type `sync_type` on or off for every process.
#[server(prefix = "/api/fn", endpoint = "switch_type")]
pub async fn switch_type(sync_type: String, enabled: bool) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who().actor().label();
    state
        .scheduler
        .switch_type(&sync_type, enabled, &who)
        .await
        .map_err(|e| crate::server::http::error::ApiError::from(e).into())
}

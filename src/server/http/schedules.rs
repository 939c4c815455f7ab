//! The JSON API of the scheduler and the run history: list, edit, preview and run schedules,
//! read their fire times, and the last runs of a sync type. Handlers read the request and call
//! [`Scheduler`](crate::server::schedules::Scheduler).

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{
    error::ApiError,
    extract::{json_body, limit, Caller},
};
use crate::{
    model::{
        JobState, RunRecord, ScheduleFire, SchedulePreview, ScheduleSpec, ScheduleView, TypeStats,
    },
    server::{
        schedules::{spec::SpecError, ScheduleError, Scheduler},
        state::AppState,
    },
};

/// The OpenAPI operations of these routes.
#[derive(OpenApi)]
#[openapi(paths(list, one, update, preview, run_now, fires, stats, switch, history))]
pub struct Doc;

/// The scheduler's routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/schedules", get(list))
        .route("/api/schedules/{id}", get(one).put(update))
        .route("/api/schedules/{id}/preview", post(preview))
        .route("/api/schedules/{id}/run-now", post(run_now))
        .route("/api/schedules/{id}/fires", get(fires))
        .route("/api/sync/{sync_type}/history", get(history))
        .route("/api/sync/stats", get(stats))
        .route("/api/sync/{sync_type}/enabled", axum::routing::put(switch))
}

impl From<SpecError> for ApiError {
    fn from(err: SpecError) -> Self {
        ApiError::InvalidFields(vec![(err.field.to_string(), err.message)])
    }
}

impl From<ScheduleError> for ApiError {
    fn from(err: ScheduleError) -> Self {
        match err {
            ScheduleError::NotFound(_) => ApiError::NotFound(err.to_string()),
            ScheduleError::Invalid(spec) => spec.into(),
            ScheduleError::Engine(engine) => engine.into(),
            ScheduleError::Workflow(workflow) => workflow.into(),
            ScheduleError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

/// A schedule body: `{every}` or `{cron, tz}`, with `enabled` and `on_missed` (read as every
/// JSON body is; an empty one says what it takes).
fn spec_body(headers: &HeaderMap, body: &Bytes) -> Result<ScheduleSpec, ApiError> {
    json_body::<Option<ScheduleSpec>>(headers, body)?.ok_or_else(|| {
        ApiError::Unprocessable(
            "the body must be a schedule, e.g. {\"every\": \"30m\"} or {\"cron\": \"0 12 * * *\", \
             \"tz\": \"Europe/Rome\", \"enabled\": true, \"on_missed\": \"run_once\"}"
                .into(),
        )
    })
}

/// Every schedule: of each sync type, workflow and the full sync that has one.
#[utoipa::path(
    get,
    path = "/api/schedules",
    tag = "schedules",
    responses((status = 200, description = "The schedules", body = Vec<ScheduleView>)),
)]
async fn list(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.scheduler.list().await?))
}

/// One schedule.
#[utoipa::path(
    get,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule's id: its sync type or workflow, or `full-sync`")),
    responses((status = 200, description = "The schedule", body = ScheduleView)),
)]
async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.scheduler.get(&id).await?))
}

/// Changes a schedule (a sync type or workflow without one gets one); 422 names the field that
/// cannot be used.
#[utoipa::path(
    put,
    path = "/api/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule's id: its sync type or workflow, or `full-sync`")),
    request_body = ScheduleSpec,
    responses((status = 200, description = "The schedule as it is now", body = ScheduleView)),
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let spec = spec_body(&headers, &body)?;
    let view = state
        .scheduler
        .update(&id, &spec, &who.0.actor().label(), Utc::now())
        .await?;
    Ok(Json(view))
}

/// The next five fire times a timing would have; nothing is saved.
#[utoipa::path(
    post,
    path = "/api/schedules/{id}/preview",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule's id: its sync type or workflow, or `full-sync`")),
    request_body = ScheduleSpec,
    responses((status = 200, description = "The next five times", body = SchedulePreview)),
)]
async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // The id must name something a schedule can belong to, as for a save.
    match state.scheduler.get(&id).await {
        Ok(_) => {}
        Err(ScheduleError::NotFound(_))
            if state.engine.has_type(&id) || state.workflows.definitions().contains_key(&id) => {}
        Err(err) => return Err(err.into()),
    }
    let spec = spec_body(&headers, &body)?;
    let next = Scheduler::preview(&spec, Utc::now())?;
    Ok(Json(SchedulePreview { next }))
}

/// Runs a schedule's target now, as the caller's request (a job of that type already waiting is
/// the one returned).
#[utoipa::path(
    post,
    path = "/api/schedules/{id}/run-now",
    tag = "schedules",
    params(("id" = String, Path, description = "The schedule's id")),
    responses((status = 202, description = "What it started", body = crate::server::schedules::Started)),
)]
async fn run_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let origin = who.origin(Some(format!("run now from schedule {id}")));
    let started = state.scheduler.run_now(&id, &origin).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

#[derive(Debug, Deserialize)]
struct FireQuery {
    before: Option<String>,
    limit: Option<String>,
}

/// A page of a schedule's fire times.
#[derive(Debug, Serialize, ToSchema)]
struct FirePage {
    /// Newest first.
    fires: Vec<ScheduleFire>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<chrono::DateTime<Utc>>,
}

/// A schedule's fire times, newest first: fired, skipped (and why) or missed.
#[utoipa::path(
    get,
    path = "/api/schedules/{id}/fires",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        ("before" = Option<String>, Query, description = "The `next_before` of the previous page (RFC 3339)"),
        ("limit" = Option<u32>, Query, description = "Fires per page, 1-500 (default 50)"),
    ),
    responses((status = 200, description = "A page of fires", body = FirePage)),
)]
async fn fires(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<FireQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let before = super::jobs::time("before", query.before)?;
    let limit = limit(query.limit, 50, 500)?;
    let fires = state.scheduler.fires(&id, before, limit).await?;
    let next_before = (fires.len() == limit as usize)
        .then(|| fires.last().map(|f| f.fire_time))
        .flatten();
    Ok(Json(FirePage { fires, next_before }))
}

/// Each sync type's statistics.
#[derive(Debug, Serialize, ToSchema)]
struct StatsAnswer {
    types: Vec<TypeStats>,
}

/// Runs, runs per day, success rate, median duration and records changed of each sync type over
/// the last 7 and 30 days.
#[utoipa::path(
    get,
    path = "/api/sync/stats",
    tag = "syncs",
    responses((status = 200, description = "The statistics", body = StatsAnswer)),
)]
async fn stats(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(StatsAnswer {
        types: state.scheduler.stats(Utc::now()).await?,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    enabled: Option<bool>,
}

/// A type's switch as it is now.
#[derive(Debug, Serialize, ToSchema)]
struct Switched {
    sync_type: String,
    enabled: bool,
}

/// Turns a sync type on or off for every process: while off, no new run is requested (409) or
/// scheduled; queued ones still run. 422 without `enabled`.
#[utoipa::path(
    put,
    path = "/api/sync/{sync_type}/enabled",
    tag = "syncs",
    params(("sync_type" = String, Path, description = "The sync type")),
    request_body = SwitchBody,
    responses((status = 200, description = "The switch as it is now", body = Switched)),
)]
async fn switch(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: SwitchBody = json_body(&headers, &body)?;
    let Some(enabled) = body.enabled else {
        return Err(ApiError::Unprocessable(
            "the body must be {\"enabled\": true} or {\"enabled\": false}".into(),
        ));
    };
    state
        .scheduler
        .switch_type(&sync_type, enabled, &who.0.actor().label())
        .await?;
    Ok(Json(Switched { sync_type, enabled }))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<String>,
}

/// A sync type's last finished runs.
#[derive(Debug, Serialize, ToSchema)]
struct History {
    sync_type: String,
    /// Newest first.
    runs: Vec<RunRecord>,
}

/// A sync type's last finished runs, newest first, with start, duration, outcome, counts and
/// error.
#[utoipa::path(
    get,
    path = "/api/sync/{sync_type}/history",
    tag = "syncs",
    params(
        ("sync_type" = String, Path, description = "The sync type"),
        ("limit" = Option<u32>, Query, description = "Runs, 1-1000 (default 100)"),
    ),
    responses((status = 200, description = "The runs", body = History)),
)]
async fn history(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.limit, 100, 1000)?;
    let runs = run_history(&state, &sync_type, limit).await?;
    Ok(Json(History { sync_type, runs }))
}

/// The last `limit` finished runs of `sync_type`, newest first; 404 for an unknown type.
pub async fn run_history(
    state: &AppState,
    sync_type: &str,
    limit: u32,
) -> Result<Vec<RunRecord>, ApiError> {
    if !state.engine.has_type(sync_type) {
        return Err(ApiError::NotFound(format!(
            "there is no sync type `{sync_type}`"
        )));
    }
    let rows = state.store.finished_jobs(sync_type, limit).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let job = row.to_job();
            RunRecord {
                duration_ms: match (row.started_at, row.finished_at) {
                    (Some(s), Some(f)) => Some((f - s).num_milliseconds().max(0) as u64),
                    _ => None,
                },
                job_id: job.id,
                started_at: row.started_at,
                finished_at: row.finished_at,
                outcome: JobState::parse(&row.state).unwrap_or(JobState::Failed),
                processed: row.processed.max(0) as u64,
                total: row.total.map(|t| t.max(0) as u64),
                error: job.error,
                source: job.source,
            }
        })
        .collect())
}

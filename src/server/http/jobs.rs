//! The JSON API of the job engine: request syncs, submit jobs, read status and history, cancel
//! and retry. Handlers only read the request and call [`Engine`](crate::server::engine::Engine); every
//! rule lives there.

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::{
    error::ApiError,
    extract::{filter, job_id, json_body, limit, triggered_by, Caller, Peer},
};
use crate::model::{Job, JobSource, JobState, SyncStatus};
use crate::server::{engine::Origin, state::AppState, store::JobFilter};

/// Most jobs one page of `GET /api/jobs` returns.
pub const MAX_PAGE: u32 = 500;

/// The OpenAPI operations of these routes (roles and common errors are added in
/// [`super::openapi`]).
#[derive(OpenApi)]
#[openapi(paths(
    sync_full,
    sync_status,
    sync_one,
    list_jobs,
    submit_job,
    bulk_jobs,
    get_job,
    cancel_job,
    retry_job,
    job_logs,
    list_changes,
    info
))]
pub struct Doc;

/// The engine's routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sync/full", post(sync_full))
        .route("/api/sync/status", get(sync_status))
        .route("/api/sync/{sync_type}", post(sync_one))
        .route("/api/jobs", get(list_jobs).post(submit_job))
        .route("/api/jobs/bulk", post(bulk_jobs))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/jobs/{id}/retry", post(retry_job))
        .route("/api/jobs/{id}/logs", get(job_logs))
        .route("/api/changes", get(list_changes))
        .route("/api/info", get(info))
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// A page of a job's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Oldest first.
    pub lines: Vec<crate::model::JobLogLine>,
    /// Pass as `after` for the next page; null when the job has no lines.
    pub next_after: Option<i64>,
}

/// A job's log lines, oldest first, after the line `after`.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/logs",
    tag = "jobs",
    params(
        ("id" = uuid::Uuid, Path, description = "The job's id"),
        ("after" = Option<i64>, Query, description = "The `next_after` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Lines per page, 1-1000 (default 500)"),
    ),
    responses((status = 200, description = "A page of lines", body = LogPage)),
)]
async fn job_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = match query
        .after
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`after` must be the `next_after` of a previous page (a line's id); got `{raw}`"
            ))
        })?),
    };
    let limit = limit(query.limit, 500, 1000)?;
    let lines = state.engine.logs(job_id(&id)?, after, limit).await?;
    let next_after = lines.last().and_then(|l| l.id);
    Ok(Json(LogPage { lines, next_after }))
}

#[derive(Debug, Deserialize)]
struct ChangeQuery {
    entity: Option<String>,
    job_id: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// A page of the change log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// Newest first.
    pub changes: Vec<crate::model::EntityChange>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
}

/// The records the syncs created, updated or removed, newest first.
#[utoipa::path(
    get,
    path = "/api/changes",
    tag = "records",
    params(
        ("entity" = Option<String>, Query, description = "Only this entity (customers, orders, …)"),
        ("job_id" = Option<uuid::Uuid>, Query, description = "Only the changes of this job"),
        ("before" = Option<i64>, Query, description = "The `next_before` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Changes per page, 1-1000 (default 100)"),
    ),
    responses((status = 200, description = "A page of changes", body = ChangePage)),
)]
async fn list_changes(
    State(state): State<AppState>,
    query: Result<Query<ChangeQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let job = nonempty(query.job_id).map(|raw| job_id(&raw)).transpose()?;
    let before = match nonempty(query.before) {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`before` must be the `next_before` of a previous page; got `{raw}`"
            ))
        })?),
    };
    let limit = limit(query.limit, 100, 1000)?;
    let entity = filter("entity", query.entity)?;
    let changes = state
        .engine
        .changes(entity.as_deref(), job, before, limit)
        .await?;
    let next_before = (changes.len() == limit as usize)
        .then(|| changes.last().map(|c| c.id))
        .flatten();
    Ok(Json(ChangePage {
        changes,
        next_before,
    }))
}

/// What this server is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// Baton's version.
    pub version: String,
    /// The demo ERP's base URL in demo mode, else null.
    pub demo_erp: Option<String>,
    /// The connections that do not verify certificates (`tls.insecure`).
    pub insecure_tls: Vec<String>,
}

/// What this server is: its version, the demo ERP, connections without certificate checks.
#[utoipa::path(
    get,
    path = "/api/info",
    tag = "server",
    responses((status = 200, description = "This server", body = Info)),
)]
async fn info(State(state): State<AppState>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION").into(),
        demo_erp: state.demo_erp.map(|addr| format!("http://{addr}/api")),
        insecure_tls: state.insecure_tls.clone(),
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    /// What the client says about the run (kept as the job's `note`; who asked is known).
    triggered_by: Option<String>,
}

/// The request of `caller` with an optional `{"triggered_by"}` body, kept as the note.
fn sync_request(caller: &Caller, headers: &HeaderMap, body: &Bytes) -> Result<Origin, ApiError> {
    let body: SyncBody = json_body(headers, body)?;
    Ok(caller.origin(triggered_by(body.triggered_by)?))
}

/// A run was requested.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The job that will run (the one already waiting, when deduplicated).
    job_id: String,
    state: JobState,
    /// A job of the type was already waiting; this is that job.
    deduplicated: bool,
}

/// 202 `{job_id, state, deduplicated}`.
pub(crate) fn accepted((job, deduplicated): (Job, bool)) -> (StatusCode, Json<Accepted>) {
    let body = Accepted {
        job_id: job.id,
        state: job.state,
        deduplicated,
    };
    (StatusCode::ACCEPTED, Json(body))
}

/// Requests a run of a sync type; a type that already has a job waiting answers with that job.
#[utoipa::path(
    post,
    path = "/api/sync/{sync_type}",
    tag = "syncs",
    params(("sync_type" = String, Path, description = "The sync type (customers, orders, …)")),
    request_body(content = SyncBody, description = "Optional: a note about the run"),
    responses((status = 202, description = "Queued (or joined the waiting job)", body = Accepted)),
)]
async fn sync_one(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request = sync_request(&who, &headers, &body)?;
    let pushed = state
        .engine
        .types()
        .iter()
        .any(|t| t.name == sync_type && t.takes_records);
    if pushed {
        return Err(ApiError::Unprocessable(format!(
            "`{sync_type}` jobs carry records: POST /api/jobs with `sync_type` and `records`"
        )));
    }
    Ok(accepted(
        state.engine.request_sync(&sync_type, request).await?,
    ))
}

/// One job of a full sync.
#[derive(Debug, Serialize, ToSchema)]
struct QueuedJob {
    job_id: String,
    sync_type: String,
}

/// What a full sync queued.
#[derive(Debug, Serialize, ToSchema)]
struct FullAccepted {
    /// Highest priority first.
    jobs: Vec<QueuedJob>,
}

/// Requests every enabled sync type that needs no input, highest priority first.
#[utoipa::path(
    post,
    path = "/api/sync/full",
    tag = "syncs",
    request_body(content = SyncBody, description = "Optional: a note about the run"),
    responses((status = 202, description = "The jobs queued", body = FullAccepted)),
)]
async fn sync_full(
    State(state): State<AppState>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request = sync_request(&who, &headers, &body)?;
    let jobs = state.engine.request_full(request).await?;
    let jobs: Vec<_> = jobs
        .into_iter()
        .map(|job| QueuedJob {
            job_id: job.id,
            sync_type: job.sync_type,
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(FullAccepted { jobs })))
}

/// The orchestrator's state: the job holding the mutex, the queue, and every sync type's status,
/// freshness and next run.
#[utoipa::path(
    get,
    path = "/api/sync/status",
    tag = "syncs",
    responses((status = 200, description = "The status", body = SyncStatus)),
)]
async fn sync_status(State(state): State<AppState>) -> Result<Json<SyncStatus>, ApiError> {
    let mut status = state.engine.status().await?;
    state.scheduler.annotate(&mut status).await?;
    Ok(Json(status))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// The sync type.
    sync_type: String,
    /// For a type that takes records: the records (a JSON array of objects with an `id`).
    #[schema(value_type = Option<Vec<Object>>)]
    records: Option<Box<RawValue>>,
    /// A note about the run.
    triggered_by: Option<String>,
}

/// Submits a job, with records for a type that takes them.
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    request_body = SubmitBody,
    responses((status = 202, description = "Queued", body = Accepted)),
)]
async fn submit_job(
    State(state): State<AppState>,
    peer: Peer,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    state
        .limiter
        .check(&who.limit_key(&peer), "records pushes")?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Unprocessable(
            "the body must be a JSON object with at least `sync_type`".into(),
        ));
    }
    let body: SubmitBody = json_body(&headers, &body)?;
    let records = body
        .records
        .as_deref()
        .map(RawValue::get)
        .filter(|r| *r != "null");
    let request = who.origin(triggered_by(body.triggered_by)?);
    Ok(accepted(
        state
            .engine
            .submit(&body.sync_type, records, request)
            .await?,
    ))
}

/// One job.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = Job)),
)]
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.engine.job(job_id(&id)?).await?))
}

/// Cancels a job: a waiting one at once, a running one at its next step.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    responses((status = 200, description = "The job: cancelled, or running with `cancel_requested_at`", body = Job)),
)]
async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.engine.cancel(job_id(&id)?).await?))
}

/// A retry was queued.
#[derive(Debug, Serialize, ToSchema)]
struct RetryAccepted {
    /// The new job.
    job_id: String,
    /// The job it retries.
    retry_of: Option<String>,
}

/// Queues a failed or cancelled job again, as a new job.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job's id")),
    request_body(content = SyncBody, description = "Optional: a note about the run"),
    responses((status = 202, description = "The new job", body = RetryAccepted)),
)]
async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request = sync_request(&who, &headers, &body)?;
    let job = state.engine.retry(job_id(&id)?, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RetryAccepted {
            job_id: job.id,
            retry_of: job.retry_of,
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    sync_type: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    source: Option<String>,
    who: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// `source`: one of the job sources, or none.
pub fn source(raw: Option<String>) -> Result<Option<JobSource>, ApiError> {
    match raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(name) => JobSource::parse(&name).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`source` must be one of {}; got `{name}`",
                JobSource::ALL.map(JobSource::as_str).join(", ")
            ))
        }),
    }
}

/// `since` / `until`: an RFC 3339 time (`2026-12-05T08:00:00Z`) or a date (`2026-12-05`, its
/// start in UTC), or none.
pub fn time(name: &str, raw: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        return Ok(Some(day.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    Err(ApiError::BadRequest(format!(
        "`{name}` must be a time such as 2026-12-05T08:00:00Z or a date such as 2026-12-05; got `{raw}`"
    )))
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct JobPage {
    jobs: Vec<Job>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    next_cursor: Option<String>,
}

/// The jobs, newest first, filtered and paged.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    params(
        ("state" = Option<JobState>, Query, description = "Only jobs in this state"),
        ("sync_type" = Option<String>, Query, description = "Only jobs of this type"),
        ("q" = Option<String>, Query, description = "Case-insensitive text in the type, message, error or who asked"),
        ("limit" = Option<u32>, Query, description = "Jobs per page, 1-500 (default 50)"),
        ("cursor" = Option<uuid::Uuid>, Query, description = "The `next_cursor` of the previous page"),
        ("source" = Option<JobSource>, Query, description = "Only jobs from this source"),
        ("who" = Option<String>, Query, description = "Only jobs asked for by this person or client"),
        ("since" = Option<String>, Query, description = "Queued at or after this time (RFC 3339) or date"),
        ("until" = Option<String>, Query, description = "Queued before this time (RFC 3339) or date"),
    ),
    responses((status = 200, description = "A page of jobs", body = JobPage)),
)]
async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let job_state = match nonempty(query.state) {
        None => None,
        Some(name) => Some(JobState::parse(&name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`state` must be one of {}; got `{name}`",
                JobState::ALL.map(JobState::as_str).join(", ")
            ))
        })?),
    };
    let limit = match nonempty(query.limit) {
        None => 50,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`limit` must be a whole number from 1 to {MAX_PAGE}; got `{raw}`"
                )))
            }
        },
    };
    let before = match nonempty(query.cursor) {
        None => None,
        Some(raw) => Some(Uuid::parse_str(&raw).map_err(|_| {
            ApiError::BadRequest(format!(
                "`cursor` must be the `next_cursor` of a previous page; got `{raw}`"
            ))
        })?),
    };
    let filter = JobFilter {
        state: job_state,
        sync_type: filter("sync_type", query.sync_type)?,
        q: filter("q", query.q)?,
        before,
        limit,
        source: source(query.source)?,
        who: filter("who", query.who)?,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
    };
    let jobs = state.engine.list(&filter).await?;
    let next_cursor = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id.clone()))
        .flatten();
    Ok(Json(JobPage { jobs, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    action: crate::model::BulkAction,
    /// 1-500 job ids.
    #[schema(value_type = Vec<uuid::Uuid>)]
    ids: Vec<String>,
}

/// Each job's answer to a bulk action.
#[derive(Debug, Serialize, ToSchema)]
struct BulkAnswer {
    results: Vec<crate::model::BulkOutcome>,
}

/// Cancels or retries up to 500 jobs; each answers as the single call would, one refusal never
/// stopping the others. 422 for no ids or more than 500, 400 for an id that is not one.
#[utoipa::path(
    post,
    path = "/api/jobs/bulk",
    tag = "jobs",
    request_body = BulkBody,
    responses((status = 200, description = "Each job's answer", body = BulkAnswer)),
)]
async fn bulk_jobs(
    State(state): State<AppState>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: Option<BulkBody> = json_body::<Option<BulkBody>>(&headers, &body)?;
    let Some(body) = body else {
        return Err(ApiError::Unprocessable(
            "the body must be {\"action\": \"cancel\" or \"retry\", \"ids\": [job ids]}".into(),
        ));
    };
    let ids = body
        .ids
        .iter()
        .map(|raw| job_id(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let results = state
        .engine
        .bulk(body.action, &ids, &who.origin(None))
        .await?;
    Ok(Json(BulkAnswer { results }))
}

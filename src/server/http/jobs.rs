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
use serde_json::{json, value::RawValue};
use uuid::Uuid;

use super::{
    error::ApiError,
    extract::{filter, job_id, json_body, limit, triggered_by, Caller, Peer},
};
use crate::model::{Job, JobSource, JobState, SyncStatus};
use crate::server::{engine::Origin, state::AppState, store::JobFilter};

/// Most jobs one page of `GET /api/jobs` returns.
pub const MAX_PAGE: u32 = 500;

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

/// `GET /api/jobs/{id}/logs?after=<line id>&limit=` → `{lines, next_after}`, oldest first.
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
    Ok(Json(json!({ "lines": lines, "next_after": next_after })))
}

#[derive(Debug, Deserialize)]
struct ChangeQuery {
    entity: Option<String>,
    job_id: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /api/changes?entity=&job_id=&before=&limit=` → `{changes, next_before}`, newest first.
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
    Ok(Json(
        json!({ "changes": changes, "next_before": next_before }),
    ))
}

/// `GET /api/info` → `{version, demo_erp, insecure_tls}`: what this server is; `demo_erp` is the
/// demo ERP's base URL in demo mode, else null; `insecure_tls` names the connections that do not
/// verify certificates.
async fn info(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "demo_erp": state.demo_erp.map(|addr| format!("http://{addr}/api")),
        "insecure_tls": state.insecure_tls,
    }))
}

#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Serialize)]
struct Accepted {
    job_id: String,
    state: JobState,
    deduplicated: bool,
}

/// 202 `{job_id, state, deduplicated}`.
fn accepted((job, deduplicated): (Job, bool)) -> (StatusCode, Json<Accepted>) {
    let body = Accepted {
        job_id: job.id,
        state: job.state,
        deduplicated,
    };
    (StatusCode::ACCEPTED, Json(body))
}

/// `POST /api/sync/{type}` → 202 `{job_id, state, deduplicated}`.
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

/// `POST /api/sync/full` → 202 `{jobs: [{job_id, sync_type}]}`, highest priority first.
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
        .map(|job| json!({ "job_id": job.id, "sync_type": job.sync_type }))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "jobs": jobs }))))
}

/// `GET /api/sync/status` → `{current, queue, types}`.
async fn sync_status(State(state): State<AppState>) -> Result<Json<SyncStatus>, ApiError> {
    let mut status = state.engine.status().await?;
    state.scheduler.annotate(&mut status).await?;
    Ok(Json(status))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    sync_type: String,
    records: Option<Box<RawValue>>,
    triggered_by: Option<String>,
}

/// `POST /api/jobs {sync_type, records?, triggered_by?}` → 202 `{job_id, state, deduplicated}`.
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

/// `GET /api/jobs/{id}` → the job.
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.engine.job(job_id(&id)?).await?))
}

/// `POST /api/jobs/{id}/cancel` → the job (cancelled, or running with `cancel_requested_at`).
async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.engine.cancel(job_id(&id)?).await?))
}

/// `POST /api/jobs/{id}/retry` → 202 `{job_id}` of the new job.
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
        Json(json!({ "job_id": job.id, "retry_of": job.retry_of })),
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

#[derive(Debug, Serialize)]
struct JobPage {
    jobs: Vec<Job>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/jobs?state=&sync_type=&q=&limit=&cursor=` → a page of jobs, newest first.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    action: crate::model::BulkAction,
    ids: Vec<String>,
}

/// `POST /api/jobs/bulk {"action": "cancel"|"retry", "ids": [...]}` → `{"results": [{"id",
/// "ok", "job_id", "error"}]}`: each job as the single call would answer it; 422 for no ids or
/// more than 500, 400 for an id that is not one.
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
    Ok(Json(json!({ "results": results })))
}

//! Seed 002's job API, for the callers that already speak it (a WordPress bridge polling every
//! 1.5 s): `POST /api/sync/{type}/start`, `GET /api/sync/{type}/status?jobId=` and
//! `POST /api/sync/{type}/cancel {jobId}`, in camelCase with a `success` flag. A thin adapter:
//! each calls the same engine method as `POST /api/sync/{type}`, `GET /api/jobs/{id}` and
//! `POST /api/jobs/{id}/cancel`, and only reshapes the answer.

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{
    error::ApiError,
    extract::{filter, job_id, json_body, triggered_by, Caller},
};
use crate::model::Job;
use crate::server::{state::AppState, store::JobFilter};

/// The OpenAPI operations of these routes.
#[derive(OpenApi)]
#[openapi(paths(start, status, cancel))]
pub struct Doc;

/// The adapter's routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sync/{sync_type}/start", post(start))
        .route("/api/sync/{sync_type}/status", get(status))
        .route("/api/sync/{sync_type}/cancel", post(cancel))
}

/// An error in seed 002's shape: `{success: false, error, message}` with the status code the
/// JSON API gives the same error.
pub struct CompatError(ApiError);

impl From<ApiError> for CompatError {
    fn from(err: ApiError) -> Self {
        CompatError(err)
    }
}

impl From<crate::server::engine::EngineError> for CompatError {
    fn from(err: crate::server::engine::EngineError) -> Self {
        CompatError(err.into())
    }
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        let (status, code) = self.0.status_and_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The JSON API's answer logs the cause and keeps it from the caller.
            return self.0.into_response();
        }
        let body = Refused {
            success: false,
            error: code.to_string(),
            message: self.0.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

/// A refusal in seed 002's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refused {
    /// Always false.
    pub success: bool,
    /// The JSON API's stable code (`not_found`, `conflict`, …).
    pub error: String,
    /// A sentence a person can act on.
    pub message: String,
}

/// `{success: true, jobId, message}`, the answer of start and cancel.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub success: bool,
    pub job_id: String,
    pub message: String,
}

/// A job as seed 002 shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatJob {
    pub job_id: String,
    pub sync_type: String,
    /// pending, running, completed, failed or cancelled.
    pub status: &'static str,
    pub progress: u8,
    pub processed: u64,
    pub total: Option<u64>,
    pub step_message: Option<String>,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub warnings: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub cancel_requested: bool,
}

impl From<Job> for CompatJob {
    fn from(job: Job) -> Self {
        CompatJob {
            job_id: job.id,
            sync_type: job.sync_type,
            status: job.state.as_str(),
            progress: job.progress,
            processed: job.processed,
            total: job.total,
            step_message: job.message,
            error: job.error,
            result: job.result,
            warnings: job.warnings,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            cancel_requested: job.cancel_requested_at.is_some(),
        }
    }
}

/// `{success: true, job}`, the answer of status.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAnswer {
    pub success: bool,
    pub job: CompatJob,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartBody {
    /// What the caller says about the run (the job's note).
    triggered_by: Option<String>,
}

/// Seed 002's start: the same request as `POST /api/sync/{sync_type}` (a type that already has a
/// job waiting answers with that job), in seed 002's shape.
#[utoipa::path(
    post,
    path = "/api/sync/{sync_type}/start",
    tag = "seed 002",
    params(("sync_type" = String, Path, description = "The sync type")),
    request_body(content = StartBody, description = "Optional"),
    responses(
        (status = 202, description = "Queued", body = Ack),
        (status = 400, description = "The body is not JSON", body = Refused),
        (status = 404, description = "No such sync type (the message lists them)", body = Refused),
        (status = 409, description = "The type is turned off", body = Refused),
        (status = 422, description = "The body does not fit", body = Refused),
    ),
)]
async fn start(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Ack>), CompatError> {
    let body: StartBody = json_body(&headers, &body)?;
    let request = who.origin(triggered_by(body.triggered_by)?);
    let (job, deduplicated) = state.engine.request_sync(&sync_type, request).await?;
    let message = if deduplicated {
        format!("a {sync_type} sync was already waiting; this is that job")
    } else {
        format!("{sync_type} sync queued")
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Ack {
            success: true,
            job_id: job.id,
            message,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusQuery {
    job_id: Option<String>,
}

/// Seed 002's status: a job (without `jobId`, the type's newest). 404 for a job of another type,
/// an unknown type or a type that never ran.
#[utoipa::path(
    get,
    path = "/api/sync/{sync_type}/status",
    tag = "seed 002",
    params(
        ("sync_type" = String, Path, description = "The sync type"),
        ("jobId" = Option<uuid::Uuid>, Query, description = "The jobId that start answered"),
    ),
    responses(
        (status = 200, description = "The job", body = JobAnswer),
        (status = 400, description = "`jobId` is not a job id", body = Refused),
        (status = 404, description = "No such job of this type, or no such type", body = Refused),
    ),
)]
async fn status(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Json<JobAnswer>, CompatError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // The engine's own refusal of an unknown type lists the known ones.
    state.engine.sync_type(&sync_type)?;
    let job = match filter("jobId", query.job_id)? {
        Some(raw) => of_type(state.engine.job(job_id(&raw)?).await?, &sync_type)?,
        None => state
            .engine
            .list(&JobFilter {
                sync_type: Some(sync_type.clone()),
                limit: 1,
                ..JobFilter::default()
            })
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::NotFound(format!("no {sync_type} sync has run yet")))?,
    };
    Ok(Json(JobAnswer {
        success: true,
        job: job.into(),
    }))
}

/// The job, if it is of `sync_type`; else the 404 a job of another path would get.
fn of_type(job: Job, sync_type: &str) -> Result<Job, ApiError> {
    if job.sync_type == sync_type {
        Ok(job)
    } else {
        Err(ApiError::NotFound(format!(
            "job {} is a {} sync, not a {sync_type} one",
            job.id, job.sync_type
        )))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CancelBody {
    /// The jobId that start answered.
    #[schema(value_type = Option<uuid::Uuid>)]
    job_id: Option<String>,
}

/// Seed 002's cancel: a waiting job is cancelled at once, a running one is asked to stop (its
/// status turns `cancelled` when it has).
#[utoipa::path(
    post,
    path = "/api/sync/{sync_type}/cancel",
    tag = "seed 002",
    params(("sync_type" = String, Path, description = "The sync type")),
    request_body = CancelBody,
    responses(
        (status = 200, description = "Cancelled, or asked to stop", body = Ack),
        (status = 400, description = "`jobId` is not a job id, or the body is not JSON", body = Refused),
        (status = 404, description = "No such job of this type", body = Refused),
        (status = 409, description = "The job has ended already", body = Refused),
        (status = 422, description = "No `jobId`", body = Refused),
    ),
)]
async fn cancel(
    State(state): State<AppState>,
    Path(sync_type): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Ack>, CompatError> {
    let body: Option<CancelBody> = json_body(&headers, &body)?;
    let Some(raw) = body.and_then(|b| b.job_id).filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError::Unprocessable(
            "the body must be {\"jobId\": \"<the jobId that start answered>\"}".into(),
        )
        .into());
    };
    let id = job_id(raw.trim())?;
    of_type(state.engine.job(id).await?, &sync_type)?;
    let job = state.engine.cancel(id).await?;
    let message = if job.state.is_terminal() {
        "cancelled".to_string()
    } else {
        "cancel requested; the job stops at its next step".to_string()
    };
    Ok(Json(Ack {
        success: true,
        job_id: job.id,
        message,
    }))
}

//! The JSON API of workflow sessions: start one, read it, press a gate's button, retry a failed
//! step, clear it for a fresh run. Handlers parse and call [`Workflows`](crate::server::workflows).

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{
    error::ApiError,
    extract::{json_body, limit, session_id, step_number, triggered_by, Caller, Peer},
};
use crate::model::SessionView;
use crate::server::{state::AppState, workflows::view::TIMELINE_PAGE};

/// The OpenAPI operations of these routes.
#[derive(OpenApi)]
#[openapi(paths(start, view, action, retry, clear, cancel, workflows, latest))]
pub struct Doc;

/// The routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/sessions", post(start))
        .route("/api/sessions/{id}", get(view))
        .route("/api/sessions/{id}/steps/{step}/action", post(action))
        .route("/api/sessions/{id}/steps/{step}/retry", post(retry))
        .route("/api/sessions/{id}/clear", post(clear))
        .route("/api/sessions/{id}/cancel", post(cancel))
        .route("/api/workflows", get(workflows))
        .route("/api/workflows/{id}/latest", get(latest))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: Option<String>,
    triggered_by: Option<String>,
}

/// A session was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStarted {
    pub session_id: String,
}

/// Starts a workflow: a new session, whose first step runs at once. 409 `session_open` while the
/// workflow has a session open, naming it.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "workflows",
    request_body = StartBody,
    responses((status = 202, description = "The session", body = SessionStarted)),
)]
async fn start(
    State(state): State<AppState>,
    peer: Peer,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    state
        .limiter
        .check(&who.limit_key(&peer), "session starts")?;
    let body: StartBody = json_body(&headers, &body)?;
    let workflow = body
        .workflow
        .filter(|w| !w.trim().is_empty())
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "the body needs `workflow`, one of: {}",
                state
                    .workflows
                    .definitions()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let request = who.origin(triggered_by(body.triggered_by)?);
    let id = state.workflows.start(workflow.trim(), &request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SessionStarted {
            session_id: id.to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct TimelineQuery {
    timeline_limit: Option<String>,
    timeline_before: Option<String>,
}

/// A session with its steps and the newest rows of its timeline (the answer's `timeline_before`
/// asks for the page before).
#[utoipa::path(
    get,
    path = "/api/sessions/{id}",
    tag = "workflows",
    params(
        ("id" = uuid::Uuid, Path, description = "The session's id"),
        ("timeline_limit" = Option<u32>, Query, description = "Timeline rows, 1-1000 (default 100)"),
        ("timeline_before" = Option<i64>, Query, description = "The answer's `timeline_before`, for older rows"),
    ),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Json<SessionView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.timeline_limit, TIMELINE_PAGE, 1000)?;
    let before = match query
        .timeline_before
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`timeline_before` must be the `timeline_before` of a previous answer; got `{raw}`"
            ))
        })?),
    };
    Ok(Json(
        state
            .workflows
            .view_page(session_id(&id)?, limit, before)
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    triggered_by: Option<String>,
}

/// Presses a step's gate button; 409 unless the step waits at its gate.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/steps/{step}/action",
    tag = "workflows",
    params(
        ("id" = uuid::Uuid, Path, description = "The session's id"),
        ("step" = u32, Path, description = "The step's number, from 1"),
    ),
    request_body(content = ActionBody, description = "Optional"),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn action(
    State(state): State<AppState>,
    Path((id, step)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SessionView>, ApiError> {
    // The body's `triggered_by` is still read (and checked) for old clients; who pressed the
    // button is who made the request.
    let body: ActionBody = json_body(&headers, &body)?;
    triggered_by(body.triggered_by)?;
    let (id, step) = (session_id(&id)?, step_number(&step)?);
    let who = caller.0.actor().label();
    state.workflows.action(id, step, Some(&who)).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// Runs a failed step again; 409 unless the step failed.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/steps/{step}/retry",
    tag = "workflows",
    params(
        ("id" = uuid::Uuid, Path, description = "The session's id"),
        ("step" = u32, Path, description = "The step's number, from 1"),
    ),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn retry(
    State(state): State<AppState>,
    Path((id, step)): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    let (id, step) = (session_id(&id)?, step_number(&step)?);
    state.workflows.retry_step(id, step).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// Clears a session for a fresh run from step 1.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/clear",
    tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "The session's id")),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    state.workflows.clear(id).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// Cancels a session with its jobs; 409 once it ended.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/cancel",
    tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "The session's id")),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    state.workflows.cancel(id).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// A workflow as it is defined.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowInfo {
    pub id: String,
    pub name: String,
    pub steps: Vec<StepInfo>,
}

/// A step of a workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepInfo {
    /// From 1.
    pub step: u32,
    pub name: String,
    /// The sync types it runs.
    pub sync_types: Vec<String>,
    /// The button a person presses before it runs, if any.
    pub gate: Option<String>,
    /// Whether the workflow goes on when it fails.
    pub continue_on_failure: bool,
}

/// Every workflow with its steps, by id.
#[utoipa::path(
    get,
    path = "/api/workflows",
    tag = "workflows",
    responses((status = 200, description = "The workflows", body = Vec<WorkflowInfo>)),
)]
async fn workflows(State(state): State<AppState>) -> Json<Vec<WorkflowInfo>> {
    let list = state
        .workflows
        .definitions()
        .values()
        .map(|w| WorkflowInfo {
            id: w.id.clone(),
            name: w.name.clone(),
            steps: w
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepInfo {
                    step: i as u32 + 1,
                    name: s.name.clone(),
                    sync_types: s.sync_types.clone(),
                    gate: s.gate.clone(),
                    continue_on_failure: s.continue_on_failure,
                })
                .collect(),
        })
        .collect();
    Json(list)
}

/// A workflow's newest session; 404 when there is none or no such workflow.
#[utoipa::path(
    get,
    path = "/api/workflows/{id}/latest",
    tag = "workflows",
    params(("id" = String, Path, description = "The workflow's id")),
    responses((status = 200, description = "The session", body = SessionView)),
)]
async fn latest(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    match state.workflows.latest(&id).await {
        Ok(Some(view)) => Ok(Json(view)),
        Ok(None) => Err(ApiError::NotFound(format!(
            "workflow `{id}` has not run yet; start it with POST /api/sessions"
        ))),
        Err(err @ crate::server::workflows::WorkflowError::UnknownWorkflow { .. }) => {
            Err(ApiError::NotFound(err.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

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
use serde::Deserialize;
use serde_json::json;

use super::{
    error::ApiError,
    extract::{json_body, limit, session_id, step_number, triggered_by, Caller, Peer},
};
use crate::model::SessionView;
use crate::server::{state::AppState, workflows::view::TIMELINE_PAGE};

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: Option<String>,
    triggered_by: Option<String>,
}

/// `POST /api/sessions {workflow, triggered_by?}` → 202 `{session_id}`.
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
    Ok((StatusCode::ACCEPTED, Json(json!({ "session_id": id }))))
}

#[derive(Debug, Deserialize)]
struct TimelineQuery {
    timeline_limit: Option<String>,
    timeline_before: Option<String>,
}

/// `GET /api/sessions/{id}?timeline_limit=&timeline_before=` → the session with its steps and
/// the newest `timeline_limit` (1–1000, default 100) rows of its timeline before
/// `timeline_before`; the answer's `timeline_before` asks for the page before.
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    triggered_by: Option<String>,
}

/// `POST /api/sessions/{id}/steps/{n}/action` → the session; 409 unless the step waits at a gate.
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

/// `POST /api/sessions/{id}/steps/{n}/retry` → the session; 409 unless the step failed.
async fn retry(
    State(state): State<AppState>,
    Path((id, step)): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    let (id, step) = (session_id(&id)?, step_number(&step)?);
    state.workflows.retry_step(id, step).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// `POST /api/sessions/{id}/clear` → the session, running again from step 1.
async fn clear(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    state.workflows.clear(id).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// `POST /api/sessions/{id}/cancel` → the session, cancelled with its jobs; 409 once it ended.
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    state.workflows.cancel(id).await?;
    Ok(Json(state.workflows.view(id).await?))
}

/// `GET /api/workflows` → every workflow with its steps, by id.
async fn workflows(State(state): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .workflows
        .definitions()
        .values()
        .map(|w| {
            json!({
                "id": w.id,
                "name": w.name,
                "steps": w.steps.iter().enumerate().map(|(i, s)| json!({
                    "step": i + 1,
                    "name": s.name,
                    "sync_types": s.sync_types,
                    "gate": s.gate,
                    "continue_on_failure": s.continue_on_failure,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!(list))
}

/// `GET /api/workflows/{id}/latest` → its newest session; 404 when there is none or no such
/// workflow.
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

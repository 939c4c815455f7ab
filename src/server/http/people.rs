//! The JSON routes of people and machines beyond the server functions: the audit log for
//! admins (`GET /api/audit`) and signed webhooks (`POST /api/hooks/{name}`).

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{
    error::ApiError,
    extract::{filter, limit},
};
use crate::{
    model::{AuditPage, JobSource, Role},
    server::{
        auth::{hooks::HookTarget, Actor, Principal, Who},
        engine::Origin,
        state::AppState,
        store::AuditFilter,
    },
};

/// The OpenAPI operations of these routes.
#[derive(OpenApi)]
#[openapi(paths(audit, deliver))]
pub struct Doc;

/// The routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/audit", get(audit))
        .route("/api/hooks/{name}", post(deliver))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

fn time(name: &str, raw: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match raw.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => DateTime::parse_from_rfc3339(&raw)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "`{name}` must be a time such as 2026-12-05T08:00:00Z; got `{raw}`"
                ))
            }),
    }
}

/// The audit log, newest first: every change and every refusal, who and when.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "people",
    params(
        ("actor" = Option<String>, Query, description = "Only rows of this actor (user:anna, token:ci, …)"),
        ("action" = Option<String>, Query, description = "Only this action (job.cancel, …)"),
        ("target" = Option<String>, Query, description = "Only this target (job:<id>, …)"),
        ("outcome" = Option<String>, Query, description = "done, refused or failed"),
        ("since" = Option<String>, Query, description = "At or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Before this time (RFC 3339)"),
        ("before" = Option<i64>, Query, description = "The `next_before` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Rows per page, 1-1000 (default 100)"),
    ),
    responses((status = 200, description = "A page of the log", body = AuditPage)),
)]
async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let outcome = filter("outcome", query.outcome)?;
    if let Some(outcome) = &outcome {
        if !["done", "refused", "failed"].contains(&outcome.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "`outcome` must be done, refused or failed; got `{outcome}`"
            )));
        }
    }
    let before = match filter("before", query.before)? {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`before` must be the `next_before` of a previous page; got `{raw}`"
            ))
        })?),
    };
    let filter = AuditFilter {
        actor: filter("actor", query.actor)?,
        action: filter("action", query.action)?,
        target: filter("target", query.target)?,
        outcome,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        before,
        limit: limit(query.limit, 100, 1000)?,
    };
    Ok(Json(state.auth.audit_page(&filter).await?))
}

/// Most characters of a delivery id.
const DELIVERY_ID: usize = 128;

/// What a delivered webhook started: a sync's job, or a workflow's session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum HookAnswer {
    Sync(super::jobs::Accepted),
    Workflow(super::sessions::SessionStarted),
}

/// A signed webhook delivery starts the hook's sync type or workflow. A bad or missing
/// signature, a timestamp off by more than five minutes, or a delivery seen before is 401, and
/// starts nothing.
#[utoipa::path(
    post,
    path = "/api/hooks/{name}",
    tag = "people",
    params(
        ("name" = String, Path, description = "The hook's name (`[hooks.<name>]`)"),
        ("X-Baton-Timestamp" = String, Header, description = "Unix seconds when it was sent"),
        ("X-Baton-Delivery" = String, Header, description = "A unique id of this delivery"),
        ("X-Baton-Signature" = String, Header, description = "sha256=<hex of HMAC-SHA256(secret, \"<timestamp>.<raw body>\")>"),
    ),
    request_body(content = Object, description = "Anything; it is signed, not read"),
    responses((status = 202, description = "What it started", body = HookAnswer)),
)]
async fn deliver(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(hook) = state.hooks.get(&name) else {
        return Err(ApiError::NotFound(format!(
            "there is no hook `{name}`; hooks are configured as [hooks.<name>] in baton.toml"
        )));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = hook
        .verify(
            header("x-baton-timestamp"),
            header("x-baton-signature"),
            &body,
            Utc::now().timestamp(),
        )
        .map_err(ApiError::Unauthorized)?;
    let delivery = header("x-baton-delivery")
        .map(str::trim)
        .filter(|d| {
            !d.is_empty() && d.len() <= DELIVERY_ID && d.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "X-Baton-Delivery must be a unique id of 1 to {DELIVERY_ID} visible characters"
            ))
        })?;
    if !state
        .auth
        .store()
        .record_delivery(&name, delivery, &signature)
        .await?
    {
        return Err(ApiError::Unauthorized(
            "this delivery was received before (its id or its signature); each is accepted once"
                .into(),
        ));
    }
    let origin = Origin {
        source: JobSource::Webhook,
        triggered_by: Some(format!("hook:{name}")),
        note: None,
        session_id: None,
    };
    let mut response = match &hook.target {
        HookTarget::Sync(sync_type) => {
            let accepted = state.engine.request_sync(sync_type, origin).await?;
            let (status, Json(body)) = super::jobs::accepted(accepted);
            (status, Json(HookAnswer::Sync(body))).into_response()
        }
        HookTarget::Workflow(workflow) => {
            let id = state.workflows.start(workflow, &origin).await?;
            let body = HookAnswer::Workflow(super::sessions::SessionStarted {
                session_id: id.to_string(),
            });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
    };
    // The audit log names the hook, now that the signature proved it.
    response.extensions_mut().insert(Who {
        principal: Some(Principal {
            actor: Actor::Hook(name),
            role: Role::Staff,
            session: None,
        }),
        address: None,
        user_agent: None,
    });
    Ok(response)
}

//! The order form's JSON routes: smart customer sync (`/api/customers/smart-sync`,
//! `/api/customers/resume-syncs`), the customers and products to pick from, and drafts
//! (`/api/drafts`). The page uses server functions over the same services.

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
    extract::{filter, json_body, limit, Caller},
};
use crate::{
    model::{CustomerHit, Draft, DraftInput, ProductHit, SmartSyncAnswer},
    server::state::AppState,
};

/// The routes, merged into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/customers/smart-sync", post(smart_sync))
        .route("/api/customers/smart-sync/heartbeat", post(heartbeat))
        .route("/api/customers/resume-syncs", post(resume_syncs))
        .route("/api/customers", get(customers))
        .route("/api/products", get(products))
        .route("/api/drafts", get(list_drafts).post(create_draft))
        .route(
            "/api/drafts/{id}",
            get(get_draft).put(update_draft).delete(delete_draft),
        )
        .route("/api/drafts/{id}/ready", post(ready))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TabBody {
    tab_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TabQuery {
    tab_id: Option<String>,
}

/// The tab id from the JSON body, or from `?tab_id=` (what `navigator.sendBeacon` sends, with
/// an empty body).
fn tab_id(
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<String, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let body: TabBody = json_body(headers, body)?;
    body.tab_id
        .or(query.tab_id)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::Unprocessable(
                "`tab_id` is needed: the random id the page keeps for its tab".into(),
            )
        })
}

/// `POST /api/customers/smart-sync {tab_id}` → `{lease, customers_job_id,
/// customers_fresh_as_of, active_tabs}`: the order form opened (or opened again) in a tab.
async fn smart_sync(
    State(state): State<AppState>,
    who: Caller,
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SmartSyncAnswer>, ApiError> {
    let tab = tab_id(query, &headers, &body)?;
    let answer = state
        .engine
        .smart_open(&tab, &who.0.actor().label())
        .await?;
    Ok(Json(answer))
}

/// `POST /api/customers/smart-sync/heartbeat {tab_id}`: the form is still open; an ended lease
/// (timed out, vanished) stays ended and the answer says so.
async fn heartbeat(
    State(state): State<AppState>,
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SmartSyncAnswer>, ApiError> {
    let tab = tab_id(query, &headers, &body)?;
    Ok(Json(state.engine.smart_heartbeat(&tab).await?))
}

/// `POST /api/customers/resume-syncs {tab_id}` (or `?tab_id=`): the form closed; after the last
/// one the waiting syncs run at once. `{ended, active_tabs}`.
async fn resume_syncs(
    State(state): State<AppState>,
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tab = tab_id(query, &headers, &body)?;
    let ended = state.engine.smart_close(&tab).await?;
    let active = state.engine.status().await?.smart_sync.active_tabs;
    Ok(Json(json!({
        "ended": ended.as_ref().and_then(|e| e.reason.clone()),
        "active_tabs": ended.map(|e| e.active_tabs).unwrap_or(active),
    })))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

/// `GET /api/customers?q=&limit=` → customers whose name or id contains `q`, by name.
async fn customers(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<CustomerHit>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = filter("q", query.q)?.unwrap_or_default();
    let limit = limit(query.limit, 20, crate::server::orders::MAX_HITS)?;
    Ok(Json(state.orders.customers(&q, limit).await?))
}

/// `GET /api/products?q=&limit=` → active products whose name or id contains `q`, with their
/// synced prices.
async fn products(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<ProductHit>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = filter("q", query.q)?.unwrap_or_default();
    let limit = limit(query.limit, 20, crate::server::orders::MAX_HITS)?;
    Ok(Json(state.orders.products(&q, limit).await?))
}

fn draft_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("`{raw}` is not a draft number")))
}

fn draft_input(headers: &HeaderMap, body: &Bytes) -> Result<DraftInput, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Unprocessable(
            "the body must be a draft: {\"customer_id\", \"lines\": [{\"product_id\", \"quantity\"}], \"note\"?}"
                .into(),
        ));
    }
    json_body(headers, body)
}

/// `GET /api/drafts` → every draft, newest first.
async fn list_drafts(State(state): State<AppState>) -> Result<Json<Vec<Draft>>, ApiError> {
    Ok(Json(state.orders.drafts().await?))
}

/// `POST /api/drafts {customer_id, lines: [{product_id, quantity}], note?}` → 201 the draft.
async fn create_draft(
    State(state): State<AppState>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let input = draft_input(&headers, &body)?;
    let draft = state.orders.create(&input, &who.0.actor().label()).await?;
    Ok((StatusCode::CREATED, Json(draft)))
}

/// `GET /api/drafts/{id}` → the draft.
async fn get_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Draft>, ApiError> {
    Ok(Json(state.orders.draft(draft_id(&id)?).await?))
}

/// `PUT /api/drafts/{id}` with the whole draft → the draft; 409 once exported.
async fn update_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Draft>, ApiError> {
    let id = draft_id(&id)?;
    let input = draft_input(&headers, &body)?;
    Ok(Json(
        state
            .orders
            .update(id, &input, &who.0.actor().label())
            .await?,
    ))
}

/// `DELETE /api/drafts/{id}` → 204; 409 once exported.
async fn delete_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.orders.delete(draft_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/drafts/{id}/ready` → the draft, ready: the daily sync's export step sends it.
async fn ready(
    State(state): State<AppState>,
    Path(id): Path<String>,
    who: Caller,
) -> Result<Json<Draft>, ApiError> {
    Ok(Json(
        state
            .orders
            .mark_ready(draft_id(&id)?, &who.0.actor().label())
            .await?,
    ))
}

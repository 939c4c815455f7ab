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
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::{
    error::ApiError,
    extract::{filter, json_body, limit, Caller},
};
use crate::{
    model::{CustomerHit, Draft, DraftInput, ProductHit, SmartSyncAnswer},
    server::state::AppState,
};

/// The OpenAPI operations of these routes.
#[derive(OpenApi)]
#[openapi(paths(
    smart_sync,
    heartbeat,
    resume_syncs,
    customers,
    products,
    list_drafts,
    create_draft,
    get_draft,
    update_draft,
    delete_draft,
    ready
))]
pub struct Doc;

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

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TabBody {
    /// The random id the page keeps for its tab.
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

/// The order form opened (or opened again) in a tab: its lease begins; the first open form
/// refreshes the customers and holds other exclusive syncs until the last one closes.
#[utoipa::path(
    post,
    path = "/api/customers/smart-sync",
    tag = "orders",
    params(("tab_id" = Option<String>, Query, description = "The tab's id, when not in the body")),
    request_body = TabBody,
    responses((status = 200, description = "The lease and the customers' refresh", body = SmartSyncAnswer)),
)]
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

/// The form is still open; an ended lease (timed out, vanished) stays ended and the answer says
/// so.
#[utoipa::path(
    post,
    path = "/api/customers/smart-sync/heartbeat",
    tag = "orders",
    params(("tab_id" = Option<String>, Query, description = "The tab's id, when not in the body")),
    request_body = TabBody,
    responses((status = 200, description = "The lease", body = SmartSyncAnswer)),
)]
async fn heartbeat(
    State(state): State<AppState>,
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SmartSyncAnswer>, ApiError> {
    let tab = tab_id(query, &headers, &body)?;
    Ok(Json(state.engine.smart_heartbeat(&tab).await?))
}

/// What closing a form ended.
#[derive(Debug, Serialize, ToSchema)]
struct Resumed {
    /// Why the lease ended (`closed`), or null when it had ended already.
    ended: Option<String>,
    /// Forms still open.
    active_tabs: u32,
}

/// The form closed (`navigator.sendBeacon` may send the tab as `?tab_id=` with no body); after
/// the last one the waiting syncs run at once.
#[utoipa::path(
    post,
    path = "/api/customers/resume-syncs",
    tag = "orders",
    params(("tab_id" = Option<String>, Query, description = "The tab's id, when not in the body")),
    request_body = TabBody,
    responses((status = 200, description = "What ended", body = Resumed)),
)]
async fn resume_syncs(
    State(state): State<AppState>,
    query: Result<Query<TabQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Resumed>, ApiError> {
    let tab = tab_id(query, &headers, &body)?;
    let ended = state.engine.smart_close(&tab).await?;
    let active_tabs = match &ended {
        Some(e) => e.active_tabs,
        None => state.engine.smart_live().await? as u32,
    };
    Ok(Json(Resumed {
        ended: ended.and_then(|e| e.reason),
        active_tabs,
    }))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
}

/// Customers whose name or id contains `q`, by name.
#[utoipa::path(
    get,
    path = "/api/customers",
    tag = "orders",
    params(
        ("q" = Option<String>, Query, description = "Text in the name or id"),
        ("limit" = Option<u32>, Query, description = "Hits, from 1 (default 20)"),
    ),
    responses((status = 200, description = "The customers", body = Vec<CustomerHit>)),
)]
async fn customers(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<CustomerHit>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = filter("q", query.q)?.unwrap_or_default();
    let limit = limit(query.limit, 20, crate::server::orders::MAX_HITS)?;
    Ok(Json(state.orders.customers(&q, limit).await?))
}

/// Active products whose name or id contains `q`, with their synced prices.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "orders",
    params(
        ("q" = Option<String>, Query, description = "Text in the name or id"),
        ("limit" = Option<u32>, Query, description = "Hits, from 1 (default 20)"),
    ),
    responses((status = 200, description = "The products", body = Vec<ProductHit>)),
)]
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

/// Every draft order, newest first.
#[utoipa::path(
    get,
    path = "/api/drafts",
    tag = "orders",
    responses((status = 200, description = "The drafts", body = Vec<Draft>)),
)]
async fn list_drafts(State(state): State<AppState>) -> Result<Json<Vec<Draft>>, ApiError> {
    Ok(Json(state.orders.drafts().await?))
}

/// Creates a draft order; 422 names each field that cannot be used.
#[utoipa::path(
    post,
    path = "/api/drafts",
    tag = "orders",
    request_body = DraftInput,
    responses((status = 201, description = "The draft", body = Draft)),
)]
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

/// One draft order.
#[utoipa::path(
    get,
    path = "/api/drafts/{id}",
    tag = "orders",
    params(("id" = i64, Path, description = "The draft's number")),
    responses((status = 200, description = "The draft", body = Draft)),
)]
async fn get_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Draft>, ApiError> {
    Ok(Json(state.orders.draft(draft_id(&id)?).await?))
}

/// Replaces a draft order; 409 once exported.
#[utoipa::path(
    put,
    path = "/api/drafts/{id}",
    tag = "orders",
    params(("id" = i64, Path, description = "The draft's number")),
    request_body = DraftInput,
    responses((status = 200, description = "The draft", body = Draft)),
)]
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

/// Deletes a draft order; 409 once exported.
#[utoipa::path(
    delete,
    path = "/api/drafts/{id}",
    tag = "orders",
    params(("id" = i64, Path, description = "The draft's number")),
    responses((status = 204, description = "Deleted")),
)]
async fn delete_draft(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.orders.delete(draft_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks a draft ready: the daily sync's export step sends it.
#[utoipa::path(
    post,
    path = "/api/drafts/{id}/ready",
    tag = "orders",
    params(("id" = i64, Path, description = "The draft's number")),
    responses((status = 200, description = "The draft", body = Draft)),
)]
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

//! Server functions of the order form: smart customer sync for this tab (open, heartbeat,
//! close), the customers and products to pick, and drafts. Thin calls into the engine and
//! `server::orders`; who may call which is declared in `server/http/access/rules.rs`.

use leptos::{prelude::*, server_fn::codec::Json};

use super::UiError;
use crate::model::{CustomerHit, Draft, DraftInput, ProductHit, SmartSyncAnswer};

/// The order form opened in tab `tab_id`: refresh the customers, hold the other syncs.
#[server(prefix = "/api/fn", endpoint = "smart_open")]
pub async fn smart_open(tab_id: String) -> Result<SmartSyncAnswer, UiError> {
    let state = super::server::state()?;
    let who = super::server::who().actor().label();
    state
        .engine
        .smart_open(&tab_id, &who)
        .await
        .map_err(UiError::from)
}

/// The order form in tab `tab_id` is still open.
#[server(prefix = "/api/fn", endpoint = "smart_heartbeat")]
pub async fn smart_heartbeat(tab_id: String) -> Result<SmartSyncAnswer, UiError> {
    let state = super::server::state()?;
    state
        .engine
        .smart_heartbeat(&tab_id)
        .await
        .map_err(UiError::from)
}

/// The order form in tab `tab_id` closed.
#[server(prefix = "/api/fn", endpoint = "smart_close")]
pub async fn smart_close(tab_id: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    state
        .engine
        .smart_close(&tab_id)
        .await
        .map(|_| ())
        .map_err(UiError::from)
}

/// Customers whose name or id contains `q`.
#[server(prefix = "/api/fn", endpoint = "search_customers")]
pub async fn search_customers(q: String) -> Result<Vec<CustomerHit>, UiError> {
    let state = super::server::state()?;
    let q = crate::server::http::extract::filter("q", Some(q))
        .map_err(UiError::from)?
        .unwrap_or_default();
    state
        .orders
        .customers(&q, 12)
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// Active products whose name or id contains `q`, with their prices.
#[server(prefix = "/api/fn", endpoint = "search_products")]
pub async fn search_products(q: String) -> Result<Vec<ProductHit>, UiError> {
    let state = super::server::state()?;
    let q = crate::server::http::extract::filter("q", Some(q))
        .map_err(UiError::from)?
        .unwrap_or_default();
    state
        .orders
        .products(&q, 12)
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// Every draft, newest first.
#[server(prefix = "/api/fn", endpoint = "list_drafts")]
pub async fn list_drafts() -> Result<Vec<Draft>, UiError> {
    let state = super::server::state()?;
    state
        .orders
        .drafts()
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// One draft.
#[server(prefix = "/api/fn", endpoint = "get_draft")]
pub async fn get_draft(id: i64) -> Result<Draft, UiError> {
    let state = super::server::state()?;
    state.orders.draft(id).await.map_err(UiError::from)
}

/// Saves a draft: a new one without `id`, else changes draft `id`.
#[server(prefix = "/api/fn", endpoint = "save_draft", input = Json)]
pub async fn save_draft(id: Option<i64>, input: DraftInput) -> Result<Draft, UiError> {
    let state = super::server::state()?;
    let who = super::server::who().actor().label();
    match id {
        None => state.orders.create(&input, &who).await,
        Some(id) => state.orders.update(id, &input, &who).await,
    }
    .map_err(UiError::from)
}

/// Deletes a draft.
#[server(prefix = "/api/fn", endpoint = "delete_draft")]
pub async fn delete_draft(id: i64) -> Result<(), UiError> {
    let state = super::server::state()?;
    state.orders.delete(id).await.map_err(UiError::from)
}

/// Marks a draft ready for export.
#[server(prefix = "/api/fn", endpoint = "mark_draft_ready")]
pub async fn mark_draft_ready(id: i64) -> Result<Draft, UiError> {
    let state = super::server::state()?;
    let who = super::server::who().actor().label();
    state
        .orders
        .mark_ready(id, &who)
        .await
        .map_err(UiError::from)
}

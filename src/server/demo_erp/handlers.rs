//! The demo ERP's routes: listing an entity page by page, importing orders and web products,
//! seed 004's employee workers, the info page and the tick.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{outage, refuse, DemoErp, ENTITIES, MAX_PAGE};

pub(super) async fn info(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({
        "name": "Baton demo ERP",
        "generation": erp.generation(),
        "entities": erp.counts(),
        "imported_orders": erp.imported_orders(),
    }))
}

pub(super) async fn tick(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({ "generation": erp.tick() }))
}

pub(super) async fn imported(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({ "count": erp.imported_orders() }))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    updated_since: Option<String>,
}

fn number(name: &str, value: &Option<String>) -> Result<Option<usize>, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("`{name}` must be a whole number, not `{text}`")),
    }
}

pub(super) async fn list(
    State(erp): State<Arc<DemoErp>>,
    Path(entity): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(entity) = ENTITIES.iter().find(|e| **e == entity) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no entity `{entity}`; there are {}", ENTITIES.join(", ")),
        );
    };
    let parsed = (|| {
        let size = number("per_page", &query.per_page)?
            .or(number("limit", &query.limit)?)
            .unwrap_or(100);
        if size == 0 || size > MAX_PAGE {
            return Err(format!("a page holds 1 to {MAX_PAGE} records, not {size}"));
        }
        let start = match (
            number("page", &query.page)?,
            number("offset", &query.offset)?,
        ) {
            (Some(0), _) => return Err("`page` counts from 1".to_string()),
            (Some(page), _) => (page - 1)
                .checked_mul(size)
                .ok_or_else(|| format!("`page` {page} is past any data"))?,
            (None, Some(offset)) => offset,
            (None, None) => number("cursor", &query.cursor)?.unwrap_or(0),
        };
        let since = match &query.updated_since {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|_| format!("`updated_since` must be an RFC 3339 time, not `{text}`"))?
                    .with_timezone(&Utc),
            ),
        };
        Ok((size, start, since))
    })();
    let (size, start, since) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let data = erp.data.read().unwrap_or_else(|p| p.into_inner());
    let slots = &data.entities[entity];
    let matching: Vec<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.removed)
        .filter(|(_, s)| since.is_none_or(|since| data.times[s.updated_gen as usize] > since))
        .map(|(i, _)| i)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|&i| {
            erp.record(
                entity,
                i,
                slots[i],
                data.times[slots[i].updated_gen as usize],
            )
        })
        .collect();
    let end = start + page.len();
    let next_cursor = (end < matching.len()).then(|| end.to_string());
    Json(json!({
        "data": page,
        "total": matching.len(),
        "next_cursor": next_cursor,
        "generation": data.generation,
    }))
    .into_response()
}

pub(super) async fn import_orders(
    State(erp): State<Arc<DemoErp>>,
    body: axum::body::Bytes,
) -> Response {
    let orders: Vec<Value> = match serde_json::from_slice(&body) {
        Ok(Value::Array(orders)) => orders,
        Ok(_) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "expected a JSON array of orders",
            )
        }
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {err}"),
            )
        }
    };
    let mut ids = Vec::with_capacity(orders.len());
    for (i, order) in orders.iter().enumerate() {
        let Some(id) = order
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("order {i} has no `id`"),
            );
        };
        if !order.get("lines").is_some_and(Value::is_array) {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("order {id} has no `lines` array"),
            );
        }
        ids.push(id.to_string());
    }
    let mut imported = erp.imported.lock().unwrap_or_else(|p| p.into_inner());
    let before = imported.len();
    imported.extend(ids.iter().cloned());
    let accepted = imported.len() - before;
    Json(json!({ "accepted": accepted, "duplicates": ids.len() - accepted })).into_response()
}

/// `POST /api/web/import`: the web shop's side of the web export (products with an `id`).
pub(super) async fn import_web(body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => match items.iter().position(|i| i.get("id").is_none()) {
            Some(i) => refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("item {i} has no `id`"),
            ),
            None => Json(json!({ "accepted": items.len() })).into_response(),
        },
        Ok(_) => refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected a JSON array of products",
        ),
        Err(err) => refuse(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {err}"),
        ),
    }
}

/// `POST /api/employees/{snapshot|history|changes}`: seed 004's three worker functions, with
/// counts that follow the generation.
pub(super) async fn employees(
    State(erp): State<Arc<DemoErp>>,
    Path(step): Path<String>,
) -> Response {
    let g = u64::from(erp.generation());
    let employees = 110 + g % 7;
    match step.as_str() {
        "snapshot" => Json(json!({
            "processed": employees,
            "created": g % 3,
            "message": format!("snapshot of {employees} employees"),
        }))
        .into_response(),
        "history" => Json(json!({
            "processed": employees - 11,
            "message": format!("history of {} employees", employees - 11),
            "warnings": ["2 employees have no contract history"],
        }))
        .into_response(),
        "changes" => Json(json!({
            "processed": employees,
            "changes": 3 + g % 5,
            "message": format!("{} changes detected", 3 + g % 5),
        }))
        .into_response(),
        _ => refuse(
            StatusCode::NOT_FOUND,
            format!("no worker `{step}`; there are snapshot, history, changes"),
        ),
    }
}

impl DemoErp {
    /// The routes, under `/api`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api", get(info))
            .route("/api/_tick", post(tick))
            .route("/api/_outage", post(outage::outage))
            .route("/api/orders/import", post(import_orders))
            .route("/api/orders/imported", get(imported))
            .route("/api/web/import", post(import_web))
            .route("/api/employees/{step}", post(employees))
            .route("/api/{entity}", get(list))
            .layer(middleware::from_fn_with_state(self.clone(), outage::behave))
            .with_state(self)
    }
}

//! The demo ERP: a small JSON API with deterministic generated data for the six entities
//! (customers, products, prices, orders, invoices, ddt), so Baton syncs something real out of
//! the box. `baton serve` without `[connections]` runs it in-process; `baton demo-erp` runs it
//! alone.
//!
//! - `GET /api/<entity>`: paged with `page` + `per_page`, `offset` + `limit`, or `cursor` +
//!   `limit` (at most 1,000 per page), optionally `updated_since=<RFC 3339>`; answers
//!   `{"data": [...], "total", "next_cursor"}`.
//! - `POST /api/orders/import`: accepts exported orders (a JSON array of objects with `id` and
//!   `lines`); the same id twice counts as a duplicate, not a second order.
//! - `POST /api/_tick`: moves the data on one generation now (it also moves on its own every
//!   `change_every`): per entity, records/1000 added, records/200 changed and records/2000
//!   removed, chosen by a fixed hash, so every run sees the same data for the same generation.
//! - `POST /api/_outage {"path": "/api/customers", "status": 422, "requests": 1}`: answers the
//!   next `requests` requests to `path` with `status` (400–599), to watch a sync fail and be
//!   retried.
//! - `GET /api`: the generation and the live count of each entity.
//!
//! `latency` delays every answer; `failure_rate` answers that share of requests with 503 and
//! `Retry-After: 1`.

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    extract::{Path, Query, Request, State},
    http::{header::RETRY_AFTER, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The entities it serves.
pub const ENTITIES: [&str; 6] = [
    "customers",
    "products",
    "prices",
    "orders",
    "invoices",
    "ddt",
];

/// Largest page it serves.
pub const MAX_PAGE: usize = 1000;

/// How the demo ERP behaves.
#[derive(Clone, Debug)]
pub struct DemoErpSettings {
    /// Records per entity at generation 0.
    pub records: u32,
    /// Delay before every answer.
    pub latency: Duration,
    /// Share of requests answered 503 (0 to 1).
    pub failure_rate: f64,
    /// How often the data moves on by itself; `None`: only on `POST /api/_tick`.
    pub change_every: Option<Duration>,
}

impl Default for DemoErpSettings {
    fn default() -> Self {
        Self {
            records: 10_000,
            latency: Duration::ZERO,
            failure_rate: 0.0,
            change_every: None,
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    version: u32,
    updated_gen: u32,
    removed: bool,
}

struct Data {
    generation: u32,
    /// When each generation began; generation 0 is a fixed date.
    times: Vec<DateTime<Utc>>,
    entities: BTreeMap<&'static str, Vec<Slot>>,
}

/// A running demo ERP's data and counters.
pub struct DemoErp {
    settings: DemoErpSettings,
    data: RwLock<Data>,
    imported: Mutex<HashSet<String>>,
    /// Planned outages (`POST /api/_outage`): path, status, requests left.
    outages: Mutex<Vec<(String, StatusCode, u32)>>,
}

/// splitmix64: a fixed, well-mixed hash of a number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a>(items: &[&'a str], seed: u64) -> &'a str {
    items[(seed % items.len() as u64) as usize]
}

const FIRST: &[&str] = &[
    "Anna", "Marco", "Giulia", "Luca", "Sofia", "Paolo", "Elena", "Davide", "Chiara", "Matteo",
];
const LAST: &[&str] = &[
    "Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti",
];
const CITIES: &[&str] = &[
    "Milano", "Torino", "Bologna", "Verona", "Padova", "Firenze", "Bergamo", "Brescia",
];
const GOODS: &[&str] = &[
    "Bolt", "Hinge", "Bracket", "Valve", "Gasket", "Spring", "Clamp", "Washer", "Fitting", "Seal",
];
const SIZES: &[&str] = &["M4", "M6", "M8", "M10", "M12", "S", "L", "XL"];
const CARRIERS: &[&str] = &["BRT", "GLS", "SDA", "DHL", "TNT"];

impl DemoErp {
    /// A demo ERP at generation 0 (with at least one record per entity).
    pub fn new(mut settings: DemoErpSettings) -> Arc<Self> {
        settings.records = settings.records.max(1);
        let slots = vec![
            Slot {
                version: 0,
                updated_gen: 0,
                removed: false
            };
            settings.records as usize
        ];
        let entities = ENTITIES.iter().map(|e| (*e, slots.clone())).collect();
        let epoch = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Arc::new(Self {
            settings,
            data: RwLock::new(Data {
                generation: 0,
                times: vec![epoch],
                entities,
            }),
            imported: Mutex::new(HashSet::new()),
            outages: Mutex::new(Vec::new()),
        })
    }

    /// The current generation.
    pub fn generation(&self) -> u32 {
        self.data
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// How many orders were imported (distinct ids).
    pub fn imported_orders(&self) -> usize {
        self.imported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Moves the data on one generation; returns the new one.
    pub fn tick(&self) -> u32 {
        let records = self.settings.records.max(1) as u64;
        let (adds, changes, removes) = (
            (records / 1000).max(1),
            (records / 200).max(1),
            (records / 2000).max(1),
        );
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        data.generation += 1;
        let g = data.generation;
        // Never the same instant as the generation before, so `updated_since` separates them.
        let now = Utc::now()
            .max(*data.times.last().expect("generation 0") + chrono::Duration::microseconds(1));
        data.times.push(now);
        for (e, entity) in ENTITIES.iter().enumerate() {
            let slots = data.entities.get_mut(entity).expect("every entity");
            let before = slots.len() as u64;
            if before == 0 {
                continue;
            }
            let seed = (u64::from(g) << 32) | ((e as u64) << 24);
            for j in 0..changes {
                let slot = &mut slots[(mix(seed | j) % before) as usize];
                if !slot.removed {
                    slot.version += 1;
                    slot.updated_gen = g;
                }
            }
            for j in 0..removes {
                let slot = &mut slots[(mix(seed | (1 << 20) | j) % before) as usize];
                if !slot.removed {
                    slot.removed = true;
                    slot.updated_gen = g;
                }
            }
            for _ in 0..adds {
                slots.push(Slot {
                    version: 0,
                    updated_gen: g,
                    removed: false,
                });
            }
        }
        g
    }

    /// The live count of each entity.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        data.entities
            .iter()
            .map(|(e, slots)| (*e, slots.iter().filter(|s| !s.removed).count()))
            .collect()
    }

    /// Record `i` of `entity` as it is at `version`.
    fn record(&self, entity: &str, i: usize, slot: Slot, updated_at: DateTime<Utc>) -> Value {
        let n = i as u64 + 1;
        let h = mix(n ^ 0xDE40);
        let v = u64::from(slot.version);
        let records = u64::from(self.settings.records.max(1));
        let updated_at = updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match entity {
            "customers" => json!({
                "id": format!("C{n:05}"),
                "name": format!("{} {}", pick(FIRST, h), pick(LAST, h >> 8)),
                "email": format!("customer{n}@example.com"),
                "city": pick(CITIES, (h >> 16) + v),
                "vat": format!("IT{:011}", h % 100_000_000_000),
                "credit_limit_cents": 100_000 + (h % 50) * 10_000 + v * 5_000,
                "updated_at": updated_at,
            }),
            "products" => json!({
                "id": format!("P{n:05}"),
                "name": format!("{} {}", pick(GOODS, h), pick(SIZES, h >> 8)),
                "category": pick(GOODS, h >> 16).to_lowercase(),
                "unit": "pcs",
                "active": !(h + v).is_multiple_of(17),
                "updated_at": updated_at,
            }),
            // One price per product, except that every 250th price names the next product, so
            // some products have no price (the daily sync's validation finds them).
            "prices" => json!({
                "id": format!("PR{n:05}"),
                "product_id": format!("P{:05}", if n % 250 == 3 { n + 1 } else { n }),
                "price_cents": 150 + (h % 9_000) + v * 25,
                "currency": "EUR",
                "updated_at": updated_at,
            }),
            // Every 997th order is for a customer the ERP does not know.
            "orders" => {
                let customer = if n % 997 == 13 {
                    records * 10 + n
                } else {
                    1 + h % records
                };
                let lines: Vec<Value> = (0..1 + h % 4)
                    .map(|l| {
                        json!({
                            "product_id": format!("P{:05}", 1 + mix(h + l) % records),
                            "quantity": 1 + (mix(h ^ l) + v) % 20,
                        })
                    })
                    .collect();
                json!({
                    "id": format!("O{n:06}"),
                    "customer_id": format!("C{customer:05}"),
                    "date": (Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
                        + chrono::Duration::hours((n * 3) as i64)).date_naive().to_string(),
                    "status": if (slot.updated_gen > 0 && slot.version == 0) || (h + v).is_multiple_of(10) { "ready" } else { "invoiced" },
                    "lines": lines,
                    "total_cents": 1_000 + (h % 200_000) + v * 100,
                    "updated_at": updated_at,
                })
            }
            "invoices" => json!({
                "id": format!("F{n:06}"),
                "order_id": format!("O{n:06}"),
                "amount_cents": 1_000 + (h % 200_000),
                "due_date": (Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::hours((n * 3) as i64)).date_naive().to_string(),
                "paid": (h + v).is_multiple_of(3),
                "updated_at": updated_at,
            }),
            _ => json!({
                "id": format!("D{n:06}"),
                "order_id": format!("O{n:06}"),
                "carrier": pick(CARRIERS, h + v),
                "packages": 1 + (h + v) % 5,
                "updated_at": updated_at,
            }),
        }
    }

    /// The routes, under `/api`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api", get(info))
            .route("/api/_tick", post(tick))
            .route("/api/_outage", post(outage))
            .route("/api/orders/import", post(import_orders))
            .route("/api/orders/imported", get(imported))
            .route("/api/web/import", post(import_web))
            .route("/api/employees/{step}", post(employees))
            .route("/api/{entity}", get(list))
            .layer(middleware::from_fn_with_state(self.clone(), behave))
            .with_state(self)
    }

    /// Serves on `listener` until `shutdown`, moving the data on every `change_every`.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        if let Some(every) = self.settings.change_every.filter(|e| !e.is_zero()) {
            let (erp, stop) = (self.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = interval.tick() => { erp.tick(); }
                    }
                }
            });
        }
        let router = self.router();
        if let Err(err) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %err, "the demo ERP stopped");
        }
    }

    /// Binds `addr` (port 0: a free port) and serves in the background; returns the address.
    pub async fn spawn(
        self: Arc<Self>,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(self.serve(listener, shutdown));
        Ok(bound)
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Latency and simulated failures, before every route.
async fn behave(State(erp): State<Arc<DemoErp>>, request: Request, next: Next) -> Response {
    if !erp.settings.latency.is_zero() {
        tokio::time::sleep(erp.settings.latency).await;
    }
    let planned = {
        let mut outages = erp.outages.lock().unwrap_or_else(|p| p.into_inner());
        let hit = outages
            .iter_mut()
            .find(|(path, _, left)| *path == request.uri().path() && *left > 0)
            .map(|(_, status, left)| {
                *left -= 1;
                *status
            });
        outages.retain(|(_, _, left)| *left > 0);
        hit
    };
    if let Some(status) = planned {
        return refuse(
            status,
            format!(
                "a planned outage of the demo ERP ({} {})",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        );
    }
    if erp.settings.failure_rate > 0.0 && fastrand::f64() < erp.settings.failure_rate {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the demo ERP is busy (a simulated failure); try again in a second",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return response;
    }
    next.run(request).await
}

async fn info(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({
        "name": "Baton demo ERP",
        "generation": erp.generation(),
        "entities": erp.counts(),
        "imported_orders": erp.imported_orders(),
    }))
}

async fn tick(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({ "generation": erp.tick() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageBody {
    path: String,
    #[serde(default = "default_outage_status")]
    status: u16,
    #[serde(default = "default_outage_requests")]
    requests: u32,
}

fn default_outage_status() -> u16 {
    503
}

fn default_outage_requests() -> u32 {
    1
}

async fn outage(State(erp): State<Arc<DemoErp>>, body: axum::body::Bytes) -> Response {
    let body: OutageBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "expected {{\"path\": \"/api/customers\", \"status\": 422, \"requests\": 1}}: {err}"
                ),
            )
        }
    };
    let status = match StatusCode::from_u16(body.status) {
        Ok(status) if (400..600).contains(&body.status) => status,
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`status` must be 400 to 599, not {}", body.status),
            )
        }
    };
    let known = body.path.strip_prefix("/api/").is_some_and(|route| {
        ENTITIES.contains(&route)
            || ["orders/import", "web/import"].contains(&route)
            || route
                .strip_prefix("employees/")
                .is_some_and(|step| !step.is_empty() && !step.contains('/'))
    });
    if !known {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "`path` must be one of the demo ERP's routes without a query: /api/<entity> ({}), \
                 /api/orders/import, /api/web/import or /api/employees/<step>; not {}",
                ENTITIES.join(", "),
                body.path
            ),
        );
    }
    if body.requests == 0 {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`requests` must be at least 1",
        );
    }
    erp.outages.lock().unwrap_or_else(|p| p.into_inner()).push((
        body.path.clone(),
        status,
        body.requests,
    ));
    Json(json!({ "path": body.path, "status": body.status, "requests": body.requests }))
        .into_response()
}

async fn imported(State(erp): State<Arc<DemoErp>>) -> Json<Value> {
    Json(json!({ "count": erp.imported_orders() }))
}

#[derive(Deserialize)]
struct ListQuery {
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

async fn list(
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

async fn import_orders(State(erp): State<Arc<DemoErp>>, body: axum::body::Bytes) -> Response {
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
async fn import_web(body: axum::body::Bytes) -> Response {
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
async fn employees(State(erp): State<Arc<DemoErp>>, Path(step): Path<String>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_generation_gives_the_same_data_and_a_tick_adds_changes_and_removes() {
        let settings = DemoErpSettings {
            records: 2000,
            ..Default::default()
        };
        let (a, b) = (DemoErp::new(settings.clone()), DemoErp::new(settings));
        let t = Utc::now();
        let slot = Slot {
            version: 0,
            updated_gen: 0,
            removed: false,
        };
        assert_eq!(
            a.record("orders", 41, slot, t),
            b.record("orders", 41, slot, t)
        );
        assert_eq!(a.counts()["customers"], 2000);
        a.tick();
        b.tick();
        // 2 added, 1 removed (changes keep the count).
        assert_eq!(a.counts()["customers"], 2001);
        let changed = |erp: &DemoErp| -> Vec<usize> {
            let data = erp.data.read().unwrap();
            data.entities["customers"]
                .iter()
                .enumerate()
                .filter(|(_, s)| s.version > 0)
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(changed(&a), changed(&b));
        assert!(!changed(&a).is_empty());
    }
}

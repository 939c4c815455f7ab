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

mod data;
mod handlers;
mod outage;

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
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

    /// The live count of each entity.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        data.entities
            .iter()
            .map(|(e, slots)| (*e, slots.iter().filter(|s| !s.removed).count()))
            .collect()
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

/// An error answer, as the demo ERP's routes give them.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
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

//! This process's identity, and the heartbeat that proves it is alive.
//!
//! The heartbeat renews the process's row in `instances` and publishes a `heartbeat` event with
//! what it found, so every open page sees both that the server is up and whether its database is.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{events::EventBus, store::InstanceRow, store::Store};
use crate::model::{DatabaseHealth, EventKind, Heartbeat};

/// Who this process is; fixed at start.
#[derive(Clone, Debug)]
pub struct Instance {
    /// UUID v7; also the future owner id of job leases.
    pub id: Uuid,
    /// When the process started.
    pub started_at: DateTime<Utc>,
    /// Host name of the machine.
    pub hostname: String,
    /// Operating-system process id.
    pub pid: u32,
}

impl Instance {
    /// The identity of the running process.
    pub fn current() -> Self {
        Self {
            id: Uuid::now_v7(),
            started_at: Utc::now(),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
        }
    }

    /// Its row in `instances`, as registered at start.
    pub fn row(&self) -> InstanceRow {
        InstanceRow {
            id: self.id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.hostname.clone(),
            pid: i64::from(self.pid),
            started_at: self.started_at,
            heartbeat_at: self.started_at,
            stopped_at: None,
        }
    }
}

/// The background service that beats on an interval.
#[derive(Clone)]
pub struct HeartbeatService {
    store: Store,
    events: EventBus,
    instance: Arc<Instance>,
    interval: Duration,
}

impl HeartbeatService {
    /// A heartbeat for `instance` every `interval`.
    pub fn new(
        store: Store,
        events: EventBus,
        instance: Arc<Instance>,
        interval: Duration,
    ) -> Self {
        Self {
            store,
            events,
            instance,
            interval,
        }
    }

    /// One beat: renew the row (bounded by the interval, so a hung database cannot stall beats),
    /// then publish what happened.
    pub async fn run_once(&self) -> Heartbeat {
        let beat = tokio::time::timeout(
            self.interval,
            self.store.beat_instance(self.instance.id, Utc::now()),
        )
        .await;
        let database = match beat {
            Ok(Ok(true)) => DatabaseHealth::Ok,
            Ok(Ok(false)) => {
                // The row is gone or marked stopped (someone cleaned the table): put it back.
                tracing::warn!(instance = %self.instance.id, "instance row missing; registering again");
                match self.store.register_instance(&self.instance.row()).await {
                    Ok(()) => DatabaseHealth::Ok,
                    Err(_) => DatabaseHealth::Unavailable,
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "heartbeat could not write to the database");
                DatabaseHealth::Unavailable
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.interval, "heartbeat: the database did not answer in time");
                DatabaseHealth::Unavailable
            }
        };
        let heartbeat = Heartbeat {
            instance_id: self.instance.id.to_string(),
            started_at: self.instance.started_at,
            database,
        };
        self.events.publish(EventKind::Heartbeat(heartbeat.clone()));
        heartbeat
    }

    /// Beats until `shutdown` is cancelled, the first time one interval after start (the row was
    /// written at registration, and nobody can be subscribed yet).
    pub async fn run(self, shutdown: CancellationToken) {
        let first = tokio::time::Instant::now() + self.interval;
        let mut ticker = tokio::time::interval_at(first, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => { self.run_once().await; }
            }
        }
    }
}

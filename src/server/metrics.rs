//! Prometheus metrics, one registry per process (per [`Metrics`] value, so tests that run several
//! servers in one binary each read their own), served at `GET /metrics` in the OpenMetrics text
//! format that Prometheus scrapes.
//!
//! Counters and histograms are updated where things happen (the engine, the lease keeper, the
//! scheduler, the HTTP stack, the event stream) and cost a few atomic adds; nothing runs per
//! idle viewer. A scrape reads the gauges that only the database knows with exactly
//! [`SCRAPE_STATEMENTS`] statements, both on indexed, small sets (the waiting and running jobs,
//! the live order-form leases); everything else is in memory.

use std::sync::{atomic::AtomicU64, Arc};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::{Registry, Unit},
};

/// Database statements one scrape runs: the live jobs by type and state, the live leases.
pub const SCRAPE_STATEMENTS: usize = 2;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub sync_type: String,
}

impl TypeLabels {
    fn of(sync_type: &str) -> Self {
        TypeLabels {
            sync_type: sync_type.into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub sync_type: String,
    /// completed, failed or cancelled.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub sync_type: String,
    /// pending or running.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FireLabels {
    pub schedule: String,
    /// fired, skipped or missed.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route as the router has it (`/api/jobs/{id}`), never the raw path, so the number of
    /// series stays bounded whatever clients send.
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// main, lease, read or write (the pools of the backend).
    pub pool: String,
    /// idle or busy.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

fn seconds_histogram() -> Histogram {
    // 1 ms doubling to about 4.6 hours: request latencies and sync durations alike.
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric Baton exports; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    jobs_finished: Family<OutcomeLabels, Counter>,
    job_duration: Histograms<OutcomeLabels>,
    job_start_latency: Histograms<TypeLabels>,
    job_retries: Family<TypeLabels, Counter>,
    job_rescues: Family<TypeLabels, Counter>,
    lease_renewals: Counter,
    lease_losses: Counter,
    jobs_live: Family<StateLabels, Gauge>,
    mutex_held: Family<TypeLabels, Gauge>,
    mutex_held_seconds: Gauge<f64, AtomicU64>,
    smart_leases: Gauge,
    schedule_fires: Family<FireLabels, Counter>,
    schedule_lateness: Histogram,
    sse_clients: Gauge,
    sse_events: Counter,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    db_connections: Family<PoolLabels, Gauge>,
    db_max_connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A new registry with every metric described; `baton_build_info` carries the version.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("baton_build_info", "Baton's version (always 1)", build);
        let mut inner = Inner {
            jobs_finished: Family::default(),
            job_duration: Family::new_with_constructor(seconds_histogram),
            job_start_latency: Family::new_with_constructor(seconds_histogram),
            job_retries: Family::default(),
            job_rescues: Family::default(),
            lease_renewals: Counter::default(),
            lease_losses: Counter::default(),
            jobs_live: Family::default(),
            mutex_held: Family::default(),
            mutex_held_seconds: Gauge::default(),
            smart_leases: Gauge::default(),
            schedule_fires: Family::default(),
            schedule_lateness: seconds_histogram(),
            sse_clients: Gauge::default(),
            sse_events: Counter::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(seconds_histogram),
            db_connections: Family::default(),
            db_max_connections: Gauge::default(),
            registry,
        };
        let r = &mut inner.registry;
        r.register(
            "baton_jobs_finished",
            "Jobs that reached an end (completed, failed, cancelled) in this process",
            inner.jobs_finished.clone(),
        );
        r.register_with_unit(
            "baton_job_duration",
            "Run time of finished jobs, from the start of their last attempt to their end",
            Unit::Seconds,
            inner.job_duration.clone(),
        );
        r.register_with_unit(
            "baton_job_start_latency",
            "From when a job was due (queued, or its retry's backoff over) to when a worker \
             claimed and started it",
            Unit::Seconds,
            inner.job_start_latency.clone(),
        );
        r.register(
            "baton_job_retries",
            "Failed attempts that went back to the queue for another try",
            inner.job_retries.clone(),
        );
        r.register(
            "baton_job_rescues",
            "Jobs taken back from a worker that stopped renewing its lease",
            inner.job_rescues.clone(),
        );
        r.register(
            "baton_lease_renewals",
            "Lease renewals of running jobs written by this process",
            inner.lease_renewals.clone(),
        );
        r.register(
            "baton_lease_losses",
            "Attempts this process stopped because it lost their lease",
            inner.lease_losses.clone(),
        );
        r.register(
            "baton_jobs",
            "Jobs waiting (pending) or running now, by type, in the whole database",
            inner.jobs_live.clone(),
        );
        r.register(
            "baton_mutex_held",
            "1 for the sync type whose job holds the global mutex (an exclusive job running)",
            inner.mutex_held.clone(),
        );
        r.register_with_unit(
            "baton_mutex_held",
            "How long the global mutex has been held by its current job (0 when free)",
            Unit::Seconds,
            inner.mutex_held_seconds.clone(),
        );
        r.register(
            "baton_smart_sync_leases",
            "Order forms open now (live smart customer sync leases)",
            inner.smart_leases.clone(),
        );
        r.register(
            "baton_schedule_fires",
            "Schedule fire times handled by this process: fired, skipped or missed",
            inner.schedule_fires.clone(),
        );
        r.register_with_unit(
            "baton_schedule_fire_lateness",
            "How long after its fire time a scheduled run was queued",
            Unit::Seconds,
            inner.schedule_lateness.clone(),
        );
        r.register(
            "baton_sse_clients",
            "Live-event streams open on this process",
            inner.sse_clients.clone(),
        );
        r.register(
            "baton_sse_events_sent",
            "Events written to live-event streams (one per event per client)",
            inner.sse_events.clone(),
        );
        r.register(
            "baton_http_requests",
            "HTTP requests answered, by route, method and status",
            inner.http_requests.clone(),
        );
        r.register_with_unit(
            "baton_http_request_duration",
            "Time to the response's head, by route and method",
            Unit::Seconds,
            inner.http_duration.clone(),
        );
        r.register(
            "baton_db_connections",
            "Database connections by pool and state",
            inner.db_connections.clone(),
        );
        r.register(
            "baton_db_max_connections",
            "The most connections the pools may open",
            inner.db_max_connections.clone(),
        );
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A job reached an end: its outcome and how long its last attempt ran.
    pub fn job_finished(&self, job: &crate::model::Job) {
        let labels = OutcomeLabels {
            sync_type: job.sync_type.clone(),
            outcome: job.state.as_str().into(),
        };
        self.inner.jobs_finished.get_or_create(&labels).inc();
        if let (Some(start), Some(end)) = (job.started_at, job.finished_at) {
            let seconds = (end - start).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
            self.inner
                .job_duration
                .get_or_create(&labels)
                .observe(seconds);
        }
    }

    /// An attempt started `latency` after the job was due.
    pub fn job_started(&self, sync_type: &str, latency: std::time::Duration) {
        self.inner
            .job_start_latency
            .get_or_create(&TypeLabels::of(sync_type))
            .observe(latency.as_secs_f64());
    }

    pub fn job_retried(&self, sync_type: &str) {
        self.inner
            .job_retries
            .get_or_create(&TypeLabels::of(sync_type))
            .inc();
    }

    pub fn job_rescued(&self, sync_type: &str) {
        self.inner
            .job_rescues
            .get_or_create(&TypeLabels::of(sync_type))
            .inc();
    }

    pub fn leases_renewed(&self, count: usize) {
        self.inner.lease_renewals.inc_by(count as u64);
    }

    pub fn lease_lost(&self) {
        self.inner.lease_losses.inc();
    }

    /// `count` fire times of a schedule were handled: `outcome` is fired, skipped or missed;
    /// `late` how long after its fire time the run was written (fired ones only).
    pub fn schedule_fired(
        &self,
        schedule: &str,
        outcome: &str,
        count: usize,
        late: Option<std::time::Duration>,
    ) {
        if count == 0 {
            return;
        }
        self.inner
            .schedule_fires
            .get_or_create(&FireLabels {
                schedule: schedule.into(),
                outcome: outcome.into(),
            })
            .inc_by(count as u64);
        if let Some(late) = late {
            self.inner.schedule_lateness.observe(late.as_secs_f64());
        }
    }

    /// Events written to live streams.
    pub fn sse_sent(&self) {
        self.inner.sse_events.inc();
    }

    /// An HTTP request answered.
    pub fn request(&self, route: &str, method: &str, status: u16, took: std::time::Duration) {
        self.inner
            .http_requests
            .get_or_create(&RequestLabels {
                route: route.into(),
                method: method.into(),
                status,
            })
            .inc();
        self.inner
            .http_duration
            .get_or_create(&RouteLabels {
                route: route.into(),
                method: method.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Sets the gauges a scrape reads from elsewhere, then renders every metric.
    pub fn render(&self, live: &Live) -> String {
        let inner = &self.inner;
        inner.jobs_live.clear();
        for (sync_type, state, count) in &live.jobs {
            inner
                .jobs_live
                .get_or_create(&StateLabels {
                    sync_type: sync_type.clone(),
                    state: state.clone(),
                })
                .set(*count);
        }
        inner.mutex_held.clear();
        match &live.mutex {
            Some((sync_type, held)) => {
                inner
                    .mutex_held
                    .get_or_create(&TypeLabels::of(sync_type))
                    .set(1);
                inner.mutex_held_seconds.set(held.as_secs_f64());
            }
            None => {
                inner.mutex_held_seconds.set(0.0);
            }
        }
        inner.smart_leases.set(live.smart_leases);
        inner.sse_clients.set(live.sse_clients);
        inner.db_connections.clear();
        for (pool, busy, idle) in &live.pools {
            for (state, n) in [("busy", busy), ("idle", idle)] {
                inner
                    .db_connections
                    .get_or_create(&PoolLabels {
                        pool: pool.to_string(),
                        state: state.into(),
                    })
                    .set(*n);
            }
        }
        inner.db_max_connections.set(live.max_connections);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &inner.registry);
        out
    }
}

/// What a scrape reads outside the registry.
#[derive(Debug, Default)]
pub struct Live {
    /// (sync type, pending|running, count).
    pub jobs: Vec<(String, String, i64)>,
    /// The type holding the mutex, and for how long.
    pub mutex: Option<(String, std::time::Duration)>,
    pub smart_leases: i64,
    pub sse_clients: i64,
    /// (pool, busy, idle).
    pub pools: Vec<(&'static str, i64, i64)>,
    pub max_connections: i64,
}

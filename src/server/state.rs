//! The one application state: given to axum as router state and to Leptos as context.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use super::{config::Config, engine::Engine, events::EventBus, instance::Instance, store::Store};

/// Everything a handler or server function needs; cheap to clone (handles and `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// The configuration the process started with.
    pub config: Arc<Config>,
    /// Leptos' own options (site root, output name).
    pub leptos: LeptosOptions,
    /// The database.
    pub store: Store,
    /// Live events for SSE streams and pollers.
    pub events: EventBus,
    /// The job engine: every request, cancel, retry and status goes through it.
    pub engine: Engine,
    /// Who this process is.
    pub instance: Arc<Instance>,
    /// The status table's writer and reader.
    pub status: super::workflows::status::StatusService,
    /// Workflow sessions: start, read, gates, retries.
    pub workflows: super::workflows::Workflows,
    /// Schedules: list, edit, run now; fires what is due.
    pub scheduler: super::schedules::Scheduler,
    /// Where the in-process demo ERP listens, in demo mode.
    pub demo_erp: Option<std::net::SocketAddr>,
    /// The in-process demo ERP itself (benchmarks change its data).
    pub demo_erp_handle: Option<Arc<super::demo_erp::DemoErp>>,
    /// The connections that accept any server certificate (`tls.insecure`), shown as a warning.
    pub insecure_tls: Vec<String>,
    /// The root token: cancelled once, on SIGINT/SIGTERM, and everything that runs stops.
    pub shutdown: CancellationToken,
    /// One slot per open live-event stream (`sse_max_clients`).
    pub sse_slots: Arc<tokio::sync::Semaphore>,
    /// Records pushes and session starts per caller (`rate_limit` a minute).
    pub limiter: Arc<super::limit::CallerLimit>,
    /// Users, sessions, tokens and the audit log.
    pub auth: super::auth::Auth,
    /// The order form: customers and products to pick, drafts.
    pub orders: super::orders::Orders,
    /// Signed webhooks by name.
    pub hooks: Arc<std::collections::BTreeMap<String, super::auth::hooks::Hook>>,
    /// The hosts and origin this server answers to.
    pub perimeter: Arc<super::auth::Perimeter>,
    /// Audit rows of refusals per address (a flood of refusals writes one a second).
    pub refusals: Arc<super::limit::CallerLimit>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

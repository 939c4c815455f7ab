//! Start-up: configuration in, a bound and migrated application out; then run it until shutdown.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{
    config::Config,
    demo_erp::{DemoErp, DemoErpSettings},
    engine::Engine,
    events::EventBus,
    http,
    instance::{HeartbeatService, Instance},
    state::AppState,
    store::Store,
    workflows::status::StatusService,
    workflows::{defs::built_in_workflows, Retention, Workflows},
};

/// A server that is bound to its port and has a migrated database, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens and migrates the database, binds the listener and registers this process.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let target = config.database_target()?;
        let store = Store::connect(&target, config.max_connections)
            .await
            .with_context(|| format!("cannot open the database {target}"))?;
        store
            .migrate()
            .await
            .with_context(|| format!("cannot migrate the database {target}"))?;
        // Bind before registering, so a start that fails here leaves no row that looks running.
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {} (BATON_ADDR)", config.addr))?;
        let instance = Arc::new(Instance::current());
        store
            .register_instance(&instance.row())
            .await
            .context("cannot register this process in the database")?;

        let mut leptos = leptos::config::get_configuration(None)
            .context("cannot read the Leptos options (LEPTOS_* variables)")?
            .leptos_options;
        if std::env::var_os("LEPTOS_ENV").is_none() {
            leptos.env = leptos::config::Env::PROD;
        }
        leptos.site_addr = listener.local_addr()?;

        tracing::info!(database = %target, instance = %instance.id, "database ready");
        let shutdown = CancellationToken::new();
        let demo_erp = if config.demo_enabled() {
            let erp = DemoErp::new(DemoErpSettings {
                records: config.demo_erp_records,
                latency: config.demo_erp_latency,
                failure_rate: config.demo_erp_failure_rate,
                change_every: Some(config.demo_erp_change_every),
            });
            let wanted = config
                .demo_erp_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let addr = erp.spawn(wanted, shutdown.clone()).await.with_context(|| {
                format!("cannot start the demo ERP on {wanted} (BATON_DEMO_ERP_ADDR)")
            })?;
            tracing::info!(
                "demo mode: the `erp` connection is the built-in demo ERP at http://{addr}/api \
                 (configure [connections] to sync your own systems)"
            );
            Some(addr)
        } else {
            None
        };
        let demo_base = demo_erp.map(|addr| format!("http://{addr}/api"));
        let task_env = config.task_env(demo_base.as_deref(), &|name| std::env::var(name).ok())?;
        let insecure_tls: Vec<String> = task_env
            .connections
            .values()
            .filter(|c| c.insecure())
            .map(|c| c.name().to_string())
            .collect();
        for name in &insecure_tls {
            tracing::warn!(
                connection = %name,
                "TLS certificate verification is OFF for connection `{name}` (tls.insecure = true):                  anyone between Baton and that server can read and change what is synced; set                  tls.ca_file instead"
            );
        }
        let events = EventBus::new(config.event_buffer);
        let engine = Engine::new(
            store.clone(),
            events.clone(),
            instance.id,
            config.engine_settings(),
            config.sync_types(&task_env)?,
        );
        let status = StatusService::new(store.clone(), events.clone());
        let workflows = Workflows::new(
            store.clone(),
            engine.clone(),
            events.clone(),
            // A workflow in baton.toml replaces the built-in one with its id.
            built_in_workflows(&engine)
                .into_iter()
                .chain(config.workflow_defs()),
        )
        .with_retention(Retention {
            sessions: config.session_keep,
            runs: 20,
            every: config.retention_interval,
        });
        let sse_slots = Arc::new(tokio::sync::Semaphore::new(config.sse_clients()));
        let limiter = Arc::new(super::limit::CallerLimit::per_minute(config.rate_limit));
        let state = AppState {
            sse_slots,
            limiter,
            status,
            workflows,
            demo_erp,
            insecure_tls,
            events,
            engine,
            config: Arc::new(config),
            leptos,
            store,
            instance,
            shutdown,
        };
        Ok(Self { listener, state })
    }

    /// The address actually bound (the real port when `addr` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The state handlers see; tests use it to publish events and inspect the store.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and runs jobs until the root token is cancelled (by a signal, or by the caller),
    /// then drains: streams end, in-flight requests get `shutdown_timeout` to finish, running jobs
    /// are asked to stop and go back to pending (within `shutdown_timeout`), the process's row is
    /// marked stopped and the pool closed.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self { listener, state } = self;
        let shutdown = state.shutdown.clone();
        let addr = listener.local_addr()?;

        // Before announcing readiness: from here on a SIGTERM means a clean stop, never a kill.
        let on_signal = super::shutdown::cancel_on_signal(shutdown.clone())
            .context("cannot install the SIGINT/SIGTERM handlers")?;
        tokio::spawn(on_signal);
        let heartbeat = HeartbeatService::new(
            state.store.clone(),
            state.events.clone(),
            state.instance.clone(),
            state.config.heartbeat_interval,
        );
        let heartbeat = tokio::spawn(heartbeat.run(shutdown.clone()));
        let engine = state
            .engine
            .start(shutdown.clone(), state.config.shutdown_timeout);
        let workflows = tokio::spawn(
            state
                .workflows
                .clone()
                .run(shutdown.clone(), state.config.poll_interval),
        );

        tracing::info!("listening on http://{addr}");
        let limits = http::serve::ServeLimits {
            max_connections: state.config.max_http_connections,
            header_read_timeout: state.config.header_read_timeout,
        };
        http::serve::serve(
            listener,
            http::router(state.clone()),
            limits,
            shutdown.clone(),
            state.config.shutdown_timeout,
        )
        .await;
        shutdown.cancel();
        let _ = heartbeat.await;
        let _ = workflows.await;
        // Running tasks save their checkpoints and their jobs go back to pending.
        let _ = engine.await;

        match state
            .store
            .stop_instance(state.instance.id, Utc::now())
            .await
        {
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not mark this process stopped"),
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

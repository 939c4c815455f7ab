//! Start-up: configuration in, a bound and migrated application out; then run it until shutdown.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{
    auth::{hooks::HookTarget, Auth, Perimeter},
    config::Config,
    demo_erp::{DemoErp, DemoErpSettings},
    engine::Engine,
    events::EventBus,
    http,
    instance::{HeartbeatService, Instance},
    schedules::Scheduler,
    state::AppState,
    store::Store,
    workflows::status::StatusService,
    workflows::{defs::built_in_workflows, Retention, Workflows},
};

/// An address as a person would type it: `localhost` for the unspecified and loopback ones.
fn shown_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

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
            let addr = erp
                .clone()
                .spawn(wanted, shutdown.clone())
                .await
                .with_context(|| {
                    format!("cannot start the demo ERP on {wanted} (BATON_DEMO_ERP_ADDR)")
                })?;
            tracing::info!(
                "demo mode: the `erp` connection is the built-in demo ERP at http://{addr}/api \
                 (configure [connections] to sync your own systems)"
            );
            Some((addr, erp))
        } else {
            None
        };
        let demo_erp_handle = demo_erp.as_ref().map(|(_, erp)| erp.clone());
        let demo_erp = demo_erp.map(|(addr, _)| addr);
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
        let scheduler = Scheduler::new(
            store.clone(),
            engine.clone(),
            workflows.clone(),
            events.clone(),
            config.schedule_defs()?,
        )
        .with_stale_after(config.stale_after);
        scheduler
            .seed(Utc::now())
            .await
            .context("cannot write the schedules to the database")?;
        scheduler
            .follow_switches()
            .await
            .context("cannot read which sync types are turned off")?;
        let sse_slots = Arc::new(tokio::sync::Semaphore::new(config.sse_clients()));
        let limiter = Arc::new(super::limit::CallerLimit::per_minute(config.rate_limit));
        let hooks = config.hooks(&|name| std::env::var(name).ok())?;
        for hook in &hooks {
            if let HookTarget::Workflow(workflow) = &hook.target {
                if !workflows.definitions().contains_key(workflow) {
                    anyhow::bail!(
                        "hooks.{}.workflow: there is no workflow `{workflow}`",
                        hook.name
                    );
                }
            }
        }
        let hooks = Arc::new(hooks.into_iter().map(|h| (h.name.clone(), h)).collect());
        let auth = Auth::new(store.clone(), config.auth_settings());
        let bound = listener.local_addr()?;
        let perimeter = Arc::new(Perimeter {
            hosts: config.allowed_hosts(bound),
            public_origin: config.public_origin(),
        });
        if let Some(token) = auth.begin_setup().await? {
            let base = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", shown_addr(bound)));
            let link = format!("{}/setup?token={token}", base.trim_end_matches('/'));
            // The terminal and the log: whoever started Baton is the one who may set it up.
            println!(
                "\nBaton has no users yet. Open this link to create the first admin (it works \
                 once, while this process runs):\n\n    {link}\n"
            );
            tracing::warn!("no users yet: create the first admin at {link}");
        }
        let state = AppState {
            demo_erp_handle,
            orders: super::orders::Orders::new(store.clone()),
            auth,
            hooks,
            perimeter,
            refusals: Arc::new(super::limit::CallerLimit::per_minute(config.audit_refusals)),
            sse_slots,
            limiter,
            status,
            workflows,
            scheduler,
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
        let scheduler = tokio::spawn(state.scheduler.clone().run(shutdown.clone()));
        let auth_retention = tokio::spawn(
            state
                .auth
                .clone()
                .run_retention(state.config.retention_interval, shutdown.clone()),
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
        let _ = scheduler.await;
        let _ = auth_retention.await;
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

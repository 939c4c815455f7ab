//! Configuration: built-in defaults, then `baton.toml`, then `BATON_*` environment variables, then
//! command-line flags, each overriding the one before. A bad value stops start-up with a message
//! that names the key and where it came from.

mod validate;

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

use super::{
    auth::{
        hooks::{Hook, HookConfig},
        AuthSettings,
    },
    catalog::{default_sync_types, SyncTypeConfig, TaskEnv, ERP},
    connectors::http::{Connection, ConnectionConfig},
    engine::{types::SyncType, EngineSettings},
    schedules::{built_in_schedules, spec::Timing, ScheduleDef},
    store::{redact_url, DatabaseTarget},
    workflows::defs::{WorkflowConfig, WorkflowDef},
};

use crate::model::ScheduleTarget;

/// The file read when neither `--config` nor `BATON_CONFIG` names one (only if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "baton.toml";

/// Every key, as written in `baton.toml`; the environment variable is `BATON_` + the key in capitals.
pub const KEYS: &[&str] = &[
    "addr",
    "data_dir",
    "database_url",
    "max_connections",
    "log",
    "log_format",
    "request_timeout",
    "body_limit",
    "max_http_connections",
    "header_read_timeout",
    "sse_max_clients",
    "sse_replay_limit",
    "rate_limit",
    "heartbeat_interval",
    "sse_keep_alive",
    "shutdown_timeout",
    "event_buffer",
    "workers",
    "lease_ttl",
    "lease_renew",
    "poll_interval",
    "retention_interval",
    "session_keep",
    "cancel_grace",
    "smart_sync_type",
    "smart_sync_timeout",
    "smart_sync_grace",
    "stale_after",
    "public_url",
    "allowed_hosts",
    "cors_origins",
    "session_idle",
    "session_max",
    "audit_keep",
    "audit_refusals",
    "demo",
    "demo_erp_addr",
    "demo_erp_latency",
    "demo_erp_failure_rate",
    "demo_erp_records",
    "demo_erp_change_every",
];

/// The settings of one Baton process.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens (`BATON_ADDR`). Port 0 picks a free port.
    pub addr: SocketAddr,
    /// Where the default SQLite database lives (`BATON_DATA_DIR`); created on first start.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…` (`BATON_DATABASE_URL`); unset means `<data_dir>/baton.db`.
    pub database_url: Option<String>,
    /// Upper bound on open database connections.
    pub max_connections: u32,
    /// Log filter in `tracing` syntax, e.g. `info,baton=debug`.
    pub log: String,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// How long a request may take before the server answers 408 (streams are exempt once open).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// HTTP connections served at once; further ones wait until one ends.
    pub max_http_connections: usize,
    /// How long a client may take to send a request's head; also how long an idle keep-alive
    /// connection stays open.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Live-event streams (`/api/events`) open at once; more get 503 (and the page polls).
    /// Unset: three quarters of `max_http_connections`, so requests always find a connection.
    pub sse_max_clients: Option<usize>,
    /// Most missed events replayed to a reconnecting stream; a longer gap is a resync.
    pub sse_replay_limit: usize,
    /// Records pushes and session starts one caller may make per minute (0: no limit).
    pub rate_limit: u32,
    /// How often the process records that it is alive and tells open pages so.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often an idle SSE stream sends a comment so proxies keep it open.
    #[serde(with = "humantime_serde")]
    pub sse_keep_alive: Duration,
    /// How long shutdown waits for in-flight requests before it gives up on them.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How many recent events are kept for clients that reconnect or poll.
    pub event_buffer: usize,
    /// Non-exclusive jobs one process runs at once (the one exclusive job comes on top).
    pub workers: usize,
    /// How long a worker's claim on a job holds without renewal; after it, another process may
    /// take the job over.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often a process renews the leases of its running jobs (and sees cancel requests made
    /// through other processes).
    #[serde(with = "humantime_serde")]
    pub lease_renew: Duration,
    /// How often the queue is checked for jobs requested through other processes or due retries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often finished jobs beyond each type's `keep` (and sessions beyond `session_keep`)
    /// are pruned.
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
    /// Workflow sessions that ended kept per workflow, with their timelines.
    pub session_keep: u32,
    /// How long a task that ignores a cancel is given before it is dropped.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// The sync type an open order form refreshes while other exclusive syncs wait. Unset:
    /// `customers` when there is such a type; `""` turns smart customer sync off.
    pub smart_sync_type: Option<String>,
    /// An order form holds the other syncs at most this long (the safety timeout).
    #[serde(with = "humantime_serde")]
    pub smart_sync_timeout: Duration,
    /// A tab that sends no heartbeat for this long (closed without saying so) lets go.
    #[serde(with = "humantime_serde")]
    pub smart_sync_grace: Duration,
    /// A sync type whose last success is older than this is `stale` (on the Syncs page, in the
    /// status, and as a `sync-late` event).
    #[serde(with = "humantime_serde")]
    pub stale_after: Duration,
    /// Where people reach Baton, e.g. `https://baton.example.com` (behind a reverse proxy): its
    /// host is allowed in `Host`, its origin in `Origin`, and `https` makes the session cookie
    /// `Secure`. Unset: the bound address and `localhost`.
    pub public_url: Option<String>,
    /// More `Host` values to answer to (`host` or `host:port`), e.g. the machine's LAN name.
    pub allowed_hosts: Vec<String>,
    /// Other sites' origins whose pages may call the API with a bearer token (CORS), e.g.
    /// `https://shop.example.com`. Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// A signed-in session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// A signed-in session ends this long after sign-in, however busy.
    #[serde(with = "humantime_serde")]
    pub session_max: Duration,
    /// How long audit log rows are kept.
    #[serde(with = "humantime_serde")]
    pub audit_keep: Duration,
    /// Refusals recorded per client address a minute (a flood of refused requests writes
    /// this many rows, not one each); 0: every one.
    pub audit_refusals: u32,
    /// Signed webhooks (`[hooks.<name>]` in `baton.toml`): `POST /api/hooks/<name>`.
    #[serde(skip_serializing)]
    pub hooks: BTreeMap<String, HookConfig>,
    /// The sync types, by name (`[sync_types.orders]` in `baton.toml`). The built-in ones are
    /// there unless a table of the same name replaces one; a table with a new name adds a type.
    #[serde(skip_serializing)]
    pub sync_types: BTreeMap<String, SyncTypeConfig>,
    /// The systems HTTP connectors talk to (`[connections.erp]` in `baton.toml`).
    #[serde(skip_serializing)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// Workflows of your own (`[workflows.<id>]` with `[[workflows.<id>.steps]]`); one named like a
    /// built-in (`daily-sync`, `employee-sync`) replaces it.
    #[serde(skip_serializing)]
    pub workflows: BTreeMap<String, WorkflowConfig>,
    /// Timings of schedules by id (`[schedules.full-sync] cron = "0 6 * * *"`): a built-in
    /// schedule's, or one for a sync type or workflow (like its own `schedule = {…}`).
    #[serde(skip_serializing)]
    pub schedules: BTreeMap<String, crate::model::ScheduleSpec>,
    /// Run the built-in demo ERP in this process and point the `erp` connection at it. Unset:
    /// on exactly when no `[connections]` are configured.
    pub demo: Option<bool>,
    /// Where the in-process demo ERP listens (`BATON_DEMO_ERP_ADDR`); unset: a free port on
    /// 127.0.0.1.
    pub demo_erp_addr: Option<SocketAddr>,
    /// How long the demo ERP takes to answer each request.
    #[serde(with = "humantime_serde")]
    pub demo_erp_latency: Duration,
    /// The share of demo ERP requests answered 503 (0 to 1), to watch retries.
    pub demo_erp_failure_rate: f64,
    /// Records per entity the demo ERP starts with.
    pub demo_erp_records: u32,
    /// How often the demo ERP's data changes (some records added, changed, removed); 0s: never.
    #[serde(with = "humantime_serde")]
    pub demo_erp_change_every: Duration,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        // The engine's defaults live with the engine.
        let engine = EngineSettings::default();
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            max_connections: 10,
            log: "info,sqlx=warn,tower_http=info".into(),
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(30),
            body_limit: 16 * 1024 * 1024,
            max_http_connections: 1024,
            header_read_timeout: Duration::from_secs(15),
            sse_max_clients: None,
            sse_replay_limit: 256,
            rate_limit: 120,
            heartbeat_interval: Duration::from_secs(10),
            sse_keep_alive: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(10),
            event_buffer: 1024,
            workers: engine.workers,
            lease_ttl: engine.lease_ttl,
            lease_renew: engine.lease_renew,
            poll_interval: engine.poll_interval,
            retention_interval: engine.retention_interval,
            session_keep: 200,
            cancel_grace: engine.cancel_grace,
            smart_sync_type: None,
            smart_sync_timeout: engine.smart_sync_timeout,
            smart_sync_grace: engine.smart_sync_grace,
            stale_after: Duration::from_secs(2 * 86_400),
            public_url: None,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            session_idle: AuthSettings::default().session_idle,
            session_max: AuthSettings::default().session_max,
            audit_keep: AuthSettings::default().audit_keep,
            audit_refusals: 600,
            hooks: BTreeMap::new(),
            sync_types: default_sync_types(),
            connections: BTreeMap::new(),
            workflows: BTreeMap::new(),
            schedules: BTreeMap::new(),
            demo: None,
            demo_erp_addr: None,
            demo_erp_latency: Duration::from_millis(20),
            demo_erp_failure_rate: 0.0,
            demo_erp_records: 10_000,
            demo_erp_change_every: Duration::from_secs(60),
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers' value alone.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct Overrides {
    /// Listen address, e.g. 127.0.0.1:3000 [env: BATON_ADDR]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Directory of the default SQLite database [env: BATON_DATA_DIR]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// postgres://… or sqlite:… [env: BATON_DATABASE_URL]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Log filter, e.g. info,baton=debug [env: BATON_LOG]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// text or json [env: BATON_LOG_FORMAT]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` / `BATON_CONFIG` is not there.
    #[error("configuration file {0} does not exist (named by --config or BATON_CONFIG)")]
    MissingFile(PathBuf),
    /// Values have the wrong type or form; the message names each key, its environment
    /// variable, and the layer the value came from.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value parsed but is out of range.
    #[error("invalid configuration: {key} (BATON_{env}): {reason}", env = .key.to_uppercase())]
    OutOfRange {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it and what would be right.
        reason: String,
    },
}

impl Config {
    /// Reads every layer. `file` is the explicit `--config` / `BATON_CONFIG` path, if any.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        Self::load_from(file, overrides, Env::prefixed("BATON_").only(KEYS))
    }

    /// [`Config::load`] with the environment layer given, so tests need not touch the process env.
    pub fn load_from(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
        env: Env,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if std::path::Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(describe)?;
        let mut config: Config = config;
        // The built-in types the file leaves alone, if what they connect to exists.
        let demo = config.demo_enabled();
        for (name, built_in) in default_sync_types() {
            let reachable = match built_in.task.as_ref().and_then(|t| t.connection()) {
                Some(connection) => {
                    config.connections.contains_key(connection) || (demo && connection == ERP)
                }
                None => true,
            };
            if reachable {
                config.sync_types.entry(name).or_insert(built_in);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// The workflows `baton.toml` defines, checked against the sync types.
    pub fn workflow_defs(&self) -> Vec<WorkflowDef> {
        self.workflows
            .iter()
            .map(|(id, w)| WorkflowDef::from_config(id, w))
            .collect()
    }

    /// The schedules: the built-in ones (the full sync at 12:00, off in demo mode; the
    /// employee sync every 6 hours), each sync type's and workflow's `schedule`, and
    /// `[schedules.<id>]`, which sets the timing of the schedule of that id. Checked when loaded.
    pub fn schedule_defs(&self) -> Result<Vec<ScheduleDef>, ConfigError> {
        let mut defs: BTreeMap<String, (String, ScheduleDef)> =
            built_in_schedules(self.demo_enabled())
                .into_iter()
                .filter(|d| match &d.target {
                    ScheduleTarget::Sync(name) => self.sync_types.contains_key(name),
                    _ => true,
                })
                .map(|d| (d.id.clone(), ("the built-in schedules".to_string(), d)))
                .collect();
        type Defs = BTreeMap<String, (String, ScheduleDef)>;
        fn add(defs: &mut Defs, key: String, def: ScheduleDef) -> Result<(), ConfigError> {
            if let Some((other, _)) = defs.get(&def.id) {
                if !other.starts_with("the built-in") && *other != key {
                    return Err(ConfigError::Invalid(format!(
                        "{key}: a schedule named `{}` is already set by {other}; rename one of them",
                        def.id
                    )));
                }
            }
            Timing::compile(&def.spec)
                .map_err(|e| ConfigError::Invalid(format!("{key}.{}: {}", e.field, e.message)))?;
            defs.insert(def.id.clone(), (key, def));
            Ok(())
        }
        for (name, ty) in &self.sync_types {
            if let Some(spec) = &ty.schedule {
                add(
                    &mut defs,
                    format!("sync_types.{name}.schedule"),
                    ScheduleDef {
                        id: name.clone(),
                        target: ScheduleTarget::Sync(name.clone()),
                        spec: spec.clone(),
                    },
                )?;
            }
        }
        for (id, workflow) in &self.workflows {
            if let Some(spec) = &workflow.schedule {
                add(
                    &mut defs,
                    format!("workflows.{id}.schedule"),
                    ScheduleDef {
                        id: id.clone(),
                        target: ScheduleTarget::Workflow(id.clone()),
                        spec: spec.clone(),
                    },
                )?;
            }
        }
        for (id, spec) in &self.schedules {
            let key = format!("schedules.{id}");
            let target = match defs.get(id) {
                Some((_, def)) => def.target.clone(),
                None if self.sync_types.contains_key(id) => ScheduleTarget::Sync(id.clone()),
                None if self.workflows.contains_key(id)
                    || ["daily-sync", "employee-sync"].contains(&id.as_str()) =>
                {
                    ScheduleTarget::Workflow(id.clone())
                }
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "{key}: there is no sync type, workflow or built-in schedule `{id}` \
                         (the built-in schedules are full-sync and employee-changes)"
                    )))
                }
            };
            defs.remove(id);
            add(
                &mut defs,
                key,
                ScheduleDef {
                    id: id.clone(),
                    target,
                    spec: spec.clone(),
                },
            )?;
        }
        Ok(defs.into_values().map(|(_, d)| d).collect())
    }

    /// How sign-in sessions behave.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            session_idle: self.session_idle,
            session_max: self.session_max,
            secure_cookie: self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            audit_keep: self.audit_keep,
        }
    }

    /// The webhooks, their secrets read with `env`; a missing secret names its key.
    pub fn hooks(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Hook>, ConfigError> {
        self.hooks
            .iter()
            .map(|(name, hook)| {
                Hook::resolve(name, hook, env).map_err(|reason| ConfigError::OutOfRange {
                    key: "hooks",
                    reason,
                })
            })
            .collect()
    }

    /// `public_url`'s origin (`https://baton.example.com`), if set.
    pub fn public_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    /// The `Host` values Baton answers to when it listens on `bound`: `public_url`'s host (with
    /// and without its port), `allowed_hosts`, the bound address, and `localhost`, `127.0.0.1`
    /// and `[::1]` with the bound port; all lower-case.
    pub fn allowed_hosts(&self, bound: SocketAddr) -> Vec<String> {
        let port = bound.port();
        let mut hosts = vec![
            bound.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if let Some(url) = self
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
        {
            if let Some(host) = url.host_str() {
                let port = url.port_or_known_default().unwrap_or(80);
                hosts.push(format!("{host}:{port}"));
                if url.port().is_none() {
                    hosts.push(host.to_string());
                }
            }
        }
        hosts.extend(self.allowed_hosts.iter().cloned());
        let mut hosts: Vec<String> = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The type order forms refresh, if smart customer sync is on.
    pub fn smart_type(&self) -> Option<String> {
        match self.smart_sync_type.as_deref().map(str::trim) {
            None => Some("customers".to_string()).filter(|t| self.sync_types.contains_key(t)),
            Some("") => None,
            Some(name) => Some(name.to_string()),
        }
    }

    /// How the job engine runs.
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            workers: self.workers,
            lease_ttl: self.lease_ttl,
            lease_renew: self.lease_renew,
            poll_interval: self.poll_interval,
            retention_interval: self.retention_interval,
            cancel_grace: self.cancel_grace,
            smart_sync_type: self.smart_type(),
            smart_sync_timeout: self.smart_sync_timeout,
            smart_sync_grace: self.smart_sync_grace,
            ..EngineSettings::default()
        }
    }

    /// Whether this process runs the demo ERP.
    pub fn demo_enabled(&self) -> bool {
        self.demo.unwrap_or(self.connections.is_empty())
    }

    /// The connections, resolved: secrets read with `env` (the process environment in
    /// production), and `erp` pointing at `demo_erp` (its base URL) in demo mode.
    pub fn task_env(
        &self,
        demo_erp: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TaskEnv, ConfigError> {
        let mut connections = BTreeMap::new();
        for (name, config) in &self.connections {
            let connection =
                Connection::resolve(name, config, env).map_err(ConfigError::Invalid)?;
            connections.insert(name.clone(), std::sync::Arc::new(connection));
        }
        if let Some(base_url) = demo_erp {
            let connection = Connection::resolve(ERP, &ConnectionConfig::new(base_url), env)
                .map_err(ConfigError::Invalid)?;
            connections.insert(ERP.to_string(), std::sync::Arc::new(connection));
        }
        let secret_vars = self
            .connections
            .values()
            .filter_map(|c| c.auth.as_ref().map(|a| a.env.clone()))
            .collect();
        Ok(TaskEnv {
            connections,
            secret_vars,
        })
    }

    /// The configured sync types, their tasks built over `env`.
    pub fn sync_types(&self, env: &TaskEnv) -> Result<Vec<SyncType>, ConfigError> {
        self.sync_types
            .iter()
            .map(|(name, config)| {
                super::catalog::build(name, config, env).map_err(ConfigError::Invalid)
            })
            .collect()
    }

    /// Live-event streams served at once: `sse_max_clients`, or three quarters of the
    /// connections.
    pub fn sse_clients(&self) -> usize {
        self.sse_max_clients
            .unwrap_or(self.max_http_connections * 3 / 4)
            .max(1)
    }

    /// The database this process uses.
    pub fn database_target(&self) -> Result<DatabaseTarget, ConfigError> {
        match self.database_url.as_deref().map(str::trim) {
            None | Some("") => Ok(DatabaseTarget::Sqlite(self.data_dir.join("baton.db"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DatabaseTarget::Postgres(url.to_string()))
            }
            Some(url) => match url
                .strip_prefix("sqlite://")
                .or(url.strip_prefix("sqlite:"))
            {
                Some(path) if !path.is_empty() => Ok(DatabaseTarget::Sqlite(path.into())),
                _ => Err(ConfigError::OutOfRange {
                    key: "database_url",
                    reason: format!(
                        "{} is not a database URL Baton knows: use postgres://user@host/db or \
                         sqlite:path/to/file.db",
                        redact_url(url)
                    ),
                }),
            },
        }
    }
}

/// One line per problem: `key (BATON_KEY) from <layer>: what is wrong`.
fn describe(error: figment::Error) -> ConfigError {
    let problems: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = match &e.metadata {
                Some(meta) => match &meta.source {
                    Some(source) => format!(" from {} {source}", meta.name),
                    None => format!(" from {}", meta.name),
                },
                None => String::new(),
            };
            if key.is_empty() {
                format!("{}{origin}", e.kind)
            } else {
                format!("{key} (BATON_{}){origin}: {}", key.to_uppercase(), e.kind)
            }
        })
        .collect();
    ConfigError::Invalid(problems.join("; "))
}

impl fmt::Debug for Config {
    /// Like the derived one, but a password in `database_url` never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("max_connections", &self.max_connections)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("request_timeout", &self.request_timeout)
            .field("body_limit", &self.body_limit)
            .field("max_http_connections", &self.max_http_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("sse_max_clients", &self.sse_clients())
            .field("sse_replay_limit", &self.sse_replay_limit)
            .field("rate_limit", &self.rate_limit)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("event_buffer", &self.event_buffer)
            .field("workers", &self.workers)
            .field("lease_ttl", &self.lease_ttl)
            .field("lease_renew", &self.lease_renew)
            .field("poll_interval", &self.poll_interval)
            .field("retention_interval", &self.retention_interval)
            .field("session_keep", &self.session_keep)
            .field("cancel_grace", &self.cancel_grace)
            .field("smart_sync_type", &self.smart_sync_type)
            .field("smart_sync_timeout", &self.smart_sync_timeout)
            .field("smart_sync_grace", &self.smart_sync_grace)
            .field("stale_after", &self.stale_after)
            .field("public_url", &self.public_url)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("cors_origins", &self.cors_origins)
            .field("session_idle", &self.session_idle)
            .field("session_max", &self.session_max)
            .field("audit_keep", &self.audit_keep)
            .field("audit_refusals", &self.audit_refusals)
            .field("hooks", &self.hooks.keys().collect::<Vec<_>>())
            .field("sync_types", &self.sync_types.keys().collect::<Vec<_>>())
            .field("connections", &self.connections.keys().collect::<Vec<_>>())
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("demo", &self.demo_enabled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        // figment reads the real environment; give each test its own prefix so they never clash.
        let prefix = format!("BATON_TEST_{}_", uuid::Uuid::now_v7().simple());
        for (key, value) in pairs {
            std::env::set_var(format!("{prefix}{key}"), value);
        }
        Env::prefixed(&prefix).only(KEYS)
    }

    #[test]
    fn defaults_listen_on_localhost_3000_with_sqlite_in_data() {
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(
            config.database_target().unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("data/baton.db"))
        );
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(
            &file,
            "addr = \"127.0.0.1:4000\"\nlog = \"debug\"\nevent_buffer = 5\n",
        )
        .unwrap();
        let overrides = Overrides {
            addr: Some("127.0.0.1:6000".into()),
            ..Default::default()
        };
        let config = Config::load_from(
            Some(&file),
            &overrides,
            env(&[("ADDR", "127.0.0.1:5000"), ("LOG", "warn")]),
        )
        .unwrap();
        assert_eq!(config.addr.port(), 6000, "flag wins");
        assert_eq!(config.log, "warn", "environment beats file");
        assert_eq!(config.event_buffer, 5, "file beats default");
    }

    #[test]
    fn a_malformed_address_names_the_key() {
        let err = Config::load_from(None, &Overrides::default(), env(&[("ADDR", "not-an-addr")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("addr (BATON_ADDR)"), "{err}");
    }

    #[test]
    fn a_duration_without_unit_is_refused_with_the_key() {
        let err = Config::load_from(
            None,
            &Overrides::default(),
            env(&[("HEARTBEAT_INTERVAL", "ten")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("HEARTBEAT_INTERVAL"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(&file, "adress = \"127.0.0.1:4000\"\n").unwrap();
        let err = Config::load_from(Some(&file), &Overrides::default(), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn a_named_config_file_that_is_missing_is_an_error_not_a_silent_default() {
        let err = Config::load_from(
            Some(std::path::Path::new("/nonexistent/baton.toml")),
            &Overrides::default(),
            env(&[]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile(_)));
    }

    #[test]
    fn out_of_range_values_name_key_and_variable() {
        let err = Config::load_from(
            None,
            &Overrides::default(),
            env(&[("MAX_CONNECTIONS", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("max_connections") && err.contains("BATON_MAX_CONNECTIONS"),
            "{err}"
        );
        let err = Config::load_from(None, &Overrides::default(), env(&[("LOG", "=== bad")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BATON_LOG"), "{err}");
    }

    #[test]
    fn live_streams_leave_connections_for_requests() {
        // By default a quarter of the connections is kept for pages and requests.
        let config = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert_eq!(config.sse_clients(), 768);
        let config = Config::load_from(
            None,
            &Overrides::default(),
            env(&[("MAX_HTTP_CONNECTIONS", "100")]),
        )
        .unwrap();
        assert_eq!(config.sse_clients(), 75);
        // Streams may not take every connection: then no request could get the 503 that
        // starts a page's polling.
        let err = Config::load_from(
            None,
            &Overrides::default(),
            env(&[("MAX_HTTP_CONNECTIONS", "100"), ("SSE_MAX_CLIENTS", "100")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("sse_max_clients") && err.contains("max_http_connections"),
            "{err}"
        );
    }

    #[test]
    fn database_urls_select_the_backend_and_unknown_schemes_are_refused() {
        let with_url = |url: &str| Config {
            database_url: Some(url.into()),
            ..Config::default()
        };
        assert_eq!(
            with_url("postgres://u@h/db").database_target().unwrap(),
            DatabaseTarget::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            with_url("sqlite:/tmp/x.db").database_target().unwrap(),
            DatabaseTarget::Sqlite("/tmp/x.db".into())
        );
        let err = with_url("mysql://root:hunter2@h/db")
            .database_target()
            .unwrap_err()
            .to_string();
        assert!(err.contains("database_url"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the password must not leak: {err}"
        );
    }

    #[test]
    fn sync_types_in_the_file_change_built_ins_and_add_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(
            &file,
            "[sync_types.orders]\npriority = 9\n\n[sync_types.hr]\npriority = 2\nexclusive = false\ntask = { kind = \"noop\" }\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&file), &Overrides::default(), env(&[])).unwrap();
        assert_eq!(config.sync_types["orders"].priority, 9);
        assert!(
            config.sync_types["orders"].exclusive,
            "unchanged keys keep their default"
        );
        assert_eq!(
            config.sync_types["orders"].task, None,
            "and its built-in task"
        );
        assert!(!config.sync_types["hr"].exclusive);
        assert!(
            config.sync_types.contains_key("products"),
            "the other built-ins stay"
        );
    }

    #[test]
    fn schedules_come_from_the_built_ins_the_types_the_workflows_and_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load_from(Some(&file), &Overrides::default(), env(&[]))
        };
        let config = load(
            "[sync_types.products]\npriority = 1\nschedule = { every = \"30m\" }\n\n\
             [schedules.full-sync]\ncron = \"0 6 * * 1-5\"\ntz = \"Europe/Rome\"\n",
        )
        .unwrap();
        let defs = config.schedule_defs().unwrap();
        let ids: Vec<_> = defs.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["employee-changes", "full-sync", "products"]);
        let full = defs.iter().find(|d| d.id == "full-sync").unwrap();
        assert_eq!(full.target, ScheduleTarget::Full);
        assert_eq!(full.spec.cron.as_deref(), Some("0 6 * * 1-5"));
        // Bad timings stop the start, naming the key and the field.
        let err =
            load("[sync_types.products]\npriority = 1\nschedule = { cron = \"0 12 * 13 *\" }\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("sync_types.products.schedule.cron: field 4 (month) `13`"),
            "{err}"
        );
        let err = load("[schedules.products]\nevery = \"100ms\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schedules.products.every"), "{err}");
        let err = load("[schedules.nightly]\nevery = \"1h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schedules.nightly: there is no sync type"),
            "{err}"
        );
        let err = load("[schedules.full-sync]\ncron = \"0 12 * * *\"\ntz = \"Rome\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schedules.full-sync.tz"), "{err}");
    }

    #[test]
    fn demo_mode_is_on_without_connections_and_built_ins_follow_the_erp_connection() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(&file, "").unwrap();
        let config = Config::load_from(Some(&file), &Overrides::default(), env(&[])).unwrap();
        assert!(config.demo_enabled());
        assert!(config.sync_types.contains_key("customers"));
        let task_env = config
            .task_env(Some("http://127.0.0.1:9/api"), &|_| None)
            .unwrap();
        assert_eq!(config.sync_types(&task_env).unwrap().len(), 14);

        // Own systems, but no `erp`: the built-in pulls have nowhere to pull from and are left out.
        std::fs::write(
            &file,
            "[connections.hr]\nbase_url = \"https://hr.example.com/v1\"\nauth = { env = \"HR_TOKEN\" }\n\n\
             [sync_types.employees]\npriority = 3\ntask = { kind = \"http_call\", connection = \"hr\", path = \"/collect\" }\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&file), &Overrides::default(), env(&[])).unwrap();
        assert!(!config.demo_enabled());
        assert!(!config.sync_types.contains_key("customers"));
        assert!(
            config.sync_types.contains_key("records")
                && config.sync_types.contains_key("employees")
        );
        // The secret is read when the server starts; its absence is named.
        let err = config.task_env(None, &|_| None).unwrap_err().to_string();
        assert!(err.contains("HR_TOKEN"), "{err}");
        let task_env = config
            .task_env(None, &|name| {
                (name == "HR_TOKEN").then(|| "t0ken".to_string())
            })
            .unwrap();
        assert_eq!(config.sync_types(&task_env).unwrap().len(), 3);
        assert!(!format!("{config:?}{task_env:?}").contains("t0ken"));

        // BATON_DEMO_ERP_ADDR and friends come from the environment like every key.
        let config = Config::load_from(
            Some(&file),
            &Overrides::default(),
            env(&[("DEMO", "true"), ("DEMO_ERP_ADDR", "127.0.0.1:3999")]),
        )
        .unwrap();
        assert!(config.demo_enabled() && config.sync_types.contains_key("customers"));
        assert_eq!(
            config.demo_erp_addr,
            Some("127.0.0.1:3999".parse().unwrap())
        );
    }

    #[test]
    fn bad_sync_types_and_lease_settings_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        for (toml, expected) in [
            ("[sync_types.\"a b\"]\npriority = 1\n", "sync_types.a b"),
            ("[sync_types.x]\nexclusive = true\n", "priority"),
            ("[sync_types.x]\npriority = 1\n", "needs a task"),
            (
                "[sync_types.x]\npriority = 1\nretry = { max_attempts = 0 }\n",
                "max_attempts",
            ),
            ("lease_ttl = \"10s\"\nlease_renew = \"6s\"\n", "lease_renew"),
            ("workers = 0\n", "workers"),
            (
                "[sync_types.x]\npriority = 1\ntask = { kind = \"http_call\", connection = \"hr\", path = \"/a\" }\n",
                "sync_types.x.task.connection: there is no [connections.hr]",
            ),
            ("[connections.hr]\nbase_url = \"ftp://x\"\n", "connections.hr.base_url"),
            ("[connections.hr]\nbase_url = \"not a url\"\n", "connections.hr.base_url"),
            ("[connections.hr]\nbase = \"http://x\"\n", "base"),
            (
                "demo = true\n[connections.erp]\nbase_url = \"http://erp.local\"\n",
                "connections.erp",
            ),
            ("demo_erp_failure_rate = 2.0\n", "demo_erp_failure_rate"),
            ("demo_erp_records = 0\n", "demo_erp_records"),
            (
                "[connections.erp]\nbase_url = \"http://erp.local\"\n[sync_types.x]\npriority = 1\ntask = { kind = \"http_pull\", connection = \"erp\", path = \"/a\", entity = \"a\", records = \"items\" }\n",
                "sync_types.x.task.records",
            ),
            (
                "[connections.erp]\nbase_url = \"http://erp.local\"\n[sync_types.x]\npriority = 1\ntask = { kind = \"http_pull\", connection = \"erp\", path = \"/a\", entity = \"a\", paging = { style = \"page\", size = 0 } }\n",
                "paging.size",
            ),
            (
                "[connections.hr]\nbase_url = \"http://hr.local\"\n[sync_types.orders]\npriority = 9\n",
                "sync_types.orders.task.connection: there is no [connections.erp]",
            ),
            (
                "[connections.erp]\nbase_url = \"http://erp.local\"\n[sync_types.out]\npriority = 1\ntask = { kind = \"export\", entity = \"orders\", only = { field = \"a.b\", value = \"x\" }, target = { kind = \"csv\", dir = \"out\", columns = [\"id\"] } }\n",
                "only.field",
            ),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load_from(Some(&file), &Overrides::default(), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
    }

    #[test]
    fn workflows_in_the_file_are_read_and_bad_ones_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baton.toml");
        std::fs::write(
            &file,
            "[workflows.nightly]\nname = \"Nightly\"\n\
             [[workflows.nightly.steps]]\nname = \"Pull\"\nsync_types = [\"orders\", \"customers\"]\n\
             [[workflows.nightly.steps]]\nname = \"Publish\"\ngate = \"Publish now\"\nsync_types = [\"web-export\"]\ncontinue_on_failure = true\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&file), &Overrides::default(), env(&[])).unwrap();
        let defs = config.workflow_defs();
        assert_eq!(defs.len(), 1);
        assert_eq!(
            (defs[0].id.as_str(), defs[0].name.as_str()),
            ("nightly", "Nightly")
        );
        assert_eq!(defs[0].steps[0].sync_types, vec!["orders", "customers"]);
        assert_eq!(defs[0].steps[1].gate.as_deref(), Some("Publish now"));
        assert!(defs[0].steps[1].continue_on_failure && !defs[0].steps[0].continue_on_failure);

        for (toml, expected) in [
            ("[workflows.w]\nsteps = []\n", "workflows.w.steps: a workflow needs at least one step"),
            (
                "[[workflows.w.steps]]\nname = \"A\"\nsync_types = [\"nope\"]\n",
                "workflows.w.steps[1].sync_types: there is no sync type `nope`; the known ones are:",
            ),
            (
                "[[workflows.w.steps]]\nname = \"A\"\nsync_types = [\"orders\", \"orders\"]\n",
                "`orders` is named twice",
            ),
            ("[[workflows.w.steps]]\nname = \"A\"\n", "workflows.w.steps[1]: a step needs sync_types"),
            (
                "[sync_types.orders]\npriority = 6\nenabled = false\n[[workflows.w.steps]]\nname = \"A\"\nsync_types = [\"orders\"]\n",
                "`orders` is disabled",
            ),
            (
                "[[workflows.w.steps]]\nname = \"A\"\nsync_types = [\"records\"]\n",
                "`records` takes records pushed",
            ),
            ("[[workflows.w.steps]]\nname = \" \"\ngate = \"Go\"\n", "workflows.w.steps[1].name"),
            ("[[workflows.w.steps]]\nname = \"A\"\ngate = \"\"\n", "workflows.w.steps[1].gate"),
            ("[[workflows.\"a b\".steps]]\nname = \"A\"\ngate = \"Go\"\n", "workflows.a b"),
            ("[[workflows.w.steps]]\nname = \"A\"\ngate = \"Go\"\nbutton = 1\n", "button"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load_from(Some(&file), &Overrides::default(), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        let config = Config {
            database_url: Some("postgres://baton:s3cret@db.local/baton".into()),
            ..Config::default()
        };
        let shown = format!("{config:?} {}", config.database_target().unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

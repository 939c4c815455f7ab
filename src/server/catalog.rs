//! The catalog of task kinds: how a `[sync_types.<name>]` table of `baton.toml` becomes a sync
//! type the engine can run, and the built-in types.
//!
//! The one module that names every connector. It sits above the engine and the connectors: the
//! engine knows only `SyncTask`, the connectors know only the engine's task interface, and this
//! module puts the two together (configuration in, `SyncType` out).
//!
//! The built-in defaults are seed 001's six, all exclusive, plus `records` (non-exclusive: it takes
//! records pushed with `POST /api/jobs`). `[sync_types.<name>]` tables in `baton.toml` change them
//! or add more; tests define their own with [`Engine::define`](super::engine::Engine::define).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    connectors::{
        call::{HttpCallConfig, HttpCallTask},
        command::{CommandConfig, CommandTask},
        export::{ExportConfig, ExportTarget, ExportTask},
        http::Connection,
        pull::{HttpPullConfig, HttpPullTask},
    },
    engine::{
        task::{NoopTask, RecordsTask, SyncTask, WaitTask},
        types::{SyncType, DEFAULT_KEEP, DEFAULT_TIMEOUT},
    },
    lifecycle::retry::RetryPolicy,
};

/// One sync type as written in `baton.toml`; every key but `priority` has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTypeConfig {
    /// Higher runs first.
    pub priority: i64,
    /// Takes the one global mutex: no other exclusive job runs at the same time.
    #[serde(default = "yes")]
    pub exclusive: bool,
    /// Whether it may be requested.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// An attempt that runs longer fails (retryably) with a timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts and backoff.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Finished jobs kept in the history; older ones are pruned in the background.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// What a job of this type does; a built-in type left without one keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskConfig>,
    /// When it runs by itself (`schedule = { every = "30m" }` or `{ cron = "0 12 * * *" }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::model::ScheduleSpec>,
}

/// Which task a sync type runs: a connector (`http_pull`, `http_call`, `command`, `export`) or
/// one of the built-in tasks (`noop`, `wait`, `records`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskConfig {
    /// Does nothing and succeeds (benchmarks measure the engine with it).
    Noop,
    /// Works through `steps` steps spread over `duration`, checkpointing after each.
    Wait {
        #[serde(with = "humantime_serde")]
        duration: Duration,
        steps: u32,
    },
    /// Upserts the records pushed with the job into the `records` table by their `id`.
    Records,
    /// Pulls a paginated JSON API into an entity, with change detection.
    HttpPull(HttpPullConfig),
    /// POSTs to a worker endpoint.
    HttpCall(HttpCallConfig),
    /// Runs a program.
    Command(CommandConfig),
    /// Sends ready records to the ERP or to CSV files.
    Export(ExportConfig),
    /// Checks the synced customers, products, prices and orders against each other.
    Validate,
}

impl TaskConfig {
    /// The connection this task uses, if any.
    pub fn connection(&self) -> Option<&str> {
        match self {
            TaskConfig::HttpPull(c) => Some(&c.connection),
            TaskConfig::HttpCall(c) => Some(&c.connection),
            TaskConfig::Export(ExportConfig {
                target: ExportTarget::Http { connection, .. },
                ..
            }) => Some(connection),
            _ => None,
        }
    }
}

/// What building a sync type's task may need: the resolved connections.
#[derive(Clone, Debug, Default)]
pub struct TaskEnv {
    /// `[connections.<name>]`, resolved (secrets read).
    pub connections: BTreeMap<String, Arc<Connection>>,
    /// The environment variables holding connection secrets, kept from `command` programs.
    pub secret_vars: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_keep() -> u32 {
    DEFAULT_KEEP
}

/// The connection the built-in types use: `[connections.erp]`, or the demo ERP.
pub const ERP: &str = "erp";

/// The built-in types: seed 001's six (exclusive, priorities 6 to 1), each an incremental
/// `http_pull` of its entity from `/<name>` on the `erp` connection; `export-orders`, which
/// sends orders whose `status` is `ready` to `/orders/import` there; and `records`.
pub fn default_sync_types() -> BTreeMap<String, SyncTypeConfig> {
    let typed = |priority: i64, task: TaskConfig| SyncTypeConfig {
        priority,
        exclusive: true,
        enabled: true,
        timeout: default_timeout(),
        retry: RetryPolicy::default(),
        keep: default_keep(),
        task: Some(task),
        schedule: None,
    };
    let mut types = BTreeMap::new();
    for (name, priority) in [
        ("orders", 6),
        ("customers", 5),
        ("ddt", 4),
        ("invoices", 3),
        ("prices", 2),
        ("products", 1),
    ] {
        let pull = HttpPullConfig::new(ERP, &format!("/{name}"), name).incremental();
        types.insert(
            name.to_string(),
            typed(priority, TaskConfig::HttpPull(pull)),
        );
    }
    types.insert(
        "export-orders".to_string(),
        typed(
            7,
            TaskConfig::Export(ExportConfig {
                entity: "orders".into(),
                only: Some(crate::server::connectors::export::OnlyWhen {
                    field: "status".into(),
                    value: "ready".into(),
                }),
                batch: 500,
                target: ExportTarget::Http {
                    connection: ERP.into(),
                    path: "/orders/import".into(),
                },
            }),
        ),
    );
    // Drafts from the order form that staff marked ready (records of `drafts`), sent where the
    // synced orders go.
    types.insert(
        "export-drafts".to_string(),
        typed(
            7,
            TaskConfig::Export(ExportConfig {
                entity: "drafts".into(),
                only: Some(crate::server::connectors::export::OnlyWhen {
                    field: "status".into(),
                    value: "ready".into(),
                }),
                batch: 500,
                target: ExportTarget::Http {
                    connection: ERP.into(),
                    path: "/orders/import".into(),
                },
            }),
        ),
    );
    types.insert(
        "validate".to_string(),
        SyncTypeConfig {
            exclusive: false,
            ..typed(0, TaskConfig::Validate)
        },
    );
    types.insert(
        "web-export".to_string(),
        typed(
            7,
            TaskConfig::Export(ExportConfig {
                entity: "products".into(),
                only: None,
                batch: 500,
                target: ExportTarget::Http {
                    connection: ERP.into(),
                    path: "/web/import".into(),
                },
            }),
        ),
    );
    for (name, path) in [
        ("employee-snapshot", "/employees/snapshot"),
        ("employee-history", "/employees/history"),
        ("employee-changes", "/employees/changes"),
    ] {
        types.insert(
            name.to_string(),
            SyncTypeConfig {
                exclusive: false,
                ..typed(
                    0,
                    TaskConfig::HttpCall(crate::server::connectors::call::HttpCallConfig {
                        connection: ERP.into(),
                        path: path.into(),
                        body: None,
                    }),
                )
            },
        );
    }
    types.insert(
        "records".to_string(),
        SyncTypeConfig {
            exclusive: false,
            ..typed(0, TaskConfig::Records)
        },
    );
    types
}

/// A type from its configuration (a built-in type without a task keeps its own; a new type
/// without one, which validation refuses, does nothing). Fails with a message naming the key
/// when the task names a connection that `env` lacks.
pub fn build(name: &str, config: &SyncTypeConfig, env: &TaskEnv) -> Result<SyncType, String> {
    let task = config.task.clone().or_else(|| {
        default_sync_types()
            .remove(name)
            .and_then(|built_in| built_in.task)
    });
    let connection = |wanted: &str| {
        env.connections.get(wanted).cloned().ok_or_else(|| {
            format!(
                "sync_types.{name}.task.connection: there is no [connections.{wanted}]; \
                 add one with its base_url"
            )
        })
    };
    let (task, takes_records, in_full): (Arc<dyn SyncTask>, bool, bool) =
        match task.unwrap_or(TaskConfig::Noop) {
            TaskConfig::Noop => (Arc::new(NoopTask), false, true),
            TaskConfig::Wait { duration, steps } => (
                Arc::new(WaitTask {
                    duration,
                    steps: steps.max(1),
                }),
                false,
                true,
            ),
            TaskConfig::Records => (Arc::new(RecordsTask::default()), true, false),
            TaskConfig::HttpPull(pull) => {
                let connection = connection(&pull.connection)?;
                (Arc::new(HttpPullTask::new(pull, connection)), false, true)
            }
            TaskConfig::HttpCall(call) => {
                let connection = connection(&call.connection)?;
                (Arc::new(HttpCallTask::new(call, connection)), false, false)
            }
            TaskConfig::Validate => (
                Arc::new(crate::server::connectors::validate::ValidateTask),
                false,
                false,
            ),
            TaskConfig::Command(command) => (
                Arc::new(CommandTask::new(command, env.secret_vars.clone())),
                false,
                true,
            ),
            TaskConfig::Export(export) => {
                let connection = match &export.target {
                    ExportTarget::Http { connection: c, .. } => Some(connection(c)?),
                    ExportTarget::Csv { .. } => None,
                };
                (Arc::new(ExportTask::new(export, connection)), false, false)
            }
        };
    Ok(SyncType {
        name: name.to_string(),
        priority: config.priority,
        exclusive: config.exclusive,
        enabled: config.enabled,
        timeout: config.timeout,
        retry: config.retry,
        keep: config.keep,
        takes_records,
        in_full,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::connectors::pull::Paging;

    #[test]
    fn the_six_built_in_types_are_exclusive_in_seed_001s_order_and_records_is_shared() {
        let types = default_sync_types();
        let mut by_priority: Vec<_> = types.iter().collect();
        by_priority.sort_by_key(|(_, t)| -t.priority);
        let names: Vec<_> = by_priority.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "export-drafts",
                "export-orders",
                "web-export",
                "orders",
                "customers",
                "ddt",
                "invoices",
                "prices",
                "products",
                "employee-changes",
                "employee-history",
                "employee-snapshot",
                "records",
                "validate",
            ]
        );
        assert!(by_priority[..9].iter().all(|(_, t)| t.exclusive));
        assert!(!types["records"].exclusive);
        let env = TaskEnv::default();
        let records = build("records", &types["records"], &env).unwrap();
        assert!(records.takes_records && !records.in_full);
        let err = build("orders", &types["orders"], &env).unwrap_err();
        assert!(err.contains("[connections.erp]"), "{err}");
    }

    #[test]
    fn a_type_in_toml_needs_only_a_priority() {
        let config: SyncTypeConfig = toml::from_str("priority = 9").unwrap();
        assert!(config.exclusive && config.enabled);
        assert_eq!(config.keep, 100);
        let config: SyncTypeConfig = toml::from_str(
            "priority = 1\nexclusive = false\ntask = { kind = \"wait\", duration = \"2s\", steps = 4 }",
        )
        .unwrap();
        assert_eq!(
            config.task,
            Some(TaskConfig::Wait {
                duration: Duration::from_secs(2),
                steps: 4
            })
        );
        let pull: SyncTypeConfig = toml::from_str(
            "priority = 1\n[task]\nkind = \"http_pull\"\nconnection = \"shop\"\npath = \"/items\"\nentity = \"items\"\npaging = { style = \"cursor\", size = 100 }\n",
        )
        .unwrap();
        let Some(TaskConfig::HttpPull(pull)) = pull.task else {
            panic!("{pull:?}")
        };
        assert_eq!(pull.key, "id");
        assert!(matches!(pull.paging, Paging::Cursor { size: 100, .. }));
        let err = toml::from_str::<SyncTypeConfig>(
            "priority = 1\ntask = { kind = \"http_pull\", connection = \"a\", path = \"/\", entity = \"e\", pages = 3 }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pages"), "{err}");
        let err = toml::from_str::<SyncTypeConfig>("priority = 1\ntask = { kind = \"teleport\" }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("teleport"), "{err}");
    }
}

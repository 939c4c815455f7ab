//! Checking a loaded configuration: every value in range, every name usable, every reference
//! (a connection, a sync type, a workflow's step) to something that exists, each refusal naming
//! its key.

use std::time::Duration;

use super::{Config, ConfigError};
use crate::server::{
    catalog::{default_sync_types, TaskConfig, ERP},
    connectors::http::{Connection, ConnectionConfig},
    engine::types::valid_name,
};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let out_of_range = |key, reason: &str| {
            Err(ConfigError::OutOfRange {
                key,
                reason: reason.to_string(),
            })
        };
        if self.max_connections == 0 {
            return out_of_range("max_connections", "must be at least 1");
        }
        if self.body_limit < 1024 {
            return out_of_range("body_limit", "must be at least 1024 bytes");
        }
        if self.max_http_connections == 0 {
            return out_of_range("max_http_connections", "must be at least 1");
        }
        if self.header_read_timeout < Duration::from_millis(100) {
            return out_of_range(
                "header_read_timeout",
                "must be at least 100ms, e.g. \"15s\"",
            );
        }
        if self.sse_max_clients == Some(0) {
            return out_of_range("sse_max_clients", "must be at least 1");
        }
        if let Some(streams) = self.sse_max_clients {
            if streams >= self.max_http_connections {
                return out_of_range(
                    "sse_max_clients",
                    &format!(
                        "must be below max_http_connections ({}): live streams that take every \
                         connection leave none for pages and requests",
                        self.max_http_connections
                    ),
                );
            }
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if parsed.is_none() {
                return out_of_range(
                    "public_url",
                    "must be the address people open, such as https://baton.example.com",
                );
            }
        }
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', ' ', '@']) || host.contains("://") {
                return out_of_range(
                    "allowed_hosts",
                    &format!("`{host}` must be a host name with an optional port, such as baton.lan:3000"),
                );
            }
        }
        for origin in &self.cors_origins {
            let ok = url::Url::parse(origin).ok().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.origin().ascii_serialization() == origin.trim_end_matches('/')
            });
            if !ok {
                return out_of_range(
                    "cors_origins",
                    &format!("`{origin}` must be an origin: scheme, host and port only, such as https://shop.example.com"),
                );
            }
        }
        if self.stale_after < Duration::from_secs(60) {
            return out_of_range("stale_after", "must be at least 1m, e.g. \"2d\"");
        }
        if self.smart_sync_grace < Duration::from_secs(1) {
            return out_of_range("smart_sync_grace", "must be at least 1s, e.g. \"60s\"");
        }
        if self.smart_sync_timeout < self.smart_sync_grace {
            return out_of_range(
                "smart_sync_timeout",
                "must be at least smart_sync_grace, e.g. \"10m\"",
            );
        }
        let smart = self.smart_sync_type.as_deref().unwrap_or("").trim();
        if !smart.is_empty() && !self.sync_types.contains_key(smart) {
            return out_of_range(
                "smart_sync_type",
                &format!("there is no sync type `{smart}`; name one, or \"\" to turn smart customer sync off"),
            );
        }
        if self.session_idle < Duration::from_secs(60) {
            return out_of_range("session_idle", "must be at least 1m, e.g. \"12h\"");
        }
        if self.session_max < self.session_idle {
            return out_of_range("session_max", "must be at least session_idle, e.g. \"7d\"");
        }
        if self.audit_keep < Duration::from_secs(24 * 3600) {
            return out_of_range("audit_keep", "must be at least 1d, e.g. \"365d\"");
        }
        for (name, hook) in &self.hooks {
            if crate::server::auth::valid_name("hook", name).is_err() {
                return out_of_range(
                    "hooks",
                    &format!("`{name}` must be 1 to 64 letters, digits, `.`, `_`, `-` or `@`"),
                );
            }
            if let Some(sync) = &hook.sync {
                if !self.sync_types.contains_key(sync) {
                    return out_of_range(
                        "hooks",
                        &format!("hooks.{name}.sync: there is no sync type `{sync}`"),
                    );
                }
            }
        }
        if self.event_buffer == 0 {
            return out_of_range("event_buffer", "must be at least 1");
        }
        if self.heartbeat_interval < Duration::from_millis(100) {
            return out_of_range("heartbeat_interval", "must be at least 100ms, e.g. \"10s\"");
        }
        if self.sse_keep_alive < Duration::from_millis(100) {
            return out_of_range("sse_keep_alive", "must be at least 100ms, e.g. \"15s\"");
        }
        if self.request_timeout.is_zero() {
            return out_of_range("request_timeout", "must be longer than zero, e.g. \"30s\"");
        }
        if self.workers == 0 {
            return out_of_range("workers", "must be at least 1");
        }
        if self.lease_ttl < Duration::from_millis(200) {
            return out_of_range("lease_ttl", "must be at least 200ms, e.g. \"30s\"");
        }
        if self.lease_renew.is_zero() || self.lease_renew * 2 > self.lease_ttl {
            return out_of_range(
                "lease_renew",
                "must be more than zero and at most half of lease_ttl, so a lease is renewed \
                 at least twice before it runs out",
            );
        }
        if self.poll_interval < Duration::from_millis(10) {
            return out_of_range("poll_interval", "must be at least 10ms, e.g. \"500ms\"");
        }
        if self.retention_interval < Duration::from_secs(1) {
            return out_of_range("retention_interval", "must be at least 1s, e.g. \"60s\"");
        }
        for (name, ty) in &self.sync_types {
            if !valid_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "sync_types.{name}: a sync type's name must be 1 to 64 letters, digits, `-` \
                     or `_`, and not `full` or `status`"
                )));
            }
            if ty.retry.max_attempts == 0 {
                return Err(ConfigError::Invalid(format!(
                    "sync_types.{name}.retry.max_attempts: must be at least 1"
                )));
            }
            if ty.task.is_none() && !default_sync_types().contains_key(name) {
                return Err(ConfigError::Invalid(format!(
                    "sync_types.{name}.task: a new sync type needs a task, e.g. \
                     task = {{ kind = \"wait\", duration = \"3s\", steps = 10 }}"
                )));
            }
            if ty.timeout.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "sync_types.{name}.timeout: must be longer than zero, e.g. \"30m\""
                )));
            }
        }
        for (name, connection) in &self.connections {
            if !valid_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "connections.{name}: a connection's name must be 1 to 64 letters, digits, `-` or `_`"
                )));
            }
            if self.demo_enabled() && name == ERP {
                return Err(ConfigError::Invalid(format!(
                    "connections.{ERP}: demo = true points `{ERP}` at the demo ERP; \
                     remove one of the two"
                )));
            }
            // Only the URL here: secrets are read when the server starts.
            Connection::resolve(
                name,
                &ConnectionConfig {
                    auth: None,
                    ..connection.clone()
                },
                &|_| None,
            )
            .map_err(ConfigError::Invalid)?;
        }
        let built_ins = default_sync_types();
        for (name, ty) in &self.sync_types {
            // A built-in type's table without `task` keeps the built-in task.
            let task = ty
                .task
                .as_ref()
                .or_else(|| built_ins.get(name).and_then(|b| b.task.as_ref()));
            if let Some(TaskConfig::HttpPull(pull)) = task {
                pull.check(&format!("sync_types.{name}.task"))
                    .map_err(ConfigError::Invalid)?;
            }
            if let Some(wanted) = task.and_then(|t| t.connection()) {
                let demo_erp = self.demo_enabled() && wanted == ERP;
                if !demo_erp && !self.connections.contains_key(wanted) {
                    return Err(ConfigError::Invalid(format!(
                        "sync_types.{name}.task.connection: there is no [connections.{wanted}]; \
                         add one with its base_url"
                    )));
                }
            }
            if let Some(TaskConfig::Export(export)) = &ty.task {
                export
                    .check(&format!("sync_types.{name}.task"))
                    .map_err(ConfigError::Invalid)?;
            }
        }
        self.validate_workflows()?;
        self.schedule_defs()?;
        if self.demo_erp_records == 0 {
            return out_of_range("demo_erp_records", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.demo_erp_failure_rate) {
            return out_of_range("demo_erp_failure_rate", "must be between 0 and 1, e.g. 0.1");
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return out_of_range("log", &format!("not a valid log filter ({err})"));
        }
        self.database_target()?;
        Ok(())
    }

    fn validate_workflows(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        for (id, workflow) in &self.workflows {
            if !valid_name(id) {
                return invalid(format!(
                    "workflows.{id}: a workflow's id must be 1 to 64 letters, digits, `-` or `_`"
                ));
            }
            if workflow
                .name
                .as_deref()
                .is_some_and(|n| n.trim().is_empty())
            {
                return invalid(format!("workflows.{id}.name: must not be empty"));
            }
            if workflow.steps.is_empty() {
                return invalid(format!(
                    "workflows.{id}.steps: a workflow needs at least one step, e.g. \
                     [[workflows.{id}.steps]] name = \"Import\" sync_types = [\"orders\"]"
                ));
            }
            for (i, step) in workflow.steps.iter().enumerate() {
                let at = format!("workflows.{id}.steps[{}]", i + 1);
                if step.name.trim().is_empty() {
                    return invalid(format!("{at}.name: must not be empty"));
                }
                if step.gate.as_deref().is_some_and(|g| g.trim().is_empty()) {
                    return invalid(format!("{at}.gate: a button label must not be empty"));
                }
                if step.sync_types.is_empty() && step.gate.is_none() {
                    return invalid(format!(
                        "{at}: a step needs sync_types to run, a gate to wait at, or both"
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                for sync_type in &step.sync_types {
                    if !self.sync_types.contains_key(sync_type) {
                        return invalid(format!(
                            "{at}.sync_types: there is no sync type `{sync_type}`; the known ones \
                             are: {}",
                            self.sync_types
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    let ty = &self.sync_types[sync_type];
                    if !ty.enabled {
                        return invalid(format!(
                            "{at}.sync_types: `{sync_type}` is disabled (enabled = false), so the \
                             step could never run it"
                        ));
                    }
                    // A built-in type's table without `task` keeps the built-in task.
                    let task = ty
                        .task
                        .clone()
                        .or_else(|| default_sync_types().remove(sync_type).and_then(|b| b.task));
                    if matches!(task, Some(TaskConfig::Records)) {
                        return invalid(format!(
                            "{at}.sync_types: `{sync_type}` takes records pushed with POST /api/jobs, \
                             which a workflow step does not have"
                        ));
                    }
                    if !seen.insert(sync_type) {
                        return invalid(format!("{at}.sync_types: `{sync_type}` is named twice"));
                    }
                }
            }
        }
        Ok(())
    }
}

//! The one table: every route, page and server function with the role it needs and how the
//! audit log records it, and the lookup of a request's rule.

use std::{collections::HashMap, sync::OnceLock};

use axum::http::Method;

use crate::model::Role;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the probes, signing in, the setup page.
    Public,
    /// Someone signed in, or with an API token, of at least this role.
    Role(Role),
    /// A webhook: its handler checks the signature.
    Signed,
}

/// How the audit log records a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audit {
    /// A read: only a refusal is recorded.
    Read,
    /// A change: one row with this action, and the target made from this template (`{id}` is a
    /// path parameter, or a server function's argument).
    Change(&'static str, Option<&'static str>),
    /// The service records its own rows (sign-in, users, tokens); here only refusals.
    Own,
}

/// One route: method (`*` for any), path as the router has it, what it needs, how it is
/// audited.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub audit: Audit,
}

const fn rule(method: &'static str, path: &'static str, access: Access, audit: Audit) -> Rule {
    Rule {
        method,
        path,
        access,
        audit,
    }
}

use Access::{Public, Signed};
use Audit::{Change, Own, Read};
const VIEWER: Access = Access::Role(Role::Viewer);
const STAFF: Access = Access::Role(Role::Staff);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route, page and server function, and who may use it.
pub const RULES: &[Rule] = &[
    // Probes and the catch-all 404 of the API.
    rule("GET", "/healthz", Public, Read),
    rule("GET", "/readyz", Public, Read),
    // Prometheus scrapes with an API token (`authorization` in its scrape config).
    rule("GET", "/metrics", VIEWER, Read),
    rule("*", "/api/{*rest}", Public, Read),
    // The API contract and the page that renders it.
    rule("GET", "/api/openapi.json", Public, Read),
    rule("GET", "/api/docs", Public, Read),
    rule("GET", "/api/docs/", Public, Read),
    rule("GET", "/api/docs/{*rest}", Public, Read),
    // Signing in, out, and the first start.
    rule("POST", "/api/auth/login", Public, Own),
    rule("POST", "/api/auth/logout", Public, Own),
    rule("POST", "/api/auth/setup", Public, Own),
    rule("POST", "/api/auth/password", VIEWER, Own),
    rule("POST", "/api/fn/whoami", Public, Read),
    // Live events.
    rule("GET", "/api/events", VIEWER, Read),
    rule("GET", "/api/events/poll", VIEWER, Read),
    // The engine.
    rule("GET", "/api/sync/status", VIEWER, Read),
    rule("POST", "/api/sync/full", STAFF, Change("sync.full", None)),
    rule(
        "POST",
        "/api/sync/{sync_type}",
        STAFF,
        Change("sync.run", Some("sync_type:{sync_type}")),
    ),
    rule("GET", "/api/sync/{sync_type}/history", VIEWER, Read),
    // Seed 002's shape of the same calls (http/compat.rs).
    rule(
        "POST",
        "/api/sync/{sync_type}/start",
        STAFF,
        Change("sync.run", Some("sync_type:{sync_type}")),
    ),
    rule("GET", "/api/sync/{sync_type}/status", VIEWER, Read),
    rule(
        "POST",
        "/api/sync/{sync_type}/cancel",
        STAFF,
        Change("job.cancel", Some("sync_type:{sync_type}")),
    ),
    rule("GET", "/api/sync/stats", VIEWER, Read),
    rule(
        "PUT",
        "/api/sync/{sync_type}/enabled",
        ADMIN,
        Change("sync_type.switch", Some("sync_type:{sync_type}")),
    ),
    // Schedules: admins change them; staff run them now.
    rule("GET", "/api/schedules", VIEWER, Read),
    rule("GET", "/api/schedules/{id}", VIEWER, Read),
    rule(
        "PUT",
        "/api/schedules/{id}",
        ADMIN,
        Change("schedule.update", Some("schedule:{id}")),
    ),
    rule("POST", "/api/schedules/{id}/preview", VIEWER, Read),
    rule(
        "POST",
        "/api/schedules/{id}/run-now",
        STAFF,
        Change("schedule.run_now", Some("schedule:{id}")),
    ),
    rule("GET", "/api/schedules/{id}/fires", VIEWER, Read),
    rule("GET", "/api/jobs", VIEWER, Read),
    rule("POST", "/api/jobs", STAFF, Change("job.submit", None)),
    rule("POST", "/api/jobs/bulk", STAFF, Change("job.bulk", None)),
    rule("GET", "/api/jobs/{id}", VIEWER, Read),
    rule(
        "POST",
        "/api/jobs/{id}/cancel",
        STAFF,
        Change("job.cancel", Some("job:{id}")),
    ),
    rule(
        "POST",
        "/api/jobs/{id}/retry",
        STAFF,
        Change("job.retry", Some("job:{id}")),
    ),
    rule("GET", "/api/jobs/{id}/logs", VIEWER, Read),
    rule("GET", "/api/changes", VIEWER, Read),
    rule("GET", "/api/info", VIEWER, Read),
    // Workflows.
    rule(
        "POST",
        "/api/sessions",
        STAFF,
        Change("session.start", None),
    ),
    rule("GET", "/api/sessions/{id}", VIEWER, Read),
    rule(
        "POST",
        "/api/sessions/{id}/steps/{step}/action",
        STAFF,
        Change("session.gate", Some("session:{id} step:{step}")),
    ),
    rule(
        "POST",
        "/api/sessions/{id}/steps/{step}/retry",
        STAFF,
        Change("session.retry_step", Some("session:{id} step:{step}")),
    ),
    rule(
        "POST",
        "/api/sessions/{id}/clear",
        STAFF,
        Change("session.clear", Some("session:{id}")),
    ),
    rule(
        "POST",
        "/api/sessions/{id}/cancel",
        STAFF,
        Change("session.cancel", Some("session:{id}")),
    ),
    rule("GET", "/api/workflows", VIEWER, Read),
    rule("GET", "/api/workflows/{id}/latest", VIEWER, Read),
    // The order form: smart customer sync, what to pick, drafts.
    rule(
        "POST",
        "/api/customers/smart-sync",
        STAFF,
        Change("smart.open", None),
    ),
    // A heartbeat every 20 s per open tab only renews a lease: not a change worth a row.
    rule("POST", "/api/customers/smart-sync/heartbeat", STAFF, Read),
    rule(
        "POST",
        "/api/customers/resume-syncs",
        STAFF,
        Change("smart.close", None),
    ),
    rule("GET", "/api/customers", VIEWER, Read),
    rule("GET", "/api/products", VIEWER, Read),
    rule("GET", "/api/drafts", VIEWER, Read),
    rule("POST", "/api/drafts", STAFF, Change("draft.create", None)),
    rule("GET", "/api/drafts/{id}", VIEWER, Read),
    rule(
        "PUT",
        "/api/drafts/{id}",
        STAFF,
        Change("draft.update", Some("draft:{id}")),
    ),
    rule(
        "DELETE",
        "/api/drafts/{id}",
        STAFF,
        Change("draft.delete", Some("draft:{id}")),
    ),
    rule(
        "POST",
        "/api/drafts/{id}/ready",
        STAFF,
        Change("draft.ready", Some("draft:{id}")),
    ),
    rule(
        "POST",
        "/api/fn/smart_open",
        STAFF,
        Change("smart.open", Some("tab:{tab_id}")),
    ),
    rule("POST", "/api/fn/smart_heartbeat", STAFF, Read),
    rule(
        "POST",
        "/api/fn/smart_close",
        STAFF,
        Change("smart.close", Some("tab:{tab_id}")),
    ),
    rule("POST", "/api/fn/search_customers", VIEWER, Read),
    rule("POST", "/api/fn/search_products", VIEWER, Read),
    rule("POST", "/api/fn/list_drafts", VIEWER, Read),
    rule("POST", "/api/fn/get_draft", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/save_draft",
        STAFF,
        Change("draft.save", None),
    ),
    rule(
        "POST",
        "/api/fn/delete_draft",
        STAFF,
        Change("draft.delete", Some("draft:{id}")),
    ),
    rule(
        "POST",
        "/api/fn/mark_draft_ready",
        STAFF,
        Change("draft.ready", Some("draft:{id}")),
    ),
    // Webhooks and the audit log.
    rule(
        "POST",
        "/api/hooks/{name}",
        Signed,
        Change("hook.deliver", Some("hook:{name}")),
    ),
    rule("GET", "/api/audit", ADMIN, Read),
    // Server functions the pages call.
    rule("POST", "/api/fn/sync_status", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/run_sync",
        STAFF,
        Change("sync.run", Some("sync_type:{sync_type}")),
    ),
    rule(
        "POST",
        "/api/fn/cancel_job",
        STAFF,
        Change("job.cancel", Some("job:{id}")),
    ),
    rule(
        "POST",
        "/api/fn/retry_job",
        STAFF,
        Change("job.retry", Some("job:{id}")),
    ),
    rule("POST", "/api/fn/list_jobs", VIEWER, Read),
    rule("POST", "/api/fn/bulk_jobs", STAFF, Change("job.bulk", None)),
    rule("POST", "/api/fn/list_sessions", VIEWER, Read),
    rule("POST", "/api/fn/job_fire", VIEWER, Read),
    rule("POST", "/api/fn/sync_stats", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/switch_type",
        ADMIN,
        Change("sync_type.switch", Some("sync_type:{sync_type}")),
    ),
    rule("POST", "/api/fn/job_logs", VIEWER, Read),
    rule("POST", "/api/fn/get_job", VIEWER, Read),
    rule("POST", "/api/fn/server_info", VIEWER, Read),
    rule("POST", "/api/fn/workflow_overview", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/start_session",
        STAFF,
        Change("session.start", Some("workflow:{workflow}")),
    ),
    rule(
        "POST",
        "/api/fn/press_gate",
        STAFF,
        Change("session.gate", Some("session:{session_id} step:{step}")),
    ),
    rule(
        "POST",
        "/api/fn/retry_step",
        STAFF,
        Change(
            "session.retry_step",
            Some("session:{session_id} step:{step}"),
        ),
    ),
    rule(
        "POST",
        "/api/fn/clear_session",
        STAFF,
        Change("session.clear", Some("session:{session_id}")),
    ),
    rule("POST", "/api/fn/recent_changes", VIEWER, Read),
    rule("POST", "/api/fn/list_schedules", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/save_schedule",
        ADMIN,
        Change("schedule.update", Some("schedule:{id}")),
    ),
    rule("POST", "/api/fn/preview_schedule", VIEWER, Read),
    rule(
        "POST",
        "/api/fn/run_schedule",
        STAFF,
        Change("schedule.run_now", Some("schedule:{id}")),
    ),
    rule("POST", "/api/fn/run_histories", VIEWER, Read),
    rule("POST", "/api/fn/list_users", ADMIN, Read),
    rule("POST", "/api/fn/add_user", ADMIN, Own),
    rule("POST", "/api/fn/set_user_role", ADMIN, Own),
    rule("POST", "/api/fn/set_user_password", ADMIN, Own),
    rule("POST", "/api/fn/remove_user", ADMIN, Own),
    rule("POST", "/api/fn/list_tokens", ADMIN, Read),
    rule("POST", "/api/fn/create_token", ADMIN, Own),
    rule("POST", "/api/fn/revoke_token", ADMIN, Own),
    rule("POST", "/api/fn/audit_log", ADMIN, Read),
    // Pages.
    rule("GET", "/", VIEWER, Read),
    rule("GET", "/tasks", VIEWER, Read),
    rule("GET", "/syncs", VIEWER, Read),
    rule("GET", "/orders/new", STAFF, Read),
    rule("GET", "/orders", VIEWER, Read),
    rule("GET", "/orders/{id}", STAFF, Read),
    rule("GET", "/admin", ADMIN, Read),
    rule("GET", "/admin/audit", ADMIN, Read),
    rule("GET", "/account", VIEWER, Read),
    rule("GET", "/login", Public, Read),
    rule("GET", "/setup", Public, Read),
];

/// The rules by (method, path); HEAD is looked up as GET.
fn table() -> &'static HashMap<(&'static str, &'static str), &'static Rule> {
    static TABLE: OnceLock<HashMap<(&'static str, &'static str), &'static Rule>> = OnceLock::new();
    TABLE.get_or_init(|| RULES.iter().map(|r| ((r.method, r.path), r)).collect())
}

/// The rule for `method` on the router path `path`.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    table()
        .get(&(method, path))
        .or_else(|| table().get(&("*", path)))
        .copied()
}

/// Whether any rule names `path` (with another method).
pub(super) fn path_known(path: &str) -> bool {
    RULES.iter().any(|r| r.path == path)
}

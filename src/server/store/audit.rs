//! The audit log: one row per change and per refusal, appended, never updated; read newest
//! first with filters; pruned only by retention.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::{
    model::{AuditEntry, Role},
    on_pool,
};

/// A row to append.
#[derive(Clone, Debug, Default)]
pub struct NewAudit {
    pub actor: String,
    /// `user`, `token`, `hook`, `system` or `anonymous`.
    pub actor_kind: &'static str,
    pub role: Option<Role>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// `done`, `refused` or `failed`.
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// What to read: every filter optional; `before` pages back.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exactly this actor (`anna`, `token:nightly`, `hook:shop`, `system`).
    pub actor: Option<String>,
    /// Actions starting with this (`job.` finds `job.cancel` and `job.retry`).
    pub action: Option<String>,
    /// Targets containing this.
    pub target: Option<String>,
    /// `done`, `refused` or `failed`.
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<i64>,
    pub limit: u32,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    actor_kind: String,
    role: Option<String>,
    address: Option<String>,
    user_agent: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    status: Option<i32>,
    reason: Option<String>,
    detail: Option<String>,
}

/// Text in the log: NUL (which Postgres cannot store) replaced, and bounded.
fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| crate::model::text::job_text(t, 500))
}

impl Store {
    /// Appends one row.
    pub async fn append_audit(&self, row: NewAudit) -> Result<(), StoreError> {
        let sql = "insert into audit_log (at, actor, actor_kind, role, address, user_agent, \
                   action, target, outcome, status, reason, detail) \
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(Utc::now())
                .bind(crate::model::text::job_text(row.actor, 200))
                .bind(row.actor_kind)
                .bind(row.role.map(Role::as_str))
                .bind(clean(row.address))
                .bind(clean(row.user_agent))
                .bind(crate::model::text::job_text(row.action, 200))
                .bind(clean(row.target))
                .bind(row.outcome)
                .bind(row.status.map(i32::from))
                .bind(clean(row.reason))
                .bind(clean(row.detail))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A page of the log, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        // Every filter is optional: `$n is null or …`. The action is a prefix and the target a
        // substring, both matched literally (no LIKE wildcards from the caller).
        let sql = "select id, at, actor, actor_kind, role, address, user_agent, action, target, \
                   outcome, status, reason, detail from audit_log \
                   where ($1 is null or actor = $1) \
                   and ($2 is null or substr(action, 1, length($2)) = $2) \
                   and ($3 is null or CONTAINS) \
                   and ($4 is null or outcome = $4) \
                   and ($5 is null or at >= $5) \
                   and ($6 is null or at < $6) \
                   and ($7 is null or id < $7) \
                   order by id desc limit $8";
        let contains = match self {
            Store::Sqlite(_) => "instr(target, $3) > 0",
            Store::Postgres(_) => "strpos(target, $3) > 0",
        };
        let sql = sql.replace("CONTAINS", contains);
        let rows: Vec<AuditRow> = on_pool!(read self, pool => {
            sqlx::query_as(&sql)
                .bind(&filter.actor)
                .bind(&filter.action)
                .bind(&filter.target)
                .bind(&filter.outcome)
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.before)
                .bind(i64::from(filter.limit.clamp(1, 1000)))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                actor: r.actor,
                actor_kind: r.actor_kind,
                role: r.role.as_deref().and_then(Role::parse),
                address: r.address,
                user_agent: r.user_agent,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                status: r.status.and_then(|s| u16::try_from(s).ok()),
                reason: r.reason,
                detail: r.detail,
            })
            .collect())
    }

    /// Deletes rows older than `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "delete from audit_log where at < $1";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        }))
    }
}

//! The `instances` table: one row per server process that ever started against this database.
//!
//! A process registers at start, renews `heartbeat_at` on every heartbeat and sets `stopped_at` on a
//! clean shutdown. A row whose heartbeat is old and that never stopped is a process that died;
//! later the job rescuer uses exactly that to reclaim the leases such a process held.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::on_pool;

/// A row of `instances`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct InstanceRow {
    /// UUID v7 chosen by the process at start.
    pub id: Uuid,
    /// The Baton version it ran.
    pub version: String,
    /// Host name, to find the machine.
    pub hostname: String,
    /// Operating-system process id.
    pub pid: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last sign of life.
    pub heartbeat_at: DateTime<Utc>,
    /// When it shut down cleanly; `None` while running, or if it died.
    pub stopped_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Records a starting process.
    pub async fn register_instance(&self, row: &InstanceRow) -> Result<(), StoreError> {
        let sql = "insert into instances (id, version, hostname, pid, started_at, heartbeat_at, \
                   stopped_at) values ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(row.id)
                .bind(&row.version)
                .bind(&row.hostname)
                .bind(row.pid)
                .bind(row.started_at)
                .bind(row.heartbeat_at)
                .bind(row.stopped_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Renews a running process's heartbeat; false if it is unknown or already stopped.
    pub async fn beat_instance(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = "update instances set heartbeat_at = $2 where id = $1 and stopped_at is null";
        let done = on_pool!(self, pool => sqlx::query(sql).bind(id).bind(at).execute(pool).await?.rows_affected());
        Ok(done == 1)
    }

    /// Marks a process as cleanly stopped; false if it is unknown or already stopped.
    pub async fn stop_instance(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = "update instances set stopped_at = $2, heartbeat_at = $2 \
                   where id = $1 and stopped_at is null";
        let done = on_pool!(self, pool => sqlx::query(sql).bind(id).bind(at).execute(pool).await?.rows_affected());
        Ok(done == 1)
    }

    /// One process's row.
    pub async fn instance(&self, id: Uuid) -> Result<Option<InstanceRow>, StoreError> {
        let sql = "select id, version, hostname, pid, started_at, heartbeat_at, stopped_at \
                   from instances where id = $1";
        Ok(on_pool!(read self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?))
    }

    /// Forgets processes that stopped before `before`, or died (stopped beating) before it;
    /// returns how many. Nothing refers to a row but the history of starts it records.
    pub async fn prune_instances(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "delete from instances where coalesce(stopped_at, heartbeat_at) < $1";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        }))
    }

    /// Processes that have not stopped, newest first.
    pub async fn running_instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let sql = "select id, version, hostname, pid, started_at, heartbeat_at, stopped_at \
                   from instances where stopped_at is null order by started_at desc";
        Ok(on_pool!(read self, pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }
}

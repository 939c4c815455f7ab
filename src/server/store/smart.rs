//! Smart-sync leases: one per open order form (browser tab). A lease is live while it has not
//! ended, its last heartbeat is within the grace and its hard expiry has not come; while any is
//! live, the claim takes no exclusive job but the customers refresh (see `leases.rs`). Every
//! function takes `now`, so the rules can be stepped through with a made-up clock.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::{model::SmartLease, on_pool};

#[derive(sqlx::FromRow)]
struct LeaseRow {
    tab_id: String,
    who: String,
    created_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    end_reason: Option<String>,
}

impl From<LeaseRow> for SmartLease {
    fn from(r: LeaseRow) -> Self {
        SmartLease {
            tab_id: r.tab_id,
            who: r.who,
            created_at: r.created_at,
            heartbeat_at: r.heartbeat_at,
            expires_at: r.expires_at,
            ended_at: r.ended_at,
            end_reason: r.end_reason,
        }
    }
}

const COLUMNS: &str = "tab_id, who, created_at, heartbeat_at, expires_at, ended_at, end_reason";

/// The condition of a live lease `l`, with `$now` and `$live_after` (now less the grace).
pub(super) const LIVE: &str =
    "l.ended_at is null and l.expires_at > NOW and l.heartbeat_at > LIVE_AFTER";

impl Store {
    /// Opens tab `tab`'s lease, or renews it if it is live. A lease of the tab that is no longer
    /// live but was not ended yet is ended first (as `vanished` or `timeout`) and returned too.
    /// Returns the live lease, whether it is new, and the stale one it replaced.
    pub async fn open_lease(
        &self,
        tab: &str,
        who: &str,
        now: DateTime<Utc>,
        live_after: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(SmartLease, bool, Option<SmartLease>), StoreError> {
        let renew = format!(
            "update smart_leases set heartbeat_at = $2 where tab_id = $1 and ended_at is null \
             and expires_at > $2 and heartbeat_at > $3 returning {COLUMNS}"
        );
        let end_stale = format!(
            "update smart_leases set ended_at = $2, end_reason = case when expires_at <= $2 \
             then 'timeout' else 'vanished' end where tab_id = $1 and ended_at is null \
             returning {COLUMNS}"
        );
        let insert = format!(
            "insert into smart_leases (tab_id, who, created_at, heartbeat_at, expires_at) \
             values ($1, $2, $3, $3, $4) returning {COLUMNS}"
        );
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let renewed: Option<LeaseRow> = sqlx::query_as(&renew)
                .bind(tab)
                .bind(now)
                .bind(live_after)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = renewed {
                tx.commit().await?;
                (row.into(), false, None)
            } else {
                let stale: Option<LeaseRow> = sqlx::query_as(&end_stale)
                    .bind(tab)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row: LeaseRow = sqlx::query_as(&insert)
                    .bind(tab)
                    .bind(who)
                    .bind(now)
                    .bind(expires_at)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                (row.into(), true, stale.map(Into::into))
            }
        }))
    }

    /// Renews tab `tab`'s lease if it is live; `None` when it is not (ended, timed out,
    /// vanished): a heartbeat never brings a lease back.
    pub async fn heartbeat_lease(
        &self,
        tab: &str,
        now: DateTime<Utc>,
        live_after: DateTime<Utc>,
    ) -> Result<Option<SmartLease>, StoreError> {
        let sql = format!(
            "update smart_leases set heartbeat_at = $2 where tab_id = $1 and ended_at is null \
             and expires_at > $2 and heartbeat_at > $3 returning {COLUMNS}"
        );
        let row: Option<LeaseRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tab).bind(now).bind(live_after).fetch_optional(pool).await?
        });
        Ok(row.map(Into::into))
    }

    /// Ends tab `tab`'s lease as `closed` (or, if it had stopped being live already, as what it
    /// had become); `None` when it has none open.
    pub async fn close_lease(
        &self,
        tab: &str,
        now: DateTime<Utc>,
        live_after: DateTime<Utc>,
    ) -> Result<Option<SmartLease>, StoreError> {
        let sql = format!(
            "update smart_leases set ended_at = $2, end_reason = case \
             when expires_at <= $2 then 'timeout' when heartbeat_at <= $3 then 'vanished' \
             else 'closed' end where tab_id = $1 and ended_at is null returning {COLUMNS}"
        );
        let row: Option<LeaseRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tab).bind(now).bind(live_after).fetch_optional(pool).await?
        });
        Ok(row.map(Into::into))
    }

    /// Ends every lease that is no longer live (`timeout` past its expiry, else `vanished`);
    /// returns them. Safe from several processes: each lease is ended once.
    pub async fn end_stale_leases(
        &self,
        now: DateTime<Utc>,
        live_after: DateTime<Utc>,
    ) -> Result<Vec<SmartLease>, StoreError> {
        let sql = format!(
            "update smart_leases set ended_at = $1, end_reason = case when expires_at <= $1 \
             then 'timeout' else 'vanished' end where ended_at is null \
             and (expires_at <= $1 or heartbeat_at <= $2) returning {COLUMNS}"
        );
        let rows: Vec<LeaseRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(now).bind(live_after).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The live leases, oldest first.
    pub async fn live_leases(
        &self,
        now: DateTime<Utc>,
        live_after: DateTime<Utc>,
    ) -> Result<Vec<SmartLease>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from smart_leases l where {} order by created_at, id",
            LIVE.replace("NOW", "$1").replace("LIVE_AFTER", "$2")
        );
        let rows: Vec<LeaseRow> = on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(now).bind(live_after).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Tab `tab`'s newest lease, live or not.
    pub async fn latest_lease(&self, tab: &str) -> Result<Option<SmartLease>, StoreError> {
        let sql = format!(
            "select {COLUMNS} from smart_leases where tab_id = $1 order by id desc limit 1"
        );
        let row: Option<LeaseRow> = on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(tab).fetch_optional(pool).await?
        });
        Ok(row.map(Into::into))
    }

    /// Forgets leases that ended before `before`.
    pub async fn prune_leases(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "delete from smart_leases where ended_at < $1";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        }))
    }
}

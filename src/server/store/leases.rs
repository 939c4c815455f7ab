//! The lease and compare-and-set writes on `jobs`: claiming (the one set-based write, per
//! database), the transitions the engine decided, progress and checkpoints guarded by the lease,
//! yield requests, lease renewal and the search for expired leases.
//!
//! Every state change is a compare-and-set: [`Store::write_transition`] updates a row only if its
//! state, attempt, lease owner and cancel request are still what the engine read, and says whether
//! it did. Claiming does what `lifecycle::Transition::Claim` does, and a test checks that the two
//! agree.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::{on_pool, server::lifecycle::Lifecycle};

use super::jobs::{is_unique_violation, JobRow, Outcome, ProgressRow, JOB_COLUMNS};

/// One compare-and-set write: the job, what the engine read, what it should become.
#[derive(Clone, Copy, Debug)]
pub struct TransitionWrite<'a> {
    pub id: Uuid,
    pub before: &'a Lifecycle,
    pub next: &'a Lifecycle,
    pub outcome: &'a Outcome,
}

/// What lease renewal learns about one of the process's running jobs.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Renewed {
    pub id: Uuid,
    pub attempt: i64,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub yield_requested_at: Option<DateTime<Utc>>,
}

/// Which jobs a claim may take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimScope {
    /// May take one exclusive job (the mutex admits one).
    pub exclusive: bool,
    /// How many non-exclusive jobs it may take.
    pub shared: u32,
    /// While an order form is open (a live smart-sync lease), only this exclusive type runs.
    pub hold: Option<Hold>,
}

/// A time after every real one, comparable as text too.
fn far_future() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// The hold open order forms put on the queue: while a lease is live (heartbeat after
/// `live_after`, not expired, not ended), the claim takes no exclusive job but one of `exempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The type that refreshes what the form needs (`customers`).
    pub exempt: &'static str,
    /// A lease whose last heartbeat is older than this has vanished.
    pub live_after: DateTime<Utc>,
}

impl Store {
    /// Claims due pending jobs for `owner`: at most one exclusive job (if `scope.exclusive` and no
    /// exclusive job runs anywhere) and up to `scope.shared` non-exclusive ones, each highest
    /// priority first, then oldest. The two kinds fill different slots (the one global mutex, and
    /// this process's workers), so they are picked side by side in one statement. The partial
    /// unique index `jobs_one_exclusive_running` refuses a second running exclusive job even when
    /// two processes race; the loser of such a race claims only non-exclusive jobs.
    ///
    /// The lease runs `lease_for` from the database's clock on Postgres (several hosts, one
    /// clock), from this process's on SQLite (one host).
    pub async fn claim_jobs(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
        scope: ClaimScope,
    ) -> Result<Vec<JobRow>, StoreError> {
        match self.claim_once(owner, now, lease_for, scope).await {
            // Another process took the mutex between our check and our write.
            Err(err) if is_unique_violation(&err) => {
                let shared_only = ClaimScope {
                    exclusive: false,
                    ..scope
                };
                match self.claim_once(owner, now, lease_for, shared_only).await {
                    Err(err) if is_unique_violation(&err) => Ok(Vec::new()),
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    async fn claim_once(
        &self,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
        scope: ClaimScope,
    ) -> Result<Vec<JobRow>, sqlx::Error> {
        if !scope.exclusive && scope.shared == 0 {
            return Ok(Vec::new());
        }
        // Open order forms hold every exclusive type but the exempt one (with no hold, no lease
        // is live after the end of time).
        let (exempt, live_after) = match scope.hold {
            Some(hold) => (hold.exempt, hold.live_after),
            // Year 9999: still ordered as text where SQLite keeps times as text.
            None => ("", far_future()),
        };
        let hold = format!(
            "and (sync_type = $6 or not exists (select 1 from smart_leases l where {}))",
            super::smart::LIVE
                .replace("NOW", "$3")
                .replace("LIVE_AFTER", "$7")
        );
        let mut rows = match self {
            Store::Sqlite(pools) => {
                let lease_until = now + chrono_duration(lease_for);
                let set = "state = 'running', attempt = attempt + 1, lease_owner = $1, \
                           lease_expires_at = $2, started_at = $3, heartbeat_at = $3, dedupe_key = null";
                let sql = format!(
                    "update jobs set {set} where id in ( \
                       select id from (select id from jobs \
                         where state = 'pending' and run_at <= $3 and exclusive = 1 and $4 \
                         and not exists (select 1 from jobs r where r.state = 'running' and r.exclusive = 1) \
                         {hold} \
                         order by priority desc, id limit 1) \
                       union all \
                       select id from (select id from jobs \
                         where state = 'pending' and run_at <= $3 and exclusive = 0 \
                         order by priority desc, id limit $5)) \
                     returning {JOB_COLUMNS}"
                );
                sqlx::query_as::<_, JobRow>(&sql)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(scope.exclusive)
                    .bind(i64::from(scope.shared))
                    .bind(exempt)
                    .bind(live_after)
                    .fetch_all(&pools.write)
                    .await?
            }
            Store::Postgres(pools) => {
                let set = "state = 'running', attempt = attempt + 1, lease_owner = $1, \
                           lease_expires_at = clock_timestamp() + make_interval(secs => $2), \
                           started_at = $3, heartbeat_at = $3, dedupe_key = null";
                let sql = format!(
                    "with ex as (select id from jobs \
                       where state = 'pending' and run_at <= $3 and exclusive and $4 \
                       and not exists (select 1 from jobs r where r.state = 'running' and r.exclusive) \
                       {hold} \
                       order by priority desc, id limit 1 for update skip locked), \
                     sh as (select id from jobs \
                       where state = 'pending' and run_at <= $3 and not exclusive \
                       order by priority desc, id limit $5 for update skip locked), \
                     next as (select id from ex union all select id from sh) \
                     update jobs set {set} from next where jobs.id = next.id \
                     returning {}",
                    JOB_COLUMNS
                        .split(", ")
                        .map(|c| format!("jobs.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                sqlx::query_as::<_, JobRow>(&sql)
                    .bind(owner)
                    .bind(lease_for.as_secs_f64())
                    .bind(now)
                    .bind(scope.exclusive)
                    .bind(i64::from(scope.shared))
                    .bind(exempt)
                    .bind(live_after)
                    .fetch_all(&pools.lease)
                    .await?
            }
        };
        rows.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// Writes `next` over a row that must still be as `before` says (state, attempt, lease owner,
    /// whether a cancel was requested). Returns the new row, or `None` when the row had moved on.
    pub async fn write_transition(
        &self,
        id: Uuid,
        before: &Lifecycle,
        next: &Lifecycle,
        outcome: &Outcome,
    ) -> Result<Option<JobRow>, StoreError> {
        let mut rows = self
            .write_transitions(&[TransitionWrite {
                id,
                before,
                next,
                outcome,
            }])
            .await?;
        Ok(rows.pop().flatten())
    }

    /// [`Store::write_transition`] for many jobs in one transaction (the engine batches the ends
    /// of attempts this way); one answer per transition, in order.
    pub async fn write_transitions(
        &self,
        batch: &[TransitionWrite<'_>],
    ) -> Result<Vec<Option<JobRow>>, StoreError> {
        self.write_guarded(batch, "").await
    }

    /// Writes a rescue: [`Store::write_transition`], and only if the lease really ran out at
    /// least `margin` ago by the database's clock (its `now()` on Postgres, where the hosts'
    /// clocks may differ; this host's on SQLite), checked in the same statement, so a lease
    /// renewed since the rescuer read the row is never taken.
    pub async fn write_rescue(
        &self,
        write: TransitionWrite<'_>,
        margin: std::time::Duration,
    ) -> Result<Option<JobRow>, StoreError> {
        let guard = match self {
            Store::Sqlite(_) => format!(
                " and lease_expires_at < '{}'",
                (Utc::now() - chrono_duration(margin))
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Store::Postgres(_) => format!(
                " and lease_expires_at < clock_timestamp() - make_interval(secs => {})",
                margin.as_secs_f64()
            ),
        };
        Ok(self.write_guarded(&[write], &guard).await?.pop().flatten())
    }

    /// The compare-and-set update of each transition, with `guard` (a constant SQL condition)
    /// added to its `where`.
    async fn write_guarded(
        &self,
        batch: &[TransitionWrite<'_>],
        guard: &str,
    ) -> Result<Vec<Option<JobRow>>, StoreError> {
        let sql = format!(
            "update jobs set state = $1, attempt = $2, run_at = $3, lease_owner = $4, \
             lease_expires_at = $5, cancel_requested_at = $6, started_at = $7, finished_at = $8, \
             error = $9, \
             dedupe_key = case when $1 = 'pending' then dedupe_key else null end, \
             yield_requested_at = case when $1 = 'running' then yield_requested_at else null end, \
             progress = coalesce($10, progress), processed = coalesce($11, processed), \
             total = coalesce($12, total), message = coalesce($13, message), \
             result = coalesce($14, result), warnings = coalesce($15, warnings), \
             rescues = $21 \
             where id = $16 and state = $17 and attempt = $18 \
             and (lease_owner = $19 or (lease_owner is null and $19 is null)) \
             and (cancel_requested_at is null) = $20{guard} \
             returning {JOB_COLUMNS}"
        );
        let mut rows = Vec::with_capacity(batch.len());
        on_pool!(lease self, pool => {
            let mut tx = pool.begin().await?;
            for t in batch {
                let (next, before, outcome) = (t.next, t.before, t.outcome);
                let progress = outcome.progress.as_ref();
                let row = sqlx::query_as::<_, JobRow>(&sql)
                    .bind(next.state.as_str())
                    .bind(i64::from(next.attempt))
                    .bind(next.run_at)
                    .bind(next.lease.map(|l| l.owner))
                    .bind(next.lease.map(|l| l.expires_at))
                    .bind(next.cancel_requested_at)
                    .bind(next.started_at)
                    .bind(next.finished_at)
                    .bind(&next.error)
                    .bind(progress.map(|p| i64::from(p.progress)))
                    .bind(progress.map(|p| p.processed as i64))
                    .bind(progress.and_then(|p| p.total.map(|t| t as i64)))
                    .bind(progress.and_then(|p| p.message.as_deref()))
                    .bind(&outcome.result)
                    .bind(&outcome.warnings)
                    .bind(t.id)
                    .bind(before.state.as_str())
                    .bind(i64::from(before.attempt))
                    .bind(before.lease.map(|l| l.owner))
                    .bind(before.cancel_requested_at.is_none())
                    .bind(i64::from(next.rescues))
                    .fetch_optional(&mut *tx)
                    .await?;
                rows.push(row);
            }
            tx.commit().await?;
        });
        Ok(rows)
    }

    /// Stores a running job's progress, if `owner` still holds `attempt` of it.
    pub async fn write_progress(
        &self,
        id: Uuid,
        owner: Uuid,
        attempt: u32,
        progress: &ProgressRow,
    ) -> Result<bool, StoreError> {
        let sql = "update jobs set progress = $1, processed = $2, total = $3, message = $4 \
                   where id = $5 and state = 'running' and attempt = $6 and lease_owner = $7";
        let done = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(i64::from(progress.progress))
                .bind(progress.processed as i64)
                .bind(progress.total.map(|t| t as i64))
                .bind(&progress.message)
                .bind(id)
                .bind(i64::from(attempt))
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Stores a running job's checkpoint, if `owner` still holds `attempt` of it.
    pub async fn write_checkpoint(
        &self,
        id: Uuid,
        owner: Uuid,
        attempt: u32,
        checkpoint: &str,
    ) -> Result<bool, StoreError> {
        let sql = "update jobs set checkpoint = $1 \
                   where id = $2 and state = 'running' and attempt = $3 and lease_owner = $4";
        let done = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(checkpoint)
                .bind(id)
                .bind(i64::from(attempt))
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Asks the running job `id` to yield (preemption); `false` when it is not running.
    pub async fn request_yield(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = "update jobs set yield_requested_at = coalesce(yield_requested_at, $1) \
                   where id = $2 and state = 'running'";
        let done = on_pool!(self, pool => {
            sqlx::query(sql).bind(now).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Extends the leases of the jobs in `ids` that `owner` still runs, to `lease_for` from the
    /// database's clock on Postgres (this host's on SQLite); returns them with their attempt and
    /// their cancel and yield requests, so a request made through another process reaches the
    /// task. A job missing from the answer is no longer this owner's: its lease was lost.
    pub async fn renew_leases(
        &self,
        owner: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
    ) -> Result<Vec<Renewed>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(lease self, pool => {
            let mut builder = sqlx::QueryBuilder::new("update jobs set lease_expires_at = ");
            match self {
                Store::Sqlite(_) => builder.push_bind(now + chrono_duration(lease_for)),
                Store::Postgres(_) => builder
                    .push("clock_timestamp() + make_interval(secs => ")
                    .push_bind(lease_for.as_secs_f64())
                    .push(")"),
            };
            builder
                .push(", heartbeat_at = ")
                .push_bind(now)
                .push(" where state = 'running' and lease_owner = ")
                .push_bind(owner)
                .push(" and id in (");
            let mut list = builder.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            builder.push(") returning id, attempt, cancel_requested_at, yield_requested_at");
            builder.build_query_as::<Renewed>().fetch_all(pool).await?
        }))
    }

    /// Running jobs whose lease ran out at least `margin` ago, and the time it is now, both by
    /// the database's clock on Postgres (this host's on SQLite).
    pub async fn expired_jobs(
        &self,
        margin: std::time::Duration,
    ) -> Result<(Vec<JobRow>, DateTime<Utc>), StoreError> {
        match self {
            Store::Sqlite(pools) => {
                let now = Utc::now();
                let sql = format!(
                    "select {JOB_COLUMNS} from jobs where state = 'running' \
                     and lease_expires_at < $1 order by id limit 100"
                );
                let rows = sqlx::query_as::<_, JobRow>(&sql)
                    .bind(now - chrono_duration(margin))
                    .fetch_all(&pools.read)
                    .await?;
                Ok((rows, now))
            }
            Store::Postgres(pools) => {
                let now: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
                    .fetch_one(&pools.lease)
                    .await?;
                let sql = format!(
                    "select {JOB_COLUMNS} from jobs where state = 'running' \
                     and lease_expires_at < $1 order by id limit 100"
                );
                let rows = sqlx::query_as::<_, JobRow>(&sql)
                    .bind(now - chrono_duration(margin))
                    .fetch_all(&pools.lease)
                    .await?;
                Ok((rows, now))
            }
        }
    }
}

/// A std duration as chrono's (saturating).
fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

//! The `jobs` table: what a job is, inserting and reading jobs, the queue, the status view's
//! facts and retention. Lease and compare-and-set writes are in `leases.rs`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::{
    model::{Job, JobSource, JobState, QueueCounts},
    on_pool,
    server::lifecycle::{Lease, Lifecycle},
};

/// A row of `jobs`, as stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub sync_type: String,
    pub priority: i64,
    pub exclusive: bool,
    pub state: String,
    pub progress: i64,
    pub processed: i64,
    pub total: Option<i64>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub result: Option<String>,
    pub warnings: String,
    pub attempt: i64,
    pub rescues: i64,
    pub max_attempts: i64,
    pub run_at: DateTime<Utc>,
    pub source: String,
    pub triggered_by: Option<String>,
    pub note: Option<String>,
    pub session_id: Option<Uuid>,
    pub retry_of: Option<Uuid>,
    pub checkpoint: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<Uuid>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub yield_requested_at: Option<DateTime<Utc>>,
}

/// What a new job starts with.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub sync_type: String,
    pub priority: i64,
    pub exclusive: bool,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub source: JobSource,
    pub triggered_by: Option<String>,
    /// What the client said about the run (its `triggered_by` text, from before sign-in).
    pub note: Option<String>,
    pub session_id: Option<Uuid>,
    pub retry_of: Option<Uuid>,
    pub input: Option<String>,
}

/// Columns a transition may write besides the lifecycle; `None` keeps what is stored.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The last progress report (its `total` and `message` only if the report had them).
    pub progress: Option<ProgressRow>,
    pub result: Option<String>,
    pub warnings: Option<String>,
}

/// A running job's progress, as the throttled writer stores it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressRow {
    pub progress: u8,
    pub processed: u64,
    pub total: Option<u64>,
    pub message: Option<String>,
}

/// What [`Store::live_work`] found.
#[derive(Clone, Debug, Default)]
pub struct LiveWork {
    /// (sync type, pending|running, count).
    pub counts: Vec<(String, String, i64)>,
    /// The type of the exclusive job running, and when it started.
    pub mutex: Option<(String, DateTime<Utc>)>,
}

/// The filter of `GET /api/jobs`.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub sync_type: Option<String>,
    /// Case-insensitive substring of the type, message, error or triggered_by.
    pub q: Option<String>,
    /// Only jobs older than this one (the previous page's last id).
    pub before: Option<Uuid>,
    pub limit: u32,
    /// Only jobs from this source.
    pub source: Option<JobSource>,
    /// Case-insensitive substring of who asked (`triggered_by`).
    pub who: Option<String>,
    /// Only jobs created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only jobs created before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Per-type facts the status view is built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeFacts {
    pub running: Option<JobRow>,
    pub pending: Option<Uuid>,
    pub last_finished: Option<JobRow>,
    pub last_success: Option<DateTime<Utc>>,
    pub consecutive_errors: u64,
}

/// `%text%` for a case-insensitive `like … escape '\'`, with `\`, `%` and `_` taken literally.
fn like_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub(super) const JOB_COLUMNS: &str =
    "id, sync_type, priority, exclusive, state, progress, processed, total, \
     message, error, result, warnings, attempt, rescues, max_attempts, run_at, source, triggered_by, note, \
     session_id, retry_of, checkpoint, dedupe_key, created_at, started_at, finished_at, \
     heartbeat_at, lease_owner, lease_expires_at, cancel_requested_at, yield_requested_at";

pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl JobRow {
    /// The lifecycle part, for `lifecycle::apply`.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            state: self.job_state(),
            attempt: self.attempt as u32,
            rescues: self.rescues.max(0) as u32,
            max_attempts: self.max_attempts as u32,
            run_at: self.run_at,
            lease: match (self.lease_owner, self.lease_expires_at) {
                (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
                _ => None,
            },
            cancel_requested_at: self.cancel_requested_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error.clone(),
        }
    }

    /// The state column as the enum (the check constraint admits nothing else).
    pub fn job_state(&self) -> JobState {
        JobState::parse(&self.state).unwrap_or(JobState::Failed)
    }

    /// The wire form.
    pub fn to_job(&self) -> Job {
        Job {
            id: self.id.to_string(),
            sync_type: self.sync_type.clone(),
            priority: self.priority,
            exclusive: self.exclusive,
            state: self.job_state(),
            progress: self.progress.clamp(0, 100) as u8,
            processed: self.processed.max(0) as u64,
            total: self.total.map(|t| t.max(0) as u64),
            message: self.message.clone(),
            error: self.error.clone(),
            result: self
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            warnings: serde_json::from_str(&self.warnings).unwrap_or_default(),
            attempt: self.attempt as u32,
            rescues: self.rescues.max(0) as u32,
            max_attempts: self.max_attempts as u32,
            run_at: self.run_at,
            source: JobSource::parse(&self.source).unwrap_or(JobSource::Api),
            triggered_by: self.triggered_by.clone(),
            note: self.note.clone(),
            session_id: self.session_id.map(|id| id.to_string()),
            retry_of: self.retry_of.map(|id| id.to_string()),
            checkpoint: self
                .checkpoint
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok()),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            heartbeat_at: self.heartbeat_at,
            lease_owner: self.lease_owner.map(|id| id.to_string()),
            lease_expires_at: self.lease_expires_at,
            cancel_requested_at: self.cancel_requested_at,
        }
    }
}

/// The insert of one pending job (`$1` id … `$12` created_at), returning its row.
pub(super) fn insert_job_sql() -> String {
    format!(
        "insert into jobs (id, sync_type, priority, exclusive, state, max_attempts, run_at, \
         source, triggered_by, session_id, retry_of, dedupe_key, created_at, note) \
         values ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         returning {JOB_COLUMNS}"
    )
}

impl Store {
    /// Inserts a job. With `dedupe`, a job of the same type that is already pending is returned
    /// instead (and `true`): the unique index on `dedupe_key` makes this hold under races too.
    pub async fn insert_job(
        &self,
        job: &NewJob,
        dedupe: bool,
    ) -> Result<(JobRow, bool), StoreError> {
        for _ in 0..3 {
            if dedupe {
                if let Some(existing) = self.pending_of_type(&job.sync_type).await? {
                    return Ok((existing, true));
                }
            }
            let sql = insert_job_sql();
            let id = Uuid::now_v7();
            let now = Utc::now();
            let result: Result<JobRow, sqlx::Error> = on_pool!(self, pool => {
                async {
                    let insert = sqlx::query_as::<_, JobRow>(&sql)
                        .bind(id)
                        .bind(&job.sync_type)
                        .bind(job.priority)
                        .bind(job.exclusive)
                        .bind(i64::from(job.max_attempts.max(1)))
                        .bind(job.run_at)
                        .bind(job.source.as_str())
                        .bind(&job.triggered_by)
                        .bind(job.session_id)
                        .bind(job.retry_of)
                        .bind(dedupe.then_some(&job.sync_type))
                        .bind(now)
                        .bind(&job.note);
                    let Some(input) = &job.input else {
                        // One statement: no transaction around it.
                        return insert.fetch_one(pool).await;
                    };
                    let mut tx = pool.begin().await?;
                    let row = insert.fetch_one(&mut *tx).await?;
                    sqlx::query("insert into job_inputs (job_id, input) values ($1, $2)")
                        .bind(id)
                        .bind(input)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(row)
                }
                .await
            });
            match result {
                Ok(row) => return Ok((row, false)),
                // Another request for this type got in between: return that one.
                Err(err) if dedupe && is_unique_violation(&err) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Database(sqlx::Error::Protocol(
            "a pending job kept appearing and disappearing while requesting a sync".into(),
        )))
    }

    /// Inserts many jobs in one transaction (benchmarks and bulk submission); no dedupe.
    pub async fn insert_jobs(&self, jobs: &[NewJob]) -> Result<(), StoreError> {
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in jobs.chunks(500) {
                let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
                let mut builder = sqlx::QueryBuilder::new(
                    "insert into jobs (id, sync_type, priority, exclusive, state, max_attempts, \
                     run_at, source, triggered_by, note, created_at) ",
                );
                builder.push_values(chunk.iter().zip(&ids), |mut b, (job, id)| {
                    b.push_bind(*id)
                        .push_bind(job.sync_type.clone())
                        .push_bind(job.priority)
                        .push_bind(job.exclusive)
                        .push_bind("pending")
                        .push_bind(i64::from(job.max_attempts.max(1)))
                        .push_bind(job.run_at)
                        .push_bind(job.source.as_str())
                        .push_bind(job.triggered_by.clone())
                        .push_bind(job.note.clone())
                        .push_bind(now);
                });
                builder.build().execute(&mut *tx).await?;
                for (job, id) in chunk.iter().zip(&ids) {
                    if let Some(input) = &job.input {
                        sqlx::query("insert into job_inputs (job_id, input) values ($1, $2)")
                            .bind(*id)
                            .bind(input)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn pending_of_type(&self, sync_type: &str) -> Result<Option<JobRow>, StoreError> {
        let sql = format!(
            "select {JOB_COLUMNS} from jobs where sync_type = $1 and state = 'pending' \
             order by id limit 1"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, JobRow>(&sql).bind(sync_type).fetch_optional(pool).await?
        }))
    }

    /// The job that retries job `id`, if it was retried.
    pub async fn retry_of(&self, id: Uuid) -> Result<Option<JobRow>, StoreError> {
        let sql = format!("select {JOB_COLUMNS} from jobs where retry_of = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, JobRow>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// What the job's task reads, if it was given anything.
    pub async fn job_input(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        let sql = "select input from job_inputs where job_id = $1";
        Ok(on_pool!(read self, pool => {
            sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// One job by id.
    pub async fn get_job(&self, id: Uuid) -> Result<Option<JobRow>, StoreError> {
        let sql = format!("select {JOB_COLUMNS} from jobs where id = $1");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, JobRow>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// A page of jobs, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
        Ok(on_pool!(read self, pool => {
            let mut builder = sqlx::QueryBuilder::new(format!("select {JOB_COLUMNS} from jobs where 1 = 1"));
            if let Some(state) = filter.state {
                builder.push(" and state = ").push_bind(state.as_str());
            }
            if let Some(sync_type) = &filter.sync_type {
                builder.push(" and sync_type = ").push_bind(sync_type.clone());
            }
            if let Some(q) = &filter.q {
                let pattern = like_pattern(q);
                builder.push(" and (");
                for (i, column) in ["sync_type", "message", "error", "triggered_by", "note"]
                    .iter()
                    .enumerate()
                {
                    if i > 0 {
                        builder.push(" or ");
                    }
                    builder
                        .push(format!("lower(coalesce({column}, '')) like "))
                        .push_bind(pattern.clone())
                        .push(" escape '\\'");
                }
                builder.push(")");
            }
            if let Some(source) = filter.source {
                builder.push(" and source = ").push_bind(source.as_str());
            }
            if let Some(who) = &filter.who {
                builder
                    .push(" and lower(coalesce(triggered_by, '')) like ")
                    .push_bind(like_pattern(who))
                    .push(" escape '\\'");
            }
            if let Some(since) = filter.since {
                builder.push(" and created_at >= ").push_bind(since);
            }
            if let Some(until) = filter.until {
                builder.push(" and created_at < ").push_bind(until);
            }
            if let Some(before) = filter.before {
                builder.push(" and id < ").push_bind(before);
            }
            builder
                .push(" order by id desc limit ")
                .push_bind(i64::from(filter.limit));
            builder.build_query_as::<JobRow>().fetch_all(pool).await?
        }))
    }

    /// The pending jobs in claim order, at most `limit`, and the running exclusive job.
    pub async fn queue(&self, limit: u32) -> Result<(Option<JobRow>, Vec<JobRow>), StoreError> {
        let running = format!(
            "select {JOB_COLUMNS} from jobs where state = 'running' and exclusive = $1 limit 1"
        );
        let pending = format!(
            "select {JOB_COLUMNS} from jobs where state = 'pending' \
             order by priority desc, id limit $1"
        );
        Ok(on_pool!(read self, pool => {
            let current = sqlx::query_as::<_, JobRow>(&running).bind(true).fetch_optional(pool).await?;
            let queue = sqlx::query_as::<_, JobRow>(&pending)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            (current, queue)
        }))
    }

    /// How many jobs wait and run.
    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let sql = "select \
                   coalesce(sum(case when state = 'pending' then 1 else 0 end), 0), \
                   coalesce(sum(case when state = 'running' then 1 else 0 end), 0) \
                   from jobs where state in ('pending', 'running')";
        let (pending, running): (i64, i64) =
            on_pool!(read self, pool => sqlx::query_as(sql).fetch_one(pool).await?);
        Ok(QueueCounts {
            pending: pending.max(0) as u64,
            running: running.max(0) as u64,
        })
    }

    /// The waiting and running jobs by type and state, and the exclusive job running (its type
    /// and start), for a metrics scrape: one statement over the `state` index.
    pub async fn live_work(&self) -> Result<LiveWork, StoreError> {
        let sql = "select sync_type, state, count(*), \
                   min(case when exclusive and state = 'running' then started_at end) \
                   from jobs where state in ('pending', 'running') group by sync_type, state";
        let rows: Vec<(String, String, i64, Option<DateTime<Utc>>)> =
            on_pool!(read self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        let mut work = LiveWork::default();
        for (sync_type, state, count, holding_since) in rows {
            if let Some(since) = holding_since {
                work.mutex = Some((sync_type.clone(), since));
            }
            work.counts.push((sync_type, state, count));
        }
        Ok(work)
    }

    /// What the status view needs to know about one sync type.
    pub async fn type_facts(&self, sync_type: &str) -> Result<TypeFacts, StoreError> {
        let running = format!(
            "select {JOB_COLUMNS} from jobs where sync_type = $1 and state = 'running' \
             order by id limit 1"
        );
        let pending = "select id from jobs where sync_type = $1 and state = 'pending' \
                       order by id limit 1";
        let last = format!(
            "select {JOB_COLUMNS} from jobs where sync_type = $1 \
             and state in ('completed', 'failed', 'cancelled') \
             order by finished_at desc, id desc limit 1"
        );
        let success =
            "select max(finished_at) from jobs where sync_type = $1 and state = 'completed'";
        // Failures since the last success (or ever), which the query before found.
        let errors = "select count(*) from jobs where sync_type = $1 and state = 'failed' \
                      and finished_at > $2";
        Ok(on_pool!(read self, pool => {
            let running = sqlx::query_as::<_, JobRow>(&running).bind(sync_type).fetch_optional(pool).await?;
            let pending: Option<Uuid> = sqlx::query_scalar(pending).bind(sync_type).fetch_optional(pool).await?;
            let last_finished = sqlx::query_as::<_, JobRow>(&last).bind(sync_type).fetch_optional(pool).await?;
            let last_success: Option<DateTime<Utc>> =
                sqlx::query_scalar(success).bind(sync_type).fetch_one(pool).await?;
            let consecutive: i64 = sqlx::query_scalar(errors)
                .bind(sync_type)
                .bind(last_success.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
                .fetch_one(pool)
                .await?;
            TypeFacts {
                running,
                pending,
                last_finished,
                last_success,
                consecutive_errors: consecutive.max(0) as u64,
            }
        }))
    }

    /// When the last completed job of `sync_type` began: what it synced is at least that fresh.
    pub async fn last_completed_start(
        &self,
        sync_type: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sql = "select started_at from jobs where sync_type = $1 and state = 'completed' \
                   order by finished_at desc, id desc limit 1";
        let at: Option<Option<DateTime<Utc>>> = on_pool!(read self, pool => {
            sqlx::query_scalar(sql).bind(sync_type).fetch_optional(pool).await?
        });
        Ok(at.flatten())
    }

    /// The last `limit` finished jobs of `sync_type`, newest first (the run history).
    pub async fn finished_jobs(
        &self,
        sync_type: &str,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "select {JOB_COLUMNS} from jobs where sync_type = $1 \
             and state in ('completed', 'failed', 'cancelled') \
             order by finished_at desc, id desc limit $2"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, JobRow>(&sql)
                .bind(sync_type)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every finished job that ended at or after `since`, of every type (statistics).
    pub async fn finished_since(&self, since: DateTime<Utc>) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "select {JOB_COLUMNS} from jobs where state in ('completed', 'failed', 'cancelled') \
             and finished_at >= $1 order by finished_at"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, JobRow>(&sql).bind(since).fetch_all(pool).await?
        }))
    }

    /// Each type's last success (the end of its newest completed job).
    pub async fn last_successes(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let sql = "select sync_type, max(finished_at) from jobs where state = 'completed' \
                   group by sync_type";
        let rows: Vec<(String, Option<DateTime<Utc>>)> =
            on_pool!(read self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .filter_map(|(t, at)| Some((t, at?)))
            .collect())
    }

    /// Benchmarks only: gives the pending jobs spread states by their id's last digit (80 %
    /// completed, 10 % failed, 5 % cancelled, 5 % left pending), with start and end times.
    pub async fn bench_spread_states(&self) -> Result<(), StoreError> {
        let sqlite = "update jobs set state = case (rowid % 20) when 0 then 'failed' \
                      when 1 then 'failed' when 2 then 'cancelled' when 3 then 'pending' \
                      else 'completed' end, started_at = created_at, finished_at = case (rowid % 20) \
                      when 3 then null else created_at end where state = 'pending'";
        let postgres = "with n as (select id, row_number() over (order by id) % 20 as k from jobs \
                        where state = 'pending') update jobs set state = case n.k when 0 then 'failed' \
                        when 1 then 'failed' when 2 then 'cancelled' when 3 then 'pending' \
                        else 'completed' end, started_at = jobs.created_at, \
                        finished_at = case n.k when 3 then null else jobs.created_at end \
                        from n where jobs.id = n.id";
        match self {
            Store::Sqlite(pools) => {
                sqlx::query(sqlite).execute(&pools.write).await?;
                sqlx::query("analyze").execute(&pools.write).await?;
            }
            Store::Postgres(pools) => {
                sqlx::query(postgres).execute(&pools.main).await?;
                sqlx::query("analyze jobs").execute(&pools.main).await?;
            }
        }
        Ok(())
    }

    /// The result of the last completed job of `sync_type`.
    pub async fn last_result(&self, sync_type: &str) -> Result<Option<String>, StoreError> {
        let sql = "select result from jobs where sync_type = $1 and state = 'completed' \
                   order by finished_at desc, id desc limit 1";
        let result: Option<Option<String>> = on_pool!(read self, pool => {
            sqlx::query_scalar(sql).bind(sync_type).fetch_optional(pool).await?
        });
        Ok(result.flatten())
    }

    /// Deletes the finished jobs of `sync_type` beyond the newest `keep`; returns how many. A job
    /// that a session still open links to stays until that session ends: its step counts on it.
    pub async fn prune_jobs(&self, sync_type: &str, keep: u32) -> Result<u64, StoreError> {
        let sql = "delete from jobs where sync_type = $1 \
                   and state in ('completed', 'failed', 'cancelled') \
                   and not exists (select 1 from session_jobs l join sessions s \
                   on s.id = l.session_id where l.job_id = jobs.id and s.finished_at is null) \
                   and id not in (select id from jobs where sync_type = $1 \
                   and state in ('completed', 'failed', 'cancelled') \
                   order by finished_at desc, id desc limit $2)";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(sync_type)
                .bind(i64::from(keep))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

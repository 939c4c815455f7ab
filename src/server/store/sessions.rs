//! Workflow sessions and the status table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::{
    model::{JobSource, SessionStatus, StatusRow, StepStatus},
    on_pool,
};

/// A session to create.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// The workflow it runs.
    pub workflow: String,
    /// How it was started.
    pub source: JobSource,
    /// Who started it.
    pub triggered_by: Option<String>,
    /// When.
    pub started_at: DateTime<Utc>,
}

/// One status row to append.
#[derive(Clone, Debug)]
pub struct NewStatus<'a> {
    /// The session.
    pub session_id: Uuid,
    /// The step's number, from 1.
    pub step: u32,
    /// The step's name.
    pub name: &'a str,
    /// What it says.
    pub status: StepStatus,
    /// In words.
    pub message: Option<&'a str>,
    /// Anything else to show (JSON).
    pub details: &'a serde_json::Value,
}

type StatusTuple = (
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
);

fn status_row(session_id: Uuid, row: StatusTuple) -> StatusRow {
    let (id, run, step, name, status, message, details, at) = row;
    StatusRow {
        id,
        session_id: session_id.to_string(),
        run: run.clamp(0, i64::from(u32::MAX)) as u32,
        step: step.clamp(0, i64::from(u32::MAX)) as u32,
        name,
        status: StepStatus::parse(&status).unwrap_or(StepStatus::Waiting),
        message,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
        at,
    }
}

/// Each step's latest row in `run`, and every row.
fn session_status(id: Uuid, run: i64, rows: Vec<StatusTuple>) -> SessionStatus {
    let run = run.clamp(0, i64::from(u32::MAX)) as u32;
    let timeline: Vec<StatusRow> = rows.into_iter().map(|r| status_row(id, r)).collect();
    let mut latest = std::collections::BTreeMap::new();
    for row in timeline.iter().filter(|r| r.run == run) {
        latest.insert(row.step, row.clone());
    }
    SessionStatus {
        session_id: id.to_string(),
        run,
        steps: latest.into_values().collect(),
        timeline,
    }
}

const STATUS_SQL: &str = "select id, run, step, name, status, message, details, at \
                          from step_status where session_id = $1 order by id";
const STEPS_SQL: &str = "select step, state, action, acted_by, acted_at, started_at \
                         from session_steps where session_id = $1 and run = $2 order by step";

/// `select` of the jobs one step of a run started, oldest first (`$1` session, `$2` run,
/// `$3` step).
fn step_jobs_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let columns = super::jobs::JOB_COLUMNS
            .split(", ")
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "select {columns} from session_jobs s join jobs j on j.id = s.job_id \
             where s.session_id = $1 and s.run = $2 and s.step = $3 order by j.id"
        )
    });
    SQL.as_str()
}

/// Everything a session's view is drawn from, read at one moment, so that its state, its
/// steps and its status rows agree (a reader never sees a gate's button on a session that
/// still says it is running).
#[derive(Clone, Debug)]
pub struct SessionSnapshot {
    /// The session.
    pub session: SessionRow,
    /// Its status rows.
    pub status: SessionStatus,
    /// The steps its current run entered.
    pub steps: Vec<StepRow>,
    /// The jobs each entered step started, oldest first, by step number.
    pub jobs: std::collections::BTreeMap<i64, Vec<super::JobRow>>,
}

impl Store {
    /// The session, its status rows, its current run's steps and their jobs, read in one read
    /// transaction (a snapshot: SQLite in WAL mode, repeatable read on Postgres); `None` for an
    /// unknown session.
    pub async fn session_snapshot(&self, id: Uuid) -> Result<Option<SessionSnapshot>, StoreError> {
        let session_sql = format!("select {SESSION_COLUMNS} from sessions where id = $1");
        // One body for both databases; `$tx` is an open transaction.
        macro_rules! read_all {
            ($tx:ident) => {{
                let session: Option<SessionRow> = sqlx::query_as(&session_sql)
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                match session {
                    None => None,
                    Some(session) => {
                        let rows: Vec<StatusTuple> = sqlx::query_as(STATUS_SQL)
                            .bind(id)
                            .fetch_all(&mut *$tx)
                            .await?;
                        let steps: Vec<StepRow> = sqlx::query_as(STEPS_SQL)
                            .bind(id)
                            .bind(session.run)
                            .fetch_all(&mut *$tx)
                            .await?;
                        let mut jobs = std::collections::BTreeMap::new();
                        for step in &steps {
                            let found: Vec<super::JobRow> = sqlx::query_as(step_jobs_sql())
                                .bind(id)
                                .bind(session.run)
                                .bind(step.step)
                                .fetch_all(&mut *$tx)
                                .await?;
                            jobs.insert(step.step, found);
                        }
                        Some((session, rows, steps, jobs))
                    }
                }
            }};
        }
        let found = match self {
            Store::Sqlite(pools) => {
                // A deferred transaction reads from one WAL snapshot, taken at its first read.
                let mut tx = pools.read.begin().await?;
                let found = read_all!(tx);
                tx.commit().await?;
                found
            }
            Store::Postgres(pools) => {
                let mut tx = pools.main.begin().await?;
                sqlx::query("set transaction isolation level repeatable read, read only")
                    .execute(&mut *tx)
                    .await?;
                let found = read_all!(tx);
                tx.commit().await?;
                found
            }
        };
        Ok(found.map(|(session, rows, steps, jobs)| SessionSnapshot {
            status: session_status(id, session.run, rows),
            session,
            steps,
            jobs,
        }))
    }

    /// Creates a session (state `running`, run 1).
    pub async fn insert_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let sql = "insert into sessions (id, workflow, state, source, triggered_by, run, warnings, started_at) \
                   values ($1, $2, 'running', $3, $4, 1, '[]', $5)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(session.id)
                .bind(&session.workflow)
                .bind(session.source.as_str())
                .bind(&session.triggered_by)
                .bind(session.started_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Appends a status row to the session's current run; `None` when there is no such session.
    pub async fn append_status(
        &self,
        status: &NewStatus<'_>,
    ) -> Result<Option<StatusRow>, StoreError> {
        let now = Utc::now();
        let details = status.details.to_string();
        let sql =
            "insert into step_status (session_id, run, step, name, status, message, details, at) \
                   select id, run, $2, $3, $4, $5, $6, $7 from sessions where id = $1 \
                   returning id, run, step, name, status, message, details, at";
        let row: Option<StatusTuple> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(status.session_id)
                .bind(i64::from(status.step))
                .bind(status.name)
                .bind(status.status.as_str())
                .bind(status.message)
                .bind(&details)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|row| status_row(status.session_id, row)))
    }

    /// Each step's latest row in the current run, and every row; `None` for an unknown session.
    pub async fn session_status(&self, id: Uuid) -> Result<Option<SessionStatus>, StoreError> {
        let run_sql = "select run from sessions where id = $1";
        let found: Option<(Option<i64>, Vec<StatusTuple>)> = on_pool!(read self, pool => {
            let run: Option<i64> = sqlx::query_scalar(run_sql).bind(id).fetch_optional(pool).await?;
            match run {
                None => None,
                Some(run) => Some((Some(run), sqlx::query_as(STATUS_SQL).bind(id).fetch_all(pool).await?)),
            }
        });
        let Some((run, rows)) = found else {
            return Ok(None);
        };
        Ok(Some(session_status(id, run.unwrap_or(1), rows)))
    }

    /// Starts the session's next run (its earlier rows stay as history); the new run number, or
    /// `None` for an unknown session.
    pub async fn clear_session(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let sql = "update sessions set run = run + 1, state = 'running', warnings = '[]', \
                   finished_at = null where id = $1 returning run";
        let run: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?
        });
        Ok(run.map(|r| r.clamp(0, i64::from(u32::MAX)) as u32))
    }
}

/// A session as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    /// Its id.
    pub id: Uuid,
    /// The workflow it runs.
    pub workflow: String,
    /// running | waiting | completed | completed_with_warnings | failed | cancelled.
    pub state: String,
    /// How it was started.
    pub source: String,
    /// Who started it.
    pub triggered_by: Option<String>,
    /// The current run.
    pub run: i64,
    /// JSON array of strings.
    pub warnings: String,
    /// When the current run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where one step of a session's run is.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StepRow {
    /// The step's number.
    pub step: i64,
    /// waiting | processing | completed | failed.
    pub state: String,
    /// The gate's label while it waits.
    pub action: Option<String>,
    /// Who pressed the gate's button.
    pub acted_by: Option<String>,
    /// When.
    pub acted_at: Option<DateTime<Utc>>,
    /// When it last began processing.
    pub started_at: Option<DateTime<Utc>>,
}

const SESSION_COLUMNS: &str =
    "id, workflow, state, source, triggered_by, run, warnings, started_at, finished_at";

impl Store {
    /// One session.
    pub async fn session(&self, id: Uuid) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!("select {SESSION_COLUMNS} from sessions where id = $1");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// The newest session of `workflow` (ids are UUIDv7, so the greatest is the newest).
    pub async fn latest_session(&self, workflow: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "select {SESSION_COLUMNS} from sessions where workflow = $1 order by id desc limit 1"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(workflow).fetch_optional(pool).await?
        }))
    }

    /// Sessions whose run is not over (running or waiting), oldest first.
    pub async fn open_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "select {SESSION_COLUMNS} from sessions where state in ('running', 'waiting') \
             order by started_at"
        );
        Ok(on_pool!(read self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Sets a session's state (and its end, when the state is final) and warnings.
    pub async fn set_session_state(
        &self,
        id: Uuid,
        state: &str,
        finished_at: Option<DateTime<Utc>>,
        warnings: &[String],
    ) -> Result<(), StoreError> {
        let sql = "update sessions set state = $1, finished_at = $2, warnings = $3 where id = $4";
        let warnings = serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(state)
                .bind(finished_at)
                .bind(warnings)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records that a run's `step` began processing (now); a gate is entered by
    /// [`Store::open_gate`].
    pub async fn enter_step(&self, id: Uuid, run: u32, step: u32) -> Result<(), StoreError> {
        let sql = "insert into session_steps (session_id, run, step, state, action, started_at) \
                   values ($1, $2, $3, 'processing', null, $4) on conflict (session_id, run, step) do update \
                   set state = excluded.state, action = excluded.action, started_at = excluded.started_at";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(i64::from(run))
                .bind(i64::from(step))
                .bind(Utc::now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Opens a gate in one transaction: the session waits, the step's "waiting" row is appended
    /// and the step offers `action`, all at once, so a reader never sees the row without the
    /// button and a press can only come after the row. `None` when there is no such session.
    pub async fn open_gate(
        &self,
        status: &NewStatus<'_>,
        run: u32,
        action: &str,
    ) -> Result<Option<StatusRow>, StoreError> {
        let now = Utc::now();
        let details = status.details.to_string();
        let session_sql = "update sessions set state = 'waiting' where id = $1 and run = $2";
        let row_sql =
            "insert into step_status (session_id, run, step, name, status, message, details, at) \
             values ($1, $2, $3, $4, 'waiting', $5, $6, $7) \
             returning id, run, step, name, status, message, details, at";
        let step_sql =
            "insert into session_steps (session_id, run, step, state, action, started_at) \
                        values ($1, $2, $3, 'waiting', $4, null) \
                        on conflict (session_id, run, step) do update \
                        set state = excluded.state, action = excluded.action, started_at = null";
        let row: Option<StatusTuple> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(session_sql)
                .bind(status.session_id)
                .bind(i64::from(run))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if found == 0 {
                None // no such session, or it moved on to another run
            } else {
                let row: StatusTuple = sqlx::query_as(row_sql)
                    .bind(status.session_id)
                    .bind(i64::from(run))
                    .bind(i64::from(status.step))
                    .bind(status.name)
                    .bind(status.message)
                    .bind(&details)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(step_sql)
                    .bind(status.session_id)
                    .bind(i64::from(run))
                    .bind(i64::from(status.step))
                    .bind(action)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Some(row)
            }
        });
        Ok(row.map(|row| status_row(status.session_id, row)))
    }

    /// Moves a step from `from` to `to`, compare-and-set; `true` when this call moved it. With
    /// `acted_by`, records who pressed the gate.
    pub async fn move_step(
        &self,
        id: Uuid,
        run: u32,
        step: u32,
        from: StepStatus,
        to: StepStatus,
        acted_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let sql = "update session_steps set state = $1, \
                   acted_by = coalesce($2, acted_by), \
                   acted_at = case when $2 is null then acted_at else $3 end, \
                   started_at = case when $1 = 'processing' then $3 else started_at end \
                   where session_id = $4 and run = $5 and step = $6 and state = $7";
        let moved = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(to.as_str())
                .bind(acted_by)
                .bind(Utc::now())
                .bind(id)
                .bind(i64::from(run))
                .bind(i64::from(step))
                .bind(from.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(moved == 1)
    }

    /// The steps a run has entered, in order.
    pub async fn session_steps(&self, id: Uuid, run: u32) -> Result<Vec<StepRow>, StoreError> {
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(STEPS_SQL).bind(id).bind(i64::from(run)).fetch_all(pool).await?
        }))
    }

    /// Links jobs to a step of a run.
    pub async fn add_session_jobs(
        &self,
        id: Uuid,
        run: u32,
        step: u32,
        jobs: &[Uuid],
    ) -> Result<(), StoreError> {
        let sql =
            "insert into session_jobs (session_id, run, step, job_id) values ($1, $2, $3, $4) \
                   on conflict do nothing";
        on_pool!(self, pool => {
            for job in jobs {
                sqlx::query(sql)
                    .bind(id)
                    .bind(i64::from(run))
                    .bind(i64::from(step))
                    .bind(*job)
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }

    /// The jobs a step of a run started, oldest first.
    pub async fn step_jobs(
        &self,
        id: Uuid,
        run: u32,
        step: u32,
    ) -> Result<Vec<super::JobRow>, StoreError> {
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(step_jobs_sql())
                .bind(id)
                .bind(i64::from(run))
                .bind(i64::from(step))
                .fetch_all(pool)
                .await?
        }))
    }
}

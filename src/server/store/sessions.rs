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

impl Store {
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
        let rows_sql = "select id, run, step, name, status, message, details, at from step_status \
                        where session_id = $1 order by id";
        let found: Option<(Option<i64>, Vec<StatusTuple>)> = on_pool!(read self, pool => {
            let run: Option<i64> = sqlx::query_scalar(run_sql).bind(id).fetch_optional(pool).await?;
            match run {
                None => None,
                Some(run) => Some((Some(run), sqlx::query_as(rows_sql).bind(id).fetch_all(pool).await?)),
            }
        });
        let Some((run, rows)) = found else {
            return Ok(None);
        };
        let run = run.unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32;
        let timeline: Vec<StatusRow> = rows.into_iter().map(|r| status_row(id, r)).collect();
        let mut latest = std::collections::BTreeMap::new();
        for row in timeline.iter().filter(|r| r.run == run) {
            latest.insert(row.step, row.clone());
        }
        Ok(Some(SessionStatus {
            session_id: id.to_string(),
            run,
            steps: latest.into_values().collect(),
            timeline,
        }))
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

    /// Records that a run entered `step` (waiting at a gate with `action`, or processing).
    pub async fn enter_step(
        &self,
        id: Uuid,
        run: u32,
        step: u32,
        state: StepStatus,
        action: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "insert into session_steps (session_id, run, step, state, action, started_at) \
                   values ($1, $2, $3, $4, $5, $6) on conflict (session_id, run, step) do update \
                   set state = excluded.state, action = excluded.action, started_at = excluded.started_at";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(i64::from(run))
                .bind(i64::from(step))
                .bind(state.as_str())
                .bind(action)
                .bind((state == StepStatus::Processing).then(Utc::now))
                .execute(pool)
                .await?;
        });
        Ok(())
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
        let sql = "select step, state, action, acted_by, acted_at, started_at from session_steps \
                   where session_id = $1 and run = $2 order by step";
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(sql).bind(id).bind(i64::from(run)).fetch_all(pool).await?
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
        // The job columns, qualified, made once.
        static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            super::jobs::JOB_COLUMNS
                .split(", ")
                .map(|c| format!("j.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let columns = COLUMNS.as_str();
        let sql = format!(
            "select {columns} from session_jobs s join jobs j on j.id = s.job_id \
             where s.session_id = $1 and s.run = $2 and s.step = $3 order by j.id"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(i64::from(run))
                .bind(i64::from(step))
                .fetch_all(pool)
                .await?
        }))
    }
}

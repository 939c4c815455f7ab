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

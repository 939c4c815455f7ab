//! Workflow sessions and the status table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::NewJob;
use super::{Store, StoreError};
use crate::{
    model::{JobSource, SessionState, SessionStatus, SessionUpdate, StatusRow, StepStatus},
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
    /// What the client said about it.
    pub note: Option<String>,
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
/// The newest rows of a session before a row id (`$2`), at most `$3`, newest first.
const TIMELINE_SQL: &str = "select id, run, step, name, status, message, details, at \
                            from step_status where session_id = $1 and id < $2 \
                            order by id desc limit $3";
/// Each step's latest row in a run (`$2`).
const LATEST_SQL: &str = "select id, run, step, name, status, message, details, at \
                          from step_status s where session_id = $1 and run = $2 \
                          and id = (select max(id) from step_status t \
                                    where t.session_id = s.session_id and t.run = s.run \
                                    and t.step = s.step) \
                          order by step";
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
    /// Each step's latest row of the current run, and a page of the timeline (the newest rows
    /// before the cursor, oldest first).
    pub status: SessionStatus,
    /// The id to ask for the rows before this page, if there are any.
    pub timeline_before: Option<i64>,
    /// The steps its current run entered.
    pub steps: Vec<StepRow>,
    /// The jobs each entered step started, oldest first, by step number.
    pub jobs: std::collections::BTreeMap<i64, Vec<super::JobRow>>,
}

impl Store {
    /// The session, its steps' latest rows, a page of its timeline (at most `limit` rows before
    /// the row `before`, if given), its current run's steps and their jobs, read in one read
    /// transaction (a snapshot: SQLite in WAL mode, repeatable read on Postgres); `None` for an
    /// unknown session.
    pub async fn session_snapshot(
        &self,
        id: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Option<SessionSnapshot>, StoreError> {
        let session_sql = format!("select {SESSION_COLUMNS} from sessions where id = $1");
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::from(limit.max(1));
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
                        let latest: Vec<StatusTuple> = sqlx::query_as(LATEST_SQL)
                            .bind(id)
                            .bind(session.run)
                            .fetch_all(&mut *$tx)
                            .await?;
                        // One more than asked for says whether there are older rows.
                        let mut page: Vec<StatusTuple> = sqlx::query_as(TIMELINE_SQL)
                            .bind(id)
                            .bind(before)
                            .bind(limit + 1)
                            .fetch_all(&mut *$tx)
                            .await?;
                        let more = page.len() as i64 > limit;
                        page.truncate(limit as usize);
                        page.reverse();
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
                        Some((session, latest, page, more, steps, jobs))
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
        Ok(found.map(|(session, latest, page, more, steps, jobs)| {
            let timeline: Vec<StatusRow> = page.into_iter().map(|r| status_row(id, r)).collect();
            SessionSnapshot {
                timeline_before: more.then(|| timeline.first().map(|r| r.id)).flatten(),
                status: SessionStatus {
                    session_id: id.to_string(),
                    run: session.run.clamp(0, i64::from(u32::MAX)) as u32,
                    steps: latest.into_iter().map(|r| status_row(id, r)).collect(),
                    timeline,
                },
                session,
                steps,
                jobs,
            }
        }))
    }

    /// Creates a session (state `running`, run 1).
    pub async fn insert_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let sql = "insert into sessions (id, workflow, state, source, triggered_by, run, warnings, started_at, note) \
                   values ($1, $2, 'running', $3, $4, 1, '[]', $5, $6)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(session.id)
                .bind(&session.workflow)
                .bind(session.source.as_str())
                .bind(&session.triggered_by)
                .bind(session.started_at)
                .bind(&session.note)
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
    /// What the client said about it.
    pub note: Option<String>,
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
    "id, workflow, state, source, triggered_by, note, run, warnings, started_at, finished_at";

impl SessionRow {
    /// Its state (the check constraint admits nothing else).
    pub fn session_state(&self) -> SessionState {
        SessionState::parse(&self.state).unwrap_or(SessionState::Failed)
    }

    /// Its current run.
    pub fn run(&self) -> u32 {
        self.run.clamp(0, i64::from(u32::MAX)) as u32
    }

    /// Its warnings.
    pub fn warnings(&self) -> Vec<String> {
        serde_json::from_str(&self.warnings).unwrap_or_default()
    }

    /// As `session-updated` events carry it.
    pub fn update(&self) -> SessionUpdate {
        SessionUpdate {
            session_id: self.id.to_string(),
            workflow: self.workflow.clone(),
            run: self.run(),
            state: self.session_state(),
            warnings: self.warnings(),
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// One write of a session change, in order; [`Store::apply_session_ops`] makes a list of them
/// one transaction, so a session never stops half way between two of them (a step completed but
/// the next not entered, jobs queued but not linked to their step).
#[derive(Clone, Debug)]
pub enum SessionOp {
    /// Create the session (run 1, running).
    Create(NewSession),
    /// A new run (run + 1, warnings cleared, no end), from `from`; the ops after it speak of it.
    Restart {
        /// The state the session must be in.
        from: SessionState,
    },
    /// The session moves from `from` to `to` in its run (compare-and-set on both), with these
    /// warnings and end. With `from == to` it checks the run and state and sets the warnings.
    State {
        /// The state it must be in.
        from: SessionState,
        /// The state it takes.
        to: SessionState,
        /// Its warnings after the move.
        warnings: Vec<String>,
        /// Its end, for a final state.
        finished_at: Option<DateTime<Utc>>,
    },
    /// Step `step` moves from `from` to `to` (compare-and-set), noting who pressed its gate.
    MoveStep {
        /// The step.
        step: u32,
        /// The state it must be in.
        from: StepStatus,
        /// The state it takes.
        to: StepStatus,
        /// Who pressed its gate's button.
        acted_by: Option<String>,
    },
    /// Step `step` is entered: processing from now, or waiting at its gate with `action`.
    Enter {
        /// The step.
        step: u32,
        /// The gate's button label, if it waits for a person.
        action: Option<String>,
    },
    /// A status row of the run.
    Status {
        /// The step.
        step: u32,
        /// Its name.
        name: String,
        /// What it says.
        status: StepStatus,
        /// In words.
        message: Option<String>,
        /// Anything else to show.
        details: serde_json::Value,
    },
    /// A job queued and linked to step `step` of the run.
    Queue {
        /// The step.
        step: u32,
        /// The job.
        job: NewJob,
    },
    /// A schedule's fire that starts this session: its compare-and-set, its missed times, and
    /// its row naming the session.
    Fire(super::schedules::FireClaim),
}

/// What a session change wrote: the session as it is now, its new status rows, its new jobs.
#[derive(Clone, Debug)]
pub struct AppliedOps {
    /// The session after the change.
    pub session: SessionRow,
    /// The rows appended, in order.
    pub rows: Vec<StatusRow>,
    /// The jobs queued.
    pub jobs: Vec<super::JobRow>,
}

impl Store {
    /// Applies `ops` to run `run` of session `id` in one transaction. `None` (nothing written)
    /// when a compare-and-set finds the session, its run or a step elsewhere than the change
    /// expects: someone else moved it first, or the run is no longer current.
    pub async fn apply_session_ops(
        &self,
        id: Uuid,
        run: u32,
        ops: &[SessionOp],
    ) -> Result<Option<AppliedOps>, StoreError> {
        let now = Utc::now();
        let job_sql = super::jobs::insert_job_sql();
        let session_sql = format!("select {SESSION_COLUMNS} from sessions where id = $1");
        // One body for both databases; `$tx` is an open transaction. Ends the transaction
        // uncommitted (rolled back when dropped) at the first compare-and-set that misses.
        macro_rules! apply_all {
            ($tx:ident) => {{
                let mut run = i64::from(run);
                let mut rows = Vec::new();
                let mut jobs = Vec::new();
                let mut held = true;
                for op in ops {
                    let changed = match op {
                        SessionOp::Create(new) => sqlx::query(
                            "insert into sessions (id, workflow, state, source, triggered_by, run, \
                             warnings, started_at, note) \
                             values ($1, $2, 'running', $3, $4, 1, '[]', $5, $6)",
                        )
                        .bind(new.id)
                        .bind(&new.workflow)
                        .bind(new.source.as_str())
                        .bind(&new.triggered_by)
                        .bind(new.started_at)
                        .bind(&new.note)
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected(),
                        SessionOp::Restart { from } => {
                            let next: Option<i64> = sqlx::query_scalar(
                                "update sessions set run = run + 1, state = 'running', \
                                 warnings = '[]', finished_at = null, started_at = $1 \
                                 where id = $2 and run = $3 and state = $4 returning run",
                            )
                            .bind(now)
                            .bind(id)
                            .bind(run)
                            .bind(from.as_str())
                            .fetch_optional(&mut *$tx)
                            .await?;
                            match next {
                                Some(next) => {
                                    run = next;
                                    1
                                }
                                None => 0,
                            }
                        }
                        SessionOp::State {
                            from,
                            to,
                            warnings,
                            finished_at,
                        } => sqlx::query(
                            "update sessions set state = $1, warnings = $2, finished_at = $3 \
                             where id = $4 and run = $5 and state = $6",
                        )
                        .bind(to.as_str())
                        .bind(serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into()))
                        .bind(finished_at)
                        .bind(id)
                        .bind(run)
                        .bind(from.as_str())
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected(),
                        SessionOp::MoveStep { step, from, to, acted_by } => sqlx::query(
                            "update session_steps set state = $1, \
                             acted_by = coalesce($2, acted_by), \
                             acted_at = case when $2 is null then acted_at else $3 end, \
                             started_at = case when $1 = 'processing' then $3 else started_at end \
                             where session_id = $4 and run = $5 and step = $6 and state = $7",
                        )
                        .bind(to.as_str())
                        .bind(acted_by)
                        .bind(now)
                        .bind(id)
                        .bind(run)
                        .bind(i64::from(*step))
                        .bind(from.as_str())
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected(),
                        SessionOp::Enter { step, action } => sqlx::query(
                            "insert into session_steps (session_id, run, step, state, action, started_at) \
                             values ($1, $2, $3, $4, $5, $6) on conflict (session_id, run, step) do update \
                             set state = excluded.state, action = excluded.action, \
                             started_at = excluded.started_at",
                        )
                        .bind(id)
                        .bind(run)
                        .bind(i64::from(*step))
                        .bind(if action.is_some() { "waiting" } else { "processing" })
                        .bind(action)
                        .bind(action.is_none().then_some(now))
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected(),
                        SessionOp::Status {
                            step,
                            name,
                            status,
                            message,
                            details,
                        } => {
                            let row: StatusTuple = sqlx::query_as(
                                "insert into step_status (session_id, run, step, name, status, message, details, at) \
                                 values ($1, $2, $3, $4, $5, $6, $7, $8) \
                                 returning id, run, step, name, status, message, details, at",
                            )
                            .bind(id)
                            .bind(run)
                            .bind(i64::from(*step))
                            .bind(name)
                            .bind(status.as_str())
                            .bind(message)
                            .bind(details.to_string())
                            .bind(now)
                            .fetch_one(&mut *$tx)
                            .await?;
                            rows.push(status_row(id, row));
                            1
                        }
                        SessionOp::Queue { step, job } => {
                            let job_id = Uuid::now_v7();
                            let row: super::JobRow = sqlx::query_as(&job_sql)
                                .bind(job_id)
                                .bind(&job.sync_type)
                                .bind(job.priority)
                                .bind(job.exclusive)
                                .bind(i64::from(job.max_attempts.max(1)))
                                .bind(job.run_at)
                                .bind(job.source.as_str())
                                .bind(&job.triggered_by)
                                .bind(Some(id))
                                .bind(job.retry_of)
                                .bind(None::<String>)
                                .bind(now)
                                .bind(&job.note)
                                .fetch_one(&mut *$tx)
                                .await?;
                            sqlx::query(
                                "insert into session_jobs (session_id, run, step, job_id) \
                                 values ($1, $2, $3, $4)",
                            )
                            .bind(id)
                            .bind(run)
                            .bind(i64::from(*step))
                            .bind(job_id)
                            .execute(&mut *$tx)
                            .await?;
                            jobs.push(row);
                            1
                        }
                        SessionOp::Fire(claim) => {
                            let claimed = sqlx::query(super::schedules::CLAIM_SQL)
                                .bind(claim.next)
                                .bind(claim.now)
                                .bind(&claim.schedule_id)
                                .bind(claim.revision)
                                .bind(claim.expected)
                                .execute(&mut *$tx)
                                .await?
                                .rows_affected();
                            let fires = claim
                                .missed
                                .iter()
                                .map(|(t, r)| (*t, "missed", Some(r.clone()), None))
                                .chain(claim.fire_time.map(|t| (t, "fired", None, Some(id))));
                            if claimed == 1 {
                                for (time, outcome, reason, session) in fires {
                                    sqlx::query(super::schedules::FIRE_SQL)
                                        .bind(&claim.schedule_id)
                                        .bind(time)
                                        .bind(outcome)
                                        .bind(reason)
                                        .bind("[]")
                                        .bind(session)
                                        .bind(claim.now)
                                        .execute(&mut *$tx)
                                        .await?;
                                }
                            }
                            claimed
                        }
                    };
                    if changed == 0 {
                        held = false;
                        break;
                    }
                }
                if held {
                    let session: SessionRow = sqlx::query_as(&session_sql)
                        .bind(id)
                        .fetch_one(&mut *$tx)
                        .await?;
                    Some(AppliedOps { session, rows, jobs })
                } else {
                    None
                }
            }};
        }
        let applied = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let applied = apply_all!(tx);
            if applied.is_some() {
                tx.commit().await?;
            }
            applied
        });
        Ok(applied)
    }

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

    /// The session of `workflow` that is open (running or waiting), if one is.
    pub async fn open_session_of(&self, workflow: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "select {SESSION_COLUMNS} from sessions where workflow = $1 \
             and state in ('running', 'waiting') limit 1"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(workflow).fetch_optional(pool).await?
        }))
    }

    /// Deletes the sessions that ended beyond the newest `keep` of each workflow (their steps,
    /// rows and job links go with them), and the status rows of runs older than a session's
    /// newest `runs`; returns how many sessions went.
    pub async fn prune_sessions(&self, keep: u32, runs: u32) -> Result<u64, StoreError> {
        let sessions = "delete from sessions where state not in ('running', 'waiting') \
                        and id not in (select id from (select id, row_number() over \
                        (partition by workflow order by id desc) as n from sessions \
                        where state not in ('running', 'waiting')) ranked where n <= $1)";
        let rows = "delete from step_status where run <= \
                    (select s.run from sessions s where s.id = step_status.session_id) - $1";
        Ok(on_pool!(self, pool => {
            let gone = sqlx::query(sessions)
                .bind(i64::from(keep))
                .execute(pool)
                .await?
                .rows_affected();
            sqlx::query(rows).bind(i64::from(runs.max(1))).execute(pool).await?;
            gone
        }))
    }

    /// The newest `limit` sessions, newest first (the tasks view).
    pub async fn recent_sessions(&self, limit: u32) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "select {SESSION_COLUMNS} from sessions order by started_at desc, id desc limit $1"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(i64::from(limit)).fetch_all(pool).await?
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

    /// The steps a run has entered, in order.
    pub async fn session_steps(&self, id: Uuid, run: u32) -> Result<Vec<StepRow>, StoreError> {
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(STEPS_SQL).bind(id).bind(i64::from(run)).fetch_all(pool).await?
        }))
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

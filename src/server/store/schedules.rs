//! Schedules and their fire times. A fire is one transaction: a compare-and-set on the schedule's
//! `next_fire_at` and `revision` (the process that loses it writes nothing), the rows of the fire
//! times it missed, its job(s) (unless the type is busy: then it is `skipped`, with why) and its
//! own row. A workflow's fire goes through `apply_session_ops` with [`FireClaim`] as one of its
//! ops, so the session and the fire are written together too.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{jobs::insert_job_sql, JobRow, NewJob, Store, StoreError};
use crate::{model::FireOutcome, on_pool};

/// A row of `schedules`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: String,
    /// JSON of `ScheduleTarget`.
    pub target: String,
    /// JSON of the `ScheduleSpec` in effect.
    pub spec: String,
    /// JSON of the file's (or the default's) `ScheduleSpec`.
    pub file_spec: Option<String>,
    pub edited_by: Option<String>,
    pub edited_at: Option<DateTime<Utc>>,
    pub anchor: DateTime<Utc>,
    pub next_fire_at: Option<DateTime<Utc>>,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// A row of `schedule_fires`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FireRow {
    pub schedule_id: String,
    pub fire_time: DateTime<Utc>,
    pub outcome: String,
    pub reason: Option<String>,
    /// JSON array of job ids.
    pub job_ids: String,
    pub session_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

const SCHEDULE_COLUMNS: &str = "id, target, spec, file_spec, edited_by, edited_at, anchor, \
                                next_fire_at, revision, updated_at";
const FIRE_COLUMNS: &str =
    "schedule_id, fire_time, outcome, reason, job_ids, session_id, recorded_at";

/// The schedule a fire claims: it must still be at `revision` with `next_fire_at = expected`;
/// it moves to `next`. The missed fire times before it are written with it.
#[derive(Clone, Debug)]
pub struct FireClaim {
    pub schedule_id: String,
    pub revision: i64,
    pub expected: DateTime<Utc>,
    pub next: Option<DateTime<Utc>>,
    /// Fire times nobody ran, each with its reason.
    pub missed: Vec<(DateTime<Utc>, String)>,
    /// The fire time that runs (or is skipped) now, if any.
    pub fire_time: Option<DateTime<Utc>>,
    /// Set when the fire is skipped before anything is queued (a workflow with an open session).
    pub skip: Option<String>,
    pub now: DateTime<Utc>,
}

/// What a claimed fire wrote.
#[derive(Clone, Debug)]
pub struct Fired {
    /// The jobs it queued.
    pub jobs: Vec<JobRow>,
    /// The fire's own row, when it had a fire time.
    pub fire: Option<FireRow>,
}

/// The compare-and-set of a claim (`$1` next, `$2` now, `$3` id, `$4` revision, `$5` expected).
pub(super) const CLAIM_SQL: &str = "update schedules set next_fire_at = $1, updated_at = $2 \
     where id = $3 and revision = $4 and next_fire_at = $5";
/// One fire row (`$1` id … `$7` recorded_at); a time already recorded is left as it is.
pub(super) const FIRE_SQL: &str = "insert into schedule_fires (schedule_id, fire_time, outcome, \
     reason, job_ids, session_id, recorded_at) values ($1, $2, $3, $4, $5, $6, $7) \
     on conflict (schedule_id, fire_time) do nothing";

impl Store {
    /// The sync types turned on or off from the UI or the API: name, on or off.
    pub async fn type_switches(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let sql = "select name, enabled from sync_type_settings order by name";
        Ok(on_pool!(read self, pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }

    /// Turns sync type `name` on or off, by `who`.
    pub async fn switch_type(
        &self,
        name: &str,
        enabled: bool,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "insert into sync_type_settings (name, enabled, changed_by, changed_at) \
                   values ($1, $2, $3, $4) on conflict (name) do update set \
                   enabled = excluded.enabled, changed_by = excluded.changed_by, \
                   changed_at = excluded.changed_at";
        on_pool!(self, pool => {
            sqlx::query(sql).bind(name).bind(enabled).bind(who).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Every schedule, by id.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let sql = format!("select {SCHEDULE_COLUMNS} from schedules order by id");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, ScheduleRow>(&sql).fetch_all(pool).await?
        }))
    }

    /// One schedule.
    pub async fn schedule(&self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        let sql = format!("select {SCHEDULE_COLUMNS} from schedules where id = $1");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, ScheduleRow>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// The schedules due at `now` (enabled, next fire time reached).
    pub async fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleRow>, StoreError> {
        let sql = format!(
            "select {SCHEDULE_COLUMNS} from schedules where next_fire_at is not null \
             and next_fire_at <= $1 order by next_fire_at"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, ScheduleRow>(&sql).bind(now).fetch_all(pool).await?
        }))
    }

    /// The earliest next fire time of any schedule.
    pub async fn next_schedule_fire(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sql = "select min(next_fire_at) from schedules where next_fire_at is not null";
        Ok(on_pool!(read self, pool => {
            sqlx::query_scalar::<_, Option<DateTime<Utc>>>(sql).fetch_one(pool).await?
        }))
    }

    /// Seeds schedule `id` from the file: inserted if it is new; else the file's value is
    /// noted, and also put in effect when nobody edited the schedule and it differs (with
    /// `anchor` and `next`). Returns whether the timing in effect changed.
    #[allow(clippy::too_many_arguments)]
    pub async fn seed_schedule(
        &self,
        id: &str,
        target: &str,
        file_spec: &str,
        anchor: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let insert = "insert into schedules (id, target, spec, file_spec, anchor, next_fire_at, \
                      revision, updated_at) values ($1, $2, $3, $3, $4, $5, 1, $6) \
                      on conflict (id) do nothing";
        let note = "update schedules set file_spec = $2, target = $3 where id = $1";
        let follow = "update schedules set spec = $2, anchor = $3, next_fire_at = $4, \
                      revision = revision + 1, updated_at = $5 \
                      where id = $1 and edited_at is null and spec <> $2";
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(insert)
                .bind(id).bind(target).bind(file_spec).bind(anchor).bind(next).bind(now)
                .execute(&mut *tx).await?.rows_affected() == 1;
            let changed = if inserted {
                true
            } else {
                sqlx::query(note).bind(id).bind(file_spec).bind(target).execute(&mut *tx).await?;
                sqlx::query(follow)
                    .bind(id).bind(file_spec).bind(anchor).bind(next).bind(now)
                    .execute(&mut *tx).await?.rows_affected() == 1
            };
            tx.commit().await?;
            changed
        }))
    }

    /// Puts `spec` in effect for schedule `id` (created when new), by `who` (none: back to the
    /// file's value, which `spec` then is). Returns the row as it is now.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_schedule(
        &self,
        id: &str,
        target: &str,
        spec: &str,
        who: Option<&str>,
        anchor: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRow, StoreError> {
        let sql = format!(
            "insert into schedules (id, target, spec, edited_by, edited_at, anchor, next_fire_at, \
             revision, updated_at) values ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
             on conflict (id) do update set spec = excluded.spec, edited_by = excluded.edited_by, \
             edited_at = excluded.edited_at, anchor = excluded.anchor, \
             next_fire_at = excluded.next_fire_at, revision = schedules.revision + 1, \
             updated_at = excluded.updated_at returning {SCHEDULE_COLUMNS}"
        );
        let edited_at = who.map(|_| now);
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, ScheduleRow>(&sql)
                .bind(id).bind(target).bind(spec).bind(who).bind(edited_at).bind(anchor)
                .bind(next).bind(now)
                .fetch_one(pool).await?
        }))
    }

    /// Fire times of schedule `id`, newest first, older than `before` when given.
    pub async fn schedule_fires(
        &self,
        id: &str,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<FireRow>, StoreError> {
        // No upper bound when none is given (a far-future time does not sort as text in
        // SQLite: `+262142-…` comes before `2026-…`).
        let bound = if before.is_some() {
            "and fire_time < $3"
        } else {
            "and $3 is null"
        };
        let sql = format!(
            "select {FIRE_COLUMNS} from schedule_fires where schedule_id = $1 {bound} \
             order by fire_time desc limit $2"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, FireRow>(&sql)
                .bind(id).bind(i64::from(limit)).bind(before)
                .fetch_all(pool).await?
        }))
    }

    /// The fire of schedule `schedule` that queued job `id`, if it did.
    pub async fn fire_of_job(
        &self,
        schedule: &str,
        id: Uuid,
    ) -> Result<Option<FireRow>, StoreError> {
        let sql = format!(
            "select {FIRE_COLUMNS} from schedule_fires where schedule_id = $1 and job_ids like $2 \
             order by fire_time desc limit 1"
        );
        Ok(on_pool!(read self, pool => {
            sqlx::query_as::<_, FireRow>(&sql)
                .bind(schedule)
                .bind(format!("%\"{id}\"%"))
                .fetch_optional(pool).await?
        }))
    }

    /// Claims a fire and writes it: `None` when the schedule moved meanwhile (another process
    /// fired it, or it was edited). `jobs` are queued unless a job of their type already waits
    /// or runs (that type is skipped, with why); with none queued the fire is `skipped`.
    pub async fn fire_schedule(
        &self,
        claim: &FireClaim,
        jobs: &[NewJob],
    ) -> Result<Option<Fired>, StoreError> {
        let job_sql = insert_job_sql();
        let busy_sql = "select id from jobs where sync_type = $1 \
                        and state in ('pending', 'running') order by id limit 1";
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(CLAIM_SQL)
                .bind(claim.next).bind(claim.now).bind(&claim.schedule_id)
                .bind(claim.revision).bind(claim.expected)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !claimed {
                return Ok(None);
            }
            for (time, reason) in &claim.missed {
                sqlx::query(FIRE_SQL)
                    .bind(&claim.schedule_id).bind(*time).bind(FireOutcome::Missed.as_str())
                    .bind(reason).bind("[]").bind(None::<Uuid>).bind(claim.now)
                    .execute(&mut *tx).await?;
            }
            let mut queued = Vec::new();
            let mut fire = None;
            if let Some(fire_time) = claim.fire_time {
                let mut busy = Vec::new();
                if claim.skip.is_none() {
                    for job in jobs {
                        let running: Option<Uuid> = sqlx::query_scalar(busy_sql)
                            .bind(&job.sync_type).fetch_optional(&mut *tx).await?;
                        if let Some(other) = running {
                            busy.push(format!("{} already has job {other} waiting or running", job.sync_type));
                            continue;
                        }
                        let row = sqlx::query_as::<_, JobRow>(&job_sql)
                            .bind(Uuid::now_v7())
                            .bind(&job.sync_type)
                            .bind(job.priority)
                            .bind(job.exclusive)
                            .bind(i64::from(job.max_attempts.max(1)))
                            .bind(job.run_at)
                            .bind(job.source.as_str())
                            .bind(&job.triggered_by)
                            .bind(job.session_id)
                            .bind(job.retry_of)
                            .bind(Some(&job.sync_type))
                            .bind(claim.now)
                            .bind(&job.note)
                            .fetch_one(&mut *tx).await?;
                        queued.push(row);
                    }
                }
                let outcome = if queued.is_empty() { FireOutcome::Skipped } else { FireOutcome::Fired };
                let reason = claim.skip.clone().or_else(|| {
                    if busy.is_empty() && queued.is_empty() {
                        Some("nothing to run".to_string())
                    } else {
                        (!busy.is_empty()).then(|| busy.join("; "))
                    }
                });
                let ids: Vec<String> = queued.iter().map(|j| j.id.to_string()).collect();
                let row = FireRow {
                    schedule_id: claim.schedule_id.clone(),
                    fire_time,
                    outcome: outcome.as_str().to_string(),
                    reason,
                    job_ids: serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()),
                    session_id: None,
                    recorded_at: claim.now,
                };
                sqlx::query(FIRE_SQL)
                    .bind(&row.schedule_id).bind(row.fire_time).bind(&row.outcome)
                    .bind(&row.reason).bind(&row.job_ids).bind(row.session_id).bind(row.recorded_at)
                    .execute(&mut *tx).await?;
                fire = Some(row);
            }
            tx.commit().await?;
            Some(Fired { jobs: queued, fire })
        }))
    }
}

//! The scheduler: schedules of sync types, workflows and the full sync, seeded from
//! `baton.toml` (and the built-in ones), kept in the database, edited from the UI and the API,
//! and fired by every Baton process on the database, each fire time once.
//!
//! A process sleeps until the earliest next fire time (at most [`RECHECK`], so edits made by
//! another process are seen), then fires what is due: one transaction per schedule claims the
//! fire time (a compare-and-set on `next_fire_at`), records missed times and queues the job or
//! starts the session. The fire times themselves come from [`spec`], which is pure.

pub mod freshness;
pub mod spec;
pub mod stats;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::freshness::judge;
use self::spec::{due, SpecError, Timing};
use super::{
    engine::{Engine, EngineError, Origin},
    events::EventBus,
    store::{FireClaim, FireRow, ScheduleRow, Store, StoreError},
    workflows::{WorkflowError, Workflows},
};
use crate::model::{
    EventKind, FireOutcome, Freshness, JobSource, ScheduleFire, ScheduleSpec, ScheduleTarget,
    ScheduleView, SyncStatus,
};

/// The longest a process sleeps between looks at the schedules.
pub const RECHECK: Duration = Duration::from_secs(5);

/// How long a process waits before trying again a due schedule that could not fire.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A schedule as the file (or the built-in default) defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleDef {
    /// Its name: the sync type's or workflow's, or `full-sync`.
    pub id: String,
    /// What it runs.
    pub target: ScheduleTarget,
    /// When.
    pub spec: ScheduleSpec,
}

/// The built-in schedules: seed 001's full sync every day at 12:00, and seed 004's employee sync
/// every 6 hours. In demo mode the full sync is off (it would pull the demo ERP every noon for
/// nobody) and the employee sync stays on, so the dashboard shows a schedule at work.
pub fn built_in_schedules(demo: bool) -> Vec<ScheduleDef> {
    vec![
        ScheduleDef {
            id: "full-sync".into(),
            target: ScheduleTarget::Full,
            spec: ScheduleSpec::cron("0 12 * * *", None).enabled(!demo),
        },
        ScheduleDef {
            id: "employee-changes".into(),
            target: ScheduleTarget::Sync("employee-changes".into()),
            spec: ScheduleSpec::cron("0 */6 * * *", None),
        },
    ]
}

/// Why a schedule call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No schedule, sync type or workflow of that name.
    #[error("there is no schedule, sync type or workflow `{0}`")]
    NotFound(String),
    /// The timing cannot be used.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// Running it now was refused by the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Starting its workflow was refused.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `run now` started.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The jobs queued (or already waiting).
    pub job_ids: Vec<String>,
    /// The session started.
    pub session_id: Option<String>,
}

/// The scheduler service; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    engine: Engine,
    workflows: Workflows,
    events: EventBus,
    defs: BTreeMap<String, ScheduleDef>,
    wake: Notify,
    /// A type whose last success is older than this is stale.
    stale_after: Duration,
    /// How fresh each type was at the last look, to publish only changes to late or stale.
    seen: std::sync::Mutex<BTreeMap<String, Freshness>>,
}

/// Each type's freshness, why, and its last success.
pub type Judged = BTreeMap<String, (Freshness, Option<String>, Option<DateTime<Utc>>)>;

/// How often the loop judges freshness (and may publish `sync-late`).
pub const FRESHNESS_EVERY: Duration = Duration::from_secs(30);

impl Scheduler {
    /// A scheduler over `defs` (the file's schedules and the built-in ones).
    pub fn new(
        store: Store,
        engine: Engine,
        workflows: Workflows,
        events: EventBus,
        defs: impl IntoIterator<Item = ScheduleDef>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                engine,
                workflows,
                events,
                defs: defs.into_iter().map(|d| (d.id.clone(), d)).collect(),
                wake: Notify::new(),
                stale_after: Duration::from_secs(2 * 86_400),
                seen: Default::default(),
            }),
        }
    }

    /// The same scheduler, calling a type stale when its last success is older than `age`.
    pub fn with_stale_after(self, age: Duration) -> Self {
        let inner =
            Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("configure before cloning"));
        Self {
            inner: Arc::new(Inner {
                stale_after: age,
                ..inner
            }),
        }
    }

    /// Each type's freshness now, with why: judged by the fires of its own schedule, else the
    /// full sync's when it belongs to it.
    pub async fn freshness(&self, now: DateTime<Utc>) -> Result<Judged, ScheduleError> {
        let rows = self.inner.store.schedules().await?;
        self.freshness_of(&rows, now).await
    }

    /// [`Scheduler::freshness`] over schedule rows already read.
    async fn freshness_of(
        &self,
        rows: &[ScheduleRow],
        now: DateTime<Utc>,
    ) -> Result<Judged, ScheduleError> {
        let store = &self.inner.store;
        let successes: BTreeMap<String, DateTime<Utc>> =
            store.last_successes().await?.into_iter().collect();
        let enabled = |row: &ScheduleRow| row.next_fire_at.is_some();
        let full = rows.iter().find(|r| {
            enabled(r) && parse::<ScheduleTarget>(&r.target) == Some(ScheduleTarget::Full)
        });
        let mut judged = BTreeMap::new();
        for ty in self.inner.engine.types() {
            let own = rows.iter().find(|r| {
                enabled(r)
                    && parse::<ScheduleTarget>(&r.target)
                        == Some(ScheduleTarget::Sync(ty.name.clone()))
            });
            let schedule = own.or(full.filter(|_| ty.in_full && ty.enabled && !ty.takes_records));
            let fires = match schedule {
                Some(row) => store
                    .schedule_fires(&row.id, None, 2)
                    .await?
                    .into_iter()
                    .map(fire_view)
                    .collect(),
                None => Vec::new(),
            };
            let last = successes.get(&ty.name).copied();
            let (freshness, note) = judge(
                last,
                &fires,
                schedule.is_some(),
                now,
                self.inner.stale_after,
            );
            judged.insert(ty.name.clone(), (freshness, note, last));
        }
        Ok(judged)
    }

    /// Judges freshness and publishes `sync-late` for each type that turned late or stale.
    pub async fn watch_freshness(&self, now: DateTime<Utc>) -> Result<(), ScheduleError> {
        let judged = self.freshness(now).await?;
        let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (name, (freshness, note, last_success)) in judged {
            let before = seen.insert(name.clone(), freshness);
            let worse = matches!(freshness, Freshness::Late | Freshness::Stale);
            if worse && before != Some(freshness) {
                tracing::warn!(sync_type = %name, freshness = freshness.as_str(), note = note.as_deref().unwrap_or(""), "a sync type is behind its schedule");
                self.inner
                    .events
                    .publish(EventKind::SyncLate(crate::model::FreshnessChange {
                        sync_type: name,
                        freshness,
                        note,
                        last_success,
                    }));
            }
        }
        Ok(())
    }

    /// Writes the file's schedules to the database: new ones are added; one nobody edited
    /// follows the file; an edited one keeps its timing and notes the file's beside it.
    pub async fn seed(&self, now: DateTime<Utc>) -> Result<(), ScheduleError> {
        let now = millis(now);
        for def in self.inner.defs.values() {
            let timing = Timing::compile(&def.spec)?;
            let next = def
                .spec
                .enabled
                .then(|| timing.next_after(now, now))
                .flatten();
            self.inner
                .store
                .seed_schedule(
                    &def.id,
                    &json(&def.target),
                    &json(&def.spec),
                    now,
                    next,
                    now,
                )
                .await?;
        }
        Ok(())
    }

    /// Every schedule.
    pub async fn list(&self) -> Result<Vec<ScheduleView>, ScheduleError> {
        let mut views = Vec::new();
        for row in self.inner.store.schedules().await? {
            views.push(self.view(row).await?);
        }
        Ok(views)
    }

    /// One schedule.
    pub async fn get(&self, id: &str) -> Result<ScheduleView, ScheduleError> {
        match self.inner.store.schedule(id).await? {
            Some(row) => self.view(row).await,
            None => Err(ScheduleError::NotFound(id.to_string())),
        }
    }

    /// The next five fire times of `spec` from `now`, or why it cannot be used.
    pub fn preview(
        spec: &ScheduleSpec,
        now: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, SpecError> {
        Ok(Timing::compile(spec)?.upcoming(now, now, 5))
    }

    /// Puts `spec` in effect for schedule `id` (a sync type or workflow without one gets one),
    /// as `who` asked. Its interval grid starts now.
    pub async fn update(
        &self,
        id: &str,
        spec: &ScheduleSpec,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<ScheduleView, ScheduleError> {
        let now = millis(now);
        let target = self.target_of(id).await?;
        let timing = Timing::compile(spec)?;
        let next = spec.enabled.then(|| timing.next_after(now, now)).flatten();
        let row = self
            .inner
            .store
            .save_schedule(id, &json(&target), &json(spec), Some(who), now, next, now)
            .await?;
        let view = self.view(row).await?;
        self.inner
            .events
            .publish(EventKind::ScheduleUpdated(view.clone()));
        self.inner.wake.notify_one();
        Ok(view)
    }

    /// Runs schedule `id`'s target now, for `origin` (a person's "Run now"): the same engine
    /// call as the API's; a job already waiting is the one returned.
    pub async fn run_now(&self, id: &str, origin: &Origin) -> Result<Started, ScheduleError> {
        let target = self.target_of(id).await?;
        let engine = &self.inner.engine;
        Ok(match target {
            ScheduleTarget::Sync(name) => Started {
                job_ids: vec![engine.request_sync(&name, origin.clone()).await?.0.id],
                session_id: None,
            },
            ScheduleTarget::Full => Started {
                job_ids: engine
                    .request_full(origin.clone())
                    .await?
                    .into_iter()
                    .map(|j| j.id)
                    .collect(),
                session_id: None,
            },
            ScheduleTarget::Workflow(name) => Started {
                job_ids: Vec::new(),
                session_id: Some(self.inner.workflows.start(&name, origin).await?.to_string()),
            },
        })
    }

    /// Fire times of schedule `id`, newest first, before `before`.
    pub async fn fires(
        &self,
        id: &str,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<ScheduleFire>, ScheduleError> {
        if self.inner.store.schedule(id).await?.is_none() {
            return Err(ScheduleError::NotFound(id.to_string()));
        }
        Ok(self
            .inner
            .store
            .schedule_fires(id, before, limit)
            .await?
            .into_iter()
            .map(fire_view)
            .collect())
    }

    /// The fire that queued job `job`, when a schedule did (its `triggered_by` names it).
    pub async fn fire_of(
        &self,
        job: &crate::model::Job,
    ) -> Result<Option<ScheduleFire>, ScheduleError> {
        let Some(schedule) = job
            .triggered_by
            .as_deref()
            .and_then(|t| t.strip_prefix("schedule:"))
        else {
            return Ok(None);
        };
        let Ok(id) = job.id.parse::<Uuid>() else {
            return Ok(None);
        };
        Ok(self
            .inner
            .store
            .fire_of_job(schedule, id)
            .await?
            .map(fire_view))
    }

    /// Turns sync type `name` on or off for every process on the database, as `who` asked:
    /// stored, applied here at once, by the others at their next look (within [`RECHECK`]).
    /// Jobs already queued still run; no new one is requested or scheduled while it is off.
    pub async fn switch_type(
        &self,
        name: &str,
        enabled: bool,
        who: &str,
    ) -> Result<(), ScheduleError> {
        if !self.inner.engine.has_type(name) {
            return Err(ScheduleError::NotFound(name.to_string()));
        }
        self.inner
            .store
            .switch_type(name, enabled, who, Utc::now())
            .await?;
        self.follow_switches().await?;
        // Pages read the status again on a queue change.
        self.inner.engine.notify_queued();
        Ok(())
    }

    /// Applies the stored on/off switches of the sync types to this process.
    pub async fn follow_switches(&self) -> Result<(), ScheduleError> {
        for (name, enabled) in self.inner.store.type_switches().await? {
            if self.inner.engine.set_enabled(&name, enabled) {
                tracing::info!(sync_type = %name, enabled, "a sync type was turned {}", if enabled { "on" } else { "off" });
            }
        }
        Ok(())
    }

    /// Seed 004's statistics of every type over the last 7 and 30 days.
    pub async fn stats(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::model::TypeStats>, ScheduleError> {
        let rows = self
            .inner
            .store
            .finished_since(now - chrono::Duration::days(30))
            .await?;
        let mut types = self.inner.engine.types();
        types.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        let names: Vec<String> = types.into_iter().map(|t| t.name).collect();
        Ok(stats::type_stats(&names, &rows, now))
    }

    /// Fills each type's `next_run` in `status`: its own schedule's next fire time, or the full
    /// sync's for a type that belongs to it, whichever comes first.
    pub async fn annotate(&self, status: &mut SyncStatus) -> Result<(), ScheduleError> {
        let rows = self.inner.store.schedules().await?;
        for (name, (freshness, note, _)) in self.freshness_of(&rows, Utc::now()).await? {
            if let Some(ty) = status.types.get_mut(&name) {
                ty.freshness = freshness;
                ty.freshness_note = note;
            }
        }
        let types = self.inner.engine.types();
        for row in rows {
            let Some(next) = row.next_fire_at else {
                continue;
            };
            let names: Vec<String> = match parse::<ScheduleTarget>(&row.target) {
                Some(ScheduleTarget::Sync(name)) => vec![name],
                Some(ScheduleTarget::Full) => types
                    .iter()
                    .filter(|t| t.enabled && t.in_full && !t.takes_records)
                    .map(|t| t.name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            for name in names {
                if let Some(ty) = status.types.get_mut(&name) {
                    ty.next_run = Some(ty.next_run.map_or(next, |n| n.min(next)));
                }
            }
        }
        Ok(())
    }

    /// Fires every schedule due at `now`; returns how many fire times were recorded.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, ScheduleError> {
        let now = millis(now);
        let mut recorded = 0;
        for row in self.inner.store.due_schedules(now).await? {
            match self.fire(&row, now).await {
                Ok(n) => recorded += n,
                Err(err) => {
                    tracing::warn!(schedule = %row.id, error = %err, "a schedule could not fire; it is tried again")
                }
            }
        }
        Ok(recorded)
    }

    /// Fires schedule `row` at `now`: claims its due time, records what it missed, runs it.
    async fn fire(&self, row: &ScheduleRow, now: DateTime<Utc>) -> Result<usize, ScheduleError> {
        let Some(expected) = row.next_fire_at else {
            return Ok(0);
        };
        let spec: ScheduleSpec = parse(&row.spec).ok_or_else(|| {
            ScheduleError::Invalid(SpecError {
                field: "spec",
                message: format!("the stored timing of `{}` cannot be read", row.id),
            })
        })?;
        let timing = Timing::compile(&spec)?;
        let Some(plan) = due(&timing, row.anchor, expected, now, spec.on_missed) else {
            return Ok(0);
        };
        let missed_reason = "no Baton process was running".to_string();
        let mut missed: Vec<(DateTime<Utc>, String)> = plan
            .missed
            .iter()
            .map(|t| (*t, missed_reason.clone()))
            .collect();
        if plan.missed_uncounted > 0 {
            if let Some(first) = missed.first_mut() {
                first.1 = format!(
                    "{missed_reason} (and {} earlier fire times, not listed)",
                    plan.missed_uncounted
                );
            }
        }
        let recorded = missed.len() + usize::from(plan.fire.is_some());
        let mut claim = FireClaim {
            schedule_id: row.id.clone(),
            revision: row.revision,
            expected,
            next: plan.next,
            missed,
            fire_time: plan.fire,
            skip: None,
            // When the fire is written (a tick that fires many writes them one after another),
            // or the test clock's time when that is later.
            now: millis(Utc::now()).max(now),
        };
        let origin = Origin {
            source: JobSource::Scheduler,
            triggered_by: Some(format!("schedule:{}", row.id)),
            note: None,
            session_id: None,
        };
        let engine = &self.inner.engine;
        let target: Option<ScheduleTarget> = parse(&row.target);
        let mut jobs = Vec::new();
        match &target {
            Some(ScheduleTarget::Sync(name)) => match engine.new_job(name, &origin) {
                Ok(job) => jobs.push(job),
                Err(err) => claim.skip = Some(err.to_string()),
            },
            Some(ScheduleTarget::Full) => {
                for ty in engine.types() {
                    if ty.enabled && ty.in_full && !ty.takes_records {
                        jobs.extend(engine.new_job(&ty.name, &origin).ok());
                    }
                }
            }
            Some(ScheduleTarget::Workflow(name)) if plan.fire.is_some() => {
                match self
                    .inner
                    .workflows
                    .start_with(name, &origin, Some(claim.clone()))
                    .await
                {
                    Ok(Some(session)) => {
                        let metrics = engine.metrics();
                        metrics.schedule_fired(&row.id, "missed", claim.missed.len(), None);
                        let late = plan.fire.and_then(|t| (Utc::now() - t).to_std().ok());
                        metrics.schedule_fired(&row.id, "fired", 1, late);
                        self.audit(&row.id, &target, true, None, &format!("session {session}"))
                            .await;
                        self.fired(&row.id).await;
                        return Ok(recorded);
                    }
                    // Another process fired it, or it was edited: nothing was written.
                    Ok(None) => return Ok(0),
                    Err(err) => claim.skip = Some(err.to_string()),
                }
            }
            Some(ScheduleTarget::Workflow(_)) => {}
            None => claim.skip = Some("its target cannot be read".into()),
        }
        match self.inner.store.fire_schedule(&claim, &jobs).await? {
            Some(fired) => {
                if !fired.jobs.is_empty() {
                    engine.notify_queued();
                }
                let metrics = engine.metrics();
                metrics.schedule_fired(&row.id, "missed", claim.missed.len(), None);
                if let Some(fire) = &fired.fire {
                    let late = (fire.outcome == "fired")
                        .then(|| (fire.recorded_at - fire.fire_time).to_std().ok())
                        .flatten();
                    metrics.schedule_fired(&row.id, &fire.outcome, 1, late);
                    let ids: Vec<String> = fired.jobs.iter().map(|j| j.id.to_string()).collect();
                    self.audit(
                        &row.id,
                        &target,
                        fire.outcome == "fired",
                        fire.reason.clone(),
                        &format!(
                            "due {}; jobs [{}]",
                            fire.fire_time.to_rfc3339(),
                            ids.join(", ")
                        ),
                    )
                    .await;
                    match fire.outcome.as_str() {
                        "skipped" => {
                            tracing::info!(schedule = %row.id, reason = fire.reason.as_deref().unwrap_or(""), "a schedule's run was skipped")
                        }
                        _ => {
                            tracing::info!(schedule = %row.id, jobs = fired.jobs.len(), "a schedule fired")
                        }
                    }
                }
                self.fired(&row.id).await;
                Ok(recorded)
            }
            None => Ok(0),
        }
    }

    /// The audit log's row of a fire: who is `schedule:<id>` (issue 12: the scheduler's actions
    /// are audited like everyone's); `refused` when it was skipped, with why.
    async fn audit(
        &self,
        id: &str,
        target: &Option<ScheduleTarget>,
        done: bool,
        reason: Option<String>,
        detail: &str,
    ) {
        let target = match target {
            Some(ScheduleTarget::Sync(name)) => format!("sync_type:{name}"),
            Some(ScheduleTarget::Workflow(name)) => format!("workflow:{name}"),
            Some(ScheduleTarget::Full) => "sync:full".into(),
            None => format!("schedule:{id}"),
        };
        let row = crate::server::store::NewAudit {
            actor: format!("schedule:{id}"),
            actor_kind: "system",
            role: None,
            address: None,
            user_agent: None,
            action: "schedule.fire".into(),
            target: Some(target),
            outcome: if done { "done" } else { "refused" },
            status: None,
            reason,
            detail: Some(detail.to_string()),
        };
        if let Err(err) = self.inner.store.append_audit(row).await {
            tracing::warn!(schedule = %id, error = %err, "cannot write a fire's audit row");
        }
    }

    /// Publishes a schedule's new state after a fire.
    async fn fired(&self, id: &str) {
        match self.get(id).await {
            Ok(view) => {
                self.inner.events.publish(EventKind::ScheduleUpdated(view));
            }
            Err(err) => {
                tracing::warn!(schedule = %id, error = %err, "cannot read a schedule after its fire")
            }
        }
    }

    /// Fires due schedules until `shutdown`: sleeps until the earliest next fire time (at most
    /// [`RECHECK`]), or until a schedule is edited here.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut judged_at: Option<std::time::Instant> = None;
        let mut followed_at: Option<std::time::Instant> = None;
        loop {
            let now = Utc::now();
            if followed_at.is_none_or(|at| at.elapsed() >= RECHECK) {
                followed_at = Some(std::time::Instant::now());
                if let Err(err) = self.follow_switches().await {
                    tracing::warn!(error = %err, "the scheduler could not read the sync types' switches");
                }
            }
            let recorded = match self.tick(now).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "the scheduler could not read the schedules");
                    0
                }
            };
            if judged_at.is_none_or(|at| at.elapsed() >= FRESHNESS_EVERY) {
                judged_at = Some(std::time::Instant::now());
                if let Err(err) = self.watch_freshness(now).await {
                    tracing::warn!(error = %err, "the scheduler could not judge freshness");
                }
            }
            let wait = match self.inner.store.next_schedule_fire().await {
                Ok(Some(next)) => (next - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(RECHECK),
                _ => RECHECK,
            };
            // Still due and nothing fired: a fire that fails (the database refused it) is tried
            // again after a pause, not in a loop that hammers the database.
            let wait = if wait.is_zero() && recorded == 0 {
                RETRY_PAUSE
            } else {
                wait
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// What schedule `id` runs: its row's target, else the file's, else the sync type or
    /// workflow of that name.
    async fn target_of(&self, id: &str) -> Result<ScheduleTarget, ScheduleError> {
        if let Some(row) = self.inner.store.schedule(id).await? {
            if let Some(target) = parse(&row.target) {
                return Ok(target);
            }
        }
        if let Some(def) = self.inner.defs.get(id) {
            return Ok(def.target.clone());
        }
        if self.inner.engine.has_type(id) {
            return Ok(ScheduleTarget::Sync(id.to_string()));
        }
        if self.inner.workflows.definitions().contains_key(id) {
            return Ok(ScheduleTarget::Workflow(id.to_string()));
        }
        Err(ScheduleError::NotFound(id.to_string()))
    }

    async fn view(&self, row: ScheduleRow) -> Result<ScheduleView, ScheduleError> {
        let recent = self
            .inner
            .store
            .schedule_fires(&row.id, None, 5)
            .await?
            .into_iter()
            .map(fire_view)
            .collect();
        let spec: ScheduleSpec =
            parse(&row.spec).unwrap_or_else(|| ScheduleSpec::every("1d").enabled(false));
        let file: Option<ScheduleSpec> = row.file_spec.as_deref().and_then(parse);
        Ok(ScheduleView {
            target: parse(&row.target).unwrap_or(ScheduleTarget::Sync(row.id.clone())),
            file: file.filter(|f| *f != spec),
            spec,
            id: row.id,
            edited_by: row.edited_by,
            edited_at: row.edited_at,
            next_run: row.next_fire_at,
            recent,
        })
    }
}

/// `t` to the millisecond: what both databases store exactly, so a compare-and-set on a stored
/// time matches and every process computes the same grid.
pub fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

fn fire_view(row: FireRow) -> ScheduleFire {
    ScheduleFire {
        schedule: row.schedule_id,
        fire_time: row.fire_time,
        outcome: FireOutcome::parse(&row.outcome).unwrap_or(FireOutcome::Skipped),
        reason: row.reason,
        job_ids: parse(&row.job_ids).unwrap_or_default(),
        session_id: row.session_id.map(|id: Uuid| id.to_string()),
        recorded_at: row.recorded_at,
    }
}

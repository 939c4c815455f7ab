//! Workflows: ordered steps, each running a set of sync jobs, waiting for a person (a gate with
//! a button), or both. The engine, not the UI, moves a session on: when every job of a step has
//! ended it writes the step completed (or failed) to the status table and enters the next step.
//! A step may continue on failure, which makes the session complete with warnings.
//!
//! A session changes state only as `lifecycle::session` says, and every change is one
//! transaction of [`SessionOp`]s (`Store::apply_session_ops`): completing a step and entering the
//! next, queueing a step's jobs and linking them to it, opening a gate, starting over. Each is a
//! compare-and-set on the session's state and run, so a change runs once, and nothing an old run
//! does lands in a new one. Every change publishes `session-updated` and its status rows.
//!
//! Job ends arrive as events on the bus; a reconcile pass over open sessions (at start and every
//! `poll_interval`) catches what a restart or a lagging subscriber missed.

mod current;
pub mod defs;
mod settle;
pub mod status;
pub mod view;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::{
    current::{run_of, warnings_of},
    defs::{StepDef, WorkflowDef},
    status::StatusError,
};
use super::{
    engine::{Engine, EngineError, Origin},
    events::EventBus,
    lifecycle::session::{apply, SessionEvent},
    store::{AppliedOps, NewSession, SessionOp, SessionRow, Store, StoreError},
};
use crate::model::{EventKind, SessionCleared, SessionState, StepStatus};

/// Why a workflow call did nothing.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// No workflow with that id.
    #[error("there is no workflow `{name}`; the known ones are: {}", .known.join(", "))]
    UnknownWorkflow {
        /// The id asked for.
        name: String,
        /// The ids there are.
        known: Vec<String>,
    },
    /// No session with that id.
    #[error("there is no session {0}")]
    NotFound(Uuid),
    /// The session or step is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The step is not (any more) in its workflow's definition.
    #[error("workflow `{workflow}` has no step {step} (any more); it has {steps}")]
    StepGone {
        /// The workflow.
        workflow: String,
        /// The step asked for.
        step: u32,
        /// How many it has.
        steps: usize,
    },
    /// The workflow has a session open already; a second would run beside it.
    #[error("workflow `{workflow}` has a session open already ({session}); finish, cancel or start it over first")]
    AlreadyOpen {
        /// The workflow.
        workflow: String,
        /// Its open session.
        session: Uuid,
    },
    /// A job could not be queued.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The status table could not be written.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts sessions and moves them on; cheap to clone.
#[derive(Clone)]
pub struct Workflows {
    inner: Arc<Inner>,
}

/// How much session history is kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Sessions that ended, per workflow: the newest this many are kept with their timelines.
    pub sessions: u32,
    /// Runs of one session whose status rows are kept (a session started over many times
    /// keeps only its newest runs' rows).
    pub runs: u32,
    /// How often history beyond that is deleted.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            sessions: 200,
            runs: 20,
            every: Duration::from_secs(60),
        }
    }
}

struct Inner {
    retention: Retention,
    store: Store,
    engine: Engine,
    events: EventBus,
    defs: BTreeMap<String, WorkflowDef>,
}

impl Workflows {
    /// A service running `defs` over the engine; of two with one id, the later one counts.
    pub fn new(
        store: Store,
        engine: Engine,
        events: EventBus,
        defs: impl IntoIterator<Item = WorkflowDef>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                retention: Retention::default(),
                store,
                engine,
                events,
                defs: defs.into_iter().map(|d| (d.id.clone(), d)).collect(),
            }),
        }
    }

    /// The same service, keeping `retention` of history.
    pub fn with_retention(self, retention: Retention) -> Self {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_retention is called before the service is shared"));
        Self {
            inner: Arc::new(Inner { retention, ..inner }),
        }
    }

    /// Deletes history beyond what is kept: sessions that ended, beyond the newest per
    /// workflow, and status rows of old runs; returns how many sessions went.
    pub async fn prune(&self) -> Result<u64, WorkflowError> {
        let retention = self.inner.retention;
        Ok(self
            .inner
            .store
            .prune_sessions(retention.sessions, retention.runs)
            .await?)
    }

    /// The workflows, by id.
    pub fn definitions(&self) -> &BTreeMap<String, WorkflowDef> {
        &self.inner.defs
    }

    fn def(&self, workflow: &str) -> Result<&WorkflowDef, WorkflowError> {
        self.inner
            .defs
            .get(workflow)
            .ok_or_else(|| WorkflowError::UnknownWorkflow {
                name: workflow.to_string(),
                known: self.inner.defs.keys().cloned().collect(),
            })
    }

    /// Step `n` of `workflow`; a session may outlive a step that baton.toml no longer has.
    fn step_def(&self, workflow: &str, n: u32) -> Result<&StepDef, WorkflowError> {
        let def = self.def(workflow)?;
        (n as usize)
            .checked_sub(1)
            .and_then(|i| def.steps.get(i))
            .ok_or_else(|| WorkflowError::StepGone {
                workflow: workflow.to_string(),
                step: n,
                steps: def.steps.len(),
            })
    }

    async fn session(&self, id: Uuid) -> Result<SessionRow, WorkflowError> {
        self.inner
            .store
            .session(id)
            .await?
            .ok_or(WorkflowError::NotFound(id))
    }

    /// Starts a session of `workflow`; returns its id. Its first step starts at once. Refused
    /// while the workflow has a session open (running or waiting).
    pub async fn start(&self, workflow: &str, origin: &Origin) -> Result<Uuid, WorkflowError> {
        match self.start_with(workflow, origin, None).await? {
            Some(id) => Ok(id),
            None => Err(WorkflowError::Conflict(format!(
                "workflow `{workflow}` changed while its session was starting; try again"
            ))),
        }
    }

    /// Starts a session of `workflow`, written in one transaction with a schedule's fire claim
    /// when given: `None` (nothing written) when the claim's compare-and-set misses (another
    /// process fired that time, or the schedule was edited).
    pub async fn start_with(
        &self,
        workflow: &str,
        origin: &Origin,
        fire: Option<crate::server::store::FireClaim>,
    ) -> Result<Option<Uuid>, WorkflowError> {
        let def = self.def(workflow)?;
        if let Some(open) = self.inner.store.open_session_of(workflow).await? {
            return Err(WorkflowError::AlreadyOpen {
                workflow: workflow.to_string(),
                session: open.id,
            });
        }
        let id = Uuid::now_v7();
        let mut ops = vec![SessionOp::Create(NewSession {
            id,
            workflow: workflow.to_string(),
            source: origin.source,
            triggered_by: origin.triggered_by.clone(),
            note: origin.note.clone(),
            started_at: Utc::now(),
        })];
        self.enter(def, 1, SessionState::Running, Vec::new(), origin, &mut ops)
            .await?;
        ops.extend(fire.map(SessionOp::Fire));
        match self.inner.store.apply_session_ops(id, 1, &ops).await {
            Ok(applied) => {
                self.published(applied.as_ref());
                Ok(applied.map(|_| id))
            }
            // Another start of this workflow got in first (the database admits one open).
            Err(StoreError::Database(err)) if is_unique_violation(&err) => {
                match self.inner.store.open_session_of(workflow).await? {
                    Some(open) => Err(WorkflowError::AlreadyOpen {
                        workflow: workflow.to_string(),
                        session: open.id,
                    }),
                    None => Err(StoreError::Database(err).into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The ops that enter step `n` of `def` in a session that is `state` with `warnings`, and go
    /// on through steps that end at once (no gate, no jobs): a gate opens and the session waits;
    /// a step with jobs starts them; past the last step the session ends. The session's own move
    /// comes first, so the transaction checks its run and state before anything else.
    async fn enter(
        &self,
        def: &WorkflowDef,
        mut n: u32,
        state: SessionState,
        warnings: Vec<String>,
        origin: &Origin,
        ops: &mut Vec<SessionOp>,
    ) -> Result<(), WorkflowError> {
        let mut after = Vec::new();
        let event = loop {
            let Some(step) = def.steps.get(n as usize - 1) else {
                break SessionEvent::Finished {
                    warnings: !warnings.is_empty(),
                };
            };
            if let Some(label) = &step.gate {
                let message = self.outlook(step, label).await;
                after.push(SessionOp::Enter {
                    step: n,
                    action: Some(label.clone()),
                });
                after.push(SessionOp::Status {
                    step: n,
                    name: step.name.clone(),
                    status: StepStatus::Waiting,
                    message: Some(message),
                    details: json!({ "action": label }),
                });
                break SessionEvent::GateOpened;
            }
            after.push(SessionOp::Enter {
                step: n,
                action: None,
            });
            if self.run_step(step, n, origin, &mut after)? {
                break SessionEvent::StepStarted;
            }
            n += 1;
        };
        let to = apply(state, event).map_err(|e| WorkflowError::Conflict(e.to_string()))?;
        let finished_at = matches!(event, SessionEvent::Finished { .. }).then(Utc::now);
        ops.push(SessionOp::State {
            from: state,
            to,
            warnings,
            finished_at,
        });
        ops.extend(after);
        Ok(())
    }

    /// The ops that run step `n` (entered, or pressed, or retried): its "processing" row and its
    /// jobs, queued and linked; `true` when it has jobs to wait for, `false` when it ended at
    /// once (completed, with its row).
    fn run_step(
        &self,
        step: &StepDef,
        n: u32,
        origin: &Origin,
        ops: &mut Vec<SessionOp>,
    ) -> Result<bool, WorkflowError> {
        ops.push(SessionOp::Status {
            step: n,
            name: step.name.clone(),
            status: StepStatus::Processing,
            message: Some(if step.sync_types.is_empty() {
                "working".to_string()
            } else {
                format!("running {}", step.sync_types.join(", "))
            }),
            details: json!({ "sync_types": step.sync_types }),
        });
        for sync_type in &step.sync_types {
            ops.push(SessionOp::Queue {
                step: n,
                job: self.inner.engine.new_job(sync_type, origin)?,
            });
        }
        if !step.sync_types.is_empty() {
            return Ok(true);
        }
        ops.push(SessionOp::MoveStep {
            step: n,
            from: StepStatus::Processing,
            to: StepStatus::Completed,
            acted_by: None,
        });
        ops.push(SessionOp::Status {
            step: n,
            name: step.name.clone(),
            status: StepStatus::Completed,
            message: Some("done".into()),
            details: json!({ "counts": settle::zero_counts() }),
        });
        Ok(false)
    }

    /// What pressing a gate would do ("12 orders ready to export"), as the step's tasks see it.
    async fn outlook(&self, step: &StepDef, label: &str) -> String {
        let mut outlook = Vec::new();
        let types = self.inner.engine.types();
        for name in &step.sync_types {
            if let Some(ty) = types.iter().find(|t| &t.name == name) {
                outlook.extend(ty.task.outlook(&self.inner.store, &ty.name).await);
            }
        }
        // "37 orders ready to export", not "37 orders …; 0 drafts …": a part with nothing to do
        // is left out while another has something.
        if outlook.iter().any(|o| !o.starts_with("0 ")) {
            outlook.retain(|o| !o.starts_with("0 "));
        }
        if outlook.is_empty() {
            format!("waiting for {label}")
        } else {
            outlook.join("; ")
        }
    }

    /// The session as the origin of its jobs.
    fn origin_of(session: &SessionRow) -> Origin {
        Origin {
            source: crate::model::JobSource::parse(&session.source)
                .unwrap_or(crate::model::JobSource::Manual),
            triggered_by: session.triggered_by.clone(),
            note: session.note.clone(),
            session_id: Some(session.id),
        }
    }

    /// Applies `ops` to the session's run, and publishes what they wrote; a conflict when the
    /// session moved meanwhile.
    async fn commit(
        &self,
        session: &SessionRow,
        ops: &[SessionOp],
        refusal: impl FnOnce() -> String,
    ) -> Result<AppliedOps, WorkflowError> {
        match self
            .inner
            .store
            .apply_session_ops(session.id, run_of(session), ops)
            .await
        {
            Ok(Some(applied)) => {
                self.published(Some(&applied));
                Ok(applied)
            }
            Ok(None) => Err(WorkflowError::Conflict(refusal())),
            Err(StoreError::Database(err)) if is_unique_violation(&err) => {
                Err(WorkflowError::AlreadyOpen {
                    workflow: session.workflow.clone(),
                    session: self
                        .inner
                        .store
                        .open_session_of(&session.workflow)
                        .await?
                        .map(|s| s.id)
                        .unwrap_or(session.id),
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Tells everyone what a change wrote: its status rows, the session's new state, and the
    /// queue that its jobs joined.
    fn published(&self, applied: Option<&AppliedOps>) {
        let Some(applied) = applied else {
            return;
        };
        for row in &applied.rows {
            self.inner
                .events
                .publish(EventKind::StepStatus(row.clone()));
        }
        self.inner
            .events
            .publish(EventKind::SessionUpdated(applied.session.update()));
        if !applied.jobs.is_empty() {
            self.inner.engine.notify_queued();
        }
    }

    /// Presses the gate of step `n` (its button), as `who`; 409 unless the step waits at a gate.
    pub async fn action(&self, id: Uuid, n: u32, who: Option<&str>) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let def = self.def(&session.workflow)?;
        let step = self.step_def(&session.workflow, n)?;
        let refused = || format!("step {n} of session {id} is not waiting for a person");
        if session.session_state() != SessionState::Waiting {
            return Err(WorkflowError::Conflict(refused()));
        }
        let mut ops = vec![
            SessionOp::State {
                from: SessionState::Waiting,
                to: SessionState::Running,
                warnings: warnings_of(&session),
                finished_at: None,
            },
            SessionOp::MoveStep {
                step: n,
                from: StepStatus::Waiting,
                to: StepStatus::Processing,
                acted_by: Some(who.unwrap_or("someone").to_string()),
            },
        ];
        let origin = Self::origin_of(&session);
        if !self.run_step(step, n, &origin, &mut ops)? {
            self.enter(
                def,
                n + 1,
                SessionState::Running,
                warnings_of(&session),
                &origin,
                &mut ops,
            )
            .await?;
        }
        self.commit(&session, &ops, refused).await?;
        Ok(())
    }

    /// Runs failed step `n` again; 409 unless it failed.
    pub async fn retry_step(&self, id: Uuid, n: u32) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let def = self.def(&session.workflow)?;
        let step = self.step_def(&session.workflow, n)?;
        let refused = || format!("step {n} of session {id} has not failed");
        if session.session_state() != SessionState::Failed {
            return Err(WorkflowError::Conflict(refused()));
        }
        let mut ops = vec![
            SessionOp::State {
                from: SessionState::Failed,
                to: SessionState::Running,
                warnings: warnings_of(&session),
                finished_at: None,
            },
            SessionOp::MoveStep {
                step: n,
                from: StepStatus::Failed,
                to: StepStatus::Processing,
                acted_by: None,
            },
        ];
        let origin = Self::origin_of(&session);
        if !self.run_step(step, n, &origin, &mut ops)? {
            self.enter(
                def,
                n + 1,
                SessionState::Running,
                warnings_of(&session),
                &origin,
                &mut ops,
            )
            .await?;
        }
        self.commit(&session, &ops, refused).await?;
        Ok(())
    }

    /// Starts the session over: a fresh run from step 1 (its history stays), whatever it was
    /// doing; the old run's jobs that have not ended are cancelled, and nothing the old run does
    /// any more can land in the new one.
    pub async fn clear(&self, id: Uuid) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let def = self.def(&session.workflow)?;
        let old_run = run_of(&session);
        let mut ops = vec![SessionOp::Restart {
            from: session.session_state(),
        }];
        let origin = Self::origin_of(&session);
        self.enter(def, 1, SessionState::Running, Vec::new(), &origin, &mut ops)
            .await?;
        let applied = self
            .commit(&session, &ops, || {
                format!("session {id} changed while it was being started over; try again")
            })
            .await?;
        self.inner
            .events
            .publish(EventKind::SessionCleared(SessionCleared {
                session_id: id.to_string(),
                run: applied.session.run(),
            }));
        self.cancel_jobs_of(id, old_run).await;
        Ok(())
    }

    /// Stops a running or waiting session: it ends cancelled, and its jobs that have not ended
    /// are cancelled; 409 for a session that has ended.
    pub async fn cancel(&self, id: Uuid) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let state = session.session_state();
        let to = apply(state, SessionEvent::Cancelled).map_err(|_| {
            WorkflowError::Conflict(format!(
                "session {id} is {}; only a running or waiting session can be cancelled",
                state.as_str()
            ))
        })?;
        let ops = [SessionOp::State {
            from: state,
            to,
            warnings: warnings_of(&session),
            finished_at: Some(Utc::now()),
        }];
        self.commit(&session, &ops, || {
            format!("session {id} changed while it was being cancelled; try again")
        })
        .await?;
        self.cancel_jobs_of(id, run_of(&session)).await;
        Ok(())
    }

    /// Cancels the jobs of run `run` of a session that have not ended.
    async fn cancel_jobs_of(&self, id: Uuid, run: u32) {
        let steps = match self.inner.store.session_steps(id, run).await {
            Ok(steps) => steps,
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "could not read the old run's steps");
                return;
            }
        };
        for step in steps {
            let n = step.step.clamp(1, i64::from(u32::MAX)) as u32;
            let Ok(jobs) = self.inner.store.step_jobs(id, run, n).await else {
                continue;
            };
            for job in jobs.iter().filter(|j| !j.job_state().is_terminal()) {
                if let Err(err) = self.inner.engine.cancel(job.id).await {
                    tracing::debug!(job = %job.id, error = %err, "could not cancel an old run's job");
                }
            }
        }
    }

    /// Ends a session whose workflow or step left the configuration: it cannot go on, so it
    /// fails, saying why, rather than stay open for ever.
    async fn abandon(&self, session: &SessionRow, why: String) -> Result<(), WorkflowError> {
        let state = session.session_state();
        let Ok(to) = apply(state, SessionEvent::Abandoned) else {
            return Ok(());
        };
        let mut warnings = warnings_of(session);
        warnings.push(why);
        let ops = [SessionOp::State {
            from: state,
            to,
            warnings,
            finished_at: Some(Utc::now()),
        }];
        match self.commit(session, &ops, String::new).await {
            Ok(_) | Err(WorkflowError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// One pass of the loop that moves sessions on (what [`Workflows::run`] does on every job
    /// end and every `poll_interval`): settles every processing step of every open session
    /// whose jobs have all ended. Tests call it to step sessions instead of waiting.
    pub async fn run_once(&self) -> Result<(), WorkflowError> {
        self.reconcile().await
    }

    /// Settles every processing step of every open session.
    async fn reconcile(&self) -> Result<(), WorkflowError> {
        for session in self.inner.store.open_sessions().await? {
            let run = run_of(&session);
            for step in self.inner.store.session_steps(session.id, run).await? {
                if step.state != "processing" {
                    continue;
                }
                let n = step.step.clamp(1, i64::from(u32::MAX)) as u32;
                match self.settle(session.id, run, n).await {
                    Ok(()) => {}
                    // Its workflow, or this step, left baton.toml while it ran: it cannot go on,
                    // so it ends failed (saying why) rather than stay open for ever.
                    Err(
                        err @ (WorkflowError::UnknownWorkflow { .. }
                        | WorkflowError::StepGone { .. }),
                    ) => {
                        tracing::warn!(session = %session.id, error = %err, "session ends: its definition changed");
                        self.abandon(&session, format!("step {n}: {err}")).await?;
                    }
                    // One session's trouble does not hold up the others.
                    Err(err) => {
                        tracing::warn!(session = %session.id, error = %err, "could not move a session on")
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows job ends on the bus (and reconciles every `every`) until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken, every: Duration) {
        let mut live = self.inner.events.subscribe(None).live;
        if let Err(err) = self.reconcile().await {
            tracing::warn!(error = %err, "could not reconcile workflow sessions");
        }
        let mut pruned = tokio::time::Instant::now();
        loop {
            if pruned.elapsed() >= self.inner.retention.every {
                pruned = tokio::time::Instant::now();
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sessions = n, "pruned old sessions"),
                    Err(err) => tracing::warn!(error = %err, "could not prune old sessions"),
                }
            }
            // A session's job ended, events were missed, or time passed: look at open sessions.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
                event = live.recv() => match event {
                    Ok(event) => match &event.kind {
                        EventKind::SyncCompleted(job) | EventKind::SyncError(job) | EventKind::SyncCancelled(job)
                            if job.session_id.is_some() && job.state.is_terminal() => {}
                        _ => continue,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
            if let Err(err) = self.reconcile().await {
                tracing::warn!(error = %err, "could not move workflow sessions on");
            }
        }
    }
}

/// Whether the database refused a write for a unique index (a second open session).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

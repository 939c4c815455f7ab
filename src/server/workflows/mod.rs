//! Workflows: ordered steps, each running a set of sync jobs, waiting for a person (a gate with
//! a button), or both. The engine, not the UI, moves a session on: when every job of a step has
//! ended it writes the step completed (or failed) to the status table and enters the next step.
//! A step may continue on failure, which makes the session complete with warnings.
//!
//! Job ends arrive as events on the bus; a reconcile pass over open sessions (at start and every
//! `poll_interval`) catches what a restart or a lagging subscriber missed. A step advances only
//! by a compare-and-set on its row in `session_steps`, so it advances once.

mod current;
pub mod defs;
mod settle;
pub mod status;
mod view;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::{
    current::{run_of, warnings_of},
    defs::{StepDef, WorkflowDef},
    status::{StatusError, StatusService},
};
use super::{
    engine::{Engine, EngineError, Origin},
    events::EventBus,
    store::{NewSession, SessionRow, Store, StoreError},
};
use crate::model::{EventKind, StepStatus};

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

struct Inner {
    store: Store,
    engine: Engine,
    status: StatusService,
    events: EventBus,
    defs: BTreeMap<String, WorkflowDef>,
}

impl Workflows {
    /// A service running `defs` over the engine; of two with one id, the later one counts.
    pub fn new(
        store: Store,
        engine: Engine,
        status: StatusService,
        events: EventBus,
        defs: impl IntoIterator<Item = WorkflowDef>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                engine,
                status,
                events,
                defs: defs.into_iter().map(|d| (d.id.clone(), d)).collect(),
            }),
        }
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
            .ok_or_else(|| {
                WorkflowError::Conflict(format!(
                    "workflow `{workflow}` has no step {n} (any more); it has {}",
                    def.steps.len()
                ))
            })
    }

    async fn session(&self, id: Uuid) -> Result<SessionRow, WorkflowError> {
        self.inner
            .store
            .session(id)
            .await?
            .ok_or(WorkflowError::NotFound(id))
    }

    /// Starts a session of `workflow`; returns its id. Its first step starts at once.
    pub async fn start(&self, workflow: &str, request: &Origin) -> Result<Uuid, WorkflowError> {
        self.def(workflow)?;
        let id = Uuid::now_v7();
        self.inner
            .store
            .insert_session(&NewSession {
                id,
                workflow: workflow.to_string(),
                source: request.source,
                triggered_by: request.triggered_by.clone(),
                started_at: Utc::now(),
            })
            .await?;
        let session = self.session(id).await?;
        self.enter(&session, 1).await?;
        Ok(id)
    }

    /// Enters step `n` of the session's run: waits at its gate, or starts its jobs; past the
    /// last step, ends the session.
    async fn enter(&self, session: &SessionRow, n: u32) -> Result<(), WorkflowError> {
        let def = self.def(&session.workflow)?;
        let run = run_of(session);
        let Some(step) = def.steps.get(n as usize - 1) else {
            let warnings = warnings_of(session);
            let state = if warnings.is_empty() {
                "completed"
            } else {
                "completed_with_warnings"
            };
            self.inner
                .store
                .set_session_state(session.id, state, Some(Utc::now()), &warnings)
                .await?;
            return Ok(());
        };
        if let Some(label) = &step.gate {
            // What pressing it would do ("12 orders ready to export"), as the tasks see it.
            let mut outlook = Vec::new();
            for ty in self.inner.engine.types() {
                if step.sync_types.contains(&ty.name) {
                    outlook.extend(ty.task.outlook(&self.inner.store, &ty.name).await);
                }
            }
            let message = if outlook.is_empty() {
                format!("waiting for {label}")
            } else {
                outlook.join("; ")
            };
            // The session waits, the row says so and the button is offered, all at once.
            return match self
                .inner
                .status
                .open_gate(session.id, run, n, &step.name, &message, label)
                .await
            {
                // Cleared meanwhile: its new run goes on without this gate.
                Ok(_) | Err(StatusError::NotFound(_)) => Ok(()),
                Err(err) => Err(err.into()),
            };
        }
        self.inner.store.enter_step(session.id, run, n).await?;
        self.start_jobs(session, n).await
    }

    /// Queues the step's jobs and says so; a step without jobs is done at once.
    async fn start_jobs(&self, session: &SessionRow, n: u32) -> Result<(), WorkflowError> {
        let step = self.step_def(&session.workflow, n)?;
        let run = run_of(session);
        self.inner
            .store
            .set_session_state(session.id, "running", None, &warnings_of(session))
            .await?;
        let request = Origin {
            source: crate::model::JobSource::parse(&session.source)
                .unwrap_or(crate::model::JobSource::Manual),
            triggered_by: session.triggered_by.clone(),
            session_id: Some(session.id),
        };
        // Said before the jobs are queued: a fast job could otherwise end, and the step be
        // settled, before its "processing" row was written.
        self.inner
            .status
            .write_status(
                session.id,
                n,
                &step.name,
                StepStatus::Processing,
                Some(&if step.sync_types.is_empty() {
                    "working".to_string()
                } else {
                    format!("running {}", step.sync_types.join(", "))
                }),
                &json!({ "sync_types": step.sync_types }),
            )
            .await?;
        let mut ids = Vec::new();
        for sync_type in &step.sync_types {
            let job = self
                .inner
                .engine
                .enqueue(sync_type, None, request.clone())
                .await?;
            ids.push(job.id.parse::<Uuid>().expect("a job id is a UUID"));
        }
        self.inner
            .store
            .add_session_jobs(session.id, run, n, &ids)
            .await?;
        if ids.is_empty() {
            self.settle(session.id, run, n).await?;
        }
        Ok(())
    }

    /// Presses the gate of step `n` (its button), as `who`; 409 unless the step waits at a gate.
    pub async fn action(&self, id: Uuid, n: u32, who: Option<&str>) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let run = run_of(&session);
        let steps = self.inner.store.session_steps(id, run).await?;
        let waiting = steps
            .iter()
            .any(|s| s.step == i64::from(n) && s.state == "waiting" && s.action.is_some());
        if !waiting
            || !self
                .inner
                .store
                .move_step(
                    id,
                    run,
                    n,
                    StepStatus::Waiting,
                    StepStatus::Processing,
                    Some(who.unwrap_or("someone")),
                )
                .await?
        {
            return Err(WorkflowError::Conflict(format!(
                "step {n} of session {id} is not waiting for a person"
            )));
        }
        self.start_jobs(&session, n).await
    }

    /// Runs failed step `n` again; 409 unless it failed.
    pub async fn retry_step(&self, id: Uuid, n: u32) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        let run = run_of(&session);
        if !self
            .inner
            .store
            .move_step(id, run, n, StepStatus::Failed, StepStatus::Processing, None)
            .await?
        {
            return Err(WorkflowError::Conflict(format!(
                "step {n} of session {id} has not failed"
            )));
        }
        self.start_jobs(&session, n).await
    }

    /// Resets the session for a fresh run (its history stays) and starts step 1 again.
    pub async fn clear(&self, id: Uuid) -> Result<(), WorkflowError> {
        self.session(id).await?;
        self.inner.status.clear_session(id).await?;
        let session = self.session(id).await?;
        self.enter(&session, 1).await
    }

    /// Settles every processing step of every open session.
    pub async fn reconcile(&self) -> Result<(), WorkflowError> {
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
                        err @ (WorkflowError::UnknownWorkflow { .. } | WorkflowError::Conflict(_)),
                    ) => {
                        tracing::warn!(session = %session.id, error = %err, "session ends: its definition changed");
                        let mut warnings = warnings_of(&session);
                        warnings.push(format!("step {n}: {err}"));
                        self.inner
                            .store
                            .set_session_state(session.id, "failed", Some(Utc::now()), &warnings)
                            .await?;
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
        loop {
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

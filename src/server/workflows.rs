//! Workflows: ordered steps, each running a set of sync jobs, waiting for a person (a gate with
//! a button), or both. The engine, not the UI, moves a session on: when every job of a step has
//! ended it writes the step completed (or failed) to the status table and enters the next step.
//! A step may continue on failure, which makes the session complete with warnings.
//!
//! Job ends arrive as events on the bus; a reconcile pass over open sessions (at start and every
//! `poll_interval`) catches what a restart or a lagging subscriber missed. A step advances only
//! by a compare-and-set on its row in `session_steps`, so it advances once.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    engine::{Engine, EngineError, Request},
    events::EventBus,
    status::{StatusError, StatusService},
    store::{JobRow, NewSession, SessionRow, SessionSnapshot, Store, StoreError},
};
use crate::model::{EventKind, JobState, SessionView, StepJob, StepStatus, StepView};

/// One step of a workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct StepDef {
    /// What the step is called ("Import web data").
    pub name: String,
    /// The sync types it runs, all at once.
    pub sync_types: Vec<String>,
    /// A gate: the step waits for a person to press this button first.
    pub gate: Option<String>,
    /// A failed job makes the session complete with warnings instead of failing it.
    pub continue_on_failure: bool,
}

impl StepDef {
    /// A step running `sync_types`, behind the button `gate` if given.
    pub fn new(
        name: &str,
        sync_types: &[&str],
        gate: Option<&str>,
        continue_on_failure: bool,
    ) -> Self {
        Self {
            name: name.into(),
            sync_types: sync_types.iter().map(|t| t.to_string()).collect(),
            gate: gate.map(str::to_string),
            continue_on_failure,
        }
    }
}

/// A workflow: an id, a name, its steps in order.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowDef {
    /// `daily-sync`, `employee-sync`, …
    pub id: String,
    /// Its name for people.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<StepDef>,
}

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

fn run_of(session: &SessionRow) -> u32 {
    session.run.clamp(0, i64::from(u32::MAX)) as u32
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
    pub async fn start(&self, workflow: &str, request: &Request) -> Result<Uuid, WorkflowError> {
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
        let request = Request {
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

    /// If every job of step `n` has ended, writes the step's outcome and moves on (once).
    async fn settle(&self, id: Uuid, run: u32, n: u32) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        if run_of(&session) != run {
            return Ok(());
        }
        let step = self.step_def(&session.workflow, n)?;
        let Some(since) = self
            .inner
            .store
            .session_steps(id, run)
            .await?
            .into_iter()
            .find(|s| s.step == i64::from(n) && s.state == "processing")
            .and_then(|s| s.started_at)
        else {
            return Ok(());
        };
        let latest = current_of(self.inner.store.step_jobs(id, run, n).await?, since);
        // Until every job is queued and linked, and every one has ended, the step goes on.
        if latest.len() < step.sync_types.len()
            || latest.values().any(|j| !j.job_state().is_terminal())
        {
            return Ok(());
        }
        let failed: Vec<&JobRow> = latest
            .values()
            .filter(|j| j.job_state() != JobState::Completed)
            .collect();
        const COUNTS: [&str; 5] = ["processed", "created", "updated", "changes", "errors"];
        let mut counts: BTreeMap<&str, u64> = COUNTS.into_iter().map(|k| (k, 0)).collect();
        for job in latest.values() {
            let result: serde_json::Value = job
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            for key in COUNTS {
                *counts.entry(key).or_default() +=
                    result.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
            }
        }
        *counts.entry("errors").or_default() += failed.len() as u64;
        let problems: Vec<String> = failed
            .iter()
            .map(|j| {
                format!(
                    "{}: {}",
                    j.sync_type,
                    j.error.as_deref().unwrap_or("cancelled")
                )
            })
            .collect();
        let ok = failed.is_empty() || step.continue_on_failure;
        let to = if ok {
            StepStatus::Completed
        } else {
            StepStatus::Failed
        };
        if !self
            .inner
            .store
            .move_step(id, run, n, StepStatus::Processing, to, None)
            .await?
        {
            return Ok(()); // someone else settled it
        }
        let mut warnings = warnings_of(&session);
        if ok && !failed.is_empty() {
            warnings.extend(
                problems
                    .iter()
                    .map(|p| format!("step {n} ({}): {p}", step.name)),
            );
        }
        // What the jobs noted without failing (validation findings, say) is the session's too.
        for job in latest.values() {
            let noted: Vec<String> = serde_json::from_str(&job.warnings).unwrap_or_default();
            warnings.extend(
                noted
                    .into_iter()
                    .map(|w| format!("step {n} ({}): {w}", step.name)),
            );
        }
        // The counts are in the details; the message says what ran.
        let ran = if step.sync_types.is_empty() {
            "done".to_string()
        } else {
            format!("{} done", step.sync_types.join(", "))
        };
        let message = match (ok, failed.is_empty()) {
            (true, true) => ran,
            (true, false) => format!("{ran}, with warnings: {}", problems.join("; ")),
            (false, _) => problems.join("; "),
        };
        let mut details = json!({ "counts": counts });
        if !problems.is_empty() {
            details["errors"] = json!(problems);
        }
        let findings: Vec<serde_json::Value> = latest
            .values()
            .filter_map(|j| j.result.as_deref())
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .filter_map(|r| r.get("findings").and_then(|f| f.as_array()).cloned())
            .flatten()
            .collect();
        if !findings.is_empty() {
            details["findings"] = json!(findings);
        }
        self.inner
            .status
            .write_status(id, n, &step.name, to, Some(&message), &details)
            .await?;
        if ok {
            self.inner
                .store
                .set_session_state(id, "running", None, &warnings)
                .await?;
            let session = self.session(id).await?;
            // Boxed: entering a step without jobs settles it, which enters the next.
            Box::pin(self.enter(&session, n + 1)).await
        } else {
            self.inner
                .store
                .set_session_state(id, "failed", Some(Utc::now()), &warnings)
                .await?;
            Ok(())
        }
    }

    /// The session with every step of its workflow and its timeline.
    pub async fn view(&self, id: Uuid) -> Result<SessionView, WorkflowError> {
        // One snapshot: the session's state, its steps and its rows as of one moment.
        let SessionSnapshot {
            session,
            status,
            steps: entered,
            mut jobs,
        } = self
            .inner
            .store
            .session_snapshot(id)
            .await?
            .ok_or(WorkflowError::NotFound(id))?;
        let def = self.def(&session.workflow)?;
        let run = run_of(&session);
        let mut steps = Vec::with_capacity(def.steps.len());
        for (i, step) in def.steps.iter().enumerate() {
            let n = i as u32 + 1;
            let latest = status.steps.iter().find(|r| r.step == n);
            let at = entered.iter().find(|s| s.step == i64::from(n));
            let since = at.and_then(|s| s.started_at);
            let jobs = match since {
                Some(since) => current_of(jobs.remove(&i64::from(n)).unwrap_or_default(), since),
                None => BTreeMap::new(),
            };
            steps.push(StepView {
                step: n,
                name: step.name.clone(),
                status: latest.map(|r| r.status).unwrap_or(StepStatus::Waiting),
                message: latest.and_then(|r| r.message.clone()),
                details: latest.map(|r| r.details.clone()).unwrap_or(json!({})),
                action: at
                    .filter(|s| s.state == "waiting")
                    .and_then(|s| s.action.clone()),
                reached: at.is_some(),
                started_at: since,
                jobs: jobs
                    .into_values()
                    .map(|job| StepJob {
                        id: job.id.to_string(),
                        state: job.job_state(),
                        processed: job.processed.max(0) as u64,
                        total: job.total.map(|t| t.max(0) as u64),
                        sync_type: job.sync_type,
                    })
                    .collect(),
            });
        }
        Ok(SessionView {
            id: id.to_string(),
            workflow: session.workflow.clone(),
            name: def.name.clone(),
            state: session.state.clone(),
            source: session.source.clone(),
            triggered_by: session.triggered_by.clone(),
            run,
            started_at: session.started_at,
            finished_at: session.finished_at,
            warnings: warnings_of(&session),
            steps,
            timeline: status.timeline,
        })
    }

    /// The newest session of `workflow`, if it ever ran; an unknown workflow is an error.
    pub async fn latest(&self, workflow: &str) -> Result<Option<SessionView>, WorkflowError> {
        self.def(workflow)?;
        match self.inner.store.latest_session(workflow).await? {
            Some(session) => Ok(Some(self.view(session.id).await?)),
            None => Ok(None),
        }
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

/// The jobs a step runs now, of all it started (oldest first): those queued since it (last)
/// began processing, the newest per sync type, by type; a retried step's earlier jobs do not
/// count.
fn current_of(jobs: Vec<JobRow>, since: chrono::DateTime<Utc>) -> BTreeMap<String, JobRow> {
    // Oldest first (UUIDv7 order), so the newest of a type is inserted last.
    jobs.into_iter()
        .filter(|j| j.created_at >= since)
        .map(|j| (j.sync_type.clone(), j))
        .collect()
}

fn warnings_of(session: &SessionRow) -> Vec<String> {
    serde_json::from_str(&session.warnings).unwrap_or_default()
}

/// The built-in workflows whose sync types this engine has: `daily-sync` (seed 000: import web
/// data, export orders at a person's click, ERP import, validation, web export at a person's
/// confirmation) and `employee-sync` (seed 004: snapshot, history and change detection, each
/// allowed to fail without stopping the others).
pub fn built_in_workflows(engine: &Engine) -> Vec<WorkflowDef> {
    let step = StepDef::new;
    let all = [
        WorkflowDef {
            id: "daily-sync".into(),
            name: "Daily sync".into(),
            steps: vec![
                step("Import web data", &["orders", "products"], None, false),
                step(
                    "Export orders",
                    &["export-orders"],
                    Some("Export Orders"),
                    false,
                ),
                step(
                    "ERP import",
                    &["customers", "prices", "ddt", "invoices"],
                    None,
                    false,
                ),
                step("Validation", &["validate"], None, true),
                step("Web export", &["web-export"], Some("Confirm"), false),
            ],
        },
        WorkflowDef {
            id: "employee-sync".into(),
            name: "Employee sync".into(),
            steps: vec![
                step("Snapshot collector", &["employee-snapshot"], None, true),
                step("History collector", &["employee-history"], None, true),
                step("Change detector", &["employee-changes"], None, true),
            ],
        },
    ];
    let known: std::collections::BTreeSet<String> =
        engine.types().into_iter().map(|t| t.name.clone()).collect();
    all.into_iter()
        .filter(|w| {
            w.steps
                .iter()
                .flat_map(|s| &s.sync_types)
                .all(|t| known.contains(t))
        })
        .collect()
}

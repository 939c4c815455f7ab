//! Workflows on the real engine and real databases: steps advance when their jobs end, gates
//! wait for a person, a step may continue on failure (complete with warnings), a failed step can
//! be retried, and a cleared session runs again with its history kept.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::helpers::eventually;
use async_trait::async_trait;
use baton::{
    model::{JobSource, StepStatus},
    server::{
        engine::{
            task::{NoopTask, SyncTask, TaskContext, TaskError, TaskOutput},
            types::SyncType,
            Engine, EngineSettings, Origin,
        },
        events::EventBus,
        lifecycle::retry::RetryPolicy,
        store::Store,
        workflows::{
            defs::{StepDef, WorkflowDef},
            status::StatusService,
            WorkflowError, Workflows,
        },
    },
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Fails its first `failures` runs, then succeeds with 5 processed.
struct FailsFirst {
    failures: u32,
    runs: AtomicU32,
}

#[async_trait]
impl SyncTask for FailsFirst {
    async fn run(&self, _ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(TaskError::Fatal("the ERP said no".into()));
        }
        Ok(TaskOutput {
            result: Some(json!({ "processed": 5, "created": 1 })),
        })
    }
}

fn ty(name: &str, task: Arc<dyn SyncTask>) -> SyncType {
    let mut ty = SyncType::new(name, 1, false, task);
    ty.retry = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    ty
}

fn step(name: &str, types: &[&str], gate: Option<&str>, continue_on_failure: bool) -> StepDef {
    StepDef::new(name, types, gate, continue_on_failure)
}

struct Setup {
    workflows: Workflows,
    status: StatusService,
    store: Store,
    stop: CancellationToken,
}

fn setup(store: Store) -> Setup {
    let events = EventBus::new(4096);
    let engine = Engine::new(
        store.clone(),
        events.clone(),
        Uuid::now_v7(),
        EngineSettings {
            workers: 4,
            poll_interval: Duration::from_millis(50),
            ..EngineSettings::default()
        },
        vec![
            ty("a", Arc::new(NoopTask)),
            ty("b", Arc::new(NoopTask)),
            ty("c", Arc::new(NoopTask)),
            ty(
                "flaky",
                Arc::new(FailsFirst {
                    failures: 1,
                    runs: AtomicU32::new(0),
                }),
            ),
            ty(
                "broken",
                Arc::new(FailsFirst {
                    failures: u32::MAX,
                    runs: AtomicU32::new(0),
                }),
            ),
        ],
    );
    let stop = CancellationToken::new();
    engine.start(stop.clone(), Duration::from_secs(5));
    let status = StatusService::new(store.clone(), events.clone());
    let workflows = Workflows::new(
        store.clone(),
        engine,
        events,
        [
            WorkflowDef {
                id: "gated".into(),
                name: "Gated".into(),
                steps: vec![
                    step("Import", &["a", "b"], None, false),
                    step("Export orders", &["c"], Some("Export Orders"), false),
                    step("Confirm", &[], Some("Confirm"), false),
                ],
            },
            WorkflowDef {
                id: "partial".into(),
                name: "Partial".into(),
                steps: vec![
                    step("Snapshot", &["a"], None, true),
                    step("History", &["broken"], None, true),
                    step("Changes", &["b"], None, true),
                ],
            },
            WorkflowDef {
                id: "strict".into(),
                name: "Strict".into(),
                steps: vec![
                    step("Import", &["flaky"], None, false),
                    step("After", &["a"], None, false),
                ],
            },
        ],
    );
    tokio::spawn(
        workflows
            .clone()
            .run(stop.clone(), Duration::from_millis(100)),
    );
    Setup {
        workflows,
        status,
        store,
        stop,
    }
}

fn request() -> Origin {
    Origin {
        source: JobSource::Manual,
        triggered_by: Some("anna@example.com".into()),
        note: None,
        session_id: None,
    }
}

/// Waits (bounded, for safety only) until the session's steps read as `want`.
async fn steps_become(status: &StatusService, id: Uuid, want: &[StepStatus]) {
    eventually(Duration::from_secs(20), || async move {
        let read = status.get_session_status(id).await.unwrap();
        let now: Vec<_> = read.steps.iter().map(|s| s.status).collect();
        if now == want {
            Ok(())
        } else {
            Err((now, read))
        }
    })
    .await
}

/// Waits (bounded) until step `n` offers its gate's button: its "waiting" row is written a
/// moment before the button can be pressed, as the page and the API see it.
async fn gate_opens(workflows: &Workflows, id: Uuid, n: usize) {
    eventually(Duration::from_secs(10), || async move {
        let view = workflows.view(id).await.unwrap();
        match view.steps[n - 1].action {
            Some(_) => Ok(()),
            None => Err(view),
        }
    })
    .await
}

async fn state_of(store: &Store, id: Uuid) -> String {
    store.session(id).await.unwrap().unwrap().state
}

/// Waits (bounded) until the session's state is `want`: the last status row is written a
/// moment before the session is marked finished.
async fn state_becomes(store: &Store, id: Uuid, want: &str) {
    eventually(Duration::from_secs(10), || async move {
        let state = state_of(store, id).await;
        if state == want {
            Ok(())
        } else {
            Err(state)
        }
    })
    .await
}

both_backends!(steps_advance_and_gates_wait_for_a_person, |db| {
    let s = setup(db.store().await);
    let id = s.workflows.start("gated", &request()).await.unwrap();
    use StepStatus::*;
    steps_become(&s.status, id, &[Completed, Waiting]).await;
    state_becomes(&s.store, id, "waiting").await;
    let read = s.status.get_session_status(id).await.unwrap();
    assert_eq!(read.steps[1].details["action"], "Export Orders");
    assert_eq!(read.steps[0].details["counts"]["errors"], 0);

    // Only a waiting gate can be pressed.
    let err = s.workflows.action(id, 1, Some("bob")).await.unwrap_err();
    assert!(matches!(err, WorkflowError::Conflict(_)), "{err}");
    let err = s.workflows.action(id, 3, Some("bob")).await.unwrap_err();
    assert!(matches!(err, WorkflowError::Conflict(_)), "{err}");

    gate_opens(&s.workflows, id, 2).await;
    s.workflows.action(id, 2, Some("bob")).await.unwrap();
    steps_become(&s.status, id, &[Completed, Completed, Waiting]).await;
    gate_opens(&s.workflows, id, 3).await;
    // Pressing twice is refused.
    assert!(s.workflows.action(id, 2, Some("bob")).await.is_err());
    let steps = s.store.session_steps(id, 1).await.unwrap();
    assert_eq!(steps[1].acted_by.as_deref(), Some("bob"));
    s.workflows.action(id, 3, Some("bob")).await.unwrap();
    steps_become(&s.status, id, &[Completed, Completed, Completed]).await;
    state_becomes(&s.store, id, "completed").await;

    // The timeline has every row, in order: processing → completed, waiting → processing → completed …
    let timeline: Vec<_> = s
        .status
        .get_session_status(id)
        .await
        .unwrap()
        .timeline
        .iter()
        .map(|r| (r.step, r.status))
        .collect();
    assert_eq!(
        timeline,
        [
            (1, Processing),
            (1, Completed),
            (2, Waiting),
            (2, Processing),
            (2, Completed),
            (3, Waiting),
            (3, Processing),
            (3, Completed)
        ]
    );

    // Clear: run 2 starts again from step 1; the history stays.
    s.workflows.clear(id).await.unwrap();
    steps_become(&s.status, id, &[Completed, Waiting]).await;
    let read = s.status.get_session_status(id).await.unwrap();
    assert_eq!((read.run, read.timeline.len()), (2, 11));

    // Unknown workflow and session.
    let err = s.workflows.start("nope", &request()).await.unwrap_err();
    assert!(err.to_string().contains("gated, partial, strict"), "{err}");
    assert!(matches!(
        s.workflows.action(Uuid::now_v7(), 1, None).await,
        Err(WorkflowError::NotFound(_))
    ));
    s.stop.cancel();
});

both_backends!(
    a_step_that_may_fail_makes_the_session_complete_with_warnings,
    |db| {
        let s = setup(db.store().await);
        let id = s.workflows.start("partial", &request()).await.unwrap();
        use StepStatus::*;
        steps_become(&s.status, id, &[Completed, Completed, Completed]).await;
        state_becomes(&s.store, id, "completed_with_warnings").await;
        let session = s.store.session(id).await.unwrap().unwrap();
        assert!(
            session.warnings.contains("the ERP said no"),
            "{}",
            session.warnings
        );
        let read = s.status.get_session_status(id).await.unwrap();
        assert!(
            read.steps[1]
                .message
                .as_deref()
                .unwrap()
                .contains("with warnings"),
            "{:?}",
            read.steps[1]
        );
        assert_eq!(read.steps[1].details["counts"]["errors"], 1);
        s.stop.cancel();
    }
);

both_backends!(
    a_failed_step_stops_the_session_and_its_retry_carries_on,
    |db| {
        let s = setup(db.store().await);
        let id = s.workflows.start("strict", &request()).await.unwrap();
        use StepStatus::*;
        steps_become(&s.status, id, &[Failed]).await;
        state_becomes(&s.store, id, "failed").await;
        let read = s.status.get_session_status(id).await.unwrap();
        assert!(read.steps[0]
            .message
            .as_deref()
            .unwrap()
            .contains("the ERP said no"));
        // Only a failed step can be retried.
        assert!(matches!(
            s.workflows.retry_step(id, 2).await,
            Err(WorkflowError::Conflict(_))
        ));
        s.workflows.retry_step(id, 1).await.unwrap();
        steps_become(&s.status, id, &[Completed, Completed]).await;
        state_becomes(&s.store, id, "completed").await;
        let read = s.status.get_session_status(id).await.unwrap();
        assert_eq!(read.steps[0].details["counts"]["processed"], 5);
        s.stop.cancel();
    }
);

both_backends!(
    a_session_whose_workflow_left_the_config_ends_failed_saying_why,
    |db| {
        let s = setup(db.store().await);
        // A session of a workflow this process does not know (baton.toml changed while it ran),
        // with its first step processing.
        let id = Uuid::now_v7();
        s.store
            .insert_session(&baton::server::store::NewSession {
                id,
                workflow: "removed".into(),
                source: JobSource::Manual,
                triggered_by: None,
                note: None,
                started_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        let enter = [baton::server::store::SessionOp::Enter {
            step: 1,
            action: None,
        }];
        s.store
            .apply_session_ops(id, 1, &enter)
            .await
            .unwrap()
            .unwrap();
        s.workflows.run_once().await.unwrap();
        state_becomes(&s.store, id, "failed").await;
        let session = s.store.session(id).await.unwrap().unwrap();
        assert!(session.finished_at.is_some());
        assert!(
            session.warnings.contains("there is no workflow `removed`"),
            "{}",
            session.warnings
        );
        s.stop.cancel();
    }
);

both_backends!(retention_keeps_the_jobs_of_an_open_session, |db| {
    let s = setup(db.store().await);
    let id = s.workflows.start("gated", &request()).await.unwrap();
    use StepStatus::*;
    steps_become(&s.status, id, &[Completed, Waiting]).await;
    // `keep = 0` for type `a`: every finished job of it may go, except the one an open
    // session's step still counts on (a step waiting for its other jobs would never settle).
    assert_eq!(s.store.prune_jobs("a", 0).await.unwrap(), 0);
    assert_eq!(s.store.step_jobs(id, 1, 1).await.unwrap().len(), 2);
    s.workflows.cancel(id).await.unwrap();
    state_becomes(&s.store, id, "cancelled").await;
    assert_eq!(s.store.prune_jobs("a", 0).await.unwrap(), 1);
    s.stop.cancel();
});

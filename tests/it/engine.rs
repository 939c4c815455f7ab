//! The job engine against real databases: every body runs on a SQLite file and on a fresh
//! Postgres database. Engines here are the real thing, started on their own; several engines on
//! one database stand for several processes.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::helpers::eventually;
use async_trait::async_trait;
use baton::{
    model::{EventKind, Job, JobSource, JobState, SyncState},
    server::{
        engine::{
            task::{SyncTask, TaskContext, TaskError, TaskOutput, WaitTask},
            types::SyncType,
            Engine, EngineError, EngineSettings, Origin,
        },
        events::EventBus,
        lifecycle::{apply, retry::RetryPolicy, Holder, Transition},
        store::{ClaimScope, NewJob, Outcome, Store},
    },
};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Fast settings for tests: short leases, quick polling.
fn settings() -> EngineSettings {
    EngineSettings {
        workers: 4,
        lease_ttl: Duration::from_millis(800),
        lease_renew: Duration::from_millis(200),
        poll_interval: Duration::from_millis(50),
        retention_interval: Duration::from_secs(3600),
        cancel_grace: Duration::from_millis(300),
        progress_interval: Duration::from_millis(250),
        ..Default::default()
    }
}

struct Running {
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shutdown(self) {
        self.stop.cancel();
        self.done.await.unwrap();
    }
}

fn engine(
    store: &Store,
    events: &EventBus,
    settings: EngineSettings,
    types: Vec<SyncType>,
) -> Engine {
    Engine::new(
        store.clone(),
        events.clone(),
        Uuid::now_v7(),
        settings,
        types,
    )
}

fn start(engine: &Engine) -> Running {
    let stop = CancellationToken::new();
    let done = engine.start(stop.clone(), Duration::from_secs(5));
    Running { stop, done }
}

fn request() -> Origin {
    Origin {
        source: JobSource::Manual,
        triggered_by: Some("tester".into()),
        note: None,
        session_id: None,
    }
}

/// A job to insert directly into the store, due now, with one attempt.
fn new_job(sync_type: &str, priority: i64, exclusive: bool) -> NewJob {
    NewJob {
        sync_type: sync_type.into(),
        priority,
        exclusive,
        max_attempts: 1,
        run_at: Utc::now(),
        source: JobSource::Api,
        triggered_by: None,
        note: None,
        session_id: None,
        retry_of: None,
        input: None,
    }
}

fn id(job: &Job) -> Uuid {
    job.id.parse().unwrap()
}

/// Waits (bounded, for safety only) until the job satisfies `done`.
async fn wait_for(engine: &Engine, job: Uuid, done: impl Fn(&Job) -> bool) -> Job {
    let done = &done;
    eventually(Duration::from_secs(20), || async move {
        let current = engine.job(job).await.unwrap();
        if done(&current) {
            Ok(current)
        } else {
            Err(current)
        }
    })
    .await
}

async fn finished(engine: &Engine, job: Uuid) -> Job {
    wait_for(engine, job, |j| j.state.is_terminal()).await
}

/// What a `Recorder` saw: (sync type, job, start, end) per run.
type Runs = Arc<Mutex<Vec<(String, Uuid, Instant, Instant)>>>;

/// Records when each of its jobs ran; sleeps `work` (stopping early when told).
struct Recorder {
    work: Duration,
    runs: Runs,
}

#[async_trait]
impl SyncTask for Recorder {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let start = Instant::now();
        tokio::select! {
            _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
            _ = tokio::time::sleep(self.work) => {}
        }
        self.runs.lock().unwrap().push((
            ctx.sync_type().to_string(),
            ctx.job_id(),
            start,
            Instant::now(),
        ));
        Ok(TaskOutput::default())
    }
}

/// Fails its first `failures` runs (of any job) with the given kind of error, then succeeds.
struct Flaky {
    failures: u32,
    retryable: bool,
    attempts: AtomicU32,
}

#[async_trait]
impl SyncTask for Flaky {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.failures {
            let message = format!("upstream said no (attempt {})", ctx.attempt());
            return Err(if self.retryable {
                TaskError::Retryable(message)
            } else {
                TaskError::Fatal(message)
            });
        }
        Ok(TaskOutput {
            result: Some(serde_json::json!({ "attempts": n })),
        })
    }
}

fn flaky(failures: u32, retryable: bool) -> Arc<Flaky> {
    Arc::new(Flaky {
        failures,
        retryable,
        attempts: AtomicU32::new(0),
    })
}

/// Never looks at its stop signal.
struct Stubborn;

#[async_trait]
impl SyncTask for Stubborn {
    async fn run(&self, _ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(TaskOutput::default())
    }
}

/// Panics.
struct Panicky;

#[async_trait]
impl SyncTask for Panicky {
    async fn run(&self, _ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        panic!("bug in a task");
    }
}

/// Reports progress `reports` times as fast as it can, then succeeds.
struct Chatty {
    reports: u64,
}

#[async_trait]
impl SyncTask for Chatty {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        for i in 1..=self.reports {
            ctx.progress(i, Some(self.reports), format!("item {i}"));
        }
        // Give the throttled writer a chance to run while the job is still going.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(TaskOutput::default())
    }
}

fn slow(name: &str, priority: i64, exclusive: bool, work_ms: u64) -> (SyncType, Runs) {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let task = Recorder {
        work: Duration::from_millis(work_ms),
        runs: runs.clone(),
    };
    (
        SyncType::new(name, priority, exclusive, Arc::new(task)),
        runs,
    )
}

fn wait_type(name: &str, priority: i64, millis: u64, steps: u32) -> SyncType {
    SyncType::new(
        name,
        priority,
        true,
        Arc::new(WaitTask {
            duration: Duration::from_millis(millis),
            steps,
        }),
    )
}

both_backends!(a_requested_sync_runs_and_its_events_tell_the_story, |db| {
    let store = db.store().await;
    let events = EventBus::new(256);
    let (ty, _) = slow("orders", 6, true, 10);
    let engine = engine(&store, &events, settings(), vec![ty]);
    let mut sub = events.subscribe(None);
    let running = start(&engine);
    let (job, deduplicated) = engine.request_sync("orders", request()).await.unwrap();
    assert!(!deduplicated);
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.triggered_by.as_deref(), Some("tester"));
    let done = finished(&engine, id(&job)).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.attempt, 1);
    assert_eq!(done.progress, 100);
    assert!(done.lease_owner.is_none() && done.finished_at.is_some());

    // The row is written before the event goes out: wait for the event (bounded, for safety).
    let mut names = Vec::new();
    while !names.contains(&"sync-completed") {
        let event = tokio::time::timeout(Duration::from_secs(5), sub.live.recv())
            .await
            .expect("sync-completed within 5 s")
            .unwrap();
        names.push(event.kind.name());
    }
    let started = names.iter().position(|n| *n == "sync-started").unwrap();
    let completed = names.iter().position(|n| *n == "sync-completed").unwrap();
    assert!(started < completed, "{names:?}");
    running.shutdown().await;
});

both_backends!(
    requesting_a_type_that_already_waits_returns_the_waiting_job,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let (ty, _) = slow("orders", 6, true, 10);
        // Not started: nothing claims, so the first job stays pending.
        let engine = engine(&store, &events, settings(), vec![ty]);
        let (first, dup) = engine.request_sync("orders", request()).await.unwrap();
        assert!(!dup);
        let (second, dup) = engine.request_sync("orders", request()).await.unwrap();
        assert!(dup);
        assert_eq!(first.id, second.id);

        // Many at once, as from many browser tabs: still one job.
        let results =
            futures::future::join_all((0..10).map(|_| engine.request_sync("orders", request())))
                .await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().0.id == first.id));
    }
);

both_backends!(
    unknown_disabled_and_record_types_are_refused_with_reasons,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let (mut off, _) = slow("off", 1, true, 10);
        off.enabled = false;
        let mut records = SyncType::new(
            "records",
            0,
            false,
            Arc::new(WaitTask {
                duration: Duration::ZERO,
                steps: 1,
            }),
        );
        records.takes_records = true;
        let engine = engine(&store, &events, settings(), vec![off, records]);
        match engine.request_sync("nope", request()).await {
            Err(EngineError::UnknownType { name, known }) => {
                assert_eq!(name, "nope");
                assert_eq!(known, vec!["off", "records"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            engine.request_sync("off", request()).await,
            Err(EngineError::Conflict(_))
        ));
        assert!(matches!(
            engine.request_sync("records", request()).await,
            Err(EngineError::Invalid(_))
        ));
        assert!(matches!(
            engine.submit("records", Some(r#"[{"no_id": 1}]"#), request()).await,
            Err(EngineError::Invalid(m)) if m.contains("record 0")
        ));
        assert!(matches!(
            engine.submit("off", Some("[]"), request()).await,
            Err(EngineError::Invalid(_))
        ));
    }
);

both_backends!(claims_take_the_highest_priority_then_the_oldest, |db| {
    let store = db.store().await;
    let now = Utc::now();
    let job = |t: &str, priority: i64| NewJob {
        max_attempts: 3,
        run_at: now,
        ..new_job(t, priority, false)
    };
    let mut inserted = Vec::new();
    for (t, p) in [
        ("low", 1),
        ("high", 5),
        ("mid", 3),
        ("high2", 5),
        ("later", 9),
    ] {
        let mut j = job(t, p);
        if t == "later" {
            j.run_at = now + chrono::Duration::hours(1); // not due
        }
        inserted.push(store.insert_job(&j, false).await.unwrap().0);
    }
    let owner = Uuid::now_v7();
    let shared = ClaimScope {
        exclusive: false,
        shared: 10,
        hold: None,
    };
    let claimed = store
        .claim_jobs(
            owner,
            Utc::now(),
            std::time::Duration::from_secs(30),
            shared,
        )
        .await
        .unwrap();
    let order: Vec<_> = claimed.iter().map(|j| j.sync_type.as_str()).collect();
    assert_eq!(
        order,
        ["high", "high2", "mid", "low"],
        "priority, then age; not-due left"
    );

    // The set-based claim does exactly what the lifecycle's Claim transition does.
    for (row, before) in
        claimed
            .iter()
            .zip([&inserted[1], &inserted[3], &inserted[2], &inserted[0]])
    {
        let expected = apply(
            &before.lifecycle(),
            Transition::Claim {
                owner,
                lease_for: row.lease_expires_at.unwrap() - row.started_at.unwrap(),
            },
            row.started_at.unwrap(),
        )
        .unwrap();
        assert_eq!(row.lifecycle(), expected);
    }
});

both_backends!(the_database_itself_admits_one_running_exclusive_job, |db| {
    let store = db.store().await;
    for t in ["a", "b"] {
        store.insert_job(&new_job(t, 1, true), false).await.unwrap();
    }
    let until = std::time::Duration::from_secs(30);
    let both = ClaimScope {
        exclusive: true,
        shared: 5,
        hold: None,
    };
    // Two processes each ask for an exclusive job: only one gets one.
    let first = store
        .claim_jobs(Uuid::now_v7(), Utc::now(), until, both)
        .await
        .unwrap();
    let second = store
        .claim_jobs(Uuid::now_v7(), Utc::now(), until, both)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(second.is_empty());

    // Even a write that skips the claim's check is refused by the partial unique index.
    let other = store
        .list_jobs(&baton::server::store::JobFilter {
            state: Some(JobState::Pending),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let before = other.lifecycle();
    let next = apply(
        &before,
        Transition::Claim {
            owner: Uuid::now_v7(),
            lease_for: chrono::Duration::seconds(30),
        },
        Utc::now(),
    )
    .unwrap();
    let err = store
        .write_transition(other.id, &before, &next, &Outcome::default())
        .await
        .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("unique"), "{err}");
});

both_backends!(many_workers_in_two_processes_keep_every_invariant, |db| {
    let store = db.store().await;
    let events = EventBus::new(4096);
    let mut types = Vec::new();
    let mut logs = Vec::new();
    for (name, priority, exclusive) in [
        ("orders", 6, true),
        ("customers", 5, true),
        ("ddt", 4, true),
        ("prices", 2, true),
        ("shared_a", 3, false),
        ("shared_b", 1, false),
    ] {
        let (ty, runs) = slow(name, priority, exclusive, 5);
        types.push(ty);
        logs.push(runs);
    }
    let engines = [
        engine(&store, &events, settings(), types.clone()),
        engine(&store, &events, settings(), types.clone()),
    ];
    // Queue everything first (as retries of nothing: plain inserts, no dedupe), so priority
    // order is checkable.
    let mut ids = Vec::new();
    for round in 0..8 {
        for ty in &types {
            let job = NewJob {
                triggered_by: Some(format!("round {round}")),
                note: None,
                ..new_job(&ty.name, ty.priority, ty.exclusive)
            };
            ids.push(store.insert_job(&job, false).await.unwrap().0.id);
        }
    }
    let running: Vec<_> = engines.iter().map(start).collect();
    for id in &ids {
        finished(&engines[0], *id).await;
    }
    for r in running {
        r.shutdown().await;
    }

    let all: Vec<_> = logs
        .iter()
        .flat_map(|l| l.lock().unwrap().clone())
        .collect();
    // Every job ran exactly once and ended completed.
    assert_eq!(all.len(), ids.len());
    let mut seen: Vec<Uuid> = all.iter().map(|r| r.1).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), ids.len(), "no job ran twice");
    for id in &ids {
        assert_eq!(
            engines[0].job(*id).await.unwrap().state,
            JobState::Completed
        );
    }
    // Never two exclusive jobs at once, judged from the recorded start and finish times.
    let exclusive = ["orders", "customers", "ddt", "prices"];
    let mut excl: Vec<_> = all
        .iter()
        .filter(|r| exclusive.contains(&r.0.as_str()))
        .collect();
    excl.sort_by_key(|r| r.2);
    for pair in excl.windows(2) {
        assert!(
            pair[0].3 <= pair[1].2,
            "{} and {} overlapped",
            pair[0].1,
            pair[1].1
        );
    }
    // Everything was queued before the engines started, so exclusive jobs ran by priority.
    let priorities: Vec<i64> = excl
        .iter()
        .map(|r| types.iter().find(|t| t.name == r.0).unwrap().priority)
        .collect();
    assert!(
        priorities.windows(2).all(|w| w[0] >= w[1]),
        "{priorities:?}"
    );
});

both_backends!(
    cancelling_a_pending_job_ends_it_at_once_and_a_finished_one_is_refused,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let (ty, runs) = slow("orders", 6, true, 10);
        let engine = engine(&store, &events, settings(), vec![ty]);
        let (job, _) = engine.request_sync("orders", request()).await.unwrap();
        let cancelled = engine.cancel(id(&job)).await.unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert!(cancelled.cancel_requested_at.is_some());
        let running = start(&engine);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            runs.lock().unwrap().is_empty(),
            "a cancelled job never runs"
        );
        match engine.cancel(id(&job)).await {
            Err(EngineError::Conflict(m)) => assert!(m.contains("already cancelled"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            engine.cancel(Uuid::now_v7()).await,
            Err(EngineError::NotFound(_))
        ));
        running.shutdown().await;
    }
);

both_backends!(cancelling_a_running_job_stops_its_task, |db| {
    let store = db.store().await;
    let events = EventBus::new(256);
    let engine = engine(
        &store,
        &events,
        settings(),
        vec![wait_type("orders", 6, 60_000, 600)],
    );
    let running = start(&engine);
    let (job, _) = engine.request_sync("orders", request()).await.unwrap();
    wait_for(&engine, id(&job), |j| j.state == JobState::Running).await;
    let asked = engine.cancel(id(&job)).await.unwrap();
    assert_eq!(asked.state, JobState::Running, "it stops on its own");
    assert!(asked.cancel_requested_at.is_some());
    let done = finished(&engine, id(&job)).await;
    assert_eq!(done.state, JobState::Cancelled);
    assert_eq!(
        done.error, None,
        "ended by its worker, not rescued after its lease ran out"
    );
    running.shutdown().await;
});

both_backends!(
    a_task_that_ignores_cancel_is_dropped_after_the_grace_period,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let ty = SyncType::new("stubborn", 1, true, Arc::new(Stubborn));
        let engine = engine(&store, &events, settings(), vec![ty]);
        let running = start(&engine);
        let (job, _) = engine.request_sync("stubborn", request()).await.unwrap();
        wait_for(&engine, id(&job), |j| j.state == JobState::Running).await;
        engine.cancel(id(&job)).await.unwrap();
        let done = finished(&engine, id(&job)).await;
        assert_eq!(done.state, JobState::Cancelled);
        assert_eq!(done.error, None, "ended by its worker, not rescued");
        running.shutdown().await;
    }
);

both_backends!(
    a_cancel_made_through_another_process_reaches_the_task,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let types = vec![wait_type("orders", 6, 60_000, 600)];
        let worker = engine(&store, &events, settings(), types.clone());
        let other = engine(&store, &events, settings(), types); // never started: only answers calls
        let running = start(&worker);
        let (job, _) = other.request_sync("orders", request()).await.unwrap();
        wait_for(&other, id(&job), |j| j.state == JobState::Running).await;
        other.cancel(id(&job)).await.unwrap();
        // The worker learns of it at its next lease renewal.
        let done = finished(&other, id(&job)).await;
        assert_eq!(done.state, JobState::Cancelled);
        assert_eq!(done.error, None, "ended by its worker, not rescued");
        running.shutdown().await;
    }
);

both_backends!(
    a_preempted_job_makes_way_and_resumes_from_its_checkpoint,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(1024);
        let (urgent, urgent_runs) = slow("customers", 9, true, 10);
        let engine = engine(
            &store,
            &events,
            settings(),
            vec![wait_type("products", 1, 2_000, 20), urgent],
        );
        let running = start(&engine);
        let (low, _) = engine.request_sync("products", request()).await.unwrap();
        let low_id = id(&low);
        wait_for(&engine, low_id, |j| j.checkpoint.is_some()).await;
        let (high, _) = engine.request_sync("customers", request()).await.unwrap();
        assert!(engine.preempt(low_id).await.unwrap());
        let high_done = finished(&engine, id(&high)).await;
        assert_eq!(high_done.state, JobState::Completed);
        let low_done = finished(&engine, low_id).await;
        assert_eq!(low_done.state, JobState::Completed);
        assert_eq!(low_done.attempt, 1, "making way does not use up an attempt");
        let resumed_at = low_done.result.as_ref().unwrap()["resumed_at"]
            .as_u64()
            .unwrap();
        assert!(
            resumed_at > 0,
            "it resumed from its checkpoint: {low_done:?}"
        );
        // The urgent job ran in between: after the low one started, before it finished.
        assert_eq!(urgent_runs.lock().unwrap().len(), 1);
        assert!(high_done.finished_at.unwrap() < low_done.finished_at.unwrap());
        assert!(
            !engine.preempt(low_id).await.unwrap(),
            "a finished job cannot be preempted"
        );
        running.shutdown().await;
    }
);

both_backends!(
    retryable_errors_back_off_and_retry_fatal_ones_fail_at_once,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(256);
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(200),
        };
        let mut recovers = SyncType::new("recovers", 1, false, flaky(2, true));
        recovers.retry = policy;
        let mut gives_up = SyncType::new("gives_up", 1, false, flaky(10, true));
        gives_up.retry = policy;
        let mut fatal = SyncType::new("fatal", 1, false, flaky(1, false));
        fatal.retry = policy;
        let engine = engine(&store, &events, settings(), vec![recovers, gives_up, fatal]);
        let mut sub = events.subscribe(None);
        let running = start(&engine);

        let (a, _) = engine.request_sync("recovers", request()).await.unwrap();
        let retrying = wait_for(&engine, id(&a), |j| {
            j.state == JobState::Pending && j.attempt == 1
        })
        .await;
        assert!(
            retrying.run_at > retrying.started_at.unwrap(),
            "a backoff before the retry"
        );
        assert!(retrying.error.as_deref().unwrap().contains("attempt 1"));
        let a = finished(&engine, id(&a)).await;
        assert_eq!((a.state, a.attempt), (JobState::Completed, 3));
        assert_eq!(a.error, None, "a success clears the error");
        assert_eq!(a.result.unwrap()["attempts"], 3);

        let (b, _) = engine.request_sync("gives_up", request()).await.unwrap();
        let b = finished(&engine, id(&b)).await;
        assert_eq!((b.state, b.attempt), (JobState::Failed, 3));

        let (c, _) = engine.request_sync("fatal", request()).await.unwrap();
        let c = finished(&engine, id(&c)).await;
        assert_eq!((c.state, c.attempt), (JobState::Failed, 1));

        // A manual retry of the failed job is a new job linked to it; history keeps both.
        let again = engine.retry(id(&c), request()).await.unwrap();
        assert_eq!(again.retry_of.as_deref(), Some(c.id.as_str()));
        let again = finished(&engine, id(&again)).await;
        assert_eq!(again.state, JobState::Completed);
        assert_eq!(engine.job(id(&c)).await.unwrap().state, JobState::Failed);
        assert!(matches!(
            engine.retry(id(&again), request()).await,
            Err(EngineError::Conflict(_))
        ));

        let mut errors = 0;
        while let Ok(event) = sub.live.try_recv() {
            if let EventKind::SyncError(_) = event.kind {
                errors += 1;
            }
        }
        // recovers: 2 failed attempts; gives_up: 3; fatal: 1.
        assert_eq!(errors, 6);
        running.shutdown().await;
    }
);

both_backends!(an_attempt_past_its_timeout_fails_as_retryable, |db| {
    let store = db.store().await;
    let events = EventBus::new(64);
    let mut ty = wait_type("slowpoke", 1, 60_000, 10);
    ty.timeout = Duration::from_millis(200);
    ty.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let engine = engine(&store, &events, settings(), vec![ty]);
    let running = start(&engine);
    let (job, _) = engine.request_sync("slowpoke", request()).await.unwrap();
    let job = finished(&engine, id(&job)).await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 2));
    assert!(job.error.unwrap().contains("timeout"));
    running.shutdown().await;
});

both_backends!(
    an_expired_lease_is_rescued_and_the_late_worker_cannot_write,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let (ty, _) = slow("orders", 6, true, 10);
        let engine = engine(&store, &events, settings(), vec![ty]);
        let (job, _) = engine.request_sync("orders", request()).await.unwrap();
        // A process that claims the job and then dies (never renews).
        let dead = Uuid::now_v7();
        let now = Utc::now();
        let claimed = store
            .claim_jobs(
                dead,
                now,
                std::time::Duration::from_millis(100),
                ClaimScope {
                    exclusive: true,
                    shared: 0,
                    hold: None,
                },
            )
            .await
            .unwrap()
            .remove(0);
        assert_eq!(engine.rescue().await, 0, "not before the lease runs out");
        // Its lease (100 ms) and the rescuer's margin (a fifth of the 800 ms lease_ttl).
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(engine.rescue().await, 1);
        let rescued = engine.job(id(&job)).await.unwrap();
        assert_eq!(rescued.state, JobState::Pending);
        assert!(rescued.error.unwrap().contains("lease"));

        // The dead worker wakes up and tries to complete: refused by the lifecycle and by the
        // compare-and-set.
        let before = claimed.lifecycle();
        let holder = Holder {
            owner: dead,
            attempt: 1,
        };
        let next = apply(&before, Transition::Complete { holder }, Utc::now()).unwrap();
        assert!(store
            .write_transition(claimed.id, &before, &next, &Outcome::default())
            .await
            .unwrap()
            .is_none());
        assert_eq!(engine.job(id(&job)).await.unwrap().state, JobState::Pending);

        // A live engine takes it over and completes it, on its second attempt.
        let running = start(&engine);
        let done = finished(&engine, id(&job)).await;
        assert_eq!((done.state, done.attempt), (JobState::Completed, 2));
        running.shutdown().await;
    }
);

both_backends!(
    progress_goes_out_at_once_and_to_the_database_throttled,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(8192);
        let ty = SyncType::new("chatty", 1, false, Arc::new(Chatty { reports: 2000 }));
        let mut slow_writes = settings();
        slow_writes.progress_interval = Duration::from_secs(3600);
        let engine = engine(&store, &events, slow_writes, vec![ty]);
        let mut sub = events.subscribe(None);
        let running = start(&engine);
        let (job, _) = engine.request_sync("chatty", request()).await.unwrap();
        let mid = wait_for(&engine, id(&job), |j| j.state == JobState::Running).await;
        assert_eq!(mid.processed, 0, "no progress write before the interval");
        let done = finished(&engine, id(&job)).await;
        assert_eq!(
            (done.processed, done.total, done.progress),
            (2000, Some(2000), 100)
        );
        assert_eq!(
            done.message.as_deref(),
            Some("item 2000"),
            "the final report is stored with the end"
        );
        let mut reports = 0;
        while let Ok(event) = sub.live.try_recv() {
            if let EventKind::JobProgress(p) = &event.kind {
                assert_eq!(p.job_id, done.id);
                reports += 1;
            }
        }
        assert_eq!(reports, 2000, "every report is published");
        running.shutdown().await;
    }
);

both_backends!(
    shutdown_returns_running_jobs_to_pending_and_the_next_start_resumes_them,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(256);
        let types = vec![wait_type("orders", 6, 1_500, 15)];
        let first = engine(&store, &events, settings(), types.clone());
        let running = start(&first);
        let (job, _) = first.request_sync("orders", request()).await.unwrap();
        wait_for(&first, id(&job), |j| j.checkpoint.is_some()).await;
        running.shutdown().await;
        let parked = first.job(id(&job)).await.unwrap();
        assert_eq!(parked.state, JobState::Pending);
        assert_eq!(parked.attempt, 0, "a shutdown does not use up an attempt");

        let second = engine(&store, &events, settings(), types);
        let running = start(&second);
        let done = finished(&second, id(&job)).await;
        assert_eq!(done.state, JobState::Completed);
        assert!(done.result.unwrap()["resumed_at"].as_u64().unwrap() > 0);
        running.shutdown().await;
    }
);

both_backends!(status_reports_each_types_state_and_history, |db| {
    let store = db.store().await;
    let events = EventBus::new(256);
    let mut broken = SyncType::new("broken", 2, true, flaky(100, false));
    broken.retry.max_attempts = 1;
    let (fine, _) = slow("fine", 3, true, 10);
    let engine = engine(
        &store,
        &events,
        settings(),
        vec![wait_type("long", 9, 60_000, 100), broken, fine],
    );
    let running = start(&engine);
    let (f, _) = engine.request_sync("fine", request()).await.unwrap();
    finished(&engine, id(&f)).await;
    for _ in 0..2 {
        let (b, _) = engine.request_sync("broken", request()).await.unwrap();
        finished(&engine, id(&b)).await;
    }
    let (long, _) = engine.request_sync("long", request()).await.unwrap();
    wait_for(&engine, id(&long), |j| j.state == JobState::Running).await;
    let (queued, _) = engine.request_sync("fine", request()).await.unwrap();

    let status = engine.status().await.unwrap();
    assert_eq!(
        status.current.as_ref().map(|j| j.id.as_str()),
        Some(long.id.as_str())
    );
    assert_eq!(
        status
            .queue
            .iter()
            .map(|j| j.id.as_str())
            .collect::<Vec<_>>(),
        [queued.id.as_str()]
    );
    let fine = &status.types["fine"];
    assert_eq!(fine.state, SyncState::Success);
    assert!(fine.last_success.is_some() && fine.last_duration_ms.is_some());
    assert_eq!(fine.pending_job.as_deref(), Some(queued.id.as_str()));
    let broken = &status.types["broken"];
    assert_eq!(broken.state, SyncState::Error);
    assert_eq!(broken.consecutive_errors, 2);
    assert!(broken
        .last_error
        .as_deref()
        .unwrap()
        .contains("upstream said no"));
    assert_eq!(broken.last_success, None);
    assert_eq!(status.types["long"].state, SyncState::Running);
    assert_eq!(
        status.types["long"].running_job.as_deref(),
        Some(long.id.as_str())
    );
    assert_eq!(status.types["long"].next_run, None);
    engine.cancel(id(&long)).await.unwrap();
    running.shutdown().await;
});

both_backends!(retention_keeps_the_newest_finished_jobs_per_type, |db| {
    let store = db.store().await;
    let events = EventBus::new(256);
    let (mut ty, _) = slow("orders", 6, true, 1);
    ty.keep = 3;
    let engine = engine(&store, &events, settings(), vec![ty]);
    let running = start(&engine);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (job, _) = engine.request_sync("orders", request()).await.unwrap();
        finished(&engine, id(&job)).await;
        ids.push(id(&job));
    }
    running.shutdown().await;
    assert_eq!(store.prune_jobs("orders", 3).await.unwrap(), 2);
    for (i, job) in ids.iter().enumerate() {
        assert_eq!(
            store.get_job(*job).await.unwrap().is_some(),
            i >= 2,
            "job {i}"
        );
    }
});

both_backends!(
    records_are_upserted_by_id_and_a_retry_does_not_duplicate_them,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(4096);
        let built_in = baton::server::catalog::default_sync_types();
        let types = vec![baton::server::catalog::build(
            "records",
            &built_in["records"],
            &Default::default(),
        )
        .unwrap()];
        let engine = engine(&store, &events, settings(), types);
        let running = start(&engine);
        let records: Vec<_> = (0..2500)
            .map(|i| serde_json::json!({ "id": format!("p{i}"), "points": i }))
            .collect();
        let (job, _) = engine
            .submit(
                "records",
                Some(&serde_json::to_string(&records).unwrap()),
                request(),
            )
            .await
            .unwrap();
        let job = finished(&engine, id(&job)).await;
        assert_eq!(job.state, JobState::Completed);
        assert_eq!((job.processed, job.total), (2500, Some(2500)));
        assert_eq!(store.count_records().await.unwrap(), 2500);
        // The same ids again, changed: updated in place.
        let changed = r#"[{"id": "p1", "points": -1}, {"id": "new", "points": 0}]"#;
        let (again, _) = engine
            .submit("records", Some(changed), request())
            .await
            .unwrap();
        finished(&engine, id(&again)).await;
        assert_eq!(store.count_records().await.unwrap(), 2501);
        running.shutdown().await;
    }
);

both_backends!(
    a_panicking_task_fails_its_job_and_the_worker_goes_on,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let (fine, _) = slow("fine", 1, true, 5);
        let engine = engine(
            &store,
            &events,
            settings(),
            vec![SyncType::new("panicky", 2, true, Arc::new(Panicky)), fine],
        );
        let running = start(&engine);
        let (bad, _) = engine.request_sync("panicky", request()).await.unwrap();
        let bad = finished(&engine, id(&bad)).await;
        assert_eq!(
            (bad.state, bad.attempt),
            (JobState::Failed, 1),
            "a panic is not worth a retry"
        );
        assert!(bad.error.unwrap().contains("bug in a task"));
        // The mutex was released: the next exclusive job runs.
        let (good, _) = engine.request_sync("fine", request()).await.unwrap();
        assert_eq!(
            finished(&engine, id(&good)).await.state,
            JobState::Completed
        );
        assert_eq!(engine.running_here(), 0);
        running.shutdown().await;
    }
);

both_backends!(
    one_claim_fills_the_mutex_and_the_shared_slots_side_by_side,
    |db| {
        let store = db.store().await;
        for (t, priority, exclusive) in [
            ("ex_low", 1, true),
            ("ex_high", 2, true),
            ("sh_a", 5, false),
            ("sh_b", 4, false),
            ("sh_c", 3, false),
        ] {
            store
                .insert_job(&new_job(t, priority, exclusive), false)
                .await
                .unwrap();
        }
        let until = std::time::Duration::from_secs(30);
        let scope = ClaimScope {
            exclusive: true,
            shared: 2,
            hold: None,
        };
        let claimed = store
            .claim_jobs(Uuid::now_v7(), Utc::now(), until, scope)
            .await
            .unwrap();
        let names: Vec<_> = claimed.iter().map(|j| j.sync_type.as_str()).collect();
        // The best exclusive job and the two best shared ones; a low-priority exclusive job does not
        // wait behind shared ones, which fill other slots.
        assert_eq!(names, ["sh_a", "sh_b", "ex_high"]);
        // The mutex is held now: the next claim takes only shared work.
        let next = store
            .claim_jobs(Uuid::now_v7(), Utc::now(), until, scope)
            .await
            .unwrap();
        let names: Vec<_> = next.iter().map(|j| j.sync_type.as_str()).collect();
        assert_eq!(names, ["sh_c"]);
    }
);

#[tokio::test]
async fn a_database_error_reading_a_job_s_input_is_not_shown_in_its_error() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let events = EventBus::new(64);
    let built_in = baton::server::catalog::default_sync_types();
    let types =
        vec![
            baton::server::catalog::build("records", &built_in["records"], &Default::default())
                .unwrap(),
        ];
    let engine = engine(&store, &events, settings(), types);
    let (job, _) = engine
        .submit("records", Some(r#"[{"id": 1}]"#), request())
        .await
        .unwrap();
    // The input's table is gone (a broken restore, say): reading it fails in the driver.
    let baton::server::store::Store::Sqlite(pools) = &store else {
        unreachable!()
    };
    sqlx::query("alter table job_inputs rename to job_inputs_elsewhere")
        .execute(&pools.write)
        .await
        .unwrap();
    let running = start(&engine);
    let job = crate::helpers::eventually(Duration::from_secs(10), || {
        let engine = engine.clone();
        let id = id(&job);
        async move {
            let job = engine.job(id).await.map_err(|e| e.to_string())?;
            job.error
                .clone()
                .ok_or("no error yet".to_string())
                .map(|_| job)
        }
    })
    .await;
    let error = job.error.unwrap();
    assert!(error.contains("could not read the job's input"), "{error}");
    assert!(
        !error.contains("job_inputs") && !error.contains("no such table"),
        "{error}"
    );
    running.shutdown().await;
}

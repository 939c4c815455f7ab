//! Two engines on one Postgres database, as two `baton serve` processes would share it: a job
//! queued through one is claimed by the other at once, and a cancel made through one stops the
//! task running in the other at once, by Postgres signals (LISTEN/NOTIFY), not at the next
//! poll or lease renewal. Both are made a minute long here, so only the signal can be in time.

use std::{sync::Arc, time::Duration};

use baton::{
    model::JobState,
    server::engine::{
        task::{NoopTask, WaitTask},
        Engine,
    },
};
use tokio_util::sync::CancellationToken;

use crate::helpers::{engine_settings, eventually, tester, typed, TestDb};

/// An engine whose dispatcher looks at the queue and whose leases are renewed once a minute.
fn slow_engine(store: &baton::server::store::Store, start: bool) -> (Engine, CancellationToken) {
    let settings = baton::server::engine::EngineSettings {
        poll_interval: Duration::from_secs(60),
        lease_renew: Duration::from_secs(60),
        lease_ttl: Duration::from_secs(180),
        ..engine_settings()
    };
    let engine = Engine::new(
        store.clone(),
        baton::server::events::EventBus::new(1024),
        uuid::Uuid::now_v7(),
        settings,
        vec![
            typed("quick", Arc::new(NoopTask), 1),
            typed(
                "long",
                Arc::new(WaitTask {
                    duration: Duration::from_secs(600),
                    steps: 600,
                }),
                1,
            ),
        ],
    );
    let stop = CancellationToken::new();
    if start {
        engine.start(stop.clone(), Duration::from_secs(5));
    }
    (engine, stop)
}

async fn state_of(engine: &Engine, id: &str) -> JobState {
    engine.job(id.parse().unwrap()).await.unwrap().state
}

#[tokio::test]
async fn a_job_queued_through_one_process_is_claimed_by_another_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let (worker, stop) = slow_engine(&store, true);
    // Let the worker's first look at the (empty) queue pass: from now on it sleeps a minute
    // unless told.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (front, _) = slow_engine(&store, false);
    let (job, _) = front.request_sync("quick", tester()).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        match state_of(&worker, &job.id).await {
            JobState::Completed => Ok(()),
            other => Err(other),
        }
    })
    .await;
    stop.cancel();
}

#[tokio::test]
async fn a_cancel_made_through_one_process_stops_the_task_in_another_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let (worker, stop) = slow_engine(&store, true);
    let (front, _) = slow_engine(&store, false);
    let (job, _) = worker.request_sync("long", tester()).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        match state_of(&worker, &job.id).await {
            JobState::Running => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let asked = front.cancel(job.id.parse().unwrap()).await.unwrap();
    assert!(asked.cancel_requested_at.is_some());
    eventually(Duration::from_secs(10), || async {
        match state_of(&front, &job.id).await {
            JobState::Cancelled => Ok(()),
            other => Err(other),
        }
    })
    .await;
    stop.cancel();
}

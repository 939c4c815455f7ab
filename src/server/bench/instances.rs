//! `baton bench --suite instances`: two engines on one fresh Postgres database, each with its own
//! pools, as two `baton serve` processes share it. Both poll the queue and renew their leases
//! only once a minute, so what is measured is the signal between them (LISTEN/NOTIFY):
//!
//! - `instances.queue_to_start_ms`: a job queued through one until the other has started it,
//!   p50 and p95 of 200 jobs queued one after another;
//! - `instances.cancel_ms`: a cancel made through one until the task running in the other has
//!   stopped and the job is `cancelled`, p50 and p99 of 50 jobs.
//!
//! Figures are medians over `--runs`.

use std::{sync::Arc, time::Duration, time::Instant};

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    engine::BenchDb,
    measure::{median_f64, percentile, BenchArgs},
};
use crate::{
    model::{EventKind, JobSource, LiveEvent},
    server::{
        engine::{
            task::{NoopTask, WaitTask},
            types::SyncType,
            Engine, EngineSettings, Origin,
        },
        events::EventBus,
        store::Store,
    },
};

const QUEUED: usize = 200;
const CANCELLED: usize = 50;

fn engine(store: &Store, events: EventBus) -> Engine {
    let settings = EngineSettings {
        workers: 4,
        poll_interval: Duration::from_secs(60),
        lease_renew: Duration::from_secs(60),
        lease_ttl: Duration::from_secs(180),
        retention_interval: Duration::from_secs(3600),
        ..EngineSettings::default()
    };
    let quick = SyncType::new("quick", 1, false, Arc::new(NoopTask));
    let long = SyncType::new(
        "long",
        1,
        false,
        Arc::new(WaitTask {
            duration: Duration::from_secs(600),
            steps: 600,
        }),
    );
    Engine::new(
        store.clone(),
        events,
        Uuid::now_v7(),
        settings,
        [quick, long],
    )
}

fn origin() -> Origin {
    Origin {
        source: JobSource::Api,
        triggered_by: Some("bench".into()),
        note: None,
        session_id: None,
    }
}

/// Waits for the event `wanted` picks out on `live`.
async fn until(
    live: &mut tokio::sync::broadcast::Receiver<Arc<LiveEvent>>,
    wanted: impl Fn(&EventKind) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match live.recv().await {
                Ok(event) if wanted(&event.kind) => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(err) => bail!("the event bus closed: {err}"),
            }
        }
    })
    .await
    .context("the other engine did not act within 30 s")?
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (mut starts_p50, mut starts_p95, mut cancels_p50, mut cancels_p99) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (db, front_store) = BenchDb::open("postgres", args).await?;
        let worker_store = db.second_store().await?;
        let events = EventBus::new(4096);
        let worker = engine(&worker_store, events.clone());
        let front = engine(&front_store, EventBus::new(16));
        let stop = CancellationToken::new();
        let running = worker.start(stop.clone(), Duration::from_secs(5));
        let mut live = events.subscribe(None).live;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut starts = Vec::with_capacity(QUEUED);
        for _ in 0..QUEUED {
            let queued = Instant::now();
            let (job, _) = front.request_sync("quick", origin()).await?;
            until(
                &mut live,
                |k| matches!(k, EventKind::SyncStarted(j) if j.id == job.id),
            )
            .await?;
            starts.push(queued.elapsed().as_secs_f64() * 1000.0);
        }
        let mut cancels = Vec::with_capacity(CANCELLED);
        for _ in 0..CANCELLED {
            let (job, _) = worker.request_sync("long", origin()).await?;
            until(
                &mut live,
                |k| matches!(k, EventKind::SyncStarted(j) if j.id == job.id),
            )
            .await?;
            let asked = Instant::now();
            front.cancel(job.id.parse()?).await?;
            until(
                &mut live,
                |k| matches!(k, EventKind::SyncCancelled(j) if j.id == job.id),
            )
            .await?;
            cancels.push(asked.elapsed().as_secs_f64() * 1000.0);
        }
        stop.cancel();
        let _ = running.await;
        starts_p50.push(percentile(&mut starts, 50));
        starts_p95.push(percentile(&mut starts, 95));
        cancels_p50.push(percentile(&mut cancels, 50));
        cancels_p99.push(percentile(&mut cancels, 99));
        worker_store.close().await;
        db.drop_now(front_store).await;
    }
    println!(
        "instances.queue_to_start_ms (two engines on one Postgres, {QUEUED} jobs): p50 {:.2} p95 {:.2}",
        median_f64(&mut starts_p50),
        median_f64(&mut starts_p95)
    );
    println!(
        "instances.cancel_ms (cancel through one, task in the other, {CANCELLED} jobs): p50 {:.2} p99 {:.2}",
        median_f64(&mut cancels_p50),
        median_f64(&mut cancels_p99)
    );
    Ok(())
}

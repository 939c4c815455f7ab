//! `baton bench --suite engine`: the job engine's figures, on a fresh SQLite file and a fresh
//! Postgres database per run.
//!
//! - burn-down: jobs per second for 10k pre-inserted no-op jobs of a non-exclusive type;
//! - sustained: jobs per second with producers enqueuing and workers running at the same time;
//! - mutex hand-off: from an exclusive job's completion to the next exclusive job's start;
//! - progress cost: a 1M-record `records` job reporting every 50 records vs not at all;
//! - progress → SSE: a progress report until an SSE client over HTTP has it.
//!
//! Each figure is the median over `--runs` runs.

use std::{sync::Arc, time::Duration};

use anyhow::{bail, Context};
use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::measure::{median_f64, BenchArgs};
use crate::{
    model::{EventKind, JobSource},
    server::{
        config::Config,
        engine::{
            task::{NoopTask, RecordsTask, SyncTask, TaskContext, TaskError, TaskOutput},
            types::SyncType,
            Engine, EngineSettings, Origin,
        },
        events::EventBus,
        startup::Application,
        store::DatabaseTarget,
        store::{NewJob, Store},
    },
};

/// A database that exists for one measurement.
pub(super) enum BenchDb {
    /// Removed with the directory when dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

impl BenchDb {
    async fn sqlite() -> anyhow::Result<(Self, Store)> {
        let dir = tempfile::tempdir()?;
        let store =
            Store::connect(&DatabaseTarget::Sqlite(dir.path().join("bench.db")), 10).await?;
        store.migrate().await?;
        Ok((BenchDb::Sqlite { _dir: dir }, store))
    }

    async fn postgres(admin: &str) -> anyhow::Result<(Self, Store)> {
        let mut conn = PgConnection::connect(admin)
            .await
            .with_context(|| format!("cannot reach Postgres at {admin} (--postgres-url)"))?;
        let name = format!("baton_bench_{}", Uuid::now_v7().simple());
        conn.execute(format!("create database {name}").as_str())
            .await?;
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{admin}/{name}"),
        };
        let store = Store::connect(&DatabaseTarget::Postgres(url), 10).await?;
        store.migrate().await?;
        Ok((
            BenchDb::Postgres {
                admin: admin.to_string(),
                name,
            },
            store,
        ))
    }

    /// Another store (its own pools) on the same database, as a second process has.
    pub(super) async fn second_store(&self) -> anyhow::Result<Store> {
        let target = match self {
            BenchDb::Sqlite { _dir } => DatabaseTarget::Sqlite(_dir.path().join("bench.db")),
            BenchDb::Postgres { admin, name } => {
                DatabaseTarget::Postgres(match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => format!("{admin}/{name}"),
                })
            }
        };
        Ok(Store::connect(&target, 10).await?)
    }

    pub(super) async fn open(backend: &str, args: &BenchArgs) -> anyhow::Result<(Self, Store)> {
        match backend {
            "sqlite" => Self::sqlite().await,
            _ => Self::postgres(&args.postgres_url).await,
        }
    }

    pub(super) async fn drop_now(self, store: Store) {
        store.close().await;
        if let BenchDb::Postgres { admin, name } = self {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(format!("drop database if exists {name} with (force)").as_str())
                    .await;
            }
        }
    }
}

fn settings(workers: usize) -> EngineSettings {
    EngineSettings {
        workers,
        poll_interval: Duration::from_millis(100),
        retention_interval: Duration::from_secs(3600),
        ..EngineSettings::default()
    }
}

/// An engine of its own process id on `store`, running `ty`.
fn engine(store: &Store, events: &EventBus, workers: usize, ty: SyncType) -> Engine {
    Engine::new(
        store.clone(),
        events.clone(),
        Uuid::now_v7(),
        settings(workers),
        [ty],
    )
}

fn noop(name: &str, exclusive: bool) -> SyncType {
    SyncType::new(name, 1, exclusive, Arc::new(NoopTask))
}

fn new_job(sync_type: &str, exclusive: bool) -> NewJob {
    NewJob {
        sync_type: sync_type.into(),
        priority: 1,
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

/// Waits until `count` jobs have completed, counting `sync-completed` events.
async fn completions(
    mut live: tokio::sync::broadcast::Receiver<Arc<crate::model::LiveEvent>>,
    count: usize,
) -> anyhow::Result<()> {
    let mut done = 0;
    while done < count {
        match live.recv().await {
            Ok(event) => {
                if let EventKind::SyncCompleted(_) = event.kind {
                    done += 1;
                }
            }
            Err(RecvError::Lagged(n)) => bail!("the benchmark fell {n} events behind"),
            Err(RecvError::Closed) => bail!("the event bus closed"),
        }
    }
    Ok(())
}

/// Runs the engine suite and prints one line per figure.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    for backend in ["sqlite", "postgres"] {
        let mut burn = Vec::new();
        let mut sustained = Vec::new();
        for _ in 0..args.runs {
            burn.push(burn_down(backend, args).await?);
            sustained.push(sustain(backend, args).await?);
        }
        println!(
            "engine.{backend}.burn_down_jobs_per_s   {:>8.0}  ({} no-op jobs, {} workers; runs {:?})",
            median_f64(&mut burn),
            args.jobs,
            args.workers,
            burn.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
        println!(
            "engine.{backend}.sustained_jobs_per_s   {:>8.0}  (4 producers, {} workers; runs {:?})",
            median_f64(&mut sustained),
            args.workers,
            sustained.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
        let (p50, p99) = handoff(backend, args).await?;
        println!(
            "engine.{backend}.mutex_handoff_us       p50 {p50:>6.0}  p99 {p99:>6.0}  (200 exclusive jobs per run, medians of {} runs)",
            args.runs
        );
    }
    progress_cost(args).await?;
    sse_latency(args).await?;
    Ok(())
}

async fn burn_down(backend: &str, args: &BenchArgs) -> anyhow::Result<f64> {
    let (db, store) = BenchDb::open(backend, args).await?;
    let jobs: Vec<NewJob> = (0..args.jobs).map(|_| new_job("noop", false)).collect();
    store.insert_jobs(&jobs).await?;
    let events = EventBus::new(1024);
    let engine = engine(&store, &events, args.workers, noop("noop", false));
    let live = events.subscribe(None).live;
    let stop = CancellationToken::new();
    let started = std::time::Instant::now();
    let handle = engine.start(stop.clone(), Duration::from_secs(10));
    completions(live, args.jobs).await?;
    let elapsed = started.elapsed();
    stop.cancel();
    handle.await?;
    db.drop_now(store).await;
    Ok(args.jobs as f64 / elapsed.as_secs_f64())
}

async fn sustain(backend: &str, args: &BenchArgs) -> anyhow::Result<f64> {
    let (db, store) = BenchDb::open(backend, args).await?;
    let events = EventBus::new(1024);
    let engine = engine(&store, &events, args.workers, noop("noop", false));
    let live = events.subscribe(None).live;
    let stop = CancellationToken::new();
    let handle = engine.start(stop.clone(), Duration::from_secs(10));
    let started = std::time::Instant::now();
    let producers = 4;
    let per_producer = args.jobs / producers;
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_producer {
                engine.enqueue("noop", None, Origin::api(None)).await?;
            }
            anyhow::Ok(())
        }));
    }
    completions(live, per_producer * producers).await?;
    let elapsed = started.elapsed();
    for task in tasks {
        task.await??;
    }
    stop.cancel();
    handle.await?;
    db.drop_now(store).await;
    Ok((per_producer * producers) as f64 / elapsed.as_secs_f64())
}

async fn handoff(backend: &str, args: &BenchArgs) -> anyhow::Result<(f64, f64)> {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..args.runs {
        let (db, store) = BenchDb::open(backend, args).await?;
        let count = 200;
        let jobs: Vec<NewJob> = (0..count).map(|_| new_job("mutex", true)).collect();
        store.insert_jobs(&jobs).await?;
        let events = EventBus::new(4096);
        let engine = engine(&store, &events, 4, noop("mutex", true));
        let mut live = events.subscribe(None).live;
        let stop = CancellationToken::new();
        let handle = engine.start(stop.clone(), Duration::from_secs(10));
        let mut last_done = None;
        let mut gaps = Vec::new();
        let mut done = 0;
        while done < count {
            let event = live.recv().await?;
            match &event.kind {
                EventKind::SyncCompleted(_) => {
                    done += 1;
                    last_done = Some(event.at);
                }
                EventKind::SyncStarted(_) => {
                    if let Some(at) = last_done.take() {
                        gaps.push((event.at - at).num_microseconds().unwrap_or(0) as f64);
                    }
                }
                _ => {}
            }
        }
        stop.cancel();
        handle.await?;
        db.drop_now(store).await;
        gaps.sort_by(f64::total_cmp);
        p50s.push(gaps[gaps.len() / 2]);
        p99s.push(gaps[(gaps.len() * 99 / 100).min(gaps.len() - 1)]);
    }
    Ok((median_f64(&mut p50s), median_f64(&mut p99s)))
}

/// The same 1M-record job with progress every 50 records and with none, alternating, each on a
/// fresh SQLite database.
async fn progress_cost(args: &BenchArgs) -> anyhow::Result<()> {
    let input = {
        let mut s = String::with_capacity(args.records * 32);
        s.push('[');
        for i in 0..args.records {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("{{\"id\":\"m{i}\",\"points\":{i}}}"));
        }
        s.push(']');
        s
    };
    let mut on = Vec::new();
    let mut off = Vec::new();
    for _ in 0..args.runs {
        for every in [Some(50), None] {
            let (db, store) = BenchDb::sqlite().await?;
            let task = RecordsTask {
                report_every: every,
                ..RecordsTask::default()
            };
            let mut ty = SyncType::new("records", 0, false, Arc::new(task));
            ty.takes_records = true;
            let events = EventBus::new(1024);
            let engine = engine(&store, &events, 4, ty);
            let live = events.subscribe(None).live;
            let stop = CancellationToken::new();
            let handle = engine.start(stop.clone(), Duration::from_secs(10));
            let started = std::time::Instant::now();
            engine
                .enqueue("records", Some(input.clone()), Origin::api(None))
                .await?;
            completions(live, 1).await?;
            let seconds = started.elapsed().as_secs_f64();
            stop.cancel();
            handle.await?;
            if store.count_records().await? != args.records as u64 {
                bail!("the records job did not store every record");
            }
            db.drop_now(store).await;
            if every.is_some() {
                on.push(seconds)
            } else {
                off.push(seconds)
            }
        }
    }
    let (on_median, off_median) = (median_f64(&mut on), median_f64(&mut off));
    println!(
        "engine.progress.records_1m_s      on {on_median:>6.2}  off {off_median:>6.2}  ratio {:.3}  ({} records, SQLite; on: a report every 50 records)",
        on_median / off_median,
        args.records
    );
    Ok(())
}

/// Reports progress with its send time in the message, every 2 ms.
struct Stamped {
    reports: u64,
}

#[async_trait]
impl SyncTask for Stamped {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        for i in 0..self.reports {
            let sent = Utc::now().timestamp_micros();
            ctx.progress(i, Some(self.reports), format!("{sent}"));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(TaskOutput::default())
    }
}

/// A progress report until an SSE client over HTTP has it.
async fn sse_latency(args: &BenchArgs) -> anyhow::Result<()> {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..args.runs {
        let data = tempfile::tempdir()?;
        let config = Config {
            addr: "127.0.0.1:0".parse()?,
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        let app = Application::build(config).await?;
        let reports = 500;
        app.state().engine.define(SyncType::new(
            "stamped",
            1,
            false,
            Arc::new(Stamped { reports }),
        ));
        let addr = app.local_addr();
        let state = app.state().clone();
        let server = tokio::spawn(app.run());
        let response = reqwest::get(format!("http://{addr}/api/events")).await?;
        let mut body = response.bytes_stream();
        state
            .engine
            .enqueue("stamped", None, Origin::api(None))
            .await?;
        let mut buffer = String::new();
        let mut samples = Vec::new();
        while samples.len() < reports as usize {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .context("no SSE data for 10 s")?
                .context("the SSE stream ended")??;
            let received = Utc::now().timestamp_micros();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            for event in super::measure::take_events(&mut buffer, "job-progress") {
                if let Some(sent) = super::measure::stamped(&event) {
                    samples.push((received - sent) as f64);
                }
            }
        }
        state.shutdown.cancel();
        drop(body);
        server.await??;
        samples.sort_by(f64::total_cmp);
        p50s.push(samples[samples.len() / 2]);
        p99s.push(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]);
    }
    println!(
        "engine.progress_to_sse_us         p50 {:>6.0}  p99 {:>6.0}  (500 reports per run over HTTP, medians of {} runs)",
        median_f64(&mut p50s),
        median_f64(&mut p99s),
        args.runs
    );
    Ok(())
}

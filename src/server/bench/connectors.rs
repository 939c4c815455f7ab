//! `baton bench --suite connectors`: records per second for a pull of `--pull-records` customers
//! from the demo ERP (in this process, no latency, 1,000 per page) into a fresh SQLite file and a
//! fresh Postgres database, with progress reported after every page and with it off. The two
//! variants alternate within each run; figures are medians over `--runs`.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    engine::BenchDb,
    measure::{median_f64, BenchArgs},
};
use crate::server::{
    connectors::{
        http::{Connection, ConnectionConfig},
        pull::{HttpPullConfig, HttpPullTask},
    },
    demo_erp::{DemoErp, DemoErpSettings},
    engine::{types::SyncType, Engine, EngineSettings, Origin},
    events::EventBus,
};

/// Runs the suite and prints one line per backend.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let erp = DemoErp::new(DemoErpSettings {
        records: args.pull_records,
        ..DemoErpSettings::default()
    });
    let stop_erp = CancellationToken::new();
    let addr = erp.spawn("127.0.0.1:0".parse()?, stop_erp.clone()).await?;
    let base = format!("http://{addr}/api");
    for backend in ["sqlite", "postgres"] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            on.push(pull(backend, args, &base, true).await?);
            off.push(pull(backend, args, &base, false).await?);
        }
        let (on_median, off_median) = (median_f64(&mut on), median_f64(&mut off));
        println!(
            "connectors.{backend}.pull_records_per_s  progress on {on_median:>7.0}  off {off_median:>7.0}  ratio(off/on) {:.3}  ({} customers, 1000 per page; runs on {:?} off {:?})",
            off_median / on_median,
            args.pull_records,
            on.iter().map(|v| v.round()).collect::<Vec<_>>(),
            off.iter().map(|v| v.round()).collect::<Vec<_>>(),
        );
    }
    stop_erp.cancel();
    Ok(())
}

/// One full pull into a fresh database; records per second.
async fn pull(backend: &str, args: &BenchArgs, base: &str, progress: bool) -> anyhow::Result<f64> {
    let (db, store) = BenchDb::open(backend, args).await?;
    let connection = Arc::new(
        Connection::resolve("erp", &ConnectionConfig::new(base), &|_| None)
            .map_err(anyhow::Error::msg)?,
    );
    let config = HttpPullConfig {
        progress,
        ..HttpPullConfig::new("erp", "/customers", "customers").pages_of(1000)
    };
    let ty = SyncType::new(
        "customers",
        1,
        true,
        Arc::new(HttpPullTask::new(config, connection)),
    );
    let events = EventBus::new(1024);
    let engine = Engine::new(
        store.clone(),
        events.clone(),
        Uuid::now_v7(),
        EngineSettings {
            poll_interval: Duration::from_millis(20),
            retention_interval: Duration::from_secs(3600),
            ..EngineSettings::default()
        },
        [ty],
    );
    let stop = CancellationToken::new();
    let handle = engine.start(stop.clone(), Duration::from_secs(10));
    let started = std::time::Instant::now();
    let (job, _) = engine.request_sync("customers", Origin::api(None)).await?;
    let id: Uuid = job.id.parse()?;
    let job = loop {
        let job = engine.job(id).await?;
        if job.state.is_terminal() {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    handle.await?;
    let stored = store.live_records("customers").await?.len();
    db.drop_now(store).await;
    if job.state != crate::model::JobState::Completed || stored != args.pull_records as usize {
        anyhow::bail!(
            "the pull did not store every record ({stored} stored; job {:?}: {:?})",
            job.state,
            job.error
        );
    }
    Ok(args.pull_records as f64 / seconds)
}

//! `baton bench --suite orders`: the order form's promises.
//!
//! - `orders.open_to_running_ms`: an order form opens (`POST /api/customers/smart-sync` over
//!   real HTTP) while another exclusive pull is mid-run → the customers refresh has started
//!   (its `sync-started` event); p50 and p99 over 20 openings per run.
//! - `orders.smart_refresh_ms`: the customers refresh of 10,000 customers from the demo ERP (in
//!   this process, no latency) after 1 % of them changed, and after all changed.
//! - `orders.picker_search_ms`: `GET /api/customers?q=` over 10,000 synced customers, two or
//!   three typed letters, as the picker asks on each keystroke; p50 and p99.
//!
//! Everything runs on a fresh SQLite file per run; figures are medians over `--runs`.

use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use super::measure::{client_with, median_f64, percentile, BenchArgs};
use crate::{
    model::{EventKind, JobState, Role},
    server::{auth::Who, config::Config, demo_erp::DemoErp, startup::Application, state::AppState},
};

const CUSTOMERS: u32 = 10_000;

struct Running {
    state: AppState,
    base: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

/// A Baton on its demo ERP (`latency` per request), with an admin token.
async fn start(latency: Duration) -> anyhow::Result<Running> {
    let data = tempfile::tempdir()?;
    let config = Config {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data.path().to_path_buf(),
        demo: Some(true),
        demo_erp_records: CUSTOMERS,
        demo_erp_latency: latency,
        demo_erp_change_every: Duration::ZERO,
        poll_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let base = format!("http://{}", app.local_addr());
    let token = state
        .auth
        .create_token("bench", Role::Admin, &Who::system("bench"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .secret;
    let server = tokio::spawn(app.run());
    Ok(Running {
        state,
        base,
        client: client_with(&token)?.build()?,
        server,
        _data: data,
    })
}

impl Running {
    async fn stop(self) {
        self.state.shutdown.cancel();
        let _ = self.server.await;
    }

    /// Requests `sync_type` and waits for its job to complete; how long it took.
    async fn sync(&self, sync_type: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/api/sync/{sync_type}", self.base))
            .send()
            .await?
            .json()
            .await?;
        let id: uuid::Uuid = answer["job_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no job: {answer}"))?
            .parse()?;
        self.wait_done(id).await?;
        Ok(started.elapsed())
    }

    /// Waits until job `id` completed.
    async fn wait_done(&self, id: uuid::Uuid) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "job {id} never completed");
            let job = self.state.engine.job(id).await?;
            match job.state {
                JobState::Completed => return Ok(()),
                JobState::Failed | JobState::Cancelled => {
                    anyhow::bail!("{} ended {:?}: {:?}", job.sync_type, job.state, job.error)
                }
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

/// Runs the suite and prints its figures.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    let (mut one, mut all) = (Vec::new(), Vec::new());
    let (mut s50, mut s99) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (p50, p99) = open_to_running().await?;
        p50s.push(p50);
        p99s.push(p99);
        let (a, b) = smart_refresh().await?;
        one.push(a);
        all.push(b);
        let (a, b) = picker_search().await?;
        s50.push(a);
        s99.push(b);
    }
    println!(
        "orders.open_to_running_ms      p50 {:>7.1}  p99 {:>7.1}  (another pull mid-run; runs p99 {:?})",
        median_f64(&mut p50s),
        median_f64(&mut p99s.clone()),
        p99s.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    println!(
        "orders.smart_refresh_ms        1% changed {:>7.0}  all changed {:>7.0}  ({CUSTOMERS} customers; runs {:?} / {:?})",
        median_f64(&mut one.clone()),
        median_f64(&mut all.clone()),
        one.iter().map(|v| v.round()).collect::<Vec<_>>(),
        all.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "orders.picker_search_ms        p50 {:>7.2}  p99 {:>7.2}  (GET /api/customers?q= over {CUSTOMERS})",
        median_f64(&mut s50),
        median_f64(&mut s99)
    );
    Ok(())
}

/// 20 openings while a pull of 10,000 products (20 ms a page) runs: ms to the refresh's start.
async fn open_to_running() -> anyhow::Result<(f64, f64)> {
    let running = start(Duration::from_millis(20)).await?;
    running.sync("customers").await?;
    let mut events = running.state.events.subscribe(None).live;
    let mut samples = Vec::new();
    for i in 0..20 {
        // A long pull is mid-run.
        let answer: serde_json::Value = running
            .client
            .post(format!("{}/api/sync/products", running.base))
            .send()
            .await?
            .json()
            .await?;
        let pull: uuid::Uuid = answer["job_id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no job: {answer}"))?
            .parse()?;
        wait_for(
            &mut events,
            "the pull's progress",
            |k| matches!(k, EventKind::JobProgress(p) if p.sync_type == "products"),
        )
        .await?;
        let tab = format!("bench-{i}");
        let sent = Instant::now();
        let answer = running
            .client
            .post(format!("{}/api/customers/smart-sync", running.base))
            .json(&serde_json::json!({ "tab_id": tab }))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "smart-sync: {}",
            answer.status()
        );
        wait_for(
            &mut events,
            "the refresh's start",
            |k| matches!(k, EventKind::SyncStarted(j) if j.sync_type == "customers"),
        )
        .await?;
        samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        wait_for(
            &mut events,
            "the refresh's end",
            |k| matches!(k, EventKind::SyncCompleted(j) if j.sync_type == "customers"),
        )
        .await?;
        running
            .client
            .post(format!(
                "{}/api/customers/resume-syncs?tab_id={tab}",
                running.base
            ))
            .send()
            .await?;
        // The pull resumes and ends before the next round.
        running.wait_done(pull).await?;
    }
    running.stop().await;
    let (p50, p99) = (
        percentile(&mut samples.clone(), 50),
        percentile(&mut samples, 99),
    );
    Ok((p50, p99))
}

async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<crate::model::LiveEvent>>,
    what: &str,
    want: impl Fn(&EventKind) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => anyhow::bail!("{what} never came"),
            Ok(Ok(event)) if want(&event.kind) => return Ok(()),
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => anyhow::bail!("the event bus closed"),
        }
    }
}

/// The refresh after 1 % and after all of 10,000 customers changed, in ms.
async fn smart_refresh() -> anyhow::Result<(f64, f64)> {
    let running = start(Duration::ZERO).await?;
    running.sync("customers").await?;
    let erp: &DemoErp = running
        .state
        .demo_erp_handle
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no demo ERP"))?;
    erp.touch("customers", CUSTOMERS as usize / 100);
    let one = running.sync("customers").await?;
    erp.touch("customers", CUSTOMERS as usize);
    let all = running.sync("customers").await?;
    running.stop().await;
    Ok((one.as_secs_f64() * 1000.0, all.as_secs_f64() * 1000.0))
}

/// 200 searches as a person types (two or three letters) over 10,000 customers, in ms.
async fn picker_search() -> anyhow::Result<(f64, f64)> {
    let running = start(Duration::ZERO).await?;
    running.sync("customers").await?;
    let queries = [
        "an", "ma", "ros", "ri", "gi", "co", "pa", "mar", "c00", "el",
    ];
    let mut samples = Vec::new();
    for i in 0..200 {
        let q = queries[i % queries.len()];
        let sent = Instant::now();
        let hits: serde_json::Value = running
            .client
            .get(format!("{}/api/customers?q={q}&limit=12", running.base))
            .send()
            .await?
            .json()
            .await?;
        samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(hits.is_array(), "{hits}");
    }
    running.stop().await;
    Ok((
        percentile(&mut samples.clone(), 50),
        percentile(&mut samples, 99),
    ))
}

//! `baton bench --suite schedules`: the scheduler with 1,000 schedules.
//!
//! - `schedules.idle_tick_us`: one look at the schedules when none is due (what every process
//!   pays between fires): p50 and p99 of `Scheduler::tick` over 200 calls.
//! - `schedules.fire_lateness_ms`: a real Baton (its scheduler loop, its engine running the jobs)
//!   with 1,000 schedules of 1,000 no-op types, each every 10 s on its own grid (100 fires a
//!   second), for 30 s: `recorded_at − fire_time` of every fire, p50 and p99; and the process's
//!   CPU time per second of that run (user + system, the engine's work included).
//!
//! A fresh SQLite file per run; figures are medians over `--runs`.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::measure::{median_f64, percentile, BenchArgs};
use crate::{
    model::ScheduleSpec,
    server::{
        catalog::{SyncTypeConfig, TaskConfig},
        config::Config,
        startup::Application,
    },
};

const SCHEDULES: usize = 1_000;
const RUN: Duration = Duration::from_secs(30);

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A config with `SCHEDULES` no-op types, each with a schedule every `every`.
fn config(data: &std::path::Path, every: &str) -> anyhow::Result<Config> {
    let mut config = Config {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data.to_path_buf(),
        demo: Some(false),
        workers: 16,
        poll_interval: Duration::from_millis(100),
        ..Config::default()
    };
    config.sync_types.clear();
    for i in 0..SCHEDULES {
        config.sync_types.insert(
            format!("bench-{i:04}"),
            SyncTypeConfig {
                priority: 1,
                exclusive: false,
                enabled: true,
                timeout: Duration::from_secs(60),
                retry: Default::default(),
                keep: 10,
                task: Some(TaskConfig::Noop),
                schedule: Some(ScheduleSpec::every(every)),
            },
        );
    }
    Ok(config)
}

/// p50 and p99 of an idle tick, in µs.
async fn idle_tick() -> anyhow::Result<(f64, f64)> {
    let data = tempfile::tempdir()?;
    let app = Application::build(config(data.path(), "1d")?).await?;
    let scheduler = app.state().scheduler.clone();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        anyhow::ensure!(
            scheduler.tick(Utc::now()).await? == 0,
            "nothing should be due"
        );
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let p50 = percentile(&mut samples, 50);
    Ok((p50, percentile(&mut samples, 99)))
}

/// Lateness p50, p99 (ms) and CPU ms per second over a 30 s run of 100 fires a second: spread
/// over each 10 s (each schedule's grid starts 10 ms after the one before), or `aligned` (all
/// at the same instants, as 1,000 schedules on one cron minute would be).
async fn live_run(aligned: bool) -> anyhow::Result<(f64, f64, f64, usize)> {
    let data = tempfile::tempdir()?;
    let app = Application::build(config(data.path(), "10s")?).await?;
    let state = app.state().clone();
    let t0 = Utc::now() + chrono::Duration::seconds(1);
    for i in 0..SCHEDULES {
        let anchor = if aligned {
            t0
        } else {
            t0 + chrono::Duration::milliseconds(10 * i as i64)
        };
        state
            .scheduler
            .update(
                &format!("bench-{i:04}"),
                &ScheduleSpec::every("10s"),
                "bench",
                anchor,
            )
            .await?;
    }
    let server = tokio::spawn(app.run());
    let cpu = cpu_time();
    let started = Instant::now();
    tokio::time::sleep(RUN).await;
    let cpu_ms_per_s = (cpu_time() - cpu).as_secs_f64() * 1000.0 / started.elapsed().as_secs_f64();
    let mut lateness = Vec::new();
    for i in 0..SCHEDULES {
        for fire in state
            .store
            .schedule_fires(&format!("bench-{i:04}"), None, 100)
            .await?
        {
            lateness.push(
                (fire.recorded_at - fire.fire_time)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1000.0,
            );
        }
    }
    state.shutdown.cancel();
    let _ = server.await;
    anyhow::ensure!(!lateness.is_empty(), "nothing fired");
    let n = lateness.len();
    let p50 = percentile(&mut lateness, 50);
    Ok((p50, percentile(&mut lateness, 99), cpu_ms_per_s, n))
}

/// Runs the suite and prints its figures.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (mut t50, mut t99) = (Vec::new(), Vec::new());
    let (mut l50, mut l99, mut cpu, mut fires) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut a50, mut a99) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (a, b) = idle_tick().await?;
        t50.push(a);
        t99.push(b);
        let (a, b, c, n) = live_run(false).await?;
        l50.push(a);
        l99.push(b);
        cpu.push(c);
        fires.push(n);
        let (a, b, _, _) = live_run(true).await?;
        a50.push(a);
        a99.push(b);
    }
    println!(
        "schedules.idle_tick_us         p50 {:>7.0}  p99 {:>7.0}  ({SCHEDULES} schedules, none due; runs p99 {:?})",
        median_f64(&mut t50),
        median_f64(&mut t99.clone()),
        t99.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "schedules.fire_lateness_ms     p50 {:>7.1}  p99 {:>7.1}  ({SCHEDULES} schedules every 10 s, {}s per run, fires per run {fires:?}; runs p99 {:?})",
        median_f64(&mut l50),
        median_f64(&mut l99.clone()),
        RUN.as_secs(),
        l99.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    println!(
        "schedules.aligned_lateness_ms  p50 {:>7.1}  p99 {:>7.1}  ({SCHEDULES} schedules due at the same instants every 10 s; runs p99 {:?})",
        median_f64(&mut a50),
        median_f64(&mut a99.clone()),
        a99.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    println!(
        "schedules.cpu_ms_per_s         {:>7.1}  (the whole process while firing 100 a second and running their jobs; runs {:?})",
        median_f64(&mut cpu.clone()),
        cpu.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    Ok(())
}

//! `baton bench`: figures for the targets that live in benchmarks, never in timed tests.
//!
//! `--suite site` (below) measures the web app; `--suite engine` ([`engine`]) the job engine;
//! `--suite connectors` ([`connectors`]) an HTTP pull; `--suite status` ([`status`]) status writes
//! to SSE clients and idle SSE memory; `--suite orders` ([`orders`]) the order form's smart
//! customer sync and picker; `--suite schedules` ([`schedules`]) the scheduler with 1,000
//! schedules; `--suite tasks` ([`tasks`]) the tasks list over 1,000,000 jobs; without
//! `--suite`, all seven.
//!
//! It measures the built site (WASM size, raw and brotli) and a real `baton serve` child process on
//! a free port with a fresh SQLite database: time to first byte of the server-rendered home page
//! (median and p99 per run, median over runs) and resident memory when idle. Run it from the
//! repository root after `cargo leptos build --release`.

use anyhow::bail;

mod connectors;
mod engine;
mod instances;
mod measure;
mod orders;
mod schedules;
mod site;
mod status;
mod tasks;

use self::measure::ServerUnderTest;
pub use measure::{BenchArgs, Suite};

/// Runs every measurement and prints one line per figure.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.requests == 0
        || args.runs == 0
        || args.jobs < 4
        || args.workers == 0
        || args.records == 0
        || args.pull_records == 0
    {
        bail!("--requests, --runs, --workers and --records must be at least 1, --jobs at least 4");
    }
    if args.suite.is_none() || args.suite == Some(Suite::Site) {
        site::wasm_size(&args)?;
        let mut server = ServerUnderTest::start(&args.site_root)?;
        let result = site::server_figures(&args, &server).await;
        server.stop();
        result?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Engine) {
        engine::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Connectors) {
        connectors::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Status) {
        status::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Orders) {
        orders::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Schedules) {
        schedules::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Tasks) {
        tasks::run(&args).await?;
    }
    if args.suite.is_none() || args.suite == Some(Suite::Instances) {
        instances::run(&args).await?;
    }
    Ok(())
}

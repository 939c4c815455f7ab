//! The `baton` binary: parse the command line, load the configuration, run one subcommand.

use std::{path::PathBuf, process::ExitCode};

use baton::server::{
    bench::{self, BenchArgs},
    config::{Config, Overrides},
    demo_erp::{DemoErp, DemoErpSettings},
    startup::Application,
    store::Store,
    telemetry,
};
use clap::{Parser, Subcommand};

/// Baton: a self-hosted sync orchestrator with a live admin dashboard.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about)]
struct Cli {
    /// Configuration file (TOML); without it ./baton.toml is read if it exists
    #[arg(long, short = 'c', global = true, env = "BATON_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default)
    Serve,
    /// Apply database migrations, print the applied versions and exit
    Migrate,
    /// Measure the built site and a running server, and print the figures
    Bench(BenchArgs),
    /// Run the demo ERP alone: generated customers, products, prices, orders, invoices and ddt
    DemoErp(DemoErpArgs),
}

#[derive(Debug, clap::Args)]
struct DemoErpArgs {
    /// Where to listen
    #[arg(long, default_value = "127.0.0.1:3100", env = "BATON_DEMO_ERP_ADDR")]
    addr: std::net::SocketAddr,
    /// Records per entity to start with
    #[arg(long, default_value_t = 10_000)]
    records: u32,
    /// Delay before every answer, e.g. 50ms
    #[arg(long, default_value = "0s", value_parser = humantime_serde::re::humantime::parse_duration)]
    latency: std::time::Duration,
    /// Share of requests answered 503, from 0 to 1
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// How often the data changes by itself, e.g. 60s; 0s: only on POST /api/_tick
    #[arg(long, default_value = "60s", value_parser = humantime_serde::re::humantime::parse_duration)]
    change_every: std::time::Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), &cli.overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("baton: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = telemetry::init(config.log_format, &config.log) {
        eprintln!("baton: {err:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Bench(args) => bench::run(args).await,
        Command::DemoErp(args) => demo_erp(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("baton: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run().await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let target = config.database_target()?;
    let store = Store::connect(&target, 1).await?;
    store.migrate().await?;
    let versions = store.applied_migrations().await?;
    println!(
        "{target}: {} migrations applied: {versions:?}",
        versions.len()
    );
    store.close().await;
    Ok(())
}

async fn demo_erp(args: DemoErpArgs) -> anyhow::Result<()> {
    if args.records == 0 {
        anyhow::bail!("--records must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.failure_rate) {
        anyhow::bail!(
            "--failure-rate must be between 0 and 1, not {}",
            args.failure_rate
        );
    }
    let erp = DemoErp::new(DemoErpSettings {
        records: args.records,
        latency: args.latency,
        failure_rate: args.failure_rate,
        change_every: Some(args.change_every),
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.addr))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(baton::server::shutdown::cancel_on_signal(shutdown.clone())?);
    println!(
        "demo ERP listening on http://{}/api",
        listener.local_addr()?
    );
    erp.serve(listener, shutdown).await;
    Ok(())
}

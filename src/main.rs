//! The `baton` binary: parse the command line, load the configuration, run one subcommand.

use std::{path::PathBuf, process::ExitCode};

use baton::server::{
    bench::{self, BenchArgs},
    config::{Config, Overrides},
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

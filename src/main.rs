//! The `baton` binary: parse the command line, load the configuration, run one subcommand.

use std::{path::PathBuf, process::ExitCode};

use baton::model::Role;
use baton::server::remote::RemoteCommand;
use baton::server::{
    auth::{Auth, Who},
    bench::{self, BenchArgs},
    config::{Config, Overrides},
    demo_erp::{DemoErp, DemoErpSettings},
    startup::Application,
    store::Store,
    telemetry,
};
use clap::{CommandFactory, Parser, Subcommand};

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
    /// Manage the people who sign in (viewer, staff or admin)
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the API tokens programs use (Authorization: Bearer <token>)
    #[command(subcommand)]
    Token(TokenCommand),
    #[command(flatten)]
    Remote(RemoteCommand),
    /// Print shell completions (bash, zsh, fish, elvish or powershell) to stdout
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::aot::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for, or read from stdin with --password-stdin
    Add {
        /// The name they sign in with
        name: String,
        /// viewer, staff or admin
        #[arg(long, value_parser = role)]
        role: Role,
        /// Read the password from the first line of stdin instead of asking
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users with their roles
    List,
    /// Change a user's role (their sessions end)
    SetRole {
        /// The user
        name: String,
        /// viewer, staff or admin
        #[arg(value_parser = role)]
        role: Role,
    },
    /// Set a user's password (their sessions end)
    SetPassword {
        /// The user
        name: String,
        /// Read the password from the first line of stdin instead of asking
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user (never the last admin)
    Remove {
        /// The user
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (alone, on the last line): it is shown this once
    Create {
        /// Its name; what it starts is marked token:<name>
        #[arg(long)]
        name: String,
        /// viewer, staff or admin
        #[arg(long, value_parser = role)]
        role: Role,
    },
    /// List the tokens (never their secrets)
    List,
    /// Revoke a token: refused from the next request on
    Revoke {
        /// The token's name
        name: String,
    },
}

fn role(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| format!("`{name}` is not a role: use viewer, staff or admin"))
}

/// The demo ERP's address when `--addr` (the global flag, which here means the demo ERP's own
/// address) is not given.
const DEMO_ERP_ADDR: &str = "127.0.0.1:3100";

#[derive(Debug, clap::Args)]
struct DemoErpArgs {
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
    let mut cli = Cli::parse();
    // The commands that talk to a running server need no configuration or database here.
    match cli.command.take() {
        Some(Command::Completions { shell }) => {
            clap_complete::aot::generate(
                shell,
                &mut Cli::command(),
                "baton",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        // The demo ERP alone reads no configuration either; `--addr` is its own address.
        Some(Command::DemoErp(args)) => {
            let defaults = Config::default();
            let log = std::env::var("BATON_LOG").unwrap_or(defaults.log);
            let _ = telemetry::init(defaults.log_format, &log);
            return match demo_erp(args, cli.overrides.addr.as_deref()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("baton: {err:#}");
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Remote(command)) => {
            return match command.run().await {
                Ok(exit) => ExitCode::from(exit as u8),
                Err(err) => {
                    eprintln!("baton: {err}");
                    ExitCode::from(err.exit as u8)
                }
            };
        }
        other => cli.command = other,
    }
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
        Command::User(command) => user(config, command).await,
        Command::Token(command) => token(config, command).await,
        _ => unreachable!("the remote commands and the demo ERP returned above"),
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

/// The people-and-tokens service on the configured (migrated) database, as the CLI.
async fn people(config: &Config) -> anyhow::Result<(Auth, Store)> {
    let target = config.database_target()?;
    let store = Store::connect(&target, 2).await?;
    store.migrate().await?;
    Ok((Auth::new(store.clone(), config.auth_settings()), store))
}

/// A password from the first line of stdin, or asked for (twice) on the terminal.
fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("The password again: ")?;
    if first != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let (auth, store) = people(&config).await?;
    let who = Who::system("cli");
    let result = match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = password(password_stdin)?;
            auth.add_user(&name, role, &password, &who)
                .await
                .map(|()| println!("added {} ({role})", name.trim()))
        }
        UserCommand::List => {
            let users = auth.users().await?;
            if users.is_empty() {
                println!("no users yet: add one with `baton user add NAME --role admin`");
            }
            for u in users {
                println!("{}\t{}\t{} session(s)", u.name, u.role, u.sessions);
            }
            Ok(())
        }
        UserCommand::SetRole { name, role } => auth
            .set_role(&name, role, &who)
            .await
            .map(|()| println!("{} is now {role}; their sessions have ended", name.trim())),
        UserCommand::SetPassword {
            name,
            password_stdin,
        } => {
            let password = password(password_stdin)?;
            auth.set_password(&name, &password, &who)
                .await
                .map(|()| println!("password of {} set; their sessions have ended", name.trim()))
        }
        UserCommand::Remove { name } => auth
            .remove_user(&name, &who)
            .await
            .map(|()| println!("removed {}", name.trim())),
    };
    store.close().await;
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

async fn token(config: Config, command: TokenCommand) -> anyhow::Result<()> {
    let (auth, store) = people(&config).await?;
    let who = Who::system("cli");
    let result = match command {
        TokenCommand::Create { name, role } => {
            auth.create_token(&name, role, &who).await.map(|new| {
                eprintln!(
                    "token `{}` ({role}) created; it is shown once, on the next line:",
                    new.token.name
                );
                println!("{}", new.secret);
            })
        }
        TokenCommand::List => {
            for t in auth.tokens().await? {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    None => match t.last_used_at {
                        Some(at) => format!("last used {}", at.format("%Y-%m-%d %H:%M")),
                        None => "never used".into(),
                    },
                };
                println!(
                    "{}\t{}\t{}\tcreated by {}",
                    t.name, t.role, state, t.created_by
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => auth
            .revoke_token(&name, &who)
            .await
            .map(|()| println!("revoked {}", name.trim())),
    };
    store.close().await;
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs the demo ERP alone at `--addr` (else `BATON_DEMO_ERP_ADDR`, else 127.0.0.1:3100).
async fn demo_erp(args: DemoErpArgs, addr: Option<&str>) -> anyhow::Result<()> {
    let addr = match addr {
        Some(addr) => addr.to_string(),
        None => std::env::var("BATON_DEMO_ERP_ADDR").unwrap_or_else(|_| DEMO_ERP_ADDR.into()),
    };
    let addr: std::net::SocketAddr = addr.trim().parse().map_err(|_| {
        anyhow::anyhow!("--addr must be an address such as 127.0.0.1:3100, not `{addr}`")
    })?;
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
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(baton::server::shutdown::cancel_on_signal(shutdown.clone())?);
    println!(
        "demo ERP listening on http://{}/api",
        listener.local_addr()?
    );
    erp.serve(listener, shutdown).await;
    Ok(())
}

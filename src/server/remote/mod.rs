//! The commands that talk to a running Baton through its HTTP API (`--server`, with an API
//! token from `BATON_TOKEN`): `trigger` (and follow a run live), `status`, `jobs`, `logs`,
//! `cancel`, `retry`. They read the same JSON the pages read; nothing here touches the database.

mod follow;
mod table;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::model::{Job, JobLogLine, JobState, SessionView, SyncStatus};

pub use follow::{follow_job, follow_session};

/// What the process exits with: 0 success, 1 the run failed (or the server could not do what was
/// asked), 2 bad usage, 3 it ended with warnings, 4 a workflow waits at a gate for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failed = 1,
    Usage = 2,
    Warnings = 3,
    Gate = 4,
}

/// A failure of a remote command, with the exit code it means and a sentence a person can act
/// on.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Failed,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where the server is; every remote command takes it.
#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// The Baton server to talk to; the API token is read from BATON_TOKEN
    #[arg(long, env = "BATON_SERVER", default_value = "http://127.0.0.1:3000")]
    pub server: String,
}

/// The commands that talk to a running server.
#[derive(Debug, clap::Subcommand)]
pub enum RemoteCommand {
    /// Run a sync type or start a workflow on a running server; --wait follows it live.
    /// Exits 0 on success, 1 on failure, 2 on bad usage, 3 when it ended with warnings, 4 when a
    /// workflow waits at a gate for a person
    Trigger {
        /// A sync type (customers, orders, …) or a workflow (daily-sync, …)
        name: String,
        /// Follow it to its end with a progress bar
        #[arg(long)]
        wait: bool,
        /// Print the job or session as JSON on stdout
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The orchestrator's state on a running server: what runs, the queue, each type's freshness
    /// and next run
    Status {
        /// Print the status as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The newest jobs on a running server
    Jobs {
        /// pending, running, completed, failed or cancelled
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this sync type
        #[arg(long = "type")]
        sync_type: Option<String>,
        /// How many (1-500)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Print the jobs as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// A job's log; --follow prints new lines until the job ends
    Logs {
        /// The job's id
        job: String,
        #[arg(long, short = 'f')]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a waiting or running job
    Cancel {
        /// The job's id
        job: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Queue a failed or cancelled job again
    Retry {
        /// The job's id
        job: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl RemoteCommand {
    /// Runs the command against its server; the exit code says how it went.
    pub async fn run(self) -> Result<Exit, CliError> {
        match self {
            RemoteCommand::Trigger {
                name,
                wait,
                json,
                server,
            } => trigger(&Client::from_env(&server)?, &name, wait, json).await,
            RemoteCommand::Status { json, server } => {
                status(&Client::from_env(&server)?, json).await
            }
            RemoteCommand::Jobs {
                state,
                sync_type,
                limit,
                json,
                server,
            } => {
                let client = Client::from_env(&server)?;
                jobs(&client, state.as_deref(), sync_type.as_deref(), limit, json).await
            }
            RemoteCommand::Logs {
                job,
                follow,
                server,
            } => logs(&Client::from_env(&server)?, &job, follow).await,
            RemoteCommand::Cancel { job, server } => {
                cancel(&Client::from_env(&server)?, &job).await
            }
            RemoteCommand::Retry { job, server } => retry(&Client::from_env(&server)?, &job).await,
        }
    }
}

/// An HTTP client for one server, sending the API token with every request.
#[derive(Clone)]
pub struct Client {
    base: url::Url,
    http: reqwest::Client,
    token: String,
}

impl Client {
    /// A client for `server` with the token in `BATON_TOKEN`.
    pub fn from_env(server: &ServerArgs) -> Result<Self, CliError> {
        let token = std::env::var("BATON_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CliError::usage(
                    "BATON_TOKEN is not set: create an API token on the server with \
                     `baton token create --name cli --role staff` and export it as BATON_TOKEN",
                )
            })?;
        Self::new(&server.server, token)
    }

    /// A client for `server` sending `token`.
    pub fn new(server: &str, token: String) -> Result<Self, CliError> {
        let base = url::Url::parse(server.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--server must be the server's http:// or https:// address, such as \
                     http://127.0.0.1:3000; got `{server}`"
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::failed(format!("cannot make an HTTP client: {e}")))?;
        Ok(Client { base, http, token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// Sends a request; a refused or unanswered one becomes the error a person can act on.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CliError> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.answered(request).await
    }

    /// The answer to `request`; a refused or unanswered one becomes the error a person can act
    /// on.
    async fn answered(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let said = body["message"].as_str().unwrap_or("").to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => CliError::usage(format!(
                "the server refused the token in BATON_TOKEN ({said}); create a new one with \
                 `baton token create --name cli --role staff`"
            )),
            StatusCode::FORBIDDEN => CliError::usage(format!("refused: {said}")),
            _ if said.is_empty() => CliError::failed(format!("the server answered {status}")),
            _ => CliError::failed(said),
        })
    }

    fn unreachable(&self, err: &reqwest::Error) -> CliError {
        let why = if err.is_timeout() {
            "it did not answer in time"
        } else if err.is_connect() {
            "nothing answers there"
        } else {
            "the request failed"
        };
        CliError::failed(format!(
            "cannot reach Baton at {}: {why}; is `baton serve` running there? (set --server or \
             BATON_SERVER)",
            self.base
        ))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        decode(self.send(Method::GET, path, None).await?).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, CliError> {
        decode(self.send(Method::POST, path, body).await?).await
    }

    /// Opens the live event stream (the subscription is live once this returns); no timeout,
    /// it stays open for as long as it is read.
    pub async fn events(&self) -> Result<reqwest::Response, CliError> {
        let request = self
            .http
            .get(self.url("/api/events"))
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream");
        self.answered(request).await
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CliError> {
    response.json().await.map_err(|e| {
        CliError::failed(format!(
            "the server's answer could not be read ({e}); is --server a Baton server of this \
             version?"
        ))
    })
}

/// What `trigger` was given: a sync type or a workflow.
enum Target {
    Sync(String),
    Workflow(String),
}

/// Finds whether `name` is a sync type or a workflow; neither is a usage error listing both.
async fn target(client: &Client, name: &str) -> Result<Target, CliError> {
    let status: SyncStatus = client.get("/api/sync/status").await?;
    if status.types.contains_key(name) {
        return Ok(Target::Sync(name.to_string()));
    }
    let workflows: Vec<Value> = client.get("/api/workflows").await?;
    let ids: Vec<&str> = workflows.iter().filter_map(|w| w["id"].as_str()).collect();
    if ids.contains(&name) {
        return Ok(Target::Workflow(name.to_string()));
    }
    Err(CliError::usage(format!(
        "`{name}` is neither a sync type nor a workflow; sync types: {}; workflows: {}",
        status.types.keys().cloned().collect::<Vec<_>>().join(", "),
        ids.join(", ")
    )))
}

/// `baton trigger NAME [--wait] [--json]`.
pub async fn trigger(
    client: &Client,
    name: &str,
    wait: bool,
    json_out: bool,
) -> Result<Exit, CliError> {
    let target = target(client, name).await?;
    // Subscribed before the run is requested, so not one of its events is missed.
    let events = if wait {
        Some(client.events().await?)
    } else {
        None
    };
    let body = json!({ "triggered_by": "baton trigger" });
    match target {
        Target::Sync(ty) => {
            let answer: Value = client.post(&format!("/api/sync/{ty}"), Some(&body)).await?;
            let id = answer["job_id"].as_str().unwrap_or_default().to_string();
            if answer["deduplicated"] == true {
                eprintln!("a {ty} sync was already waiting: following job {id}");
            } else {
                eprintln!("queued {ty}: job {id}");
            }
            let Some(events) = events else {
                if json_out {
                    let job: Job = client.get(&format!("/api/jobs/{id}")).await?;
                    print_json(&job);
                } else {
                    println!("{id}");
                }
                return Ok(Exit::Success);
            };
            let job = follow_job(client, &id, events).await?;
            if json_out {
                print_json(&job);
            }
            Ok(job_exit(&job))
        }
        Target::Workflow(workflow) => {
            let body = json!({ "workflow": workflow, "triggered_by": "baton trigger" });
            let answer: Value = client.post("/api/sessions", Some(&body)).await?;
            let id = answer["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            eprintln!("started {workflow}: session {id}");
            let Some(events) = events else {
                if json_out {
                    let session: SessionView = client.get(&format!("/api/sessions/{id}")).await?;
                    print_json(&session);
                } else {
                    println!("{id}");
                }
                return Ok(Exit::Success);
            };
            let (session, exit) = follow_session(client, &id, events).await?;
            if json_out {
                print_json(&session);
            }
            Ok(exit)
        }
    }
}

/// The exit code a finished job means.
pub fn job_exit(job: &Job) -> Exit {
    match job.state {
        JobState::Completed if job.warnings.is_empty() => Exit::Success,
        JobState::Completed => Exit::Warnings,
        _ => Exit::Failed,
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("cannot print the answer as JSON: {err}"),
    }
}

/// `baton status`: the orchestrator's state as tables.
pub async fn status(client: &Client, json_out: bool) -> Result<Exit, CliError> {
    let status: SyncStatus = client.get("/api/sync/status").await?;
    if json_out {
        print_json(&status);
        return Ok(Exit::Success);
    }
    match &status.current {
        Some(job) => println!(
            "Running (holds the mutex): {} {} {}%{}",
            job.sync_type,
            job.id,
            job.progress,
            job.message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        ),
        None => println!("Running (holds the mutex): nothing"),
    }
    if status.queue.is_empty() {
        println!("Queue: empty");
    } else {
        println!("Queue ({}):", status.queue.len());
        for job in &status.queue {
            println!("  {} {} (priority {})", job.sync_type, job.id, job.priority);
        }
    }
    if let Some(holding) = &status.smart_sync.holding {
        println!("{holding}");
    }
    println!();
    let mut types: Vec<_> = status.types.values().collect();
    types.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    let rows: Vec<Vec<String>> = types
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                if t.enabled {
                    serde_plain(&t.state)
                } else {
                    "off".into()
                },
                serde_plain(&t.freshness),
                table::time(t.last_success),
                table::time(t.next_run),
                t.last_error
                    .as_deref()
                    .map(|e| table::clip(e, 60))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table::print(
        &[
            "TYPE",
            "STATE",
            "FRESHNESS",
            "LAST SUCCESS",
            "NEXT RUN",
            "LAST ERROR",
        ],
        &rows,
    );
    Ok(Exit::Success)
}

/// A unit enum's serde name (`"idle"`), for tables.
pub(super) fn serde_plain(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `baton jobs [--state] [--type] [--limit]`: the newest jobs.
pub async fn jobs(
    client: &Client,
    state: Option<&str>,
    sync_type: Option<&str>,
    limit: u32,
    json_out: bool,
) -> Result<Exit, CliError> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &limit.to_string());
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    if let Some(ty) = sync_type {
        query.append_pair("sync_type", ty);
    }
    let page: Value = client.get(&format!("/api/jobs?{}", query.finish())).await?;
    let jobs: Vec<Job> = serde_json::from_value(page["jobs"].clone())
        .map_err(|e| CliError::failed(format!("the server's job list could not be read: {e}")))?;
    if json_out {
        print_json(&jobs);
        return Ok(Exit::Success);
    }
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.sync_type.clone(),
                j.state.as_str().to_string(),
                format!("{}%", j.progress),
                table::time(Some(j.created_at)),
                j.triggered_by.clone().unwrap_or_default(),
                j.error
                    .as_deref()
                    .or(j.message.as_deref())
                    .map(|m| table::clip(m, 50))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table::print(
        &["ID", "TYPE", "STATE", "DONE", "QUEUED", "BY", "MESSAGE"],
        &rows,
    );
    Ok(Exit::Success)
}

/// `baton logs JOB [--follow]`: the job's log lines; with `--follow`, new ones as they come,
/// until the job ends.
pub async fn logs(client: &Client, id: &str, follow: bool) -> Result<Exit, CliError> {
    let mut after: Option<i64> = None;
    loop {
        // The job's state before its lines: lines written before it ended are all in the page.
        let job: Job = client.get(&format!("/api/jobs/{id}")).await?;
        loop {
            let path = match after {
                Some(a) => format!("/api/jobs/{id}/logs?after={a}&limit=1000"),
                None => format!("/api/jobs/{id}/logs?limit=1000"),
            };
            let page: Value = client.get(&path).await?;
            let lines: Vec<JobLogLine> = serde_json::from_value(page["lines"].clone())
                .map_err(|e| CliError::failed(format!("the job's log could not be read: {e}")))?;
            for line in &lines {
                println!(
                    "{} {:<5} #{} {}",
                    line.at.format("%H:%M:%S%.3f"),
                    serde_plain(&line.level),
                    line.attempt,
                    line.message
                );
            }
            after = page["next_after"].as_i64().or(after);
            if lines.len() < 1000 {
                break;
            }
        }
        if !follow || job.state.is_terminal() {
            return Ok(if follow {
                job_exit(&job)
            } else {
                Exit::Success
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `baton cancel JOB`.
pub async fn cancel(client: &Client, id: &str) -> Result<Exit, CliError> {
    let job: Job = client.post(&format!("/api/jobs/{id}/cancel"), None).await?;
    if job.state == JobState::Cancelled {
        println!("cancelled {} ({})", job.id, job.sync_type);
    } else {
        println!(
            "asked {} ({}) to stop; it is cancelled at its next step",
            job.id, job.sync_type
        );
    }
    Ok(Exit::Success)
}

/// `baton retry JOB`: a new job for a failed or cancelled one.
pub async fn retry(client: &Client, id: &str) -> Result<Exit, CliError> {
    let body = json!({ "triggered_by": "baton retry" });
    let answer: Value = client
        .post(&format!("/api/jobs/{id}/retry"), Some(&body))
        .await?;
    println!(
        "queued {} (a retry of {id})",
        answer["job_id"].as_str().unwrap_or_default()
    );
    Ok(Exit::Success)
}

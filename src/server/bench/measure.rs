//! What the suites share: the options, a `baton serve` child to measure, SSE frame reading and
//! medians.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context};

/// Which measurements to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// WASM size, server-rendered time to first byte, memory.
    Site,
    /// Job throughput, mutex hand-off, progress cost, progress-to-SSE latency.
    Engine,
    /// Records per second of an HTTP pull from the demo ERP, progress on and off.
    Connectors,
    /// Status write to `step-status` over SSE at 1 and 1,000 clients; memory per idle client.
    Status,
    /// Order form opened → customers refresh running; smart refresh of 10,000 customers;
    /// the customer picker's search.
    Orders,
    /// An idle scheduler tick and fire lateness with 1,000 schedules.
    Schedules,
    /// The tasks view's pages over 1,000,000 stored jobs, on SQLite and Postgres.
    Tasks,
    /// Two engines on one Postgres: queued through one → started by the other; cancel across.
    Instances,
}

/// Options of `baton bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Requests per run for the time to first byte
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Runs; each figure is the median over them
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The built site (cargo leptos build --release writes target/site)
    #[arg(long, default_value = "target/site")]
    pub site_root: PathBuf,
    /// Only this suite (default: all)
    #[arg(long, value_enum)]
    pub suite: Option<Suite>,
    /// Postgres server for the engine suite; each run creates and drops its own database
    #[arg(
        long,
        env = "BATON_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Jobs per throughput run
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// Non-exclusive workers for the throughput runs (more jobs in flight make bigger batches)
    #[arg(long, default_value_t = 64)]
    pub workers: usize,
    /// Records in the progress-cost job
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Customers the demo ERP serves for the pull benchmark
    #[arg(long, default_value_t = 100_000)]
    pub pull_records: u32,
}

/// A `baton serve` child on a free port with a throw-away data directory.
pub struct ServerUnderTest {
    pub child: Child,
    pub addr: String,
    /// A viewer API token on its database, so pages render as they do for a person.
    pub token: String,
    _data: tempfile::TempDir,
}

impl ServerUnderTest {
    pub fn start(site_root: &std::path::Path) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        // A token first, made as an admin would (`baton token create`).
        let made = Command::new(std::env::current_exe()?)
            .args(["token", "create", "--name", "bench", "--role", "viewer"])
            .env("BATON_DATA_DIR", data.path())
            .env("BATON_CONFIG", "/dev/null")
            .env("BATON_LOG", "warn")
            .stderr(Stdio::null())
            .output()
            .context("cannot run baton token create")?;
        let token = String::from_utf8_lossy(&made.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        if !made.status.success() || token.is_empty() {
            bail!("baton token create failed");
        }
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("BATON_ADDR", "127.0.0.1:0")
            .env("BATON_DATA_DIR", data.path())
            .env("BATON_LOG", "warn,baton::server::startup=info")
            .env("BATON_CONFIG", "/dev/null")
            .env("LEPTOS_SITE_ROOT", site_root)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start baton serve")?;
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.wait();
                bail!("baton serve exited before it listened");
            };
            let line = line?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap_or("")
                    .to_string();
            }
        };
        // Keep draining its log so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self {
            child,
            addr,
            token,
            _data: data,
        })
    }

    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }

    pub fn stop(&mut self) {
        // SIGTERM, the way a service manager stops it; then wait for the clean exit.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Takes the complete SSE frames off the front of `buffer` and returns the JSON `data:` of those
/// named `name` (frames of other names, comments and unreadable data are dropped).
pub fn take_events(buffer: &mut String, name: &str) -> Vec<serde_json::Value> {
    let wanted = format!("event: {name}\n");
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let frame: String = buffer.drain(..end + 2).collect();
        if !frame.contains(&wanted) {
            continue;
        }
        let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
        if let Some(event) = data.and_then(|d| serde_json::from_str(d).ok()) {
            events.push(event);
        }
    }
    events
}

/// The send time a benchmark wrote into an event's `message`, in microseconds.
pub fn stamped(event: &serde_json::Value) -> Option<i64> {
    event["data"]["message"].as_str()?.parse().ok()
}

/// The `p`th percentile of `samples` (sorted in place; nearest rank).
pub fn percentile(samples: &mut [f64], p: usize) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

pub fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

pub fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1000.0
}

/// A client that sends `token` as `Authorization: Bearer`, as a program would.
pub fn client_with(token: &str) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder().default_headers(headers))
}

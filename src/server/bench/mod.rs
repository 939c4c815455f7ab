//! `baton bench`: figures for the targets that live in benchmarks, never in timed tests.
//!
//! `--suite site` (below) measures the web app; `--suite engine` ([`engine`]) the job engine;
//! `--suite connectors` ([`connectors`]) an HTTP pull; `--suite status` ([`status`]) status writes
//! to SSE clients and idle SSE memory; without `--suite`, all four.
//!
//! It measures the built site (WASM size, raw and brotli) and a real `baton serve` child process on
//! a free port with a fresh SQLite database: time to first byte of the server-rendered home page
//! (median and p99 per run, median over runs) and resident memory when idle. Run it from the
//! repository root after `cargo leptos build --release`.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

mod connectors;
mod engine;
mod status;

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
        wasm_size(&args)?;
        let mut server = ServerUnderTest::start(&args.site_root)?;
        let result = server_figures(&args, &server).await;
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
    Ok(())
}

fn wasm_size(args: &BenchArgs) -> anyhow::Result<()> {
    let path = args.site_root.join("pkg").join("baton.wasm");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}; build the site first: cargo leptos build --release",
            path.display()
        )
    })?;
    let mut compressed = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut bytes.as_slice(), &mut compressed, &params)?;
    println!(
        "wasm.raw_bytes         {:>10}  ({:.1} KB)",
        bytes.len(),
        kb(bytes.len())
    );
    println!(
        "wasm.brotli_bytes      {:>10}  ({:.1} KB)",
        compressed.len(),
        kb(compressed.len())
    );
    Ok(())
}

async fn server_figures(args: &BenchArgs, server: &ServerUnderTest) -> anyhow::Result<()> {
    println!("rss.after_start_kib    {:>10}", server.rss_kib()?);
    let client = reqwest::Client::builder().build()?;
    let url = format!("http://{}/", server.addr);
    // Warm up: first renders fill caches and the connection pool.
    for _ in 0..10 {
        client.get(&url).send().await?.bytes().await?;
    }
    let mut medians = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..args.runs {
        let mut samples = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let started = Instant::now();
            let response = client.get(&url).send().await?;
            samples.push(started.elapsed());
            if !response.status().is_success() {
                bail!("GET / answered {}", response.status());
            }
            response.bytes().await?;
        }
        samples.sort();
        medians.push(samples[samples.len() / 2]);
        p99s.push(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]);
    }
    println!(
        "ssr.ttfb_median_us     {:>10}  (median of {} runs x {} requests; per-run medians {:?})",
        median(&mut medians).as_micros(),
        args.runs,
        args.requests,
        medians.iter().map(|d| d.as_micros()).collect::<Vec<_>>()
    );
    println!(
        "ssr.ttfb_p99_us        {:>10}",
        median(&mut p99s).as_micros()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "rss.idle_kib           {:>10}  (after the requests, 3 s idle)",
        server.rss_kib()?
    );
    Ok(())
}

/// A `baton serve` child on a free port with a throw-away data directory.
struct ServerUnderTest {
    child: Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl ServerUnderTest {
    fn start(site_root: &std::path::Path) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
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
            _data: data,
        })
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")
    }

    fn stop(&mut self) {
        // SIGTERM, the way a service manager stops it; then wait for the clean exit.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Takes the complete SSE frames off the front of `buffer` and returns the JSON `data:` of those
/// named `name` (frames of other names, comments and unreadable data are dropped).
fn take_events(buffer: &mut String, name: &str) -> Vec<serde_json::Value> {
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
fn stamped(event: &serde_json::Value) -> Option<i64> {
    event["data"]["message"].as_str()?.parse().ok()
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1000.0
}

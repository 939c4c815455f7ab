//! `baton bench --suite status`: the status service's live path and the cost of idle SSE clients.
//!
//! - Status write → `step-status` received: `StatusService::write_status` (the database insert and
//!   the publish) until an SSE client over HTTP has parsed the event, with 1 and with 1,000
//!   connected clients (every client's arrival is a sample). The server runs in this process on a
//!   fresh SQLite file; the clients share its two cores, so the 1,000-client figure includes their
//!   own reading. Writes are spaced so that one write's fan-out ends before the next begins.
//! - Memory per idle SSE client: a real `baton serve` child's resident memory before and after
//!   1,000 SSE clients connect and sit idle for 3 s, divided by 1,000.
//!
//! Figures are medians over `--runs`.

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::measure::{median_f64, BenchArgs, ServerUnderTest};
use crate::{
    model::{JobSource, StepStatus},
    server::{config::Config, startup::Application, store::NewSession},
};

/// Clients in the crowded case and in the memory measurement.
const CROWD: usize = 1_000;

/// Runs the suite and prints one line per figure.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    raise_open_files_limit(4 * CROWD as u64 + 256)?;
    for (clients, writes) in [(1, 500), (CROWD, 40)] {
        let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let (p50, p99) = write_to_sse(clients, writes).await?;
            p50s.push(p50);
            p99s.push(p99);
        }
        println!(
            "status.write_to_sse_us.clients_{clients:<5} p50 {:>7.0}  p99 {:>7.0}  ({writes} writes x {clients} clients per run, medians of {} runs; p99 per run {:?})",
            median_f64(&mut p50s),
            median_f64(&mut p99s),
            args.runs,
            p99s.iter().map(|v| v.round()).collect::<Vec<_>>(),
        );
    }
    let mut per_client = Vec::new();
    for _ in 0..args.runs {
        per_client.push(idle_client_memory(&args.site_root).await?);
    }
    println!(
        "status.idle_sse_client_bytes        {:>7.0}  (server RSS growth with {CROWD} idle SSE clients / {CROWD}, median of {} runs: {:?})",
        median_f64(&mut per_client),
        args.runs,
        per_client.iter().map(|v| v.round()).collect::<Vec<_>>(),
    );
    Ok(())
}

/// 1,000 clients and their 1,000 server ends are 2,000 open sockets in one process: more than the
/// usual soft limit of 1,024. Raises the soft limit toward the hard one, or says why it cannot.
fn raise_open_files_limit(wanted: u64) -> anyhow::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("cannot read the open-files limit");
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    if limit.rlim_max < wanted {
        bail!(
            "the status suite needs {wanted} open files; the hard limit is {} (raise it with ulimit -Hn)",
            limit.rlim_max
        );
    }
    limit.rlim_cur = wanted;
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("cannot raise the open-files limit to {wanted}");
    }
    Ok(())
}

/// Opens `GET /api/events`; returns once the server has subscribed the stream (the handler
/// subscribes before it answers the headers).
async fn open_stream(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = client.get(url).send().await?;
    if !response.status().is_success() {
        bail!("GET /api/events answered {}", response.status());
    }
    Ok(response)
}

/// One run: `writes` status rows with `clients` SSE clients connected; p50 and p99 in µs.
async fn write_to_sse(clients: usize, writes: usize) -> anyhow::Result<(f64, f64)> {
    let data = tempfile::tempdir()?;
    let config = Config {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data.path().to_path_buf(),
        // No demo ERP and no sync types: only the status service and the event stream matter.
        demo: Some(false),
        sync_types: Default::default(),
        // Room for every client's stream of a burst, so none is told to resync.
        event_buffer: 4096,
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let url = format!("http://{}/api/events", app.local_addr());
    let token = state
        .auth
        .create_token(
            "bench",
            crate::model::Role::Viewer,
            &crate::server::auth::Who::system("bench"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .secret;
    let server = tokio::spawn(app.run());
    let session = Uuid::now_v7();
    state
        .store
        .insert_session(&NewSession {
            id: session,
            workflow: "bench".into(),
            source: JobSource::Api,
            triggered_by: None,
            note: None,
            started_at: Utc::now(),
        })
        .await?;

    // Each client reads its stream and reports the latency of every step-status it parses.
    let (tx, mut rx) = mpsc::unbounded_channel::<f64>();
    let client = super::measure::client_with(&token)?
        .pool_max_idle_per_host(0)
        .build()?;
    let mut readers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut body = open_stream(&client, &url).await?.bytes_stream();
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let received = Utc::now().timestamp_micros();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                for event in super::measure::take_events(&mut buffer, "step-status") {
                    if let Some(sent) = super::measure::stamped(&event) {
                        let _ = tx.send((received - sent) as f64);
                    }
                }
            }
        }));
    }
    drop(tx);

    let details = serde_json::json!({});
    let mut samples = Vec::with_capacity(clients * writes);
    for i in 0..writes {
        let sent = Utc::now().timestamp_micros().to_string();
        state
            .status
            .write_status(
                session,
                (i % 5) as u32 + 1,
                "bench",
                StepStatus::Processing,
                Some(&sent),
                &details,
            )
            .await?;
        // Every client has it before the next write.
        for _ in 0..clients {
            let latency = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("a client did not receive a step-status within 10 s")?
                .context("every client stream ended")?;
            samples.push(latency);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    state.shutdown.cancel();
    for reader in readers {
        reader.abort();
    }
    server.await??;
    samples.sort_by(f64::total_cmp);
    let p50 = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    Ok((p50, p99))
}

/// Resident memory a `baton serve` child gains per idle SSE client, in bytes.
async fn idle_client_memory(site_root: &std::path::Path) -> anyhow::Result<f64> {
    let mut server = ServerUnderTest::start(site_root)?;
    let result = async {
        let url = format!("http://{}/api/events", server.addr);
        let client = super::measure::client_with(&server.token)?
            .pool_max_idle_per_host(0)
            .build()?;
        // One client first, so what every stream shares (the router's first use) is in `before`.
        let warm = open_stream(&client, &url).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = server.rss_kib()?;
        let mut streams = Vec::with_capacity(CROWD);
        for _ in 0..CROWD {
            streams.push(open_stream(&client, &url).await?);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = server.rss_kib()?;
        drop(streams);
        drop(warm);
        Ok::<f64, anyhow::Error>((after.saturating_sub(before) * 1024) as f64 / CROWD as f64)
    }
    .await;
    server.stop();
    result
}

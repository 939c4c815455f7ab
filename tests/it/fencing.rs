//! A job runs once even when its worker loses the lease: a worker whose lease is taken over
//! stops its task at once, a rescue never takes a lease that was renewed since it was read, a
//! rescued attempt is given back (at least once, never "failed" for a crash), lease renewal does
//! not starve behind request traffic, and a command dies with the process that started it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use baton::{
    model::{JobSource, JobState},
    server::{
        engine::{
            task::{SyncTask, TaskContext, TaskError, TaskOutput},
            types::SyncType,
            Engine, EngineSettings,
        },
        events::EventBus,
        lifecycle::{apply, Transition},
        store::{ClaimScope, NewJob, Outcome, TransitionWrite},
    },
};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{eventually, job_finished, tester};

fn settings() -> EngineSettings {
    EngineSettings {
        workers: 2,
        lease_ttl: Duration::from_millis(800),
        lease_renew: Duration::from_millis(200),
        poll_interval: Duration::from_millis(50),
        retention_interval: Duration::from_secs(3600),
        cancel_grace: Duration::from_millis(300),
        progress_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

/// Ticks every 20 ms until told to stop, noting each tick with its attempt.
struct Ticker {
    ticks: Arc<Mutex<Vec<(u32, Instant)>>>,
}

#[async_trait]
impl SyncTask for Ticker {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        loop {
            self.ticks
                .lock()
                .unwrap()
                .push((ctx.attempt(), Instant::now()));
            tokio::select! {
                _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
}

fn new_job(max_attempts: u32) -> NewJob {
    NewJob {
        sync_type: "orders".into(),
        priority: 6,
        exclusive: true,
        max_attempts,
        run_at: Utc::now(),
        source: JobSource::Api,
        triggered_by: None,
        note: None,
        session_id: None,
        retry_of: None,
        input: None,
    }
}

both_backends!(
    a_worker_whose_lease_is_taken_over_stops_its_task_at_once,
    |db| {
        let store = db.store().await;
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let ty = SyncType::new(
            "ticker",
            1,
            true,
            Arc::new(Ticker {
                ticks: ticks.clone(),
            }),
        );
        let engine = Engine::new(
            store.clone(),
            EventBus::new(256),
            Uuid::now_v7(),
            settings(),
            vec![ty],
        );
        let stop = CancellationToken::new();
        engine.start(stop.clone(), Duration::from_secs(2));
        let (job, _) = engine.request_sync("ticker", tester()).await.unwrap();
        eventually(Duration::from_secs(10), || {
            let ticks = ticks.clone();
            async move {
                if ticks.lock().unwrap().len() > 3 {
                    Ok(())
                } else {
                    Err(())
                }
            }
        })
        .await;
        // Another process rescued the job and runs it now, as its attempt 2.
        let other = Uuid::now_v7();
        let until = Utc::now() + chrono::Duration::seconds(60);
        baton::on_pool!(&store, pool => {
            sqlx::query("update jobs set lease_owner = $1, attempt = attempt + 1, lease_expires_at = $2 where id = $3")
                .bind(other)
                .bind(until)
                .bind(job.id.parse::<Uuid>().unwrap())
                .execute(pool)
                .await
                .unwrap();
        });
        let taken = Instant::now();
        // Within a renewal (200 ms) and a little, the first worker has stopped for good.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let late: Vec<_> = ticks
            .lock()
            .unwrap()
            .iter()
            .filter(|(attempt, at)| *attempt == 1 && *at > taken + Duration::from_millis(400))
            .cloned()
            .collect();
        assert!(
            late.is_empty(),
            "the worker that lost its lease went on working: {} ticks after the takeover",
            late.len()
        );
        // Its log says why it stopped.
        let logs = engine
            .logs(job.id.parse().unwrap(), None, 100)
            .await
            .unwrap();
        assert!(
            logs.iter()
                .any(|l| l.attempt == 1 && l.message.contains("lease lost")),
            "{logs:?}"
        );
        stop.cancel();
    }
);

both_backends!(
    a_rescue_never_takes_a_lease_renewed_since_it_was_read,
    |db| {
        let store = db.store().await;
        let (row, _) = store.insert_job(&new_job(3), false).await.unwrap();
        let owner = Uuid::now_v7();
        let now = Utc::now();
        store
            .claim_jobs(
                owner,
                now,
                std::time::Duration::from_millis(50),
                ClaimScope {
                    exclusive: true,
                    shared: 0,
                    hold: None,
                },
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The rescuer reads the expired row …
        let (expired, now) = store.expired_jobs(Duration::ZERO).await.unwrap();
        assert_eq!(expired.len(), 1);
        // … the owner, slow but alive, renews its lease …
        let renewed = store
            .renew_leases(owner, &[row.id], Utc::now(), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(renewed.len(), 1);
        // … and the rescuer writes what it decided from its stale read: refused, because the
        // statement itself checks that the lease ran out.
        let before = expired[0].lifecycle();
        let next = apply(&before, Transition::Rescue, now).unwrap();
        let write = TransitionWrite {
            id: row.id,
            before: &before,
            next: &next,
            outcome: &Outcome::default(),
        };
        let written = store.write_rescue(write, Duration::ZERO).await.unwrap();
        assert!(
            written.is_none(),
            "a renewed lease was rescued: {written:?}"
        );
        let job = store.get_job(row.id).await.unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.lease_owner),
            ("running", Some(owner))
        );
    }
);

both_backends!(
    a_job_whose_worker_died_runs_again_even_on_its_last_attempt,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let engine = Engine::new(
            store.clone(),
            events,
            Uuid::now_v7(),
            settings(),
            vec![SyncType::new(
                "orders",
                6,
                true,
                Arc::new(baton::server::engine::task::NoopTask),
            )],
        );
        // One attempt only; a process claims it, finishes the work, and is killed before the end
        // of the attempt is written.
        let (row, _) = store.insert_job(&new_job(1), false).await.unwrap();
        let dead = Uuid::now_v7();
        let now = Utc::now();
        store
            .claim_jobs(
                dead,
                now,
                std::time::Duration::from_millis(50),
                ClaimScope {
                    exclusive: true,
                    shared: 0,
                    hold: None,
                },
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(engine.rescue().await, 1);
        let rescued = engine.job(row.id).await.unwrap();
        assert_eq!(
            rescued.state,
            JobState::Pending,
            "a crash is not a failure of the task: {rescued:?}"
        );
        assert!(rescued.error.unwrap().contains("lease lost"));
        // It runs again, and this time it ends.
        let stop = CancellationToken::new();
        engine.start(stop.clone(), Duration::from_secs(2));
        let done = job_finished(&engine, &row.id.to_string()).await;
        assert_eq!(done.state, JobState::Completed, "{done:?}");
        stop.cancel();
    }
);

/// Postgres: fifty clients reading the status as fast as they can on a 10-connection pool
/// while a job runs with a short lease: the lease keeps being renewed, so the job is never
/// rescued while it runs.
#[tokio::test]
async fn leases_are_renewed_while_requests_saturate_the_pool() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    let app = crate::helpers::spawn_app_with(db, |config| {
        config.max_connections = 10;
        config.lease_ttl = Duration::from_millis(1000);
        config.lease_renew = Duration::from_millis(250);
        config.sync_types.insert(
            "long".into(),
            toml::from_str(
                "priority = 1\nexclusive = true\nretry = { max_attempts = 3 }\n\
                 task = { kind = \"wait\", duration = \"4s\", steps = 8 }\n",
            )
            .unwrap(),
        );
    })
    .await;
    let (job, _) = app
        .state
        .engine
        .request_sync("long", tester())
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..50 {
        let (client, url, stop) = (
            app.client.clone(),
            app.url("/api/sync/status"),
            stop.clone(),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.get(&url).send().await;
            }
        }));
    }
    let done = job_finished(&app.state.engine, &job.id).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        let _ = reader.await;
    }
    assert_eq!(
        (done.state, done.attempt, done.error.as_deref()),
        (JobState::Completed, 1, None),
        "the lease lapsed under request load and the job was rescued: {done:?}"
    );
}

#[tokio::test]
async fn a_command_dies_with_the_baton_process_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        format!(
            "[connections.none]\nbase_url = \"http://127.0.0.1:9/\"\n\n\
             [sync_types.sleeper]\npriority = 1\n\
             task = {{ kind = \"command\", program = \"sh\", args = [\"-c\", \"echo $$ > {}; exec sleep 60\"] }}\n",
            pidfile.display()
        ),
    )
    .unwrap();
    let mut child = crate::helpers::baton_command()
        .arg("serve")
        .env("BATON_CONFIG", &config)
        .env("BATON_DATA_DIR", dir.path())
        .env("BATON_ADDR", "127.0.0.1:0")
        .env("BATON_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = crate::helpers::listening_addr(stderr);
    let client = crate::helpers::admin_client_at(&baton::server::store::DatabaseTarget::Sqlite(
        dir.path().join("baton.db"),
    ))
    .await;
    let response = client
        .post(format!("http://{addr}/api/sync/sleeper"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let pid: i32 = eventually(Duration::from_secs(10), || {
        let pidfile = pidfile.clone();
        async move {
            std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .ok_or(())
        }
    })
    .await;
    // SAFETY: signals only.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    eventually(Duration::from_secs(5), || async move {
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } == 0 {
            Err(format!("the command {pid} still runs"))
        } else {
            Ok(())
        }
    })
    .await;
}

/// Postgres: every connection of the request pool held for longer than a lease lasts (as a
/// burst of slow requests would): the lease keeper renews through its own pool, so the job
/// runs to the end of its first attempt.
#[tokio::test]
async fn leases_are_renewed_while_every_request_connection_is_busy() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    let app = crate::helpers::spawn_app_with(db, |config| {
        config.max_connections = 10;
        config.lease_ttl = Duration::from_millis(1000);
        config.lease_renew = Duration::from_millis(250);
        config.sync_types.insert(
            "long".into(),
            toml::from_str(
                "priority = 1\nexclusive = true\nretry = { max_attempts = 3 }\n\
                 task = { kind = \"wait\", duration = \"3s\", steps = 2 }\n",
            )
            .unwrap(),
        );
    })
    .await;
    let (job, _) = app
        .state
        .engine
        .request_sync("long", tester())
        .await
        .unwrap();
    let baton::server::store::Store::Postgres(pools) = &app.state.store else {
        unreachable!()
    };
    eventually(Duration::from_secs(10), || async {
        let job = app.state.engine.job(job.id.parse().unwrap()).await.unwrap();
        if job.state == JobState::Running {
            Ok(())
        } else {
            Err(job)
        }
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(pools.main.acquire().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(held);
    let done = job_finished(&app.state.engine, &job.id).await;
    assert_eq!(
        (done.state, done.attempt, done.rescues),
        (JobState::Completed, 1, 0),
        "the lease lapsed while the request pool was busy: {done:?}"
    );
}

/// A TCP proxy to Postgres that the test can pause: while paused it forwards nothing and keeps
/// every connection open, as a network partition does.
struct Partition {
    addr: std::net::SocketAddr,
    paused: tokio::sync::watch::Sender<bool>,
}

impl Partition {
    async fn to(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pipe(client_read, server_write, watch.clone()));
                tokio::spawn(Self::pipe(server_read, client_write, watch.clone()));
            }
        });
        Self { addr, paused }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut paused: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let Ok(n) = from.read(&mut buffer).await else {
                return;
            };
            if n == 0 {
                return;
            }
            // Held, not dropped, while the partition lasts.
            while *paused.borrow() {
                if paused.changed().await.is_err() {
                    return;
                }
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

/// `baton serve` on `database_url` with `config`; its address.
fn serve_with(config: &std::path::Path, database_url: &str) -> (std::process::Child, String) {
    let mut child = crate::helpers::baton_command()
        .arg("serve")
        .env("BATON_CONFIG", config)
        .env("BATON_DATABASE_URL", database_url)
        .env("BATON_ADDR", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = crate::helpers::listening_addr(child.stderr.take().unwrap());
    (child, addr)
}

/// Each `tick <attempt> <pid> <nanoseconds>` line of a command's log, by pid: first and last.
fn tick_spans(log: &std::path::Path) -> std::collections::BTreeMap<u32, (u32, u128, u128)> {
    let mut spans = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [_, attempt, pid, at] = parts[..] else {
            continue;
        };
        let (attempt, pid, at): (u32, u32, u128) = (
            attempt.parse().unwrap(),
            pid.parse().unwrap(),
            at.parse().unwrap(),
        );
        let span = spans.entry(pid).or_insert((attempt, at, at));
        span.1 = span.1.min(at);
        span.2 = span.2.max(at);
    }
    spans
}

/// Postgres, two `baton serve` processes: the one running an exclusive `command` is cut off
/// from the database beyond its lease; it stops the command before the other one rescues the
/// job and starts it again (no two copies at once, read from the command's own output), and
/// exactly one attempt's result counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_off_from_postgres_stops_before_the_rescue_starts_the_next_attempt() {
    let Some(db) = crate::helpers::TestDb::postgres().await else {
        return;
    };
    let crate::helpers::TestDb::Postgres { url, .. } = &db else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        format!(
            "lease_ttl = \"2s\"\nlease_renew = \"500ms\"\npoll_interval = \"50ms\"\n\
             heartbeat_interval = \"1s\"\n\
             [connections.none]\nbase_url = \"http://127.0.0.1:9/\"\n\n\
             [sync_types.ticker]\npriority = 1\nretry = {{ max_attempts = 3, base_delay = \"10ms\" }}\n\
             task = {{ kind = \"command\", program = \"sh\", args = [\"-c\", \"i=0; while [ $i -lt 60 ]; do echo tick $BATON_ATTEMPT $$ $(date +%s%N) >> {}; i=$((i+1)); sleep 0.1; done\"] }}\n",
            ticks.display()
        ),
    )
    .unwrap();
    let pg: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let partition = Partition::to(pg).await;
    let via_proxy = url.replacen("127.0.0.1:5432", &partition.addr.to_string(), 1);
    assert_ne!(&via_proxy, url, "the test database is on 127.0.0.1:5432");
    let (mut a, a_addr) = serve_with(&config, &via_proxy);
    let client = crate::helpers::admin_client(&db).await;
    let job: serde_json::Value = client
        .post(format!("http://{a_addr}/api/sync/ticker"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["job_id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), || {
        let ticks = ticks.clone();
        async move { (tick_spans(&ticks).len() == 1).then_some(()).ok_or(()) }
    })
    .await;
    let (mut b, b_addr) = serve_with(&config, url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    partition.pause(true);
    // B rescues the job once A's lease ran out (2 s, plus the margin) and runs it again.
    let spans = eventually(Duration::from_secs(20), || {
        let ticks = ticks.clone();
        async move {
            let spans = tick_spans(&ticks);
            (spans.len() >= 2).then_some(spans.clone()).ok_or(spans)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    partition.pause(false);
    let job: serde_json::Value = eventually(Duration::from_secs(30), || {
        let (client, url) = (client.clone(), format!("http://{b_addr}/api/jobs/{id}"));
        async move {
            let job: serde_json::Value =
                client.get(url).send().await.unwrap().json().await.unwrap();
            (job["state"] == "completed")
                .then_some(job.clone())
                .ok_or(job)
        }
    })
    .await;
    let spans = {
        let all = tick_spans(&ticks);
        assert!(all.len() >= spans.len());
        all
    };
    let mut by_start: Vec<_> = spans.values().cloned().collect();
    by_start.sort_by_key(|s| s.1);
    for pair in by_start.windows(2) {
        let (first, next) = (pair[0], pair[1]);
        assert!(
            first.2 < next.1,
            "two copies of the command ran at once: attempt {} ticked until {} and attempt {} \
             from {}",
            first.0,
            first.2,
            next.0,
            next.1
        );
    }
    // One result: the attempt that completed is the last one that ran.
    assert_eq!(job["attempt"], by_start.last().unwrap().0, "{job}");
    assert!(job["rescues"].as_u64().unwrap() >= 1, "{job}");
    let logs: serde_json::Value = client
        .get(format!("http://{b_addr}/api/jobs/{id}/logs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        logs["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("lease lost")),
        "{logs}"
    );
    for child in [&mut a, &mut b] {
        // SAFETY: signals only.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
}

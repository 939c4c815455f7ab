//! Crash safety: `baton serve` runs long jobs and is killed with SIGKILL at random moments, then
//! started again on the same database, several times. In the end no job is lost, none is left
//! running, none completed twice, and every pushed record is stored exactly once.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::helpers::{baton_command, database_env, TestDb};
use serde_json::{json, Value};

const CONFIG: &str = r#"
lease_ttl = "1s"
lease_renew = "250ms"
poll_interval = "50ms"
workers = 2
log = "info,baton::server::engine=debug,sqlx=warn,tower_http=warn"

[sync_types.orders]
priority = 6
task = { kind = "wait", duration = "1200ms", steps = 12 }
retry = { max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }

[sync_types.customers]
priority = 5
task = { kind = "wait", duration = "1200ms", steps = 12 }
retry = { max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }

[sync_types.products]
priority = 1
task = { kind = "wait", duration = "1200ms", steps = 12 }
retry = { max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }

[sync_types.records]
priority = 0
exclusive = false
task = { kind = "records" }
retry = { max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }
"#;

struct Server {
    child: Child,
    base: String,
}

/// Starts `baton serve`; its log lines are appended to `log`.
fn start(db: &TestDb, config: &std::path::Path, log: &Arc<Mutex<Vec<String>>>) -> Server {
    let (key, value) = database_env(db);
    let mut child = baton_command()
        .arg("serve")
        .env("BATON_CONFIG", config)
        .env("BATON_ADDR", "127.0.0.1:0")
        .env(key, value)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("baton serve exited before listening")
            .unwrap();
        let addr = line.split("listening on http://").nth(1).map(|r| {
            r.split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap()
                .to_string()
        });
        log.lock().unwrap().push(line);
        if let Some(addr) = addr {
            break addr;
        }
    };
    let log = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// `GET /api/jobs/{id}` as JSON.
async fn get_job(client: &reqwest::Client, base: &str, id: &str) -> Value {
    client
        .get(format!("{base}/api/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kill(server: &mut Server) {
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
}

/// A small deterministic generator, so a failing run can be repeated from its printed seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn submit(
    client: &reqwest::Client,
    base: &str,
    ids: &mut Vec<String>,
    records: &mut u64,
    round: u64,
) {
    for ty in ["orders", "customers", "products"] {
        let body: Value = client
            .post(format!("{base}/api/sync/{ty}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    let batch: Vec<Value> = (0..20_000)
        .map(|i| json!({ "id": format!("r{round}-{i}"), "n": i }))
        .collect();
    let body: Value = client
        .post(format!("{base}/api/jobs"))
        .json(&json!({ "sync_type": "records", "records": batch }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ids.push(body["job_id"].as_str().unwrap().to_string());
    *records += 20_000;
}

async fn kill_at_random_moments_and_lose_nothing(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("baton.toml");
    std::fs::write(&config, CONFIG).unwrap();
    // BATON_CRASH_SEED=<the printed seed> repeats a failed run's kill moments.
    let seed = match std::env::var("BATON_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("BATON_CRASH_SEED is a whole number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("crash test seed: {seed} (BATON_CRASH_SEED={seed} repeats it)");
    let mut rng = Lcg(seed);
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = crate::helpers::admin_client(&db).await;
    let mut ids = Vec::new();
    let mut records = 0;

    for round in 0..4 {
        let mut server = start(&db, &config, &log);
        submit(&client, &server.base, &mut ids, &mut records, round).await;
        tokio::time::sleep(Duration::from_millis(300 + rng.next(1500))).await;
        kill(&mut server);
    }

    // The last start: everything must end, and end well.
    let server = start(&db, &config, &log);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut jobs = HashMap::new();
    for id in &ids {
        loop {
            let job = get_job(&client, &server.base, id).await;
            if matches!(
                job["state"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                jobs.insert(id.clone(), job);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never finished: {job} (seed {seed})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut server = server;
    kill(&mut server);

    for (id, job) in &jobs {
        assert_eq!(job["state"], "completed", "job {id}: {job} (seed {seed})");
        assert!(job["lease_owner"].is_null(), "{job}");
    }
    // Requests for a type that was already waiting returned that job: count distinct ids.
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(jobs.len(), distinct.len());

    let store = db.store().await;
    assert_eq!(
        store.count_records().await.unwrap(),
        records,
        "every record stored once (seed {seed})"
    );
    let running = store
        .list_jobs(&baton::server::store::JobFilter {
            state: Some(baton::model::JobState::Running),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(running.is_empty(), "nothing left running: {running:?}");

    // The kills did hit running jobs, and their leases were taken over.
    let log = log.lock().unwrap();
    assert!(
        log.iter().any(|l| l.contains("rescued a job")),
        "no kill interrupted a running job (seed {seed})"
    );
    // The log says each job finished at most once (a kill right after the commit can eat the line).
    for id in distinct {
        let completions = log
            .iter()
            .filter(|l| l.contains("job finished") && l.contains(id.as_str()))
            .count();
        assert!(
            completions <= 1,
            "job {id} completed {completions} times (seed {seed})"
        );
    }
}

both_backends!(survives_sigkill_at_random_moments, |db| {
    kill_at_random_moments_and_lose_nothing(db).await;
});

const PULL_CONFIG: &str = r#"
lease_ttl = "1s"
lease_renew = "250ms"
poll_interval = "50ms"
demo_erp_records = 6000
demo_erp_latency = "80ms"
demo_erp_change_every = "0s"
log = "info,baton::server::engine=debug,sqlx=warn,tower_http=warn"

[sync_types.customers]
priority = 5
retry = { max_attempts = 10, base_delay = "10ms", max_delay = "50ms" }
"#;

/// A pull killed after some pages resumes from its checkpoint: no page is applied twice, the
/// counts and change set are exact, and the resumed attempt starts after the last stored page.
async fn a_killed_pull_resumes_from_its_checkpoint(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("baton.toml");
    std::fs::write(&config, PULL_CONFIG).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = crate::helpers::admin_client(&db).await;

    let mut server = start(&db, &config, &log);
    let started: Value = client
        .post(format!("{}/api/sync/customers", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["job_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = get_job(&client, &server.base, &id).await;
        if job["processed"].as_u64().unwrap_or(0) >= 1000 {
            assert_eq!(job["state"], "running", "killed mid-pull: {job}");
            break;
        }
        assert!(Instant::now() < deadline, "the pull never got going: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(&mut server);

    let mut server = start(&db, &config, &log);
    let job = loop {
        let job = get_job(&client, &server.base, &id).await;
        if job["state"] != "pending" && job["state"] != "running" {
            break job;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "never finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    kill(&mut server);

    assert_eq!(job["state"], "completed", "{job}");
    assert!(
        job["attempt"].as_u64().unwrap() >= 2,
        "the kill interrupted it: {job}"
    );
    let result = &job["result"];
    assert_eq!(result["created"], 6000, "{result}");
    assert_eq!(result["records"], 6000, "{result}");
    let store = db.store().await;
    assert_eq!(store.live_records("customers").await.unwrap().len(), 6000);
    let uuid: uuid::Uuid = id.parse().unwrap();
    let changes = store
        .list_changes(None, Some(uuid), None, 100_000)
        .await
        .unwrap();
    let keys: std::collections::HashSet<_> = changes.iter().map(|c| c.key.clone()).collect();
    assert_eq!(
        (changes.len(), keys.len()),
        (6000, 6000),
        "each record created once"
    );
    // The last attempt began where the first left off.
    let lines = store.job_logs(uuid, None, 1000).await.unwrap();
    let last = lines.iter().map(|l| l.attempt).max().unwrap();
    let first_page = lines
        .iter()
        .find(|l| l.attempt == last && l.message.starts_with("page "))
        .expect("the resumed attempt pulled pages");
    assert!(
        !first_page.message.starts_with("page 1 ") && !first_page.message.starts_with("page 2 "),
        "{first_page:?}"
    );
}

both_backends!(a_pull_resumes_after_sigkill, |db| {
    a_killed_pull_resumes_from_its_checkpoint(db).await;
});

/// What the receiver of `http_call`s and exports saw: each call's job, attempt and time span
/// (its end is noted when the handler ends, or is dropped because the caller died), and every
/// exported order id.
#[derive(Clone, Default)]
struct Receiver {
    calls: Calls,
    exported: Arc<Mutex<Vec<String>>>,
}

/// Each call: its job, attempt, start and end.
type Calls = Arc<Mutex<Vec<(String, u64, Instant, Option<Instant>)>>>;

/// Notes the end of a call when the handler ends or is dropped.
struct CallEnd(Calls, usize);

impl Drop for CallEnd {
    fn drop(&mut self) {
        self.0.lock().unwrap()[self.1].3 = Some(Instant::now());
    }
}

async fn receiver() -> (Receiver, String) {
    use axum::{extract::State, routing::post, Json, Router};
    let seen = Receiver::default();
    let router = Router::new()
        .route(
            "/work",
            post(
                |State(seen): State<Receiver>, Json(body): Json<Value>| async move {
                    let index = {
                        let mut calls = seen.calls.lock().unwrap();
                        calls.push((
                            body["job_id"].as_str().unwrap_or("").to_string(),
                            body["attempt"].as_u64().unwrap_or(0),
                            Instant::now(),
                            None,
                        ));
                        calls.len() - 1
                    };
                    let _end = CallEnd(seen.calls.clone(), index);
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    Json(json!({ "processed": 1 }))
                },
            ),
        )
        .route(
            "/import",
            post(
                |State(seen): State<Receiver>, Json(body): Json<Value>| async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let ids: Vec<String> = body
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["id"].as_str().map(str::to_string))
                        .collect();
                    seen.exported.lock().unwrap().extend(ids);
                    Json(json!({ "accepted": 1 }))
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (seen, format!("http://{addr}"))
}

/// `baton serve` killed with SIGKILL while an `http_call`, a `command` and an export run, and
/// started again, several times: every job ends completed, each side effect happened at least
/// once, and no two copies of one job's call or command ever ran at the same time.
async fn kill_during_side_effects(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let (seen, recv) = receiver().await;
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        format!(
            r#"
lease_ttl = "1s"
lease_renew = "250ms"
poll_interval = "50ms"
workers = 4
demo = true
demo_erp_records = 400
demo_erp_latency = "0s"
demo_erp_change_every = "0s"
log = "info,sqlx=warn,tower_http=warn"

[connections.recv]
base_url = "{recv}"
retries = 0

[sync_types.call]
priority = 3
exclusive = false
task = {{ kind = "http_call", connection = "recv", path = "/work" }}
retry = {{ max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }}

[sync_types.cmd]
priority = 2
exclusive = false
task = {{ kind = "command", program = "sh", args = ["-c", "i=0; while [ $i -lt 15 ]; do echo tick $BATON_JOB_ID $$ $(date +%s%N) >> {ticks}; i=$((i+1)); sleep 0.1; done"] }}
retry = {{ max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }}

[sync_types.orders]
priority = 6
retry = {{ max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }}

[sync_types.exp]
priority = 7
task = {{ kind = "export", entity = "orders", only = {{ field = "status", value = "ready" }}, batch = 10, target = {{ kind = "http", connection = "recv", path = "/import" }} }}
retry = {{ max_attempts = 50, base_delay = "10ms", max_delay = "50ms" }}
"#,
            ticks = ticks.display()
        ),
    )
    .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("side-effects crash test seed: {seed}");
    let mut rng = Lcg(seed);
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = crate::helpers::admin_client(&db).await;
    let mut ids = Vec::new();
    for round in 0..4 {
        let mut server = start(&db, &config, &log);
        // The pull first, so the export has orders to send.
        for ty in ["orders", "call", "cmd", "exp"] {
            if round == 0 && ty == "exp" {
                let pulled = client
                    .post(format!("{}/api/sync/orders", server.base))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap();
                let id = pulled["job_id"].as_str().unwrap().to_string();
                crate::helpers::eventually(Duration::from_secs(30), || {
                    let (client, base, id) = (client.clone(), server.base.clone(), id.clone());
                    async move {
                        let job = get_job(&client, &base, &id).await;
                        (job["state"] == "completed").then_some(()).ok_or(job)
                    }
                })
                .await;
            }
            let body: Value = client
                .post(format!("{}/api/sync/{ty}", server.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(body["job_id"].as_str().unwrap().to_string());
        }
        tokio::time::sleep(Duration::from_millis(200 + rng.next(1200))).await;
        kill(&mut server);
    }
    let mut server = start(&db, &config, &log);
    let mut jobs = HashMap::new();
    for id in &ids {
        let job = crate::helpers::eventually(Duration::from_secs(90), || {
            let (client, base, id) = (client.clone(), server.base.clone(), id.clone());
            async move {
                let job = get_job(&client, &base, &id).await;
                match job["state"].as_str() {
                    Some("completed" | "failed" | "cancelled") => Ok(job),
                    _ => Err(job),
                }
            }
        })
        .await;
        jobs.insert(id.clone(), job);
    }
    let demo: Value = client
        .get(format!("{}/api/info", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ready = crate::helpers::erp_listing(demo["demo_erp"].as_str().unwrap(), "orders")
        .await
        .into_iter()
        .filter(|(_, o)| o["status"] == "ready")
        .map(|(k, _)| k)
        .collect::<std::collections::BTreeSet<_>>();
    kill(&mut server);

    for (id, job) in &jobs {
        assert_eq!(job["state"], "completed", "job {id}: {job} (seed {seed})");
    }
    // Each call job's calls came one at a time.
    let calls = seen.calls.lock().unwrap().clone();
    for (id, job) in jobs.iter().filter(|(_, j)| j["sync_type"] == "call") {
        let mut mine: Vec<_> = calls.iter().filter(|c| &c.0 == id).collect();
        assert!(!mine.is_empty(), "call job {id} never called: {job}");
        mine.sort_by_key(|c| c.2);
        for pair in mine.windows(2) {
            let end = pair[0].3.unwrap_or_else(Instant::now);
            assert!(
                end <= pair[1].2,
                "two calls of job {id} at once (attempts {} and {}) (seed {seed})",
                pair[0].1,
                pair[1].1
            );
        }
    }
    // Each command job's copies never overlapped (read from the ticks they wrote).
    let text = std::fs::read_to_string(&ticks).unwrap_or_default();
    let mut spans: HashMap<(String, String), (u128, u128)> = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [_, job, pid, at] = parts[..] else {
            continue;
        };
        let at: u128 = at.parse().unwrap();
        let span = spans.entry((job.into(), pid.into())).or_insert((at, at));
        span.0 = span.0.min(at);
        span.1 = span.1.max(at);
    }
    for id in jobs.keys() {
        let mut copies: Vec<_> = spans
            .iter()
            .filter(|((job, _), _)| job == id)
            .map(|(_, span)| *span)
            .collect();
        copies.sort();
        for pair in copies.windows(2) {
            assert!(
                pair[0].1 < pair[1].0,
                "two copies of command job {id} ran at once (seed {seed})"
            );
        }
    }
    // Every ready order reached the ERP at least once.
    let exported: std::collections::BTreeSet<String> =
        seen.exported.lock().unwrap().iter().cloned().collect();
    let missing: Vec<_> = ready.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "orders never exported: {missing:?} (seed {seed})"
    );
}

both_backends!(sigkill_during_calls_commands_and_exports, |db| {
    kill_during_side_effects(db).await;
});

/// `baton serve` killed with SIGKILL at random moments while a workflow session moves from
/// step to step: after the last start the session ends completed, every step completed once in
/// its run, and none was left half way (completed without the next one entered).
async fn kill_during_step_changes(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("baton.toml");
    let mut text = String::from(
        "lease_ttl = \"1s\"\nlease_renew = \"250ms\"\npoll_interval = \"50ms\"\n\
         log = \"info,sqlx=warn,tower_http=warn\"\n\n\
         [sync_types.step]\npriority = 1\nexclusive = false\n\
         task = { kind = \"wait\", duration = \"150ms\", steps = 3 }\n\
         retry = { max_attempts = 50, base_delay = \"10ms\", max_delay = \"50ms\" }\n\n\
         [workflows.chain]\n",
    );
    for n in 1..=8 {
        text.push_str(&format!(
            "[[workflows.chain.steps]]\nname = \"Step {n}\"\nsync_types = [\"step\"]\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("step-change crash test seed: {seed}");
    let mut rng = Lcg(seed);
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = crate::helpers::admin_client(&db).await;
    let mut server = start(&db, &config, &log);
    let started: Value = client
        .post(format!("{}/api/sessions", server.base))
        .json(&json!({ "workflow": "chain" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["session_id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100 + rng.next(500))).await;
        kill(&mut server);
        server = start(&db, &config, &log);
    }
    let session = crate::helpers::eventually(Duration::from_secs(90), || {
        let (client, url) = (
            client.clone(),
            format!("{}/api/sessions/{id}?timeline_limit=1000", server.base),
        );
        async move {
            let session: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            (session["state"] == "completed")
                .then_some(session.clone())
                .ok_or(session)
        }
    })
    .await;
    kill(&mut server);
    let rows = session["timeline"].as_array().unwrap();
    for n in 1..=8 {
        let completions = rows
            .iter()
            .filter(|r| r["step"] == n && r["status"] == "completed")
            .count();
        assert_eq!(completions, 1, "step {n}: {rows:#?} (seed {seed})");
    }
    assert!(session["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "completed"));
}

both_backends!(sigkill_during_step_changes_strands_no_session, |db| {
    kill_during_step_changes(db).await;
});

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
log = "info,baton::server::engine::worker=debug,sqlx=warn,tower_http=warn"

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
async fn get_job(client: &reqwest::Client, server: &Server, id: &str) -> Value {
    client
        .get(format!("{}/api/jobs/{id}", server.base))
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
    let client = reqwest::Client::new();
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
            let job = get_job(&client, &server, id).await;
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
log = "info,baton::server::engine::worker=debug,sqlx=warn,tower_http=warn"

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
    let client = reqwest::Client::new();

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
        let job = get_job(&client, &server, &id).await;
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
        let job = get_job(&client, &server, &id).await;
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

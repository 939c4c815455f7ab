//! `GET /metrics` over real HTTP: after a known set of jobs the counters and histograms say so;
//! the gauges follow the queue and the mutex; a scrape's database cost does not grow with the
//! jobs kept.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::helpers::{eventually, spawn_app_with, TestApp};
use baton::server::{
    catalog::{SyncTypeConfig, TaskConfig},
    connectors::command::CommandConfig,
    lifecycle::retry::RetryPolicy,
};
use serde_json::Value;

/// `quick` succeeds in 50 ms; `flaky` fails both of its two attempts; `blocker` holds the mutex.
async fn app(db: crate::helpers::TestDb) -> TestApp {
    spawn_app_with(db, |config| {
        config.poll_interval = Duration::from_millis(50);
        let base = config.sync_types["orders"].clone();
        let retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        };
        let quick = SyncTypeConfig {
            task: Some(TaskConfig::Wait {
                duration: Duration::from_millis(50),
                steps: 2,
            }),
            retry,
            ..base.clone()
        };
        let flaky = SyncTypeConfig {
            task: Some(TaskConfig::Command(CommandConfig {
                // 75 (EX_TEMPFAIL): a retryable failure.
                program: "sh".into(),
                args: vec!["-c".into(), "exit 75".into()],
                env: Default::default(),
                dir: None,
                timeout: Duration::from_secs(10),
            })),
            retry,
            ..base.clone()
        };
        let blocker = SyncTypeConfig {
            priority: 100,
            task: Some(TaskConfig::Wait {
                duration: Duration::from_secs(600),
                steps: 600,
            }),
            ..base
        };
        config.sync_types.insert("quick".into(), quick);
        config.sync_types.insert("flaky".into(), flaky);
        config.sync_types.insert("blocker".into(), blocker);
    })
    .await
}

/// One sample's value: `name{labels} value`, the labels in the order Baton writes them.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    response.text().await.unwrap()
}

async fn run(app: &TestApp, ty: &str) -> Value {
    let (status, body) = app.post_json(&format!("/api/sync/{ty}"), None).await;
    assert_eq!(status, 202, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), || async {
        let job = app.get_json(&format!("/api/jobs/{id}")).await;
        if matches!(
            job["state"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

both_backends!(metrics_count_what_happened, |db| {
    let app = app(db).await;
    for _ in 0..3 {
        assert_eq!(run(&app, "quick").await["state"], "completed");
    }
    let flaky = run(&app, "flaky").await;
    assert_eq!(
        (flaky["state"].as_str(), flaky["attempt"].as_u64()),
        (Some("failed"), Some(2))
    );

    let text = scrape(&app).await;
    let value = |series: &str| sample(&text, series);
    assert_eq!(
        value(r#"baton_jobs_finished_total{sync_type="quick",outcome="completed"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(r#"baton_jobs_finished_total{sync_type="flaky",outcome="failed"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"baton_job_retries_total{sync_type="flaky"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"baton_job_duration_seconds_count{sync_type="quick",outcome="completed"}"#),
        Some(3.0)
    );
    // Each quick job ran for at least its 50 ms.
    assert!(
        value(r#"baton_job_duration_seconds_sum{sync_type="quick",outcome="completed"}"#).unwrap()
            >= 0.15
    );
    // One start per attempt: three quick ones, two of flaky.
    assert_eq!(
        value(r#"baton_job_start_latency_seconds_count{sync_type="quick"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(r#"baton_job_start_latency_seconds_count{sync_type="flaky"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(
            r#"baton_http_requests_total{route="/api/sync/{sync_type}",method="POST",status="202"}"#
        ),
        Some(4.0)
    );
    assert!(
        value(r#"baton_build_info{version=""#).is_none(),
        "labels are quoted whole"
    );
    assert!(text.contains(&format!(
        "baton_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.trim_end().ends_with("# EOF"));
    // Nothing waits or runs: no live-job series, the mutex is free.
    assert!(!text.contains("baton_jobs{"), "{text}");
    assert_eq!(value("baton_mutex_held_seconds"), Some(0.0));

    // The blocker holds the mutex; quick waits behind it.
    let (_, body) = app.post_json("/api/sync/blocker", None).await;
    let blocker = body["job_id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), || async {
        let job = app.get_json(&format!("/api/jobs/{blocker}")).await;
        if job["state"] == "running" {
            Ok(())
        } else {
            Err(job)
        }
    })
    .await;
    app.post_json("/api/sync/quick", None).await;
    let text = scrape(&app).await;
    let value = |series: &str| sample(&text, series);
    assert_eq!(
        value(r#"baton_jobs{sync_type="blocker",state="running"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(r#"baton_jobs{sync_type="quick",state="pending"}"#),
        Some(1.0)
    );
    assert_eq!(value(r#"baton_mutex_held{sync_type="blocker"}"#), Some(1.0));
    assert!(value("baton_mutex_held_seconds").unwrap() >= 0.0);
    assert!(value(r#"baton_db_max_connections"#).unwrap() >= 1.0);
    app.post_json(&format!("/api/jobs/{blocker}/cancel"), None)
        .await;

    // Without a token: 401, and no metrics.
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 401);
});

/// The statements (sqlx's own log of each) run inside the request with this `x-request-id`.
fn statements_of(log: &[String], request_id: &str) -> usize {
    log.iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "sqlx::query")
        .filter(|v| {
            v["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == "request" && s["id"] == request_id)
            })
        })
        .count()
}

#[tokio::test]
async fn a_scrape_costs_the_same_statements_with_a_thousand_finished_jobs() {
    let db = crate::helpers::TestDb::sqlite();
    let dir = match &db {
        crate::helpers::TestDb::Sqlite(dir) => dir.path().display().to_string(),
        _ => unreachable!(),
    };
    let client = crate::helpers::admin_client(&db).await;
    let served = crate::cli::spawn_serve(&[
        ("BATON_DATA_DIR", dir),
        ("BATON_LOG", "warn,baton=info,sqlx::query=debug".into()),
        ("BATON_LOG_FORMAT", "json".into()),
    ]);
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let rest = served.rest;
    std::thread::spawn(move || {
        for line in rest.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let base = format!("http://{}", served.addr);
    let get = |path: &str, id: &str| {
        client
            .get(format!("{base}{path}"))
            .header("x-request-id", id)
            .send()
    };
    // The token's first use is written once; after it, a request costs only its lookup.
    assert_eq!(get("/api/info", "warm-up").await.unwrap().status(), 200);
    assert_eq!(get("/metrics", "scrape-empty").await.unwrap().status(), 200);

    // A thousand finished jobs, written as the engine leaves them.
    let store = db.store().await;
    let jobs: Vec<_> = (0..1000)
        .map(|i| baton::server::store::NewJob {
            sync_type: if i % 2 == 0 { "orders" } else { "customers" }.into(),
            priority: 1,
            exclusive: true,
            max_attempts: 1,
            run_at: chrono::Utc::now(),
            source: baton::model::JobSource::Api,
            triggered_by: None,
            note: None,
            session_id: None,
            retry_of: None,
            input: None,
        })
        .collect();
    store.insert_jobs(&jobs).await.unwrap();
    if let baton::server::store::Store::Sqlite(pools) = &store {
        sqlx::query(
            "update jobs set state = 'completed', started_at = created_at, \
             finished_at = created_at, progress = 100 where state = 'pending'",
        )
        .execute(&pools.write)
        .await
        .unwrap();
    }
    store.close().await;
    assert_eq!(get("/metrics", "scrape-full").await.unwrap().status(), 200);
    assert_eq!(get("/api/info", "info").await.unwrap().status(), 200);

    let mut child = served.child;
    // Let the log catch up with the last request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap();
    let reader = statements_of(&log, "info");
    let empty = statements_of(&log, "scrape-empty");
    let full = statements_of(&log, "scrape-full");
    assert!(reader >= 1, "the token lookup is logged: {reader}");
    assert_eq!(
        (empty - reader, full - reader),
        (
            baton::server::metrics::SCRAPE_STATEMENTS,
            baton::server::metrics::SCRAPE_STATEMENTS
        ),
        "a scrape runs the token lookup and {} statements of its own, with or without 1,000 jobs",
        baton::server::metrics::SCRAPE_STATEMENTS
    );
}

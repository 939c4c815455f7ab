//! Workflow sessions over HTTP against the in-process demo ERP: the daily sync from start to
//! the last checkmark, the employee sync with partial success, and every bad request.

use std::time::Duration;

use crate::helpers::{eventually, spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};

async fn app(db: TestDb) -> TestApp {
    spawn_app_with(db, |config| {
        config.demo_erp_records = 400;
        config.demo_erp_latency = Duration::ZERO;
        config.demo_erp_change_every = Duration::ZERO;
        config.poll_interval = Duration::from_millis(50);
    })
    .await
}

/// Polls the session until `done` holds (bounded, for safety only).
async fn until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    eventually(Duration::from_secs(30), || async move {
        let session: Value = app.get_json(&format!("/api/sessions/{id}")).await;
        if done(&session) {
            Ok(session)
        } else {
            Err(session)
        }
    })
    .await
}

fn statuses(session: &Value) -> Vec<String> {
    session["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

both_backends!(
    the_daily_sync_runs_to_the_last_checkmark_with_two_clicks,
    |db| {
        let app = app(db).await;
        let (status, started) = app
            .post_json(
                "/api/sessions",
                Some(json!({"workflow": "daily-sync", "triggered_by": "anna"})),
            )
            .await;
        assert_eq!(status, 202, "{started}");
        let id = started["session_id"].as_str().unwrap().to_string();

        let session = until(&app, &id, |s| s["steps"][1]["action"] == "Export Orders").await;
        assert_eq!(
            statuses(&session),
            ["completed", "waiting", "waiting", "waiting", "waiting"]
        );
        assert_eq!(
            (
                session["state"].as_str(),
                session["source"].as_str(),
                session["triggered_by"].as_str(),
                session["note"].as_str()
            ),
            (
                Some("waiting"),
                Some("api"),
                Some("token:tests"),
                Some("anna")
            )
        );
        assert!(
            session["steps"][0]["details"]["counts"]["processed"]
                .as_u64()
                .unwrap()
                >= 800
        );
        // The gate says what pressing it would do, counted from the synced orders.
        let gate = session["steps"][1]["message"].as_str().unwrap();
        let ready: u64 = gate
            .strip_suffix(" orders ready to export")
            .unwrap_or_else(|| panic!("{gate}"))
            .parse()
            .unwrap();
        assert!(ready > 0, "{gate}");
        // Step 1's jobs are listed with their final counts; the newest session is this one.
        let jobs = session["steps"][0]["jobs"].as_array().unwrap();
        assert_eq!(
            jobs.iter()
                .map(|j| j["sync_type"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["orders", "products"]
        );
        assert!(jobs
            .iter()
            .all(|j| j["state"] == "completed" && j["processed"].as_u64() > Some(0)));
        assert!(session["steps"][1]["jobs"].as_array().unwrap().is_empty());
        let latest: Value = app
            .get("/api/workflows/daily-sync/latest")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(latest["id"], id.as_str());
        let workflows: Value = app.get("/api/workflows").await.json().await.unwrap();
        assert_eq!(workflows[0]["id"], "daily-sync");
        assert_eq!(workflows[0]["steps"][1]["gate"], "Export Orders");
        assert_eq!(workflows[1]["id"], "employee-sync");

        let (status, _) = app
            .post_json(
                &format!("/api/sessions/{id}/steps/2/action"),
                Some(json!({"triggered_by": "bob"})),
            )
            .await;
        assert_eq!(status, 200);
        let session = until(&app, &id, |s| s["steps"][4]["action"] == "Confirm").await;
        assert_eq!(
            statuses(&session),
            [
                "completed",
                "completed",
                "completed",
                "completed",
                "waiting"
            ]
        );
        // Validation found the demo's planted problems, and listed them.
        let findings = session["steps"][3]["details"]["findings"]
            .as_array()
            .unwrap();
        assert!(
            findings.iter().any(|f| f["check"] == "product_price"),
            "{findings:?}"
        );

        let (status, _) = app
            .post_json(&format!("/api/sessions/{id}/steps/5/action"), None)
            .await;
        assert_eq!(status, 200);
        let session = until(&app, &id, |s| s["finished_at"].is_string()).await;
        assert_eq!(statuses(&session), ["completed"; 5]);
        assert_eq!(
            session["state"], "completed_with_warnings",
            "{:#}",
            session["warnings"]
        );
        assert!(session["warnings"][0]
            .as_str()
            .unwrap()
            .contains("Validation"));
        assert!(session["timeline"].as_array().unwrap().len() >= 12);
        app.shutdown().await;
    }
);

#[tokio::test]
async fn the_employee_sync_calls_three_workers_in_sequence() {
    let app = app(TestDb::sqlite()).await;
    let (_, started) = app
        .post_json("/api/sessions", Some(json!({"workflow": "employee-sync"})))
        .await;
    let id = started["session_id"].as_str().unwrap().to_string();
    let session = until(&app, &id, |s| s["finished_at"].is_string()).await;
    assert_eq!(statuses(&session), ["completed"; 3]);
    assert_eq!(session["steps"][2]["details"]["counts"]["changes"], 3);
    // The history collector's warning makes it a partial success.
    assert_eq!(session["state"], "completed_with_warnings");
    app.shutdown().await;
}

#[tokio::test]
async fn bad_session_requests_get_clear_errors() {
    let app = app(TestDb::sqlite()).await;
    for (body, status, says) in [
        (
            json!({"workflow": "nightly"}),
            422,
            "daily-sync, employee-sync",
        ),
        (json!({}), 422, "needs `workflow`"),
        (
            json!({"workflow": "daily-sync", "color": "red"}),
            422,
            "color",
        ),
    ] {
        let (got, answer) = app.post_json("/api/sessions", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let response = app
        .client
        .post(app.url("/api/sessions"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        app.get(&format!("/api/sessions/{unknown}")).await.status(),
        404
    );
    assert_eq!(app.get("/api/sessions/nope").await.status(), 400);
    // A workflow that never ran, or does not exist: 404 with what to do.
    for (path, says) in [
        ("/api/workflows/employee-sync/latest", "has not run yet"),
        (
            "/api/workflows/nightly/latest",
            "there is no workflow `nightly`",
        ),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{path}: {answer}"
        );
    }
    let (status, _) = app
        .post_json(&format!("/api/sessions/{unknown}/clear"), None)
        .await;
    assert_eq!(status, 404);

    let (_, started) = app
        .post_json("/api/sessions", Some(json!({"workflow": "daily-sync"})))
        .await;
    let id = started["session_id"].as_str().unwrap().to_string();
    until(&app, &id, |s| s["steps"][1]["action"] == "Export Orders").await;
    for (path, status, says) in [
        (
            format!("/api/sessions/{id}/steps/1/action"),
            409,
            "not waiting",
        ),
        (
            format!("/api/sessions/{id}/steps/5/action"),
            409,
            "not waiting",
        ),
        (
            format!("/api/sessions/{id}/steps/0/action"),
            400,
            "count from 1",
        ),
        (
            format!("/api/sessions/{id}/steps/two/retry"),
            400,
            "count from 1",
        ),
        (
            format!("/api/sessions/{id}/steps/1/retry"),
            409,
            "has not failed",
        ),
    ] {
        let (got, answer) = app.post_json(&path, None).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{path}: {answer}"
        );
    }
    // Clear: run 2 from step 1, the timeline keeps run 1.
    let (status, session) = app
        .post_json(&format!("/api/sessions/{id}/clear"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(session["run"], 2);
    let session = until(&app, &id, |s| s["steps"][1]["action"] == "Export Orders").await;
    let runs: std::collections::BTreeSet<_> = session["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_u64().unwrap())
        .collect();
    assert_eq!(runs.into_iter().collect::<Vec<_>>(), [1, 2]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_workflow_from_the_config_runs_beside_the_built_in_ones() {
    use baton::server::workflows::defs::{WorkflowConfig, WorkflowStepConfig};
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.demo_erp_records = 200;
        config.demo_erp_latency = Duration::ZERO;
        config.demo_erp_change_every = Duration::ZERO;
        config.poll_interval = Duration::from_millis(50);
        let step = |name: &str, types: &[&str], gate: Option<&str>| WorkflowStepConfig {
            name: name.into(),
            sync_types: types.iter().map(|t| t.to_string()).collect(),
            gate: gate.map(str::to_string),
            continue_on_failure: false,
        };
        config.workflows.insert(
            "quick".into(),
            WorkflowConfig {
                name: Some("Quick check".into()),
                schedule: None,
                steps: vec![
                    step("Products", &["products"], None),
                    step("Sign off", &[], Some("Looks good")),
                ],
            },
        );
    })
    .await;
    let workflows: Value = app.get("/api/workflows").await.json().await.unwrap();
    let ids: Vec<_> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["daily-sync", "employee-sync", "quick"]);

    let (status, started) = app
        .post_json("/api/sessions", Some(json!({"workflow": "quick"})))
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["session_id"].as_str().unwrap().to_string();
    // A gate without jobs says what it waits for; pressing it ends the session.
    let session = until(&app, &id, |s| s["steps"][1]["action"] == "Looks good").await;
    assert_eq!(session["name"], "Quick check");
    assert_eq!(session["steps"][1]["message"], "waiting for Looks good");
    let (status, _) = app
        .post_json(&format!("/api/sessions/{id}/steps/2/action"), None)
        .await;
    assert_eq!(status, 200);
    let session = until(&app, &id, |s| s["finished_at"].is_string()).await;
    assert_eq!(session["state"], "completed");
    assert_eq!(statuses(&session), ["completed"; 2]);
    app.shutdown().await;
}

/// A workflow whose first step runs a slow job: one step, one `slow` job of 3 s.
async fn slow_app(db: TestDb) -> TestApp {
    use baton::server::workflows::defs::{WorkflowConfig, WorkflowStepConfig};
    spawn_app_with(db, |config| {
        config.demo_erp_records = 50;
        config.demo_erp_latency = Duration::ZERO;
        config.poll_interval = Duration::from_millis(50);
        config.sync_types.insert(
            "slow".into(),
            toml::from_str(
                "priority = 1\nexclusive = false\ntask = { kind = \"wait\", duration = \"3s\", steps = 30 }\n",
            )
            .unwrap(),
        );
        config.workflows.insert(
            "slowflow".into(),
            WorkflowConfig {
                name: None,
                schedule: None,
                steps: vec![WorkflowStepConfig {
                    name: "Slow".into(),
                    sync_types: vec!["slow".into()],
                    gate: None,
                    continue_on_failure: false,
                }],
            },
        );
    })
    .await
}

both_backends!(
    a_second_session_of_a_workflow_is_refused_while_one_is_open,
    |db| {
        let app = slow_app(db).await;
        let start = json!({ "workflow": "slowflow" });
        // Two at once: the database admits one open session, so exactly one start wins.
        let (a, b) = tokio::join!(
            app.post_json("/api/sessions", Some(start.clone())),
            app.post_json("/api/sessions", Some(start.clone()))
        );
        let mut answers = [a, b];
        answers.sort_by_key(|(status, _)| *status);
        let [(ok, first), (refused, second)] = answers;
        assert_eq!((ok, refused), (202, 409), "{first} {second}");
        assert_eq!(second["error"], "session_open", "{second}");
        assert_eq!(second["session_id"], first["session_id"], "{second}");
        // Once it has ended, a new one starts.
        let id = first["session_id"].as_str().unwrap().to_string();
        let (status, _) = app
            .post_json(&format!("/api/sessions/{id}/cancel"), None)
            .await;
        assert_eq!(status, 200);
        let (status, again) = app.post_json("/api/sessions", Some(start)).await;
        assert_eq!(status, 202, "{again}");
    }
);

both_backends!(
    starting_over_cancels_the_old_runs_jobs_and_the_old_run_writes_nothing_into_the_new,
    |db| {
        let app = slow_app(db).await;
        let (_, started) = app
            .post_json("/api/sessions", Some(json!({ "workflow": "slowflow" })))
            .await;
        let id = started["session_id"].as_str().unwrap().to_string();
        let session = until(&app, &id, |s| {
            s["steps"][0]["jobs"][0]["state"] == "running"
        })
        .await;
        let old_job = session["steps"][0]["jobs"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _) = app
            .post_json(&format!("/api/sessions/{id}/clear"), None)
            .await;
        assert_eq!(status, 200);
        // The old run's job is cancelled …
        let job = eventually(Duration::from_secs(10), || {
            let (app, old_job) = (&app, old_job.clone());
            async move {
                let job = app.get_json(&format!("/api/jobs/{old_job}")).await;
                (job["state"] == "cancelled")
                    .then_some(job.clone())
                    .ok_or(job)
            }
        })
        .await;
        assert_eq!(job["state"], "cancelled");
        // … the new run finishes with its own job, and no row of run 1 lands in run 2.
        let done = until(&app, &id, |s| s["state"] == "completed").await;
        assert_eq!(done["run"], 2, "{done}");
        let new_job = done["steps"][0]["jobs"][0]["id"].as_str().unwrap();
        assert_ne!(new_job, old_job);
        let rows = done["timeline"].as_array().unwrap();
        let run2: Vec<&str> = rows
            .iter()
            .filter(|r| r["run"] == 2)
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(run2, ["processing", "completed"], "{done:#}");
    }
);

#[tokio::test]
async fn every_change_of_a_session_is_a_session_updated_event_ending_with_its_end() {
    let app = slow_app(TestDb::sqlite()).await;
    let mut live = app.state.events.subscribe(None).live;
    let (_, started) = app
        .post_json("/api/sessions", Some(json!({ "workflow": "slowflow" })))
        .await;
    let id = started["session_id"].as_str().unwrap().to_string();
    let mut states = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while states.last().map(String::as_str) != Some("completed") {
        let event = tokio::time::timeout_at(deadline, live.recv())
            .await
            .expect("the session ends within 20 s")
            .unwrap();
        if let baton::model::EventKind::SessionUpdated(update) = &event.kind {
            if update.session_id == id {
                states.push(update.state.as_str().to_string());
            }
        }
    }
    assert_eq!(states, ["running", "completed"]);
    // A read after the event sees what it said.
    let session = app.get_json(&format!("/api/sessions/{id}")).await;
    assert_eq!(session["state"], "completed");
    assert!(!session["finished_at"].is_null());
}

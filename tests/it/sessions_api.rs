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
                session["triggered_by"].as_str()
            ),
            (Some("waiting"), Some("api"), Some("anna"))
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

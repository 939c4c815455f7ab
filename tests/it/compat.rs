//! Seed 002's shape of the job API (`/api/sync/{type}/start|status|cancel`) over real HTTP: the
//! answers its callers read, and what each bad input gets.

use std::time::Duration;

use crate::helpers::{eventually, spawn_app_with, TestApp};
use baton::server::catalog::TaskConfig;
use serde_json::{json, Value};

/// The pulls become 2 s simulated syncs in 20 steps: long enough to cancel one while it runs.
async fn app(db: crate::helpers::TestDb) -> TestApp {
    spawn_app_with(db, |config| {
        config.poll_interval = Duration::from_millis(50);
        for ty in config.sync_types.values_mut() {
            if matches!(ty.task, Some(TaskConfig::HttpPull(_))) {
                ty.task = Some(TaskConfig::Wait {
                    duration: Duration::from_secs(2),
                    steps: 20,
                });
            }
        }
    })
    .await
}

async fn status_of(app: &TestApp, path: &str) -> (u16, Value) {
    app.get_json_status(path).await
}

both_backends!(seed_002_start_poll_and_finish, |db| {
    let app = app(db).await;
    let (status, started) = app
        .post_json(
            "/api/sync/customers/start",
            Some(json!({ "triggeredBy": "wordpress bridge" })),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["success"], true);
    assert_eq!(started["message"], "customers sync queued");
    let id = started["jobId"].as_str().unwrap().to_string();

    // Asked again while it waits or runs: the engine's deduplication, in this shape too.
    let path = format!("/api/sync/customers/status?jobId={id}");
    let done = eventually(Duration::from_secs(20), || {
        let path = path.clone();
        let id = id.clone();
        let app = &app;
        async move {
            let (status, body) = status_of(app, &path).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["success"], true);
            let job = &body["job"];
            assert_eq!(job["jobId"], id.as_str());
            assert_eq!(job["syncType"], "customers");
            for key in [
                "progress",
                "processed",
                "total",
                "stepMessage",
                "error",
                "result",
            ] {
                assert!(job.get(key).is_some(), "`{key}` missing from {job}");
            }
            if job["status"] == "completed" {
                Ok(body)
            } else {
                assert!(
                    matches!(job["status"].as_str(), Some("pending" | "running")),
                    "{job}"
                );
                Err(body)
            }
        }
    })
    .await;
    assert_eq!(done["job"]["progress"], 100);
    assert!(done["job"]["finishedAt"].is_string());

    // Without jobId: the type's newest job.
    let (status, newest) = status_of(&app, "/api/sync/customers/status").await;
    assert_eq!(status, 200, "{newest}");
    assert_eq!(newest["job"]["jobId"], id.as_str());

    // The same job through the JSON API says the same.
    let job = app.get_json(&format!("/api/jobs/{id}")).await;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["note"], "wordpress bridge");
});

both_backends!(seed_002_cancel_a_running_sync, |db| {
    let app = app(db).await;
    let (_, started) = app.post_json("/api/sync/products/start", None).await;
    let id = started["jobId"].as_str().unwrap().to_string();
    let path = format!("/api/sync/products/status?jobId={id}");
    eventually(Duration::from_secs(20), || async {
        let (_, body) = status_of(&app, &path).await;
        if body["job"]["status"] == "running" {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await;
    let (status, cancelled) = app
        .post_json("/api/sync/products/cancel", Some(json!({ "jobId": id })))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["success"], true);
    assert_eq!(cancelled["jobId"], id.as_str());
    eventually(Duration::from_secs(20), || async {
        let (_, body) = status_of(&app, &path).await;
        if body["job"]["status"] == "cancelled" {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await;
    // Cancelling it again: 409 in the seed's shape, saying why.
    let (status, again) = app
        .post_json("/api/sync/products/cancel", Some(json!({ "jobId": id })))
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["success"], false);
    assert_eq!(again["error"], "conflict");
    assert!(again["message"]
        .as_str()
        .unwrap()
        .contains("already cancelled"));
});

both_backends!(seed_002_bad_inputs_are_refused_in_its_shape, |db| {
    let app = app(db).await;
    let (_, started) = app.post_json("/api/sync/orders/start", None).await;
    let orders_job = started["jobId"].as_str().unwrap().to_string();

    // An unknown type: 404 listing the known ones.
    let (status, body) = app.post_json("/api/sync/nonsense/start", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false);
    assert!(
        body["message"].as_str().unwrap().contains("customers"),
        "{body}"
    );
    let (status, body) = status_of(&app, "/api/sync/nonsense/status").await;
    assert_eq!(
        (status, body["success"].clone()),
        (404, json!(false)),
        "{body}"
    );

    // A jobId that is not one: 400; one of another type: 404, never that job's data.
    let (status, body) = status_of(&app, "/api/sync/customers/status?jobId=42").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not a job id"));
    let (status, body) = status_of(
        &app,
        &format!("/api/sync/customers/status?jobId={orders_job}"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("orders sync"),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            "/api/sync/customers/cancel",
            Some(json!({ "jobId": orders_job })),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let job = app.get_json(&format!("/api/jobs/{orders_job}")).await;
    assert!(job["cancel_requested_at"].is_null(), "not cancelled: {job}");

    // A type that never ran: 404 saying so.
    let (status, body) = status_of(&app, "/api/sync/invoices/status").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("no invoices sync has run"));

    // Cancel without jobId, with a misspelt field, with a body that is not JSON.
    let (status, body) = app.post_json("/api/sync/orders/cancel", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("jobId"));
    let (status, _) = app
        .post_json(
            "/api/sync/orders/cancel",
            Some(json!({ "job_id": orders_job })),
        )
        .await;
    assert_eq!(status, 422);
    let response = app
        .client
        .post(app.url("/api/sync/orders/start"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);

    // A viewer may read the status but not start or cancel.
    let viewer = crate::helpers::client_with(
        &crate::helpers::make_token(&app.state.auth, "viewer", baton::model::Role::Viewer).await,
    );
    let response = viewer
        .post(app.url("/api/sync/orders/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = viewer
        .get(app.url(&format!("/api/sync/orders/status?jobId={orders_job}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
});

//! The job API over real HTTP on 127.0.0.1:0: every route, and what each bad input gets.

use std::time::Duration;

use crate::helpers::{eventually, spawn_app_with, SseReader, TestApp, TestDb};
use baton::server::{
    catalog::{SyncTypeConfig, TaskConfig},
    config::Config,
};
use serde_json::{json, Value};

/// Short simulated syncs in place of the six pulls (the other built-ins keep their tasks), and
/// `blocker`, a long exclusive one that holds the mutex so other
/// exclusive jobs stay pending for as long as a test needs.
fn quick(config: &mut Config) {
    config.poll_interval = Duration::from_millis(50);
    for ty in config.sync_types.values_mut() {
        let pull = matches!(ty.task, Some(TaskConfig::HttpPull(_)));
        if pull {
            ty.task = Some(TaskConfig::Wait {
                duration: Duration::from_millis(200),
                steps: 4,
            });
        }
    }
    config.sync_types.insert(
        "blocker".into(),
        SyncTypeConfig {
            priority: 100,
            task: Some(TaskConfig::Wait {
                duration: Duration::from_secs(600),
                steps: 600,
            }),
            ..config.sync_types["orders"].clone()
        },
    );
}

async fn app(db: TestDb) -> TestApp {
    spawn_app_with(db, quick).await
}

/// Polls the job until `done` holds (bounded, for safety only).
async fn wait_job(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    eventually(Duration::from_secs(20), || async move {
        let (status, job) = app.get_json_status(&format!("/api/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if done(&job) {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

fn terminal(job: &Value) -> bool {
    matches!(
        job["state"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Starts the blocker and waits until it holds the mutex; returns its id.
async fn hold_mutex(app: &TestApp) -> String {
    let (status, body) = app.post_json("/api/sync/blocker", None).await;
    assert_eq!(status, 202, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    wait_job(app, &id, |j| j["state"] == "running").await;
    id
}

both_backends!(a_sync_is_requested_deduplicated_run_and_read_back, |db| {
    let app = app(db).await;
    let blocker = hold_mutex(&app).await;
    let (status, first) = app
        .post_json("/api/sync/orders", Some(json!({ "triggered_by": "anna" })))
        .await;
    assert_eq!(status, 202);
    assert_eq!(first["state"], "pending");
    assert_eq!(first["deduplicated"], false);
    let (status, second) = app.post_json("/api/sync/orders", None).await;
    assert_eq!(status, 202);
    assert_eq!(second["job_id"], first["job_id"]);
    assert_eq!(second["deduplicated"], true);

    let (_, status) = app.get_json_status("/api/sync/status").await;
    assert_eq!(status["current"]["id"].as_str(), Some(blocker.as_str()));
    assert_eq!(status["queue"][0]["id"], first["job_id"]);
    assert_eq!(status["types"]["orders"]["pending_job"], first["job_id"]);
    assert_eq!(status["types"]["blocker"]["state"], "running");
    for name in [
        "orders",
        "customers",
        "ddt",
        "invoices",
        "prices",
        "products",
        "records",
    ] {
        assert!(status["types"][name].is_object(), "{name} in {status}");
    }

    let (status, cancelled) = app
        .post_json(&format!("/api/jobs/{blocker}/cancel"), None)
        .await;
    assert_eq!(status, 200);
    assert!(cancelled["cancel_requested_at"].is_string());
    let id = first["job_id"].as_str().unwrap();
    let job = wait_job(&app, id, terminal).await;
    assert_eq!(job["state"], "completed");
    // Who asked is who the token is; what the body said is the note.
    assert_eq!(job["triggered_by"], "token:tests");
    assert_eq!(job["note"], "anna");
    assert_eq!(job["source"], "api");
    for field in [
        "id",
        "sync_type",
        "priority",
        "exclusive",
        "state",
        "progress",
        "processed",
        "total",
        "message",
        "error",
        "result",
        "warnings",
        "attempt",
        "max_attempts",
        "run_at",
        "source",
        "triggered_by",
        "session_id",
        "retry_of",
        "checkpoint",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "lease_owner",
        "lease_expires_at",
        "cancel_requested_at",
    ] {
        assert!(job.get(field).is_some(), "{field} missing from {job}");
    }
    assert_eq!(
        wait_job(&app, &blocker, terminal).await["state"],
        "cancelled"
    );
    let (_, status) = app.get_json_status("/api/sync/status").await;
    assert_eq!(status["types"]["orders"]["state"], "success");
    assert_eq!(
        status["types"]["blocker"]["state"], "idle",
        "a cancelled run is not an error"
    );
});

#[tokio::test]
async fn a_full_sync_queues_every_enabled_type_in_priority_order() {
    let app = app(TestDb::sqlite()).await;
    hold_mutex(&app).await;
    let (status, body) = app.post_json("/api/sync/full", None).await;
    assert_eq!(status, 202);
    let types: Vec<_> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["sync_type"].as_str().unwrap().to_string())
        .collect();
    // The blocker already runs, so it gets a pending job of its own; `records` needs records.
    assert_eq!(
        types,
        [
            "blocker",
            "orders",
            "customers",
            "ddt",
            "invoices",
            "prices",
            "products"
        ]
    );
}

#[tokio::test]
async fn bad_requests_to_sync_get_clear_errors() {
    let app = app(TestDb::sqlite()).await;
    // An unknown type: 404, listing the known ones.
    let (status, body) = app.post_json("/api/sync/teleport", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("teleport") && message.contains("orders, prices"),
        "{message}"
    );

    // Malformed JSON: 400.
    let response = app
        .client
        .post(app.url("/api/sync/orders"))
        .header("content-type", "application/json")
        .body("{\"triggered_by\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

    // Well-formed JSON of the wrong shape: 422, naming the field.
    let (status, body) = app
        .post_json("/api/sync/orders", Some(json!({ "triggerd_by": "x" })))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().contains("triggerd_by"),
        "{body}"
    );
    let (status, _) = app
        .post_json(
            "/api/sync/orders",
            Some(json!({ "triggered_by": "x".repeat(201) })),
        )
        .await;
    assert_eq!(status, 422);

    // A body that is not JSON at all.
    let response = app
        .client
        .post(app.url("/api/sync/orders"))
        .header("content-type", "text/plain")
        .body("please")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // `records` needs records.
    let (status, body) = app.post_json("/api/sync/records", None).await;
    assert_eq!(status, 422);
    assert!(body["message"].as_str().unwrap().contains("/api/jobs"));
    // None of it queued anything.
    let (_, page) = app.get_json_status("/api/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0, "{page}");
}

both_backends!(pushed_records_are_stored_and_bad_records_refused, |db| {
    let app = app(db).await;
    let records: Vec<Value> = (0..120)
        .map(|i| json!({ "id": i, "balance": i * 10 }))
        .collect();
    let (status, body) = app
        .post_json(
            "/api/jobs",
            Some(json!({ "sync_type": "records", "records": records, "triggered_by": "erp" })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&app, body["job_id"].as_str().unwrap(), terminal).await;
    assert_eq!(job["state"], "completed");
    assert_eq!(job["processed"], 120);
    assert_eq!(job["result"]["records"], 120);
    assert_eq!(app.state.store.count_records().await.unwrap(), 120);

    for (body, expected, says) in [
        (
            json!({ "sync_type": "records", "records": [{ "id": 1 }, { "name": "no id" }] }),
            422,
            "record 1",
        ),
        (
            json!({ "sync_type": "records", "records": { "id": 1 } }),
            422,
            "array",
        ),
        (
            json!({ "sync_type": "orders", "records": [{ "id": 1 }] }),
            422,
            "does not take records",
        ),
        (json!({ "sync_type": "nope" }), 404, "orders"),
        (json!({ "records": [] }), 422, "sync_type"),
        (json!({ "sync_type": "records" }), 422, "carry records"),
    ] {
        let (status, answer) = app.post_json("/api/jobs", Some(body.clone())).await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body} → {answer}"
        );
    }
    let response = app.client.post(app.url("/api/jobs")).send().await.unwrap();
    assert_eq!(response.status(), 422, "an empty body");
    assert_eq!(
        app.state.store.count_records().await.unwrap(),
        120,
        "nothing half-applied"
    );
});

#[tokio::test]
async fn an_oversized_records_push_is_413_and_stores_nothing() {
    let app = spawn_app_with(TestDb::sqlite(), |c| {
        quick(c);
        c.body_limit = 4096;
    })
    .await;
    let records: Vec<Value> = (0..500).map(|i| json!({ "id": i })).collect();
    let (status, body) = app
        .post_json(
            "/api/jobs",
            Some(json!({ "sync_type": "records", "records": records })),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large");
    let (_, page) = app.get_json_status("/api/jobs").await;
    assert!(page["jobs"].as_array().unwrap().is_empty());
}

both_backends!(cancel_retry_and_lookups_answer_each_case, |db| {
    let app = app(db).await;
    hold_mutex(&app).await;
    let (_, queued) = app.post_json("/api/sync/prices", None).await;
    let id = queued["job_id"].as_str().unwrap().to_string();

    // Retry of a job that has not failed: 409.
    let (status, body) = app.post_json(&format!("/api/jobs/{id}/retry"), None).await;
    assert_eq!(status, 409);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("only failed or cancelled"));

    let (status, job) = app.post_json(&format!("/api/jobs/{id}/cancel"), None).await;
    assert_eq!(status, 200);
    assert_eq!(job["state"], "cancelled");
    // Cancel of a finished job: 409.
    let (status, body) = app.post_json(&format!("/api/jobs/{id}/cancel"), None).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "conflict");

    let (status, retry) = app
        .post_json(
            &format!("/api/jobs/{id}/retry"),
            Some(json!({ "triggered_by": "bob" })),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(retry["retry_of"].as_str(), Some(id.as_str()));
    let new_id = retry["job_id"].as_str().unwrap();
    let (_, new_job) = app.get_json_status(&format!("/api/jobs/{new_id}")).await;
    assert_eq!(new_job["source"], "api");
    assert_eq!(new_job["triggered_by"], "token:tests");
    assert_eq!(new_job["note"], "bob");

    // Unknown ids: 404; ids that are not ids: 400.
    let unknown = "01938f6e-8a4b-7cc0-9f1e-2b3c4d5e6f70";
    for path in [format!("/api/jobs/{unknown}")] {
        assert_eq!(app.get_json_status(&path).await.0, 404);
    }
    assert_eq!(
        app.post_json(&format!("/api/jobs/{unknown}/cancel"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        app.post_json(&format!("/api/jobs/{unknown}/retry"), None)
            .await
            .0,
        404
    );
    let (status, body) = app.get_json_status("/api/jobs/not-a-uuid").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("not a job id"));
    assert_eq!(app.post_json("/api/jobs/42/cancel", None).await.0, 400);
});

both_backends!(the_job_list_filters_searches_and_pages_newest_first, |db| {
    let app = app(db).await;
    hold_mutex(&app).await;
    let mut ids = Vec::new();
    for (ty, who) in [
        ("orders", "anna"),
        ("customers", "bob"),
        ("ddt", "Anna-Maria"),
    ] {
        let (_, body) = app
            .post_json(
                &format!("/api/sync/{ty}"),
                Some(json!({ "triggered_by": who })),
            )
            .await;
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    app.post_json(&format!("/api/jobs/{}/cancel", ids[1]), None)
        .await;

    let list = |query: &str| {
        let path = format!("/api/jobs?{query}");
        let app = &app;
        async move {
            let (status, page) = app.get_json_status(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            let ids: Vec<String> = page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect();
            (ids, page["next_cursor"].as_str().map(str::to_string))
        }
    };
    let (all, _) = list("sync_type=").await;
    assert_eq!(all.len(), 4, "three requested and the blocker");
    assert_eq!(all[0], ids[2], "newest first");
    assert_eq!(list("state=cancelled").await.0, [ids[1].clone()]);
    assert_eq!(list("sync_type=orders").await.0, [ids[0].clone()]);
    assert_eq!(
        list("q=ANNA").await.0,
        [ids[2].clone(), ids[0].clone()],
        "case-insensitive"
    );
    assert_eq!(
        list("q=100%25").await.0.len(),
        0,
        "a % is matched literally"
    );

    let (page1, cursor) = list("limit=2").await;
    assert_eq!(page1, [ids[2].clone(), ids[1].clone()]);
    let (page2, cursor2) = list(&format!("limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!(page2[0], ids[0]);
    assert_eq!(page2.len(), 2);
    let (page3, _) = list(&format!("limit=2&cursor={}", cursor2.unwrap())).await;
    assert!(page3.is_empty());

    for (query, says) in [
        ("state=sleeping", "pending, running"),
        ("limit=0", "1 to 500"),
        ("limit=501", "1 to 500"),
        ("limit=ten", "1 to 500"),
        ("cursor=yesterday", "next_cursor"),
    ] {
        let (status, body) = app.get_json_status(&format!("/api/jobs?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
});

#[tokio::test]
async fn the_event_stream_carries_a_jobs_life_with_ids() {
    let app = app(TestDb::sqlite()).await;
    let mut sse = SseReader::new(app.get("/api/events").await);
    let (_, body) = app.post_json("/api/sync/orders", None).await;
    let id = body["job_id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    let mut last_id = 0u64;
    while !seen.contains(&"sync-completed".to_string()) {
        let frame = sse.next(Duration::from_secs(10)).await.expect("a frame");
        let event_id: u64 = frame.id.as_deref().unwrap().parse().unwrap();
        assert!(event_id > last_id, "ids increase");
        last_id = event_id;
        let data: Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(
            data["event"], frame.event,
            "the SSE name matches the payload's tag"
        );
        match frame.event.as_str() {
            "sync-started" | "sync-completed" => assert_eq!(data["data"]["id"], id.as_str()),
            "job-progress" => assert_eq!(data["data"]["job_id"], id.as_str()),
            _ => {}
        }
        seen.push(frame.event);
    }
    let first = |name: &str| seen.iter().position(|e| e == name).unwrap();
    assert!(first("sync-started") < first("job-progress"));
    assert!(first("job-progress") < first("sync-completed"));
    assert!(seen.contains(&"queue-updated".to_string()), "{seen:?}");
}

#[tokio::test]
async fn a_cross_site_page_cannot_start_a_sync() {
    let app = app(TestDb::sqlite()).await;
    let cookie = app.sign_in("anna", baton::model::Role::Staff).await;
    let response = reqwest::Client::new()
        .post(app.url("/api/sync/orders"))
        .header("cookie", cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (_, page) = app.get_json_status("/api/jobs").await;
    assert!(page["jobs"].as_array().unwrap().is_empty());
}

both_backends!(
    the_tasks_view_filters_by_source_who_and_time_and_acts_in_bulk,
    |db| {
        let app = app(db).await;
        // The blocker holds the mutex; three exclusive jobs wait behind it.
        let (_, blocker) = app.post_json("/api/sync/blocker", Some(json!({}))).await;
        let mut waiting = Vec::new();
        for ty in ["orders", "customers", "ddt"] {
            let (status, body) = app.post_json(&format!("/api/sync/{ty}"), None).await;
            assert_eq!(status, 202, "{body}");
            waiting.push(body["job_id"].as_str().unwrap().to_string());
        }
        let ids = |page: &Value| -> Vec<String> {
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect()
        };
        // Source and who: everything here came through the API from token:tests.
        assert_eq!(ids(&app.get_json("/api/jobs?source=api").await).len(), 4);
        assert!(ids(&app.get_json("/api/jobs?source=scheduler").await).is_empty());
        assert_eq!(ids(&app.get_json("/api/jobs?who=TOKEN:TE").await).len(), 4);
        assert!(ids(&app.get_json("/api/jobs?who=nobody").await).is_empty());
        // Time range: a date, or an RFC 3339 time.
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert_eq!(
            ids(&app.get_json(&format!("/api/jobs?since={today}")).await).len(),
            4
        );
        assert!(ids(&app.get_json(&format!("/api/jobs?until={today}")).await).is_empty());
        assert!(ids(&app.get_json("/api/jobs?since=2999-01-01T00:00:00Z").await).is_empty());
        // Bad filters: 400 naming the parameter.
        for (query, says) in [
            ("source=robot", "`source` must be one of"),
            ("since=yesterday", "`since` must be a time"),
            ("until=2026-13-01", "`until` must be a time"),
            ("who=a%00b", "`who` must not contain control characters"),
        ] {
            let (status, body) = app.get_json_status(&format!("/api/jobs?{query}")).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains(says),
                "{query}: {body}"
            );
        }

        // Bulk cancel: each answers for itself.
        let (status, body) = app
            .post_json(
                "/api/jobs/bulk",
                Some(json!({ "action": "cancel", "ids": [waiting[0], waiting[1]] })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r["ok"] == true), "{body}");
        for id in &waiting[..2] {
            assert_eq!(
                app.get_json(&format!("/api/jobs/{id}")).await["state"],
                "cancelled"
            );
        }
        assert_eq!(
            app.get_json(&format!("/api/jobs/{}", waiting[2])).await["state"],
            "pending"
        );
        // Retry: the two cancelled ones again; the pending one is refused, the others still done.
        let (status, body) = app
            .post_json(
                "/api/jobs/bulk",
                Some(json!({ "action": "retry", "ids": [waiting[0], waiting[2], waiting[1]] })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results[0]["ok"], true);
        assert!(results[0]["job_id"].is_string());
        assert_eq!(results[1]["ok"], false);
        assert!(
            results[1]["error"].as_str().unwrap().contains("pending"),
            "{body}"
        );
        assert_eq!(results[2]["ok"], true);
        // Bad bulk requests.
        let many: Vec<String> = (0..501).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        for (body, want) in [
            (json!({ "action": "cancel", "ids": [] }), 422),
            (json!({ "action": "cancel", "ids": many }), 422),
            (json!({ "action": "cancel", "ids": ["not-an-id"] }), 400),
            (json!({ "action": "explode", "ids": [waiting[2]] }), 422),
            (json!({ "ids": [waiting[2]] }), 422),
        ] {
            let (status, answer) = app.post_json("/api/jobs/bulk", Some(body.clone())).await;
            assert_eq!(status, want, "{body} → {answer}");
        }
        let (status, _) = app.post_json("/api/jobs/bulk", None).await;
        assert_eq!(status, 422, "no body");
        // An unknown id is that id's refusal, not the request's.
        let (status, body) = app
        .post_json(
            "/api/jobs/bulk",
            Some(json!({ "action": "cancel", "ids": [uuid::Uuid::now_v7().to_string(), blocker["job_id"]] })),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["results"][0]["ok"], false);
        assert!(body["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("there is no job"));
        assert_eq!(body["results"][1]["ok"], true);
        app.shutdown().await;
    }
);

both_backends!(
    statistics_and_freshness_follow_the_runs_and_the_schedule,
    |db| {
        let app = app(db).await;
        // Nothing has run: no success, nothing to judge.
        let status = app.get_json("/api/sync/status").await;
        assert_eq!(status["types"]["products"]["freshness"], "unknown");
        let (code, _) = app.post_json("/api/sync/products", None).await;
        assert_eq!(code, 202);
        eventually(Duration::from_secs(30), || async {
            let s = app.get_json("/api/sync/status").await;
            if s["types"]["products"]["last_success"].is_string() {
                Ok(())
            } else {
                Err(s["types"]["products"].clone())
            }
        })
        .await;
        let status = app.get_json("/api/sync/status").await;
        assert_eq!(status["types"]["products"]["freshness"], "fresh");
        let stats = app.get_json("/api/sync/stats").await;
        let products = stats["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["sync_type"] == "products")
            .unwrap()
            .clone();
        assert_eq!(products["week"]["runs"], 1);
        assert_eq!(products["week"]["success_rate"], 1.0);
        assert!(products["week"]["median_ms"].is_u64());

        // A schedule whose runs are missed makes it late, with an event that says why.
        let mut events =
            SseReader::new(app.client.get(app.url("/api/events")).send().await.unwrap());
        let mut spec = baton::model::ScheduleSpec::every("10m");
        spec.on_missed = baton::model::OnMissed::Skip;
        let scheduler = &app.state.scheduler;
        let t0 = baton::server::schedules::millis(chrono::Utc::now());
        scheduler
            .update("products", &spec, "tests", t0)
            .await
            .unwrap();
        // An hour later by the test clock: its runs passed while nobody ran them.
        scheduler
            .tick(t0 + chrono::Duration::minutes(65))
            .await
            .unwrap();
        scheduler
            .watch_freshness(t0 + chrono::Duration::minutes(65))
            .await
            .unwrap();
        let status = app.get_json("/api/sync/status").await;
        assert_eq!(
            status["types"]["products"]["freshness"], "late",
            "{}",
            status["types"]["products"]
        );
        assert!(status["types"]["products"]["freshness_note"]
            .as_str()
            .unwrap()
            .contains("was missed"));
        let late = loop {
            let frame = events
                .next(Duration::from_secs(10))
                .await
                .expect("a sync-late event");
            if frame.event == "sync-late" {
                break frame;
            }
        };
        let data: Value = serde_json::from_str(&late.data).unwrap();
        assert_eq!(data["data"]["sync_type"], "products");
        assert_eq!(data["data"]["freshness"], "late");
        // Judged again, still late: no second event.
        scheduler
            .watch_freshness(t0 + chrono::Duration::minutes(66))
            .await
            .unwrap();
        while let Ok(Some(frame)) = tokio::time::timeout(
            Duration::from_millis(500),
            events.next(Duration::from_secs(60)),
        )
        .await
        {
            assert_ne!(frame.event, "sync-late", "published twice");
        }
        app.shutdown().await;
    }
);

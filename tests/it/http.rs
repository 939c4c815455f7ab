//! The HTTP surface through a real server on 127.0.0.1:0.

use std::time::Duration;

use crate::helpers::{spawn_app, spawn_app_with, SseReader, TestDb};
use baton::model::{DatabaseHealth, EventKind, EventPage, Heartbeat, LiveEvent};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(5);

fn beat() -> EventKind {
    EventKind::Heartbeat(Heartbeat {
        instance_id: "test".into(),
        started_at: chrono::Utc::now(),
        database: DatabaseHealth::Ok,
    })
}

#[tokio::test]
async fn healthz_answers_without_the_database() {
    let app = spawn_app(TestDb::sqlite()).await;
    app.state.store.close().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["instance_id"], app.state.instance.id.to_string());
}

both_backends!(readyz_is_ready_when_the_database_answers, |db| {
    let app = spawn_app(db).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert!(body["database"] == "sqlite" || body["database"] == "postgres");
    app.shutdown().await;
});

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_database_is_gone() {
    let app = spawn_app(TestDb::sqlite()).await;
    app.state.store.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "database_unavailable");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("BATON_DATABASE_URL"));
}

#[tokio::test]
async fn the_home_page_is_server_rendered_with_navigation_and_hydration_scripts() {
    let app = spawn_app(TestDb::sqlite()).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let html = response.text().await.unwrap();
    for needle in [
        "Daily sync",
        "Order form",
        "Tasks",
        "Syncs",
        "/pkg/baton.js",
        "Connecting",
    ] {
        assert!(html.contains(needle), "missing {needle:?}");
    }
}

#[tokio::test]
async fn every_page_of_the_navigation_renders() {
    let app = spawn_app(TestDb::sqlite()).await;
    for path in ["/", "/orders/new", "/tasks", "/syncs"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page_and_an_unknown_api_path_is_a_json_404() {
    let app = spawn_app(TestDb::sqlite()).await;
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Page not found"));

    let api = app.get("/api/no-such-thing").await;
    assert_eq!(api.status(), 404);
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("/api/no-such-thing"));
}

#[tokio::test]
async fn a_cross_site_mutation_is_refused_and_a_same_site_one_passes_the_guard() {
    let app = spawn_app(TestDb::sqlite()).await;
    // A person's browser, signed in: the cookie goes wherever the browser goes.
    let cookie = app.sign_in("anna", baton::model::Role::Admin).await;
    let browser = reqwest::Client::new();
    let foreign = browser
        .post(app.url("/api/sync/customers"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");

    // A server function, marked cross-site by the browser without an Origin: refused too.
    let marked = browser
        .post(app.url("/api/fn/run_sync"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[("sync_type", "customers")])
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 403);
    // An Origin without a scheme is no proof either.
    let bare = browser
        .post(app.url("/api/sync/customers"))
        .header("cookie", &cookie)
        .header("origin", app.addr.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    let (_, page) = app.get_json_status("/api/jobs").await;
    assert!(page["jobs"].as_array().unwrap().is_empty(), "{page}");

    let own = browser
        .post(app.url("/api/sync/customers"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{}", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 202, "from Baton's own page it passes");
}

#[tokio::test]
async fn an_oversized_body_is_413_in_json_and_names_the_limit() {
    let app = spawn_app_with(TestDb::sqlite(), |c| c.body_limit = 2048).await;
    let response = app
        .client
        .post(app.url("/api/anything"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("2048"));
}

#[tokio::test]
async fn the_event_stream_delivers_events_with_names_and_ids() {
    let app = spawn_app(TestDb::sqlite()).await;
    let response = app.get("/api/events").await;
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let published = app.state.events.publish(beat());
    let frame = sse.next(WAIT).await.expect("a frame");
    assert_eq!(frame.event, "heartbeat");
    assert_eq!(frame.id, Some(published.id.to_string()));
    let event: LiveEvent = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(&event, published.as_ref());
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_replays_exactly_what_was_missed() {
    let app = spawn_app(TestDb::sqlite()).await;
    let ids: Vec<u64> = (0..4)
        .map(|_| app.state.events.publish(beat()).id)
        .collect();
    let response = app
        .client
        .get(app.url("/api/events"))
        .header("last-event-id", ids[1].to_string())
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(response);
    assert_eq!(sse.next(WAIT).await.unwrap().id, Some(ids[2].to_string()));
    assert_eq!(sse.next(WAIT).await.unwrap().id, Some(ids[3].to_string()));
    let next = app.state.events.publish(beat());
    assert_eq!(
        sse.next(WAIT).await.unwrap().id,
        Some(next.id.to_string()),
        "then live, no duplicate"
    );
}

#[tokio::test]
async fn a_reconnect_after_too_long_is_told_to_resync() {
    let app = spawn_app_with(TestDb::sqlite(), |c| c.event_buffer = 2).await;
    let first = app.state.events.publish(beat()).id;
    for _ in 0..5 {
        app.state.events.publish(beat());
    }
    let response = app
        .client
        .get(app.url("/api/events"))
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(response);
    let frame = sse.next(WAIT).await.unwrap();
    assert_eq!(frame.event, "resync");
    assert_eq!(
        frame.id, None,
        "a resync does not move the client's position"
    );
    assert_eq!(
        sse.next(WAIT).await.unwrap().event,
        "heartbeat",
        "then what is still held"
    );
}

#[tokio::test]
async fn an_unreadable_last_event_id_is_told_to_resync() {
    let app = spawn_app(TestDb::sqlite()).await;
    let response = app
        .client
        .get(app.url("/api/events"))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(response);
    assert_eq!(sse.next(WAIT).await.unwrap().event, "resync");
}

#[tokio::test]
async fn the_heartbeat_reaches_the_stream_and_renews_the_instance_row() {
    let app = spawn_app_with(TestDb::sqlite(), |c| {
        c.heartbeat_interval = Duration::from_millis(200)
    })
    .await;
    let mut sse = SseReader::new(app.get("/api/events").await);
    let frame = sse.next(WAIT).await.unwrap();
    assert_eq!(frame.event, "heartbeat");
    let event: LiveEvent = serde_json::from_str(&frame.data).unwrap();
    let EventKind::Heartbeat(beat) = event.kind else {
        panic!("expected a heartbeat, got {:?}", event.kind)
    };
    assert_eq!(beat.database, DatabaseHealth::Ok);
    assert_eq!(beat.instance_id, app.state.instance.id.to_string());
    let row = app
        .state
        .store
        .instance(app.state.instance.id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.heartbeat_at > row.started_at);
}

#[tokio::test]
async fn polling_returns_the_events_after_an_id_as_json() {
    let app = spawn_app(TestDb::sqlite()).await;
    let ids: Vec<u64> = (0..3)
        .map(|_| app.state.events.publish(beat()).id)
        .collect();
    let response = app.get(&format!("/api/events/poll?after={}", ids[0])).await;
    assert_eq!(response.status(), 200);
    let page: EventPage = response.json().await.unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[1..].to_vec()
    );
    assert_eq!(page.last_id, ids[2]);
    assert!(!page.resync);

    let fresh: EventPage = app.get("/api/events/poll").await.json().await.unwrap();
    assert!(fresh.events.is_empty());
    assert_eq!(fresh.last_id, ids[2]);
}

#[tokio::test]
async fn a_malformed_after_is_400_with_a_message_on_both_event_routes() {
    let app = spawn_app(TestDb::sqlite()).await;
    for path in ["/api/events/poll?after=soon", "/api/events?after=-1"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().contains("`after`"),
            "{path}"
        );
    }
}

both_backends!(
    shutdown_ends_open_streams_and_marks_the_process_stopped,
    |db| {
        let app = spawn_app(db).await;
        let mut sse = SseReader::new(app.get("/api/events").await);
        let id = app.state.instance.id;
        let shutdown = tokio::spawn(app.shutdown());
        assert_eq!(sse.next(WAIT).await, None, "the stream ends");
        let db = shutdown.await.unwrap();
        let row = db.store().await.instance(id).await.unwrap().unwrap();
        assert!(row.stopped_at.is_some(), "a clean stop is recorded");
    }
);

#[tokio::test]
async fn the_request_timeout_does_not_cut_an_open_event_stream() {
    let app = spawn_app_with(TestDb::sqlite(), |c| {
        c.request_timeout = Duration::from_millis(200);
        c.heartbeat_interval = Duration::from_millis(100);
    })
    .await;
    let mut sse = SseReader::new(app.get("/api/events").await);
    let started = std::time::Instant::now();
    let mut beats = 0;
    while started.elapsed() < Duration::from_millis(800) {
        assert_eq!(sse.next(WAIT).await.expect("still open").event, "heartbeat");
        beats += 1;
    }
    assert!(
        beats >= 4,
        "{beats} heartbeats over four timeouts' worth of time"
    );
}

#[tokio::test]
async fn server_functions_answer_typed_errors_with_the_api_s_status_and_shape() {
    let app = spawn_app(TestDb::sqlite()).await;
    // A malformed id: 400, as the JSON API says it.
    let (status, body) = app.server_fn("cancel_job", &[("id", "not-a-uuid")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("not a job id"),
        "{body}"
    );
    // An unknown workflow: 404, which the Daily sync page turns into its setup hint.
    let (status, body) = app
        .server_fn("workflow_overview", &[("workflow", "nope")])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    // An unknown sync type: 404 listing the known ones.
    let (status, body) = app
        .server_fn("run_sync", &[("sync_type", "teleport")])
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("orders"),
        "{body}"
    );
    // Cancelling a finished job: 409.
    let (job, _) = app
        .state
        .engine
        .request_sync("customers", crate::helpers::tester())
        .await
        .unwrap();
    app.state
        .engine
        .cancel(job.id.parse().unwrap())
        .await
        .unwrap();
    crate::helpers::job_finished(&app.state.engine, &job.id).await;
    let (status, body) = app
        .server_fn("cancel_job", &[("id", job.id.as_str())])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    // An argument that is not there: 400, not a 500.
    let (status, body) = app.server_fn("press_gate", &[("session_id", "x")]).await;
    assert_eq!(status, 400, "{body}");
    // The page that reads through one of them still renders with 200.
    assert_eq!(app.get("/").await.status(), 200);
}

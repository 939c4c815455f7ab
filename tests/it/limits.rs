//! Every input is bounded and says so, over real HTTP: bodies up to the configured limit and a
//! clear 413 past it, JSON for every API refusal, NUL bytes refused or stored (never a 500),
//! duplicate ids merged, a retry deduplicated, rate limits, slow and idle clients cut off, a
//! cap on connections and on live streams, and a replay cap on `Last-Event-ID`.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{eventually, spawn_app, spawn_app_with, TestApp, TestDb};

/// A records push of about `bytes` bytes.
fn push_of(bytes: usize) -> Value {
    let filler = "x".repeat(1000);
    let records: Vec<Value> = (0..bytes / 1020)
        .map(|i| json!({ "id": i, "x": filler }))
        .collect();
    json!({ "sync_type": "records", "records": records })
}

#[tokio::test]
async fn a_3_mb_body_is_taken_under_the_16_mib_limit_and_17_mb_is_413_naming_it() {
    let app = spawn_app(TestDb::sqlite()).await;
    let (status, body) = app.post_json("/api/jobs", Some(push_of(3_000_000))).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = app.post_json("/api/jobs", Some(push_of(17_000_000))).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "payload_too_large");
    assert!(
        body["message"].as_str().unwrap().contains("16777216"),
        "{body}"
    );
}

#[tokio::test]
async fn refusals_of_paths_queries_and_methods_are_json_like_every_api_error() {
    let app = spawn_app(TestDb::sqlite()).await;
    // A path segment that is not UTF-8.
    let (status, body) = app.get_json_status("/api/jobs/%FF").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    assert!(!body["message"].as_str().unwrap().is_empty());
    // A path parameter of the wrong kind.
    let (status, body) = app.get_json_status("/api/sessions/x/steps/1/retry").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    // A method the route does not have.
    let response = app
        .client
        .delete(app.url("/api/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed", "{body}");
}

both_backends!(
    nul_and_control_characters_in_names_are_422_never_a_500,
    |db| {
        let app = spawn_app(db).await;
        for name in ["a\u{0}b", "line\nbreak", "\u{1b}[31mred"] {
            let (status, body) = app
                .post_json("/api/sync/customers", Some(json!({ "triggered_by": name })))
                .await;
            assert_eq!(status, 422, "{name:?}: {body}");
            assert!(body["message"]
                .as_str()
                .unwrap()
                .contains("control characters"));
        }
        // A record id with NUL is refused; NUL inside a record's data is stored as it was sent.
        let (status, body) = app
            .post_json(
                "/api/jobs",
                Some(json!({ "sync_type": "records", "records": [{ "id": "a\u{0}" }] })),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
        let (status, body) = app
        .post_json(
            "/api/jobs",
            Some(json!({ "sync_type": "records", "records": [{ "id": "n1", "note": "a\u{0}b" }] })),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let id = body["job_id"].as_str().unwrap().to_string();
        let job = crate::helpers::job_finished(&app.state.engine, &id).await;
        assert_eq!(job.state, baton::model::JobState::Completed, "{job:?}");
    }
);

both_backends!(
    duplicate_ids_in_one_push_are_one_record_and_the_last_wins,
    |db| {
        let app = spawn_app(db).await;
        let (status, body) = app
            .post_json(
                "/api/jobs",
                Some(json!({ "sync_type": "records", "records": [
                { "id": 1, "v": "first" }, { "id": 2, "v": "two" }, { "id": 1, "v": "last" }
            ] })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["job_id"].as_str().unwrap().to_string();
        let job = crate::helpers::job_finished(&app.state.engine, &id).await;
        assert_eq!(
            (job.state, job.attempt),
            (baton::model::JobState::Completed, 1),
            "{job:?}"
        );
        assert_eq!(app.state.store.count_records().await.unwrap(), 2);
    }
);

both_backends!(a_second_retry_of_a_job_returns_the_first, |db| {
    let app = spawn_app(db).await;
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
    let path = format!("/api/jobs/{}/retry", job.id);
    let (first, second) = tokio::join!(app.post_json(&path, None), app.post_json(&path, None));
    assert_eq!((first.0, second.0), (202, 202), "{} {}", first.1, second.1);
    assert_eq!(first.1["job_id"], second.1["job_id"]);
    let (_, third) = app.post_json(&path, None).await;
    assert_eq!(third["job_id"], first.1["job_id"]);
});

#[tokio::test]
async fn records_pushes_and_session_starts_are_limited_per_caller() {
    let app = spawn_app_with(TestDb::sqlite(), |config| config.rate_limit = 3).await;
    let push = json!({ "sync_type": "records", "records": [{ "id": 1 }] });
    for _ in 0..3 {
        let (status, body) = app.post_json("/api/jobs", Some(push.clone())).await;
        assert_eq!(status, 202, "{body}");
    }
    let response = app
        .client
        .post(app.url("/api/jobs"))
        .json(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // The caller is who the token is.
    assert!(
        body["message"].as_str().unwrap().contains("token:tests"),
        "{body}"
    );
}

/// Fills the bus's buffer, then opens a stream that says it has seen nothing (`0`).
#[tokio::test]
async fn last_event_id_0_with_a_full_buffer_is_a_resync_not_the_whole_history() {
    let app = spawn_app(TestDb::sqlite()).await;
    for _ in 0..1024 {
        app.state
            .events
            .publish(baton::model::EventKind::QueueUpdated(
                baton::model::QueueCounts {
                    pending: 0,
                    running: 0,
                },
            ));
    }
    let response = app
        .client
        .get(app.url("/api/events"))
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut reader = crate::helpers::SseReader::new(response);
    let first = reader.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.event, "resync");
    // Nothing of the history follows: the next frame is a live event.
    app.state
        .events
        .publish(baton::model::EventKind::QueueUpdated(
            baton::model::QueueCounts {
                pending: 7,
                running: 0,
            },
        ));
    let next = reader.next(Duration::from_secs(5)).await.unwrap();
    assert!(next.data.contains("\"pending\":7"), "{next:?}");
}

#[tokio::test]
async fn live_streams_beyond_the_cap_get_503_and_a_freed_slot_is_taken_again() {
    let app = spawn_app_with(TestDb::sqlite(), |config| config.sse_max_clients = Some(2)).await;
    let open = || app.client.get(app.url("/api/events")).send();
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(a.headers()["x-accel-buffering"], "no");
    let third = open().await.unwrap();
    assert_eq!(third.status(), 503);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams");
    drop(a);
    eventually(Duration::from_secs(5), || async {
        let again = open().await.unwrap();
        (again.status() == 200).then_some(()).ok_or(again.status())
    })
    .await;
    drop(b);
}

/// A raw connection to the app.
async fn connect(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.addr).await.unwrap()
}

/// Reads until the peer closes the connection (`true`), or `within` passes (`false`).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.header_read_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte every 400 ms, never the end of the head.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let mut buffer = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), slow.read(&mut buffer))
        .await
        .expect("the server closed the slow connection")
        .unwrap_or(0);
    let said = String::from_utf8_lossy(&buffer[..n]).to_string();
    assert!(n == 0 || said.starts_with("HTTP/1.1 408"), "{said}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.header_read_timeout = Duration::from_millis(1000);
    })
    .await;
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = idle.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "the idle connection stayed open"
    );
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_ends() {
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.max_http_connections = 2;
        config.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    // Two connections hold both slots (each has sent half a request).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&app).await;
        c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = app.url("/healthz");
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served beside two"
    );
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a slot was free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_header_timeout_and_free_their_slots() {
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.max_http_connections = 2;
        config.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    // Two sockets that connect and send nothing, and one that sends only the start of the
    // HTTP/2 preface: none may hold a slot for ever.
    let mut silent = [connect(&app).await, connect(&app).await];
    let mut preface = connect(&app).await;
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), reqwest::get(app.url("/healthz")))
        .await
        .expect("/healthz answered once the silent connections were closed")
        .unwrap()
        .status();
    assert_eq!(status, 200);
    for (i, socket) in silent
        .iter_mut()
        .chain(std::iter::once(&mut preface))
        .enumerate()
    {
        let mut buffer = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("the server closed silent connection {i}"))
            .unwrap_or(0);
        let said = String::from_utf8_lossy(&buffer[..n]).to_string();
        // Closed, or answered 408 (no head in time) or 400 (the preface is no HTTP/1.1).
        assert!(n == 0 || said.starts_with("HTTP/1.1 4"), "{said}");
    }
}

both_backends!(nul_in_a_read_filter_is_a_400_never_a_500, |db| {
    let app = spawn_app(db).await;
    for path in [
        "/api/jobs?q=a%00b",
        "/api/jobs?sync_type=%00",
        "/api/changes?entity=orders%00",
        "/api/jobs?q=%E2%80%AEevil",
    ] {
        let (status, body) = app.get_json_status(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("control"),
            "{path}: {body}"
        );
    }
    // The tasks view's server function (JSON arguments): the same 400.
    let response = app
        .client
        .post(app.url("/api/fn/list_jobs"))
        .json(
            &json!({ "query": { "state": "", "sync_type": "", "q": "a\u{0}", "source": "",
            "who": "", "since": "", "until": "", "before": "" }, "limit": 10 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("control"),
        "{body}"
    );
    // A body that is not its JSON (a form, as before it took JSON) is the caller's mistake: 400.
    let (status, body) = app
        .server_fn("list_jobs", &[("state", ""), ("q", "x"), ("limit", "10")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
});

both_backends!(
    bidi_and_format_characters_are_refused_in_names_and_record_ids,
    |db| {
        let app = spawn_app(db).await;
        // A right-to-left override makes "gnp.exe" read as "exe.png" on every page.
        let (status, body) = app
            .post_json(
                "/api/sync/customers",
                Some(json!({ "triggered_by": "eve\u{202e}gnp.exe" })),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        for id in ["a\u{1}b", "x\u{200b}y", "line\nbreak"] {
            let (status, body) = app
                .post_json(
                    "/api/jobs",
                    Some(json!({ "sync_type": "records", "records": [{ "id": id }] })),
                )
                .await;
            assert_eq!(status, 422, "{id:?}: {body}");
        }
    }
);

#[tokio::test]
async fn a_foreign_request_id_is_not_taken_as_is() {
    let app = spawn_app(TestDb::sqlite()).await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x\u{7f}".repeat(300).replace('\u{7f}', "y"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(id.len() <= 64, "{id}");
    // A short, plain id from a proxy is kept, so logs can be matched up.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "proxy-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "proxy-4711");
}

//! The connectors against real HTTP servers on 127.0.0.1 and real databases: the demo ERP, and
//! small axum servers that misbehave on purpose (5xx, 429, slow, malformed, refusing).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::helpers::{erp_listing, job_finished, run_sync, start_engine, tester, typed, TestDb};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use baton::{
    model::{ChangeKind, Job, JobState, LogLevel},
    server::{
        connectors::{
            call::{HttpCallConfig, HttpCallTask},
            command::{CommandConfig, CommandTask},
            export::{ExportConfig, ExportTarget, ExportTask, OnlyWhen},
            http::{AuthConfig, Connection, ConnectionConfig},
            pull::{HttpPullConfig, HttpPullTask, Paging},
        },
        demo_erp::{DemoErp, DemoErpSettings},
        engine::Engine,
        store::Store,
    },
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn connection(base: &str, tweak: impl FnOnce(&mut ConnectionConfig)) -> Arc<Connection> {
    let mut config = ConnectionConfig::new(base);
    tweak(&mut config);
    let mut connection = Connection::resolve("test", &config, &|name| {
        (name == "TEST_SECRET").then(|| "s3cr3t-token".to_string())
    })
    .unwrap();
    connection.backoff = Duration::from_millis(20);
    Arc::new(connection)
}

fn pull_config(entity: &str, path: &str, size: u32) -> HttpPullConfig {
    HttpPullConfig::new("test", path, entity)
        .pages_of(size)
        .incremental()
}

/// A job's stored log lines (the first 1,000).
async fn logs_of(engine: &Engine, job: &Job) -> Vec<baton::model::JobLogLine> {
    engine
        .logs(job.id.parse().unwrap(), None, 1000)
        .await
        .unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn demo(records: u32, latency: Duration) -> (Arc<DemoErp>, String) {
    let erp = DemoErp::new(DemoErpSettings {
        records,
        latency,
        ..Default::default()
    });
    let addr = erp
        .clone()
        .spawn("127.0.0.1:0".parse().unwrap(), CancellationToken::new())
        .await
        .unwrap();
    (erp, format!("http://{addr}/api"))
}

async fn stored(store: &Store, entity: &str) -> BTreeMap<String, Value> {
    store
        .live_records(entity)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, d)| (k, serde_json::from_str(&d).unwrap()))
        .collect()
}

/// The change set a job recorded, by kind.
async fn change_set(store: &Store, job: &Job) -> BTreeMap<&'static str, BTreeSet<String>> {
    let id: Uuid = job.id.parse().unwrap();
    let mut set: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for change in store
        .list_changes(None, Some(id), None, 100_000)
        .await
        .unwrap()
    {
        set.entry(change.change.as_str())
            .or_default()
            .insert(change.key);
    }
    set
}

/// The change set that turns `before` into `after`.
fn expected(
    before: &BTreeMap<String, Value>,
    after: &BTreeMap<String, Value>,
    removals: bool,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut set: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for (key, record) in after {
        match before.get(key) {
            None => set.entry("created").or_default().insert(key.clone()),
            Some(old) if old != record => set.entry("updated").or_default().insert(key.clone()),
            Some(_) => false,
        };
    }
    if removals {
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            set.entry("removed").or_default().insert(key.clone());
        }
    }
    set
}

both_backends!(
    full_then_incremental_pulls_find_exactly_what_changed,
    |db| {
        let store = db.store().await;
        let (erp, base) = demo(2_000, Duration::ZERO).await;
        let conn = connection(&base, |_| {});
        let incremental = pull_config("customers", "/customers", 300);
        let mut full = pull_config("customers", "/customers", 300);
        full.full_every = Duration::ZERO;
        let (engine, _events, stop) = start_engine(
            &store,
            vec![
                typed(
                    "customers",
                    Arc::new(HttpPullTask::new(incremental, conn.clone())),
                    1,
                ),
                typed(
                    "customers-full",
                    Arc::new(HttpPullTask::new(full, conn.clone())),
                    1,
                ),
            ],
        );

        // The first run has nothing to go on: a full pull, every record created.
        let first = run_sync(&engine, "customers").await;
        assert_eq!(first.state, JobState::Completed, "{first:?}");
        let result = first.result.clone().unwrap();
        assert_eq!(result["mode"], "full");
        assert_eq!(result["created"], 2000);
        assert_eq!(result["pages"], 7, "{result}");
        assert_eq!(
            stored(&store, "customers").await,
            erp_listing(&base, "customers").await
        );
        assert_eq!(change_set(&store, &first).await["created"].len(), 2000);

        // The ERP moves on; an incremental pull asks for what changed since the newest record seen.
        erp.tick();
        let before = stored(&store, "customers").await;
        let second = run_sync(&engine, "customers").await;
        let result = second.result.clone().unwrap();
        assert_eq!(result["mode"], "incremental", "{result}");
        assert_eq!(
            result["since"],
            first.result.as_ref().unwrap()["high_water"]
        );
        let after = erp_listing(&base, "customers").await;
        let want = expected(&before, &after, false);
        assert!(
            !want["created"].is_empty() && !want["updated"].is_empty(),
            "{want:?}"
        );
        assert_eq!(change_set(&store, &second).await, want);
        assert_eq!(result["created"], want["created"].len());
        assert_eq!(result["updated"], want["updated"].len());
        // Only the changed records were fetched.
        assert_eq!(
            result["records"],
            want["created"].len() + want["updated"].len()
        );

        // Another tick; a full pull also finds what disappeared (this tick's removals and the last's).
        erp.tick();
        let before = stored(&store, "customers").await;
        let third = run_sync(&engine, "customers-full").await;
        let result = third.result.clone().unwrap();
        assert_eq!(result["mode"], "full");
        let after = erp_listing(&base, "customers").await;
        let want = expected(&before, &after, true);
        assert_eq!(want["removed"].len(), 2, "{want:?}");
        assert_eq!(change_set(&store, &third).await, want);
        assert_eq!(result["removed"], 2);
        assert_eq!(
            result["unchanged"],
            after.len() - want["created"].len() - want["updated"].len()
        );
        assert_eq!(stored(&store, "customers").await, after);

        // The change set lists updated fields, and `GET /api/changes` reads it newest first.
        let changes = store
            .list_changes(Some("customers"), None, None, 5)
            .await
            .unwrap();
        assert_eq!(changes.len(), 5);
        assert!(changes.windows(2).all(|w| w[0].id > w[1].id));
        let updated = store
            .list_changes(
                Some("customers"),
                Some(third.id.parse().unwrap()),
                None,
                10_000,
            )
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.change == ChangeKind::Updated)
            .expect("an update");
        assert!(
            !updated.fields.is_empty() && updated.fields.iter().all(|f| f != "id"),
            "{updated:?}"
        );

        // Every page left a log line.
        let logs = logs_of(&engine, &third).await;
        assert!(
            logs.iter().any(|l| l.message.contains("page 7 (GET")),
            "{logs:?}"
        );
        stop.cancel();
    }
);

/// A server that answers `GET /items?page=N` from a script: per page, a list of answers used in
/// turn (the last one repeats). Records the time of every request.
#[derive(Clone, Default)]
struct Scripted {
    pages: Arc<Mutex<BTreeMap<u64, Vec<Reply>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

/// A request the scripted server saw: page, when, its Authorization header.
type Hit = (u64, Instant, Option<String>);

#[derive(Clone)]
enum Reply {
    Json(Value),
    Raw(StatusCode, Vec<(&'static str, String)>, String),
    Slow(Duration),
}

impl Scripted {
    fn page(&self, page: u64, replies: Vec<Reply>) -> &Self {
        self.pages.lock().unwrap().insert(page, replies);
        self
    }

    fn hits(&self, page: u64) -> Vec<Instant> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.0 == page)
            .map(|h| h.1)
            .collect()
    }

    async fn start(&self) -> String {
        async fn answer(
            State(s): State<Scripted>,
            headers: HeaderMap,
            Query(q): Query<BTreeMap<String, String>>,
        ) -> Response {
            let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            let n = {
                let mut hits = s.hits.lock().unwrap();
                hits.push((page, Instant::now(), auth));
                hits.iter().filter(|h| h.0 == page).count()
            };
            let reply = {
                let pages = s.pages.lock().unwrap();
                let replies = &pages[&page];
                replies[(n - 1).min(replies.len() - 1)].clone()
            };
            match reply {
                Reply::Json(body) => Json(body).into_response(),
                Reply::Raw(status, headers, body) => {
                    let mut response = (status, body).into_response();
                    for (k, v) in headers {
                        response.headers_mut().insert(k, v.parse().unwrap());
                    }
                    response
                }
                Reply::Slow(wait) => {
                    tokio::time::sleep(wait).await;
                    Json(json!({"data": []})).into_response()
                }
            }
        }
        let addr = serve(
            Router::new()
                .route("/items", get(answer))
                .with_state(self.clone()),
        )
        .await;
        format!("http://{addr}")
    }
}

fn items(range: std::ops::Range<u32>) -> Value {
    json!({ "data": range.map(|i| json!({"id": format!("i{i}"), "n": i})).collect::<Vec<_>>() })
}

/// An engine running `items`, a pull of `/items` (3 per page) from the scripted server.
async fn items_engine(store: &Store, server: &Scripted) -> (Engine, CancellationToken) {
    let conn = connection(&server.start().await, |_| {});
    let task = Arc::new(HttpPullTask::new(item_pull(3), conn));
    let (engine, _events, stop) = start_engine(store, vec![typed("items", task, 1)]);
    (engine, stop)
}

fn item_pull(size: u32) -> HttpPullConfig {
    let mut config = pull_config("items", "/items", size);
    config.incremental = None;
    config
}

both_backends!(
    a_5xx_and_a_429_are_tried_again_and_retry_after_is_honoured,
    |db| {
        let store = db.store().await;
        let server = Scripted::default();
        server
            .page(
                1,
                vec![
                    Reply::Raw(StatusCode::BAD_GATEWAY, vec![], "upstream down".into()),
                    Reply::Json(items(0..3)),
                ],
            )
            .page(
                2,
                vec![
                    Reply::Raw(
                        StatusCode::TOO_MANY_REQUESTS,
                        vec![("retry-after", "1".into())],
                        r#"{"error": "slow down"}"#.into(),
                    ),
                    Reply::Json(items(3..4)),
                ],
            );
        let (engine, stop) = items_engine(&store, &server).await;
        let job = run_sync(&engine, "items").await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.result.as_ref().unwrap()["created"], 4);
        assert_eq!(server.hits(1).len(), 2);
        let page2 = server.hits(2);
        assert_eq!(page2.len(), 2);
        assert!(
            page2[1] - page2[0] >= Duration::from_millis(950),
            "Retry-After: 1 was not waited for"
        );
        let logs = logs_of(&engine, &job).await;
        let warnings: Vec<_> = logs
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .map(|l| l.message.as_str())
            .collect();
        assert!(
            warnings[0].contains("502") && warnings[0].contains("upstream down"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("429") && warnings[1].contains("slow down"),
            "{warnings:?}"
        );
        stop.cancel();
    }
);

both_backends!(
    errors_that_persist_fail_the_job_with_a_message_and_apply_nothing_half,
    |db| {
        let store = db.store().await;
        let server = Scripted::default();
        server
            .page(1, vec![Reply::Json(items(0..3))])
            .page(
                2,
                vec![Reply::Raw(
                    StatusCode::OK,
                    vec![("content-type", "application/json".into())],
                    r#"{"data": [{"id": "x"#.into(),
                )],
            )
            .page(
                3,
                vec![Reply::Json(
                    json!({"data": [{"id": "a"}, {"id": "b"}, {"name": "no id"}]}),
                )],
            )
            .page(
                4,
                vec![Reply::Raw(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![],
                    "down".into(),
                )],
            )
            .page(
                5,
                vec![Reply::Raw(
                    StatusCode::NOT_FOUND,
                    vec![],
                    r#"{"message": "no such list"}"#.into(),
                )],
            )
            .page(6, vec![Reply::Slow(Duration::from_secs(5))])
            .page(
                7,
                vec![Reply::Raw(
                    StatusCode::FOUND,
                    vec![("location", "http://elsewhere.example/login".into())],
                    String::new(),
                )],
            );
        let base = server.start().await;
        let conn = connection(&base, |c| {
            c.retries = 1;
            c.timeout = Duration::from_millis(300);
        });
        let from = |page: u64| {
            let mut config = item_pull(3);
            config.paging = Paging::Page {
                param: "page".into(),
                size_param: "per_page".into(),
                size: 3,
                first: page,
            };
            config
        };
        let types = (2..=7)
            .map(|p| {
                typed(
                    &format!("from{p}"),
                    Arc::new(HttpPullTask::new(from(p), conn.clone())),
                    1,
                )
            })
            .chain([typed(
                "items",
                Arc::new(HttpPullTask::new(item_pull(3), conn.clone())),
                1,
            )])
            .collect();
        let (engine, _events, stop) = start_engine(&store, types);

        // Malformed JSON on page 2: page 1 stays applied, page 2 is not, the message names the page.
        let job = run_sync(&engine, "items").await;
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.unwrap();
        assert!(
            error.contains("page 2 (GET") && error.contains("not JSON"),
            "{error}"
        );
        assert_eq!(store.live_records("items").await.unwrap().len(), 3);

        // A record without its key: the whole page is refused, naming record and field.
        let job = run_sync(&engine, "from3").await;
        let error = job.error.unwrap();
        assert!(
            error.contains("page 1 (GET")
                && error.contains("page=3")
                && error.contains("record 2 has no usable `id`"),
            "{error}"
        );
        assert_eq!(
            store.live_records("items").await.unwrap().len(),
            3,
            "nothing of the bad page"
        );

        // A 5xx that persists: tried twice (retries = 1), then the attempt fails retryably.
        let job = run_sync(&engine, "from4").await;
        assert_eq!(job.state, JobState::Failed);
        assert!(job.error.as_deref().unwrap().contains("503"), "{job:?}");
        assert_eq!(server.hits(4).len(), 2);

        // A 4xx is not tried again; the server's message is kept.
        let job = run_sync(&engine, "from5").await;
        assert!(
            job.error
                .as_deref()
                .unwrap()
                .contains("404 Not Found: no such list"),
            "{job:?}"
        );
        assert_eq!(server.hits(5).len(), 1);

        // No answer within the timeout.
        let job = run_sync(&engine, "from6").await;
        assert!(
            job.error.as_deref().unwrap().contains("no answer within"),
            "{job:?}"
        );
        stop.cancel();
    }
);

both_backends!(
    a_cancelled_pull_stops_between_pages_and_keeps_whole_pages,
    |db| {
        let store = db.store().await;
        let (_erp, base) = demo(3_000, Duration::from_millis(80)).await;
        let conn = connection(&base, |_| {});
        let (engine, events, stop) = start_engine(
            &store,
            vec![typed(
                "customers",
                Arc::new(HttpPullTask::new(
                    pull_config("customers", "/customers", 100),
                    conn,
                )),
                1,
            )],
        );
        let mut feed = events.subscribe(None);
        let (job, _) = engine.request_sync("customers", tester()).await.unwrap();
        // Wait for a few pages, then cancel.
        loop {
            let Ok(event) = tokio::time::timeout(Duration::from_secs(10), feed.live.recv())
                .await
                .unwrap()
            else {
                continue; // lagged: later events follow
            };
            if let baton::model::EventKind::JobProgress(p) = &event.kind {
                if p.processed >= 300 {
                    break;
                }
            }
        }
        engine.cancel(job.id.parse().unwrap()).await.unwrap();
        let job = job_finished(&engine, &job.id).await;
        assert_eq!(job.state, JobState::Cancelled);
        let kept = store.live_records("customers").await.unwrap().len();
        assert!(
            (300..3_000).contains(&kept) && kept % 100 == 0,
            "whole pages only: {kept}"
        );
        stop.cancel();
    }
);

both_backends!(the_auth_secret_is_sent_and_never_stored, |db| {
    let store = db.store().await;
    let server = Scripted::default();
    server.page(
        1,
        vec![Reply::Raw(
            StatusCode::FORBIDDEN,
            vec![],
            "bad token Bearer s3cr3t-token".into(),
        )],
    );
    let base = server.start().await;
    let conn = connection(&base, |c| {
        c.auth = Some(AuthConfig {
            env: "TEST_SECRET".into(),
            header: "Authorization".into(),
            prefix: "Bearer ".into(),
        });
    });
    assert!(!format!("{conn:?}").contains("s3cr3t"));
    let (engine, _events, stop) = start_engine(
        &store,
        vec![typed(
            "items",
            Arc::new(HttpPullTask::new(item_pull(3), conn)),
            1,
        )],
    );
    let job = run_sync(&engine, "items").await;
    assert_eq!(
        server.hits.lock().unwrap()[0].2.as_deref(),
        Some("Bearer s3cr3t-token")
    );
    let error = job.error.clone().unwrap();
    assert!(
        error.contains("403") && error.contains("***") && !error.contains("s3cr3t"),
        "{error}"
    );
    let logs = logs_of(&engine, &job).await;
    assert!(
        logs.iter().all(|l| !l.message.contains("s3cr3t")),
        "{logs:?}"
    );
    // A missing variable stops start-up with its name.
    let err = Connection::resolve(
        "erp",
        &ConnectionConfig {
            auth: Some(AuthConfig {
                env: "BATON_NOT_SET_ANYWHERE".into(),
                header: "Authorization".into(),
                prefix: "Bearer ".into(),
            }),
            ..ConnectionConfig::new("http://127.0.0.1:9/")
        },
        &|_| None,
    )
    .unwrap_err();
    assert!(
        err.contains("BATON_NOT_SET_ANYWHERE") && err.contains("connections.erp.auth.env"),
        "{err}"
    );
    stop.cancel();
});

#[tokio::test]
async fn http_call_posts_with_the_token_and_takes_counts_and_warnings() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let seen = Arc::new(Mutex::new(Vec::<(Option<String>, Value)>::new()));
    let calls = Arc::new(AtomicU32::new(0));
    let router = Router::new()
        .route("/collect", post({
            let seen = seen.clone();
            move |headers: HeaderMap, Json(body): Json<Value>| async move {
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
                seen.lock().unwrap().push((auth, body));
                Json(json!({"processed": 110, "changes": 3, "errors": 0, "warnings": ["2 employees without contract"], "message": "snapshot collected"}))
            }
        }))
        .route("/refuse", post(|| async { (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": "unknown company"}))) }))
        .route("/flaky", post({
            let calls = calls.clone();
            move || async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "try later"})))
                } else {
                    (StatusCode::OK, Json(json!({"processed": 1})))
                }
            }
        }));
    let base = format!("http://{}", serve(router).await);
    let conn = connection(&base, |c| {
        c.retries = 0;
        c.auth = Some(AuthConfig {
            env: "TEST_SECRET".into(),
            header: "Authorization".into(),
            prefix: "Bearer ".into(),
        });
    });
    let call = |path: &str| HttpCallConfig {
        connection: "test".into(),
        path: path.into(),
        body: Some(json!({"source": "scheduler"})),
    };
    let (engine, _events, stop) = start_engine(
        &store,
        vec![
            typed(
                "collect",
                Arc::new(HttpCallTask::new(call("/collect"), conn.clone())),
                1,
            ),
            typed(
                "refuse",
                Arc::new(HttpCallTask::new(call("/refuse"), conn.clone())),
                3,
            ),
            typed(
                "flaky",
                Arc::new(HttpCallTask::new(call("/flaky"), conn.clone())),
                2,
            ),
        ],
    );
    let job = run_sync(&engine, "collect").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let result = job.result.unwrap();
    assert_eq!(
        (result["processed"].as_u64(), result["changes"].as_u64()),
        (Some(110), Some(3))
    );
    assert_eq!(job.warnings, ["2 employees without contract"]);
    let (auth, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(auth.as_deref(), Some("Bearer s3cr3t-token"));
    assert_eq!(body["source"], "scheduler");
    assert_eq!(body["job_id"], job.id);

    // A 4xx fails at once, whatever attempts are left, with the server's message.
    let job = run_sync(&engine, "refuse").await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1));
    assert!(job
        .error
        .unwrap()
        .contains("422 Unprocessable Entity: unknown company"));

    // A 5xx is retryable: the second attempt succeeds.
    let job = run_sync(&engine, "flaky").await;
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Completed, 2),
        "{job:?}"
    );
    stop.cancel();
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> CommandConfig {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    CommandConfig {
        program: "/bin/sh".into(),
        args: vec![path.display().to_string()],
        env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        dir: Some(dir.to_path_buf()),
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn commands_report_progress_log_their_output_and_are_judged_by_exit_code() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Secrets of connections and Baton's own settings stay out of the program's environment.
    std::env::set_var("TEST_HIDDEN_SECRET", "xyz");
    std::env::set_var("BATON_TEST_MARKER", "xyz");
    let ok = script(d, "ok.sh", "echo \"$GREETING from $BATON_JOB_ID\"\necho 'PROGRESS 1/4 reading'\necho 'PROGRESS 4/4 done'\necho 'a warning' >&2\nprintf 'caf\\351\\n'\necho \"secret=${TEST_HIDDEN_SECRET:-gone} baton=${BATON_TEST_MARKER:-gone}\"\nexit 0");
    let leftover = script(
        d,
        "leftover.sh",
        "sleep 30 &\necho 'started a helper'\nexit 0",
    );
    let bad = script(
        d,
        "bad.sh",
        "echo 'starting'\necho 'cannot open ledger.csv' >&2\nexit 3",
    );
    let again = script(d, "again.sh", "echo 'locked, later' >&2\nexit 75");
    let mut slow = script(d, "slow.sh", "echo $$ > slow.pid\nsleep 30");
    slow.timeout = Duration::from_millis(400);
    let stuck = script(
        d,
        "stuck.sh",
        "sleep 30 &\necho $! > stuck.child\necho $$ > stuck.pid\nwait",
    );
    let missing = CommandConfig {
        program: d.join("nope").display().to_string(),
        ..ok.clone()
    };
    let types = [
        ("ok", ok),
        ("bad", bad),
        ("again", again),
        ("slow", slow),
        ("stuck", stuck),
        ("missing", missing),
        ("leftover", leftover),
    ]
    .into_iter()
    .map(|(name, config)| {
        typed(
            name,
            Arc::new(CommandTask::new(config, vec!["TEST_HIDDEN_SECRET".into()])),
            2,
        )
    })
    .collect();
    let (engine, _events, stop) = start_engine(&store, types);

    let job = run_sync(&engine, "ok").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!((job.processed, job.total, job.progress), (4, Some(4), 100));
    let logs = logs_of(&engine, &job).await;
    let lines: Vec<_> = logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    // stdout and stderr are two pipes: their lines interleave as they are read.
    let stdout: Vec<_> = lines.iter().filter(|l| l.0 == LogLevel::Info).collect();
    assert_eq!(stdout[0].1, format!("hello from {}", job.id));
    assert!(lines.contains(&(LogLevel::Warn, "a warning")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.1.starts_with("PROGRESS")),
        "progress lines are not log lines"
    );
    assert!(
        lines.contains(&(LogLevel::Info, "caf\u{FFFD}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogLevel::Info, "secret=gone baton=gone")),
        "{lines:?}"
    );

    // The program exits but leaves a child holding its output: done after a short drain, and
    // the child is killed.
    let job = run_sync(&engine, "leftover").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let logs = logs_of(&engine, &job).await;
    assert!(
        logs.iter()
            .any(|l| l.message.contains("kept its output open")),
        "{logs:?}"
    );

    // Exit 3: failed for good, with the last stderr line; not tried again.
    let job = run_sync(&engine, "bad").await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1));
    assert_eq!(
        job.error.as_deref(),
        Some("`/bin/sh` exited with 3: cannot open ledger.csv")
    );

    // Exit 75: tried again, then failed when the attempts run out.
    let job = run_sync(&engine, "again").await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 2), "{job:?}");

    // Timeout: killed, and the process is gone.
    let job = run_sync(&engine, "slow").await;
    assert!(
        job.error
            .as_deref()
            .unwrap()
            .contains("longer than its timeout"),
        "{job:?}"
    );
    let pid = std::fs::read_to_string(d.join("slow.pid")).unwrap();
    assert!(!alive(pid.trim()), "the timed-out program still runs");

    // Cancel: the program and its children (its process group) are killed.
    let (job, _) = engine.request_sync("stuck", tester()).await.unwrap();
    let id: Uuid = job.id.parse().unwrap();
    while !d.join("stuck.pid").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.cancel(id).await.unwrap();
    let job = job_finished(&engine, &job.id).await;
    assert_eq!(job.state, JobState::Cancelled);
    let pid = std::fs::read_to_string(d.join("stuck.pid")).unwrap();
    let pid = pid.trim();
    // SIGKILL is delivered at once, but a process is gone only once it is reaped; allow that.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pid).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the cancelled program still runs");
    assert_eq!(
        group_members(pid),
        Vec::<String>::new(),
        "its children still run"
    );

    // A program that does not exist fails at once, naming it.
    let job = run_sync(&engine, "missing").await;
    assert_eq!(job.attempt, 1);
    assert!(
        job.error.as_deref().unwrap().contains("could not start"),
        "{job:?}"
    );
    stop.cancel();
}

/// The live (not zombie) processes of process group `pgid`.
fn group_members(pgid: &str) -> Vec<String> {
    let out = std::process::Command::new("ps")
        .args(["-eo", "pid=,pgid=,stat="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (pid, group, stat) = (fields.next()?, fields.next()?, fields.next()?);
            (group == pgid && !stat.starts_with('Z')).then(|| pid.to_string())
        })
        .collect()
}

fn alive(pid: &str) -> bool {
    std::process::Command::new("kill")
        .args(["-0", pid])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

both_backends!(export_marks_only_what_the_erp_accepted, |db| {
    let store = db.store().await;
    let (erp, base) = demo(1_000, Duration::ZERO).await;
    let conn = connection(&base, |c| c.retries = 0);
    let mut orders_pull = pull_config("orders", "/orders", 500);
    orders_pull.incremental = None;
    let refusing = format!(
        "http://{}",
        serve(Router::new().route(
            "/orders/import",
            post(|| async {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({"error": "order O000001: unknown VAT code"})),
                )
            })
        ))
        .await
    );
    let refusing = connection(&refusing, |c| c.retries = 0);
    let export = |target: ExportTarget| ExportConfig {
        entity: "orders".into(),
        only: Some(OnlyWhen {
            field: "status".into(),
            value: "ready".into(),
        }),
        batch: 40,
        target,
    };
    let http = ExportTarget::Http {
        connection: "test".into(),
        path: "/orders/import".into(),
    };
    let outbox = tempfile::tempdir().unwrap();
    let csv = ExportTarget::Csv {
        dir: outbox.path().join("outbox"),
        columns: vec!["id".into(), "customer_id".into(), "lines".into()],
        formulas: false,
    };
    let (engine, _events, stop) = start_engine(
        &store,
        vec![
            typed(
                "orders",
                Arc::new(HttpPullTask::new(orders_pull, conn.clone())),
                1,
            ),
            typed(
                "export-refused",
                Arc::new(ExportTask::new(export(http.clone()), Some(refusing))),
                1,
            ),
            typed(
                "export-orders",
                Arc::new(ExportTask::new(export(http), Some(conn.clone()))),
                1,
            ),
            typed(
                "export-csv",
                Arc::new(ExportTask::new(export(csv), None)),
                1,
            ),
        ],
    );
    assert_eq!(run_sync(&engine, "orders").await.state, JobState::Completed);
    let ready: Vec<String> = erp_listing(&base, "orders")
        .await
        .into_iter()
        .filter(|(_, o)| o["status"] == "ready")
        .map(|(k, _)| k)
        .collect();
    assert!(
        ready.len() > 40,
        "the demo has orders ready: {}",
        ready.len()
    );
    let selection = |target| baton::server::store::ExportSelection {
        entity: "orders",
        target,
        only: Some(("status", "ready")),
    };

    // Refused: the job fails with the ERP's message and nothing is marked exported.
    let job = run_sync(&engine, "export-refused").await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("unknown VAT code"));
    assert_eq!(
        store
            .count_ready(&selection("export-refused"))
            .await
            .unwrap(),
        ready.len() as u64
    );

    // Accepted: every ready order sent once, in batches, and marked.
    let job = run_sync(&engine, "export-orders").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.result.unwrap()["exported"], ready.len());
    assert_eq!(erp.imported_orders(), ready.len());
    assert_eq!(
        store
            .count_ready(&selection("export-orders"))
            .await
            .unwrap(),
        0
    );
    // Nothing new: a second run exports nothing.
    let job = run_sync(&engine, "export-orders").await;
    assert_eq!(job.result.unwrap()["exported"], 0);

    // CSV: files appear whole, a header and one row per order.
    let job = run_sync(&engine, "export-csv").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let mut rows = 0;
    for file in std::fs::read_dir(outbox.path().join("outbox")).unwrap() {
        let path = file.unwrap().path();
        assert_eq!(
            path.extension().unwrap(),
            "csv",
            "no partial file left: {path:?}"
        );
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["id", "customer_id", "lines"]
        );
        for row in reader.records() {
            let row = row.unwrap();
            assert!(ready.contains(&row[0].to_string()));
            assert!(
                row[2].starts_with('['),
                "nested values as JSON: {}",
                &row[2]
            );
            rows += 1;
        }
    }
    assert_eq!(rows, ready.len());
    stop.cancel();
});

#[tokio::test]
async fn the_demo_erp_refuses_bad_paging_and_bad_orders_with_clear_messages() {
    let (erp, base) = demo(100, Duration::ZERO).await;
    let client = reqwest::Client::new();
    for (query, status, says) in [
        ("/customers?per_page=5000", 400, "1 to 1000"),
        ("/customers?page=0", 400, "counts from 1"),
        ("/customers?page=x", 400, "whole number"),
        ("/customers?updated_since=yesterday", 400, "RFC 3339"),
        ("/widgets", 404, "customers, products"),
    ] {
        let response = client.get(format!("{base}{query}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    // Cursor paging walks the same records as page paging.
    let mut cursor = String::new();
    let mut seen = 0;
    loop {
        let body: Value = client
            .get(format!("{base}/products?limit=30&cursor={cursor}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += body["data"].as_array().unwrap().len();
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, 100);
    for (body, says) in [
        (json!({"id": 1}), "array"),
        (json!([{"lines": []}]), "order 0 has no `id`"),
        (json!([{"id": "O1"}]), "no `lines`"),
    ] {
        let response = client
            .post(format!("{base}/orders/import"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let answer: Value = client
        .post(format!("{base}/orders/import"))
        .json(&json!([{"id": "O1", "lines": []}, {"id": "O1", "lines": []}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(erp.imported_orders(), 1);

    // A planned outage: the next request to the path gets the status, the one after is served.
    let planned = client
        .post(format!("{base}/_outage"))
        .json(&json!({"path": "/api/products", "status": 422, "requests": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(planned.status(), 200);
    let failed = client.get(format!("{base}/products")).send().await.unwrap();
    assert_eq!(failed.status(), 422);
    let body: Value = failed.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("planned outage"),
        "{body}"
    );
    assert_eq!(
        client
            .get(format!("{base}/customers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/products"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for (body, says) in [
        (
            json!({"path": "/api/products", "status": 200}),
            "400 to 599",
        ),
        (json!({"path": "/elsewhere"}), "demo ERP's routes"),
        (json!({"path": "/api/_tick"}), "demo ERP's routes"),
        (json!({"path": "/api/customer"}), "not /api/customer"),
        (json!({"path": "/api/customers?page=2"}), "without a query"),
        (
            json!({"path": "/api/customers", "requests": 0}),
            "at least 1",
        ),
        (json!({"status": 500}), "missing field `path`"),
    ] {
        let response = client
            .post(format!("{base}/_outage"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
}

both_backends!(
    out_of_the_box_the_built_in_types_sync_the_demo_erp_over_http,
    |db| {
        let app = crate::helpers::spawn_app_with(db, |config| {
            config.demo_erp_records = 1_200;
            config.demo_erp_latency = Duration::ZERO;
            config.poll_interval = Duration::from_millis(50);
        })
        .await;
        let info: Value = app.get("/api/info").await.json().await.unwrap();
        let demo = info["demo_erp"]
            .as_str()
            .expect("demo mode without [connections]");
        assert!(demo.starts_with("http://127.0.0.1:"), "{info}");

        let started: Value = app
            .client
            .post(app.url("/api/sync/customers"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = started["job_id"].as_str().unwrap().to_string();
        let job = job_finished(&app.state.engine, &id).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.result.as_ref().unwrap()["created"], 1200);
        assert_eq!(
            job.message.as_deref(),
            Some("1200 customers: 1200 created, 0 updated, 0 removed")
        );

        // Its log, in pages.
        let logs: Value = app
            .get(&format!("/api/jobs/{id}/logs?limit=2"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(logs["lines"].as_array().unwrap().len(), 2);
        assert_eq!(logs["lines"][0]["message"], "full pull of customers");
        let after = logs["next_after"].as_i64().unwrap();
        assert_eq!(Some(after), logs["lines"][1]["id"].as_i64());
        let rest: Value = app
            .get(&format!("/api/jobs/{id}/logs?after={after}"))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            rest["lines"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("page 2 (GET"),
            "{rest}"
        );

        // The change set, newest first, in pages.
        let page: Value = app
            .get("/api/changes?entity=customers&limit=10")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["changes"].as_array().unwrap().len(), 10);
        assert_eq!(page["changes"][0]["change"], "created");
        assert_eq!(page["changes"][0]["job_id"], id);
        let before = page["next_before"].as_i64().unwrap();
        let next: Value = app
            .get(&format!(
                "/api/changes?entity=customers&limit=10&before={before}"
            ))
            .await
            .json()
            .await
            .unwrap();
        assert!(next["changes"][0]["id"].as_i64().unwrap() < before);
        let none: Value = app
            .get("/api/changes?entity=invoices")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(none["changes"], json!([]));

        // Bad input: a clear 400 or 404, naming what is wrong.
        for (path, status, says) in [
            (
                format!("/api/jobs/{}/logs", Uuid::now_v7()),
                404,
                "there is no job",
            ),
            (format!("/api/jobs/{id}/logs?after=1.2"), 400, "next_after"),
            (format!("/api/jobs/{id}/logs?limit=0"), 400, "limit"),
            ("/api/jobs/nope/logs".to_string(), 400, "not a job id"),
            (
                "/api/changes?before=yesterday".to_string(),
                400,
                "next_before",
            ),
            ("/api/changes?job_id=7".to_string(), 400, "not a job id"),
            ("/api/changes?limit=5000".to_string(), 400, "1 to 1000"),
        ] {
            let response = app.get(&path).await;
            assert_eq!(response.status().as_u16(), status, "{path}");
            let body: Value = response.json().await.unwrap();
            assert!(
                body["message"].as_str().unwrap().contains(says),
                "{path}: {body}"
            );
        }

        // Exports are not part of a full sync; they run when asked.
        let full: Value = app
            .client
            .post(app.url("/api/sync/full"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let types: Vec<_> = full["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["sync_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "orders",
                "customers",
                "ddt",
                "invoices",
                "prices",
                "products"
            ]
        );
        app.shutdown().await;
    }
);

#[tokio::test]
async fn a_chatty_command_keeps_its_first_thousand_lines_and_counts_the_rest() {
    let db = crate::helpers::TestDb::sqlite();
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let chatty = script(
        dir.path(),
        "chatty.sh",
        "i=0\nwhile [ $i -lt 1500 ]; do echo \"line $i\"; i=$((i+1)); done",
    );
    let (engine, events, stop) = start_engine(
        &store,
        vec![typed(
            "chatty",
            Arc::new(CommandTask::new(chatty, Vec::new())),
            1,
        )],
    );
    let mut feed = events.subscribe(None);
    let job = run_sync(&engine, "chatty").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let lines = logs_of(&engine, &job).await;
    assert_eq!(lines.len(), 1000);
    assert_eq!(
        (lines[0].message.as_str(), lines[999].message.as_str()),
        ("line 0", "line 999")
    );
    let rest = engine
        .logs(job.id.parse().unwrap(), lines[999].id, 1000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].message,
        "500 more lines were not kept (an attempt keeps its first 1000)"
    );
    // The kept lines went out live as they came.
    let mut live = 0;
    while let Ok(event) = feed.live.try_recv() {
        if let baton::model::EventKind::JobLog(line) = &event.kind {
            assert_eq!(line.job_id, job.id);
            live += 1;
        }
    }
    assert_eq!(live, 1000);
    stop.cancel();
}

both_backends!(
    pages_continue_to_the_reported_total_and_an_empty_answer_removes_nothing,
    |db| {
        let store = db.store().await;
        let server = Scripted::default();
        // Asked for 3 per page, the server gives 2 (its own cap) but says there are 5.
        let page = |range: std::ops::Range<u32>| {
            let mut body = items(range);
            body["total"] = json!(5);
            Reply::Json(body)
        };
        server
            .page(
                1,
                vec![page(0..2), Reply::Json(json!({"data": [], "total": 0}))],
            )
            .page(2, vec![page(2..4)])
            .page(3, vec![page(4..5)]);
        let (engine, stop) = items_engine(&store, &server).await;
        let job = run_sync(&engine, "items").await;
        assert_eq!(job.result.as_ref().unwrap()["created"], 5, "{job:?}");
        assert_eq!(store.live_records("items").await.unwrap().len(), 5);

        // The next full pull gets an empty answer: that looks like a broken source, not an empty
        // one, so nothing is marked removed, and the job says so.
        let job = run_sync(&engine, "items").await;
        assert_eq!(job.state, JobState::Completed);
        assert_eq!(job.result.as_ref().unwrap()["removed"], 0);
        assert!(job.warnings[0].contains("returned no items"), "{job:?}");
        assert_eq!(store.live_records("items").await.unwrap().len(), 5);
        stop.cancel();
    }
);

// Bounded upstream answers.

#[tokio::test]
async fn an_answer_past_max_response_bytes_ends_the_attempt_naming_the_key() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let server = Scripted::default();
    let big: Vec<Value> = (0..2_000)
        .map(|i| json!({"id": format!("i{i}"), "pad": "p".repeat(1000)}))
        .collect();
    server.page(1, vec![Reply::Json(json!({ "data": big }))]);
    let conn = connection(&server.start().await, |c| c.max_response_bytes = 1_000_000);
    let task = Arc::new(HttpPullTask::new(item_pull(3), conn));
    let (engine, _events, stop) = start_engine(&store, vec![typed("items", task, 3)]);
    let job = run_sync(&engine, "items").await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1), "{job:?}");
    let error = job.error.unwrap();
    assert!(
        error.contains("larger than 1000000 bytes") && error.contains("max_response_bytes"),
        "{error}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_huge_error_answer_is_read_in_part_and_quoted_short() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let server = Scripted::default();
    server.page(
        1,
        vec![Reply::Raw(
            StatusCode::BAD_REQUEST,
            vec![],
            "A".repeat(5_000_000),
        )],
    );
    let (engine, stop) = items_engine(&store, &server).await;
    let job = run_sync(&engine, "items").await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(error.len() < 700, "{} bytes", error.len());
    assert!(error.contains("AAAA") && error.ends_with('…'), "{error}");
    stop.cancel();
}

#[tokio::test]
async fn a_cursor_that_comes_again_stops_the_pull() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let server = Scripted::default();
    // Every page says "next: c1", for ever.
    server.page(
        1,
        vec![Reply::Json(
            json!({ "data": [{"id": "i1"}, {"id": "i2"}, {"id": "i3"}], "next_cursor": "c1" }),
        )],
    );
    let conn = connection(&server.start().await, |_| {});
    let mut pull = item_pull(3);
    pull.paging = Paging::Cursor {
        param: "cursor".into(),
        size_param: "limit".into(),
        size: 3,
        next: "/next_cursor".into(),
    };
    let task = Arc::new(HttpPullTask::new(pull, conn));
    let (engine, _events, stop) = start_engine(&store, vec![typed("items", task, 1)]);
    let job = run_sync(&engine, "items").await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert!(
        job.error
            .as_deref()
            .unwrap()
            .contains("sent the cursor `c1` again"),
        "{job:?}"
    );
    stop.cancel();
}

both_backends!(
    a_full_pull_that_sees_a_small_share_of_the_stored_records_removes_nothing,
    |db| {
        let store = db.store().await;
        let server = Scripted::default();
        server.page(
            1,
            vec![Reply::Json(items(0..100)), Reply::Json(items(0..10))],
        );
        let conn = connection(&server.start().await, |_| {});
        let task = Arc::new(HttpPullTask::new(item_pull(1000), conn));
        let (engine, _events, stop) = start_engine(&store, vec![typed("items", task, 1)]);
        let first = run_sync(&engine, "items").await;
        assert_eq!(first.result.unwrap()["created"], 100);
        let second = run_sync(&engine, "items").await;
        assert_eq!(second.state, JobState::Completed, "{second:?}");
        assert_eq!(second.result.unwrap()["removed"], 0);
        assert!(
            second.warnings.iter().any(|w| w.contains("removal_guard")),
            "{:?}",
            second.warnings
        );
        assert_eq!(store.live_records("items").await.unwrap().len(), 100);
        stop.cancel();
    }
);

#[tokio::test]
async fn a_job_keeps_its_first_hundred_warnings_and_counts_the_rest() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let warnings: Vec<String> = (0..500).map(|i| format!("warning {i}")).collect();
    let addr = serve(Router::new().route(
        "/collect",
        post(move || {
            let warnings = warnings.clone();
            async move { Json(json!({ "processed": 1, "warnings": warnings })) }
        }),
    ))
    .await;
    let conn = connection(&format!("http://{addr}"), |_| {});
    let call = HttpCallConfig {
        connection: "test".into(),
        path: "/collect".into(),
        body: None,
    };
    let (engine, _events, stop) = start_engine(
        &store,
        vec![typed("collect", Arc::new(HttpCallTask::new(call, conn)), 1)],
    );
    let job = run_sync(&engine, "collect").await;
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.warnings.len(), 101);
    assert_eq!(job.warnings[99], "warning 99");
    assert_eq!(
        job.warnings[100],
        "and 400 more warnings (see the job's log)"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_line_written_in_pieces_while_stderr_talks_arrives_whole() {
    // The output is read in one `select!` over stdout, stderr and the exit: a stdout line that
    // arrives in pieces must survive the other branches winning in between (a partly read line
    // was once dropped with its reading future, and the log showed its tail as a line).
    let db = TestDb::sqlite();
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        "pieces.sh",
        "(for i in $(seq 1 40); do printf aaaaaaaaaa; sleep 0.01; done; echo) &
         for i in $(seq 1 40); do echo err >&2; sleep 0.005; done
         wait
echo done
",
    );
    let (engine, _events, stop) = start_engine(
        &store,
        vec![typed(
            "pieces",
            Arc::new(CommandTask::new(command, vec![])),
            1,
        )],
    );
    let job = run_sync(&engine, "pieces").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let out: Vec<String> = logs_of(&engine, &job)
        .await
        .into_iter()
        .filter(|l| l.level == baton::model::LogLevel::Info)
        .map(|l| l.message)
        .collect();
    assert_eq!(out, ["a".repeat(400), "done".to_string()]);
    stop.cancel();
}

#[tokio::test]
async fn a_command_line_without_end_is_cut_not_held_whole() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let command = script(
        dir.path(),
        "long.sh",
        "head -c 20000000 /dev/zero | tr '\\0' 'a'\necho\necho done\n",
    );
    let (engine, _events, stop) = start_engine(
        &store,
        vec![typed(
            "long",
            Arc::new(CommandTask::new(command, vec![])),
            1,
        )],
    );
    let job = run_sync(&engine, "long").await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let lines = logs_of(&engine, &job).await;
    assert!(lines[0].message.len() <= 4100, "{}", lines[0].message.len());
    assert!(lines[0].message.ends_with('…'));
    assert!(lines.iter().any(|l| l.message == "done"), "{lines:?}");
    stop.cancel();
}

both_backends!(
    a_record_with_a_nul_is_reported_and_never_breaks_the_export_of_the_others,
    |db| {
        let store = db.store().await;
        let server = Scripted::default();
        server.page(
            1,
            vec![Reply::Json(json!({ "data": [
                {"id": "o1", "status": "ready", "note": "a\u{0}b"},
                {"id": "o2", "status": "ready", "note": "=HYPERLINK(\"http://x\",\"y\")"},
                {"id": "o3", "status": "ready", "note": "-1+1", "total": -5},
                {"id": "o4", "status": "ready", "note": "-2.50", "total": 7},
            ] }))],
        );
        let conn = connection(&server.start().await, |_| {});
        let mut orders = item_pull(100);
        orders.path = "/items".into();
        orders.entity = "orders".into();
        let outbox = tempfile::tempdir().unwrap();
        let export = ExportConfig {
            entity: "orders".into(),
            only: Some(OnlyWhen {
                field: "status".into(),
                value: "ready".into(),
            }),
            batch: 10,
            target: ExportTarget::Csv {
                dir: outbox.path().to_path_buf(),
                columns: vec!["id".into(), "note".into(), "total".into()],
                formulas: false,
            },
        };
        let (engine, _events, stop) = start_engine(
            &store,
            vec![
                typed("orders", Arc::new(HttpPullTask::new(orders, conn)), 1),
                typed("out", Arc::new(ExportTask::new(export, None)), 1),
            ],
        );
        assert_eq!(run_sync(&engine, "orders").await.state, JobState::Completed);
        // What a killed export left behind an hour ago is cleared by the next one.
        let stray = outbox
            .path()
            .join(".orders-20200101T000000-0123456789ab-001.csv.partial");
        std::fs::write(&stray, "id,note\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stray)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let job = run_sync(&engine, "out").await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert!(!stray.exists(), "an old partial file is removed");
        let files: Vec<_> = std::fs::read_dir(outbox.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        let text: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        // A cell that a spreadsheet would run as a formula is written as text.
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(text.contains("'-1+1"), "{text}");
        // Numbers stay numbers: a negative amount is not a formula.
        assert!(text.contains("o3,'-1+1,-5"), "{text}");
        assert!(text.contains("o4,-2.50,7"), "{text}");
        match db {
            crate::helpers::TestDb::Postgres { .. } => {
                assert_eq!(
                    job.result.unwrap()["exported"],
                    3,
                    "the NUL record is skipped"
                );
                assert!(
                    job.warnings.iter().any(|w| w.contains("NUL")),
                    "{:?}",
                    job.warnings
                );
            }
            crate::helpers::TestDb::Sqlite(_) => {
                assert_eq!(job.result.unwrap()["exported"], 4)
            }
        }
        stop.cancel();
    }
);

both_backends!(
    nul_in_an_answer_s_message_or_a_command_s_error_ends_the_job_normally,
    |db| {
        let store = db.store().await;
        let addr = serve(Router::new().route(
            "/collect",
            post(|| async {
                Json(json!({
                    "processed": 1,
                    "message": "half\u{0}way",
                    "warnings": ["w\u{0}1", "x".repeat(100_000)],
                }))
            }),
        ))
        .await;
        let conn = connection(&format!("http://{addr}"), |_| {});
        let call = HttpCallConfig {
            connection: "test".into(),
            path: "/collect".into(),
            body: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let failing = script(
            dir.path(),
            "fail.sh",
            "printf 'PROGRESS 1/2 a\\000b\\n'\nprintf 'broken\\000pipe\\n' >&2\nexit 3\n",
        );
        let (engine, _events, stop) = start_engine(
            &store,
            vec![
                typed("collect", Arc::new(HttpCallTask::new(call, conn)), 1),
                typed("fail", Arc::new(CommandTask::new(failing, vec![])), 1),
            ],
        );
        let job = run_sync(&engine, "collect").await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.attempt, 1, "{job:?}");
        let message = job.message.clone().unwrap_or_default();
        assert!(message.contains("half\u{fffd}way"), "{message}");
        assert!(
            job.warnings.iter().any(|w| w == "w\u{fffd}1"),
            "{:?}",
            job.warnings
        );
        // A warning is a sentence, not a document: long ones are cut.
        assert!(
            job.warnings.iter().all(|w| w.chars().count() <= 1001),
            "{:?}",
            job.warnings.iter().map(|w| w.len()).collect::<Vec<_>>()
        );
        let job = run_sync(&engine, "fail").await;
        assert_eq!((job.state, job.attempt), (JobState::Failed, 1), "{job:?}");
        let error = job.error.clone().unwrap_or_default();
        assert!(error.contains("broken\u{fffd}pipe"), "{error}");
        stop.cancel();
    }
);

#[tokio::test]
async fn secrets_in_a_query_or_echoed_at_the_cut_never_show() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let server = Scripted::default();
    // The answer echoes the token so that it straddles the 300 characters kept of it.
    server.page(
        1,
        vec![Reply::Raw(
            StatusCode::FORBIDDEN,
            vec![],
            format!("{}s3cr3t-token and more", "x".repeat(292)),
        )],
    );
    let base = server.start().await;
    let conn = connection(&base, |c| {
        c.auth = Some(AuthConfig {
            env: "TEST_SECRET".into(),
            header: "Authorization".into(),
            prefix: "Bearer ".into(),
        });
    });
    let mut config = item_pull(3);
    config.query.insert("api_key".into(), "hunter2-key".into());
    let (engine, _events, stop) = start_engine(
        &store,
        vec![typed("items", Arc::new(HttpPullTask::new(config, conn)), 1)],
    );
    let job = run_sync(&engine, "items").await;
    let error = job.error.clone().unwrap();
    assert!(error.contains("api_key=***"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert!(!error.contains("s3cr"), "{error}");
    let logs = logs_of(&engine, &job).await;
    assert!(
        logs.iter()
            .all(|l| !l.message.contains("hunter2") && !l.message.contains("s3cr")),
        "{logs:?}"
    );
    // A connection's Debug (what a panic or a log of it would print) hides its user info.
    let with_user = connection("http://robot:pa55word@127.0.0.1:9/api", |_| {});
    assert!(!format!("{with_user:?}").contains("pa55word"));
    stop.cancel();
}

#[tokio::test]
async fn a_source_that_ignores_the_page_number_stops_the_pull() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    // Whatever page is asked for, the same full page comes back.
    let addr = serve(Router::new().route(
        "/items",
        axum::routing::get(|| async {
            Json(json!({ "data": [{"id": "i1"}, {"id": "i2"}, {"id": "i3"}] }))
        }),
    ))
    .await;
    let conn = connection(&format!("http://{addr}"), |_| {});
    let task = Arc::new(HttpPullTask::new(item_pull(3), conn));
    let (engine, _events, stop) = start_engine(&store, vec![typed("items", task, 1)]);
    let job = tokio::time::timeout(Duration::from_secs(20), run_sync(&engine, "items"))
        .await
        .expect("the pull stopped instead of paging for ever");
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let error = job.error.clone().unwrap();
    assert!(error.contains("the same records as page 1"), "{error}");
    stop.cancel();
}

//! Test helpers: a fresh database per test (a SQLite file in a temp dir, or a new Postgres
//! database), `spawn_app()` serving the real router on 127.0.0.1:0, and an SSE reader.
//!
//! Postgres: `BATON_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it cannot be reached the Postgres tests fail, unless `BATON_TEST_POSTGRES=skip` says to
//! skip them; `.ci/test` sets that only outside CI and says so plainly.

use std::{net::SocketAddr, time::Duration};

use baton::server::{
    config::Config, startup::Application, state::AppState, store::DatabaseTarget, store::Store,
};
use futures::StreamExt;
use sqlx::{Connection, Executor, PgConnection};

/// The `baton` binary, with the developer's own `BATON_*` environment and `baton.toml` kept out.
pub fn baton_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_baton"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BATON_") {
            command.env_remove(key);
        }
    }
    command.env("BATON_CONFIG", "/dev/null");
    command
}

/// Reads a `baton serve` child's log until it says where it listens, and returns that address;
/// the rest of the log is drained in the background, so the child never blocks on a full pipe.
pub fn listening_addr(stderr: std::process::ChildStderr) -> String {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("baton serve exited before listening:\n{}", seen.join("\n"));
        };
        seen.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap()
                .to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    addr
}

/// The migration versions in `migrations/sqlite` (the same numbers as `migrations/postgres`),
/// in order: what a fresh database has applied.
pub fn migration_versions() -> Vec<i64> {
    let mut versions: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .split('_')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
    versions.sort();
    versions
}

/// The environment variable that points `baton serve` at this database.
pub fn database_env(db: &TestDb) -> (&'static str, String) {
    match db {
        TestDb::Sqlite(dir) => ("BATON_DATA_DIR", dir.path().display().to_string()),
        TestDb::Postgres { url, .. } => ("BATON_DATABASE_URL", url.clone()),
    }
}

/// A database that exists for one test and is removed after it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

/// The logs of the code under test, shown when `TEST_LOG` is set: its value is the filter
/// (`TEST_LOG=baton=debug`), `1` means `info`.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let filter = match filter.as_str() {
                "" | "1" | "true" => "info".to_string(),
                _ => filter,
            };
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestDb {
    pub fn sqlite() -> Self {
        init_logs();
        TestDb::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh Postgres database, or `None` when Postgres tests are explicitly skipped.
    pub async fn postgres() -> Option<Self> {
        init_logs();
        if std::env::var("BATON_TEST_POSTGRES").as_deref() == Ok("skip") {
            eprintln!("SKIPPED: Postgres test (BATON_TEST_POSTGRES=skip)");
            return None;
        }
        let admin_url = std::env::var("BATON_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "Postgres is not reachable at {admin_url} ({err}). Start it, point \
                 BATON_TEST_POSTGRES_URL at one, or set BATON_TEST_POSTGRES=skip to skip these tests"
            )
        });
        let name = format!("baton_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{admin_url}/{name}"),
        };
        Some(TestDb::Postgres {
            admin_url,
            name,
            url,
        })
    }

    pub fn target(&self) -> DatabaseTarget {
        match self {
            TestDb::Sqlite(dir) => DatabaseTarget::Sqlite(dir.path().join("baton.db")),
            TestDb::Postgres { url, .. } => DatabaseTarget::Postgres(url.clone()),
        }
    }

    /// A config that uses this database and a free port.
    pub fn config(&self) -> Config {
        let mut config = Config {
            addr: "127.0.0.1:0".parse().unwrap(),
            // Quiet by default; tests that need beats shorten it.
            heartbeat_interval: Duration::from_secs(3600),
            ..Config::default()
        };
        match self {
            TestDb::Sqlite(dir) => config.data_dir = dir.path().to_path_buf(),
            TestDb::Postgres { url, .. } => config.database_url = Some(url.clone()),
        }
        config
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.target(), 5).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; use a thread with its own to do async work.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                        let _ = admin
                            .execute(
                                format!("drop database if exists {name} with (force)").as_str(),
                            )
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs one test body against SQLite and against Postgres: `both_backends!(name, |db| { … })`.
macro_rules! both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $db = $crate::helpers::TestDb::sqlite();
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($db) = $crate::helpers::TestDb::postgres().await else {
                    return;
                };
                $body
            }
        }
    };
}

/// A running server on 127.0.0.1:0, with its state for white-box checks.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    /// Sends the admin token with every request.
    pub client: reqwest::Client,
    /// The admin API token the client sends.
    #[allow(dead_code)]
    pub token: String,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = db.config();
    tweak(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let state = app.state().clone();
    // `tests`, or on a database a test served before (a restart), a new name.
    let token = match state
        .auth
        .create_token(
            "tests",
            baton::model::Role::Admin,
            &baton::server::auth::Who::system("tests"),
        )
        .await
    {
        Ok(token) => token.secret,
        Err(_) => {
            let name = format!("tests-{}", uuid::Uuid::now_v7().simple());
            make_token(&state.auth, &name, baton::model::Role::Admin).await
        }
    };
    let server = tokio::spawn(app.run());
    TestApp {
        addr,
        state,
        client: client_with(&token),
        token,
        server,
        _db: db,
    }
}

/// A new API token of `role`, made as `baton token create` makes it.
pub async fn make_token(
    auth: &baton::server::auth::Auth,
    name: &str,
    role: baton::model::Role,
) -> String {
    auth.create_token(name, role, &baton::server::auth::Who::system("tests"))
        .await
        .expect("create a token")
        .secret
}

/// A client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A client with an admin token made in `db`'s database, for tests that start the `baton`
/// binary on it.
pub async fn admin_client(db: &TestDb) -> reqwest::Client {
    admin_client_at(&db.target()).await
}

/// A client with an admin token made in the database at `target` (migrated first).
pub async fn admin_client_at(target: &DatabaseTarget) -> reqwest::Client {
    let store = Store::connect(target, 2).await.expect("connect");
    store.migrate().await.expect("migrate");
    let auth = baton::server::auth::Auth::new(store.clone(), Default::default());
    let name = format!("tests-{}", uuid::Uuid::now_v7().simple());
    let token = make_token(&auth, &name, baton::model::Role::Admin).await;
    store.close().await;
    client_with(&token)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// `GET path`: the status and the JSON body (`null` when there is none).
    pub async fn get_json_status(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// `GET path`: the JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get_json_status(path).await.1
    }

    /// `POST path` with `body` as JSON (or no body): the status and the JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.post(self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// A new user `name` of `role`, signed in: their session cookie (`baton_session=…`).
    pub async fn sign_in(&self, name: &str, role: baton::model::Role) -> String {
        let password = format!("{name}-password");
        self.state
            .auth
            .add_user(
                name,
                role,
                &password,
                &baton::server::auth::Who::system("tests"),
            )
            .await
            .expect("add a user");
        let response = reqwest::Client::new()
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "username": name, "password": password }))
            .send()
            .await
            .expect("sign in");
        assert_eq!(response.status(), 200);
        response.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// Calls server function `endpoint` as a page does (a form post): the status and the JSON
    /// answer.
    pub async fn server_fn(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(&format!("/api/fn/{endpoint}")))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Cancels the root token, as SIGTERM does, waits for `run` to return Ok, and hands back the
    /// database so the test can look at what shutdown left in it.
    pub async fn shutdown(self) -> TestDb {
        let TestApp {
            state, server, _db, ..
        } = self;
        state.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("shutdown within 15 s")
            .expect("server task")
            .expect("run returned Ok");
        _db
    }
}

/// One server-sent event as it came over the wire.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseFrame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads frames from an `text/event-stream` response body.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next frame with data (comments and keep-alives are skipped); `None` when the stream
    /// ended. Panics after `wait` without one.
    pub async fn next(&mut self, wait: Duration) -> Option<SseFrame> {
        tokio::time::timeout(wait, self.next_inner())
            .await
            .expect("an SSE frame in time")
    }

    async fn next_inner(&mut self) -> Option<SseFrame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = SseFrame {
                    event: "message".into(),
                    ..Default::default()
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        frame.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        has_data = true;
                        frame.data.push_str(v.trim_start());
                    }
                }
                if has_data {
                    return Some(frame);
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// Engine settings for tests: short leases and polls, so a test never waits long.
pub fn engine_settings() -> baton::server::engine::EngineSettings {
    baton::server::engine::EngineSettings {
        workers: 2,
        lease_ttl: Duration::from_secs(2),
        lease_renew: Duration::from_millis(500),
        poll_interval: Duration::from_millis(50),
        retention_interval: Duration::from_secs(3600),
        cancel_grace: Duration::from_millis(500),
        progress_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

/// An engine over `store` running `types` with [`engine_settings`], started; stop it with the
/// returned token.
pub fn start_engine(
    store: &Store,
    types: Vec<baton::server::engine::types::SyncType>,
) -> (
    baton::server::engine::Engine,
    baton::server::events::EventBus,
    tokio_util::sync::CancellationToken,
) {
    let events = baton::server::events::EventBus::new(4096);
    let engine = baton::server::engine::Engine::new(
        store.clone(),
        events.clone(),
        uuid::Uuid::now_v7(),
        engine_settings(),
        types,
    );
    let stop = tokio_util::sync::CancellationToken::new();
    engine.start(stop.clone(), Duration::from_secs(5));
    (engine, events, stop)
}

/// A request from a person called "tester".
pub fn tester() -> baton::server::engine::Origin {
    baton::server::engine::Origin {
        source: baton::model::JobSource::Manual,
        triggered_by: Some("tester".into()),
        note: None,
        session_id: None,
    }
}

/// Polls `check` every 20 ms until it answers `Ok`, and returns what it gave. `within` bounds
/// the wait for safety only (tests never assert on time); past it, the test fails showing the
/// last `Err` (what was seen instead).
pub async fn eventually<T, E, F, Fut>(within: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if std::time::Instant::now() >= deadline => {
                panic!("never got there within {within:?}; last seen: {seen:#?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Waits until job `id` has ended, and returns it.
pub async fn job_finished(engine: &baton::server::engine::Engine, id: &str) -> baton::model::Job {
    let id: uuid::Uuid = id.parse().unwrap();
    eventually(Duration::from_secs(60), || async move {
        let job = engine.job(id).await.unwrap();
        if job.state.is_terminal() {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

/// A type running `task` with `attempts` attempts and tiny backoffs.
pub fn typed(
    name: &str,
    task: std::sync::Arc<dyn baton::server::engine::task::SyncTask>,
    attempts: u32,
) -> baton::server::engine::types::SyncType {
    let mut ty = baton::server::engine::types::SyncType::new(name, 1, true, task);
    ty.retry = baton::server::lifecycle::retry::RetryPolicy {
        max_attempts: attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    ty
}

/// Requests a run of `sync_type` and waits until it has ended.
pub async fn run_sync(
    engine: &baton::server::engine::Engine,
    sync_type: &str,
) -> baton::model::Job {
    let (job, _) = engine.request_sync(sync_type, tester()).await.unwrap();
    job_finished(engine, &job.id).await
}

/// What the demo ERP serves for `entity` now, by key, read page by page over HTTP.
pub async fn erp_listing(
    base: &str,
    entity: &str,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let client = reqwest::Client::new();
    let mut all = std::collections::BTreeMap::new();
    for page in 1.. {
        let body: serde_json::Value = client
            .get(format!("{base}/{entity}?page={page}&per_page=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = body["data"].as_array().unwrap();
        for record in data {
            all.insert(record["id"].as_str().unwrap().to_string(), record.clone());
        }
        if data.len() < 1000 {
            break;
        }
    }
    all
}

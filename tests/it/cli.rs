//! The `baton` binary as a user runs it: configuration errors, `migrate`, and `serve` stopped by
//! SIGTERM (clean) or SIGKILL (a crash), then started again on the same database.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::helpers::TestDb;

fn baton() -> Command {
    crate::helpers::baton_command()
}

/// A `baton serve` child on a free port, started with `env`.
pub(crate) struct Served {
    pub(crate) child: Child,
    /// The address from its "listening on" line.
    pub(crate) addr: String,
    /// Its log up to and including that line.
    log: Vec<String>,
    /// The rest of its stderr.
    pub(crate) rest: std::io::Lines<BufReader<std::process::ChildStderr>>,
}

/// Starts `baton serve` with `env` and waits until it listens.
pub(crate) fn spawn_serve(env: &[(&str, String)]) -> Served {
    let mut command = baton();
    command
        .arg("serve")
        .env("BATON_ADDR", "127.0.0.1:0")
        .env("BATON_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut rest = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr = loop {
        let line = rest
            .next()
            .expect("baton serve exited before listening")
            .unwrap();
        let addr = line.split("listening on http://").nth(1).map(|r| {
            r.split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap()
                .to_string()
        });
        log.push(line);
        if let Some(addr) = addr {
            break addr;
        }
    };
    Served {
        child,
        addr,
        log,
        rest,
    }
}

/// `baton serve` on `db`; returns the child and its address once it listens.
fn serve(db: &TestDb) -> (Child, String) {
    let env = match db {
        TestDb::Sqlite(dir) => ("BATON_DATA_DIR", dir.path().display().to_string()),
        TestDb::Postgres { url, .. } => ("BATON_DATABASE_URL", url.clone()),
    };
    let Served {
        child, addr, rest, ..
    } = spawn_serve(&[env]);
    // Keep draining its log so the child never blocks on a full pipe.
    std::thread::spawn(move || rest.for_each(drop));
    (child, addr)
}

fn signal(child: &Child, signal: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..150 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("baton did not exit within 15 s");
}

#[test]
fn a_malformed_address_stops_start_up_with_exit_2_naming_the_variable() {
    let output = baton()
        .arg("serve")
        .env("BATON_ADDR", "localhost:http")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BATON_ADDR"), "{stderr}");
}

#[test]
fn the_demo_erp_alone_listens_where_addr_says() {
    // `baton demo-erp --addr …` as the README shows it (it once panicked: the subcommand's
    // `--addr` and the global one shared a name).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = baton()
        .args([
            "demo-erp",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--records",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        line.trim(),
        format!("demo ERP listening on http://127.0.0.1:{port}/api"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A bad address: exit 2, naming the flag.
    let output = baton()
        .args(["demo-erp", "--addr", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--addr") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_database_scheme_is_refused_without_showing_the_password() {
    let output = baton()
        .args([
            "--database-url",
            "mysql://root:hunter2@localhost/baton",
            "migrate",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_config_file_that_does_not_exist_is_an_error() {
    let output = baton()
        .env("BATON_CONFIG", "/nonexistent/baton.toml")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/baton.toml"));
}

#[test]
fn a_config_file_with_a_bad_value_names_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baton.toml");
    std::fs::write(&file, "log_format = \"yaml\"\n").unwrap();
    let output = baton()
        .env("BATON_CONFIG", &file)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("log_format") && stderr.contains("yaml"),
        "{stderr}"
    );
}

#[test]
fn migrate_creates_the_sqlite_database_and_reports_the_applied_versions() {
    let dir = tempfile::tempdir().unwrap();
    let output = baton()
        .env("BATON_DATA_DIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let versions = crate::helpers::migration_versions();
    let applied = format!("{} migrations applied: {versions:?}", versions.len());
    assert!(stdout.contains(&applied), "{stdout}");
    assert!(dir.path().join("baton.db").is_file());
    // Again: nothing new, same answer.
    let again = baton()
        .env("BATON_DATA_DIR", dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(&applied));
}

#[test]
fn a_port_in_use_is_reported_with_the_address_and_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = baton()
        .arg("serve")
        .env("BATON_DATA_DIR", dir.path())
        .env("BATON_ADDR", taken.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BATON_ADDR"), "{stderr}");
    // The failed start left no process that looks running.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime.block_on(async {
        TestDb::Sqlite(dir)
            .store()
            .await
            .running_instances()
            .await
            .unwrap()
    });
    assert!(running.is_empty(), "{running:?}");
}

/// The instance id a running server reports on `/healthz`.
async fn instance_id(addr: &str) -> uuid::Uuid {
    let health: serde_json::Value = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["instance_id"].as_str().unwrap().parse().unwrap()
}

async fn check_stop_and_crash(db: TestDb) {
    // SIGTERM: a clean stop, recorded.
    let (mut child, addr) = serve(&db);
    let first = instance_id(&addr).await;
    signal(&child, libc::SIGTERM);
    assert!(wait(&mut child).success(), "SIGTERM is a clean exit");
    let store = db.store().await;
    assert!(store
        .instance(first)
        .await
        .unwrap()
        .unwrap()
        .stopped_at
        .is_some());

    // SIGKILL: nothing is recorded, and the next start works on the same database.
    let (mut child, addr) = serve(&db);
    let second = instance_id(&addr).await;
    signal(&child, libc::SIGKILL);
    wait(&mut child);
    let (mut child, addr) = serve(&db);
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let running = store.running_instances().await.unwrap();
    assert!(
        running.iter().any(|r| r.id == second),
        "the killed process left its row running"
    );
    assert_eq!(running.len(), 2, "the killed one and the new one");
    signal(&child, libc::SIGTERM);
    assert!(wait(&mut child).success());
}

both_backends!(
    serve_stops_cleanly_on_sigterm_and_starts_again_after_sigkill,
    |db| {
        check_stop_and_crash(db).await;
    }
);

/// Starts `baton serve` with `env`, stops it with SIGTERM once it listens, and returns its whole
/// log after checking the exit was clean.
fn startup_log(env: &[(&str, String)]) -> Vec<String> {
    let Served {
        mut child,
        mut log,
        rest,
        ..
    } = spawn_serve(env);
    signal(&child, libc::SIGTERM);
    log.extend(rest.map_while(Result::ok));
    assert!(wait(&mut child).success(), "{log:#?}");
    log
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let lines = startup_log(&[
        ("BATON_LOG_FORMAT", "json".into()),
        ("BATON_DATA_DIR", dir.path().display().to_string()),
    ]);
    assert!(lines.len() >= 3, "start, listening, stop: {lines:#?}");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            object["level"].is_string() && object["message"].is_string(),
            "{line}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.contains("listening on http://127.0.0.1:")));
}

#[tokio::test]
async fn a_database_password_never_reaches_the_log() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let TestDb::Postgres { url, .. } = &db else {
        unreachable!()
    };
    // The local server trusts connections, so any password is accepted: it only has to be hidden.
    let with_password = url.replacen(
        "postgres://postgres@",
        "postgres://postgres:pw-not-for-logs@",
        1,
    );
    assert_ne!(&with_password, url, "the test URL has the expected form");
    let lines = startup_log(&[("BATON_DATABASE_URL", with_password)]);
    let log = lines.join("\n");
    assert!(!log.contains("pw-not-for-logs"), "{log}");
    assert!(
        log.contains("postgres:***@"),
        "the URL is shown, redacted: {log}"
    );
}

#[test]
fn a_missing_ca_file_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baton.toml");
    std::fs::write(
        &file,
        "[connections.erp]\nbase_url = \"https://erp.example.com/api\"\n\
         tls = { ca_file = \"/nonexistent/ca.pem\" }\n",
    )
    .unwrap();
    let output = baton()
        .env("BATON_CONFIG", &file)
        .env("BATON_DATA_DIR", dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connections.erp.tls.ca_file") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn insecure_tls_is_logged_at_every_start_and_reported_by_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baton.toml");
    std::fs::write(
        &file,
        "[connections.erp]\nbase_url = \"https://erp.example.com/api\"\n\
         tls = { insecure = true }\n",
    )
    .unwrap();
    for _ in 0..2 {
        let mut served = spawn_serve(&[
            ("BATON_CONFIG", file.display().to_string()),
            ("BATON_DATA_DIR", dir.path().display().to_string()),
        ]);
        let log = served.log.join("\n");
        assert!(
            log.contains("TLS certificate verification is OFF for connection `erp`"),
            "{log}"
        );
        let client = crate::helpers::admin_client_at(
            &baton::server::store::DatabaseTarget::Sqlite(dir.path().join("baton.db")),
        )
        .await;
        let info: serde_json::Value = client
            .get(format!("http://{}/api/info", served.addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["insecure_tls"], serde_json::json!(["erp"]));
        signal(&served.child, libc::SIGTERM);
        assert!(wait(&mut served.child).success());
    }
}

//! TLS against real servers on 127.0.0.1: certificates made in each test (rcgen), the demo ERP
//! served over rustls with HTTP/2, a CONNECT proxy, and a Postgres cluster of the test's own
//! that only speaks TLS.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use crate::helpers::{run_sync, start_engine, typed, TestDb};
use axum::{extract::Request, middleware::Next, Router};
use baton::{
    model::JobState,
    server::{
        connectors::{
            call::{HttpCallConfig, HttpCallTask},
            export::{ExportConfig, ExportTarget, ExportTask, OnlyWhen},
            http::{Connection, ConnectionConfig},
            pull::{HttpPullConfig, HttpPullTask},
            tls::TlsConfig,
        },
        demo_erp::{DemoErp, DemoErpSettings},
        engine::types::SyncType,
        store::Store,
    },
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// A certificate authority of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
struct Issued {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    fn server(&self, names: &[&str]) -> Issued {
        self.issue(names, |_| {})
    }

    fn issue(&self, names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "baton test");
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A client certificate for mutual TLS.
    fn client(&self, name: &str) -> Issued {
        self.issue(&[], |p| {
            p.distinguished_name.push(DnType::CommonName, name);
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        })
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A server configuration offering HTTP/2 and HTTP/1.1, asking for a client certificate signed
/// by `client_ca` when given.
fn server_config(issued: &Issued, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued.cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
    // rustls is built with ring alone, so its default provider is ring.
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(roots.into())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What a TLS server saw: connections accepted, and the HTTP version of each request.
#[derive(Clone, Default)]
struct Seen {
    connections: Arc<AtomicUsize>,
    versions: Arc<Mutex<Vec<axum::http::Version>>>,
}

/// Serves `router` over TLS on 127.0.0.1 (HTTP/2 or HTTP/1.1, as the client chooses).
async fn serve_tls(router: Router, config: Arc<rustls::ServerConfig>) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let versions = seen.versions.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            versions.lock().unwrap().push(request.version());
            next.run(request)
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let connections = seen.connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (addr, seen)
}

/// The demo ERP (no latency, 1,200 records per entity), served over TLS with `issued`.
async fn erp_over_tls(issued: &Issued, client_ca: Option<&Ca>) -> (Arc<DemoErp>, u16, Seen) {
    let erp = DemoErp::new(DemoErpSettings {
        records: 1_200,
        latency: Duration::ZERO,
        ..Default::default()
    });
    let (addr, seen) = serve_tls(erp.clone().router(), server_config(issued, client_ca)).await;
    (erp, addr.port(), seen)
}

/// A connection named `erp` to `base` with `tls`.
fn connection(base: &str, tls: TlsConfig) -> Arc<Connection> {
    let mut config = ConnectionConfig::new(base);
    config.tls = tls;
    config.retries = 2;
    let mut connection = Connection::resolve("erp", &config, &|_| None).unwrap();
    connection.backoff = Duration::from_millis(20);
    Arc::new(connection)
}

fn customers_pull(connection: Arc<Connection>) -> SyncType {
    let pull = HttpPullConfig::new("erp", "/customers", "customers").pages_of(500);
    typed(
        "customers",
        Arc::new(HttpPullTask::new(pull, connection)),
        3,
    )
}

/// Pulls customers over `connection` on a fresh SQLite store; the finished job.
async fn pull_once(connection: Arc<Connection>) -> baton::model::Job {
    let db = TestDb::sqlite();
    let store = db.store().await;
    let (engine, _, stop) = start_engine(&store, vec![customers_pull(connection)]);
    let job = run_sync(&engine, "customers").await;
    stop.cancel();
    job
}

both_backends!(
    a_pull_over_https_with_ca_file_completes_with_exact_counts_over_http2,
    |db| {
        let store = db.store().await;
        let ca = Ca::new("Baton test CA");
        let files = tempfile::tempdir().unwrap();
        let (erp, port, seen) = erp_over_tls(&ca.server(&["localhost"]), None).await;
        let tls = TlsConfig {
            ca_file: Some(write(files.path(), "ca.pem", &ca.pem())),
            ..TlsConfig::default()
        };
        let conn = connection(&format!("https://localhost:{port}/api"), tls);
        let (engine, _, stop) = start_engine(&store, vec![customers_pull(conn)]);
        let job = run_sync(&engine, "customers").await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        let expected = erp.counts()["customers"];
        assert_eq!(job.result.as_ref().unwrap()["created"], expected, "{job:?}");
        assert_eq!(
            store.live_records("customers").await.unwrap().len(),
            expected
        );
        let versions = seen.versions.lock().unwrap().clone();
        assert!(!versions.is_empty());
        assert!(
            versions.iter().all(|v| *v == axum::http::Version::HTTP_2),
            "the server offers h2, so every request uses it: {versions:?}"
        );
        // A second run finds nothing new.
        let again = run_sync(&engine, "customers").await;
        assert_eq!(again.result.unwrap()["unchanged"], expected);
        stop.cancel();
    }
);

#[tokio::test]
async fn without_ca_file_an_unknown_issuer_fails_at_once_and_says_which_key_to_set() {
    let ca = Ca::new("Private CA");
    let (_erp, port, seen) = erp_over_tls(&ca.server(&["localhost"]), None).await;
    let conn = connection(
        &format!("https://localhost:{port}/api"),
        TlsConfig::default(),
    );
    let job = pull_once(conn).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(job.attempt, 1, "no retries of a certificate error: {job:?}");
    let error = job.error.unwrap();
    assert!(error.contains("unknown issuer"), "{error}");
    assert!(error.contains("tls = { ca_file"), "{error}");
    assert!(error.contains("[connections.erp]"), "{error}");
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "one handshake, no retry storm"
    );
}

#[tokio::test]
async fn a_ca_file_of_another_ca_is_named_in_the_error() {
    let (ca, other) = (Ca::new("Server CA"), Ca::new("Some other CA"));
    let files = tempfile::tempdir().unwrap();
    let (_erp, port, _) = erp_over_tls(&ca.server(&["localhost"]), None).await;
    let ca_file = write(files.path(), "other.pem", &other.pem());
    let conn = connection(
        &format!("https://localhost:{port}/api"),
        TlsConfig {
            ca_file: Some(ca_file.clone()),
            ..TlsConfig::default()
        },
    );
    let error = pull_once(conn).await.error.unwrap();
    assert!(error.contains("unknown issuer"), "{error}");
    assert!(error.contains(&ca_file.display().to_string()), "{error}");
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_naming_the_host() {
    let ca = Ca::new("Baton test CA");
    let files = tempfile::tempdir().unwrap();
    let (_erp, port, _) = erp_over_tls(&ca.server(&["erp.internal"]), None).await;
    let conn = connection(
        &format!("https://127.0.0.1:{port}/api"),
        TlsConfig {
            ca_file: Some(write(files.path(), "ca.pem", &ca.pem())),
            ..TlsConfig::default()
        },
    );
    let job = pull_once(conn).await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1), "{job:?}");
    let error = job.error.unwrap();
    assert!(
        error.contains("not valid for the host name `127.0.0.1`") && error.contains("erp.internal"),
        "{error}"
    );
}

#[tokio::test]
async fn an_expired_certificate_fails_saying_so() {
    let ca = Ca::new("Baton test CA");
    let files = tempfile::tempdir().unwrap();
    let expired = ca.issue(&["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    let (_erp, port, _) = erp_over_tls(&expired, None).await;
    let conn = connection(
        &format!("https://localhost:{port}/api"),
        TlsConfig {
            ca_file: Some(write(files.path(), "ca.pem", &ca.pem())),
            ..TlsConfig::default()
        },
    );
    let job = pull_once(conn).await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1), "{job:?}");
    let error = job.error.unwrap();
    assert!(error.contains("expired on 2020-01-01"), "{error}");
}

#[tokio::test]
async fn mutual_tls_works_with_the_client_certificate_and_says_what_is_missing_without() {
    let (server_ca, client_ca, stranger_ca) = (
        Ca::new("Server CA"),
        Ca::new("Client CA"),
        Ca::new("Stranger CA"),
    );
    let files = tempfile::tempdir().unwrap();
    let (erp, port, _) = erp_over_tls(&server_ca.server(&["localhost"]), Some(&client_ca)).await;
    let base = format!("https://localhost:{port}/api");
    let ca_file = write(files.path(), "ca.pem", &server_ca.pem());
    let mine = client_ca.client("baton");
    let with_cert = TlsConfig {
        ca_file: Some(ca_file.clone()),
        client_cert: Some(write(files.path(), "client.pem", &mine.cert)),
        client_key: Some(write(files.path(), "client.key", &mine.key)),
        insecure: false,
    };
    let job = pull_once(connection(&base, with_cert)).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.result.unwrap()["created"], erp.counts()["customers"]);

    let without = TlsConfig {
        ca_file: Some(ca_file.clone()),
        ..TlsConfig::default()
    };
    let job = pull_once(connection(&base, without)).await;
    assert_eq!((job.state, job.attempt), (JobState::Failed, 1), "{job:?}");
    let error = job.error.unwrap();
    assert!(
        error.contains("asks for a client certificate") && error.contains("client_cert"),
        "{error}"
    );

    let strangers = stranger_ca.client("someone");
    let refused = TlsConfig {
        ca_file: Some(ca_file),
        client_cert: Some(write(files.path(), "stranger.pem", &strangers.cert)),
        client_key: Some(write(files.path(), "stranger.key", &strangers.key)),
        insecure: false,
    };
    let error = pull_once(connection(&base, refused)).await.error.unwrap();
    assert!(
        error.contains("refused Baton's client certificate") && error.contains("stranger.pem"),
        "{error}"
    );
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let stranger = Ca::new("Nobody trusts me");
    let (_erp, port, _) = erp_over_tls(&stranger.server(&["elsewhere"]), None).await;
    let conn = connection(
        &format!("https://127.0.0.1:{port}/api"),
        TlsConfig {
            insecure: true,
            ..TlsConfig::default()
        },
    );
    assert!(conn.insecure());
    let job = pull_once(conn).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

both_backends!(http_call_and_an_http_export_work_over_https, |db| {
    let store = db.store().await;
    let ca = Ca::new("Baton test CA");
    let files = tempfile::tempdir().unwrap();
    let (erp, port, _) = erp_over_tls(&ca.server(&["localhost"]), None).await;
    let conn = connection(
        &format!("https://localhost:{port}/api"),
        TlsConfig {
            ca_file: Some(write(files.path(), "ca.pem", &ca.pem())),
            ..TlsConfig::default()
        },
    );
    let orders = HttpPullConfig::new("erp", "/orders", "orders").pages_of(500);
    let export = ExportConfig {
        entity: "orders".into(),
        only: Some(OnlyWhen {
            field: "status".into(),
            value: "ready".into(),
        }),
        batch: 100,
        target: ExportTarget::Http {
            connection: "erp".into(),
            path: "/orders/import".into(),
        },
    };
    let call = HttpCallConfig {
        connection: "erp".into(),
        path: "/employees/snapshot".into(),
        body: None,
    };
    let (engine, _, stop) = start_engine(
        &store,
        vec![
            typed(
                "orders",
                Arc::new(HttpPullTask::new(orders, conn.clone())),
                3,
            ),
            typed(
                "export-orders",
                Arc::new(ExportTask::new(export, Some(conn.clone()))),
                3,
            ),
            typed("snapshot", Arc::new(HttpCallTask::new(call, conn)), 3),
        ],
    );
    let call = run_sync(&engine, "snapshot").await;
    assert_eq!(call.state, JobState::Completed, "{call:?}");
    assert_eq!(call.result.unwrap()["status"], 200);
    assert_eq!(run_sync(&engine, "orders").await.state, JobState::Completed);
    let exported = run_sync(&engine, "export-orders").await;
    assert_eq!(exported.state, JobState::Completed, "{exported:?}");
    let sent = exported.result.unwrap()["exported"].as_u64().unwrap();
    assert!(sent > 0);
    assert_eq!(erp.imported_orders() as u64, sent);
    stop.cancel();
});

/// A forward proxy for `CONNECT host:port` tunnels; records each target.
async fn connect_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut line = String::new();
                client.read_line(&mut line).await.unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                }
                seen.lock().unwrap().push(format!(
                    "{} {target}",
                    line.split_whitespace().next().unwrap_or("")
                ));
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = client
                        .get_mut()
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                        .await;
                    return;
                };
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, targets)
}

#[tokio::test]
async fn a_connections_own_proxy_carries_its_https_requests() {
    let ca = Ca::new("Baton test CA");
    let files = tempfile::tempdir().unwrap();
    let (erp, port, _) = erp_over_tls(&ca.server(&["localhost"]), None).await;
    let (proxy, targets) = connect_proxy().await;
    let mut config = ConnectionConfig::new(format!("https://localhost:{port}/api"));
    config.tls.ca_file = Some(write(files.path(), "ca.pem", &ca.pem()));
    config.proxy = Some(format!("http://{proxy}"));
    let conn = Arc::new(Connection::resolve("erp", &config, &|_| None).unwrap());
    let job = pull_once(conn).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.result.unwrap()["created"], erp.counts()["customers"]);
    let targets = targets.lock().unwrap().clone();
    assert!(!targets.is_empty());
    assert!(
        targets
            .iter()
            .all(|t| *t == format!("CONNECT localhost:{port}")),
        "{targets:?}"
    );
}

#[test]
fn bad_tls_and_proxy_settings_are_refused_naming_the_key() {
    let files = tempfile::tempdir().unwrap();
    let ca = Ca::new("Baton test CA");
    let not_a_cert = write(files.path(), "notes.txt", "hello, I am not a certificate\n");
    let cert = ca.client("baton");
    let cert_file = write(files.path(), "client.pem", &cert.cert);
    let missing = files.path().join("missing.pem");
    let cases: Vec<(TlsConfig, Option<&str>, &str)> = vec![
        (
            TlsConfig {
                ca_file: Some(missing.clone()),
                ..Default::default()
            },
            None,
            "connections.erp.tls.ca_file: cannot read",
        ),
        (
            TlsConfig {
                ca_file: Some(not_a_cert.clone()),
                ..Default::default()
            },
            None,
            "connections.erp.tls.ca_file",
        ),
        (
            TlsConfig {
                client_cert: Some(cert_file.clone()),
                ..Default::default()
            },
            None,
            "connections.erp.tls.client_key: client_cert is set but client_key is not",
        ),
        (
            TlsConfig {
                client_cert: Some(cert_file.clone()),
                client_key: Some(not_a_cert.clone()),
                ..Default::default()
            },
            None,
            "connections.erp.tls.client_key",
        ),
        (
            TlsConfig::default(),
            Some("socks5://127.0.0.1:1080"),
            "connections.erp.proxy: must start with http:// or https://",
        ),
        (
            TlsConfig::default(),
            Some("not a url"),
            "connections.erp.proxy: not a URL",
        ),
    ];
    for (tls, proxy, expected) in cases {
        let mut config = ConnectionConfig::new("https://erp.example.com/api");
        config.tls = tls.clone();
        config.proxy = proxy.map(str::to_string);
        let err = Connection::resolve("erp", &config, &|_| None).unwrap_err();
        assert!(err.contains(expected), "{tls:?} {proxy:?}: {err}");
    }
}

/// A Postgres cluster of the test's own that accepts only TLS connections, with a certificate
/// for `localhost` signed by `ca`; stopped when dropped.
struct TlsPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TlsPostgres {
    /// `None` when this machine has no Postgres server programs and Postgres tests are skipped.
    fn start(ca: &Ca) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var("BATON_TEST_POSTGRES").as_deref() == Ok("skip"),
                "no Postgres server programs under /usr/lib/postgresql (Debian's postgresql \
                 package); set BATON_TEST_POSTGRES=skip to skip the Postgres tests"
            );
            eprintln!("SKIPPED: Postgres over TLS (no initdb)");
            return None;
        };
        // initdb refuses to run as root; the Debian package's `postgres` user runs it then.
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("baton-pg-tls")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let server = ca.server(&["localhost"]);
        let this = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let root = this.dir.path();
        write(root, "server.crt", &server.cert);
        write(root, "server.key", &server.key);
        this.chown_to_postgres(root);
        this.run(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]);
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 ssl = on\nssl_cert_file = '{}/server.crt'\nssl_key_file = '{}/server.key'\n\
                 fsync = off\n",
                root.display(),
                root.display(),
                root.display()
            ),
        )
        .unwrap();
        // TLS or nothing: a plain connection is refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        this.chown_to_postgres(root);
        let mut key = root.join("server.key").metadata().unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut key, 0o600);
        std::fs::set_permissions(root.join("server.key"), key).unwrap();
        this.run(&[
            "pg_ctl",
            "-D",
            data.to_str().unwrap(),
            "-l",
            root.join("log").to_str().unwrap(),
            "-w",
            "start",
        ]);
        Some(this)
    }

    fn chown_to_postgres(&self, path: &Path) {
        if self.as_postgres {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn run(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let output = if self.as_postgres {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(&args[1..])
                .output()
        } else {
            std::process::Command::new(&program)
                .args(&args[1..])
                .output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?{query}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run(&[
                "pg_ctl",
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
        }));
    }
}

#[tokio::test]
async fn the_store_runs_on_a_postgres_that_only_speaks_tls_with_verify_full() {
    if std::env::var("BATON_TEST_POSTGRES").as_deref() == Ok("skip") {
        eprintln!("SKIPPED: Postgres over TLS (BATON_TEST_POSTGRES=skip)");
        return;
    }
    let ca = Ca::new("Postgres test CA");
    let Some(pg) = TlsPostgres::start(&ca) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let ca_file = write(files.path(), "root.crt", &ca.pem());
    let url = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    ));
    let target = baton::server::store::DatabaseTarget::Postgres(url);
    let store = Store::connect(&target, 4).await.expect("connect over TLS");
    store.migrate().await.unwrap();
    exercise(&store).await;
    // The connection really is encrypted.
    let Store::Postgres(pools) = &store else {
        unreachable!()
    };
    let pool = &pools.main;
    let ssl: bool = sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(ssl);
    store.close().await;

    // verify-full with a root that did not sign the server's certificate: refused.
    let other = write(files.path(), "other.crt", &Ca::new("Another CA").pem());
    let wrong = baton::server::store::DatabaseTarget::Postgres(pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other.display()
    )));
    let err = Store::connect(&wrong, 1).await.unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // And without TLS the server refuses us.
    let plain = baton::server::store::DatabaseTarget::Postgres(pg.url("sslmode=disable"));
    assert!(Store::connect(&plain, 1).await.is_err());
}

/// The store's main paths: queue, claim, finish, sessions and the status table.
async fn exercise(store: &Store) {
    use baton::server::lifecycle::{apply, Holder, Transition};
    use baton::server::store::{ClaimScope, NewJob, NewSession, NewStatus, Outcome};
    let now = chrono::Utc::now();
    let job = NewJob {
        sync_type: "orders".into(),
        priority: 6,
        exclusive: true,
        max_attempts: 3,
        run_at: now,
        source: baton::model::JobSource::Api,
        triggered_by: Some("tls test".into()),
        note: None,
        session_id: None,
        retry_of: None,
        input: None,
    };
    let (row, _) = store.insert_job(&job, true).await.unwrap();
    let (again, deduplicated) = store.insert_job(&job, true).await.unwrap();
    assert!(deduplicated && again.id == row.id);
    let owner = uuid::Uuid::now_v7();
    let claimed = store
        .claim_jobs(
            owner,
            now,
            std::time::Duration::from_secs(30),
            ClaimScope {
                exclusive: true,
                shared: 2,
                hold: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let before = claimed[0].lifecycle();
    let next = apply(
        &before,
        Transition::Complete {
            holder: Holder {
                owner,
                attempt: before.attempt,
            },
        },
        chrono::Utc::now(),
    )
    .unwrap();
    let done = store
        .write_transition(row.id, &before, &next, &Outcome::default())
        .await
        .unwrap()
        .expect("the holder's write lands");
    assert_eq!(done.state, "completed");
    let session = uuid::Uuid::now_v7();
    store
        .insert_session(&NewSession {
            id: session,
            workflow: "daily-sync".into(),
            source: baton::model::JobSource::Manual,
            triggered_by: None,
            note: None,
            started_at: now,
        })
        .await
        .unwrap();
    store
        .append_status(&NewStatus {
            session_id: session,
            step: 1,
            name: "Import",
            status: baton::model::StepStatus::Processing,
            message: Some("over TLS"),
            details: &serde_json::json!({}),
        })
        .await
        .unwrap()
        .unwrap();
    let status = store.session_status(session).await.unwrap().unwrap();
    assert_eq!(status.steps[0].message.as_deref(), Some("over TLS"));
}

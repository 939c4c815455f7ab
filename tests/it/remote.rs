//! The remote commands of the `baton` binary (`trigger`, `status`, `jobs`, `logs`, `cancel`,
//! `retry`, `completions`) against a real server on 127.0.0.1: what they print, the exit code of
//! each ending, and the error a person gets for each thing that can be wrong.

use std::time::Duration;

use crate::helpers::{spawn_app_with, TestApp, TestDb};
use baton::{model::Job, server::catalog::TaskConfig};

/// What a finished `baton …` printed, and its exit code.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `baton args…` against `app` with `token` (none: BATON_TOKEN unset).
async fn baton_at(server: &str, token: Option<&str>, args: &[&str]) -> Ran {
    let mut command = tokio::process::Command::from(crate::helpers::baton_command());
    command.args(args).arg("--server").arg(server);
    command.env_remove("BATON_TOKEN").env_remove("BATON_SERVER");
    if let Some(token) = token {
        command.env("BATON_TOKEN", token);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("baton finished within 60 s")
        .expect("baton ran");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn baton(app: &TestApp, args: &[&str]) -> Ran {
    baton_at(&format!("http://{}", app.addr), Some(&app.token), args).await
}

/// The demo ERP answers slowly enough for a pull to show progress; `slow` is a command that
/// logs a line every half second for 3 s.
async fn app(db: TestDb, failing: bool) -> TestApp {
    spawn_app_with(db, |config| {
        config.poll_interval = Duration::from_millis(50);
        config.demo_erp_latency = Duration::from_millis(20);
        if failing {
            config.demo_erp_failure_rate = 1.0;
            for ty in config.sync_types.values_mut() {
                ty.retry.max_attempts = 1;
            }
        }
        let slow = baton::server::catalog::SyncTypeConfig {
            task: Some(TaskConfig::Command(
                baton::server::connectors::command::CommandConfig {
                    program: "sh".into(),
                    args: vec![
                        "-c".into(),
                        "for i in 1 2 3 4 5 6; do echo step $i; sleep 0.5; done".into(),
                    ],
                    env: Default::default(),
                    dir: None,
                    timeout: Duration::from_secs(30),
                },
            )),
            ..config.sync_types["orders"].clone()
        };
        config.sync_types.insert("slow".into(), slow);
    })
    .await
}

#[tokio::test]
async fn trigger_wait_follows_a_pull_to_its_end_and_exits_0() {
    let app = app(TestDb::sqlite(), false).await;
    let ran = baton(&app, &["trigger", "customers", "--wait", "--json"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("queued customers: job "),
        "{}",
        ran.stderr
    );
    // Progress, as plain lines off a terminal: `customers: 10000/10000 (…/s) …` at the end.
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.starts_with("customers: 10000/10000 (") && l.contains("/s)")),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("completed in "), "{}", ran.stderr);
    let job: Job = serde_json::from_str(&ran.stdout).expect("--json prints the job");
    assert_eq!(job.state, baton::model::JobState::Completed);
    assert_eq!(job.processed, 10_000);
}

#[tokio::test]
async fn trigger_wait_on_a_failing_pull_exits_1_with_the_error() {
    let app = app(TestDb::sqlite(), true).await;
    let ran = baton(&app, &["trigger", "customers", "--wait"]).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("failed after 1 attempt(s)"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("503"),
        "the ERP's answer is named: {}",
        ran.stderr
    );
}

#[tokio::test]
async fn trigger_wait_on_a_workflow_stops_at_its_gate_and_says_what_to_press() {
    let app = app(TestDb::sqlite(), false).await;
    let ran = baton(&app, &["trigger", "daily-sync", "--wait"]).await;
    assert_eq!(ran.code, 4, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("started daily-sync: session "),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("✓ step 1 Import web data: completed"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(
            "Daily sync waits for a person: press \u{201c}Export Orders\u{201d} (step 2)"
        ),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn logs_follow_ends_when_the_job_ends() {
    let app = app(TestDb::sqlite(), false).await;
    let ran = baton(&app, &["trigger", "slow"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let id = ran.stdout.trim().to_string();
    let started = std::time::Instant::now();
    let ran = baton(&app, &["logs", &id, "--follow"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let job: Job = serde_json::from_value(app.get_json(&format!("/api/jobs/{id}")).await).unwrap();
    assert_eq!(
        job.state,
        baton::model::JobState::Completed,
        "it returned once the job ended"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it followed the job while it ran"
    );
    for i in 1..=6 {
        assert!(ran.stdout.contains(&format!("step {i}")), "{}", ran.stdout);
    }
    // Without --follow: the lines so far, at once.
    let again = baton(&app, &["logs", &id]).await;
    assert_eq!((again.code, again.stdout.clone()), (0, ran.stdout));
}

#[tokio::test]
async fn status_jobs_cancel_and_retry_read_and_change_the_server() {
    let app = app(TestDb::sqlite(), false).await;
    let ran = baton(&app, &["trigger", "slow"]).await;
    let id = ran.stdout.trim().to_string();

    let status = baton(&app, &["status"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("TYPE"), "{}", status.stdout);
    assert!(
        status.stdout.lines().any(|l| l.starts_with("customers ")),
        "{}",
        status.stdout
    );

    let jobs = baton(&app, &["jobs", "--type", "slow"]).await;
    assert_eq!(jobs.code, 0, "{}", jobs.stderr);
    assert!(jobs.stdout.contains(&id), "{}", jobs.stdout);
    let bad = baton(&app, &["jobs", "--state", "sleeping"]).await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("`state` must be one of"),
        "{}",
        bad.stderr
    );

    let cancel = baton(&app, &["cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    crate::helpers::eventually(Duration::from_secs(20), || async {
        let job = app.get_json(&format!("/api/jobs/{id}")).await;
        if job["state"] == "cancelled" {
            Ok(())
        } else {
            Err(job)
        }
    })
    .await;
    let again = baton(&app, &["cancel", &id]).await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already cancelled"),
        "{}",
        again.stderr
    );

    let retry = baton(&app, &["retry", &id]).await;
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert!(
        retry.stdout.contains(&format!("a retry of {id}")),
        "{}",
        retry.stdout
    );
}

#[tokio::test]
async fn each_mistake_gets_an_error_a_person_can_act_on() {
    let app = app(TestDb::sqlite(), false).await;
    let server = format!("http://{}", app.addr);

    let unknown = baton(&app, &["trigger", "nonsense"]).await;
    assert_eq!(unknown.code, 2);
    assert!(unknown
        .stderr
        .contains("`nonsense` is neither a sync type nor a workflow"));
    assert!(unknown.stderr.contains("customers") && unknown.stderr.contains("daily-sync"));

    let missing = baton_at(&server, None, &["status"]).await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("BATON_TOKEN is not set"),
        "{}",
        missing.stderr
    );

    let refused = baton_at(&server, Some("not-a-token"), &["status"]).await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("refused the token"),
        "{}",
        refused.stderr
    );

    let viewer =
        crate::helpers::make_token(&app.state.auth, "viewer", baton::model::Role::Viewer).await;
    let low = baton_at(&server, Some(&viewer), &["trigger", "customers"]).await;
    assert_eq!(low.code, 2);
    assert!(
        low.stderr.contains("needs the staff role"),
        "{}",
        low.stderr
    );

    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = baton_at(&format!("http://{closed}"), Some(&app.token), &["status"]).await;
    assert_eq!(down.code, 1);
    assert!(
        down.stderr.contains("cannot reach Baton at"),
        "{}",
        down.stderr
    );

    let address = baton_at("ftp://example", Some(&app.token), &["status"]).await;
    assert_eq!(address.code, 2);
    assert!(
        address.stderr.contains("--server must be"),
        "{}",
        address.stderr
    );

    let missing_job = baton(&app, &["logs", "01938f6e-8a4b-7cc0-9f1e-2b3c4d5e6f70"]).await;
    assert_eq!(missing_job.code, 1);
    assert!(
        missing_job.stderr.contains("01938f6e"),
        "{}",
        missing_job.stderr
    );
}

#[tokio::test]
async fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_baton()"),
        ("zsh", "#compdef baton"),
        ("fish", "complete -c baton"),
    ] {
        let output = crate::helpers::baton_command()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(
            text.contains("trigger"),
            "{shell} completes the subcommands"
        );
    }
}

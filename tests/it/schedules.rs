//! The scheduler on both databases: a schedule fires and records its fire, skips while its type
//! is busy, records what it missed and runs once for it, survives a restart without firing
//! twice; two processes on one database fire each fire time once; the API lists, edits (with a
//! field error for each bad input), previews, runs now and pages fires; an edit survives a
//! restart with the file's value shown beside it; the run history. Time is a test clock passed
//! to `tick`, never a sleep.

use std::{sync::Arc, time::Duration};

use baton::{
    model::{OnMissed, Role, ScheduleSpec, ScheduleTarget},
    server::{
        engine::{task::NoopTask, Engine},
        events::EventBus,
        schedules::{ScheduleDef, Scheduler},
        store::Store,
        workflows::Workflows,
    },
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

/// An engine that is not started (its jobs stay pending: the type stays busy) with `noop`.
fn idle_engine(store: &Store) -> Engine {
    Engine::new(
        store.clone(),
        EventBus::new(1024),
        uuid::Uuid::now_v7(),
        engine_settings(),
        vec![typed("noop", Arc::new(NoopTask), 1)],
    )
}

fn scheduler(store: &Store, engine: &Engine, spec: ScheduleSpec) -> Scheduler {
    let events = EventBus::new(1024);
    let workflows = Workflows::new(store.clone(), engine.clone(), events.clone(), []);
    Scheduler::new(
        store.clone(),
        engine.clone(),
        workflows,
        events,
        [ScheduleDef {
            id: "noop".into(),
            target: ScheduleTarget::Sync("noop".into()),
            spec,
        }],
    )
}

fn secs(t0: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(s)
}

both_backends!(
    a_schedule_fires_skips_while_busy_catches_up_once_and_survives_a_restart,
    |db| {
        let store = db.store().await;
        let engine = idle_engine(&store);
        let a = scheduler(&store, &engine, ScheduleSpec::every("1s"));
        let t0 = baton::server::schedules::millis(Utc::now());
        a.seed(t0).await.unwrap();
        assert_eq!(a.get("noop").await.unwrap().next_run, Some(secs(t0, 1)));
        assert_eq!(a.tick(t0).await.unwrap(), 0, "nothing is due yet");

        // Due: one job, from the scheduler, by the schedule.
        assert_eq!(a.tick(secs(t0, 1)).await.unwrap(), 1);
        let fires = a.fires("noop", None, 10).await.unwrap();
        assert_eq!(fires.len(), 1);
        assert_eq!(fires[0].outcome.as_str(), "fired");
        assert_eq!(fires[0].fire_time, secs(t0, 1));
        let job = engine
            .job(fires[0].job_ids[0].parse().unwrap())
            .await
            .unwrap();
        assert_eq!(job.source.as_str(), "scheduler");
        assert_eq!(job.triggered_by.as_deref(), Some("schedule:noop"));

        // Its job still waits: the next fire is skipped, and says why; no second job.
        assert_eq!(a.tick(secs(t0, 2)).await.unwrap(), 1);
        let fires = a.fires("noop", None, 10).await.unwrap();
        assert_eq!(fires[0].outcome.as_str(), "skipped");
        assert!(
            fires[0]
                .reason
                .as_deref()
                .unwrap()
                .contains(&format!("noop already has job {}", job.id)),
            "{:?}",
            fires[0].reason
        );
        assert_eq!(store.queue_counts().await.unwrap().pending, 1);

        // A restart (a new process, seeded again): the times already fired do not fire again.
        let b = scheduler(&store, &engine, ScheduleSpec::every("1s"));
        b.seed(secs(t0, 2)).await.unwrap();
        assert_eq!(b.tick(secs(t0, 2)).await.unwrap(), 0);
        assert_eq!(a.fires("noop", None, 10).await.unwrap().len(), 2);

        // Down for 100 s: one run for all of them (run_once), the rest recorded as missed.
        engine.cancel(job.id.parse().unwrap()).await.unwrap();
        assert_eq!(b.tick(secs(t0, 102)).await.unwrap(), 100);
        let fires = b.fires("noop", None, 500).await.unwrap();
        assert_eq!(fires.len(), 102);
        assert_eq!(fires[0].fire_time, secs(t0, 102));
        assert_eq!(fires[0].outcome.as_str(), "fired");
        assert!(fires[1..100].iter().all(|f| f.outcome.as_str() == "missed"
            && f.reason.as_deref() == Some("no Baton process was running")));
        assert_eq!(
            store.queue_counts().await.unwrap().pending,
            1,
            "one job, not a burst"
        );
        assert_eq!(b.get("noop").await.unwrap().next_run, Some(secs(t0, 103)));
    }
);

both_backends!(skip_after_downtime_records_everything_as_missed, |db| {
    let store = db.store().await;
    let engine = idle_engine(&store);
    let mut spec = ScheduleSpec::every("10m");
    spec.on_missed = OnMissed::Skip;
    let s = scheduler(&store, &engine, spec);
    let t0 = baton::server::schedules::millis(Utc::now());
    s.seed(t0).await.unwrap();
    // Down until 95 min: 10 … 90 min passed, the last of them 5 min ago (late, not on time).
    assert_eq!(s.tick(secs(t0, 95 * 60)).await.unwrap(), 9);
    let fires = s.fires("noop", None, 50).await.unwrap();
    assert!(fires.iter().all(|f| f.outcome.as_str() == "missed"));
    assert_eq!(store.queue_counts().await.unwrap().pending, 0);
    assert_eq!(
        s.get("noop").await.unwrap().next_run,
        Some(secs(t0, 100 * 60))
    );
    // Back on time: it fires.
    assert_eq!(s.tick(secs(t0, 100 * 60)).await.unwrap(), 1);
    assert_eq!(store.queue_counts().await.unwrap().pending, 1);
});

both_backends!(two_processes_fire_each_fire_time_once, |db| {
    // Two processes: separate pools on one database, ticking at the same moments.
    let (store_a, store_b) = (db.store().await, db.store().await);
    let events = EventBus::new(4096);
    let engine_a = Engine::new(
        store_a.clone(),
        events.clone(),
        uuid::Uuid::now_v7(),
        engine_settings(),
        vec![typed("noop", Arc::new(NoopTask), 1)],
    );
    let engine_b = idle_engine(&store_b);
    let stop = tokio_util::sync::CancellationToken::new();
    engine_a.start(stop.clone(), Duration::from_secs(5));
    let a = scheduler(&store_a, &engine_a, ScheduleSpec::every("1s"));
    let b = scheduler(&store_b, &engine_b, ScheduleSpec::every("1s"));
    let t0 = baton::server::schedules::millis(Utc::now());
    a.seed(t0).await.unwrap();
    b.seed(t0).await.unwrap();
    let mut recorded = 0;
    for k in 1..=200 {
        let now = secs(t0, k);
        let (x, y) = tokio::join!(a.tick(now), b.tick(now));
        recorded += x.unwrap() + y.unwrap();
        // Let the running engine finish some jobs, so that fires both run and skip.
        if k % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    assert_eq!(
        recorded, 200,
        "each fire time recorded by exactly one process"
    );
    let fires = a.fires("noop", None, 500).await.unwrap();
    assert_eq!(fires.len(), 200);
    let mut times: Vec<_> = fires.iter().map(|f| f.fire_time).collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), 200);
    let fired: Vec<_> = fires
        .iter()
        .filter(|f| f.outcome.as_str() == "fired")
        .collect();
    assert!(!fired.is_empty());
    let jobs = store_a
        .list_jobs(&baton::server::store::JobFilter {
            sync_type: Some("noop".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), fired.len(), "one job per fired time, none more");
    for fire in &fired {
        assert_eq!(fire.job_ids.len(), 1);
    }
    stop.cancel();
});

/// A schedule body sent with PUT.
async fn put(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .put(app.url(&format!("/api/schedules/{id}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

both_backends!(
    the_api_lists_edits_previews_runs_and_refuses_bad_input,
    |db| {
        let app = spawn_app_with(db, |c| {
            c.sync_types.get_mut("products").unwrap().schedule = Some(ScheduleSpec::every("1h"));
        })
        .await;
        let list = app.get_json("/api/schedules").await;
        let ids: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["employee-changes", "full-sync", "products"]);
        // Demo mode: the full sync is off, the employee sync on.
        assert_eq!(list[1]["spec"]["enabled"], false);
        assert_eq!(list[1]["next_run"], Value::Null);
        assert_eq!(list[0]["spec"]["cron"], "0 */6 * * *");

        // An edit: the new timing, next run, who; the file's value beside it.
        // The anchor is stored to the millisecond: "now" at the save may read up to 1 ms before
        // this clock reading.
        let before = Utc::now() - chrono::Duration::milliseconds(1);
        let (status, view) = put(&app, "products", json!({ "every": "30m" })).await;
        assert_eq!(status, 200, "{view}");
        let next: DateTime<Utc> = view["next_run"].as_str().unwrap().parse().unwrap();
        assert!(
            next >= before + chrono::Duration::minutes(30)
                && next <= Utc::now() + chrono::Duration::minutes(30)
        );
        assert_eq!(view["edited_by"], "token:tests");
        assert_eq!(view["file"]["every"], "1h");
        let status_view = app.get_json("/api/sync/status").await;
        assert_eq!(
            status_view["types"]["products"]["next_run"],
            view["next_run"]
        );

        // A type without a schedule gets one; a disabled one has no next run.
        let (status, view) = put(
            &app,
            "prices",
            json!({ "cron": "15 3 * * *", "tz": "Europe/Rome", "enabled": false }),
        )
        .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["next_run"], Value::Null);
        assert_eq!(view["file"], Value::Null);

        // Each bad input: 422 naming the field and what is wrong, nothing changed.
        for (body, field, says) in [
            (json!({ "every": "500ms" }), "every", "under 1 s"),
            (json!({ "every": "often" }), "every", "not an interval"),
            (
                json!({ "cron": "61 * * * *" }),
                "cron",
                "field 1 (minute) `61` is not valid",
            ),
            (json!({ "cron": "0 12 * *" }), "cron", "has 4 field(s)"),
            (
                json!({ "cron": "0 12 * * *", "tz": "Mars/Olympus" }),
                "tz",
                "not a time zone",
            ),
            (
                json!({ "every": "1h", "cron": "0 * * * *" }),
                "every",
                "not both",
            ),
            (json!({}), "every", "give `every`"),
        ] {
            let (status, answer) = put(&app, "products", body.clone()).await;
            assert_eq!(status, 422, "{body} → {answer}");
            let message = answer["fields"][field]
                .as_str()
                .unwrap_or_else(|| panic!("{body} → {answer}"));
            assert!(message.contains(says), "{body} → {message}");
        }
        let (status, answer) = put(&app, "products", json!({ "every": "1h", "when": "now" })).await;
        assert_eq!(status, 422, "an unknown key: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("when"));
        let response = app
            .client
            .put(app.url("/api/schedules/products"))
            .header("content-type", "application/json")
            .body("{every")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "not JSON");
        let (status, _) = put(&app, "no-such-thing", json!({ "every": "1h" })).await;
        assert_eq!(status, 404);
        assert_eq!(
            app.get_json("/api/schedules/products").await["spec"]["every"],
            "30m",
            "unchanged"
        );

        // A staff member may run it now but not change it.
        let cookie = app.sign_in("sam", Role::Staff).await;
        let response = reqwest::Client::new()
            .put(app.url("/api/schedules/products"))
            .header("cookie", &cookie)
            .header("origin", app.url(""))
            .json(&json!({ "every": "2h" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);

        // The preview: five times, nothing saved; a bad one is a field error.
        let (status, preview) = app
            .post_json(
                "/api/schedules/products/preview",
                Some(json!({ "cron": "0 12 * * *", "tz": "UTC" })),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        let times = preview["next"].as_array().unwrap();
        assert_eq!(times.len(), 5);
        assert!(times
            .iter()
            .all(|t| t.as_str().unwrap().contains("T12:00:00")));
        let (status, preview) = app
            .post_json(
                "/api/schedules/products/preview",
                Some(json!({ "cron": "0 12 * 13 *" })),
            )
            .await;
        assert_eq!(status, 422);
        assert!(preview["fields"]["cron"]
            .as_str()
            .unwrap()
            .contains("field 4 (month)"));

        // Run now: a job of the type, the caller's.
        let (status, started) = app.post_json("/api/schedules/products/run-now", None).await;
        assert_eq!(status, 202, "{started}");
        let job_id = started["job_ids"][0].as_str().unwrap().to_string();
        let job = job_finished(&app.state.engine, &job_id).await;
        assert_eq!(job.triggered_by.as_deref(), Some("token:tests"));

        // The history: the run, with its outcome and duration.
        let history = app.get_json("/api/sync/products/history?limit=100").await;
        let runs = history["runs"].as_array().unwrap();
        assert_eq!(runs[0]["job_id"], job_id.as_str());
        assert_eq!(runs[0]["outcome"], job.state.as_str());
        assert!(runs[0]["duration_ms"].is_u64());
        let (status, _) = app.get_json_status("/api/sync/nope/history").await;
        assert_eq!(status, 404);
        let (status, _) = app
            .get_json_status("/api/sync/products/history?limit=0")
            .await;
        assert_eq!(status, 400);

        // Fires, paged.
        let fires = app.get_json("/api/schedules/products/fires?limit=5").await;
        assert!(fires["fires"].as_array().unwrap().is_empty());
        let (status, _) = app
            .get_json_status("/api/schedules/products/fires?before=yesterday")
            .await;
        assert_eq!(status, 400);
        let (status, _) = app.get_json_status("/api/schedules/nope/fires").await;
        assert_eq!(status, 404);
        app.shutdown().await;
    }
);

both_backends!(
    an_edit_survives_a_restart_and_the_file_follows_only_unedited_ones,
    |db| {
        let file_says = |c: &mut baton::server::config::Config, every: &str| {
            c.sync_types.get_mut("products").unwrap().schedule = Some(ScheduleSpec::every(every));
            c.sync_types.get_mut("prices").unwrap().schedule = Some(ScheduleSpec::every(every));
        };
        let app = spawn_app_with(db, |c| file_says(c, "1h")).await;
        let (status, _) = put(&app, "products", json!({ "every": "30m" })).await;
        assert_eq!(status, 200);
        let db = app.shutdown().await;
        // The file changes too: the edited schedule keeps its edit, the other follows the file.
        let app = spawn_app_with(db, |c| file_says(c, "2h")).await;
        let products = app.get_json("/api/schedules/products").await;
        assert_eq!(products["spec"]["every"], "30m");
        assert_eq!(products["file"]["every"], "2h");
        let prices = app.get_json("/api/schedules/prices").await;
        assert_eq!(prices["spec"]["every"], "2h");
        assert_eq!(prices["file"], Value::Null, "the same as the file");
        app.shutdown().await;
    }
);

both_backends!(
    a_type_turned_off_runs_nothing_new_until_turned_on_again_even_after_a_restart,
    |db| {
        let app = spawn_app_with(db, |c| {
            c.sync_types.get_mut("products").unwrap().schedule = Some(ScheduleSpec::every("1h"));
        })
        .await;
        let switch = |enabled: Value| {
            let request = app
                .client
                .put(app.url("/api/sync/products/enabled"))
                .json(&enabled);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or_default())
            }
        };
        let (status, body) = switch(json!({ "enabled": false })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            app.get_json("/api/sync/status").await["types"]["products"]["enabled"],
            false
        );
        // Asked for: 409 saying it is off.
        let (status, body) = app.post_json("/api/sync/products", None).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("turned off"),
            "{body}"
        );
        // Its schedule's fire is skipped, with why.
        let schedule = app.get_json("/api/schedules/products").await;
        let due: DateTime<Utc> = schedule["next_run"].as_str().unwrap().parse().unwrap();
        app.state.scheduler.tick(due).await.unwrap();
        let fires = app.get_json("/api/schedules/products/fires").await;
        assert_eq!(fires["fires"][0]["outcome"], "skipped");
        assert!(fires["fires"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("turned off"));
        // The scheduler's own actions are in the audit log, like everyone's.
        let audit = app.get_json("/api/audit?action=schedule.fire").await;
        let entry = &audit["entries"][0];
        assert_eq!(entry["actor"], "schedule:products", "{audit}");
        assert_eq!(entry["target"], "sync_type:products");
        assert_eq!(entry["outcome"], "refused");
        assert!(entry["reason"].as_str().unwrap().contains("turned off"));
        // Bad switches.
        assert_eq!(switch(json!({})).await.0, 422);
        assert_eq!(switch(json!({ "enabled": "yes" })).await.0, 422);
        let response = app
            .client
            .put(app.url("/api/sync/nope/enabled"))
            .json(&json!({ "enabled": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        // Off outlives a restart; on again, it runs.
        let db = app.shutdown().await;
        let app = spawn_app_with(db, |_| {}).await;
        assert_eq!(
            app.get_json("/api/sync/status").await["types"]["products"]["enabled"],
            false
        );
        let response = app
            .client
            .put(app.url("/api/sync/products/enabled"))
            .json(&json!({ "enabled": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (status, body) = app.post_json("/api/sync/products", None).await;
        assert_eq!(status, 202, "{body}");
        app.shutdown().await;
    }
);

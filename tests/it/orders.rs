//! The order form's server side on both databases: smart-sync leases under random sequences of
//! tab opens, heartbeats, closes, vanishings, timeouts and clock steps (checked against a model
//! at every step, with the claim's hold); a pull that yields to the customers refresh and resumes
//! from its checkpoint; drafts from the form to the ERP; every bad input.

use std::{collections::BTreeMap, time::Duration};

use baton::server::store::{ClaimScope, Hold, NewJob, Store};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{eventually, spawn_app_with, TestApp, TestDb};

const GRACE: i64 = 60;
const TIMEOUT: i64 = 600;

/// What a tab's lease is in the model: when it began and its last heartbeat.
#[derive(Clone, Copy, Debug)]
struct Tab {
    created: DateTime<Utc>,
    beat: DateTime<Utc>,
}

fn live(tab: &Tab, now: DateTime<Utc>) -> bool {
    tab.beat > now - TimeDelta::seconds(GRACE) && tab.created + TimeDelta::seconds(TIMEOUT) > now
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Open(u8),
    Beat(u8),
    Close(u8),
    Step(i64),
    Reap,
}

fn random_ops(rng: &mut fastrand::Rng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| match rng.u8(0..10) {
            0..=2 => Op::Open(rng.u8(0..4)),
            3..=4 => Op::Beat(rng.u8(0..4)),
            5 => Op::Close(rng.u8(0..4)),
            6..=8 => Op::Step(rng.i64(0..=150)),
            _ => Op::Reap,
        })
        .collect()
}

async fn claim_exclusive(store: &Store, now: DateTime<Utc>) -> Vec<String> {
    let scope = ClaimScope {
        exclusive: true,
        shared: 0,
        hold: Some(Hold {
            exempt: "customers",
            live_after: now - TimeDelta::seconds(GRACE),
        }),
    };
    let claimed = store
        .claim_jobs(Uuid::now_v7(), now, Duration::from_secs(30), scope)
        .await
        .unwrap();
    let types: Vec<String> = claimed.iter().map(|j| j.sync_type.clone()).collect();
    // Back to pending, so the next step can try again.
    let sql = "update jobs set state = 'pending', lease_owner = null, lease_expires_at = null";
    match store {
        Store::Sqlite(p) => {
            sqlx::query(sql).execute(&p.write).await.unwrap();
        }
        Store::Postgres(p) => {
            sqlx::query(sql).execute(&p.main).await.unwrap();
        }
    }
    types
}

async fn pending(store: &Store, sync_type: &str, at: DateTime<Utc>) {
    store
        .insert_job(
            &NewJob {
                sync_type: sync_type.into(),
                priority: if sync_type == "orders" { 9 } else { 1 },
                exclusive: true,
                max_attempts: 3,
                run_at: at,
                source: baton::model::JobSource::Api,
                triggered_by: None,
                note: None,
                session_id: None,
                retry_of: None,
                input: None,
            },
            false,
        )
        .await
        .unwrap();
}

both_backends!(
    leases_under_random_sequences_hold_exactly_while_one_is_live,
    |db| {
        let store = db.store().await;
        let seed: u64 = std::env::var("BATON_LEASE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        eprintln!("lease sequences seed: {seed} (BATON_LEASE_SEED={seed} repeats them)");
        let mut rng = fastrand::Rng::with_seed(seed);
        let start = Utc::now();
        // One exclusive sync of another type waits all along (higher priority than the refresh).
        pending(&store, "orders", start - TimeDelta::hours(1)).await;
        let grace = TimeDelta::seconds(GRACE);
        for sequence in 0..12 {
            let tabs_sql = "delete from smart_leases";
            match &store {
                Store::Sqlite(p) => sqlx::query(tabs_sql).execute(&p.write).await.map(|_| ()),
                Store::Postgres(p) => sqlx::query(tabs_sql).execute(&p.main).await.map(|_| ()),
            }
            .unwrap();
            let mut now = start + TimeDelta::hours(sequence);
            let mut model: BTreeMap<u8, Tab> = BTreeMap::new();
            let ops = random_ops(&mut rng, 40);
            for (step, op) in ops.iter().enumerate() {
                let tab = |t: &u8| format!("tab-{sequence}-{t}");
                match *op {
                    Op::Open(t) => {
                        store
                            .open_lease(
                                &tab(&t),
                                "anna",
                                now,
                                now - grace,
                                now + TimeDelta::seconds(TIMEOUT),
                            )
                            .await
                            .unwrap();
                        match model.get_mut(&t) {
                            Some(lease) if live(lease, now) => lease.beat = now,
                            _ => {
                                model.insert(
                                    t,
                                    Tab {
                                        created: now,
                                        beat: now,
                                    },
                                );
                            }
                        }
                    }
                    Op::Beat(t) => {
                        let renewed = store
                            .heartbeat_lease(&tab(&t), now, now - grace)
                            .await
                            .unwrap();
                        let expected = model.get(&t).is_some_and(|l| live(l, now));
                        assert_eq!(
                            renewed.is_some(),
                            expected,
                            "seed {seed} step {step}: {op:?}"
                        );
                        if let Some(lease) = model.get_mut(&t).filter(|l| live(l, now)) {
                            lease.beat = now;
                        }
                    }
                    Op::Close(t) => {
                        store.close_lease(&tab(&t), now, now - grace).await.unwrap();
                        model.remove(&t);
                    }
                    Op::Step(secs) => now += TimeDelta::seconds(secs),
                    Op::Reap => {
                        let ended = store.end_stale_leases(now, now - grace).await.unwrap();
                        for lease in &ended {
                            let reason = lease.end_reason.as_deref().unwrap();
                            assert!(reason == "timeout" || reason == "vanished", "{reason}");
                        }
                        model.retain(|_, l| live(l, now));
                    }
                }
                let expected = model.values().filter(|l| live(l, now)).count();
                let live_now = store.live_leases(now, now - grace).await.unwrap().len();
                assert_eq!(
                    live_now, expected,
                    "seed {seed} sequence {sequence} step {step}: {op:?}"
                );
                // The hold: no other exclusive sync starts while a lease is live.
                let claimed = claim_exclusive(&store, now).await;
                if expected > 0 {
                    assert!(
                        claimed.is_empty(),
                        "seed {seed} step {step}: {claimed:?} ran under a live lease"
                    );
                } else {
                    assert_eq!(
                        claimed,
                        ["orders"],
                        "seed {seed} step {step}: nothing held, orders runs"
                    );
                }
            }
            // However it ended, the queue goes on once the last lease has timed out.
            now += TimeDelta::seconds(TIMEOUT + GRACE + 1);
            store.end_stale_leases(now, now - grace).await.unwrap();
            assert!(store
                .live_leases(now, now - grace)
                .await
                .unwrap()
                .is_empty());
            assert_eq!(claim_exclusive(&store, now).await, ["orders"]);
        }
        // The refresh itself is never held.
        let now = Utc::now();
        store
            .open_lease(
                "tab-x",
                "anna",
                now,
                now - grace,
                now + TimeDelta::seconds(TIMEOUT),
            )
            .await
            .unwrap();
        pending(&store, "customers", now - TimeDelta::hours(1)).await;
        assert_eq!(claim_exclusive(&store, now).await, ["customers"]);
    }
);

/// An app on the demo ERP with `records` per entity and `latency` per request.
async fn demo_app(db: TestDb, records: u32, latency: Duration) -> TestApp {
    spawn_app_with(db, |config| {
        config.demo_erp_records = records;
        config.demo_erp_latency = latency;
        config.demo_erp_change_every = Duration::ZERO;
        config.poll_interval = Duration::from_millis(100);
    })
    .await
}

async fn job(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/jobs/{id}")).await
}

both_backends!(
    a_pull_mid_run_yields_to_the_customers_refresh_and_resumes_from_its_checkpoint,
    |db| {
        let app = demo_app(db, 3000, Duration::from_millis(80)).await;
        // A lower-priority pull runs: 3,000 products in pages of 500.
        let (_, started) = app.post_json("/api/sync/products", None).await;
        let pull = started["job_id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(20), || async {
            let j = job(&app, &pull).await;
            match (j["state"].as_str(), j["processed"].as_u64()) {
                (Some("running"), Some(n)) if n > 0 => Ok(()),
                _ => Err(j),
            }
        })
        .await;
        // An order form opens: the refresh starts, the pull makes way.
        let (status, opened) = app
            .post_json(
                "/api/customers/smart-sync",
                Some(json!({ "tab_id": "tab-one" })),
            )
            .await;
        assert_eq!(status, 200, "{opened}");
        assert_eq!(opened["active_tabs"], 1);
        let refresh = opened["customers_job_id"].as_str().unwrap().to_string();
        let yielded = eventually(Duration::from_secs(20), || async {
            let j = job(&app, &pull).await;
            if j["state"] == "pending" {
                Ok(j)
            } else {
                Err(j)
            }
        })
        .await;
        let at_yield = yielded["checkpoint"]["pages"].as_u64().unwrap_or(0);
        assert!(at_yield >= 1, "it kept where it was: {yielded}");
        let customers = eventually(Duration::from_secs(30), || async {
            let j = job(&app, &refresh).await;
            if j["state"] == "completed" {
                Ok(j)
            } else {
                Err(j)
            }
        })
        .await;
        assert_eq!(customers["source"], "smart");
        // The form is open: the pull still waits, and the status says why.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(job(&app, &pull).await["state"], "pending");
        let status = app.get_json("/api/sync/status").await;
        assert_eq!(status["smart_sync"]["active_tabs"], 1, "{status}");
        assert!(status["smart_sync"]["holding"]
            .as_str()
            .unwrap()
            .contains("order form"));
        assert_eq!(status["smart_sync"]["leases"][0]["who"], "token:tests");
        // A second tab shares the hold; closing one keeps it.
        let (_, second) = app
            .post_json(
                "/api/customers/smart-sync",
                Some(json!({ "tab_id": "tab-two" })),
            )
            .await;
        assert_eq!(second["active_tabs"], 2);
        let (_, closed) = app
            .post_json(
                "/api/customers/resume-syncs",
                Some(json!({ "tab_id": "tab-one" })),
            )
            .await;
        assert_eq!(
            (closed["ended"].as_str(), closed["active_tabs"].as_u64()),
            (Some("closed"), Some(1))
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(job(&app, &pull).await["state"], "pending");
        // The last tab closes (as sendBeacon sends it: the id in the query, no body).
        let response = app
            .client
            .post(app.url("/api/customers/resume-syncs?tab_id=tab-two"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let done = eventually(Duration::from_secs(30), || async {
            let j = job(&app, &pull).await;
            if j["state"] == "completed" {
                Ok(j)
            } else {
                Err(j)
            }
        })
        .await;
        // Resumed from the checkpoint: every record counted once, the attempt not used up.
        assert_eq!(done["result"]["created"], 3000, "{done}");
        assert_eq!(done["attempt"], 1, "{done}");
        app.shutdown().await;
    }
);

#[tokio::test]
async fn smart_sync_refuses_bad_tabs_and_a_heartbeat_never_reopens_a_lease() {
    let app = demo_app(TestDb::sqlite(), 20, Duration::ZERO).await;
    for body in [json!({}), json!({ "tab_id": "" })] {
        let (status, answer) = app.post_json("/api/customers/smart-sync", Some(body)).await;
        assert_eq!(status, 422, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("tab_id"));
    }
    for bad in ["a b", "x".repeat(65).as_str(), "tab/../1", "t\u{202e}"] {
        let (status, answer) = app
            .post_json("/api/customers/smart-sync", Some(json!({ "tab_id": bad })))
            .await;
        assert_eq!(status, 422, "{bad:?}: {answer}");
    }
    let (status, answer) = app
        .post_json(
            "/api/customers/smart-sync",
            Some(json!({ "tab_id": "t1", "extra": 1 })),
        )
        .await;
    assert_eq!(status, 422, "unknown fields are refused: {answer}");
    // A heartbeat of a tab that never opened: 409, open first.
    let (status, answer) = app
        .post_json(
            "/api/customers/smart-sync/heartbeat",
            Some(json!({ "tab_id": "never" })),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    // Closing a tab that has nothing open is harmless.
    let (status, answer) = app
        .post_json(
            "/api/customers/resume-syncs",
            Some(json!({ "tab_id": "never" })),
        )
        .await;
    assert_eq!((status, answer["ended"].clone()), (200, Value::Null));
    // A closed lease stays closed for heartbeats (the form re-opens it on its next mount).
    app.post_json("/api/customers/smart-sync", Some(json!({ "tab_id": "t1" })))
        .await;
    app.post_json(
        "/api/customers/resume-syncs",
        Some(json!({ "tab_id": "t1" })),
    )
    .await;
    let (status, answer) = app
        .post_json(
            "/api/customers/smart-sync/heartbeat",
            Some(json!({ "tab_id": "t1" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["lease"]["end_reason"], "closed");
    assert_eq!(answer["active_tabs"], 0);
}

#[tokio::test]
async fn a_tab_that_vanishes_lets_the_queue_go_after_the_grace_and_says_so() {
    let app = spawn_app_with(TestDb::sqlite(), |config| {
        config.demo_erp_records = 20;
        config.smart_sync_grace = Duration::from_secs(1);
        config.smart_sync_timeout = Duration::from_secs(600);
    })
    .await;
    let mut events = crate::helpers::SseReader::new(app.get("/api/events").await);
    app.post_json(
        "/api/customers/smart-sync",
        Some(json!({ "tab_id": "gone" })),
    )
    .await;
    let (_, queued) = app.post_json("/api/sync/orders", None).await;
    let orders = queued["job_id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    while let Some(frame) = events.next(Duration::from_secs(10)).await {
        if frame.event == "smart-sync-ended" {
            let event: Value = serde_json::from_str(&frame.data).unwrap();
            let data = &event["data"];
            assert_eq!(
                (data["reason"].as_str(), data["active_tabs"].as_u64()),
                (Some("vanished"), Some(0))
            );
            break;
        }
        seen.push(frame.event);
    }
    assert!(seen.contains(&"smart-sync-started".to_string()), "{seen:?}");
    let done = eventually(Duration::from_secs(20), || async {
        let j = job(&app, &orders).await;
        if j["state"] == "completed" {
            Ok(j)
        } else {
            Err(j)
        }
    })
    .await;
    assert_eq!(done["state"], "completed");
}

/// Pulls the customers, products and prices the form picks from.
async fn synced(app: &TestApp) {
    for ty in ["customers", "products", "prices"] {
        let (_, started) = app.post_json(&format!("/api/sync/{ty}"), None).await;
        let id = started["job_id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(30), || async {
            let j = job(app, &id).await;
            if j["state"] == "completed" {
                Ok(())
            } else {
                Err(j)
            }
        })
        .await;
    }
}

both_backends!(
    drafts_are_checked_priced_listed_marked_ready_and_exported_once,
    |db| {
        let app = demo_app(db, 40, Duration::ZERO).await;
        synced(&app).await;
        // The pickers find what was synced.
        let customers = app.get_json("/api/customers?q=c0000").await;
        let customer = customers[0]["id"].as_str().unwrap().to_string();
        assert!(customers.as_array().unwrap().len() <= 20);
        let products = app.get_json("/api/products?q=P000&limit=50").await;
        let priced: Vec<&Value> = products
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["price_cents"].is_i64())
            .collect();
        let (p1, p2) = (
            priced[0]["id"].as_str().unwrap(),
            priced[1]["id"].as_str().unwrap(),
        );
        let price1 = priced[0]["price_cents"].as_i64().unwrap();
        let price2 = priced[1]["price_cents"].as_i64().unwrap();
        let (status, body) = app.get_json_status("/api/customers?q=%00").await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = app.get_json_status("/api/products?limit=500").await;
        assert_eq!(status, 400);

        // Every bad input: 422 naming each field, and nothing saved.
        for (input, fields) in [
            (
                json!({ "customer_id": "", "lines": [] }),
                vec!["customer_id", "lines"],
            ),
            (
                json!({ "customer_id": "C99999", "lines": [{ "product_id": p1, "quantity": 1 }] }),
                vec!["customer_id"],
            ),
            (
                json!({ "customer_id": customer, "lines": [{ "product_id": p1, "quantity": 0 }] }),
                vec!["lines[0].quantity"],
            ),
            (
                json!({ "customer_id": customer, "lines": [{ "product_id": p1, "quantity": -3 }, { "product_id": "P99999", "quantity": 1 }] }),
                vec!["lines[0].quantity", "lines[1].product_id"],
            ),
        ] {
            let (status, answer) = app.post_json("/api/drafts", Some(input.clone())).await;
            assert_eq!(status, 422, "{input}: {answer}");
            let named: Vec<&str> = answer["fields"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(named, fields, "{answer}");
        }
        let (status, answer) = app
            .post_json("/api/drafts", Some(json!({ "customer_id": customer, "lines": [{ "product_id": p1, "quantity": "two" }] })))
            .await;
        assert_eq!(status, 422, "a quantity that is not a number: {answer}");
        let (status, _) = app.post_json("/api/drafts", None).await;
        assert_eq!(status, 422);
        assert!(app
            .get_json("/api/drafts")
            .await
            .as_array()
            .unwrap()
            .is_empty());

        // Three drafts in a row.
        let mut ids = Vec::new();
        for quantity in [1, 2, 3] {
            let (status, draft) = app
                .post_json(
                    "/api/drafts",
                    Some(json!({ "customer_id": customer, "note": "by phone",
                        "lines": [{ "product_id": p1, "quantity": quantity }, { "product_id": p2, "quantity": 1 }] })),
                )
                .await;
            assert_eq!(status, 201, "{draft}");
            assert_eq!(draft["total_cents"], price1 * quantity + price2);
            assert_eq!(draft["status"], "draft");
            assert_eq!(draft["created_by"], "token:tests");
            ids.push(draft["id"].as_i64().unwrap());
        }
        let list = app.get_json("/api/drafts").await;
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert_eq!(list[0]["id"], ids[2], "newest first");

        // Edit one; delete one; mark one ready.
        let client = &app.client;
        let edited: Value = client
            .put(app.url(&format!("/api/drafts/{}", ids[0])))
            .json(
                &json!({ "customer_id": customer, "lines": [{ "product_id": p2, "quantity": 5 }] }),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(edited["total_cents"], price2 * 5);
        let gone = client
            .delete(app.url(&format!("/api/drafts/{}", ids[1])))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 204);
        assert_eq!(
            app.get_json_status(&format!("/api/drafts/{}", ids[1]))
                .await
                .0,
            404
        );
        assert_eq!(app.get_json_status("/api/drafts/abc").await.0, 400);
        let (status, ready) = app
            .post_json(&format!("/api/drafts/{}/ready", ids[0]), None)
            .await;
        assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

        // The export step counts and sends it; then it reads exported and cannot change.
        let (_, started) = app.post_json("/api/sync/export-drafts", None).await;
        let export = started["job_id"].as_str().unwrap().to_string();
        let exported = eventually(Duration::from_secs(30), || async {
            let j = job(&app, &export).await;
            if j["state"] == "completed" {
                Ok(j)
            } else {
                Err(j)
            }
        })
        .await;
        assert_eq!(exported["result"]["exported"], 1, "{exported}");
        let draft = app.get_json(&format!("/api/drafts/{}", ids[0])).await;
        assert_eq!(draft["status"], "exported");
        assert!(draft["exported_at"].is_string());
        let refused = client
            .put(app.url(&format!("/api/drafts/{}", ids[0])))
            .json(
                &json!({ "customer_id": customer, "lines": [{ "product_id": p2, "quantity": 1 }] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 409);
        assert_eq!(
            client
                .delete(app.url(&format!("/api/drafts/{}", ids[0])))
                .send()
                .await
                .unwrap()
                .status(),
            409
        );
        assert_eq!(
            app.post_json(&format!("/api/drafts/{}/ready", ids[0]), None)
                .await
                .0,
            409
        );
        // Sent once: the next export finds nothing new.
        let (_, again) = app.post_json("/api/sync/export-drafts", None).await;
        let again = again["job_id"].as_str().unwrap().to_string();
        let second = eventually(Duration::from_secs(30), || async {
            let j = job(&app, &again).await;
            if j["state"] == "completed" {
                Ok(j)
            } else {
                Err(j)
            }
        })
        .await;
        assert_eq!(second["result"]["exported"], 0, "{second}");
        // The audit log names who did what to which draft.
        let audit = app.get_json("/api/audit?action=draft.").await;
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"draft.ready") && actions.contains(&"draft.delete"),
            "{actions:?}"
        );
        app.shutdown().await;
    }
);

//! The store against real databases: each body runs on a SQLite file and on a fresh Postgres
//! database.

use baton::server::store::{Backend, InstanceRow};
use chrono::{Duration, SubsecRound, Utc};
use uuid::Uuid;

fn instance_row() -> InstanceRow {
    // Both databases keep microseconds; compare at that precision.
    let now = Utc::now().trunc_subsecs(6);
    InstanceRow {
        id: Uuid::now_v7(),
        version: "0.1.0".into(),
        hostname: "test-host".into(),
        pid: 4242,
        started_at: now,
        heartbeat_at: now,
        stopped_at: None,
    }
}

both_backends!(
    migrations_apply_once_and_running_them_again_changes_nothing,
    |db| {
        let store = db.store().await;
        let first = store.applied_migrations().await.unwrap();
        assert_eq!(first, crate::helpers::migration_versions());
        store.migrate().await.unwrap();
        assert_eq!(store.applied_migrations().await.unwrap(), first);
        store.ping().await.unwrap();
    }
);

both_backends!(the_store_reports_which_database_it_is, |db| {
    let store = db.store().await;
    let expected = match db {
        crate::helpers::TestDb::Sqlite(_) => Backend::Sqlite,
        crate::helpers::TestDb::Postgres { .. } => Backend::Postgres,
    };
    assert_eq!(store.backend(), expected);
});

both_backends!(an_instance_is_registered_beats_and_stops_once, |db| {
    let store = db.store().await;
    let row = instance_row();
    store.register_instance(&row).await.unwrap();
    assert_eq!(store.instance(row.id).await.unwrap(), Some(row.clone()));
    assert_eq!(store.running_instances().await.unwrap(), vec![row.clone()]);

    let later = row.started_at + Duration::seconds(10);
    assert!(store.beat_instance(row.id, later).await.unwrap());
    assert_eq!(
        store.instance(row.id).await.unwrap().unwrap().heartbeat_at,
        later
    );

    let stop = later + Duration::seconds(1);
    assert!(store.stop_instance(row.id, stop).await.unwrap());
    let stopped = store.instance(row.id).await.unwrap().unwrap();
    assert_eq!(stopped.stopped_at, Some(stop));
    assert!(store.running_instances().await.unwrap().is_empty());

    // A stopped process neither beats nor stops again.
    assert!(!store
        .beat_instance(row.id, stop + Duration::seconds(1))
        .await
        .unwrap());
    assert!(!store
        .stop_instance(row.id, stop + Duration::seconds(1))
        .await
        .unwrap());
    assert_eq!(
        store.instance(row.id).await.unwrap().unwrap().stopped_at,
        Some(stop)
    );
});

both_backends!(
    registering_the_same_instance_twice_is_refused_and_keeps_the_first,
    |db| {
        let store = db.store().await;
        let row = instance_row();
        store.register_instance(&row).await.unwrap();
        let imposter = InstanceRow {
            hostname: "other".into(),
            ..row.clone()
        };
        assert!(store.register_instance(&imposter).await.is_err());
        assert_eq!(
            store.instance(row.id).await.unwrap().unwrap().hostname,
            "test-host"
        );
    }
);

both_backends!(an_unknown_instance_is_absent_not_an_error, |db| {
    let store = db.store().await;
    assert_eq!(store.instance(Uuid::now_v7()).await.unwrap(), None);
    assert!(!store
        .beat_instance(Uuid::now_v7(), Utc::now())
        .await
        .unwrap());
});

#[tokio::test]
async fn a_sqlite_database_is_created_with_its_directory_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/baton.db");
    let store = baton::server::store::Store::connect(
        &baton::server::store::DatabaseTarget::Sqlite(path.clone()),
        2,
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert!(path.is_file());
    let baton::server::store::Store::Sqlite(pools) = &store else {
        unreachable!()
    };
    let mode: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&pools.read)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn an_unreachable_postgres_fails_to_connect_with_an_error_not_a_hang() {
    let target = baton::server::store::DatabaseTarget::Postgres(
        // Port 1 on loopback: nothing listens there.
        "postgres://postgres@127.0.0.1:1/none".into(),
    );
    let started = std::time::Instant::now();
    let result = baton::server::store::Store::connect(&target, 1).await;
    assert!(result.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A running session of workflow `w`, started by anna.
async fn new_session(store: &baton::server::store::Store) -> Uuid {
    let id = Uuid::now_v7();
    store
        .insert_session(&baton::server::store::NewSession {
            id,
            workflow: "w".into(),
            source: baton::model::JobSource::Manual,
            triggered_by: Some("anna".into()),
            started_at: Utc::now(),
        })
        .await
        .unwrap();
    id
}

both_backends!(a_session_snapshot_is_read_at_one_moment, |db| {
    use baton::{model::StepStatus, server::store::NewStatus};
    let store = db.store().await;
    let id = new_session(&store).await;
    // As the workflows do, the writer first says where the session is (here: "i" in its
    // warnings), then writes that step's status row.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 1..=150u32 {
                store
                    .set_session_state(id, "running", None, &[i.to_string()])
                    .await
                    .unwrap();
                store
                    .append_status(&NewStatus {
                        session_id: id,
                        step: i,
                        name: "s",
                        status: StepStatus::Processing,
                        message: None,
                        details: &serde_json::json!({}),
                    })
                    .await
                    .unwrap();
            }
        })
    };
    // Read while it writes: a snapshot never holds rows newer than the session it read.
    let mut reads = 0;
    while !writer.is_finished() {
        let snap = store.session_snapshot(id).await.unwrap().unwrap();
        let said: u32 = serde_json::from_str::<Vec<String>>(&snap.session.warnings)
            .unwrap()
            .first()
            .map_or(0, |w| w.parse().unwrap());
        let written = snap.status.timeline.last().map_or(0, |r| r.step);
        assert!(
            said == written || said == written + 1,
            "the session says {said} but its rows go up to {written}"
        );
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    // An unknown session has no snapshot.
    assert!(store
        .session_snapshot(Uuid::now_v7())
        .await
        .unwrap()
        .is_none());
});

both_backends!(a_gate_opens_all_at_once_or_not_at_all, |db| {
    use baton::{model::StepStatus, server::store::NewStatus};
    let store = db.store().await;
    let id = new_session(&store).await;
    let details = serde_json::json!({ "action": "Export Orders" });
    let status = |session_id| NewStatus {
        session_id,
        step: 2,
        name: "Export orders",
        status: StepStatus::Waiting,
        message: Some("12 orders ready to export"),
        details: &details,
    };
    // An unknown session, or a run the session has left (it was cleared): nothing is written.
    assert!(store
        .open_gate(&status(Uuid::now_v7()), 1, "Export Orders")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .open_gate(&status(id), 2, "Export Orders")
        .await
        .unwrap()
        .is_none());
    let snap = store.session_snapshot(id).await.unwrap().unwrap();
    assert_eq!(snap.session.state, "running");
    assert!(snap.status.timeline.is_empty() && snap.steps.is_empty());

    // The session waits, the row is there and the step offers its button.
    let row = store
        .open_gate(&status(id), 1, "Export Orders")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.step, row.status), (2, StepStatus::Waiting));
    let snap = store.session_snapshot(id).await.unwrap().unwrap();
    assert_eq!(snap.session.state, "waiting");
    assert_eq!(snap.status.steps, [row]);
    assert_eq!(snap.steps.len(), 1);
    assert_eq!(
        (
            snap.steps[0].step,
            snap.steps[0].state.as_str(),
            snap.steps[0].action.as_deref()
        ),
        (2, "waiting", Some("Export Orders"))
    );
});

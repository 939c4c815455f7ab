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
            note: None,
            started_at: Utc::now(),
        })
        .await
        .unwrap();
    id
}

both_backends!(a_session_snapshot_is_read_at_one_moment, |db| {
    use baton::{
        model::{SessionState, StepStatus},
        server::store::SessionOp,
    };
    let store = db.store().await;
    let id = new_session(&store).await;
    // As the workflows do, each change says where the session is (here: "i" in its warnings)
    // and writes that step's status row, in one transaction.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 1..=150u32 {
                let ops = [
                    SessionOp::State {
                        from: SessionState::Running,
                        to: SessionState::Running,
                        warnings: vec![i.to_string()],
                        finished_at: None,
                    },
                    SessionOp::Status {
                        step: i,
                        name: "s".into(),
                        status: StepStatus::Processing,
                        message: None,
                        details: serde_json::json!({}),
                    },
                ];
                store.apply_session_ops(id, 1, &ops).await.unwrap().unwrap();
            }
        })
    };
    // Read while it writes: a snapshot never holds rows newer or older than the session it read.
    let mut reads = 0;
    while !writer.is_finished() {
        let snap = store
            .session_snapshot(id, 1000, None)
            .await
            .unwrap()
            .unwrap();
        let said: u32 = serde_json::from_str::<Vec<String>>(&snap.session.warnings)
            .unwrap()
            .first()
            .map_or(0, |w| w.parse().unwrap());
        let written = snap.status.timeline.last().map_or(0, |r| r.step);
        assert_eq!(
            said, written,
            "the session says {said} but its rows go up to {written}"
        );
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    // The timeline comes in pages, newest first, each oldest first.
    let page = store.session_snapshot(id, 40, None).await.unwrap().unwrap();
    assert_eq!(page.status.timeline.len(), 40);
    assert_eq!(page.status.timeline.last().unwrap().step, 150);
    assert_eq!(page.status.timeline.first().unwrap().step, 111);
    let before = page.timeline_before.expect("older rows");
    let older = store
        .session_snapshot(id, 200, Some(before))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(older.status.timeline.len(), 110);
    assert_eq!(older.status.timeline.last().unwrap().step, 110);
    assert!(older.timeline_before.is_none());
    // An unknown session has no snapshot.
    assert!(store
        .session_snapshot(Uuid::now_v7(), 10, None)
        .await
        .unwrap()
        .is_none());
});

both_backends!(a_gate_opens_all_at_once_or_not_at_all, |db| {
    use baton::{
        model::{SessionState, StepStatus},
        server::store::SessionOp,
    };
    let store = db.store().await;
    let id = new_session(&store).await;
    let gate = [
        SessionOp::State {
            from: SessionState::Running,
            to: SessionState::Waiting,
            warnings: vec![],
            finished_at: None,
        },
        SessionOp::Enter {
            step: 2,
            action: Some("Export Orders".into()),
        },
        SessionOp::Status {
            step: 2,
            name: "Export orders".into(),
            status: StepStatus::Waiting,
            message: Some("12 orders ready to export".into()),
            details: serde_json::json!({ "action": "Export Orders" }),
        },
    ];
    // An unknown session, or a run the session has left (it was cleared): nothing is written.
    assert!(store
        .apply_session_ops(Uuid::now_v7(), 1, &gate)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .apply_session_ops(id, 2, &gate)
        .await
        .unwrap()
        .is_none());
    let snap = store
        .session_snapshot(id, 100, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.session.state, "running");
    assert!(snap.status.timeline.is_empty() && snap.steps.is_empty());

    // The session waits, the row is there and the step offers its button.
    let applied = store
        .apply_session_ops(id, 1, &gate)
        .await
        .unwrap()
        .unwrap();
    let row = applied.rows[0].clone();
    assert_eq!((row.step, row.status), (2, StepStatus::Waiting));
    let snap = store
        .session_snapshot(id, 100, None)
        .await
        .unwrap()
        .unwrap();
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
    // Twice is refused: the session no longer runs.
    assert!(store
        .apply_session_ops(id, 1, &gate)
        .await
        .unwrap()
        .is_none());
});

both_backends!(
    sessions_that_ended_and_old_runs_rows_are_pruned_beyond_what_is_kept,
    |db| {
        use baton::{
            model::{SessionState, StepStatus},
            server::store::SessionOp,
        };
        let store = db.store().await;
        let row = |step| SessionOp::Status {
            step,
            name: "s".into(),
            status: StepStatus::Processing,
            message: None,
            details: serde_json::json!({}),
        };
        let mut ended = Vec::new();
        for _ in 0..5 {
            let id = new_session(&store).await;
            let end = [SessionOp::State {
                from: SessionState::Running,
                to: SessionState::Completed,
                warnings: vec![],
                finished_at: Some(Utc::now()),
            }];
            store.apply_session_ops(id, 1, &end).await.unwrap().unwrap();
            ended.push(id);
        }
        // One still open, started over twice, with rows in each of its three runs.
        let open = new_session(&store).await;
        store
            .apply_session_ops(open, 1, &[row(1)])
            .await
            .unwrap()
            .unwrap();
        for run in 1..=2 {
            let again = [
                SessionOp::Restart {
                    from: SessionState::Running,
                },
                row(1),
            ];
            store
                .apply_session_ops(open, run, &again)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(store.prune_sessions(2, 1).await.unwrap(), 3);
        for (i, id) in ended.iter().enumerate() {
            assert_eq!(
                store.session(*id).await.unwrap().is_some(),
                i >= 3,
                "the newest two that ended stay"
            );
        }
        let snap = store
            .session_snapshot(open, 100, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snap.session.run, 3, "open sessions stay");
        let runs: Vec<u32> = snap.status.timeline.iter().map(|r| r.run).collect();
        assert_eq!(runs, [3], "only the newest run's rows stay");
    }
);

both_backends!(
    rows_of_processes_long_gone_are_pruned_and_running_ones_kept,
    |db| {
        let store = db.store().await;
        let long_ago = Utc::now() - Duration::days(40);
        let stopped_long_ago = InstanceRow {
            started_at: long_ago,
            heartbeat_at: long_ago,
            stopped_at: Some(long_ago),
            ..instance_row()
        };
        let died_long_ago = InstanceRow {
            started_at: long_ago,
            heartbeat_at: long_ago,
            ..instance_row()
        };
        let stopped_yesterday = InstanceRow {
            stopped_at: Some(Utc::now() - Duration::days(1)),
            ..instance_row()
        };
        let running = instance_row();
        for row in [
            &stopped_long_ago,
            &died_long_ago,
            &stopped_yesterday,
            &running,
        ] {
            store.register_instance(row).await.unwrap();
        }
        let pruned = store
            .prune_instances(Utc::now() - Duration::days(30))
            .await
            .unwrap();
        assert_eq!(pruned, 2);
        assert!(store.instance(stopped_long_ago.id).await.unwrap().is_none());
        assert!(store.instance(died_long_ago.id).await.unwrap().is_none());
        assert!(store
            .instance(stopped_yesterday.id)
            .await
            .unwrap()
            .is_some());
        assert!(store.instance(running.id).await.unwrap().is_some());
    }
);

//! The status service against real databases: rows append, each step's latest row wins, a clear
//! starts a fresh run and keeps the history, and every write is a `step-status` event.

use baton::{
    model::{EventKind, JobSource, StepStatus},
    server::{
        events::EventBus,
        store::NewSession,
        workflows::status::{StatusError, StatusService},
    },
};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

both_backends!(
    steps_write_their_status_and_readers_see_the_latest_per_step,
    |db| {
        let store = db.store().await;
        let events = EventBus::new(64);
        let status = StatusService::new(store.clone(), events.clone());
        let mut feed = events.subscribe(None);
        let session = Uuid::now_v7();
        store
            .insert_session(&NewSession {
                id: session,
                workflow: "daily-sync".into(),
                source: JobSource::Manual,
                triggered_by: Some("anna@example.com".into()),
                note: None,
                started_at: Utc::now(),
            })
            .await
            .unwrap();

        let none = json!({});
        status
            .write_status(
                session,
                1,
                "Import web data",
                StepStatus::Processing,
                Some("importing orders"),
                &none,
            )
            .await
            .unwrap();
        status
            .write_status(
                session,
                2,
                "Export orders",
                StepStatus::Waiting,
                None,
                &none,
            )
            .await
            .unwrap();
        let done = json!({"processed": 120, "created": 3});
        let last = status
            .write_status(
                session,
                1,
                "Import web data",
                StepStatus::Completed,
                Some("120 records"),
                &done,
            )
            .await
            .unwrap();
        assert_eq!(
            (last.run, last.step, last.status),
            (1, 1, StepStatus::Completed)
        );

        let read = status.get_session_status(session).await.unwrap();
        assert_eq!(read.run, 1);
        let steps: Vec<_> = read
            .steps
            .iter()
            .map(|r| (r.step, r.status, r.message.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                (1, StepStatus::Completed, Some("120 records".to_string())),
                (2, StepStatus::Waiting, None)
            ]
        );
        assert_eq!(read.steps[0].details, done);
        let timeline: Vec<_> = read.timeline.iter().map(|r| (r.step, r.status)).collect();
        assert_eq!(
            timeline,
            [
                (1, StepStatus::Processing),
                (2, StepStatus::Waiting),
                (1, StepStatus::Completed)
            ]
        );

        // Every write went out as it happened.
        let mut published = Vec::new();
        while let Ok(event) = feed.live.try_recv() {
            if let EventKind::StepStatus(row) = &event.kind {
                published.push(row.id);
            }
        }
        assert_eq!(
            published,
            read.timeline.iter().map(|r| r.id).collect::<Vec<_>>()
        );

        // A clear starts run 2: no step has said anything in it yet, the history stays.
        assert_eq!(status.clear_session(session).await.unwrap(), 2);
        let read = status.get_session_status(session).await.unwrap();
        assert_eq!((read.run, read.steps.len(), read.timeline.len()), (2, 0, 3));
        let row = status
            .write_status(
                session,
                1,
                "Import web data",
                StepStatus::Processing,
                None,
                &none,
            )
            .await
            .unwrap();
        assert_eq!(row.run, 2);
        let read = status.get_session_status(session).await.unwrap();
        assert_eq!(read.steps.len(), 1);
        assert_eq!(read.timeline.len(), 4);

        // An unknown session is an error, and nothing is written.
        let unknown = Uuid::now_v7();
        let err = status
            .write_status(unknown, 1, "x", StepStatus::Waiting, None, &none)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StatusError::NotFound(id) if id == unknown),
            "{err}"
        );
        assert!(matches!(
            status.get_session_status(unknown).await,
            Err(StatusError::NotFound(_))
        ));
        assert!(matches!(
            status.clear_session(unknown).await,
            Err(StatusError::NotFound(_))
        ));
    }
);

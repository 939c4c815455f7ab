//! The status service (seed 000's status table): steps write what they are doing as it
//! happens, every write is also a `step-status` event, and readers only read.

use uuid::Uuid;

use crate::model::{EventKind, SessionCleared, SessionStatus, StatusRow, StepStatus};
use crate::server::{
    events::EventBus,
    store::{NewStatus, SessionOp, Store, StoreError},
};

/// Why a status call did nothing.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No session with that id.
    #[error("there is no session {0}")]
    NotFound(Uuid),
    /// The session kept changing while it was being cleared.
    #[error("session {0} kept changing while it was being cleared; try again")]
    Busy(Uuid),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes and reads the status table; cheap to clone.
#[derive(Clone)]
pub struct StatusService {
    store: Store,
    events: EventBus,
}

impl StatusService {
    /// A service over `store`, announcing on `events`.
    pub fn new(store: Store, events: EventBus) -> Self {
        Self { store, events }
    }

    /// Appends a row for `step` of `session` and publishes it as `step-status`.
    pub async fn write_status(
        &self,
        session: Uuid,
        step: u32,
        name: &str,
        status: StepStatus,
        message: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<StatusRow, StatusError> {
        let row = self
            .store
            .append_status(&NewStatus {
                session_id: session,
                step,
                name,
                status,
                message,
                details,
            })
            .await?
            .ok_or(StatusError::NotFound(session))?;
        self.events.publish(EventKind::StepStatus(row.clone()));
        Ok(row)
    }

    /// Each step's latest row in the session's current run, and the whole timeline.
    pub async fn get_session_status(&self, session: Uuid) -> Result<SessionStatus, StatusError> {
        self.store
            .session_status(session)
            .await?
            .ok_or(StatusError::NotFound(session))
    }

    /// Resets the session for a fresh run (the session lifecycle's restart: from any state, a
    /// compare-and-set on its state and run); its rows so far stay in the timeline. Publishes
    /// `session-cleared` and `session-updated`. Nothing else: a workflow session starts over
    /// with `Workflows::clear`, which also enters its first step.
    pub async fn clear_session(&self, session: Uuid) -> Result<u32, StatusError> {
        for _ in 0..5 {
            let row = self
                .store
                .session(session)
                .await?
                .ok_or(StatusError::NotFound(session))?;
            let restart = [SessionOp::Restart {
                from: row.session_state(),
            }];
            let Some(applied) = self
                .store
                .apply_session_ops(session, row.run(), &restart)
                .await?
            else {
                continue; // it moved meanwhile; look again
            };
            let run = applied.session.run();
            self.events
                .publish(EventKind::SessionCleared(SessionCleared {
                    session_id: session.to_string(),
                    run,
                }));
            self.events
                .publish(EventKind::SessionUpdated(applied.session.update()));
            return Ok(run);
        }
        Err(StatusError::Busy(session))
    }
}

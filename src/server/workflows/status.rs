//! The status service (seed 000's status table): steps write what they are doing as it
//! happens, every write is also a `step-status` event, and readers only read.

use uuid::Uuid;

use crate::model::{EventKind, SessionCleared, SessionStatus, StatusRow, StepStatus};
use crate::server::{
    events::EventBus,
    store::{NewStatus, Store, StoreError},
};

/// Why a status call did nothing.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No session with that id.
    #[error("there is no session {0}")]
    NotFound(Uuid),
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

    /// Step `step` of run `run` waits at its gate: appends its "waiting" row (with `action`
    /// in the details), makes the session wait and offers the button, in one transaction, then
    /// publishes the row as `step-status`.
    pub async fn open_gate(
        &self,
        session: Uuid,
        run: u32,
        step: u32,
        name: &str,
        message: &str,
        action: &str,
    ) -> Result<StatusRow, StatusError> {
        let row = self
            .store
            .open_gate(
                &NewStatus {
                    session_id: session,
                    step,
                    name,
                    status: StepStatus::Waiting,
                    message: Some(message),
                    details: &serde_json::json!({ "action": action }),
                },
                run,
                action,
            )
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

    /// Resets the session for a fresh run; its rows so far stay in the timeline. Publishes
    /// `session-cleared`.
    pub async fn clear_session(&self, session: Uuid) -> Result<u32, StatusError> {
        let run = self
            .store
            .clear_session(session)
            .await?
            .ok_or(StatusError::NotFound(session))?;
        self.events
            .publish(EventKind::SessionCleared(SessionCleared {
                session_id: session.to_string(),
                run,
            }));
        Ok(run)
    }
}

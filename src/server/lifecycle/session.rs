//! The session lifecycle: every move a workflow session can make, as one pure function, as the
//! job lifecycle has. The store writes what [`apply`] returns with a compare-and-set on the
//! session's state and run, so two processes (or a late settle of an old run) cannot both move
//! it, and nothing an old run does lands in a new one.
//!
//! ```text
//!            gate opened            step failed
//!  Running ───────────────▶ Waiting      Running ──────────▶ Failed ──step retried──▶ Running
//!     ▲  ◀─────────────────              last step ended
//!     │      gate pressed                Running ──────────▶ Completed | CompletedWithWarnings
//!     │
//!     └─ restarted (start over, a new run) from any state
//!        cancelled: Running | Waiting ──▶ Cancelled;  abandoned (definition gone) ──▶ Failed
//! ```

use crate::model::SessionState;

/// Something that happens to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// A step was entered and runs its jobs (or a jobless step ran at once).
    StepStarted,
    /// A step waits at its gate for a person.
    GateOpened,
    /// A person pressed the gate's button; the step's jobs run.
    GatePressed,
    /// A failed step is tried again.
    StepRetried,
    /// A step failed and may not go on.
    StepFailed,
    /// The last step ended; `warnings`: some step failed but was allowed to, or jobs noted some.
    Finished { warnings: bool },
    /// Started over: a new run from step 1, whatever the session was doing.
    Restarted,
    /// A person stopped it.
    Cancelled,
    /// Its workflow, or the step it is at, left the configuration: it cannot go on.
    Abandoned,
}

/// Why a move was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {} session cannot take {event:?}", .state.as_str())]
pub struct Refused {
    /// Where the session is.
    pub state: SessionState,
    /// What was asked of it.
    pub event: SessionEvent,
}

/// The one place a session changes state.
pub fn apply(state: SessionState, event: SessionEvent) -> Result<SessionState, Refused> {
    use SessionEvent as E;
    use SessionState as S;
    let next = match (state, event) {
        (_, E::Restarted) => S::Running,
        (S::Running, E::StepStarted) => S::Running,
        (S::Running, E::GateOpened) => S::Waiting,
        (S::Waiting, E::GatePressed) => S::Running,
        (S::Failed, E::StepRetried) => S::Running,
        (S::Running, E::StepFailed) => S::Failed,
        (S::Running, E::Finished { warnings: false }) => S::Completed,
        (S::Running, E::Finished { warnings: true }) => S::CompletedWithWarnings,
        (S::Running | S::Waiting, E::Cancelled) => S::Cancelled,
        (S::Running | S::Waiting | S::Failed, E::Abandoned) => S::Failed,
        _ => return Err(Refused { state, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState as S;

    const EVENTS: [SessionEvent; 10] = [
        SessionEvent::StepStarted,
        SessionEvent::GateOpened,
        SessionEvent::GatePressed,
        SessionEvent::StepRetried,
        SessionEvent::StepFailed,
        SessionEvent::Finished { warnings: false },
        SessionEvent::Finished { warnings: true },
        SessionEvent::Restarted,
        SessionEvent::Cancelled,
        SessionEvent::Abandoned,
    ];

    /// Every (state, event) pair and where it leads; `None`: refused.
    fn expected(state: SessionState, event: SessionEvent) -> Option<SessionState> {
        use SessionEvent as E;
        match (state, event) {
            (_, E::Restarted) => Some(S::Running),
            (S::Running, E::StepStarted) => Some(S::Running),
            (S::Running, E::GateOpened) => Some(S::Waiting),
            (S::Running, E::StepFailed) => Some(S::Failed),
            (S::Running, E::Finished { warnings: false }) => Some(S::Completed),
            (S::Running, E::Finished { warnings: true }) => Some(S::CompletedWithWarnings),
            (S::Running, E::Cancelled) => Some(S::Cancelled),
            (S::Running, E::Abandoned) => Some(S::Failed),
            (S::Waiting, E::GatePressed) => Some(S::Running),
            (S::Waiting, E::Cancelled) => Some(S::Cancelled),
            (S::Waiting, E::Abandoned) => Some(S::Failed),
            (S::Failed, E::StepRetried) => Some(S::Running),
            (S::Failed, E::Abandoned) => Some(S::Failed),
            _ => None,
        }
    }

    #[test]
    fn every_state_and_event_leads_where_the_table_says() {
        for state in SessionState::ALL {
            for event in EVENTS {
                assert_eq!(
                    apply(state, event).ok(),
                    expected(state, event),
                    "{state:?} × {event:?}"
                );
            }
        }
    }

    #[test]
    fn finished_sessions_move_only_when_started_over() {
        for state in [S::Completed, S::CompletedWithWarnings, S::Cancelled] {
            for event in EVENTS {
                let moved = apply(state, event);
                assert_eq!(
                    moved.is_ok(),
                    event == SessionEvent::Restarted,
                    "{state:?} × {event:?}"
                );
            }
        }
    }

    #[test]
    fn a_waiting_session_runs_again_only_through_its_gate_or_a_restart() {
        for event in EVENTS {
            if apply(S::Waiting, event) == Ok(S::Running) {
                assert!(matches!(
                    event,
                    SessionEvent::GatePressed | SessionEvent::Restarted
                ));
            }
        }
    }
}

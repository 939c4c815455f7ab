//! Signals between processes on one Postgres (LISTEN/NOTIFY): a job queued by any process wakes
//! every dispatcher at once, and a cancel or a request to make way reaches the process running
//! the job at once, instead of at its next poll or lease renewal. SQLite has one process and
//! nothing to tell.
//!
//! A signal is a hint, never the only path: one lost while a listener reconnects costs what it
//! cost before (the next poll, the next renewal), which still happen.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Engine, StopReason};

/// A job was queued: claim now.
pub(super) const WAKE: &str = "baton_wake";
/// `<job id> cancel` or `<job id> yield`: the process running it stops it.
pub(super) const STOP: &str = "baton_stop";

impl Engine {
    /// Listens for the other processes' signals until `shutdown`, reconnecting when the
    /// connection is lost. Returns at once on SQLite.
    pub(super) async fn listen(self, shutdown: CancellationToken) {
        loop {
            let listener = tokio::select! {
                _ = shutdown.cancelled() => return,
                listener = self.inner.store.listener(&[WAKE, STOP]) => listener,
            };
            let mut listener = match listener {
                Ok(Some(listener)) => listener,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for the other processes' signals; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(signal)) => self.on_signal(signal.channel(), signal.payload()),
                    // The connection dropped and comes back on the next call; what was sent
                    // meanwhile is lost, so look at the queue once.
                    Ok(None) => self.inner.wake.notify_one(),
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the signal listener; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    fn on_signal(&self, channel: &str, payload: &str) {
        match channel {
            WAKE => self.inner.wake.notify_one(),
            STOP => {
                let mut parts = payload.split(' ');
                let id = parts.next().and_then(|id| Uuid::parse_str(id).ok());
                let reason = match parts.next() {
                    Some("yield") => StopReason::Yield,
                    _ => StopReason::Cancel,
                };
                if let Some(running) = id.and_then(|id| self.local(id)) {
                    running.request(reason);
                }
            }
            _ => {}
        }
    }

    /// Tells the other processes a job was queued.
    pub(super) async fn signal_queued(&self) {
        self.inner.store.notify(WAKE, "").await;
    }

    /// Tells the process running job `id` to stop it (`cancel` or `yield`).
    pub(super) async fn signal_stop(&self, id: Uuid, reason: &str) {
        self.inner
            .store
            .notify(STOP, &format!("{id} {reason}"))
            .await;
    }
}

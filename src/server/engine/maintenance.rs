//! Housekeeping loops: retention of finished jobs, and the coalesced queue counts.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::model::EventKind;

/// How long the row of a process that stopped (or died) is kept.
const INSTANCE_KEEP: chrono::TimeDelta = chrono::TimeDelta::days(30);

impl Engine {
    pub(super) async fn prune(self, shutdown: CancellationToken) {
        loop {
            for ty in self.types() {
                match self.inner.store.prune_jobs(&ty.name, ty.keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sync_type = %ty.name, pruned = n, "pruned old jobs"),
                    Err(err) => tracing::warn!(error = %err, "could not prune old jobs"),
                }
            }
            let forgotten = chrono::Utc::now() - INSTANCE_KEEP;
            if let Err(err) = self.inner.store.prune_instances(forgotten).await {
                tracing::warn!(error = %err, "could not prune the rows of stopped processes");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.inner.settings.retention_interval) => {}
            }
        }
    }

    /// Ends the order forms' leases that stopped being live (every second, so a vanished tab
    /// or a timeout lets the queue go on within a second of it).
    pub(super) async fn reap_leases(self, shutdown: CancellationToken) {
        let every = Duration::from_secs(1).min(self.inner.settings.smart_sync_grace / 2);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(err) = self.smart_reap().await {
                tracing::warn!(error = %err, "could not end the order forms' stale leases");
            }
        }
    }

    /// Publishes `queue-updated` with fresh counts after changes, at most every 100 ms.
    pub(super) async fn publish_queue(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.queue_changed.notified() => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.inner.store.queue_counts().await {
                Ok(counts) => {
                    self.inner.events.publish(EventKind::QueueUpdated(counts));
                }
                Err(err) => tracing::debug!(error = %err, "could not count the queue"),
            }
        }
    }
}

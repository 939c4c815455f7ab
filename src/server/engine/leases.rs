//! The lease keeper: renews the leases of the jobs this process runs, passes on cancel and
//! yield requests made through other processes, and rescues jobs whose lease ran out.

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{chrono, Engine, StopReason};
use crate::{
    server::lifecycle::{apply, Transition},
    server::store::Outcome,
};

impl Engine {
    /// Renews the leases of the jobs running here, passes on cancel and yield requests made
    /// elsewhere, and rescues jobs whose lease ran out (their process died or hung).
    pub(super) async fn keep_leases(self, shutdown: CancellationToken) {
        let every = self.inner.settings.lease_renew;
        loop {
            self.rescue().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            self.renew().await;
        }
    }

    async fn renew(&self) {
        let inner = &self.inner;
        let ids: Vec<Uuid> = inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let now = Utc::now();
        let until = now + chrono(inner.settings.lease_ttl);
        match inner
            .store
            .renew_leases(inner.owner, &ids, now, until)
            .await
        {
            Ok(renewed) => {
                for job in renewed {
                    let Some(running) = self.local(job.id) else {
                        continue;
                    };
                    if i64::from(running.attempt) != job.attempt {
                        continue;
                    }
                    if job.cancel_requested_at.is_some() {
                        running.request(StopReason::Cancel);
                    } else if job.yield_requested_at.is_some() {
                        running.request(StopReason::Yield);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not renew job leases"),
        }
    }

    /// Returns every job whose lease has run out to pending (or failed, when out of attempts).
    pub async fn rescue(&self) -> usize {
        let store = &self.inner.store;
        let expired = match store.expired_jobs(Utc::now()).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(error = %err, "could not look for expired leases");
                return 0;
            }
        };
        let mut rescued = 0;
        for row in expired {
            let before = row.lifecycle();
            let Ok(next) = apply(&before, Transition::Rescue, Utc::now()) else {
                continue;
            };
            match store
                .write_transition(row.id, &before, &next, &Outcome::default())
                .await
            {
                Ok(Some(after)) => {
                    tracing::warn!(
                        job = %row.id,
                        sync_type = %row.sync_type,
                        state = %after.state,
                        "rescued a job whose worker stopped renewing its lease"
                    );
                    rescued += 1;
                    self.announce(&after, true);
                    self.inner.wake.notify_one();
                }
                Ok(None) => {} // someone else got there first
                Err(err) => tracing::warn!(job = %row.id, error = %err, "could not rescue a job"),
            }
        }
        rescued
    }
}

//! The lease keeper: renews the leases of the attempts this process runs, fences the ones whose
//! lease was taken over, passes on cancel and yield requests made through other processes, and
//! rescues jobs whose lease ran out.
//!
//! Fencing has two sides that never overlap: the holder stops its task when its lease is not
//! renewed by `lease_ttl − margin` after the renewal was sent (by its own clock, so being cut off
//! from the database is enough), and a rescuer takes a job only `margin` after its lease ran out
//! by the database's clock, checked in the same statement that takes it.

use std::{collections::HashMap, sync::Arc};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Engine, Running, StopReason};
use crate::{
    model::{JobLogLine, LogLevel},
    server::{
        lifecycle::{apply, Transition},
        store::{Outcome, TransitionWrite},
    },
};

impl Engine {
    /// Renews the leases of the attempts running here, passes on cancel and yield requests made
    /// elsewhere, and rescues jobs whose lease ran out (their process died, hung or lost the
    /// database).
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

    /// One renewal of every lease this process holds. An attempt the database no longer gives
    /// this process is fenced at once; one whose renewal fails or is late keeps its old deadline
    /// and is fenced when that passes.
    pub(super) async fn renew(&self) {
        let inner = &self.inner;
        let running: HashMap<(Uuid, u32), Arc<Running>> = inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, r)| !r.ended.load(std::sync::atomic::Ordering::SeqCst))
            .map(|(k, r)| (*k, r.clone()))
            .collect();
        if running.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = running.keys().map(|(id, _)| *id).collect();
        let sent = tokio::time::Instant::now();
        let settings = &inner.settings;
        // A renewal that takes longer than the interval is as good as lost; the next one tries
        // again, and the deadlines fence what the database no longer holds for us.
        let renewal = tokio::time::timeout(
            settings.lease_renew,
            inner
                .store
                .renew_leases(inner.owner, &ids, Utc::now(), settings.lease_ttl),
        )
        .await;
        let renewed = match renewal {
            Ok(Ok(renewed)) => renewed,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not renew job leases");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    timeout = ?settings.lease_renew,
                    "renewing job leases took too long; tasks stop if their leases run out"
                );
                return;
            }
        };
        let until = sent + settings.lease_ttl - settings.lease_margin();
        inner.metrics.leases_renewed(renewed.len());
        let mut held = std::collections::HashSet::new();
        for job in renewed {
            let key = (job.id, job.attempt.max(0) as u32);
            let Some(attempt) = running.get(&key) else {
                continue;
            };
            held.insert(key);
            attempt.extend(until);
            if job.cancel_requested_at.is_some() {
                attempt.request(StopReason::Cancel);
            } else if job.yield_requested_at.is_some() {
                attempt.request(StopReason::Yield);
            }
        }
        for (key, attempt) in &running {
            if !held.contains(key) && !attempt.ended.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::warn!(job = %key.0, attempt = key.1, "the lease was taken over; stopping the task");
                attempt.request(StopReason::LeaseLost);
            }
        }
    }

    /// Returns every job whose lease ran out (by the database's clock, at least the margin ago)
    /// to pending, the attempt not counted, or fails it after its third rescue.
    pub async fn rescue(&self) -> usize {
        let store = &self.inner.store;
        let margin = self.inner.settings.lease_margin();
        let (expired, now) = match store.expired_jobs(margin).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = %err, "could not look for expired leases");
                return 0;
            }
        };
        let mut rescued = 0;
        for row in expired {
            let before = row.lifecycle();
            let Ok(next) = apply(&before, Transition::Rescue, now) else {
                continue;
            };
            let write = TransitionWrite {
                id: row.id,
                before: &before,
                next: &next,
                outcome: &Outcome::default(),
            };
            match store.write_rescue(write, margin).await {
                Ok(Some(after)) => {
                    tracing::warn!(
                        job = %row.id,
                        sync_type = %row.sync_type,
                        attempt = row.attempt,
                        state = %after.state,
                        "rescued a job whose worker stopped renewing its lease"
                    );
                    let line = JobLogLine {
                        id: None,
                        job_id: row.id.to_string(),
                        attempt: before.attempt,
                        seq: 0,
                        at: Utc::now(),
                        level: LogLevel::Error,
                        message: format!(
                            "{} (rescued by process {}; the job is {} now)",
                            next.error.as_deref().unwrap_or("lease lost"),
                            self.inner.owner,
                            after.state
                        ),
                    };
                    if let Err(err) = store.append_logs(&[line]).await {
                        tracing::debug!(job = %row.id, error = %err, "could not log the rescue");
                    }
                    rescued += 1;
                    self.inner.metrics.job_rescued(&row.sync_type);
                    self.announce(&after, true);
                    self.inner.wake.notify_one();
                }
                // Renewed meanwhile, or someone else got there first.
                Ok(None) => {}
                Err(err) => tracing::warn!(job = %row.id, error = %err, "could not rescue a job"),
            }
        }
        rescued
    }
}

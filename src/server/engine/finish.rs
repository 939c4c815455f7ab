//! The end of an attempt: the pure transition is applied and written compare-and-set by one
//! batch writer, and what it means is announced on the bus.

use crate::model::text::{job_text, JOB_TEXT_CHARS};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{chrono, types::SyncType, Engine, FinishRequest};
use crate::{
    model::{EventKind, JobState},
    server::lifecycle::{apply, Holder, Lifecycle, Transition},
    server::store::{JobRow, Outcome, StoreError, TransitionWrite},
};

/// An attempt that ends in `failed`, whatever attempts are left.
pub(super) fn fatal(holder: Holder, error: String) -> Transition {
    Transition::Fail {
        holder,
        error: job_text(error, JOB_TEXT_CHARS),
        retryable: false,
        backoff: chrono::Duration::zero(),
    }
}

/// An attempt that goes back to pending after `ty`'s backoff, if attempts are left.
pub(super) fn retryable(holder: Holder, error: String, ty: &SyncType) -> Transition {
    Transition::Fail {
        holder,
        error: job_text(error, JOB_TEXT_CHARS),
        retryable: true,
        backoff: chrono(ty.retry.backoff(holder.attempt, fastrand::f64())),
    }
}

impl Engine {
    /// Writes the end of an attempt, compare-and-set. If the row moved meanwhile (a cancel was
    /// requested), reads it again and re-applies; if the transition is refused on the row as it
    /// is now (the lease was lost to a rescue), the result is dropped and logged.
    pub(super) async fn finish(
        &self,
        id: Uuid,
        mut before: Lifecycle,
        transition: Transition,
        outcome: Outcome,
    ) {
        let store = &self.inner.store;
        // `before` is what the claim returned; a cancel requested since is only in the database.
        let mut fresh = false;
        for _ in 0..10 {
            let written = match apply(&before, transition.clone(), Utc::now()) {
                Ok(next) => self.write_batched(id, &before, &next, &outcome).await,
                Err(refused) if fresh => {
                    tracing::warn!(job = %id, %refused, "dropped the result of a late worker");
                    return;
                }
                Err(_) => Ok(None), // read the row as it is now
            };
            let failed = match written {
                Ok(Some(row)) => {
                    let failed = matches!(transition, Transition::Fail { .. });
                    if failed && row.job_state() == JobState::Pending {
                        self.inner.metrics.job_retried(&row.sync_type);
                    }
                    self.announce(&row, failed);
                    return;
                }
                Ok(None) => match store.get_job(id).await {
                    Ok(Some(row)) => {
                        before = row.lifecycle();
                        fresh = true;
                        continue;
                    }
                    Ok(None) => return,
                    Err(err) => err,
                },
                Err(err) => err,
            };
            tracing::warn!(job = %id, error = %failed, "could not store the job's result");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::error!(job = %id, "gave up storing the job's result; its lease will expire and it will be rescued");
    }

    /// Hands one end of an attempt to the batch writer and waits for its answer.
    async fn write_batched(
        &self,
        id: Uuid,
        before: &Lifecycle,
        next: &Lifecycle,
        outcome: &Outcome,
    ) -> Result<Option<JobRow>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = FinishRequest {
            id,
            before: before.clone(),
            next: next.clone(),
            outcome: outcome.clone(),
            reply,
        };
        let batching = self
            .inner
            .batching
            .load(std::sync::atomic::Ordering::SeqCst);
        if batching && self.inner.finishes.send(request).is_ok() {
            if let Ok(result) = answer.await {
                return result;
            }
        }
        // No writer (not started, or stopped at shutdown): write it ourselves.
        self.inner
            .store
            .write_transition(id, before, next, outcome)
            .await
    }

    /// The batch writer: every end of an attempt waiting at that moment (up to 256) is written
    /// in one transaction, so a thousand short jobs finishing together cost a few commits, not a
    /// thousand. A batch that fails as a whole is written again one by one, so one bad write
    /// cannot take the others with it.
    pub(super) async fn write_finishes(
        self,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<FinishRequest>,
        stop: CancellationToken,
    ) {
        let store = &self.inner.store;
        loop {
            let first = tokio::select! {
                biased;
                request = queue.recv() => match request {
                    Some(request) => request,
                    None => break,
                },
                _ = stop.cancelled() => break,
            };
            let mut batch = vec![first];
            while batch.len() < 256 {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let writes: Vec<TransitionWrite<'_>> = batch
                .iter()
                .map(|r| TransitionWrite {
                    id: r.id,
                    before: &r.before,
                    next: &r.next,
                    outcome: &r.outcome,
                })
                .collect();
            match store.write_transitions(&writes).await {
                Ok(rows) => {
                    for (request, row) in batch.into_iter().zip(rows) {
                        let _ = request.reply.send(Ok(row));
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, size = batch.len(), "a batch of job ends failed; writing them one by one");
                    for request in batch {
                        let result = store
                            .write_transition(
                                request.id,
                                &request.before,
                                &request.next,
                                &request.outcome,
                            )
                            .await;
                        let _ = request.reply.send(result);
                    }
                }
            }
        }
    }

    /// Publishes what a written transition means; `failed_attempt`: a pending job got there by
    /// a failed attempt (a retry is coming), not by making way.
    pub(super) fn announce(&self, row: &JobRow, failed_attempt: bool) {
        let job = row.to_job();
        if job.state.is_terminal() {
            self.inner.metrics.job_finished(&job);
            tracing::debug!(
                job = %job.id,
                sync_type = %job.sync_type,
                state = job.state.as_str(),
                attempt = job.attempt,
                "job finished"
            );
        }
        let event = match job.state {
            JobState::Completed => Some(EventKind::SyncCompleted(job)),
            JobState::Failed => Some(EventKind::SyncError(job)),
            JobState::Cancelled => Some(EventKind::SyncCancelled(job)),
            JobState::Pending if failed_attempt => Some(EventKind::SyncError(job)),
            JobState::Pending | JobState::Running => None,
        };
        if let Some(event) = event {
            self.inner.events.publish(event);
        }
        self.inner.queue_changed.notify_one();
    }
}

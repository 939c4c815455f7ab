//! The dispatcher: claims what this process has room for (the one mutex slot and its free
//! shared slots) and runs each claimed job's task with its progress writer, timeout and stop
//! signal; and `start`, which runs every loop of the engine until shutdown.

use std::{
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    finish::{fatal, retryable},
    task::{LogBuffer, ProgressCell, TaskContext, TaskError},
    Engine, Running, StopReason,
};
use crate::{
    model::EventKind,
    server::lifecycle::{Holder, Transition},
    server::store::{ClaimScope, JobRow, Outcome},
};

impl Engine {
    /// Starts the loops. When `shutdown` fires they stop claiming, ask running tasks to save
    /// their checkpoints and stop (their jobs go back to pending, to resume on the next start), and
    /// the returned handle resolves once they have, or after `drain` at most.
    pub fn start(&self, shutdown: CancellationToken, drain: Duration) -> JoinHandle<()> {
        let finish_queue = self
            .inner
            .finish_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("an engine is started once");
        let writer_stop = CancellationToken::new();
        self.inner
            .batching
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let writer = tokio::spawn(
            self.clone()
                .write_finishes(finish_queue, writer_stop.clone()),
        );
        let loops = [
            tokio::spawn(self.clone().dispatch(shutdown.clone())),
            tokio::spawn(self.clone().keep_leases(shutdown.clone())),
            tokio::spawn(self.clone().prune(shutdown.clone())),
            tokio::spawn(self.clone().publish_queue(shutdown.clone())),
            tokio::spawn(self.clone().reap_leases(shutdown.clone())),
            tokio::spawn(self.clone().listen(shutdown.clone())),
        ];
        let engine = self.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            for handle in loops {
                let _ = handle.await;
            }
            let running: Vec<Arc<Running>> = engine
                .inner
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            for job in &running {
                job.request(StopReason::Shutdown);
            }
            engine.inner.tasks.close();
            if tokio::time::timeout(drain, engine.inner.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    jobs = engine.running_here(),
                    "jobs still running after the shutdown timeout; their leases will expire and \
                     another process will take them over"
                );
            }
            writer_stop.cancel();
            let _ = writer.await;
            engine
                .inner
                .batching
                .store(false, std::sync::atomic::Ordering::SeqCst);
        })
    }

    /// One round of the dispatcher, for tests and tools that step the engine instead of starting
    /// its loops: claims what this process has room for, runs each claimed job to the end of its
    /// attempt (written), and returns how many ran.
    pub async fn run_once(&self) -> Result<usize, crate::server::store::StoreError> {
        let handles = self.claim_and_launch().await?;
        let count = handles.len();
        for handle in handles {
            let _ = handle.await;
        }
        Ok(count)
    }

    async fn dispatch(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.claim_round().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(err) => tracing::warn!(error = %err, "could not claim jobs"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(self.inner.settings.poll_interval) => {}
            }
        }
    }

    /// Claims what this process has room for and starts it; returns how many.
    async fn claim_round(&self) -> Result<usize, crate::server::store::StoreError> {
        Ok(self.claim_and_launch().await?.len())
    }

    /// Claims what this process has room for and starts each job; the handles of their tasks.
    async fn claim_and_launch(
        &self,
    ) -> Result<Vec<JoinHandle<()>>, crate::server::store::StoreError> {
        let inner = &self.inner;
        let shared_free = inner
            .settings
            .workers
            .saturating_sub(inner.shared_running.load(Ordering::SeqCst));
        let scope = ClaimScope {
            exclusive: !inner.exclusive_busy.load(Ordering::SeqCst),
            shared: shared_free as u32,
            hold: self.hold(Utc::now()),
        };
        // The lease is measured from before the claim was sent: a slow answer only shortens it
        // here, never stretches it past what the database holds.
        let sent = tokio::time::Instant::now();
        let claimed = inner
            .store
            .claim_jobs(inner.owner, Utc::now(), inner.settings.lease_ttl, scope)
            .await?;
        let valid_until = sent + inner.settings.lease_ttl - inner.settings.lease_margin();
        let handles: Vec<_> = claimed
            .into_iter()
            .map(|row| self.launch(row, valid_until))
            .collect();
        if !handles.is_empty() {
            inner.queue_changed.notify_one();
        }
        Ok(handles)
    }

    fn launch(&self, row: JobRow, valid_until: tokio::time::Instant) -> JoinHandle<()> {
        let inner = &self.inner;
        if row.exclusive {
            inner.exclusive_busy.store(true, Ordering::SeqCst);
        } else {
            inner.shared_running.fetch_add(1, Ordering::SeqCst);
        }
        let running = Arc::new(Running::new(valid_until));
        let key = (row.id, row.attempt as u32);
        inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, running.clone());
        let engine = self.clone();
        inner.tasks.spawn(async move {
            let exclusive = row.exclusive;
            engine.run_job(row, &running).await;
            let inner = &engine.inner;
            inner
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            if exclusive {
                inner.exclusive_busy.store(false, Ordering::SeqCst);
            } else {
                inner.shared_running.fetch_sub(1, Ordering::SeqCst);
            }
            inner.wake.notify_one();
            inner.queue_changed.notify_one();
        })
    }

    async fn run_job(&self, row: JobRow, running: &Running) {
        let inner = &self.inner;
        inner.events.publish(EventKind::SyncStarted(row.to_job()));
        let started = row.started_at.unwrap_or_else(Utc::now);
        let waited = (started - row.run_at).to_std().unwrap_or_default();
        inner.metrics.job_started(&row.sync_type, waited);
        let before = row.lifecycle();
        let holder = Holder {
            owner: inner.owner,
            attempt: before.attempt,
        };
        let Ok(ty) = self.sync_type(&row.sync_type) else {
            let error = format!(
                "the sync type `{}` is not configured in this process",
                row.sync_type
            );
            let fail = fatal(holder, error);
            self.finish(row.id, before, fail, Outcome::default()).await;
            return;
        };
        let input = if ty.takes_records {
            match inner.store.job_input(row.id).await {
                Ok(input) => input,
                Err(err) => {
                    // Not the task's fault: a retry, after the usual backoff.
                    let error = super::task::database_error("could not read the job's input", err);
                    let fail = retryable(holder, error, &ty);
                    self.finish(row.id, before, fail, Outcome::default()).await;
                    return;
                }
            }
        } else {
            None
        };
        let progress = Arc::new(ProgressCell::new(
            row.id,
            &row.sync_type,
            inner.events.clone(),
        ));
        let logs = Arc::new(LogBuffer::new(row.id, before.attempt, inner.events.clone()));
        let ctx = TaskContext {
            job_id: row.id,
            sync_type: row.sync_type.clone(),
            attempt: before.attempt,
            owner: inner.owner,
            input,
            checkpoint: row
                .checkpoint
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            stop: running.stop.clone(),
            store: inner.store.clone(),
            progress: progress.clone(),
            warnings: Mutex::new(serde_json::from_str(&row.warnings).unwrap_or_default()),
            logs: logs.clone(),
        };

        // The progress writer: the latest report and new log lines, at most every
        // `progress_interval`.
        let writer_done = CancellationToken::new();
        let writer = tokio::spawn({
            let (store, progress, logs, done) = (
                inner.store.clone(),
                progress.clone(),
                logs.clone(),
                writer_done.clone(),
            );
            let (id, owner, attempt) = (row.id, inner.owner, before.attempt);
            let every = inner.settings.progress_interval;
            async move {
                loop {
                    tokio::select! {
                        _ = done.cancelled() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if let Some(report) = progress.take_dirty() {
                        if let Err(err) = store.write_progress(id, owner, attempt, &report).await {
                            tracing::debug!(job = %id, error = %err, "could not store progress");
                        }
                    }
                    let lines = logs.take(false);
                    if let Err(err) = store.append_logs(&lines).await {
                        tracing::warn!(job = %id, error = %err, lines = lines.len(), "could not store log lines");
                    }
                }
            }
        });

        let grace = inner.settings.cancel_grace;
        // A panicking task fails its job instead of taking the worker (and its lease) with it.
        let task = std::panic::AssertUnwindSafe(ty.task.run(&ctx)).catch_unwind();
        let outcome = tokio::select! {
            result = tokio::time::timeout(ty.timeout, task) => match result {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    tracing::error!(job = %row.id, sync_type = %row.sync_type, "the task panicked: {message}");
                    Err(TaskError::Fatal(format!("the task panicked: {message}")))
                }
                Err(_) => Err(TaskError::Retryable(format!(
                    "the attempt took longer than the type's timeout of {:?}",
                    ty.timeout
                ))),
            },
            // A task that does not stop when told is dropped after the grace period.
            _ = async { running.stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(job = %row.id, ?grace, "the task did not stop when asked; dropped it");
                Err(TaskError::Interrupted)
            }
            // The lease is gone (taken over, or not renewed in time by this process's own clock):
            // the task is dropped now, whatever it is doing, so its side effects stop before
            // another process may start the next attempt.
            _ = running.fenced() => {
                running.request(StopReason::LeaseLost);
                Err(TaskError::Interrupted)
            }
        };
        running
            .ended
            .store(true, std::sync::atomic::Ordering::SeqCst);
        writer_done.cancel();
        let _ = writer.await;
        if let Err(TaskError::Retryable(error) | TaskError::Fatal(error)) = &outcome {
            logs.push(crate::model::LogLevel::Error, error.clone());
        }
        let lost = running.reason() == Some(StopReason::LeaseLost);
        if lost {
            inner.metrics.lease_lost();
            let message = format!(
                "lease lost: this worker could not renew its lease on attempt {} in time (or \
                 another process took the job over), so it stopped the task; the job runs again \
                 once the lease has run out",
                before.attempt
            );
            tracing::warn!(job = %row.id, sync_type = %row.sync_type, attempt = before.attempt, "{message}");
            logs.push(crate::model::LogLevel::Error, message);
        }
        let lines = logs.take(true);
        if let Err(err) = inner.store.append_logs(&lines).await {
            tracing::warn!(job = %row.id, error = %err, lines = lines.len(), "could not store log lines");
        }
        if lost {
            // Not this worker's any more: it writes no end; the rescue (after the lease has run
            // out by the database's clock) does.
            return;
        }

        let warnings = ctx
            .warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut record = Outcome {
            progress: progress.last(),
            result: None,
            warnings: Some(serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into())),
        };
        let transition = match outcome {
            Ok(output) => {
                record
                    .progress
                    .get_or_insert_with(Default::default)
                    .progress = 100;
                record.result = output.result.map(|r| r.to_string());
                Transition::Complete { holder }
            }
            Err(TaskError::Interrupted) => match running.reason() {
                Some(StopReason::Cancel) => Transition::Cancelled { holder },
                Some(StopReason::Yield | StopReason::Shutdown) => Transition::Yield { holder },
                Some(StopReason::LeaseLost) => unreachable!("a lost attempt returned above"),
                None => fatal(holder, "the task stopped without being asked to".into()),
            },
            Err(TaskError::Retryable(error)) => retryable(holder, error, &ty),
            Err(TaskError::Fatal(error)) => fatal(holder, error),
        };
        self.finish(row.id, before, transition, record).await;
    }
}

//! The engine's loops: the dispatcher that claims and runs jobs, the lease keeper that renews
//! leases and rescues expired ones, the pruner, and the queue-count publisher.

use std::{
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    lifecycle::{apply, Holder, Lifecycle, Transition},
    task::{LogBuffer, ProgressCell, TaskContext, TaskError},
    types::SyncType,
    Engine, Running, StopReason,
};
use crate::{
    model::{EventKind, JobState},
    server::store::{ClaimScope, JobRow, Outcome, StoreError, Transition as StoreTransition},
};

/// One end of an attempt waiting for the batch writer.
pub(super) struct FinishRequest {
    id: Uuid,
    before: Lifecycle,
    next: Lifecycle,
    outcome: Outcome,
    reply: tokio::sync::oneshot::Sender<Result<Option<JobRow>, StoreError>>,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// An attempt that ends in `failed`, whatever attempts are left.
fn fatal(holder: Holder, error: String) -> Transition {
    Transition::Fail {
        holder,
        error,
        retryable: false,
        backoff: chrono::Duration::zero(),
    }
}

/// An attempt that goes back to pending after `ty`'s backoff, if attempts are left.
fn retryable(holder: Holder, error: String, ty: &SyncType) -> Transition {
    Transition::Fail {
        holder,
        error,
        retryable: true,
        backoff: chrono(ty.retry.backoff(holder.attempt, fastrand::f64())),
    }
}

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
        let writer = tokio::spawn(
            self.clone()
                .write_finishes(finish_queue, writer_stop.clone()),
        );
        let loops = [
            tokio::spawn(self.clone().dispatch(shutdown.clone())),
            tokio::spawn(self.clone().keep_leases(shutdown.clone())),
            tokio::spawn(self.clone().prune(shutdown.clone())),
            tokio::spawn(self.clone().publish_queue(shutdown.clone())),
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
        })
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
        let inner = &self.inner;
        let now = Utc::now();
        let lease_until = now + chrono(inner.settings.lease_ttl);
        let shared_free = inner
            .settings
            .workers
            .saturating_sub(inner.shared_running.load(Ordering::SeqCst));
        let scope = ClaimScope {
            exclusive: !inner.exclusive_busy.load(Ordering::SeqCst),
            shared: shared_free as u32,
        };
        let claimed = inner
            .store
            .claim_jobs(inner.owner, now, lease_until, scope)
            .await?;
        let count = claimed.len();
        for row in claimed {
            self.launch(row);
        }
        if count > 0 {
            inner.queue_changed.notify_one();
        }
        Ok(count)
    }

    fn launch(&self, row: JobRow) {
        let inner = &self.inner;
        if row.exclusive {
            inner.exclusive_busy.store(true, Ordering::SeqCst);
        } else {
            inner.shared_running.fetch_add(1, Ordering::SeqCst);
        }
        let running = Arc::new(Running {
            stop: CancellationToken::new(),
            reason: Mutex::new(None),
            attempt: row.attempt as u32,
        });
        inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id, running.clone());
        let engine = self.clone();
        inner.tasks.spawn(async move {
            let (id, exclusive) = (row.id, row.exclusive);
            engine.run_job(row, &running).await;
            let inner = &engine.inner;
            inner
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if exclusive {
                inner.exclusive_busy.store(false, Ordering::SeqCst);
            } else {
                inner.shared_running.fetch_sub(1, Ordering::SeqCst);
            }
            inner.wake.notify_one();
            inner.queue_changed.notify_one();
        });
    }

    async fn run_job(&self, row: JobRow, running: &Running) {
        let inner = &self.inner;
        inner.events.publish(EventKind::SyncStarted(row.to_job()));
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
                    let error = format!("could not read the job's input: {err}");
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
        };
        writer_done.cancel();
        let _ = writer.await;
        if let Err(TaskError::Retryable(error) | TaskError::Fatal(error)) = &outcome {
            logs.push(crate::model::LogLevel::Error, error.clone());
        }
        let lines = logs.take(true);
        if let Err(err) = inner.store.append_logs(&lines).await {
            tracing::warn!(job = %row.id, error = %err, lines = lines.len(), "could not store log lines");
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
                None => fatal(holder, "the task stopped without being asked to".into()),
            },
            Err(TaskError::Retryable(error)) => retryable(holder, error, &ty),
            Err(TaskError::Fatal(error)) => fatal(holder, error),
        };
        self.finish(row.id, before, transition, record).await;
    }

    /// Writes the end of an attempt, compare-and-set. If the row moved meanwhile (a cancel was
    /// requested), reads it again and re-applies; if the transition is refused on the row as it
    /// is now (the lease was lost to a rescue), the result is dropped and logged.
    async fn finish(
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
                    self.announce(&row, matches!(transition, Transition::Fail { .. }));
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
        if self.inner.finishes.send(request).is_ok() {
            if let Ok(result) = answer.await {
                return result;
            }
        }
        // The writer has stopped (shutdown): write it ourselves.
        self.inner
            .store
            .write_transition(id, before, next, outcome)
            .await
    }

    /// The batch writer: every end of an attempt waiting at that moment (up to 256) is written
    /// in one transaction, so a thousand short jobs finishing together cost a few commits, not a
    /// thousand. A batch that fails as a whole is written again one by one, so one bad write
    /// cannot take the others with it.
    async fn write_finishes(
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
            let writes: Vec<StoreTransition<'_>> = batch
                .iter()
                .map(|r| StoreTransition {
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

    /// Renews the leases of the jobs running here, passes on cancel and yield requests made
    /// elsewhere, and rescues jobs whose lease ran out (their process died or hung).
    async fn keep_leases(self, shutdown: CancellationToken) {
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

    async fn prune(self, shutdown: CancellationToken) {
        loop {
            for ty in self.types() {
                match self.inner.store.prune_jobs(&ty.name, ty.keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sync_type = %ty.name, pruned = n, "pruned old jobs"),
                    Err(err) => tracing::warn!(error = %err, "could not prune old jobs"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.inner.settings.retention_interval) => {}
            }
        }
    }

    /// Publishes `queue-updated` with fresh counts after changes, at most every 100 ms.
    async fn publish_queue(self, shutdown: CancellationToken) {
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

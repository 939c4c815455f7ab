//! What a sync type does: the [`SyncTask`] trait, the context a task runs with, and the built-in
//! tasks (`noop`, `wait`, `records`).
//!
//! A task reports progress as often as it likes ([`TaskContext::progress`] publishes every report
//! at once and leaves the database write to a writer that stores the latest one at most every
//! 250 ms), saves checkpoints to resume from, and watches [`TaskContext::stop`]: it fires when the
//! job is cancelled, preempted, or the process shuts down; the task then saves its checkpoint and
//! returns [`TaskError::Interrupted`]. The engine decides what that means (cancelled, or pending
//! again to resume).

use crate::model::text::{job_text, JOB_TEXT_CHARS};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{value::RawValue, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    model::{EventKind, JobLogLine, JobProgress, LogLevel},
    server::{
        events::EventBus,
        store::{ProgressRow, Store},
    },
};

/// The work of a sync type.
#[async_trait]
pub trait SyncTask: Send + Sync + 'static {
    /// Runs one attempt. Return `Interrupted` after `ctx.stop()` fires (having saved a checkpoint
    /// if there is one); a task that ignores it is dropped after a grace period.
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError>;

    /// What the task would work on if it ran now, in words ("12 orders ready to export"), for a
    /// workflow step that waits for a person before it runs. `None`: nothing to say.
    async fn outlook(&self, _store: &Store, _sync_type: &str) -> Option<String> {
        None
    }
}

/// What a successful attempt returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskOutput {
    /// Stored as the job's result (counts, ids, whatever the task wants to show).
    pub result: Option<Value>,
}

/// Why an attempt did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Worth trying again (a timeout, a 5xx, a lost connection): the job goes back to pending
    /// with a backoff, unless this was its last attempt.
    #[error("{0}")]
    Retryable(String),
    /// Trying again will not help (bad data, a 4xx, a refused login): the job fails now.
    #[error("{0}")]
    Fatal(String),
    /// The task stopped because `ctx.stop()` fired.
    #[error("interrupted")]
    Interrupted,
}

impl TaskError {
    /// A database failure while doing `what`: retryable, and worded for the job's error, which
    /// everyone who can read the job sees; the database's own text (table names, addresses) goes
    /// to the server's log only.
    pub fn database(what: &str, err: impl std::fmt::Display) -> Self {
        TaskError::Retryable(database_error(what, err))
    }
}

/// A database failure while doing `what`, in the words a job's error shows; the database's own
/// text goes to the server's log only.
pub fn database_error(what: &str, err: impl std::fmt::Display) -> String {
    tracing::warn!(error = %err, "{what}: database error");
    format!("{what}: the database refused or did not answer (the details are in the server's log)")
}

/// Everything a running task may use.
pub struct TaskContext {
    pub(super) job_id: Uuid,
    pub(super) sync_type: String,
    pub(super) attempt: u32,
    pub(super) owner: Uuid,
    pub(super) input: Option<String>,
    pub(super) checkpoint: Option<Value>,
    pub(super) stop: CancellationToken,
    pub(super) store: Store,
    pub(super) progress: Arc<ProgressCell>,
    pub(super) warnings: Mutex<Vec<String>>,
    pub(super) logs: Arc<LogBuffer>,
}

impl TaskContext {
    /// The job's id.
    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    /// The sync type's name.
    pub fn sync_type(&self) -> &str {
        &self.sync_type
    }

    /// Which attempt this is (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The JSON pushed with the job, if any (records, for the `records` task).
    pub fn input(&self) -> Option<&str> {
        self.input.as_deref()
    }

    /// The checkpoint an earlier attempt saved, to resume from.
    pub fn checkpoint(&self) -> Option<&Value> {
        self.checkpoint.as_ref()
    }

    /// Fires when the task should stop: cancelled, preempted, or shutting down.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Who writes for this attempt, for store writes guarded by the job's lease.
    pub fn writer(&self) -> crate::server::store::Writer {
        crate::server::store::Writer {
            job_id: self.job_id,
            owner: self.owner,
            attempt: self.attempt,
        }
    }

    /// The database, for tasks that store what they sync.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reports progress: `processed` of `total` items (percent follows), and what it is doing.
    /// Cheap: publishes one event; the database sees the latest report within 250 ms.
    pub fn progress(&self, processed: u64, total: Option<u64>, message: impl Into<String>) {
        let percent = match total {
            Some(0) => 100,
            Some(total) => (processed.min(total) * 100 / total) as u8,
            None => 0,
        };
        self.progress.report(ProgressRow {
            progress: percent,
            processed,
            total,
            message: Some(job_text(message.into(), JOB_TEXT_CHARS)),
        });
    }

    /// Adds a line to the job's log: published at once as a `job-log` event, stored within
    /// 250 ms. An attempt keeps its first [`LOG_LINES_PER_ATTEMPT`] lines; later ones are counted
    /// and the count is logged at the end.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.logs.push(level, message.into());
    }

    /// Notes something that went wrong without failing the job (also a `warn` log line).
    /// An attempt keeps its first [`WARNINGS_PER_JOB`] warnings; later ones are counted in the
    /// last, so a task that warns about every record cannot make a job (and every event that
    /// carries it) grow without end.
    pub fn warn(&self, warning: impl Into<String>) {
        let warning = job_text(warning.into(), JOB_TEXT_CHARS);
        tracing::warn!(job = %self.job_id, sync_type = %self.sync_type, "{warning}");
        self.logs.push(LogLevel::Warn, warning.clone());
        let mut warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if warnings.len() < WARNINGS_PER_JOB {
            warnings.push(warning);
            return;
        }
        let more = match warnings.get(WARNINGS_PER_JOB) {
            Some(last) => last
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0),
            None => 0,
        } + 1;
        warnings.truncate(WARNINGS_PER_JOB);
        warnings.push(format!("and {more} more warnings (see the job's log)"));
    }

    /// Saves where to resume from. Fails (fatally) when this worker no longer holds the job.
    pub async fn save_checkpoint(&self, checkpoint: &Value) -> Result<(), TaskError> {
        let text = checkpoint.to_string();
        match self
            .store
            .write_checkpoint(self.job_id, self.owner, self.attempt, &text)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(TaskError::Fatal(
                "this worker no longer holds the job; its checkpoint was not saved".into(),
            )),
            Err(err) => Err(TaskError::database("could not save the checkpoint", err)),
        }
    }
}

/// The latest progress of one running job, shared by the task and the writer that stores it.
pub(super) struct ProgressCell {
    job_id: String,
    sync_type: String,
    events: EventBus,
    latest: Mutex<(ProgressRow, bool)>,
}

impl ProgressCell {
    pub(super) fn new(job_id: Uuid, sync_type: &str, events: EventBus) -> Self {
        Self {
            job_id: job_id.to_string(),
            sync_type: sync_type.to_string(),
            events,
            latest: Mutex::new((ProgressRow::default(), false)),
        }
    }

    fn report(&self, row: ProgressRow) {
        self.events.publish(EventKind::JobProgress(JobProgress {
            job_id: self.job_id.clone(),
            sync_type: self.sync_type.clone(),
            progress: row.progress,
            processed: row.processed,
            total: row.total,
            message: row.message.clone(),
        }));
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = (row, true);
    }

    /// The latest report if it was not taken yet.
    pub(super) fn take_dirty(&self) -> Option<ProgressRow> {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if latest.1 {
            latest.1 = false;
            Some(latest.0.clone())
        } else {
            None
        }
    }

    /// The latest report, taken or not.
    pub(super) fn last(&self) -> Option<ProgressRow> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        (latest.0 != ProgressRow::default()).then(|| latest.0.clone())
    }
}

/// Warnings a job keeps; the rest are counted.
pub const WARNINGS_PER_JOB: usize = 100;

/// Lines an attempt keeps in its log; the rest are counted.
pub const LOG_LINES_PER_ATTEMPT: u32 = 1000;

/// Longest log line kept, in bytes; longer ones are cut.
const LOG_LINE_BYTES: usize = 4096;

/// The log lines of one attempt not yet stored.
pub(super) struct LogBuffer {
    job_id: String,
    attempt: u32,
    events: EventBus,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    pending: Vec<JobLogLine>,
    written: u32,
    dropped: u64,
}

impl LogBuffer {
    pub(super) fn new(job_id: Uuid, attempt: u32, events: EventBus) -> Self {
        Self {
            job_id: job_id.to_string(),
            attempt,
            events,
            state: Mutex::new(LogState::default()),
        }
    }

    pub(super) fn push(&self, level: LogLevel, mut message: String) {
        // Postgres cannot store NUL in text: it is shown as the replacement character.
        if message.contains('\0') {
            message = message.replace('\0', "\u{FFFD}");
        }
        if message.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Past the cap only the error that ends the attempt is still kept.
        if state.written >= LOG_LINES_PER_ATTEMPT && level != LogLevel::Error {
            state.dropped += 1;
            return;
        }
        state.written += 1;
        let line = JobLogLine {
            id: None,
            job_id: self.job_id.clone(),
            attempt: self.attempt,
            seq: state.written,
            at: chrono::Utc::now(),
            level,
            message,
        };
        state.pending.push(line.clone());
        drop(state);
        self.events.publish(EventKind::JobLog(line));
    }

    /// The lines not yet stored; with `last`, also a line counting those not kept.
    pub(super) fn take(&self, last: bool) -> Vec<JobLogLine> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if last && state.dropped > 0 {
            let line = JobLogLine {
                id: None,
                job_id: self.job_id.clone(),
                attempt: self.attempt,
                seq: state.written + 1,
                at: chrono::Utc::now(),
                level: LogLevel::Warn,
                message: format!(
                    "{} more lines were not kept (an attempt keeps its first {LOG_LINES_PER_ATTEMPT})",
                    state.dropped
                ),
            };
            state.dropped = 0;
            state.pending.push(line);
        }
        std::mem::take(&mut state.pending)
    }
}

/// Does nothing, successfully.
pub struct NoopTask;

#[async_trait]
impl SyncTask for NoopTask {
    async fn run(&self, _ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        Ok(TaskOutput::default())
    }
}

/// Works through `steps` equal steps over `duration`, saving a checkpoint after each and stopping
/// between steps when asked. Stands in for the six built-in types until connectors do real work.
pub struct WaitTask {
    /// The whole run.
    pub duration: Duration,
    /// Steps (at least 1).
    pub steps: u32,
}

#[async_trait]
impl SyncTask for WaitTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let start = ctx
            .checkpoint()
            .and_then(|c| c.get("step"))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32;
        let step_time = self.duration / self.steps;
        let total = u64::from(self.steps);
        for step in start..self.steps {
            tokio::select! {
                _ = ctx.stop().cancelled() => return Err(TaskError::Interrupted),
                _ = tokio::time::sleep(step_time) => {}
            }
            let done = u64::from(step + 1);
            ctx.save_checkpoint(&serde_json::json!({ "step": done }))
                .await?;
            ctx.progress(done, Some(total), format!("step {done} of {total}"));
        }
        Ok(TaskOutput {
            result: Some(serde_json::json!({ "steps": total, "resumed_at": start })),
        })
    }
}

/// Upserts the records pushed with the job (a JSON array of objects with an `id`) into the
/// `records` table, a batch per transaction, saving the position as its checkpoint after each
/// batch and reporting progress every `report_every` records.
pub struct RecordsTask {
    /// Records per transaction.
    pub batch: usize,
    /// Report progress every this many records; `None`: only once, at the end.
    pub report_every: Option<u64>,
}

impl Default for RecordsTask {
    fn default() -> Self {
        Self {
            batch: 1000,
            report_every: Some(50),
        }
    }
}

/// A record's key: a string or an integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordId {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
struct Keyed {
    id: RecordId,
}

/// Reads a records payload: each record with its id, or a message naming the first bad one.
pub fn parse_records(input: &str) -> Result<Vec<(String, &RawValue)>, String> {
    let raw: Vec<&RawValue> = serde_json::from_str(input)
        .map_err(|e| format!("`records` must be a JSON array of objects: {e}"))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, record)| {
            let keyed: Keyed = serde_json::from_str(record.get()).map_err(|_| {
                format!("record {i} has no usable `id` (a string or an integer is needed)")
            })?;
            let id = match keyed.id {
                RecordId::Text(s) if crate::model::text::first_hidden(&s).is_some() => {
                    let c = crate::model::text::first_hidden(&s).unwrap_or('\0');
                    let what = if c == '\0' {
                        "a NUL character, which cannot be stored".to_string()
                    } else {
                        format!(
                            "the control or invisible character {}",
                            crate::model::text::code_point(c)
                        )
                    };
                    return Err(format!("record {i} has {what} in its `id`"));
                }
                RecordId::Text(s) if !s.is_empty() => s,
                RecordId::Text(_) => return Err(format!("record {i} has an empty `id`")),
                RecordId::Number(n) => n.to_string(),
            };
            Ok((id, record))
        })
        .collect()
}

#[async_trait]
impl SyncTask for RecordsTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let input = ctx.input().unwrap_or("[]");
        let records = parse_records(input).map_err(TaskError::Fatal)?;
        let total = records.len() as u64;
        let mut done = ctx
            .checkpoint()
            .and_then(|c| c.get("done"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(total);
        let resumed_at = done;
        let batch = self.batch.max(1);
        while done < total {
            if ctx.stop().is_cancelled() {
                return Err(TaskError::Interrupted);
            }
            let end = (done as usize + batch).min(records.len());
            let rows: Vec<(String, String)> = records[done as usize..end]
                .iter()
                .map(|(id, raw)| (id.clone(), raw.get().to_string()))
                .collect();
            let checkpoint = serde_json::json!({ "done": end }).to_string();
            match ctx
                .store()
                .upsert_records(ctx.writer(), &rows, &checkpoint)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TaskError::Fatal(
                        "this worker no longer holds the job; the batch was not stored".into(),
                    ))
                }
                Err(err) => return Err(TaskError::database("could not store records", err)),
            }
            if let Some(every) = self.report_every {
                let mut at = (done / every + 1) * every;
                while at <= end as u64 {
                    ctx.progress(at, Some(total), format!("{at} of {total} records"));
                    at += every;
                }
            }
            done = end as u64;
        }
        ctx.progress(total, Some(total), format!("{total} records stored"));
        Ok(TaskOutput {
            result: Some(serde_json::json!({ "records": total, "resumed_at": resumed_at })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_need_an_id_and_the_message_names_the_first_bad_one() {
        let ok = parse_records(r#"[{"id": "a", "x": 1}, {"id": 7}]"#).unwrap();
        assert_eq!(ok[0].0, "a");
        assert_eq!(ok[1].0, "7");
        assert_eq!(ok[0].1.get(), r#"{"id": "a", "x": 1}"#);
        let err = parse_records(r#"[{"id": "a"}, {"name": "b"}]"#).unwrap_err();
        assert!(err.contains("record 1"), "{err}");
        let err = parse_records(r#"[{"id": ""}]"#).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = parse_records(r#"{"id": "a"}"#).unwrap_err();
        assert!(err.contains("array"), "{err}");
    }
}

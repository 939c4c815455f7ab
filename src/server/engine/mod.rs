//! The job engine: sync types, the durable priority queue, the global mutex, workers, leases,
//! cancellation, preemption, retries and retention.
//!
//! - [`types`]: what can be requested, and which task does it.
//! - [`task`]: the `SyncTask` trait and the built-in tasks.
//! - `dispatch`, `finish`, `leases`, `maintenance`: the loops (claim and run; write the ends of
//!   attempts in batches; renew, pass on remote cancels, rescue; prune and count).
//!
//! [`Engine`] is the one interface handlers (and later server functions, the scheduler and
//! workflows) call; no logic lives in handlers.

mod dispatch;
mod finish;
mod leases;
mod maintenance;
mod reads;
mod signals;
mod smart;
pub mod task;
pub mod types;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicUsize},
        Arc, Mutex, RwLock,
    },
    time::Duration,
};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use self::types::SyncType;
use super::{
    events::EventBus,
    lifecycle::Lifecycle,
    lifecycle::{apply, Transition},
    store::{JobRow, NewJob, Outcome, Store, StoreError},
};
use crate::model::{BulkAction, BulkOutcome, Job, JobSource, JobState};

/// How the engine runs; from the configuration.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Non-exclusive jobs this process runs at once (the exclusive one comes on top).
    pub workers: usize,
    /// How long a claim holds without renewal.
    pub lease_ttl: Duration,
    /// How often leases are renewed (and cancel requests from other processes picked up).
    pub lease_renew: Duration,
    /// How often the queue is checked when nothing in this process said it changed.
    pub poll_interval: Duration,
    /// How often finished jobs beyond each type's `keep` are pruned.
    pub retention_interval: Duration,
    /// How long a task that ignores its stop signal is given before it is dropped.
    pub cancel_grace: Duration,
    /// Least time between two progress writes of one job.
    pub progress_interval: Duration,
    /// The type an open order form refreshes while it holds every other exclusive sync
    /// (`customers`); `None`: order forms hold nothing.
    pub smart_sync_type: Option<String>,
    /// A tab's lease ends this long after it began, whatever happens (the safety timeout).
    pub smart_sync_timeout: Duration,
    /// A tab that sends no heartbeat for this long has vanished: its lease ends.
    pub smart_sync_grace: Duration,
}

impl EngineSettings {
    /// The safety margin of a lease: its holder stops the task this long before the lease would
    /// run out by its own clock, and a rescuer takes the job only this long after it ran out by
    /// the database's, so the two never overlap.
    pub fn lease_margin(&self) -> Duration {
        (self.lease_ttl / 5).max(Duration::from_millis(50))
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_ttl: Duration::from_secs(30),
            lease_renew: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            retention_interval: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(5),
            progress_interval: Duration::from_millis(250),
            smart_sync_type: Some("customers".into()),
            smart_sync_timeout: Duration::from_secs(600),
            smart_sync_grace: Duration::from_secs(60),
        }
    }
}

/// Why an engine call was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No sync type by that name.
    #[error("there is no sync type `{name}`; the known types are: {}", .known.join(", "))]
    UnknownType {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// No job with that id.
    #[error("there is no job {0}")]
    NotFound(Uuid),
    /// The job or type is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but its content cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who asks for a job, and on whose behalf.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Where the request came from.
    pub source: JobSource,
    /// The person or client: a user's name, `token:<name>`, `hook:<name>`, `system`.
    pub triggered_by: Option<String>,
    /// What the client said about the run (the `triggered_by` text it sent).
    pub note: Option<String>,
    /// The workflow session it belongs to.
    pub session_id: Option<Uuid>,
}

impl Origin {
    /// A request from an API client.
    pub fn api(triggered_by: Option<String>) -> Self {
        Self {
            source: JobSource::Api,
            triggered_by,
            note: None,
            session_id: None,
        }
    }

    /// The same request with the client's own words kept as its note.
    pub fn with_note(self, note: Option<String>) -> Self {
        Self { note, ..self }
    }
}

/// Why a running job is being told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    Cancel,
    Yield,
    Shutdown,
    /// Its lease was taken over or could not be renewed in time: the attempt is no longer this
    /// worker's, so the task is dropped at once and writes nothing.
    LeaseLost,
}

/// An attempt this process runs: how to stop its task, why it was stopped, and until when its
/// lease holds by this process's own clock.
struct Running {
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// Fired when the lease is lost: the task is dropped, not asked.
    lost: CancellationToken,
    /// The lease's end by this process's clock, less the margin: the task stops here unless a
    /// renewal moved it on. Measured from when the claim or renewal was sent, so a slow answer
    /// only makes it earlier.
    valid_until: Mutex<tokio::time::Instant>,
    /// The task has returned (its end may still be being written).
    ended: AtomicBool,
}

impl Running {
    fn new(valid_until: tokio::time::Instant) -> Self {
        Self {
            stop: CancellationToken::new(),
            reason: Mutex::new(None),
            lost: CancellationToken::new(),
            valid_until: Mutex::new(valid_until),
            ended: AtomicBool::new(false),
        }
    }

    fn request(&self, reason: StopReason) {
        let mut current = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        // A lost lease outranks everything (nothing may be written any more); a cancel outranks
        // a yield or a shutdown: it is what the person asked for.
        let outranks = |new: StopReason, old: Option<StopReason>| match (new, old) {
            (_, None) => true,
            (_, Some(StopReason::LeaseLost)) => false,
            (StopReason::LeaseLost, _) => true,
            (StopReason::Cancel, _) => true,
            _ => false,
        };
        if outranks(reason, *current) {
            *current = Some(reason);
        }
        drop(current);
        if reason == StopReason::LeaseLost {
            self.lost.cancel();
        }
        self.stop.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lease holds until `until` (by this process's clock, margin taken off).
    fn extend(&self, until: tokio::time::Instant) {
        let mut current = self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        if until > *current {
            *current = until;
        }
    }

    /// Resolves when the attempt must stop because its lease is gone: lost outright, or not
    /// renewed by the time it would run out.
    async fn fenced(&self) {
        loop {
            let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
            tokio::select! {
                _ = self.lost.cancelled() => return,
                _ = tokio::time::sleep_until(until) => {
                    let now_until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
                    if tokio::time::Instant::now() >= now_until {
                        return;
                    }
                }
            }
        }
    }
}

/// One end of an attempt waiting for the batch writer.
pub(super) struct FinishRequest {
    pub(super) id: Uuid,
    pub(super) before: Lifecycle,
    pub(super) next: Lifecycle,
    pub(super) outcome: Outcome,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Option<JobRow>, StoreError>>,
}

/// The job engine of one process; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    events: EventBus,
    owner: Uuid,
    settings: EngineSettings,
    types: RwLock<BTreeMap<String, SyncType>>,
    /// The attempts running here, by job and attempt: a process that rescues its own job and
    /// claims it again runs a new attempt beside the fenced old one, never in its place.
    running: Mutex<HashMap<(Uuid, u32), Arc<Running>>>,
    exclusive_busy: AtomicBool,
    shared_running: AtomicUsize,
    /// Something may be claimable: a job was requested or one finished here.
    wake: Notify,
    /// The queue changed; the counts are published (coalesced).
    queue_changed: Notify,
    tasks: TaskTracker,
    /// Whether the batch writer runs (between `start` and the end of shutdown); without it,
    /// ends of attempts are written one by one (`run_once`).
    batching: AtomicBool,
    /// Ends of attempts, written in batches by one writer (see `finish::write_finishes`).
    finishes: tokio::sync::mpsc::UnboundedSender<FinishRequest>,
    finish_queue: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<FinishRequest>>>,
    /// `settings.smart_sync_type`, kept for the life of the process (claims name it).
    smart_type: Option<&'static str>,
    /// The process's Prometheus metrics (the engine's share of them is counted here).
    metrics: crate::server::metrics::Metrics,
}

impl Engine {
    /// An engine for the process `owner` (its lease owner id), running `types`. Nothing runs
    /// before [`Engine::start`].
    pub fn new(
        store: Store,
        events: EventBus,
        owner: Uuid,
        settings: EngineSettings,
        types: impl IntoIterator<Item = SyncType>,
    ) -> Self {
        let types = types.into_iter().map(|t| (t.name.clone(), t)).collect();
        let (finishes, finish_queue) = tokio::sync::mpsc::unbounded_channel();
        // One short string per engine, alive as long as the process.
        let smart_type = settings
            .smart_sync_type
            .clone()
            .map(|t| &*Box::leak(t.into_boxed_str()));
        Self {
            inner: Arc::new(Inner {
                store,
                events,
                owner,
                settings,
                types: RwLock::new(types),
                running: Mutex::new(HashMap::new()),
                exclusive_busy: AtomicBool::new(false),
                shared_running: AtomicUsize::new(0),
                batching: AtomicBool::new(false),
                wake: Notify::new(),
                queue_changed: Notify::new(),
                tasks: TaskTracker::new(),
                finishes,
                finish_queue: Mutex::new(Some(finish_queue)),
                smart_type,
                metrics: crate::server::metrics::Metrics::new(),
            }),
        }
    }

    /// The process's metrics; the server adds its own to the same registry.
    pub fn metrics(&self) -> &crate::server::metrics::Metrics {
        &self.inner.metrics
    }

    /// Adds or replaces a sync type.
    pub fn define(&self, sync_type: SyncType) {
        self.inner
            .types
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sync_type.name.clone(), sync_type);
    }

    /// Turns sync type `name` on or off in this process (a switch stored by the scheduler);
    /// whether it changed. An unknown name is ignored (a type removed from the file).
    pub fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        let mut types = self.inner.types.write().unwrap_or_else(|p| p.into_inner());
        match types.get_mut(name) {
            Some(ty) if ty.enabled != enabled => {
                ty.enabled = enabled;
                true
            }
            _ => false,
        }
    }

    /// Whether a sync type of that name exists.
    pub fn has_type(&self, name: &str) -> bool {
        self.inner
            .types
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    /// Every sync type, highest priority first.
    pub fn types(&self) -> Vec<SyncType> {
        let mut types: Vec<SyncType> = self
            .inner
            .types
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        types.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        types
    }

    /// The sync type of that name; `UnknownType` (listing the known ones) if there is none.
    pub fn sync_type(&self, name: &str) -> Result<SyncType, EngineError> {
        let types = self.inner.types.read().unwrap_or_else(|p| p.into_inner());
        types
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownType {
                name: name.to_string(),
                known: types.keys().cloned().collect(),
            })
    }

    /// Requests a run of `sync_type`. If one already waits, returns it and `true` (seed 001's
    /// `requestSync`): the type will run once, soon, whoever asked.
    pub async fn request_sync(
        &self,
        sync_type: &str,
        request: Origin,
    ) -> Result<(Job, bool), EngineError> {
        let ty = self.sync_type(sync_type)?;
        enabled(&ty)?;
        if ty.takes_records {
            return Err(EngineError::Invalid(format!(
                "`{sync_type}` jobs carry records, so they cannot be started without them; \
                 submit a job of `{sync_type}` with its records instead"
            )));
        }
        self.queue_job(&ty, &request, None, None, true).await
    }

    /// Requests every enabled type that belongs to a full sync (not pushed types, not exports),
    /// highest priority first.
    pub async fn request_full(&self, request: Origin) -> Result<Vec<Job>, EngineError> {
        let mut jobs = Vec::new();
        for ty in self.types() {
            if ty.enabled && ty.in_full && !ty.takes_records {
                jobs.push(self.request_sync(&ty.name, request.clone()).await?.0);
            }
        }
        Ok(jobs)
    }

    /// Submits a job with optional pushed records (a JSON array). Without records it is
    /// [`Engine::request_sync`]; with them the type must be one that takes records, and every
    /// record needs an `id`.
    pub async fn submit(
        &self,
        sync_type: &str,
        records: Option<&str>,
        request: Origin,
    ) -> Result<(Job, bool), EngineError> {
        let Some(records) = records else {
            return self.request_sync(sync_type, request).await;
        };
        let ty = self.sync_type(sync_type)?;
        if !ty.takes_records {
            return Err(EngineError::Invalid(format!(
                "`{sync_type}` does not take records; leave `records` out, or use a type whose \
                 task is `records`"
            )));
        }
        enabled(&ty)?;
        task::parse_records(records).map_err(EngineError::Invalid)?;
        self.queue_job(&ty, &request, None, Some(records.to_string()), false)
            .await
    }

    /// Queues a new job of `sync_type` with optional input, never deduplicated (pushed work:
    /// each push is its own job).
    pub async fn enqueue(
        &self,
        sync_type: &str,
        input: Option<String>,
        request: Origin,
    ) -> Result<Job, EngineError> {
        let ty = self.sync_type(sync_type)?;
        let (job, _) = self.queue_job(&ty, &request, None, input, false).await?;
        Ok(job)
    }

    /// A job of `sync_type` for `origin`, not yet queued (a workflow queues it in the same
    /// transaction as its step's change); refused like a request for an unknown or disabled
    /// type. Call [`Engine::notify_queued`] once it is stored.
    pub fn new_job(&self, sync_type: &str, origin: &Origin) -> Result<NewJob, EngineError> {
        let ty = self.sync_type(sync_type)?;
        enabled(&ty)?;
        Ok(NewJob {
            sync_type: ty.name.clone(),
            priority: ty.priority,
            exclusive: ty.exclusive,
            max_attempts: ty.retry.max_attempts,
            run_at: Utc::now(),
            source: origin.source,
            triggered_by: origin.triggered_by.clone(),
            note: origin.note.clone(),
            session_id: origin.session_id,
            retry_of: None,
            input: None,
        })
    }

    /// Jobs were queued without the engine (in a workflow's transaction): claim them now, here
    /// and in the other processes.
    pub fn notify_queued(&self) {
        self.inner.wake.notify_one();
        self.inner.queue_changed.notify_one();
        let engine = self.clone();
        tokio::spawn(async move { engine.signal_queued().await });
    }

    /// Inserts a job of `ty` (with `dedupe`, returns the one already waiting instead) and wakes
    /// the dispatcher when the job is new.
    async fn queue_job(
        &self,
        ty: &SyncType,
        request: &Origin,
        retry_of: Option<Uuid>,
        input: Option<String>,
        dedupe: bool,
    ) -> Result<(Job, bool), EngineError> {
        let job = NewJob {
            sync_type: ty.name.clone(),
            priority: ty.priority,
            exclusive: ty.exclusive,
            max_attempts: ty.retry.max_attempts,
            run_at: Utc::now(),
            source: request.source,
            triggered_by: request.triggered_by.clone(),
            note: request.note.clone(),
            session_id: request.session_id,
            retry_of,
            input,
        };
        let (row, deduplicated) = self.inner.store.insert_job(&job, dedupe).await?;
        if !deduplicated {
            self.inner.wake.notify_one();
            self.inner.queue_changed.notify_one();
            self.signal_queued().await;
        }
        Ok((row.to_job(), deduplicated))
    }

    /// Cancels a job: a pending one ends now; a running one is asked to stop and ends
    /// `cancelled` when its task has (at once in this process; in another, at once on Postgres by
    /// a signal, else within one lease renewal).
    pub async fn cancel(&self, id: Uuid) -> Result<Job, EngineError> {
        for _ in 0..5 {
            let row = self.row(id).await?;
            let before = row.lifecycle();
            let next = apply(&before, Transition::RequestCancel, Utc::now()).map_err(|_| {
                EngineError::Conflict(format!(
                    "job {id} is already {}; only pending or running jobs can be cancelled",
                    before.state.as_str()
                ))
            })?;
            let Some(row) = self
                .inner
                .store
                .write_transition(id, &before, &next, &Outcome::default())
                .await?
            else {
                continue; // it moved meanwhile; look again
            };
            match row.job_state() {
                JobState::Cancelled => self.announce(&row, false),
                _ => match self.local(id) {
                    Some(running) => running.request(StopReason::Cancel),
                    None => self.signal_stop(id, "cancel").await,
                },
            }
            return Ok(row.to_job());
        }
        Err(EngineError::Conflict(format!(
            "job {id} kept changing while it was being cancelled; try again"
        )))
    }

    /// Asks a running job to make way: its task saves its checkpoint and stops, and the job is
    /// pending again (the attempt does not count), to resume from the checkpoint when claimed.
    /// Returns false when the job is not running.
    pub async fn preempt(&self, id: Uuid) -> Result<bool, EngineError> {
        let asked = self.inner.store.request_yield(id, Utc::now()).await?;
        if asked {
            match self.local(id) {
                Some(running) => running.request(StopReason::Yield),
                None => self.signal_stop(id, "yield").await,
            }
        }
        Ok(asked)
    }

    /// Retries a failed or cancelled job as a new job linked to it (`retry_of`); history keeps
    /// both.
    ///
    /// A job is retried once: asking again returns the retry already made (as a request for a
    /// type that waits returns the waiting job), so repeating the request cannot fill the queue.
    pub async fn retry(&self, id: Uuid, request: Origin) -> Result<Job, EngineError> {
        if let Some(earlier) = self.inner.store.retry_of(id).await? {
            return Ok(earlier.to_job());
        }
        let old = self.row(id).await?;
        let state = old.job_state();
        if !matches!(state, JobState::Failed | JobState::Cancelled) {
            return Err(EngineError::Conflict(format!(
                "job {id} is {}; only failed or cancelled jobs can be retried",
                state.as_str()
            )));
        }
        let ty = self.sync_type(&old.sync_type)?;
        let input = self.inner.store.job_input(id).await?;
        let request = Origin {
            session_id: request.session_id.or(old.session_id),
            ..request
        };
        match self.queue_job(&ty, &request, Some(id), input, false).await {
            Ok((job, _)) => Ok(job),
            // Another retry of the same job got in first: that one it is.
            Err(EngineError::Store(StoreError::Database(err))) if matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation()) => {
                match self.inner.store.retry_of(id).await? {
                    Some(earlier) => Ok(earlier.to_job()),
                    None => Err(EngineError::Store(StoreError::Database(err))),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Most jobs one bulk action takes.
    pub const MAX_BULK: usize = 500;

    /// Cancels or retries each of `ids` (at most [`Engine::MAX_BULK`]), one by one, as single
    /// calls would: each answers for itself, one refused never stops the others.
    pub async fn bulk(
        &self,
        action: BulkAction,
        ids: &[Uuid],
        origin: &Origin,
    ) -> Result<Vec<BulkOutcome>, EngineError> {
        if ids.is_empty() || ids.len() > Self::MAX_BULK {
            return Err(EngineError::Invalid(format!(
                "`ids` must name 1 to {} jobs; it names {}",
                Self::MAX_BULK,
                ids.len()
            )));
        }
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let result = match action {
                BulkAction::Cancel => self.cancel(*id).await.map(|_| None),
                BulkAction::Retry => self.retry(*id, origin.clone()).await.map(|j| Some(j.id)),
            };
            outcomes.push(match result {
                Ok(job_id) => BulkOutcome {
                    id: id.to_string(),
                    ok: true,
                    job_id,
                    error: None,
                },
                Err(EngineError::Store(err)) => return Err(EngineError::Store(err)),
                Err(err) => BulkOutcome {
                    id: id.to_string(),
                    ok: false,
                    job_id: None,
                    error: Some(err.to_string()),
                },
            });
        }
        Ok(outcomes)
    }

    /// How many jobs this process runs now.
    pub fn running_here(&self) -> usize {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The newest attempt of job `id` running here.
    fn local(&self, id: Uuid) -> Option<Arc<Running>> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((job, _), _)| *job == id)
            .max_by_key(|((_, attempt), _)| *attempt)
            .map(|(_, running)| running.clone())
    }
}

/// Refuses a type that is disabled in the configuration.
fn enabled(ty: &SyncType) -> Result<(), EngineError> {
    if ty.enabled {
        Ok(())
    } else {
        Err(EngineError::Conflict(format!(
            "the sync type `{}` is turned off (on the Syncs page, the API or in baton.toml); \
             turn it on to run it",
            ty.name
        )))
    }
}

/// A std duration as chrono's (saturating).
pub(super) fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

//! The engine's reads: one job, its log, the change log, a page of jobs, and the status of the
//! queue and of every sync type.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Engine, EngineError};
use crate::{
    model::{Job, JobState, SyncState, SyncStatus, TypeStatus},
    server::store::{JobFilter, JobRow},
};

impl Engine {
    /// One job.
    pub async fn job(&self, id: Uuid) -> Result<Job, EngineError> {
        Ok(self.row(id).await?.to_job())
    }

    /// A job's log lines in order, after the line with id `after` if given; `NotFound` for an
    /// unknown job.
    pub async fn logs(
        &self,
        id: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::model::JobLogLine>, EngineError> {
        self.row(id).await?;
        Ok(self.inner.store.job_logs(id, after, limit).await?)
    }

    /// The newest changes pulls found, newest first, of one entity and/or one job.
    pub async fn changes(
        &self,
        entity: Option<&str>,
        job: Option<Uuid>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::model::EntityChange>, EngineError> {
        Ok(self
            .inner
            .store
            .list_changes(entity, job, before, limit)
            .await?)
    }

    pub(super) async fn row(&self, id: Uuid) -> Result<JobRow, EngineError> {
        self.inner
            .store
            .get_job(id)
            .await?
            .ok_or(EngineError::NotFound(id))
    }

    /// A page of jobs, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, EngineError> {
        Ok(self
            .inner
            .store
            .list_jobs(filter)
            .await?
            .iter()
            .map(JobRow::to_job)
            .collect())
    }

    /// The running exclusive job, the queue in claim order, and every type's state.
    pub async fn status(&self) -> Result<SyncStatus, EngineError> {
        let store = &self.inner.store;
        let (current, queue) = store.queue(100).await?;
        let mut types = BTreeMap::new();
        for ty in self.types() {
            let facts = store.type_facts(&ty.name).await?;
            let last = facts.last_finished.as_ref();
            let state = match (&facts.running, last.map(JobRow::job_state)) {
                (Some(_), _) => SyncState::Running,
                (None, Some(JobState::Completed)) => SyncState::Success,
                (None, Some(JobState::Failed)) => SyncState::Error,
                _ => SyncState::Idle,
            };
            let shown = facts.running.as_ref().or(last);
            types.insert(
                ty.name.clone(),
                TypeStatus {
                    name: ty.name.clone(),
                    priority: ty.priority,
                    exclusive: ty.exclusive,
                    enabled: ty.enabled,
                    takes_records: ty.takes_records,
                    state,
                    last_run: facts
                        .running
                        .as_ref()
                        .and_then(|r| r.started_at)
                        .or(last.and_then(|l| l.started_at)),
                    last_success: facts.last_success,
                    next_run: None,
                    last_error: last
                        .filter(|l| l.job_state() == JobState::Failed)
                        .and_then(|l| l.error.clone()),
                    consecutive_errors: facts.consecutive_errors,
                    processed: shown.map(|j| j.processed.max(0) as u64),
                    total: shown.and_then(|j| j.total.map(|t| t.max(0) as u64)),
                    last_duration_ms: last.and_then(|l| match (l.started_at, l.finished_at) {
                        (Some(s), Some(f)) => Some((f - s).num_milliseconds().max(0) as u64),
                        _ => None,
                    }),
                    running_job: facts.running.as_ref().map(|r| r.id.to_string()),
                    pending_job: facts.pending.map(|id| id.to_string()),
                    freshness: Default::default(),
                    freshness_note: None,
                },
            );
        }
        Ok(SyncStatus {
            current: current.as_ref().map(JobRow::to_job),
            queue: queue.iter().map(JobRow::to_job).collect(),
            types,
            smart_sync: self.smart_status().await?,
        })
    }
}

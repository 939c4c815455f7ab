//! Reading a session: one snapshot of its state, steps, rows and jobs, as the page and the API
//! show it.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;

use super::{
    current::{current_of, run_of, warnings_of},
    WorkflowError, Workflows,
};
use crate::model::{SessionView, StepJob, StepStatus, StepView};
use crate::server::store::SessionSnapshot;

/// Timeline rows a session view carries unless asked for another page.
pub const TIMELINE_PAGE: u32 = 100;

impl Workflows {
    /// The session with every step of its workflow and the newest page of its timeline.
    pub async fn view(&self, id: Uuid) -> Result<SessionView, WorkflowError> {
        self.view_page(id, TIMELINE_PAGE, None).await
    }

    /// The session with every step of its workflow, and at most `limit` rows of its timeline
    /// before the row `before` (the newest, without it).
    pub async fn view_page(
        &self,
        id: Uuid,
        limit: u32,
        before: Option<i64>,
    ) -> Result<SessionView, WorkflowError> {
        // One snapshot: the session's state, its steps and its rows as of one moment.
        let SessionSnapshot {
            session,
            status,
            timeline_before,
            steps: entered,
            mut jobs,
        } = self
            .inner
            .store
            .session_snapshot(id, limit, before)
            .await?
            .ok_or(WorkflowError::NotFound(id))?;
        let def = self.def(&session.workflow)?;
        let run = run_of(&session);
        let mut steps = Vec::with_capacity(def.steps.len());
        for (i, step) in def.steps.iter().enumerate() {
            let n = i as u32 + 1;
            let latest = status.steps.iter().find(|r| r.step == n);
            let at = entered.iter().find(|s| s.step == i64::from(n));
            let since = at.and_then(|s| s.started_at);
            let jobs = match since {
                Some(since) => current_of(jobs.remove(&i64::from(n)).unwrap_or_default(), since),
                None => BTreeMap::new(),
            };
            steps.push(StepView {
                step: n,
                name: step.name.clone(),
                status: latest.map(|r| r.status).unwrap_or(StepStatus::Waiting),
                message: latest.and_then(|r| r.message.clone()),
                details: latest.map(|r| r.details.clone()).unwrap_or(json!({})),
                action: at
                    .filter(|s| s.state == "waiting")
                    .and_then(|s| s.action.clone()),
                reached: at.is_some(),
                started_at: since,
                jobs: jobs
                    .into_values()
                    .map(|job| StepJob {
                        id: job.id.to_string(),
                        state: job.job_state(),
                        processed: job.processed.max(0) as u64,
                        total: job.total.map(|t| t.max(0) as u64),
                        sync_type: job.sync_type,
                    })
                    .collect(),
            });
        }
        Ok(SessionView {
            id: id.to_string(),
            workflow: session.workflow.clone(),
            name: def.name.clone(),
            state: session.session_state(),
            source: session.source.clone(),
            triggered_by: session.triggered_by.clone(),
            note: session.note.clone(),
            run,
            started_at: session.started_at,
            finished_at: session.finished_at,
            warnings: warnings_of(&session),
            steps,
            timeline: status.timeline,
            timeline_before,
        })
    }

    /// The newest session of `workflow`, if it ever ran; an unknown workflow is an error.
    pub async fn latest(&self, workflow: &str) -> Result<Option<SessionView>, WorkflowError> {
        self.def(workflow)?;
        match self.inner.store.latest_session(workflow).await? {
            Some(session) => Ok(Some(self.view(session.id).await?)),
            None => Ok(None),
        }
    }
}

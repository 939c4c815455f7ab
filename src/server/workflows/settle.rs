//! Settling a step: when every current job of a processing step has ended, its outcome (counts,
//! problems, warnings, findings) is written and the session moves on, once (compare-and-set).

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{
    current::{current_of, run_of, warnings_of},
    WorkflowError, Workflows,
};
use crate::{
    model::{JobState, SessionState, StepStatus},
    server::{
        lifecycle::session::{apply, SessionEvent},
        store::{JobRow, SessionOp},
    },
};

impl Workflows {
    /// If every job of step `n` has ended, writes the step's outcome and moves on (once).
    pub(super) async fn settle(&self, id: Uuid, run: u32, n: u32) -> Result<(), WorkflowError> {
        let session = self.session(id).await?;
        if run_of(&session) != run || session.session_state() != SessionState::Running {
            return Ok(());
        }
        let step = self.step_def(&session.workflow, n)?;
        let Some(since) = self
            .inner
            .store
            .session_steps(id, run)
            .await?
            .into_iter()
            .find(|s| s.step == i64::from(n) && s.state == "processing")
            .and_then(|s| s.started_at)
        else {
            return Ok(());
        };
        let latest = current_of(self.inner.store.step_jobs(id, run, n).await?, since);
        // Until every job is queued and linked, and every one has ended, the step goes on.
        if latest.len() < step.sync_types.len()
            || latest.values().any(|j| !j.job_state().is_terminal())
        {
            return Ok(());
        }
        let failed: Vec<&JobRow> = latest
            .values()
            .filter(|j| j.job_state() != JobState::Completed)
            .collect();
        let mut counts = zero_counts();
        for job in latest.values() {
            let result: serde_json::Value = job
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            for key in COUNTS {
                *counts.entry(key).or_default() +=
                    result.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
            }
        }
        *counts.entry("errors").or_default() += failed.len() as u64;
        let problems: Vec<String> = failed
            .iter()
            .map(|j| {
                format!(
                    "{}: {}",
                    j.sync_type,
                    j.error.as_deref().unwrap_or("cancelled")
                )
            })
            .collect();
        let ok = failed.is_empty() || step.continue_on_failure;
        let to = if ok {
            StepStatus::Completed
        } else {
            StepStatus::Failed
        };
        let mut warnings = warnings_of(&session);
        if ok && !failed.is_empty() {
            warnings.extend(
                problems
                    .iter()
                    .map(|p| format!("step {n} ({}): {p}", step.name)),
            );
        }
        // What the jobs noted without failing (validation findings, say) is the session's too.
        for job in latest.values() {
            let noted: Vec<String> = serde_json::from_str(&job.warnings).unwrap_or_default();
            warnings.extend(
                noted
                    .into_iter()
                    .map(|w| format!("step {n} ({}): {w}", step.name)),
            );
        }
        // The counts are in the details; the message says what ran.
        let ran = if step.sync_types.is_empty() {
            "done".to_string()
        } else {
            format!("{} done", step.sync_types.join(", "))
        };
        let message = match (ok, failed.is_empty()) {
            (true, true) => ran,
            (true, false) => format!("{ran}, with warnings: {}", problems.join("; ")),
            (false, _) => problems.join("; "),
        };
        let mut details = json!({ "counts": counts });
        if !problems.is_empty() {
            details["errors"] = json!(problems);
        }
        let findings: Vec<serde_json::Value> = latest
            .values()
            .filter_map(|j| j.result.as_deref())
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .filter_map(|r| r.get("findings").and_then(|f| f.as_array()).cloned())
            .flatten()
            .collect();
        if !findings.is_empty() {
            details["findings"] = json!(findings);
        }
        // The step's end, the session's move and the next step's start: one transaction, a
        // compare-and-set on the step, the session's state and its run.
        let mut ops = Vec::new();
        let step_end = [
            SessionOp::MoveStep {
                step: n,
                from: StepStatus::Processing,
                to,
                acted_by: None,
            },
            SessionOp::Status {
                step: n,
                name: step.name.clone(),
                status: to,
                message: Some(message),
                details,
            },
        ];
        if ok {
            let def = self.def(&session.workflow)?;
            let origin = Self::origin_of(&session);
            self.enter(
                def,
                n + 1,
                SessionState::Running,
                warnings,
                &origin,
                &mut ops,
            )
            .await?;
            // The session's check first, then the step's end, then what comes next.
            let check = ops.remove(0);
            ops.splice(0..0, [check].into_iter().chain(step_end));
        } else {
            ops.push(SessionOp::State {
                from: SessionState::Running,
                to: apply(SessionState::Running, SessionEvent::StepFailed)
                    .map_err(|e| WorkflowError::Conflict(e.to_string()))?,
                warnings,
                finished_at: Some(Utc::now()),
            });
            ops.extend(step_end);
        }
        match self.commit(&session, &ops, String::new).await {
            // Someone else settled it, or the session started over meanwhile.
            Ok(_) | Err(WorkflowError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// A step's counts before anything ran.
pub(super) fn zero_counts() -> BTreeMap<&'static str, u64> {
    COUNTS.into_iter().map(|k| (k, 0)).collect()
}

/// The counts a step sums over its jobs' results.
const COUNTS: [&str; 5] = ["processed", "created", "updated", "changes", "errors"];

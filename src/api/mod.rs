//! Server functions: the UI's typed calls into the server. Each is a thin wrapper over the job
//! engine, the same calls the JSON API makes; no logic lives here.
//!
//! They answer with a typed [`UiError`] classified as the JSON API classifies its errors (and
//! with the same status code), so pages branch on the kind of error, never on its text.

pub mod auth;
mod error;
pub mod orders;
pub mod schedules;

use leptos::{prelude::*, server_fn::codec::Json};

pub use self::error::UiError;
use crate::model::{EntityChange, Job, JobLogLine, SyncStatus, WorkflowOverview};

#[cfg(feature = "ssr")]
mod server {
    use super::UiError;
    use crate::{
        model::JobSource,
        server::{auth::Who, engine::Origin, state::AppState},
    };

    /// The application state, which leptos_axum provides to every server function.
    pub fn state() -> Result<AppState, UiError> {
        leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| UiError::Internal("the application state is not available here".into()))
    }

    /// Who is calling: put on the request by the access layer (`server/http/access/`), which
    /// has already checked that their role allows this function.
    pub fn who() -> Who {
        leptos::prelude::use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Who>().cloned())
            .unwrap_or_default()
    }

    /// What the person at the dashboard asked for, in their name.
    pub fn dashboard() -> Origin {
        Origin {
            source: JobSource::Manual,
            triggered_by: Some(who().actor().label()),
            note: None,
            session_id: None,
        }
    }

    pub fn session_id(raw: &str) -> Result<uuid::Uuid, UiError> {
        crate::server::http::extract::session_id(raw).map_err(UiError::from)
    }

    pub fn job_id(raw: &str) -> Result<uuid::Uuid, UiError> {
        crate::server::http::extract::job_id(raw).map_err(UiError::from)
    }
}

/// Every sync type's state, the running exclusive job and the queue.
#[server(prefix = "/api/fn", endpoint = "sync_status")]
pub async fn get_sync_status() -> Result<SyncStatus, UiError> {
    let state = server::state()?;
    let mut status = state.engine.status().await.map_err(UiError::from)?;
    state
        .scheduler
        .annotate(&mut status)
        .await
        .map_err(|e| UiError::from(crate::server::http::error::ApiError::from(e)))?;
    Ok(status)
}

/// Runs a sync type now (or returns the job already waiting for it).
#[server(prefix = "/api/fn", endpoint = "run_sync")]
pub async fn run_sync(sync_type: String) -> Result<Job, UiError> {
    let state = server::state()?;
    let (job, _) = state
        .engine
        .request_sync(&sync_type, server::dashboard())
        .await
        .map_err(UiError::from)?;
    Ok(job)
}

/// Cancels a pending or running job.
#[server(prefix = "/api/fn", endpoint = "cancel_job")]
pub async fn cancel_job(id: String) -> Result<Job, UiError> {
    let state = server::state()?;
    state
        .engine
        .cancel(server::job_id(&id)?)
        .await
        .map_err(UiError::from)
}

/// Retries a failed or cancelled job as a new job linked to it.
#[server(prefix = "/api/fn", endpoint = "retry_job")]
pub async fn retry_job(id: String) -> Result<Job, UiError> {
    let state = server::state()?;
    state
        .engine
        .retry(server::job_id(&id)?, server::dashboard())
        .await
        .map_err(UiError::from)
}

/// The filters of the tasks view; empty strings mean "any".
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobQuery {
    /// A job state.
    pub state: String,
    /// A sync type.
    pub sync_type: String,
    /// Text in the type, message, error, who or note.
    pub q: String,
    /// A source (`manual`, `scheduler`, `api`, `webhook`, `smart`).
    pub source: String,
    /// Text in who asked.
    pub who: String,
    /// Created at or after (a date or an RFC 3339 time).
    pub since: String,
    /// Created before.
    pub until: String,
    /// Only jobs older than this one (the last of the page before).
    pub before: String,
}

/// A page of at most `limit` jobs (at most 500), newest first, matching `query`.
#[server(prefix = "/api/fn", endpoint = "list_jobs", input = Json)]
pub async fn list_jobs(query: JobQuery, limit: u32) -> Result<Vec<Job>, UiError> {
    let JobQuery {
        state,
        sync_type,
        q,
        source,
        who,
        since,
        until,
        before,
    } = query;
    use crate::{model::JobState, server::store::JobFilter};
    let app = server::state()?;
    let nonempty = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let job_state = match nonempty(state) {
        None => None,
        Some(name) => Some(
            JobState::parse(&name)
                .ok_or_else(|| UiError::BadRequest(format!("`{name}` is not a job state")))?,
        ),
    };
    let text = |name: &str, value: String| {
        crate::server::http::extract::filter(name, Some(value)).map_err(UiError::from)
    };
    use crate::server::http::jobs;
    let before = match nonempty(before) {
        None => None,
        Some(raw) => Some(server::job_id(&raw)?),
    };
    let filter = JobFilter {
        state: job_state,
        sync_type: text("sync_type", sync_type)?,
        q: text("q", q)?,
        before,
        limit: limit.clamp(1, 500),
        source: jobs::source(Some(source)).map_err(UiError::from)?,
        who: text("who", who)?,
        since: jobs::time("since", Some(since)).map_err(UiError::from)?,
        until: jobs::time("until", Some(until)).map_err(UiError::from)?,
    };
    app.engine.list(&filter).await.map_err(UiError::from)
}

/// Cancels or retries each of `ids`, as single calls would; what happened to each.
#[server(prefix = "/api/fn", endpoint = "bulk_jobs", input = Json)]
pub async fn bulk_jobs(
    action: crate::model::BulkAction,
    ids: Vec<String>,
) -> Result<Vec<crate::model::BulkOutcome>, UiError> {
    let state = server::state()?;
    let ids = ids
        .iter()
        .map(|raw| server::job_id(raw))
        .collect::<Result<Vec<_>, _>>()?;
    state
        .engine
        .bulk(action, &ids, &server::dashboard())
        .await
        .map_err(UiError::from)
}

/// The newest workflow sessions (at most 20), newest first.
#[server(prefix = "/api/fn", endpoint = "list_sessions")]
pub async fn list_sessions() -> Result<Vec<crate::model::SessionLine>, UiError> {
    let state = server::state()?;
    let rows = state
        .store
        .recent_sessions(20)
        .await
        .map_err(|e| UiError::from(crate::server::http::error::ApiError::Internal(e)))?;
    Ok(rows
        .into_iter()
        .map(|row| crate::model::SessionLine {
            update: row.update(),
            source: row.source.clone(),
            triggered_by: row.triggered_by.clone(),
        })
        .collect())
}

/// One job (the tasks page opens it from `?job=<id>`).
#[server(prefix = "/api/fn", endpoint = "get_job")]
pub async fn get_job(id: String) -> Result<Job, UiError> {
    let state = server::state()?;
    state
        .engine
        .job(server::job_id(&id)?)
        .await
        .map_err(UiError::from)
}

/// A job's stored log lines, oldest first (at most 1,000).
#[server(prefix = "/api/fn", endpoint = "job_logs")]
pub async fn get_job_logs(id: String) -> Result<Vec<JobLogLine>, UiError> {
    let state = server::state()?;
    state
        .engine
        .logs(server::job_id(&id)?, None, 1000)
        .await
        .map_err(UiError::from)
}

/// What the dashboard shows about the server itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// The demo ERP's base URL when this server runs in demo mode.
    pub demo_erp: Option<String>,
    /// Connections that accept any server certificate (`tls.insecure = true`).
    pub insecure_tls: Vec<String>,
}

/// Whether this server runs in demo mode, and where its demo ERP is.
#[server(prefix = "/api/fn", endpoint = "server_info")]
pub async fn get_server_info() -> Result<ServerInfo, UiError> {
    let state = server::state()?;
    Ok(ServerInfo {
        demo_erp: state.demo_erp.map(|addr| format!("http://{addr}/api")),
        insecure_tls: state.insecure_tls.clone(),
    })
}

/// `workflow`'s steps and its newest session (`None` before its first run); an unknown workflow
/// is `NotFound`, as reading `/api/workflows/{id}/latest` is.
#[server(prefix = "/api/fn", endpoint = "workflow_overview")]
pub async fn get_workflow_overview(workflow: String) -> Result<WorkflowOverview, UiError> {
    use crate::server::{http::error::ApiError, workflows::WorkflowError};
    let state = server::state()?;
    let session = state
        .workflows
        .latest(&workflow)
        .await
        .map_err(|err| match err {
            WorkflowError::UnknownWorkflow { .. } => ApiError::NotFound(err.to_string()).into(),
            other => UiError::from(other),
        })?;
    let def = &state.workflows.definitions()[&workflow];
    Ok(WorkflowOverview {
        id: def.id.clone(),
        name: def.name.clone(),
        steps: def.steps.iter().map(|s| s.name.clone()).collect(),
        session,
    })
}

/// Starts a session of `workflow` from the dashboard; returns its id.
#[server(prefix = "/api/fn", endpoint = "start_session")]
pub async fn start_session(workflow: String) -> Result<String, UiError> {
    let state = server::state()?;
    state
        .workflows
        .start(&workflow, &server::dashboard())
        .await
        .map(|id| id.to_string())
        .map_err(UiError::from)
}

/// Presses the button of step `step`, which waits at its gate.
#[server(prefix = "/api/fn", endpoint = "press_gate")]
pub async fn press_gate(session_id: String, step: u32) -> Result<(), UiError> {
    let state = server::state()?;
    state
        .workflows
        .action(
            server::session_id(&session_id)?,
            step,
            Some(&server::who().actor().label()),
        )
        .await
        .map_err(UiError::from)
}

/// Runs failed step `step` again.
#[server(prefix = "/api/fn", endpoint = "retry_step")]
pub async fn retry_step(session_id: String, step: u32) -> Result<(), UiError> {
    let state = server::state()?;
    state
        .workflows
        .retry_step(server::session_id(&session_id)?, step)
        .await
        .map_err(UiError::from)
}

/// Resets a session for a fresh run from step 1 (its history stays).
#[server(prefix = "/api/fn", endpoint = "clear_session")]
pub async fn clear_session(session_id: String) -> Result<(), UiError> {
    let state = server::state()?;
    state
        .workflows
        .clear(server::session_id(&session_id)?)
        .await
        .map_err(UiError::from)
}

/// The newest `limit` (at most 100) record changes the syncs found, newest first.
#[server(prefix = "/api/fn", endpoint = "recent_changes")]
pub async fn get_recent_changes(limit: u32) -> Result<Vec<EntityChange>, UiError> {
    let state = server::state()?;
    state
        .engine
        .changes(None, None, None, limit.clamp(1, 100))
        .await
        .map_err(UiError::from)
}

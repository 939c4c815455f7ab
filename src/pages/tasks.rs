//! The Tasks page: every job, newest first, filtered by state and type and searched by text; each
//! with its details, and Cancel or Retry where they apply.
//!
//! The list is read with a server function and read again when the filters change or a live event
//! says a job started, ended or the queue changed; running jobs' progress follows `job-progress`.

use leptos::prelude::*;

use crate::{
    api::{list_jobs, CancelJob, RetryJob, UiError},
    components::{time_of_day, PageHeader, ProgressBar},
    hooks::use_live_events,
    model::{Job, JobState},
};

/// Jobs shown at first; "Show more" adds this many.
const PAGE: u32 = 50;

/// Route component for the tasks page.
#[component]
pub fn TasksPage() -> impl IntoView {
    let live = use_live_events();
    let changed = live.job_changes();
    let (state, set_state) = signal(String::new());
    let (sync_type, set_sync_type) = signal(String::new());
    let (query, set_query) = signal(String::new());
    let (limit, set_limit) = signal(PAGE);
    let cancel = ServerAction::<CancelJob>::new();
    let retry = ServerAction::<RetryJob>::new();
    // The rows whose details are open, so they stay open when the list is read again.
    let open_rows = RwSignal::new(std::collections::HashSet::<String>::new());
    // `?job=<id>` (a bar of a history chart, a link): that job first, its details open.
    let query_map = leptos_router::hooks::use_query_map();
    let focus_id = Memo::new(move |_| query_map.with(|q| q.get("job")).filter(|id| !id.is_empty()));
    Effect::new(move |_| {
        if let Some(id) = focus_id.get() {
            open_rows.update(|rows| {
                rows.insert(id);
            });
        }
    });
    let focus = Resource::new(
        move || {
            (
                focus_id.get(),
                changed.get(),
                cancel.version().get(),
                retry.version().get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => crate::api::get_job(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let jobs = Resource::new(
        move || {
            (
                state.get(),
                sync_type.get(),
                query.get(),
                limit.get(),
                changed.get(),
                live.resyncs.get(),
                cancel.version().get(),
                retry.version().get(),
            )
        },
        |(state, sync_type, q, limit, ..)| list_jobs(state, sync_type, q, limit),
    );
    let error = move || {
        let failed = |r: Option<Result<Job, UiError>>| match r {
            Some(Err(err)) => Some(err.to_string()),
            _ => None,
        };
        failed(cancel.value().get()).or_else(|| failed(retry.value().get()))
    };

    view! {
        <PageHeader title="Tasks" purpose="Every sync job: filter, search, look inside, cancel or retry."/>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>
                "State "
                <select
                    name="state"
                    on:change=move |ev| { set_state.set(event_target_value(&ev)); set_limit.set(PAGE); }
                    prop:value=move || state.get()
                >
                    <option value="">"All"</option>
                    {JobState::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Type "
                <input
                    type="text"
                    name="sync_type"
                    placeholder="any"
                    size="12"
                    on:input=move |ev| { set_sync_type.set(event_target_value(&ev)); set_limit.set(PAGE); }
                    prop:value=move || sync_type.get()
                />
            </label>
            <label class="grow">
                "Search "
                <input
                    type="search"
                    name="q"
                    placeholder="type, message, error or who asked"
                    on:input=move |ev| { set_query.set(event_target_value(&ev)); set_limit.set(PAGE); }
                    prop:value=move || query.get()
                />
            </label>
        </form>
        <Show when=move || error().is_some()>
            <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
        </Show>
        <Suspense fallback=|| ()>
            {move || focus.get().map(|found| match found {
                Ok(Some(job)) => view! {
                    <section class="panel" aria-label="The job you opened" data-testid="focused-job">
                        <ul class="job-list">
                            <JobRow job cancel retry open_rows/>
                        </ul>
                    </section>
                }
                .into_any(),
                Ok(None) => ().into_any(),
                Err(err) => view! {
                    <p class="notice notice-error" role="alert">{format!("That job could not be opened: {err}")}</p>
                }
                .into_any(),
            })}
        </Suspense>
        <Transition fallback=|| view! { <p class="loading">"Loading jobs…"</p> }>
            {move || {
                jobs.get()
                    .map(|result| match result {
                        Ok(list) if list.is_empty() => view! {
                            <p class="panel muted" data-testid="no-jobs">"No jobs match."</p>
                        }
                        .into_any(),
                        Ok(list) => {
                            let full = list.len() as u32 >= limit.get_untracked();
                            view! {
                                <section class="panel">
                                    <ul class="job-list" aria-label="Jobs, newest first">
                                        {list.into_iter().map(|job| view! { <JobRow job cancel retry open_rows/> }).collect_view()}
                                    </ul>
                                    <Show when=move || full>
                                        <button class="button button-quiet" on:click=move |_| set_limit.update(|l| *l = (*l + PAGE).min(500))>
                                            "Show more"
                                        </button>
                                    </Show>
                                </section>
                            }
                            .into_any()
                        }
                        Err(err) => view! {
                            <p class="notice notice-error" role="alert">{format!("The jobs could not be read: {err}")}</p>
                        }
                        .into_any(),
                    })
            }}
        </Transition>
    }
}

/// CSS class and label of a job state.
fn state_badge(state: JobState) -> (&'static str, &'static str) {
    match state {
        JobState::Pending => ("idle", "Waiting"),
        JobState::Running => ("running", "Running"),
        JobState::Completed => ("success", "Completed"),
        JobState::Failed => ("error", "Failed"),
        JobState::Cancelled => ("idle", "Cancelled"),
    }
}

#[component]
fn JobRow(
    job: Job,
    cancel: ServerAction<CancelJob>,
    retry: ServerAction<RetryJob>,
    open_rows: RwSignal<std::collections::HashSet<String>>,
) -> impl IntoView {
    let live = use_live_events();
    let (class, label) = state_badge(job.state);
    let running = job.state == JobState::Running;
    let progress = running.then(|| {
        let (a, b) = (job.id.clone(), job.id.clone());
        let (initial, message) = (job.progress, job.message.clone().unwrap_or_default());
        view! {
            <ProgressBar
                percent=Signal::derive(move || live.progress_of(&a).map(|p| p.progress).unwrap_or(initial))
                label=Signal::derive(move || live.progress_of(&b).and_then(|p| p.message).unwrap_or_else(|| message.clone()))
            />
        }
    });
    let staff = crate::hooks::can(crate::model::Role::Staff);
    let action = match job.state {
        _ if !staff => ().into_any(),
        JobState::Pending | JobState::Running => {
            let id = job.id.clone();
            let pending_cancel = job.cancel_requested_at.is_some();
            view! {
                <button class="button button-secondary" disabled=pending_cancel on:click=move |_| {
                    cancel.dispatch(CancelJob { id: id.clone() });
                }>{if pending_cancel { "Stopping…" } else { "Cancel" }}</button>
            }
            .into_any()
        }
        JobState::Failed | JobState::Cancelled => {
            let id = job.id.clone();
            view! {
                <button class="button" on:click=move |_| { retry.dispatch(RetryJob { id: id.clone() }); }>"Retry"</button>
            }
            .into_any()
        }
        JobState::Completed => ().into_any(),
    };
    let summary = job
        .error
        .clone()
        .filter(|_| job.state != JobState::Completed)
        .or_else(|| job.message.clone())
        .unwrap_or_default();
    let who = format!(
        "{}{}{}",
        job.source.as_str(),
        job.triggered_by
            .as_deref()
            .map(|w| format!(" · {w}"))
            .unwrap_or_default(),
        job.note
            .as_deref()
            .map(|n| format!(" · “{n}”"))
            .unwrap_or_default()
    );
    let details = serde_json::to_string_pretty(&job).unwrap_or_default();
    let log_id = job.id.clone();
    let row_id = job.id.clone();
    let open = Memo::new(move |_| open_rows.with(|rows| rows.contains(&row_id)));
    let toggle_id = job.id.clone();
    // The page decides (not the browser's own toggle), so a re-read list keeps what is open.
    let toggle = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        open_rows.update(|rows| {
            if !rows.remove(&toggle_id) {
                rows.insert(toggle_id.clone());
            }
        })
    };
    view! {
        <li class="job" data-state=job.state.as_str() data-type=job.sync_type.clone() data-job=job.id.clone()>
            <div class="job-main">
                <span class=format!("state state-{class}")>{label}</span>
                <span class="type-name">{job.sync_type.clone()}</span>
                <time class="muted" datetime=job.created_at.to_rfc3339()>{time_of_day(job.created_at)}</time>
                <span class="muted">{who}</span>
                <span class="muted">{format!("attempt {} of {}", job.attempt, job.max_attempts)}</span>
                <span class="job-actions">{action}</span>
            </div>
            {progress}
            <p class=if job.state == JobState::Failed { "job-summary row-error" } else { "job-summary muted" }>{summary}</p>
            <details prop:open=open>
                // A click on the summary (or Enter/Space on it) toggles the details.
                <summary on:click=toggle>"Details and log"</summary>
                <pre class="job-details">{details}</pre>
                {move || open.get().then(|| view! { <JobLog id=log_id.clone()/> })}
            </details>
        </li>
    }
}

/// A job's log: the stored lines, then any newer ones as they stream in.
#[component]
fn JobLog(id: String) -> impl IntoView {
    let live = use_live_events();
    let fetch_id = id.clone();
    let changed = live.job_changes();
    let stored = Resource::new(
        move || changed.get(),
        move |_| crate::api::get_job_logs(fetch_id.clone()),
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the log…"</p> }>
            {move || {
                let id = id.clone();
                stored.get().map(move |result| match result {
                    Err(err) => view! { <p class="row-error">{err.to_string()}</p> }.into_any(),
                    Ok(mut lines) => {
                        // Live lines not stored yet (stored ones come back with the same run
                        // position and text).
                        let fresh: Vec<_> = live
                            .log_lines_of(&id)
                            .into_iter()
                            .filter(|l| {
                                !lines.iter().any(|s| {
                                    (s.attempt, s.seq, &s.message) == (l.attempt, l.seq, &l.message)
                                })
                            })
                            .collect();
                        lines.extend(fresh);
                        if lines.is_empty() {
                            return view! { <p class="muted job-log-empty">"No log lines."</p> }.into_any();
                        }
                        view! {
                            <ol class="job-log" aria-label="Log">
                                {lines.into_iter().map(|l| view! {
                                    <li class=format!("log-line log-{}", l.level.as_str())>
                                        <time datetime=l.at.to_rfc3339()>{time_of_day(l.at)}</time>
                                        <span class="log-attempt">{format!("#{}", l.attempt)}</span>
                                        <span class="log-message">{l.message}</span>
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any()
                    }
                })
            }}
        </Suspense>
    }
}

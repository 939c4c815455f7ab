//! The Tasks page: every job, newest first, filtered by state and type and searched by text; each
//! with its details, and Cancel or Retry where they apply.
//!
//! The list is read with a server function and read again when the filters change or a live event
//! says a job started, ended or the queue changed; running jobs' progress follows `job-progress`.

use leptos::prelude::*;

use crate::{
    api::{list_jobs, list_sessions, BulkJobs, CancelJob, JobQuery, RetryJob, UiError},
    components::{time_of_day, PageHeader, ProgressBar},
    hooks::use_live_events,
    model::{BulkAction, Job, JobSource, JobState},
};

/// Jobs per page.
const PAGE: u32 = 50;

/// Route component for the tasks page.
#[component]
pub fn TasksPage() -> impl IntoView {
    let live = use_live_events();
    let changed = live.job_changes();
    let filters = RwSignal::new(JobQuery::default());
    // The cursors of the pages before this one (the newest page has none).
    let cursors = RwSignal::new(Vec::<String>::new());
    let set = move |f: fn(&mut JobQuery, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            filters.update(|q| {
                f(q, value);
                q.before.clear();
            });
            cursors.set(Vec::new());
        }
    };
    let cancel = ServerAction::<CancelJob>::new();
    let retry = ServerAction::<RetryJob>::new();
    let bulk = ServerAction::<BulkJobs>::new();
    // Rows ticked for a bulk action, and the action waiting for its confirmation.
    let selected = RwSignal::new(std::collections::BTreeSet::<String>::new());
    let confirming = RwSignal::new(None::<BulkAction>);
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
                bulk.version().get(),
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
                filters.get(),
                changed.get(),
                live.resyncs.get(),
                cancel.version().get(),
                retry.version().get(),
                bulk.version().get(),
            )
        },
        |(query, ..)| list_jobs(query, PAGE),
    );
    let sessions = Resource::new(
        move || (live.resyncs.get(), live.session_changes().get()),
        |_| list_sessions(),
    );
    // A bulk action that ran: clear the selection and say what happened.
    Effect::new(move |_| {
        if let Some(Ok(_)) = bulk.value().get() {
            selected.set(Default::default());
            confirming.set(None);
        }
    });
    let error = move || {
        let failed = |r: Option<Result<Job, UiError>>| match r {
            Some(Err(err)) => Some(err.to_string()),
            _ => None,
        };
        failed(cancel.value().get())
            .or_else(|| failed(retry.value().get()))
            .or_else(|| match bulk.value().get() {
                Some(Err(err)) => Some(err.to_string()),
                _ => None,
            })
    };
    let bulk_report = move || {
        bulk.value().get().and_then(Result::ok).map(|outcomes| {
            let done = outcomes.iter().filter(|o| o.ok).count();
            let refused: Vec<String> = outcomes
                .iter()
                .filter(|o| !o.ok)
                .map(|o| format!("{}: {}", short(&o.id), o.error.clone().unwrap_or_default()))
                .collect();
            if refused.is_empty() {
                format!("{done} done.")
            } else {
                format!(
                    "{done} done; {} refused ({}).",
                    refused.len(),
                    refused.join("; ")
                )
            }
        })
    };
    let staff = crate::hooks::can(crate::model::Role::Staff);

    view! {
        <PageHeader title="Tasks" purpose="Every sync job and workflow session: filter, search, look inside, cancel or retry, one or many."/>
        <form class="filters" role="search" on:submit=|ev| ev.prevent_default()>
            <label>
                "State "
                <select name="state" on:change=set(|q, v| q.state = v) prop:value=move || filters.with(|q| q.state.clone())>
                    <option value="">"All"</option>
                    {JobState::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Type "
                <input type="text" name="sync_type" placeholder="any" size="12"
                    on:input=set(|q, v| q.sync_type = v) prop:value=move || filters.with(|q| q.sync_type.clone())/>
            </label>
            <label>
                "Source "
                <select name="source" on:change=set(|q, v| q.source = v) prop:value=move || filters.with(|q| q.source.clone())>
                    <option value="">"Any"</option>
                    {JobSource::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Who "
                <input type="text" name="who" placeholder="anyone" size="12"
                    on:input=set(|q, v| q.who = v) prop:value=move || filters.with(|q| q.who.clone())/>
            </label>
            <label>
                "From "
                <input type="date" name="since" on:change=set(|q, v| q.since = v) prop:value=move || filters.with(|q| q.since.clone())/>
            </label>
            <label>
                "To "
                <input type="date" name="until" on:change=set(|q, v| q.until = v) prop:value=move || filters.with(|q| q.until.clone())/>
            </label>
            <label class="grow">
                "Search "
                <input type="search" name="q" placeholder="type, message, error or who asked"
                    on:input=set(|q, v| q.q = v) prop:value=move || filters.with(|q| q.q.clone())/>
            </label>
        </form>
        <Show when=move || error().is_some()>
            <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
        </Show>
        <Show when=move || bulk_report().is_some()>
            <p class="notice" role="status" data-testid="bulk-report">{move || bulk_report().unwrap_or_default()}</p>
        </Show>
        {staff.then(|| view! {
            <Show when=move || !selected.with(|s| s.is_empty())>
                <div class="bulk-bar panel" data-testid="bulk-bar">
                    {move || {
                        let n = selected.with(|s| s.len());
                        let ids = move || selected.with(|s| s.iter().cloned().collect::<Vec<_>>());
                        match confirming.get() {
                            None => view! {
                                <span>{format!("{n} selected")}</span>
                                <button class="button button-secondary" data-testid="bulk-cancel"
                                    on:click=move |_| confirming.set(Some(BulkAction::Cancel))>{format!("Cancel {n}")}</button>
                                <button class="button" data-testid="bulk-retry"
                                    on:click=move |_| confirming.set(Some(BulkAction::Retry))>{format!("Retry {n}")}</button>
                                <button class="button button-quiet" on:click=move |_| selected.set(Default::default())>"Clear"</button>
                            }
                            .into_any(),
                            Some(action) => {
                                let verb = if action == BulkAction::Cancel { "Cancel" } else { "Retry" };
                                view! {
                                    <span role="alert" data-testid="bulk-confirm">
                                        {format!("{verb} {n} job{}?", if n == 1 { "" } else { "s" })}
                                    </span>
                                    <button class="button" data-testid="bulk-yes" disabled=move || bulk.pending().get()
                                        on:click=move |_| { bulk.dispatch(BulkJobs { action, ids: ids() }); }>
                                        {format!("Yes, {} {n}", verb.to_lowercase())}
                                    </button>
                                    <button class="button button-quiet" on:click=move |_| confirming.set(None)>"No"</button>
                                }
                                .into_any()
                            }
                        }
                    }}
                </div>
            </Show>
        })}
        <Suspense fallback=|| ()>
            {move || focus.get().map(|found| match found {
                Ok(Some(job)) => view! {
                    <section class="panel" aria-label="The job you opened" data-testid="focused-job">
                        <ul class="job-list">
                            <JobRow job cancel retry open_rows selected/>
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
                        Ok(list) if list.is_empty() && cursors.with(Vec::is_empty) => view! {
                            <p class="panel muted" data-testid="no-jobs">"No jobs match."</p>
                        }
                        .into_any(),
                        Ok(list) => {
                            let full = list.len() as u32 >= PAGE;
                            let last = list.last().map(|j| j.id.clone());
                            view! {
                                <section class="panel">
                                    <ul class="job-list" aria-label="Jobs, newest first">
                                        {list.into_iter().map(|job| view! { <JobRow job cancel retry open_rows selected/> }).collect_view()}
                                    </ul>
                                    <nav class="pager" aria-label="Pages of jobs">
                                        <Show when=move || !cursors.with(Vec::is_empty)>
                                            <button class="button button-quiet" data-testid="newer" on:click=move |_| {
                                                let mut stack = cursors.get_untracked();
                                                stack.pop();
                                                let before = stack.last().cloned().unwrap_or_default();
                                                cursors.set(stack);
                                                filters.update(|q| q.before = before);
                                            }>"← Newer"</button>
                                        </Show>
                                        {full.then(|| {
                                            let last = last.clone().unwrap_or_default();
                                            view! {
                                                <button class="button button-quiet" data-testid="older" on:click=move |_| {
                                                    cursors.update(|c| c.push(last.clone()));
                                                    filters.update(|q| q.before = last.clone());
                                                }>"Older →"</button>
                                            }
                                        })}
                                    </nav>
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
        <section class="panel" aria-labelledby="sessions-heading" data-testid="sessions">
            <h2 id="sessions-heading">"Workflow sessions"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading sessions…"</p> }>
                {move || sessions.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No session yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="job-list" aria-label="Sessions, newest first">
                            {list.into_iter().map(|s| {
                                let state = s.update.state;
                                view! {
                                    <li class="session" data-session=s.update.session_id.clone() data-state=state.as_str()>
                                        <div class="job-main">
                                            <span class="state state-idle">{state.as_str().replace('_', " ")}</span>
                                            <span class="type-name">{s.update.workflow.clone()}</span>
                                            <time class="muted" datetime=s.update.started_at.to_rfc3339()>{time_of_day(s.update.started_at)}</time>
                                            <span class="muted">{format!("{}{}", s.source, s.triggered_by.as_deref().map(|w| format!(" · {w}")).unwrap_or_default())}</span>
                                            <span class="muted">{format!("run {}", s.update.run)}</span>
                                        </div>
                                        {(!s.update.warnings.is_empty()).then(|| view! {
                                            <p class="job-summary muted">{s.update.warnings.join("; ")}</p>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }
                    .into_any(),
                    Err(err) => view! { <p class="notice notice-error" role="alert">{err.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// The first 8 characters of an id, for messages.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
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
    selected: RwSignal<std::collections::BTreeSet<String>>,
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
    let pick_id = job.id.clone();
    let check_id = job.id.clone();
    let pick = staff.then(|| {
        view! {
            <input type="checkbox" class="pick" data-testid="pick"
                aria-label=format!("Select the {} job {}", job.sync_type, short(&job.id))
                prop:checked=move || selected.with(|s| s.contains(&check_id))
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    selected.update(|s| {
                        if on {
                            s.insert(pick_id.clone());
                        } else {
                            s.remove(&pick_id);
                        }
                    });
                }/>
        }
    });
    let from_schedule = job
        .triggered_by
        .as_deref()
        .is_some_and(|t| t.starts_with("schedule:"));
    let fire_id = job.id.clone();
    let attempts = format!(
        "attempt {} of {}{}",
        job.attempt,
        job.max_attempts,
        if job.retry_of.is_some() {
            " · a retry of an earlier job"
        } else {
            ""
        }
    );
    view! {
        <li class="job" data-state=job.state.as_str() data-type=job.sync_type.clone() data-job=job.id.clone()>
            <div class="job-main">
                {pick}
                <span class=format!("state state-{class}")>{label}</span>
                <span class="type-name">{job.sync_type.clone()}</span>
                <time class="muted" datetime=job.created_at.to_rfc3339()>{time_of_day(job.created_at)}</time>
                <span class="muted">{who}</span>
                <span class="muted">{attempts}</span>
                <span class="job-actions">{action}</span>
            </div>
            {progress}
            <p class=if job.state == JobState::Failed { "job-summary row-error" } else { "job-summary muted" }>{summary}</p>
            <details prop:open=open>
                // A click on the summary (or Enter/Space on it) toggles the details.
                <summary on:click=toggle>"Details and log"</summary>
                {from_schedule.then(|| view! { <FireLine id=fire_id.clone()/> })}
                <pre class="job-details">{details}</pre>
                {move || open.get().then(|| view! { <JobLog id=log_id.clone()/> })}
            </details>
        </li>
    }
    .into_any()
}

/// The schedule fire that queued a job.
#[component]
fn FireLine(id: String) -> impl IntoView {
    let fire = Resource::new(|| (), move |_| crate::api::schedules::job_fire(id.clone()));
    view! {
        <Suspense fallback=|| ()>
            {move || fire.get().and_then(Result::ok).flatten().map(|f| view! {
                <p class="muted" data-testid="job-fire">
                    {format!(
                        "Queued by schedule {} for its run due at {} (recorded {} ms later).",
                        f.schedule,
                        f.fire_time.format("%Y-%m-%d %H:%M:%S UTC"),
                        (f.recorded_at - f.fire_time).num_milliseconds().max(0)
                    )}
                </p>
            })}
        </Suspense>
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

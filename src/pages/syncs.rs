//! The Syncs page: every sync type with its state, last runs and errors; the job holding the
//! global mutex and the queue behind it; a Run now and a Cancel button per type; the schedules
//! and each type's run history (`schedules.rs`).
//!
//! It reads the status with a server function and reads it again whenever a live event says a
//! job started, ended or the queue changed; progress bars follow `job-progress` events directly.

use leptos::prelude::*;

use crate::{
    api::{get_sync_status, schedules::SwitchType, CancelJob, RunSync, UiError},
    components::{time_of_day, PageHeader, ProgressBar},
    hooks::use_live_events,
    model::{Freshness, Job, JobProgress, SyncState, SyncStatus, TypeStatus},
};

/// Route component for the syncs page.
#[component]
pub fn SyncsPage() -> impl IntoView {
    let live = use_live_events();
    let run = ServerAction::<RunSync>::new();
    let cancel = ServerAction::<CancelJob>::new();
    let switch = ServerAction::<SwitchType>::new();
    let changed = live.job_changes();
    let status = Resource::new(
        move || {
            (
                changed.get(),
                live.resyncs.get(),
                run.version().get(),
                cancel.version().get(),
                switch.version().get(),
            )
        },
        |_| get_sync_status(),
    );
    let error = move || {
        let failed = |r: Option<Result<Job, UiError>>| match r {
            Some(Err(err)) => Some(err.to_string()),
            _ => None,
        };
        failed(run.value().get())
            .or_else(|| failed(cancel.value().get()))
            .or_else(|| match switch.value().get() {
                Some(Err(err)) => Some(err.to_string()),
                _ => None,
            })
    };

    let info = Resource::new(|| (), |_| crate::api::get_server_info());
    view! {
        <PageHeader title="Syncs" purpose="The sync types Baton runs, what runs now, what waits, and how their last runs went."/>
        <Suspense fallback=|| ()>
            {move || {
                info.get()
                    .and_then(Result::ok)
                    .filter(|i| !i.insecure_tls.is_empty())
                    .map(|i| view! {
                        <p class="notice notice-error" role="alert" data-testid="insecure-tls">
                            <strong>"TLS verification is off"</strong>
                            {format!(
                                " for {}: Baton accepts any certificate from {}, so anyone on the \
                                 way can read and change what is synced. Set tls.ca_file instead \
                                 of tls.insecure in baton.toml.",
                                i.insecure_tls.iter().map(|n| format!("[connections.{n}]")).collect::<Vec<_>>().join(", "),
                                if i.insecure_tls.len() == 1 { "that server" } else { "those servers" },
                            )}
                        </p>
                    })
            }}
        </Suspense>
        <Show when=move || error().is_some()>
            <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
        </Show>
        <Transition fallback=|| view! { <p class="loading">"Loading sync status…"</p> }>
            {move || {
                status
                    .get()
                    .map(|result| match result {
                        Ok(status) => view! { <StatusView status run cancel switch/> }.into_any(),
                        Err(err) => view! {
                            <p class="notice notice-error" role="alert">
                                {format!("The sync status could not be read: {err}")}
                            </p>
                        }
                        .into_any(),
                    })
            }}
        </Transition>
        <super::schedules::SchedulesPanel/>
        <super::schedules::HistoryPanel/>
        <super::schedules::StatsPanel/>
    }
}

/// The latest progress report of `job_id` among the recent live events.
fn live_progress(job_id: &str) -> Option<JobProgress> {
    use_live_events().progress_of(job_id)
}

#[component]
fn StatusView(
    status: SyncStatus,
    run: ServerAction<RunSync>,
    cancel: ServerAction<CancelJob>,
    switch: ServerAction<SwitchType>,
) -> impl IntoView {
    let SyncStatus {
        current,
        queue,
        types,
        smart_sync,
    } = status;
    let mut types: Vec<TypeStatus> = types.into_values().collect();
    types.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    view! {
        <section class="panel mutex-panel" aria-labelledby="mutex-heading">
            <h2 id="mutex-heading">"Running now"</h2>
            {match current {
                Some(job) => view! { <CurrentJob job/> }.into_any(),
                None => view! { <p class="muted" data-testid="mutex-free">"No exclusive sync is running."</p> }.into_any(),
            }}
            {smart_sync.holding.clone().map(|why| view! {
                <p class="notice notice-hold" data-testid="smart-hold" role="status">
                    {why}
                    {format!(
                        " ({})",
                        smart_sync
                            .leases
                            .iter()
                            .map(|l| format!("{} until {}", l.who, crate::components::time_of_day(l.expires_at)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )}
                </p>
            })}
            <h3>"Waiting"</h3>
            {if queue.is_empty() {
                view! { <p class="muted">"Nothing waits."</p> }.into_any()
            } else {
                view! {
                    <ol class="queue" aria-label="Queue in run order">
                        {queue
                            .into_iter()
                            .map(|job| view! {
                                <li data-type=job.sync_type.clone()>
                                    <strong>{job.sync_type.clone()}</strong>
                                    <span class="muted">
                                        {format!(" · priority {} · {}", job.priority, job.source.as_str())}
                                        {job.error.clone().map(|e| format!(" · retrying after: {e}"))}
                                    </span>
                                </li>
                            })
                            .collect_view()}
                    </ol>
                }
                .into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="types-heading">
            <h2 id="types-heading">"Sync types"</h2>
            <table class="sync-table">
                <thead>
                    <tr>
                        <th scope="col">"Type"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Last run"</th>
                        <th scope="col">"Last success"</th>
                        <th scope="col">"Next run"</th>
                        <th scope="col">"Items"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {types.into_iter().map(|t| view! { <TypeRow t run cancel switch/> }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn CurrentJob(job: Job) -> impl IntoView {
    let id = job.id.clone();
    let progress = move || live_progress(&id);
    let (initial, message) = (job.progress, job.message.clone());
    view! {
        <div class="current-job" data-testid="current-job" data-type=job.sync_type.clone()>
            <p>
                <strong>{job.sync_type.clone()}</strong>
                " holds the sync lock"
                {job.started_at.map(|at| format!(" since {}", time_of_day(at)))}
            </p>
            <ProgressBar
                percent=Signal::derive({
                    let progress = progress.clone();
                    move || progress().map(|p| p.progress).unwrap_or(initial)
                })
                label=Signal::derive(move || {
                    progress().and_then(|p| p.message).or_else(|| message.clone()).unwrap_or_default()
                })
            />
        </div>
    }
}

fn state_label(state: SyncState) -> (&'static str, &'static str) {
    match state {
        SyncState::Idle => ("idle", "Idle"),
        SyncState::Running => ("running", "Running"),
        SyncState::Success => ("success", "Succeeded"),
        SyncState::Error => ("error", "Failed"),
    }
}

#[component]
fn TypeRow(
    t: TypeStatus,
    run: ServerAction<RunSync>,
    cancel: ServerAction<CancelJob>,
    switch: ServerAction<SwitchType>,
) -> impl IntoView {
    let (class, label) = state_label(t.state);
    let name = t.name.clone();
    let running = t.running_job.clone();
    let waiting = t.pending_job.is_some();
    let items = match (t.processed, t.total) {
        (Some(p), Some(total)) => format!("{p} / {total}"),
        (Some(p), None) => p.to_string(),
        _ => "–".into(),
    };
    let live = running.clone().map(|id| {
        let id2 = id.clone();
        view! {
            <ProgressBar
                percent=Signal::derive(move || live_progress(&id).map(|p| p.progress).unwrap_or(0))
                label=Signal::derive(move || live_progress(&id2).and_then(|p| p.message).unwrap_or_default())
            />
        }
    });
    let staff = crate::hooks::can(crate::model::Role::Staff);
    let action = match running {
        _ if !staff && !t.takes_records => ().into_any(),
        Some(job) => {
            let title = format!("Cancel the running {name} sync");
            view! {
                <button class="button button-secondary" title=title on:click=move |_| {
                    cancel.dispatch(CancelJob { id: job.clone() });
                }>"Cancel"</button>
            }
            .into_any()
        }
        None if t.takes_records => view! {
            <span class="muted" title="Its jobs carry records pushed with POST /api/jobs">"pushed by API"</span>
        }
        .into_any(),
        None => {
            let sync_type = name.clone();
            let title = format!("Run the {name} sync now");
            view! {
                <button
                    class="button"
                    title=title
                    disabled=waiting || !t.enabled
                    on:click=move |_| { run.dispatch(RunSync { sync_type: sync_type.clone() }); }
                >
                    {if waiting { "Queued" } else { "Run now" }}
                </button>
            }
            .into_any()
        }
    };
    view! {
        <tr data-type=t.name.clone() data-state=class>
            <th scope="row">
                <span class="type-name">{t.name.clone()}</span>
                <span class="type-meta">
                    {format!("priority {}", t.priority)}
                    {t.exclusive.then_some(" · exclusive")}
                    {(!t.enabled).then_some(" · off")}
                </span>
            </th>
            <td>
                <span class=format!("state state-{class}")>{label}</span>
                {matches!(t.freshness, Freshness::Late | Freshness::Stale).then(|| view! {
                    <span class="state state-warn" data-testid="freshness" title=t.freshness_note.clone().unwrap_or_default()>
                        {t.freshness.as_str()}
                    </span>
                    <p class="row-error">{t.freshness_note.clone()}</p>
                })}
                {live}
                {t.last_error.clone().map(|e| view! {
                    <p class="row-error">
                        {e}
                        {(t.consecutive_errors > 1).then(|| format!(" ({} failures in a row)", t.consecutive_errors))}
                    </p>
                })}
            </td>
            <td>
                {t.last_run.map(time_of_day).unwrap_or_else(|| "never".into())}
                {t.last_duration_ms.map(|ms| view! { <span class="muted">{format!(" · {:.1} s", ms as f64 / 1000.0)}</span> })}
            </td>
            <td>{t.last_success.map(time_of_day).unwrap_or_else(|| "never".into())}</td>
            <td data-testid="type-next-run">{t.next_run.map(time_of_day).unwrap_or_else(|| "–".into())}</td>
            <td>{items}</td>
            <td class="actions">
                {action}
                {crate::hooks::can(crate::model::Role::Admin).then(|| {
                    let (name, on) = (t.name.clone(), t.enabled);
                    view! {
                        <label class="switch" title=if on { "Turn this type off: nothing new is requested or scheduled" } else { "Turn this type on" }>
                            <input type="checkbox" data-testid="type-switch" prop:checked=on
                                disabled=move || switch.pending().get()
                                on:change=move |_| { switch.dispatch(SwitchType { sync_type: name.clone(), enabled: !on }); }/>
                            {if on { "On" } else { "Off" }}
                        </label>
                    }
                })}
            </td>
        </tr>
    }
    .into_any()
}

//! The Daily sync page: the newest session of the `daily-sync` workflow and its five steps as the
//! status table says them (seed 000), the buttons a person presses, the timeline of status rows,
//! toasts, and the record changes the syncs found (seed 004).
//!
//! The page only reads. Everything it shows comes from `get_workflow_overview`, which reads the
//! status table; it reads again when a `step-status`, `session-cleared` or job event arrives, when
//! the live connection resyncs or comes back, and after each button. When server-sent events fail,
//! the live-events hook polls every 3 s and the page follows the polled events the same way.
//! Running jobs' progress follows `job-progress` events between reads.

use leptos::prelude::*;

use crate::{
    api::{
        get_recent_changes, get_workflow_overview, ClearSession, PressGate, RetryStep,
        StartSession, UiError,
    },
    components::{time_of_day, EmptyState, PageHeader, ProgressBar},
    hooks::{use_live_events, Connection, LiveEvents},
    model::{
        EntityChange, EventKind, SessionState, SessionView, StatusRow, StepStatus, StepView,
        WorkflowOverview,
    },
};

/// The workflow this page runs.
const WORKFLOW: &str = "daily-sync";
/// Record changes shown.
const CHANGES_SHOWN: u32 = 15;
/// Timeline rows shown, newest first.
const TIMELINE_SHOWN: usize = 200;
/// How long a toast stays.
const TOAST_MS: u64 = 8_000;

/// Route component for the daily sync page.
#[component]
pub fn DailySyncPage() -> impl IntoView {
    let live = use_live_events();
    let start = ServerAction::<StartSession>::new();
    let press = ServerAction::<PressGate>::new();
    let retry = ServerAction::<RetryStep>::new();
    let clear = ServerAction::<ClearSession>::new();
    let step_events = Memo::new(move |_| {
        live.recent.with(|recent| {
            recent
                .iter()
                .find(|e| {
                    matches!(
                        e.kind,
                        EventKind::StepStatus(_)
                            | EventKind::SessionCleared(_)
                            | EventKind::SessionUpdated(_)
                    )
                })
                .map(|e| e.id)
        })
    });
    let job_changes = live.job_changes();
    // True while events flow; a change (a reconnect, or the fall-back to polling) reads again.
    let is_live = Memo::new(move |_| live.connection.get() == Connection::Live);
    let session = Resource::new(
        move || {
            (
                step_events.get(),
                job_changes.get(),
                live.resyncs.get(),
                is_live.get(),
                start.version().get(),
                press.version().get(),
                retry.version().get(),
                clear.version().get(),
            )
        },
        |_| get_workflow_overview(WORKFLOW.to_string()),
    );
    let changes = Resource::new(
        move || (step_events.get(), live.resyncs.get()),
        |_| get_recent_changes(CHANGES_SHOWN),
    );
    // The outcome of the last button pressed: its error, or nothing once one succeeds.
    let notice = RwSignal::new(None::<String>);
    let outcome = move |result: Option<Result<(), String>>| match result {
        Some(Err(err)) => notice.set(Some(err)),
        Some(Ok(())) => notice.set(None),
        None => {}
    };
    let plain = |r: Option<Result<(), UiError>>| r.map(|r| r.map_err(|e| e.to_string()));
    Effect::new(move |_| {
        outcome(
            start
                .value()
                .get()
                .map(|r| r.map(drop).map_err(|e| e.to_string())),
        )
    });
    Effect::new(move |_| outcome(plain(press.value().get())));
    Effect::new(move |_| outcome(plain(retry.value().get())));
    Effect::new(move |_| outcome(plain(clear.value().get())));
    let error = move || notice.get();
    let toasts = Toasts::new();
    toasts.follow(session);

    view! {
        <PageHeader title="Daily sync" purpose="Import web data, export orders to the ERP, import from the ERP, validate, and publish to the web shop, one step at a time."/>
        <Show when=move || error().is_some()>
            <p class="notice notice-error" role="alert">{move || error().unwrap_or_default()}</p>
        </Show>
        <Transition fallback=|| view! { <p class="loading">"Loading the daily sync…"</p> }>
            {move || {
                session
                    .get()
                    .map(|result| match result {
                        Ok(overview) => {
                            let steps = view! { <StepList overview=overview.clone() press retry live/> };
                            let found = overview.session;
                            // Shown before the first session too, so that starting one moves nothing.
                            let timeline = view! { <Timeline rows=found.clone().map(|s| s.timeline).unwrap_or_default()/> };
                            view! { <SessionPanel found start clear/> {steps} {timeline} }.into_any()
                        }
                        // Only an unknown workflow means the setup lacks it; anything else is a
                        // failed read, said as such.
                        Err(err @ UiError::NotFound(_)) => view! {
                            <EmptyState headline="The daily sync is not available">
                                <p>{err.to_string()}</p>
                                <p>"It needs the sync types orders, products, export-orders, customers, prices, ddt, invoices, validate and web-export: the built-in ones with an [connections.erp], or your own in baton.toml."</p>
                            </EmptyState>
                        }
                        .into_any(),
                        Err(err) => view! {
                            <p class="notice notice-error" role="alert">
                                {format!("The daily sync could not be read: {err}. The page tries again with the next update.")}
                            </p>
                        }
                        .into_any(),
                    })
            }}
        </Transition>
        <RecentChanges changes/>
        // Last on the page, so that nothing above moves when the first warning arrives; the
        // session bar counts them and links here.
        <Transition fallback=|| ()>
            {move || {
                session
                    .get()
                    .and_then(Result::ok)
                    .and_then(|overview| overview.session)
                    .map(|s| view! { <Warnings session=s/> })
            }}
        </Transition>
        <ToastRegion toasts/>
    }
}

/// The session's state, source, who started it and when, and the Start button.
#[component]
fn SessionPanel(
    found: Option<SessionView>,
    start: ServerAction<StartSession>,
    clear: ServerAction<ClearSession>,
) -> impl IntoView {
    // Viewers see the session, not its buttons (the server refuses them anyway).
    let staff = crate::hooks::can(crate::model::Role::Staff);
    let Some(session) = found else {
        return view! {
            <section class="panel session-bar" data-testid="session" data-state="none">
                <div class="session-summary">
                    <span class="state state-idle">"Not run yet"</span>
                    <span class="session-meta">"Imports today's data, then asks before anything leaves for the ERP or the web shop."</span>
                </div>
                <div class="session-actions">
                    {staff.then(|| view! {
                        <button class="button" data-testid="start" disabled=move || start.pending().get()
                            on:click=move |_| { start.dispatch(StartSession { workflow: WORKFLOW.into() }); }>
                            "Start daily sync"
                        </button>
                    })}
                </div>
            </section>
        }
        .into_any();
    };
    let (class, label) = session_badge(session.state);
    let open = session.state.is_open();
    let id = session.id.clone();
    let who = session
        .triggered_by
        .clone()
        .map(|w| format!(" by {w}"))
        .unwrap_or_default();
    let run = (session.run > 1).then(|| format!(" · run {}", session.run));
    let action = if !staff {
        ().into_any()
    } else if open {
        // A session that waits for a person (or runs) can be started over from step 1.
        let waiting = session.state == SessionState::Waiting;
        view! {
            <button class="button button-quiet" data-testid="start-over"
                disabled=move || !waiting || clear.pending().get()
                title="Run this session again from step 1; its history stays in the timeline"
                on:click=move |_| { clear.dispatch(ClearSession { session_id: id.clone() }); }>
                "Start over"
            </button>
        }
        .into_any()
    } else {
        view! {
            <button class="button" data-testid="start" disabled=move || start.pending().get()
                on:click=move |_| { start.dispatch(StartSession { workflow: WORKFLOW.into() }); }>
                "Start daily sync"
            </button>
        }
        .into_any()
    };
    view! {
        <section class="panel session-bar" data-testid="session" data-state=session.state.as_str() data-run=session.run>
            <div class="session-summary">
                <span class=format!("state state-{class}")>{label}</span>
                <span class="session-meta">
                    "Started "
                    <time datetime=session.started_at.to_rfc3339()>{time_of_day(session.started_at)}</time>
                    {format!(" · {}{who}", session.source)}
                    {run}
                    {session.finished_at.map(|at| view! {
                        " · finished " <time datetime=at.to_rfc3339()>{time_of_day(at)}</time>
                    })}
                    {(!session.warnings.is_empty()).then(|| view! {
                        " · " <a href="#warnings" data-testid="warnings-link">{warnings_label(session.warnings.len())}</a>
                    })}
                </span>
            </div>
            <div class="session-actions">{action}</div>
        </section>
    }
    .into_any()
}

/// CSS class and label of a session state.
fn session_badge(state: SessionState) -> (&'static str, &'static str) {
    match state {
        SessionState::Running => ("running", "Running"),
        SessionState::Waiting => ("attention", "Waiting for you"),
        SessionState::Completed => ("success", "Completed"),
        SessionState::CompletedWithWarnings => ("warn", "Completed with warnings"),
        SessionState::Failed => ("error", "Failed"),
        SessionState::Cancelled => ("idle", "Cancelled"),
    }
}

/// The steps of the newest session, or of the workflow before its first session.
#[component]
fn StepList(
    overview: WorkflowOverview,
    press: ServerAction<PressGate>,
    retry: ServerAction<RetryStep>,
    live: LiveEvents,
) -> impl IntoView {
    let (id, steps) = match overview.session {
        Some(session) => (session.id, session.steps),
        None => (
            String::new(),
            overview
                .steps
                .into_iter()
                .enumerate()
                .map(|(i, name)| StepView {
                    step: i as u32 + 1,
                    name,
                    status: StepStatus::Waiting,
                    message: None,
                    details: serde_json::Value::Null,
                    action: None,
                    reached: false,
                    started_at: None,
                    jobs: Vec::new(),
                })
                .collect(),
        ),
    };
    view! {
        <ol class="steps" aria-label="Steps">
            {steps
                .into_iter()
                .map(|step| view! { <StepItem session_id=id.clone() step press retry live/> })
                .collect_view()}
        </ol>
    }
}

/// What a step is, for its icon, label and CSS.
fn step_phase(step: &StepView) -> (&'static str, &'static str) {
    match step.status {
        StepStatus::Waiting if step.action.is_some() => ("gate", "Waiting for you"),
        StepStatus::Waiting if step.reached => ("waiting", "Waiting"),
        StepStatus::Waiting => ("pending", "Not started"),
        StepStatus::Processing => ("processing", "Running"),
        StepStatus::Completed => ("completed", "Done"),
        StepStatus::Failed => ("failed", "Failed"),
    }
}

#[component]
fn StepItem(
    session_id: String,
    step: StepView,
    press: ServerAction<PressGate>,
    retry: ServerAction<RetryStep>,
    live: LiveEvents,
) -> impl IntoView {
    let (phase, label) = step_phase(&step);
    let n = step.step;
    let icon = match phase {
        "processing" => view! { <span class="spinner"></span> }.into_any(),
        "completed" => view! { "✓" }.into_any(),
        "failed" => view! { "!" }.into_any(),
        _ => view! { {n} }.into_any(),
    };
    let findings = step
        .details
        .get("findings")
        .and_then(|f| f.as_array())
        .filter(|f| !f.is_empty())
        .cloned()
        .map(|findings| {
            let count = findings.len();
            view! {
                <details class="findings">
                    <summary>{format!("{count} finding{} listed", if count == 1 { "" } else { "s" })}</summary>
                    <ul>
                        {findings.into_iter().map(|f| view! {
                            <li>
                                <span class="finding-check">{f["check"].as_str().unwrap_or("").to_string()}</span>
                                " "
                                {f["message"].as_str().unwrap_or("").to_string()}
                            </li>
                        }).collect_view()}
                    </ul>
                </details>
            }
        });
    let extra = match step.status {
        StepStatus::Processing => {
            let jobs = step.jobs.clone();
            let (percent, text) = {
                let jobs2 = jobs.clone();
                (
                    Signal::derive(move || step_progress(live, &jobs).0),
                    Signal::derive(move || step_progress(live, &jobs2).1),
                )
            };
            view! { <ProgressBar percent label=text/> }.into_any()
        }
        // Counts and findings share one line, so a finished step is as tall as a running one.
        StepStatus::Completed => {
            view! { <div class="step-done"><Counts details=step.details.clone()/> {findings}</div> }
                .into_any()
        }
        // The message line shows as much of the error as fits; all of it folds out here.
        StepStatus::Failed => {
            let error = step.message.clone().unwrap_or_default();
            view! {
                <div class="step-done">
                    <Counts details=step.details.clone()/>
                    {findings}
                    <details class="findings full-error">
                        <summary>"Full error"</summary>
                        <p class="row-error">{error}</p>
                    </details>
                </div>
            }
            .into_any()
        }
        StepStatus::Waiting => ().into_any(),
    };
    let staff = crate::hooks::can(crate::model::Role::Staff);
    let button = match (&step.action, step.status) {
        _ if !staff => ().into_any(),
        (Some(action), StepStatus::Waiting) => {
            let (id, label) = (session_id.clone(), action.clone());
            view! {
                <button class="button" data-testid=format!("action-{n}") disabled=move || press.pending().get()
                    on:click=move |_| { press.dispatch(PressGate { session_id: id.clone(), step: n }); }>
                    {label}
                </button>
            }
            .into_any()
        }
        (_, StepStatus::Failed) => {
            let id = session_id.clone();
            view! {
                <button class="button button-secondary" data-testid=format!("retry-{n}") disabled=move || retry.pending().get()
                    on:click=move |_| { retry.dispatch(RetryStep { session_id: id.clone(), step: n }); }>
                    "Retry step"
                </button>
            }
            .into_any()
        }
        _ => ().into_any(),
    };
    let message = step.message.clone().unwrap_or_else(|| match phase {
        "pending" => "Starts when the steps before it are done.".into(),
        _ => String::new(),
    });
    let title = message.clone();
    view! {
        <li class=format!("step step-{phase}") data-step=n data-status=step.status.as_str() data-phase=phase>
            <span class="step-icon" aria-hidden="true">{icon}</span>
            <div class="step-body">
                <h2 class="step-name">
                    {step.name.clone()}
                    <span class=format!("step-label step-label-{phase}")>{label}</span>
                </h2>
                // One line whatever it says (the whole of it is the title), so that no step
                // grows as the session moves on.
                <p class=if step.status == StepStatus::Failed { "step-message row-error" } else { "step-message" } title=title>{message}</p>
                <div class="step-extra">{extra}</div>
            </div>
            <div class="step-action">{button}</div>
        </li>
    }
}

/// A processing step's progress over its jobs: percent, and "processed / total · message".
/// Live `job-progress` events win over the stored figures of the last read.
fn step_progress(live: LiveEvents, jobs: &[crate::model::StepJob]) -> (u8, String) {
    let mut processed = 0u64;
    let mut total = Some(0u64);
    let mut done = 0usize;
    let mut message = None;
    for job in jobs {
        let (p, t) = match live.progress_of(&job.id) {
            Some(progress) => {
                if progress.message.is_some() {
                    message = progress.message.clone();
                }
                (progress.processed, progress.total)
            }
            None => (job.processed, job.total),
        };
        if job.state.is_terminal() {
            done += 1;
        }
        processed += p;
        total = match (total, t) {
            (Some(sum), Some(t)) => Some(sum + t),
            _ => None,
        };
    }
    let percent = match total {
        Some(t) if t > 0 => ((processed.min(t) * 100) / t) as u8,
        _ if !jobs.is_empty() => ((done * 100) / jobs.len()) as u8,
        _ => 0,
    };
    let figures = match total {
        Some(t) if t > 0 => format!("{} / {}", thousands(processed), thousands(t)),
        _ => format!("{} processed", thousands(processed)),
    };
    let jobs_done = format!("{done} of {} jobs done", jobs.len());
    let text = match message {
        Some(m) => format!("{figures} · {jobs_done} · {m}"),
        None => format!("{figures} · {jobs_done}"),
    };
    (percent, text)
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A finished step's counts: processed, and the others that are not zero.
#[component]
fn Counts(details: serde_json::Value) -> impl IntoView {
    let counts = &details["counts"];
    let parts: Vec<String> = ["processed", "created", "updated", "changes", "errors"]
        .into_iter()
        .filter_map(|key| {
            let n = counts.get(key)?.as_u64()?;
            // "1 error", "1 change"; "1 processed".
            let word = if n == 1 {
                key.trim_end_matches('s')
            } else {
                key
            };
            (key == "processed" || n > 0).then(|| format!("{} {word}", thousands(n)))
        })
        .collect();
    view! { <p class="step-counts">{parts.join(" · ")}</p> }
}

/// "1 warning", "3 warnings".
fn warnings_label(count: usize) -> String {
    format!("{count} warning{}", if count == 1 { "" } else { "s" })
}

/// What went wrong without stopping the session.
#[component]
fn Warnings(session: SessionView) -> impl IntoView {
    (!session.warnings.is_empty()).then(|| {
        view! {
            <section class="panel warnings" id="warnings" data-testid="warnings">
                <h2>{warnings_label(session.warnings.len())}</h2>
                <ul>{session.warnings.into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}</ul>
            </section>
        }
    })
}

/// The status table of this session, newest first, folded away until asked for.
#[component]
fn Timeline(rows: Vec<StatusRow>) -> impl IntoView {
    let count = rows.len();
    let rows: Vec<StatusRow> = rows.into_iter().rev().take(TIMELINE_SHOWN).collect();
    view! {
        <details class="panel timeline" data-testid="timeline">
            <summary>{match count {
                0 => "Timeline · no status rows yet".to_string(),
                1 => "Timeline · 1 status row".to_string(),
                _ => format!("Timeline · {count} status rows"),
            }}</summary>
            <table class="sync-table">
                <thead>
                    <tr><th scope="col">"Time"</th><th scope="col">"Run"</th><th scope="col">"Step"</th><th scope="col">"Status"</th><th scope="col">"Message"</th></tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|row| view! {
                        <tr data-status=row.status.as_str()>
                            <td><time datetime=row.at.to_rfc3339()>{time_of_day(row.at)}</time></td>
                            <td>{row.run}</td>
                            <td>{format!("{}. {}", row.step, row.name)}</td>
                            <td>{row.status.as_str()}</td>
                            <td>{row.message.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
    }
}

/// The newest record changes the syncs found (seed 004's recent changes).
#[component]
fn RecentChanges(changes: Resource<Result<Vec<EntityChange>, UiError>>) -> impl IntoView {
    view! {
        <section class="panel changes" data-testid="recent-changes">
            <h2>"Recent changes"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading changes…"</p> }>
                {move || changes.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">"No changes yet. Imports list what they created, updated and removed here."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="change-list">
                            {list.into_iter().map(|c| {
                                let fields = (!c.fields.is_empty()).then(|| format!(" ({})", c.fields.join(", ")));
                                view! {
                                    <li data-change=c.change.as_str()>
                                        <time class="muted" datetime=c.at.to_rfc3339()>{time_of_day(c.at)}</time>
                                        <span class=format!("change-kind change-{}", c.change.as_str())>{c.change.as_str()}</span>
                                        <span>{format!("{} {}", c.entity, c.key)}</span>
                                        <span class="muted">{fields}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(err) => view! { <p class="row-error">{format!("The changes could not be read: {err}")}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One toast: a finished step, a failure, the session's end.
#[derive(Clone, Debug, PartialEq)]
struct Toast {
    id: u32,
    error: bool,
    text: String,
}

/// The toasts on screen; each goes after a while or when closed.
#[derive(Clone, Copy)]
struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next: RwSignal<u32>,
}

impl Toasts {
    fn new() -> Self {
        Self {
            list: RwSignal::new(Vec::new()),
            next: RwSignal::new(0),
        }
    }

    fn push(self, error: bool, text: String) {
        let id = self.next.get_untracked();
        self.next.set(id + 1);
        self.list.update(|l| {
            l.push(Toast { id, error, text });
            // A burst does not bury the page.
            if l.len() > 4 {
                l.remove(0);
            }
        });
        set_timeout(
            move || self.dismiss(id),
            std::time::Duration::from_millis(TOAST_MS),
        );
    }

    fn dismiss(self, id: u32) {
        self.list.update(|l| l.retain(|t| t.id != id));
    }

    /// Toasts what changed between two reads of the session: steps that finished or failed, and
    /// the session's end. The first read (the page opening) toasts nothing.
    fn follow(self, overview: Resource<Result<WorkflowOverview, UiError>>) {
        Effect::new(move |previous: Option<Option<SessionView>>| {
            let current = match overview.get() {
                Some(Ok(overview)) => overview.session,
                // Not read yet, or a failed read: keep what was known.
                _ => return previous.flatten(),
            };
            if let (Some(Some(before)), Some(now)) = (&previous, &current) {
                if before.id == now.id && before.run == now.run {
                    for (was, is) in before.steps.iter().zip(&now.steps) {
                        if was.status == is.status {
                            continue;
                        }
                        match is.status {
                            StepStatus::Completed => self.push(false, format!("{} done", is.name)),
                            StepStatus::Failed => self.push(
                                true,
                                format!(
                                    "{} failed: {}",
                                    is.name,
                                    is.message.clone().unwrap_or_default()
                                ),
                            ),
                            _ => {}
                        }
                    }
                    if before.finished_at.is_none() && now.finished_at.is_some() {
                        let (_, label) = session_badge(now.state);
                        self.push(
                            now.state == SessionState::Failed,
                            format!("Daily sync: {label}"),
                        );
                    }
                }
            }
            current
        });
    }
}

#[component]
fn ToastRegion(toasts: Toasts) -> impl IntoView {
    view! {
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For
                each=move || toasts.list.get()
                key=|t| t.id
                children=move |t| {
                    let id = t.id;
                    view! {
                        <div class=if t.error { "toast toast-error" } else { "toast" }>
                            <span>{t.text}</span>
                            <button class="toast-close" aria-label="Dismiss" on:click=move |_| toasts.dismiss(id)>"×"</button>
                        </div>
                    }
                }
            />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}

//! The server-activity drawer at the foot of every page: the newest live events, as they arrive.

use leptos::prelude::*;

use super::time_of_day;
use crate::{
    hooks::use_live_events,
    model::{DatabaseHealth, EventKind, LiveEvent},
};

/// A toggle and, when open, the list of recent events. Closed on the server; opens in the browser.
#[component]
pub fn ActivityPanel() -> impl IntoView {
    let live = use_live_events();
    let (open, set_open) = signal(false);
    view! {
        <section class="activity" class:open=open>
            <button
                class="activity-toggle"
                aria-expanded=move || open.get().to_string()
                aria-controls="activity-list"
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                {move || if open.get() { "Hide server activity" } else { "Show server activity" }}
                <span class="count">{move || live.recent.with(Vec::len)}</span>
            </button>
            <Show when=move || open.get()>
                <ol id="activity-list" class="activity-list" aria-label="Recent server events">
                    <For
                        each=move || live.recent.get()
                        key=|event| event.id
                        children=move |event| view! { <ActivityRow event/> }
                    />
                    <Show when=move || live.recent.with(Vec::is_empty)>
                        <li class="activity-empty">"Nothing yet. Events appear here as the server sends them."</li>
                    </Show>
                </ol>
            </Show>
        </section>
    }
}

#[component]
fn ActivityRow(event: LiveEvent) -> impl IntoView {
    let summary = match &event.kind {
        EventKind::Heartbeat(beat) => match beat.database {
            DatabaseHealth::Ok => "Server alive, database reachable".to_string(),
            DatabaseHealth::Unavailable => "Server alive, database unreachable".to_string(),
        },
        EventKind::SyncStarted(job) => {
            format!("{} started (attempt {})", job.sync_type, job.attempt)
        }
        EventKind::SyncCompleted(job) => format!("{} completed", job.sync_type),
        EventKind::SyncError(job) => format!(
            "{} failed: {}",
            job.sync_type,
            job.error.as_deref().unwrap_or("unknown error")
        ),
        EventKind::SyncCancelled(job) => format!("{} cancelled", job.sync_type),
        EventKind::JobProgress(p) => format!(
            "{} {}%{}",
            p.sync_type,
            p.progress,
            p.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        EventKind::QueueUpdated(q) => format!("{} waiting, {} running", q.pending, q.running),
        EventKind::SmartSyncStarted(e) => format!(
            "order form opened: customers refreshing, other syncs wait ({} tab(s))",
            e.active_tabs
        ),
        EventKind::SmartSyncEnded(e) => format!(
            "order form {} ({} tab(s) left)",
            e.reason.as_deref().unwrap_or("closed"),
            e.active_tabs
        ),
        EventKind::SmartSyncTimeout(e) => format!(
            "order form open too long: other syncs resume ({} tab(s) left)",
            e.active_tabs
        ),
        EventKind::ScheduleUpdated(s) => format!(
            "schedule {}: {}{}",
            s.id,
            if s.spec.enabled {
                s.spec.timing()
            } else {
                "off".into()
            },
            s.recent
                .first()
                .map(|f| format!(
                    ", {} {}",
                    f.outcome.as_str(),
                    f.fire_time.format("%H:%M:%S")
                ))
                .unwrap_or_default()
        ),
        EventKind::SyncLate(c) => format!(
            "{} is {}{}",
            c.sync_type,
            c.freshness.as_str(),
            c.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        EventKind::JobLog(line) => format!("{}: {}", line.level.as_str(), line.message),
        EventKind::StepStatus(row) => format!(
            "step {} {}: {}{}",
            row.step,
            row.name,
            row.status.as_str(),
            row.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        EventKind::SessionCleared(cleared) => format!("session cleared for run {}", cleared.run),
        EventKind::SessionUpdated(session) => format!(
            "{} session {} (run {})",
            session.workflow,
            session.state.as_str().replace('_', " "),
            session.run
        ),
    };
    view! {
        <li class="activity-row" data-event=event.kind.name()>
            <time datetime=event.at.to_rfc3339()>{time_of_day(event.at)}</time>
            <span class="event-name">{event.kind.name()}</span>
            <span class="event-summary">{summary}</span>
        </li>
    }
}

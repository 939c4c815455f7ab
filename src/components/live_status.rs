//! The connection pill in the top bar: how live events arrive, and the last heartbeat.

use leptos::prelude::*;

use super::time_of_day;
use crate::{
    hooks::{use_live_events, Connection},
    model::{DatabaseHealth, EventKind},
};

/// Shows Live / Polling / Offline, when the server last said it was alive, and a warning when its
/// database was unreachable at that heartbeat.
#[component]
pub fn LiveStatus() -> impl IntoView {
    let live = use_live_events();
    // The newest heartbeat among all recent events.
    let last_heartbeat = move || {
        live.recent.with(|recent| {
            recent.iter().find_map(|event| match &event.kind {
                EventKind::Heartbeat(beat) => Some((event.at, beat.database)),
                _ => None,
            })
        })
    };
    let label = move || match live.connection.get() {
        Connection::Connecting => "Connecting…",
        Connection::Live => "Live",
        Connection::Polling => "Polling",
        Connection::Offline => "Offline",
    };
    let title = move || match live.connection.get() {
        Connection::Connecting => "Connecting to the server's live updates",
        Connection::Live => "Updates arrive as they happen",
        Connection::Polling => "Live updates are unavailable; checking every 3 seconds",
        Connection::Offline => "The server cannot be reached; retrying",
    };
    view! {
        <div class="live-status" data-connection=move || live.connection.get().as_str() title=title>
            <span class="dot" aria-hidden="true"></span>
            <span class="label" aria-live="polite">{label}</span>
            <span class="heartbeat" data-testid="last-heartbeat">
                {move || last_heartbeat().map(|(at, _)| format!("heartbeat {}", time_of_day(at)))}
            </span>
            {move || {
                (last_heartbeat().map(|(_, db)| db) == Some(DatabaseHealth::Unavailable))
                    .then(|| view! { <span class="db-warning" role="alert">"database unreachable"</span> })
            }}
        </div>
    }
}

//! Server functions: the UI's typed calls into the server. Each is a thin wrapper over a server
//! service; no logic lives here.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::model::EventPage;

/// Most events one poll returns; a client further behind polls again at once.
pub const POLL_PAGE_LIMIT: usize = 200;

/// `GET /api/events/poll?after=<id>`: the live-events hook's fallback when SSE is not available.
/// Without `after` it returns no events, only the newest id to continue from.
#[server(prefix = "/api", endpoint = "events/poll", input = GetUrl)]
pub async fn poll_events(after: Option<u64>) -> Result<EventPage, ServerFnError> {
    let state = crate::server::state::app_state()?;
    Ok(state.events.page_after(after, POLL_PAGE_LIMIT))
}

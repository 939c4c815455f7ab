//! The live-event routes: `GET /api/events` (server-sent events, resuming after
//! `Last-Event-ID`) and `GET /api/events/poll` (the fallback when SSE is not available).

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::HeaderMap,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse,
    },
    Json,
};
use futures::{stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};

use super::error::ApiError;
use crate::{
    model::{EventPage, LiveEvent},
    server::{events::Subscription, state::AppState},
};

/// The OpenAPI operations of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events, poll_events))]
pub struct Doc;

/// Most events one poll returns; a client further behind polls again at once.
pub const POLL_PAGE_LIMIT: usize = 200;

/// Query of both event routes: `?after=<id>`, the last event the client has. On the stream it is
/// what `Last-Event-ID` says, for clients that cannot set headers; the header wins when both are
/// given.
#[derive(Debug, Deserialize)]
pub struct AfterQuery {
    pub after: Option<u64>,
}

fn after_query(query: Result<Query<AfterQuery>, QueryRejection>) -> Result<Option<u64>, ApiError> {
    query.map(|Query(q)| q.after).map_err(|_| {
        ApiError::BadRequest(
            "`after` must be the id of an event (a whole number, as in the `id:` lines of \
             /api/events), or left out"
                .into(),
        )
    })
}

/// The live events after `after`, at most 200: the fallback when server-sent events are not
/// available. Without `after`, no events, only the newest id to continue from.
#[utoipa::path(
    get,
    path = "/api/events/poll",
    tag = "events",
    params(("after" = Option<u64>, Query, description = "The id of the last event the client has")),
    responses((status = 200, description = "The events", body = EventPage)),
)]
pub async fn poll_events(
    State(state): State<AppState>,
    query: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let after = after_query(query)?;
    Ok(Json(state.events.page_after(after, POLL_PAGE_LIMIT)))
}

/// The live stream as server-sent events (`event: <kind>`, `id: <id>`, `data: <LiveEvent>`),
/// resuming after `Last-Event-ID` (or `?after=`); `resync` when events were missed. 503
/// `too_many_streams` past `sse_max_clients`.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    params(
        ("after" = Option<u64>, Query, description = "Resume after this event id (the Last-Event-ID header wins)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses((status = 200, description = "The stream; each event's data is a LiveEvent", content_type = "text/event-stream", body = String)),
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let after = after_query(query)?;
    // One slot per open stream; the slot goes back when the stream ends.
    let Ok(slot) = state.sse_slots.clone().try_acquire_owned() else {
        return Err(ApiError::Unavailable {
            code: "too_many_streams",
            message: format!(
                "this server already streams live events to {} clients (sse_max_clients); \
                 poll GET /api/events/poll instead, or try again later",
                state.config.sse_clients()
            ),
        });
    };
    let replay = state.config.sse_replay_limit;
    let header_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    let mut subscription = match header_id {
        Some(Some(id)) => state.events.subscribe_replaying(Some(id), replay),
        // A Last-Event-ID we cannot read: we cannot know what the client missed.
        Some(None) => Subscription {
            resync: true,
            ..state.events.subscribe(None)
        },
        None => state.events.subscribe_replaying(after, replay),
    };
    let resync = std::mem::take(&mut subscription.resync);
    let head = resync
        .then(|| resync_event("some events were missed"))
        .into_iter()
        .chain(subscription.missed.iter().map(sse_event))
        .collect::<Vec<_>>();
    let live = BroadcastStream::new(subscription.live).map(|item| match item {
        Ok(event) => sse_event(&event),
        // This client fell behind the broadcast buffer: what it missed is gone from the stream.
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            resync_event(&format!("{n} events were dropped"))
        }
    });
    let metrics = state.engine.metrics().clone();
    let stream = stream::iter(head)
        .chain(live)
        .map(move |event| {
            let _slot = &slot;
            metrics.sse_sent();
            Ok::<_, Infallible>(event)
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config.sse_keep_alive));
    // A reverse proxy must pass events on as they come (nginx buffers otherwise).
    Ok((
        [("x-accel-buffering", "no"), ("cache-control", "no-cache")],
        sse,
    ))
}

fn sse_event(event: &Arc<LiveEvent>) -> Event {
    Event::default()
        .event(event.kind.name())
        .id(event.id.to_string())
        .json_data(event.as_ref())
        .unwrap_or_else(|_| {
            Event::default()
                .event("error")
                .data("event could not be encoded")
        })
}

/// Tells the client its view is stale and it should reload state; carries no id, so the
/// client's `Last-Event-ID` stays where it was.
fn resync_event(reason: &str) -> Event {
    Event::default()
        .event("resync")
        .data(json!({ "reason": reason }).to_string())
}

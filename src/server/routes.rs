//! The HTTP surface: probes, the live-event stream, the Leptos pages and server functions, and the
//! middleware stack every request passes through.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{rejection::QueryRejection, Query, Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{any, get},
    Json, Router,
};
use futures::{stream, Stream, StreamExt};
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use super::{error::ApiError, events::Subscription, guard, state::AppState};
use crate::{
    app::{shell, App},
    model::{EventPage, LiveEvent},
};

/// How long `/readyz` waits for the database before it says not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Most events one poll returns; a client further behind polls again at once.
pub const POLL_PAGE_LIMIT: usize = 200;

/// The whole application as one router; tests serve it on port 0.
pub fn router(state: AppState) -> Router {
    let leptos_routes = generate_route_list(App);
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        .layer(middleware::from_fn(guard::guard_mutations))
        .layer(RequestBodyLimitLayer::new(state.config.body_limit));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/events", get(events))
        .route("/api/events/poll", get(poll_events))
        .merge(super::api::routes())
        .merge(super::sessions_api::routes())
        .route("/api/{*rest}", any(api_not_found))
        .leptos_routes(&state, leptos_routes, {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware)
        .with_state(state)
}

/// `GET /healthz`: the process is up and serving. Never touches the database.
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "instance_id": state.instance.id,
    }))
}

/// `GET /readyz`: the process can do its work: its database answers and it is not stopping.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::Unavailable {
            code: "shutting_down",
            message: "this Baton process is shutting down; send requests to another one".into(),
        });
    }
    let unavailable = || ApiError::Unavailable {
        code: "database_unavailable",
        message: "the database does not answer; check BATON_DATABASE_URL and that the database \
                  server is running"
            .into(),
    };
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(
            json!({ "status": "ready", "database": state.store.backend() }),
        )),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check: database error");
            Err(unavailable())
        }
        Err(_) => {
            tracing::warn!(timeout = ?READY_TIMEOUT, "readiness check: database timed out");
            Err(unavailable())
        }
    }
}

/// Query of both event routes: `?after=<id>`, the last event the client has. On the stream it is
/// what `Last-Event-ID` says, for clients that cannot set headers; the header wins when both are
/// given.
#[derive(Debug, Deserialize)]
struct AfterQuery {
    after: Option<u64>,
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

/// `GET /api/events/poll?after=<id>`: the live-events fallback when SSE is not available: the
/// events after `after`, at most [`POLL_PAGE_LIMIT`]. Without `after`, no events, only the newest
/// id to continue from.
async fn poll_events(
    State(state): State<AppState>,
    query: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let after = after_query(query)?;
    Ok(Json(state.events.page_after(after, POLL_PAGE_LIMIT)))
}

/// `GET /api/events`: the live stream as server-sent events, resuming after `Last-Event-ID`.
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = after_query(query)?;
    let header_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    let mut subscription = match header_id {
        Some(Some(id)) => state.events.subscribe(Some(id)),
        // A Last-Event-ID we cannot read: we cannot know what the client missed.
        Some(None) => Subscription {
            resync: true,
            ..state.events.subscribe(None)
        },
        None => state.events.subscribe(after),
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
    let stream = stream::iter(head)
        .chain(live)
        .map(Ok)
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config.sse_keep_alive)))
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

/// Any other `/api/…` path: a JSON 404 rather than the HTML page.
async fn api_not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "there is no API endpoint {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Turns the plain-text 408 and 413 that tower-http layers produce into the API's JSON errors.
async fn json_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(state.config.body_limit).into_response()
        }
        StatusCode::REQUEST_TIMEOUT => {
            ApiError::Timeout(state.config.request_timeout).into_response()
        }
        _ => response,
    }
}

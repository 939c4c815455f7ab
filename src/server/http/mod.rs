//! The HTTP surface: the router with its middleware stack, and the Leptos pages and server
//! functions. The routes of each area live beside it: [`jobs`] (`/api/sync`, `/api/jobs`),
//! [`sessions`] (`/api/sessions`, `/api/workflows`), [`events`] (SSE and polling), [`people`]
//! (the audit log, webhooks), [`compat`] (seed 002's `/api/sync/{type}/start|status|cancel`);
//! [`openapi`] (the API contract and its page), [`probes`] (health, readiness, metrics);
//! [`extract`] reads requests, [`error`] answers with JSON errors, [`perimeter`] refuses foreign
//! hosts and sets the browser's security headers, and [`access`] holds every request to the one
//! table of who may do what.

pub mod access;
pub mod compat;
pub mod error;
pub mod events;
pub mod extract;
pub mod jobs;
pub mod openapi;
pub mod orders;
pub mod people;
pub mod perimeter;
pub mod probes;
pub mod schedules;
pub mod serve;
pub mod sessions;

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get},
    Router,
};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use self::error::ApiError;
use super::state::AppState;
use crate::app::{shell, App};

/// The whole application as one router; tests serve it on port 0.
pub fn router(state: AppState) -> Router {
    let leptos_routes = generate_route_list(App);
    let middleware = ServiceBuilder::new()
        .map_request(plain_request_id)
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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            perimeter::perimeter,
        ))
        .layer(cors(&state.config.cors_origins))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .layer(RequestBodyLimitLayer::new(state.config.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        // axum's own cap on the bodies its extractors read (2 MiB unless told) is ours.
        .layer(axum::extract::DefaultBodyLimit::max(state.config.body_limit));

    Router::new()
        .merge(probes::routes())
        .route("/api/events", get(events::events))
        .route("/api/events/poll", get(events::poll_events))
        .merge(jobs::routes())
        .merge(compat::routes())
        .merge(openapi::routes())
        .merge(schedules::routes())
        .merge(sessions::routes())
        .merge(people::routes())
        .merge(orders::routes())
        .route("/api/{*rest}", any(api_not_found))
        .leptos_routes(&state, leptos_routes, {
            let options = state.leptos.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Inside the stack, after routing: every matched route meets its rule.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), probes::track))
        .layer(middleware)
        .with_state(state)
}

/// CORS for the configured origins (none: same origin only, and no CORS headers at all): their
/// pages may call the API with an API token; cookies are never sent cross-origin.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// Keeps a client's (or a proxy's) `x-request-id` only when it is a short plain token, so that
/// logs and answers never carry a client's text of any length or kind; otherwise Baton makes
/// its own.
fn plain_request_id<B>(mut request: Request<B>) -> Request<B> {
    let plain = request.headers().get("x-request-id").is_none_or(|v| {
        let v = v.as_bytes();
        !v.is_empty()
            && v.len() <= 64
            && v.iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if !plain {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Any other `/api/…` path: a JSON 404 rather than the HTML page.
async fn api_not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "there is no API endpoint {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// A server function's error leaves server_fn as a 500 whatever it is; its body says what it is
/// (`{"error": "not_found", …}`, the JSON API's codes), so it gets the JSON API's status too.
async fn server_fn_status(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (parts.status, "").into_response();
    };
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
    parts.status = match code.as_deref() {
        Some("bad_request") => StatusCode::BAD_REQUEST,
        Some("unauthorized") => StatusCode::UNAUTHORIZED,
        Some("forbidden") => StatusCode::FORBIDDEN,
        Some("too_many_requests") => StatusCode::TOO_MANY_REQUESTS,
        Some("not_found") => StatusCode::NOT_FOUND,
        Some("conflict") => StatusCode::CONFLICT,
        Some("invalid") => StatusCode::UNPROCESSABLE_ENTITY,
        Some("unavailable") => StatusCode::SERVICE_UNAVAILABLE,
        _ => parts.status,
    };
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Turns the plain-text 408 and 413 that tower-http layers produce into the API's JSON errors.
async fn json_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let server_fn = path.starts_with("/api/fn/") || path.starts_with("/api/auth/");
    let api = path.starts_with("/api/");
    let response = next.run(request).await;
    if server_fn && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
        return server_fn_status(response).await;
    }
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
        // axum's own refusals (a path or query that does not parse, a wrong method) are plain
        // text; on the API they are JSON like every other error, with axum's words.
        status if api && status.is_client_error() => {
            let (_, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 8 * 1024)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            match status {
                StatusCode::NOT_FOUND => ApiError::NotFound(text),
                StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(text),
                StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(text),
                _ => ApiError::BadRequest(text),
            }
            .into_response()
        }
        _ => response,
    }
}

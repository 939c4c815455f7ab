//! The outer wall: a request must name a host Baton answers to (else 421, which closes DNS
//! rebinding: a page on `rebind.attacker` that resolves to Baton's address still says
//! `Host: rebind.attacker`), and every answer carries the headers that keep browsers from
//! framing Baton, sniffing types or leaking its URLs.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;
use crate::server::{auth::Who, state::AppState};

pub use crate::server::auth::Perimeter;

/// The policy for everything that is not a page (pages set their own, with the nonce of their
/// scripts, in `app.rs`): nothing may load, nothing may frame it.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The middleware.
pub async fn perimeter(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // Probes are asked for by address (a load balancer, Docker): they say nothing secret.
    let probe = path == "/healthz" || path == "/readyz";
    if !probe {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !state.perimeter.allows(&host) {
            let who = Who {
                principal: None,
                address: super::serve::peer_of(&request).map(|a| a.ip().to_string()),
                user_agent: None,
            };
            let shown: String = host.chars().filter(|c| !c.is_control()).take(100).collect();
            let message = format!(
                "this Baton does not answer to the host `{shown}`; open it at an address it \
                 knows, or add the name to public_url or allowed_hosts"
            );
            if state
                .refusals
                .check(who.address.as_deref().unwrap_or(""), "refusals")
                .is_ok()
            {
                let mut row = who.audit("host", Some(format!("host:{shown}")));
                row.outcome = "refused";
                row.status = Some(421);
                row.reason = Some(message.clone());
                state.auth.record(row).await;
            }
            return with_headers(ApiError::Misdirected(message).into_response());
        }
    }
    with_headers(next.run(request).await)
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    response
}

/// The policy of a page whose inline scripts carry `nonce`: its own scripts and the WebAssembly
/// they load, its own styles, images and connections (the live events), nothing else; never
/// framed. `dev` adds the websocket of `cargo leptos watch`'s reload.
pub fn page_csp(nonce: &str, dev_reload: Option<u16>) -> String {
    let reload = dev_reload
        .map(|port| format!(" ws://127.0.0.1:{port} ws://localhost:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

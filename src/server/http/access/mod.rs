//! Who may do what: the one table of every route, page and server function with the role it
//! needs and how the audit log records it ([`rules`]), and the middleware that holds every
//! request to it.
//!
//! A request is matched to its route first (axum's `MatchedPath`); its rule decides. A route the
//! router has and this table does not is refused (500 `undeclared_route`, logged as a bug), so a
//! new route cannot be born unprotected, and a test walks the router to find any.
//!
//! Who asks: an `Authorization: Bearer` API token, else the session cookie. A change made with
//! the cookie must prove it comes from Baton's own pages (an `Origin` of this site, or
//! `Sec-Fetch-Site: same-origin`); a browser never sends a bearer token by itself, so those need
//! no proof. Every change, and every refusal, appends one row to the audit log.

use std::collections::HashMap;

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

mod rules;

use rules::path_known;
pub use rules::{rule_for, Access, Audit, Rule, RULES};

use super::{error::ApiError, serve::peer};
use crate::server::{
    auth::{Principal, Who, COOKIE},
    state::AppState,
};

/// The value of `name=` in the `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `Set-Cookie` that ends the session cookie in the browser.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .expect("a plain cookie")
}

/// The `Set-Cookie` of a new session.
pub fn session_cookie(token: &str, max_age: std::time::Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    ))
    .expect("a token is URL-safe base64")
}

/// Why a request that changes something and carries the session cookie is not proven to come
/// from Baton's own pages, if it is not. A browser sends `Origin` with every such request
/// (`fetch`, forms); a request without it, or from another origin, is refused.
fn not_same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> Option<&'static str> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
    {
        return None;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Some(
            "a change made with the session cookie needs an Origin header (browsers send one); \
             programs should use an API token instead of the cookie",
        );
    };
    if Some(origin) == public_origin {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some(("http" | "https", rest)), Some(host))
            if rest.trim_end_matches('/').eq_ignore_ascii_case(host) =>
        {
            None
        }
        _ => Some("the request comes from another site"),
    }
}

/// Why a browser says a request that changes something is cross-site, if it does (with or
/// without credentials: signing in from another site is refused too).
fn cross_site(headers: &HeaderMap, public_origin: Option<&str>) -> Option<&'static str> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Some("the browser marked this request as cross-site");
    }
    headers.get(header::ORIGIN)?;
    not_same_origin(headers, public_origin)
}

/// A page (not the API) asked for by a browser: refusals redirect to the sign-in page.
fn is_page(rule: &Rule) -> bool {
    rule.method == "GET"
        && !rule.path.starts_with("/api/")
        && !matches!(rule.path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware: resolves who asks, refuses what their role does not allow (and cross-site
/// changes), records changes and refusals in the audit log.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(matched) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        // No route matched: the static files and the 404 page, which change nothing.
        return next.run(request).await;
    };
    let method = request.method().clone();
    let Some(rule) = rule_for(&method, &matched) else {
        if path_known(&matched) {
            return ApiError::MethodNotAllowed(format!("{matched} does not take {method}"))
                .into_response();
        }
        tracing::error!(path = %matched, %method, "a route without a rule in http::access::RULES");
        return undeclared(&matched);
    };
    let (mut parts, body) = request.into_parts();
    let mut who = Who {
        principal: None,
        address: peer(&parts).map(|a| a.ip().to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
    };
    let mut clear = false;
    let public_origin = state.perimeter.public_origin.clone();
    // The probes never touch the database, credentials or not.
    let probe = matches!(rule.path, "/healthz" | "/readyz");
    // Who asks: a bearer token wins over the cookie.
    let token = bearer(&parts.headers).filter(|_| !probe);
    let session = cookie(&parts.headers, COOKIE).filter(|_| !probe);
    if let Some(token) = token {
        match state.auth.bearer(token).await {
            Ok(Some(principal)) => who.principal = Some(principal),
            Ok(None) => {
                let refusal = ApiError::Unauthorized(
                    "the API token is unknown or revoked; ask an admin for a new one".into(),
                );
                return refuse(&state, &who, rule, &parts, refusal).await;
            }
            Err(err) => return ApiError::Internal(err).into_response(),
        }
    } else if let Some(token) = session {
        match state.auth.session(token).await {
            Ok(Some(principal)) => who.principal = Some(principal),
            // Ended or unknown: the browser forgets it with this answer.
            Ok(None) => clear = true,
            Err(err) => return ApiError::Internal(err).into_response(),
        }
    }
    if !method.is_safe() {
        // The cookie must prove its page is Baton's; nobody must be refused when a browser
        // says the page is another site's (signing in from another site); a bearer token is
        // never sent by a browser on its own, so it needs no proof (and CORS lets the
        // configured origins send one).
        let refused = match &who.principal {
            Some(p) if p.session.is_some() => {
                not_same_origin(&parts.headers, public_origin.as_deref())
            }
            Some(_) => None,
            None => cross_site(&parts.headers, public_origin.as_deref()),
        };
        if let Some(reason) = refused {
            let refusal = ApiError::Forbidden(format!(
                "{reason}: changes can only be made from Baton's own pages or with an API token"
            ));
            return refuse(&state, &who, rule, &parts, refusal).await;
        }
    }
    if let Access::Role(needed) = rule.access {
        match &who.principal {
            None if is_page(rule) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let to = format!("/login?next={}", urlencode(next));
                let mut response = (
                    StatusCode::SEE_OTHER,
                    [(
                        header::LOCATION,
                        HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/login")),
                    )],
                )
                    .into_response();
                if clear {
                    response.headers_mut().append(
                        header::SET_COOKIE,
                        clear_cookie(state.auth.settings().secure_cookie),
                    );
                }
                return response;
            }
            None => {
                let message = if clear {
                    "your session has ended; sign in again"
                } else {
                    "sign in, or send an API token as `Authorization: Bearer <token>`"
                };
                let refusal = ApiError::Unauthorized(message.into());
                let mut response = refuse(&state, &who, rule, &parts, refusal).await;
                if clear {
                    response.headers_mut().append(
                        header::SET_COOKIE,
                        clear_cookie(state.auth.settings().secure_cookie),
                    );
                }
                return response;
            }
            Some(Principal { role, .. }) if !role.allows(needed) => {
                let refusal = ApiError::Forbidden(format!(
                    "this needs the {needed} role; {} has the {role} role",
                    who.actor().label()
                ));
                return refuse(&state, &who, rule, &parts, refusal).await;
            }
            Some(_) => {}
        }
    }
    // What the audit log will say the change was done to.
    let (body, target) = match rule.audit {
        Audit::Change(_, Some(template)) if !method.is_safe() => {
            if template_uses_form(template, rule.path) {
                match axum::body::to_bytes(body, FORM_BYTES).await {
                    Ok(bytes) => {
                        let target = fill(template, rule.path, parts.uri.path(), &bytes);
                        (Body::from(bytes), target)
                    }
                    Err(_) => {
                        return ApiError::PayloadTooLarge(FORM_BYTES).into_response();
                    }
                }
            } else {
                let target = fill(template, rule.path, parts.uri.path(), &[]);
                (body, target)
            }
        }
        _ => (body, None),
    };
    parts.extensions.insert(who.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    let mut response = audit_after(&state, &who, rule, target, response).await;
    if clear {
        response.headers_mut().append(
            header::SET_COOKIE,
            clear_cookie(state.auth.settings().secure_cookie),
        );
    }
    response
}

/// Most bytes of a server function's form read to name the audit target.
const FORM_BYTES: usize = 64 * 1024;

fn undeclared(path: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({
            "error": "undeclared_route",
            "message": format!("{path} has no access rule; this is a bug in Baton: every route declares the role it needs in src/server/http/access/rules.rs"),
        })),
    )
        .into_response()
}

/// Answers `refusal` and records it.
async fn refuse(
    state: &AppState,
    who: &Who,
    rule: &Rule,
    parts: &axum::http::request::Parts,
    refusal: ApiError,
) -> Response {
    let (status, _) = refusal.status_and_code();
    let target = match rule.audit {
        Audit::Change(_, Some(template)) if !template_uses_form(template, rule.path) => {
            fill(template, rule.path, parts.uri.path(), &[])
        }
        _ => None,
    };
    record_refusal(
        state,
        who,
        &action_of(rule, &parts.method, parts.uri.path()),
        target,
        status,
        &refusal.to_string(),
    )
    .await;
    refusal.into_response()
}

/// The audit action of a request under `rule`.
fn action_of(rule: &Rule, method: &Method, path: &str) -> String {
    match rule.audit {
        Audit::Change(action, _) => action.to_string(),
        // A refused read, or a refusal before a service that records its own rows.
        _ => format!("{method} {}", path.chars().take(200).collect::<String>()),
    }
}

async fn record_refusal(
    state: &AppState,
    who: &Who,
    action: &str,
    target: Option<String>,
    status: StatusCode,
    reason: &str,
) {
    // A flood of refused requests from one address makes one row a second, not one each.
    let key = who.address.clone().unwrap_or_default();
    if state.refusals.check(&key, "refusals").is_err() {
        tracing::warn!(address = %key, action, "refused (not recorded: too many refusals from this address)");
        return;
    }
    let mut row = who.audit(action, target);
    row.outcome = "refused";
    row.status = Some(status.as_u16());
    row.reason = Some(reason.to_string());
    state.auth.record(row).await;
}

/// After the handler: a change is recorded (done or failed, with what it made), a refusal from
/// inside (429, a webhook's 401) as refused.
async fn audit_after(
    state: &AppState,
    who: &Who,
    rule: &Rule,
    target: Option<String>,
    response: Response,
) -> Response {
    let status = response.status();
    let refused = matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::MISDIRECTED_REQUEST
            | StatusCode::TOO_MANY_REQUESTS
    );
    let action = match rule.audit {
        Audit::Change(action, _) => action,
        // Reads are not recorded; services that record their own rows did so.
        Audit::Read | Audit::Own if !refused => return response,
        Audit::Own => return response,
        Audit::Read => "read",
    };
    let (parts, body) = response.into_parts();
    // A handler that proved who asked (a webhook's signature) says so on its answer.
    let who = match parts.extensions.get::<Who>() {
        Some(proven) => &Who {
            principal: proven.principal.clone(),
            ..who.clone()
        },
        None => who,
    };
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let action = if action == "read" {
        "read".to_string()
    } else {
        action.to_string()
    };
    if refused {
        let reason = json
            .as_ref()
            .and_then(|j| j.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        record_refusal(state, who, &action, target, status, &reason).await;
    } else {
        let mut row = who.audit(&action, target);
        row.status = Some(status.as_u16());
        if status.is_success() {
            row.detail = json.as_ref().and_then(made);
        } else {
            row.outcome = "failed";
            row.reason = json
                .as_ref()
                .and_then(|j| j.get("message")?.as_str().map(str::to_string))
                .or_else(|| Some(status.to_string()));
        }
        state.auth.record(row).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// What a change made, from its answer: the ids it names.
fn made(answer: &serde_json::Value) -> Option<String> {
    let mut out = serde_json::Map::new();
    for key in ["job_id", "session_id", "retry_of", "id", "deduplicated"] {
        if let Some(value) = answer.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(jobs) = answer.get("jobs").and_then(|j| j.as_array()) {
        let ids: Vec<_> = jobs
            .iter()
            .filter_map(|j| j.get("job_id").cloned())
            .collect();
        out.insert("jobs".into(), serde_json::Value::Array(ids));
    }
    (!out.is_empty()).then(|| serde_json::Value::Object(out).to_string())
}

/// Whether `template` names something that is not a path parameter (a form field).
fn template_uses_form(template: &str, path: &str) -> bool {
    placeholders(template).any(|p| !path.contains(&format!("{{{p}}}")))
}

fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// `template` with each `{name}` replaced by the path parameter of that name or, failing that,
/// the form field; `None` when one has no value.
fn fill(template: &str, pattern: &str, path: &str, form: &[u8]) -> Option<String> {
    let mut values: HashMap<String, String> = pattern
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(p, v)| {
            let name = p.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_string(), percent_decode(v)))
        })
        .collect();
    for (k, v) in url::form_urlencoded::parse(form) {
        values
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    let mut out = template.to_string();
    for name in placeholders(template) {
        let value = values.get(name)?;
        let value: String = value
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect();
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    Some(out)
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("v={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_the_path_or_the_form() {
        assert_eq!(
            fill(
                "job:{id}",
                "/api/jobs/{id}/cancel",
                "/api/jobs/abc/cancel",
                &[]
            ),
            Some("job:abc".into())
        );
        assert_eq!(
            fill(
                "session:{session_id} step:{step}",
                "/api/fn/press_gate",
                "/api/fn/press_gate",
                b"session_id=s1&step=2"
            ),
            Some("session:s1 step:2".into())
        );
        assert_eq!(
            fill("job:{id}", "/api/fn/cancel_job", "/api/fn/cancel_job", b""),
            None
        );
        assert!(template_uses_form("job:{id}", "/api/fn/cancel_job"));
        assert!(!template_uses_form("job:{id}", "/api/jobs/{id}/cancel"));
    }

    #[test]
    fn every_rule_is_unique_and_changes_are_never_public() {
        let mut seen = std::collections::HashSet::new();
        for rule in RULES {
            assert!(
                seen.insert((rule.method, rule.path)),
                "{} {} twice",
                rule.method,
                rule.path
            );
            if matches!(rule.audit, Audit::Change(..)) {
                assert_ne!(rule.access, Access::Public, "{} {}", rule.method, rule.path);
            }
        }
    }

    #[test]
    fn the_cookie_needs_an_origin_of_this_site_and_a_bearer_token_does_not() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(not_same_origin(&headers, None).is_some(), "no Origin");
        assert!(cross_site(&headers, None).is_none(), "no browser headers");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(not_same_origin(&headers, None).is_none());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(not_same_origin(&headers, None).is_some());
        assert!(cross_site(&headers, None).is_some());
        headers.insert(header::ORIGIN, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(not_same_origin(&headers, None).is_some(), "no scheme");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://baton.example.com"),
        );
        assert!(not_same_origin(&headers, Some("https://baton.example.com")).is_none());
        let mut marked = HeaderMap::new();
        marked.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(
            not_same_origin(&marked, None).is_some(),
            "a sibling site is not this one"
        );
        marked.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&marked, None).is_some());
    }
}

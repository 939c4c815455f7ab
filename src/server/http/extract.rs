//! Reading requests: optional JSON bodies (malformed 400, wrong shape 422), `limit`s, ids in
//! paths and `triggered_by`, each refused with a message that says what would be right.

use axum::{
    body::Bytes,
    http::{header, HeaderMap},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// Parses an optional JSON body: empty means `T::default()`; malformed JSON is a 400; JSON of
/// the wrong shape (an unknown or mistyped field) is a 422.
pub fn json_body<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        if !kind.starts_with("application/json") {
            return Err(ApiError::BadRequest(format!(
                "the body must be JSON sent with Content-Type: application/json, not `{kind}`"
            )));
        }
    }
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => {
            ApiError::Unprocessable(format!("the body does not fit this endpoint: {err}"))
        }
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {err}")),
    })
}

pub fn triggered_by(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.chars().count() > 200 => Err(ApiError::Unprocessable(
            "`triggered_by` is longer than 200 characters".into(),
        )),
        // NUL cannot be stored in Postgres, and control or invisible characters have no business
        // in a name shown on every page.
        Some(v) if crate::model::text::first_hidden(&v).is_some() => {
            Err(ApiError::Unprocessable(hidden_message("triggered_by", &v)))
        }
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// What is wrong with a name that holds a hidden character.
fn hidden_message(name: &str, value: &str) -> String {
    let c = crate::model::text::first_hidden(value).unwrap_or('\0');
    format!(
        "`{name}` must not contain control characters (such as NUL, a line break or an escape) \
         or invisible formatting characters; it has {}",
        crate::model::text::code_point(c)
    )
}

/// A search or filter parameter: trimmed, empty meaning none; one with a control or invisible
/// character is a 400 (no stored name holds one, and Postgres cannot even compare a NUL).
pub fn filter(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        Some(v) if crate::model::text::first_hidden(&v).is_some() => {
            Err(ApiError::BadRequest(hidden_message(name, &v)))
        }
        other => Ok(other),
    }
}

/// Reads `limit` from 1 to `max` (default `default`).
pub fn limit(raw: Option<String>, default: u32, max: u32) -> Result<u32, ApiError> {
    match raw.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "`limit` must be a whole number from 1 to {max}; got `{raw}`"
            ))),
        },
    }
}

pub fn job_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{raw}` is not a job id; job ids are UUIDs such as 01938f6e-8a4b-7cc0-9f1e-2b3c4d5e6f70"
        ))
    })
}

pub fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{raw}` is not a session id; session ids are UUIDs as POST /api/sessions returns them"
        ))
    })
}

pub fn step_number(raw: &str) -> Result<u32, ApiError> {
    match raw.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "`{raw}` is not a step number; steps count from 1"
        ))),
    }
}

/// The client's address as the listener saw it, when there is one (tests that call the router
/// directly have none).
pub type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// The caller's name for limits: its address, without the port.
pub fn caller(peer: &Peer) -> String {
    match peer {
        Some(axum::Extension(axum::extract::ConnectInfo(addr))) => match addr.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            // One IPv6 host holds a whole /64 and may pick any address in it.
            std::net::IpAddr::V6(ip) => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "an unknown client".into(),
    }
}

/// Who made the request, as the access layer (`access/`) found them; a handler turns it into
/// the `triggered_by` of what it starts, so that is never text from the body.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub crate::server::auth::Who);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts
                .extensions
                .get::<crate::server::auth::Who>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

impl Caller {
    /// The origin of what this caller starts: a person (with the session cookie) asks
    /// manually, a program (with a token) through the API; `note` is what the body said.
    pub fn origin(&self, note: Option<String>) -> crate::server::engine::Origin {
        let person = self
            .0
            .principal
            .as_ref()
            .is_some_and(|p| p.session.is_some());
        crate::server::engine::Origin {
            source: if person {
                crate::model::JobSource::Manual
            } else {
                crate::model::JobSource::Api
            },
            triggered_by: Some(self.0.actor().label()),
            note,
            session_id: None,
        }
    }

    /// The caller's name for rate limits: who they are, or their address when unknown.
    pub fn limit_key(&self, peer: &Peer) -> String {
        match &self.0.principal {
            Some(p) => p.actor.label(),
            None => caller(peer),
        }
    }
}

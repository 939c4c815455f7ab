//! The error every JSON route answers with: `{"error": code, "message": text}` and a status code.
//!
//! Internal causes are logged with the request's span and replaced by a generic message, so a
//! database error never shows a client a table name or a connection string.

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::server::{engine::EngineError, store::StoreError};

/// A failed API call, one variant per status code the API uses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (a query parameter, a header, a body).
    #[error("{0}")]
    BadRequest(String),
    /// 401: nobody known made the request (no session, no token, or one that is not valid),
    /// or a sign-in failed.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the request may not do this (a role too low, a cross-site request).
    #[error("{0}")]
    Forbidden(String),
    /// 421: the request names a host this server does not answer to (DNS rebinding).
    #[error("{0}")]
    Misdirected(String),
    /// 404: nothing at this path or with this id.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the thing is not in a state that allows this (cancel a finished job, retry a
    /// running one).
    #[error("{0}")]
    Conflict(String),
    /// 409: the workflow has a session open already; the answer names it.
    #[error("{message}")]
    SessionOpen {
        /// What is wrong.
        message: String,
        /// The open session.
        session_id: String,
    },
    /// 422: the request is well-formed but its content cannot be used (a missing field, a
    /// record without an id).
    #[error("{0}")]
    Unprocessable(String),
    /// 422 with each field that cannot be used and why (`fields` in the body).
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<(String, String)>),
    /// 408: the request took longer than `request_timeout`.
    #[error("the request took longer than {0:?} and was stopped")]
    Timeout(std::time::Duration),
    /// 413: the body is larger than `body_limit`.
    #[error("the request body is larger than the {0} bytes this server accepts")]
    PayloadTooLarge(usize),
    /// 429: the caller sent more than its limit; it may try again after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        /// What was too much, and when to try again.
        message: String,
        /// When it may try again.
        retry_after: std::time::Duration,
    },
    /// 503: a dependency (the database) is not reachable, or the server is stopping.
    #[error("{message}")]
    Unavailable {
        /// Machine-readable reason, e.g. `database_unavailable`.
        code: &'static str,
        /// What a person can do about it.
        message: String,
    },
    /// 500: a bug or an unexpected database failure; details go to the log only.
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl From<crate::server::limit::Limited> for ApiError {
    fn from(limited: crate::server::limit::Limited) -> Self {
        ApiError::TooManyRequests {
            message: limited.message,
            retry_after: limited.retry_after,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code.
    pub error: &'static str,
    /// A sentence a person can act on.
    pub message: String,
    /// The session in the way, for `session_open`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Each field that cannot be used, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl ApiError {
    /// The status code and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Misdirected(_) => (StatusCode::MISDIRECTED_REQUEST, "misdirected"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::SessionOpen { .. } => (StatusCode::CONFLICT, "session_open"),
            ApiError::Unprocessable(_) | ApiError::InvalidFields(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                "something went wrong on the server; the details are in its log".to_string()
            }
            other => other.to_string(),
        };
        let session_id = match &self {
            ApiError::SessionOpen { session_id, .. } => Some(session_id.clone()),
            _ => None,
        };
        let fields = match &self {
            ApiError::InvalidFields(fields) => Some(fields.iter().cloned().collect()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                message,
                session_id,
                fields,
            }),
        )
            .into_response();
        let retry_after = match (&self, status) {
            (ApiError::TooManyRequests { retry_after, .. }, _) => {
                Some(retry_after.as_secs().max(1))
            }
            (_, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::UnknownType { .. } | EngineError::NotFound(_) => {
                ApiError::NotFound(err.to_string())
            }
            EngineError::Conflict(message) => ApiError::Conflict(message),
            EngineError::Invalid(message) => ApiError::Unprocessable(message),
            EngineError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<crate::server::auth::AuthError> for ApiError {
    fn from(err: crate::server::auth::AuthError) -> Self {
        use crate::server::auth::AuthError;
        match err {
            AuthError::BadCredentials => ApiError::Unauthorized(err.to_string()),
            AuthError::Limited(limited) => limited.into(),
            AuthError::Invalid(message) => ApiError::Unprocessable(message),
            AuthError::Exists(message) | AuthError::LastAdmin(message) => {
                ApiError::Conflict(message)
            }
            AuthError::NotFound(message) => ApiError::NotFound(message),
            AuthError::Forbidden(message) => ApiError::Forbidden(message),
            AuthError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<crate::server::orders::OrderError> for ApiError {
    fn from(err: crate::server::orders::OrderError) -> Self {
        use crate::server::orders::OrderError;
        match err {
            OrderError::Invalid(fields) => ApiError::InvalidFields(fields),
            OrderError::NotFound(_) => ApiError::NotFound(err.to_string()),
            OrderError::Exported(_) => ApiError::Conflict(err.to_string()),
            OrderError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<crate::server::workflows::WorkflowError> for ApiError {
    fn from(err: crate::server::workflows::WorkflowError) -> Self {
        use crate::server::workflows::{status::StatusError, WorkflowError};
        match err {
            WorkflowError::UnknownWorkflow { .. } => ApiError::Unprocessable(err.to_string()),
            WorkflowError::NotFound(_) | WorkflowError::Status(StatusError::NotFound(_)) => {
                ApiError::NotFound(err.to_string())
            }
            WorkflowError::Conflict(message) => ApiError::Conflict(message),
            WorkflowError::StepGone { .. } => ApiError::Conflict(err.to_string()),
            WorkflowError::AlreadyOpen { session, .. } => ApiError::SessionOpen {
                message: err.to_string(),
                session_id: session.to_string(),
            },
            WorkflowError::Status(StatusError::Busy(_)) => ApiError::Conflict(err.to_string()),
            WorkflowError::Engine(engine) => engine.into(),
            WorkflowError::Status(StatusError::Store(cause)) | WorkflowError::Store(cause) => {
                ApiError::Internal(cause)
            }
        }
    }
}

//! The error every server function answers with: the same classification as the JSON API's
//! `ApiError` (one variant per kind of refusal), so a page branches on the kind and shows the
//! message, and never matches on message text.

use leptos::{prelude::*, server_fn::codec::JsonEncoding};
use serde::{Deserialize, Serialize};

/// Why a server function did nothing. The message is for a person; the variant is for code. On
/// the wire it is the JSON API's error shape, `{"error": "not_found", "message": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum UiError {
    /// The request is malformed (an id that is not one, say).
    #[error("{0}")]
    BadRequest(String),
    /// Nobody known asked (not signed in, or the session ended), or a sign-in failed.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// There is no such thing (job, session, workflow, sync type).
    #[error("{0}")]
    NotFound(String),
    /// The thing is not in a state that allows this (cancel a finished job).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but the content cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Too many attempts; try again later (the message says when).
    #[error("{0}")]
    TooManyRequests(String),
    /// The server cannot do it now (the database is unreachable, it is stopping).
    #[error("{0}")]
    Unavailable(String),
    /// Something failed on the server; the details are in its log, never here.
    #[error("{0}")]
    Internal(String),
    /// The call itself failed: the server was unreachable, or its answer could not be read.
    #[error("the server could not be reached or its answer could not be read: {0}")]
    Transport(String),
}

impl FromServerFnError for UiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments that do not parse are the caller's mistake, as in the JSON API.
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                UiError::BadRequest(message)
            }
            // On the server the only thing deserialized is the request: a body that is not the
            // function's JSON is the caller's mistake too (in the browser it is the answer).
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(message) => {
                UiError::BadRequest(format!("the request's arguments cannot be read: {message}"))
            }
            other => UiError::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::UiError;
    use crate::server::{
        auth::AuthError, engine::EngineError, http::error::ApiError, workflows::WorkflowError,
    };

    impl From<ApiError> for UiError {
        /// The API's classification (the router gives the server function's answer the API's
        /// status code from it).
        fn from(err: ApiError) -> Self {
            let message = err.to_string();
            match err {
                ApiError::BadRequest(_) | ApiError::MethodNotAllowed(_) => {
                    UiError::BadRequest(message)
                }
                ApiError::Unauthorized(_) => UiError::Unauthorized(message),
                ApiError::Forbidden(_) | ApiError::Misdirected(_) => UiError::Forbidden(message),
                ApiError::NotFound(_) => UiError::NotFound(message),
                ApiError::Conflict(_) | ApiError::SessionOpen { .. } => UiError::Conflict(message),
                ApiError::Unprocessable(_)
                | ApiError::InvalidFields(_)
                | ApiError::PayloadTooLarge(_) => UiError::Invalid(message),
                ApiError::TooManyRequests { .. } => UiError::TooManyRequests(message),
                ApiError::Timeout(_) | ApiError::Unavailable { .. } => {
                    UiError::Unavailable(message)
                }
                ApiError::Internal(cause) => {
                    tracing::error!(error = %cause, "server function failed");
                    UiError::Internal(
                        "something went wrong on the server; the details are in its log".into(),
                    )
                }
            }
        }
    }

    impl From<EngineError> for UiError {
        fn from(err: EngineError) -> Self {
            ApiError::from(err).into()
        }
    }

    impl From<crate::server::orders::OrderError> for UiError {
        fn from(err: crate::server::orders::OrderError) -> Self {
            ApiError::from(err).into()
        }
    }

    impl From<AuthError> for UiError {
        fn from(err: AuthError) -> Self {
            ApiError::from(err).into()
        }
    }

    impl From<WorkflowError> for UiError {
        fn from(err: WorkflowError) -> Self {
            ApiError::from(err).into()
        }
    }
}

//! Server functions for people and tokens: signing in and out (`POST /api/auth/login` and
//! `/api/auth/logout`, JSON in and out, for the sign-in page and for scripts alike), the
//! first-start setup, changing one's password, who is signed in, and the admin page's users,
//! tokens and audit log. Each is a thin call into `server::auth::Auth`; who may call which is
//! declared in `server/http/access/rules.rs`.

use leptos::{prelude::*, server_fn::codec::Json};

use super::UiError;
use crate::model::{AuditPage, Me, NewToken, Role, TokenView, UserView};

#[cfg(feature = "ssr")]
mod ssr {
    use super::UiError;
    use crate::{model::Role, server::http::access};

    /// The new session's cookie on this answer.
    pub fn set_session_cookie(token: &str) -> Result<(), UiError> {
        let state = crate::api::server::state()?;
        let settings = state.auth.settings();
        let response = leptos::prelude::expect_context::<leptos_axum::ResponseOptions>();
        response.append_header(
            axum::http::header::SET_COOKIE,
            access::session_cookie(token, settings.session_max, settings.secure_cookie),
        );
        Ok(())
    }

    /// A role named in a form.
    pub fn role(name: &str) -> Result<Role, UiError> {
        Role::parse(name).ok_or_else(|| {
            UiError::Invalid(format!(
                "`{name}` is not a role; the roles are viewer, staff and admin"
            ))
        })
    }

    /// 429 with `Retry-After` for a sign-in past its limit.
    pub fn limited(err: crate::server::auth::AuthError) -> UiError {
        if let crate::server::auth::AuthError::Limited(limited) = &err {
            let response = leptos::prelude::expect_context::<leptos_axum::ResponseOptions>();
            response.insert_header(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(limited.retry_after.as_secs().max(1)),
            );
        }
        UiError::from(err)
    }
}

/// Signs in: `{"username", "password"}` → the user (and the session cookie). A wrong name or
/// password is 401; too many failures for the name or from the address, 429 with `Retry-After`.
#[server(prefix = "/api/auth", endpoint = "login", input = Json)]
pub async fn login(username: String, password: String) -> Result<Me, UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    let (token, me) = state
        .auth
        .login(&username, &password, &who)
        .await
        .map_err(ssr::limited)?;
    ssr::set_session_cookie(&token)?;
    Ok(me)
}

/// Signs out: ends the session of this browser's cookie, and clears the cookie.
#[server(prefix = "/api/auth", endpoint = "logout", input = Json)]
pub async fn logout() -> Result<(), UiError> {
    use crate::server::auth::COOKIE;
    let state = super::server::state()?;
    let who = super::server::who();
    let parts = use_context::<axum::http::request::Parts>();
    let token = parts.as_ref().and_then(|p| {
        p.headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.trim().to_string())
    });
    if let Some(token) = token {
        state
            .auth
            .logout(&token, &who)
            .await
            .map_err(|e| UiError::from(crate::server::http::error::ApiError::Internal(e)))?;
    }
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.append_header(
        axum::http::header::SET_COOKIE,
        crate::server::http::access::clear_cookie(state.auth.settings().secure_cookie),
    );
    Ok(())
}

/// Creates the first admin with the setup link's token, and signs them in.
#[server(prefix = "/api/auth", endpoint = "setup", input = Json)]
pub async fn setup(token: String, username: String, password: String) -> Result<Me, UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    let (session, me) = state
        .auth
        .setup_admin(&token, &username, &password, &who)
        .await
        .map_err(UiError::from)?;
    ssr::set_session_cookie(&session)?;
    Ok(me)
}

/// Changes the signed-in person's password (their other sessions end).
#[server(prefix = "/api/auth", endpoint = "password", input = Json)]
pub async fn change_password(current: String, new: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    state
        .auth
        .change_own_password(&current, &new, &who)
        .await
        .map_err(UiError::from)
}

/// Who this browser is signed in as, if anyone.
#[server(prefix = "/api/fn", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Me>, UiError> {
    let who = super::server::who();
    Ok(who.principal.map(|p| Me {
        name: p.actor.label(),
        role: p.role,
    }))
}

/// Every user.
#[server(prefix = "/api/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserView>, UiError> {
    let state = super::server::state()?;
    state
        .auth
        .users()
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// Adds a user.
#[server(prefix = "/api/fn", endpoint = "add_user")]
pub async fn add_user(name: String, role: String, password: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    let role = ssr::role(&role)?;
    state
        .auth
        .add_user(&name, role, &password, &who)
        .await
        .map_err(UiError::from)
}

/// Changes a user's role (their sessions end).
#[server(prefix = "/api/fn", endpoint = "set_user_role")]
pub async fn set_user_role(name: String, role: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    let role = ssr::role(&role)?;
    state
        .auth
        .set_role(&name, role, &who)
        .await
        .map_err(UiError::from)
}

/// Sets a user's password (their sessions end).
#[server(prefix = "/api/fn", endpoint = "set_user_password")]
pub async fn set_user_password(name: String, password: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    state
        .auth
        .set_password(&name, &password, &who)
        .await
        .map_err(UiError::from)
}

/// Removes a user.
#[server(prefix = "/api/fn", endpoint = "remove_user")]
pub async fn remove_user(name: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    state
        .auth
        .remove_user(&name, &who)
        .await
        .map_err(UiError::from)
}

/// Every API token (never their secrets).
#[server(prefix = "/api/fn", endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenView>, UiError> {
    let state = super::server::state()?;
    state
        .auth
        .tokens()
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// Creates an API token; the answer holds its secret, shown this once.
#[server(prefix = "/api/fn", endpoint = "create_token")]
pub async fn create_token(name: String, role: String) -> Result<NewToken, UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    let role = ssr::role(&role)?;
    state
        .auth
        .create_token(&name, role, &who)
        .await
        .map_err(UiError::from)
}

/// Revokes an API token.
#[server(prefix = "/api/fn", endpoint = "revoke_token")]
pub async fn revoke_token(name: String) -> Result<(), UiError> {
    let state = super::server::state()?;
    let who = super::server::who();
    state
        .auth
        .revoke_token(&name, &who)
        .await
        .map_err(UiError::from)
}

/// A page of the audit log, newest first; empty filters mean "any"; `before` (0: none) pages
/// back.
#[server(prefix = "/api/fn", endpoint = "audit_log")]
pub async fn audit_log(
    actor: String,
    action: String,
    target: String,
    before: i64,
    limit: u32,
) -> Result<AuditPage, UiError> {
    use crate::server::store::AuditFilter;
    let state = super::server::state()?;
    let text = |name: &str, value: String| {
        crate::server::http::extract::filter(name, Some(value)).map_err(UiError::from)
    };
    let filter = AuditFilter {
        actor: text("actor", actor)?,
        action: text("action", action)?,
        target: text("target", target)?,
        before: (before > 0).then_some(before),
        limit: limit.clamp(1, 500),
        ..AuditFilter::default()
    };
    state
        .auth
        .audit_page(&filter)
        .await
        .map_err(|e| crate::server::http::error::ApiError::Internal(e).into())
}

/// The roles, for the admin page's pickers.
pub fn roles() -> [Role; 3] {
    Role::ALL
}

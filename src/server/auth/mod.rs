//! People and machines: who may do what. Users sign in with a password (argon2) and get a
//! session (a random token in an `HttpOnly` cookie, its SHA-256 in the database, with an idle
//! and an absolute end); programs send an API token (`Authorization: Bearer …`, stored hashed,
//! revoked in place); webhooks sign their bodies ([`hooks`]). Every change this service makes
//! (a sign-in, a user, a token) appends a row to the audit log, as the HTTP layer does for every
//! other change and for every refusal.
//!
//! The first start has no users: the process makes a one-time setup link (a random token, kept
//! in memory) that creates the first admin, and prints it to the terminal and the log.

pub mod failures;
pub mod hooks;
pub mod secret;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;

use self::failures::{Failures, PER_ADDRESS, PER_USER};
use super::{
    limit::Limited,
    store::{AuditFilter, NewAudit, NewAuthSession, Store, StoreError, TokenRow},
};
use crate::model::{AuditPage, Me, NewToken, Role, TokenView, UserView};

/// How sessions and cookies behave.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// A session unused this long has ended.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_max: Duration,
    /// The cookie is `Secure` (sent over HTTPS only): when `public_url` is https.
    pub secure_cookie: bool,
    /// Audit rows older than this are deleted.
    pub audit_keep: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(7 * 24 * 3600),
            secure_cookie: false,
            audit_keep: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Which hosts and origin Baton answers to.
#[derive(Clone, Debug, Default)]
pub struct Perimeter {
    /// Accepted `Host` values, lower-case (`host:port`, and bare hosts of `public_url`).
    pub hosts: Vec<String>,
    /// `public_url`'s origin, accepted as `Origin` whatever the `Host` a proxy sends.
    pub public_origin: Option<String>,
}

impl Perimeter {
    /// Whether `host` (a `Host` header) is one Baton answers to.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }
}

/// The cookie that carries a signed-in session.
pub const COOKIE: &str = "baton_session";

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person.
    User(String),
    /// A program with an API token.
    Token(String),
    /// A signed webhook.
    Hook(String),
    /// Baton itself (the scheduler, the CLI on the server's machine).
    System(String),
    /// Nobody known.
    Anonymous,
}

impl Actor {
    /// As jobs' `triggered_by` and the audit log name it: `anna`, `token:nightly`, `hook:shop`,
    /// `system`, `system:cli`, `anonymous`.
    pub fn label(&self) -> String {
        match self {
            Actor::User(name) => name.clone(),
            Actor::Token(name) => format!("token:{name}"),
            Actor::Hook(name) => format!("hook:{name}"),
            Actor::System(what) if what.is_empty() => "system".into(),
            Actor::System(what) => format!("system:{what}"),
            Actor::Anonymous => "anonymous".into(),
        }
    }

    /// The audit log's `actor_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Token(_) => "token",
            Actor::Hook(_) => "hook",
            Actor::System(_) => "system",
            Actor::Anonymous => "anonymous",
        }
    }
}

/// Someone known, and what they may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// What they may do.
    pub role: Role,
    /// The hash of the session token, when they came with the session cookie (a cookie makes a
    /// request need a same-origin proof; a bearer token does not).
    pub session: Option<String>,
}

/// Who is asking, and from where: what the audit log records.
#[derive(Clone, Debug, Default)]
pub struct Who {
    /// Known, or `None` for an anonymous caller.
    pub principal: Option<Principal>,
    /// The client's address.
    pub address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

impl Who {
    /// Baton itself doing `what` (`cli`, `scheduler`), with every right.
    pub fn system(what: &str) -> Self {
        Self {
            principal: Some(Principal {
                actor: Actor::System(what.into()),
                role: Role::Admin,
                session: None,
            }),
            address: None,
            user_agent: None,
        }
    }

    /// The actor, `Anonymous` when unknown.
    pub fn actor(&self) -> Actor {
        self.principal
            .as_ref()
            .map_or(Actor::Anonymous, |p| p.actor.clone())
    }

    /// The role, when known.
    pub fn role(&self) -> Option<Role> {
        self.principal.as_ref().map(|p| p.role)
    }

    /// An audit row of this caller doing `action` to `target`.
    pub fn audit(&self, action: &str, target: Option<String>) -> NewAudit {
        let actor = self.actor();
        NewAudit {
            actor: actor.label(),
            actor_kind: actor.kind(),
            role: self.role(),
            address: self.address.clone(),
            user_agent: self.user_agent.clone(),
            action: action.into(),
            target,
            outcome: "done",
            ..NewAudit::default()
        }
    }
}

/// Why something about people or tokens could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong name or password (which of the two is not said).
    #[error("the user name or the password is wrong")]
    BadCredentials,
    /// Too many failed sign-ins.
    #[error("{}", .0.message)]
    Limited(Limited),
    /// A name, role or password that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken.
    #[error("{0}")]
    Exists(String),
    /// No such user or token.
    #[error("{0}")]
    NotFound(String),
    /// Would leave Baton without an admin.
    #[error("{0}")]
    LastAdmin(String),
    /// The setup link is not (or no longer) valid.
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The people-and-tokens service; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: AuthSettings,
    failures: Failures,
    /// The hash of the first-start setup token, while there are no users.
    setup: Mutex<Option<String>>,
}

/// Longest password taken (argon2 hashes anything, but a sign-in should not hash megabytes).
const MAX_PASSWORD: usize = 256;
/// Shortest password taken.
pub const MIN_PASSWORD: usize = 8;

/// A user or token name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`; names are unique
/// ignoring case.
pub fn valid_name(what: &str, name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        return Err(AuthError::Invalid(format!(
            "a {what} name is 1 to 64 letters, digits, `.`, `_`, `-` or `@`; `{}` is not",
            name.chars().take(80).collect::<String>()
        )));
    }
    if ["system", "anonymous"].contains(&name.to_lowercase().as_str()) {
        return Err(AuthError::Invalid(format!(
            "`{name}` is reserved for Baton itself; choose another {what} name"
        )));
    }
    Ok(name.to_string())
}

fn valid_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.trim().is_empty() {
        return Err(AuthError::Invalid(format!(
            "a password has at least {MIN_PASSWORD} characters"
        )));
    }
    if n > MAX_PASSWORD {
        return Err(AuthError::Invalid(format!(
            "a password has at most {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

fn role_of(stored: &str) -> Role {
    // The check constraint admits nothing else; an unknown value gets the least.
    Role::parse(stored).unwrap_or(Role::Viewer)
}

fn token_view(row: TokenRow) -> TokenView {
    TokenView {
        role: role_of(&row.role),
        name: row.name,
        created_at: row.created_at,
        created_by: row.created_by,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    }
}

/// How often a session's or token's last use is written (not on every request: SQLite has one
/// writer).
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Auth {
    /// The service over `store`.
    pub fn new(store: Store, settings: AuthSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                failures: Failures::default(),
                setup: Mutex::new(None),
            }),
        }
    }

    /// How sessions behave.
    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    /// Appends `row` to the audit log; a failure is logged (the action itself has happened).
    pub async fn record(&self, row: NewAudit) {
        let action = row.action.clone();
        if let Err(err) = self.inner.store.append_audit(row).await {
            tracing::error!(error = %err, action, "could not append to the audit log");
        }
    }

    async fn record_refusal(&self, who: &Who, action: &str, target: Option<String>, why: &str) {
        let mut row = who.audit(action, target);
        row.outcome = "refused";
        row.reason = Some(why.to_string());
        self.record(row).await;
    }

    // ---- first start -------------------------------------------------------------------

    /// With no users yet: a new one-time setup token (its hash kept in memory), else `None`.
    pub async fn begin_setup(&self) -> Result<Option<String>, StoreError> {
        let (users, _) = self.inner.store.count_users().await?;
        if users > 0 {
            return Ok(None);
        }
        let token = secret::random_token("", 24);
        *self.inner.setup.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(secret::token_hash(&token));
        Ok(Some(token))
    }

    /// Whether this process still waits for its setup link to be used.
    pub fn setup_open(&self) -> bool {
        self.inner
            .setup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Creates the first admin with the setup token, and signs them in.
    pub async fn setup_admin(
        &self,
        token: &str,
        name: &str,
        password: &str,
        who: &Who,
    ) -> Result<(String, Me), AuthError> {
        let expected = self
            .inner
            .setup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if expected.as_deref() != Some(secret::token_hash(token.trim()).as_str()) {
            let why = "the setup link is not valid: it works once, on a fresh Baton, with the \
                       token this process printed when it started";
            self.record_refusal(who, "auth.setup", None, why).await;
            return Err(AuthError::Forbidden(why.into()));
        }
        let name = valid_name("user", name)?;
        valid_password(password)?;
        let hash = secret::hash_password(password.to_string()).await;
        if !self
            .inner
            .store
            .insert_first_user(&name, Role::Admin.as_str(), &hash)
            .await?
        {
            *self.inner.setup.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Err(AuthError::Forbidden(
                "Baton has users already; sign in, or ask an admin for an account".into(),
            ));
        }
        *self.inner.setup.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.record(who.audit("auth.setup", Some(format!("user:{name}"))))
            .await;
        let signed_in = self.start_session(&name, who).await?;
        tracing::info!(user = %name, "the first admin was created with the setup link");
        Ok(signed_in)
    }

    // ---- signing in ---------------------------------------------------------------------

    /// Checks `name` and `password`; on success a new session token (for the cookie). Failures
    /// are counted per name and per address; past either limit the answer is `Limited`.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        who: &Who,
    ) -> Result<(String, Me), AuthError> {
        let name = name.trim();
        let target = Some(format!(
            "user:{}",
            name.chars().take(64).collect::<String>()
        ));
        let user_key = format!("user:{}", name.to_lowercase());
        let address_key = format!("address:{}", who.address.as_deref().unwrap_or("unknown"));
        for (key, limit) in [(&user_key, PER_USER), (&address_key, PER_ADDRESS)] {
            if let Some(wait) = self.inner.failures.blocked(key, limit) {
                let whose = if key.starts_with("user:") {
                    "for this user"
                } else {
                    "from this address"
                };
                let message = format!(
                    "too many failed sign-ins {whose}; try again in {} min",
                    wait.as_secs().div_ceil(60).max(1)
                );
                self.record_refusal(who, "auth.login", target.clone(), &message)
                    .await;
                return Err(AuthError::Limited(Limited {
                    message,
                    retry_after: wait.max(Duration::from_secs(1)),
                }));
            }
        }
        let user = self.inner.store.user(name).await?;
        let ok = password.chars().count() <= MAX_PASSWORD
            && secret::verify_password(
                password.to_string(),
                user.as_ref().map(|u| u.password_hash.clone()),
            )
            .await;
        let Some(user) = user.filter(|_| ok) else {
            self.inner.failures.fail(&user_key);
            self.inner.failures.fail(&address_key);
            self.record_refusal(who, "auth.login", target, "wrong user name or password")
                .await;
            return Err(AuthError::BadCredentials);
        };
        self.inner.failures.clear(&user_key);
        let signed_in = self.start_session(&user.name, who).await?;
        let mut row = who.audit("auth.login", target);
        row.actor = user.name.clone();
        row.actor_kind = "user";
        row.role = Some(role_of(&user.role));
        self.record(row).await;
        Ok(signed_in)
    }

    async fn start_session(&self, name: &str, who: &Who) -> Result<(String, Me), AuthError> {
        let user = self
            .inner
            .store
            .user(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("there is no user `{name}`")))?;
        let token = secret::random_token("", 32);
        let now = Utc::now();
        let max = chrono::TimeDelta::from_std(self.inner.settings.session_max)
            .unwrap_or(chrono::TimeDelta::days(7));
        self.inner
            .store
            .insert_auth_session(&NewAuthSession {
                token_hash: &secret::token_hash(&token),
                user_id: user.id,
                now,
                expires_at: now + max,
                address: who.address.as_deref(),
                user_agent: who.user_agent.as_deref(),
            })
            .await?;
        Ok((
            token,
            Me {
                name: user.name,
                role: role_of(&user.role),
            },
        ))
    }

    /// Ends the session of cookie token `token`.
    pub async fn logout(&self, token: &str, who: &Who) -> Result<(), StoreError> {
        self.inner
            .store
            .delete_auth_session(&secret::token_hash(token))
            .await?;
        self.record(who.audit("auth.logout", None)).await;
        Ok(())
    }

    /// The person behind cookie token `token`, if the session is known and neither idle nor
    /// past its end.
    pub async fn session(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let hash = secret::token_hash(token);
        let Some(session) = self.inner.store.auth_session(&hash).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let idle = chrono::TimeDelta::from_std(self.inner.settings.session_idle)
            .unwrap_or(chrono::TimeDelta::hours(12));
        if session.expires_at <= now || session.seen_at + idle <= now {
            self.inner.store.delete_auth_session(&hash).await?;
            return Ok(None);
        }
        if now - session.seen_at >= TOUCH_EVERY {
            self.inner.store.touch_auth_session(&hash, now).await?;
        }
        Ok(Some(Principal {
            actor: Actor::User(session.name),
            role: role_of(&session.role),
            session: Some(hash),
        }))
    }

    /// The program behind API token `token`, if it is known and not revoked.
    pub async fn bearer(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let Some(row) = self
            .inner
            .store
            .token_by_hash(&secret::token_hash(token.trim()))
            .await?
        else {
            return Ok(None);
        };
        if row.revoked_at.is_some() {
            return Ok(None);
        }
        let now = Utc::now();
        if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            self.inner.store.touch_token(&row.name, now).await?;
        }
        Ok(Some(Principal {
            actor: Actor::Token(row.name),
            role: role_of(&row.role),
            session: None,
        }))
    }

    // ---- users ------------------------------------------------------------------------------

    /// Every user.
    pub async fn users(&self) -> Result<Vec<UserView>, StoreError> {
        Ok(self
            .inner
            .store
            .users(Utc::now())
            .await?
            .into_iter()
            .map(|(u, sessions)| UserView {
                role: role_of(&u.role),
                name: u.name,
                created_at: u.created_at,
                updated_at: u.updated_at,
                sessions: sessions.max(0) as u32,
            })
            .collect())
    }

    /// Adds a user.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        who: &Who,
    ) -> Result<(), AuthError> {
        let name = valid_name("user", name)?;
        valid_password(password)?;
        let hash = secret::hash_password(password.to_string()).await;
        if !self
            .inner
            .store
            .insert_user(&name, role.as_str(), &hash)
            .await?
        {
            return Err(AuthError::Exists(format!(
                "a user named `{name}` exists already (names are unique ignoring case)"
            )));
        }
        // A user added while the setup link is open makes the link pointless.
        *self.inner.setup.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut row = who.audit("user.create", Some(format!("user:{name}")));
        row.detail = Some(format!("{{\"role\":\"{role}\"}}"));
        self.record(row).await;
        Ok(())
    }

    /// Changes a user's role and ends their sessions (they sign in again with the new role).
    pub async fn set_role(&self, name: &str, role: Role, who: &Who) -> Result<(), AuthError> {
        let user = self.existing(name).await?;
        if role_of(&user.role) == Role::Admin && role != Role::Admin {
            self.keep_an_admin(&user.name, "take the admin role from")
                .await?;
        }
        self.inner.store.set_user_role(name, role.as_str()).await?;
        let ended = self.inner.store.end_user_sessions(name, None).await?;
        let mut row = who.audit("user.role", Some(format!("user:{}", user.name)));
        row.detail = Some(format!(
            "{{\"from\":\"{}\",\"to\":\"{role}\",\"sessions_ended\":{ended}}}",
            user.role
        ));
        self.record(row).await;
        Ok(())
    }

    /// Sets a user's password and ends their other sessions (all of them, unless the change
    /// comes from one of their own, which stays).
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        who: &Who,
    ) -> Result<(), AuthError> {
        let user = self.existing(name).await?;
        valid_password(password)?;
        let hash = secret::hash_password(password.to_string()).await;
        self.inner.store.set_user_password(name, &hash).await?;
        let own = who
            .principal
            .as_ref()
            .filter(|p| p.actor == Actor::User(user.name.clone()))
            .and_then(|p| p.session.clone());
        let ended = self
            .inner
            .store
            .end_user_sessions(name, own.as_deref())
            .await?;
        let mut row = who.audit("user.password", Some(format!("user:{}", user.name)));
        row.detail = Some(format!("{{\"sessions_ended\":{ended}}}"));
        self.record(row).await;
        Ok(())
    }

    /// Changes the signed-in person's own password, checking the current one first.
    pub async fn change_own_password(
        &self,
        current: &str,
        new: &str,
        who: &Who,
    ) -> Result<(), AuthError> {
        let Some(Actor::User(name)) = who.principal.as_ref().map(|p| p.actor.clone()) else {
            return Err(AuthError::Invalid(
                "only a signed-in person has a password to change".into(),
            ));
        };
        let user = self.existing(&name).await?;
        if !secret::verify_password(current.to_string(), Some(user.password_hash)).await {
            self.record_refusal(
                who,
                "user.password",
                Some(format!("user:{name}")),
                "the current password was wrong",
            )
            .await;
            return Err(AuthError::BadCredentials);
        }
        self.set_password(&name, new, who).await
    }

    /// Removes a user (never the last admin).
    pub async fn remove_user(&self, name: &str, who: &Who) -> Result<(), AuthError> {
        let user = self.existing(name).await?;
        if role_of(&user.role) == Role::Admin {
            self.keep_an_admin(&user.name, "remove").await?;
        }
        self.inner.store.remove_user(name).await?;
        self.record(who.audit("user.remove", Some(format!("user:{}", user.name))))
            .await;
        Ok(())
    }

    async fn existing(&self, name: &str) -> Result<crate::server::store::UserRow, AuthError> {
        self.inner
            .store
            .user(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("there is no user `{}`", name.trim())))
    }

    async fn keep_an_admin(&self, name: &str, doing: &str) -> Result<(), AuthError> {
        let (_, admins) = self.inner.store.count_users().await?;
        if admins <= 1 {
            return Err(AuthError::LastAdmin(format!(
                "`{name}` is the only admin; make someone else an admin before you {doing} them"
            )));
        }
        Ok(())
    }

    // ---- tokens -----------------------------------------------------------------------------

    /// Every token, revoked ones too.
    pub async fn tokens(&self) -> Result<Vec<TokenView>, StoreError> {
        Ok(self
            .inner
            .store
            .tokens()
            .await?
            .into_iter()
            .map(token_view)
            .collect())
    }

    /// Creates a token; its secret is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        who: &Who,
    ) -> Result<NewToken, AuthError> {
        let name = valid_name("token", name)?;
        let secret = secret::random_token("baton_", 32);
        let row = self
            .inner
            .store
            .insert_token(
                &name,
                role.as_str(),
                &secret::token_hash(&secret),
                &who.actor().label(),
            )
            .await?
            .ok_or_else(|| {
                AuthError::Exists(format!(
                    "a token named `{name}` exists (revoked tokens keep their names, so the \
                     audit log stays clear); choose another name"
                ))
            })?;
        let mut audit = who.audit("token.create", Some(format!("token:{name}")));
        audit.detail = Some(format!("{{\"role\":\"{role}\"}}"));
        self.record(audit).await;
        Ok(NewToken {
            token: token_view(row),
            secret,
        })
    }

    /// Revokes a token: refused from the next request on.
    pub async fn revoke_token(&self, name: &str, who: &Who) -> Result<(), AuthError> {
        if !self.inner.store.revoke_token(name.trim()).await? {
            return Err(AuthError::NotFound(format!(
                "there is no token `{}` that is not revoked already",
                name.trim()
            )));
        }
        self.record(who.audit("token.revoke", Some(format!("token:{}", name.trim()))))
            .await;
        Ok(())
    }

    // ---- the audit log ------------------------------------------------------------------------

    /// A page of the audit log, newest first.
    pub async fn audit_page(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError> {
        let entries = self.inner.store.audit(filter).await?;
        let next_before = (entries.len() as u32 == filter.limit.clamp(1, 1000))
            .then(|| entries.last().map(|e| e.id))
            .flatten();
        Ok(AuditPage {
            entries,
            next_before,
        })
    }

    /// Deletes expired sessions, old webhook deliveries and audit rows past `audit_keep`.
    pub async fn prune(&self) -> Result<(), StoreError> {
        let now = Utc::now();
        let idle = chrono::TimeDelta::from_std(self.inner.settings.session_idle)
            .unwrap_or(chrono::TimeDelta::hours(12));
        self.inner
            .store
            .prune_auth_sessions(now, now - idle)
            .await?;
        self.inner
            .store
            .prune_deliveries(now - hooks::REPLAY_MEMORY)
            .await?;
        let keep = chrono::TimeDelta::from_std(self.inner.settings.audit_keep)
            .unwrap_or(chrono::TimeDelta::days(365));
        self.inner.store.prune_audit(now - keep).await?;
        Ok(())
    }

    /// Runs [`Auth::prune`] every `every` until `shutdown`.
    pub async fn run_retention(
        self,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            if let Err(err) = self.prune().await {
                tracing::warn!(error = %err, "could not prune sessions, deliveries or audit rows");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The store, for the webhook deliveries.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
}

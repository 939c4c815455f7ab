//! People and machines on the wire: roles, who is signed in, users, API tokens and the audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What someone may do. Each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secrets.
    Viewer,
    /// Also starts syncs and workflows, presses gates, runs, cancels and retries jobs, works in
    /// the order form.
    Staff,
    /// Also manages schedules, sync types, users, tokens, and reads the audit log.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Staff, Role::Admin];

    /// The role's name as stored and sent: `viewer`, `staff`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (any case).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the page is showing itself to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Me {
    /// The user's name.
    pub name: String,
    /// Their role.
    pub role: Role,
}

/// A user as the admin page lists it (never the password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserView {
    /// The name people sign in with.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
    /// When the password or role last changed.
    pub updated_at: DateTime<Utc>,
    /// Signed-in sessions that have not expired.
    pub sessions: u32,
}

/// An API token as listed (never the token itself, which is shown once when it is created).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenView {
    /// Its name, unique; jobs it starts are `token:<name>`.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created, and by whom.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token is refused from the next request on.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewToken {
    /// The token as listed.
    pub token: TokenView,
    /// The secret to send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its position in the log (newest is highest).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a user's name, `token:<name>`, `hook:<name>`, `system`, or `anonymous`.
    pub actor: String,
    /// `user`, `token`, `hook`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The role the actor had, when known.
    pub role: Option<Role>,
    /// The client's address.
    pub address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// What was done, e.g. `job.cancel`, `user.create`, `auth.login`.
    pub action: String,
    /// What it was done to, e.g. `job:0193…`, `session:… step:2`, `user:anna`.
    pub target: Option<String>,
    /// `done`, `refused` or `failed`.
    pub outcome: String,
    /// The HTTP status answered, when it came over HTTP.
    pub status: Option<u16>,
    /// Why it was refused or failed.
    pub reason: Option<String>,
    /// What it made (a job's id, a session's id), as JSON.
    pub detail: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The rows.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; `None` on the last.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below_them() {
        assert!(Role::Admin.allows(Role::Staff));
        assert!(Role::Staff.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Staff));
        assert!(!Role::Staff.allows(Role::Admin));
        assert_eq!(Role::parse(" Staff "), Some(Role::Staff));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
    }
}

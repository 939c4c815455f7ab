//! Which database a process uses, and how its URL may be shown.

use std::{fmt, path::PathBuf};

/// Which database the configuration points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file, created when missing.
    Sqlite(PathBuf),
    /// A Postgres server, by URL.
    Postgres(String),
}

impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseTarget::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL we can parse: show the scheme at most, never what might be a secret.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "(unparseable URL)".into(),
        },
    }
}

//! Signed webhooks: `POST /api/hooks/{name}` starts what the hook is configured to start (a sync
//! type or a workflow) when the request proves it knows the hook's secret and is fresh.
//!
//! The sender computes `HMAC-SHA256(secret, "<timestamp>.<raw body>")` (as Stripe does) and
//! sends `X-Baton-Timestamp: <unix seconds>`, `X-Baton-Delivery: <unique id>` and
//! `X-Baton-Signature: sha256=<hex>`. Baton compares the signature in constant time, refuses a
//! timestamp more than five minutes from its own clock, and refuses a delivery id, or a
//! signature, it has seen before, so a captured request cannot be sent again.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How far a delivery's timestamp may be from Baton's clock.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// How long deliveries are remembered: longer than any timestamp is accepted.
pub const REPLAY_MEMORY: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// A hook as written in `baton.toml` under `[hooks.<name>]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// The environment variable that holds the shared secret.
    pub secret_env: String,
    /// The sync type a delivery requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// The workflow a delivery starts a session of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// What a delivery starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookTarget {
    /// A sync type.
    Sync(String),
    /// A workflow.
    Workflow(String),
}

/// A hook ready to check deliveries.
#[derive(Clone)]
pub struct Hook {
    /// Its name (the path segment, and `hook:<name>` as who triggered).
    pub name: String,
    secret: String,
    /// What it starts.
    pub target: HookTarget,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Hook {
    /// Resolves `config` (its secret read with `env`); a message naming the key when it cannot.
    pub fn resolve(
        name: &str,
        config: &HookConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let target = match (&config.sync, &config.workflow) {
            (Some(sync), None) => HookTarget::Sync(sync.clone()),
            (None, Some(workflow)) => HookTarget::Workflow(workflow.clone()),
            _ => {
                return Err(format!(
                    "hooks.{name}: set exactly one of `sync` (a sync type) or `workflow`"
                ))
            }
        };
        let secret = env(&config.secret_env)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "hooks.{name}.secret_env: the environment variable `{}` is not set",
                    config.secret_env
                )
            })?;
        if secret.len() < 16 {
            return Err(format!(
                "hooks.{name}.secret_env: the secret in `{}` is shorter than 16 characters; \
                 use a long random one (e.g. `openssl rand -hex 32`)",
                config.secret_env
            ));
        }
        Ok(Self {
            name: name.to_string(),
            secret,
            target,
        })
    }

    /// Checks a delivery's headers and body at `now` (unix seconds); the signature's hex on
    /// success (remembered against replays), or why it is refused.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<String, String> {
        let timestamp = timestamp.ok_or("the X-Baton-Timestamp header is missing")?;
        let at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| "X-Baton-Timestamp is not a number of seconds since 1970")?;
        if (now - at).unsigned_abs() > TOLERANCE.as_secs() {
            return Err(format!(
                "X-Baton-Timestamp is {} s away from this server's clock (at most {} s are \
                 accepted); a delivery is sent once, when it happens",
                now - at,
                TOLERANCE.as_secs()
            ));
        }
        let signature = signature.ok_or("the X-Baton-Signature header is missing")?;
        let hex_part = signature
            .trim()
            .strip_prefix("sha256=")
            .ok_or("X-Baton-Signature must read sha256=<hex of the HMAC>")?;
        let given = hex::decode(hex_part).map_err(|_| "X-Baton-Signature is not hex")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(timestamp.trim().as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&given)
            .map_err(|_| "the signature does not match the body and timestamp".to_string())?;
        Ok(hex_part.to_ascii_lowercase())
    }

    /// The signature a sender would compute (for tests and for documentation examples).
    pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Hook {
        Hook::resolve(
            "shop",
            &HookConfig {
                secret_env: "S".into(),
                sync: Some("orders".into()),
                workflow: None,
            },
            &|_| Some("a-long-shared-secret".into()),
        )
        .unwrap()
    }

    #[test]
    fn a_good_signature_passes_and_every_change_fails() {
        let hook = hook();
        let body = br#"{"order":42}"#;
        let now = 1_800_000_000;
        let good = Hook::sign("a-long-shared-secret", now, body);
        assert!(hook
            .verify(Some(&now.to_string()), Some(&good), body, now)
            .is_ok());
        // Another body, another time, another secret, no header: refused.
        assert!(hook
            .verify(Some(&now.to_string()), Some(&good), br#"{"order":43}"#, now)
            .is_err());
        let stamped_later = (now + 1).to_string();
        assert!(hook
            .verify(Some(&stamped_later), Some(&good), body, now)
            .is_err());
        let other = Hook::sign("another-long-secret!", now, body);
        assert!(hook
            .verify(Some(&now.to_string()), Some(&other), body, now)
            .is_err());
        assert!(hook.verify(None, Some(&good), body, now).is_err());
        assert!(hook
            .verify(Some(&now.to_string()), None, body, now)
            .is_err());
        // Six minutes old: refused even with its right signature.
        let old = now - 360;
        let signed_old = Hook::sign("a-long-shared-secret", old, body);
        let err = hook
            .verify(Some(&old.to_string()), Some(&signed_old), body, now)
            .unwrap_err();
        assert!(err.contains("360 s"), "{err}");
    }

    #[test]
    fn a_hook_needs_one_target_and_a_long_secret() {
        let config = HookConfig {
            secret_env: "S".into(),
            sync: Some("orders".into()),
            workflow: Some("daily-sync".into()),
        };
        assert!(Hook::resolve("x", &config, &|_| Some("x".repeat(32)))
            .unwrap_err()
            .contains("exactly one"));
        let config = HookConfig {
            workflow: None,
            ..config
        };
        assert!(Hook::resolve("x", &config, &|_| None)
            .unwrap_err()
            .contains("`S` is not set"));
        assert!(Hook::resolve("x", &config, &|_| Some("short".into()))
            .unwrap_err()
            .contains("shorter than 16"));
    }
}

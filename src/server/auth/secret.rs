//! The secrets Baton makes and checks: random tokens from the operating system, their SHA-256
//! for storage, argon2 password hashes (computed off the async threads: each takes tens of
//! milliseconds and 19 MiB on purpose). A token is looked up by its hash, so no secret is ever
//! compared byte by byte.

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// `bytes` random bytes from the operating system, as URL-safe base64 with `prefix`.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source works");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
    )
}

/// The hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An argon2id hash of `password` (PHC string, salt included).
pub async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the operating system's random source works");
        let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashes any password of a sane length")
            .to_string()
    })
    .await
    .expect("the hashing thread does not panic")
}

/// Whether `password` matches `hash`. With no hash (an unknown user) a dummy hash is checked,
/// so that the answer takes as long as for a known user.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

/// The argon2id hash of a random password nobody knows, for the timing of unknown users.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8ZhZfQ9Z0qGqRiu2nGbKNB3z5yl9sKdtqL0NqDc2wl8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let a = random_token("baton_", 32);
        let b = random_token("baton_", 32);
        assert_ne!(a, b);
        assert!(a.starts_with("baton_") && a.len() == 6 + 43, "{a}");
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[tokio::test]
    async fn a_password_matches_its_hash_only() {
        let hash = hash_password("correct horse".into()).await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}

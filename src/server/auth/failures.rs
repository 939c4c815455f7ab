//! Failed sign-ins, counted per user name and per address over a sliding window: past the
//! limit, sign-ins for that name (or from that address) are refused until the oldest failure
//! leaves the window, so a password cannot be guessed at speed, and one address cannot lock
//! every account by guessing at all of them (its own limit stops it first).

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failures of one name in [`WINDOW`] before its sign-ins are refused.
pub const PER_USER: usize = 5;

/// Failures from one address in [`WINDOW`] before its sign-ins are refused.
pub const PER_ADDRESS: usize = 20;

/// Failed sign-ins per key (`user:<name>`, `address:<ip>`).
#[derive(Default)]
pub struct Failures {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Failures {
    /// How long `key` must wait before it may try again, if it is at `limit`.
    pub fn blocked(&self, key: &str, limit: usize) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let times = seen.get_mut(key)?;
        while times.front().is_some_and(|t| now - *t >= WINDOW) {
            times.pop_front();
        }
        if times.is_empty() {
            seen.remove(key);
            return None;
        }
        (times.len() >= limit).then(|| WINDOW - (now - times[0]))
    }

    /// Counts one failure of `key`.
    pub fn fail(&self, key: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Keys that only hold old failures go, so the map stays as small as the attackers.
        if seen.len() > 10_000 {
            let now = Instant::now();
            seen.retain(|_, times| times.back().is_some_and(|t| now - *t < WINDOW));
        }
        let times = seen.entry(key.to_string()).or_default();
        times.push_back(Instant::now());
        while times.len() > PER_ADDRESS {
            times.pop_front();
        }
    }

    /// Forgets `key`'s failures (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_at_its_limit_and_free_after_a_success() {
        let failures = Failures::default();
        for _ in 0..PER_USER - 1 {
            failures.fail("user:anna");
        }
        assert_eq!(failures.blocked("user:anna", PER_USER), None);
        failures.fail("user:anna");
        let wait = failures.blocked("user:anna", PER_USER).unwrap();
        assert!(wait > WINDOW - Duration::from_secs(5) && wait <= WINDOW);
        assert_eq!(failures.blocked("user:bob", PER_USER), None);
        failures.clear("user:anna");
        assert_eq!(failures.blocked("user:anna", PER_USER), None);
    }
}

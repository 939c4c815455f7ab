//! The retry policy of a sync type: how many attempts, and how long to wait before each retry.
//!
//! Exponential backoff with "equal jitter": after attempt n fails, wait between half and all of
//! `base_delay × 2^(n-1)` (capped at `max_delay`). The half that is fixed keeps retries from coming
//! too soon; the half that is random keeps many failed jobs from retrying in lockstep.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Attempts and backoff for one sync type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// The wait after the first failure, before jitter.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// No wait is longer than this.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before retrying after failed attempt `attempt` (1-based). `unit` is a random draw
    /// in `[0, 1)`; values outside are clamped, so a bad draw cannot make a negative or huge wait.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let full = self
            .base_delay
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full / 2 + (full / 2).mul_f64(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(4),
            max_delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_wait_doubles_per_attempt_within_half_and_all_of_it() {
        let p = policy();
        for (attempt, full) in [(1, 4), (2, 8), (3, 16), (4, 32)] {
            let full = Duration::from_secs(full);
            assert_eq!(
                p.backoff(attempt, 0.0),
                full / 2,
                "attempt {attempt}, lowest draw"
            );
            assert_eq!(
                p.backoff(attempt, 1.0),
                full,
                "attempt {attempt}, highest draw"
            );
            let mid = p.backoff(attempt, 0.5);
            assert!(mid > full / 2 && mid < full);
        }
    }

    #[test]
    fn the_wait_never_exceeds_the_cap_even_after_many_attempts() {
        let p = policy();
        for attempt in [5, 6, 31, 32, 33, u32::MAX] {
            assert!(
                p.backoff(attempt, 1.0) <= Duration::from_secs(60),
                "attempt {attempt}"
            );
            assert_eq!(p.backoff(attempt, 0.0), Duration::from_secs(30));
        }
    }

    #[test]
    fn a_bad_random_draw_is_clamped() {
        let p = policy();
        assert_eq!(p.backoff(1, -3.0), Duration::from_secs(2));
        assert_eq!(p.backoff(1, 7.0), Duration::from_secs(4));
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_secs(2));
    }

    #[test]
    fn a_policy_reads_from_toml_with_human_durations() {
        let p: RetryPolicy =
            toml::from_str("max_attempts = 5\nbase_delay = \"250ms\"\nmax_delay = \"1m\"").unwrap();
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.base_delay, Duration::from_millis(250));
        assert_eq!(p.max_delay, Duration::from_secs(60));
        assert!(
            toml::from_str::<RetryPolicy>("max_atempts = 5").is_err(),
            "typos are refused"
        );
    }
}

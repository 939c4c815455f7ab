//! Rate limits per caller for the requests that create work or hold data (records pushes,
//! session starts): a burst of a minute's worth, then a steady rate; past it, [`Limited`], which
//! the HTTP layer answers with 429 and `Retry-After`. The caller is the client's address (and,
//! once people sign in, who they are).

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A caller past its limit: what was too much, and when it may try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// What was too much, and when to try again, in words.
    pub message: String,
    /// When it may try again.
    pub retry_after: Duration,
}

/// A limit of `n` requests a minute per caller; `None` inside when there is no limit.
pub struct CallerLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_minute: u32,
    checks: AtomicU64,
}

/// Every this many checks, callers whose allowance is full again are forgotten, so the map of
/// callers does not grow with every address ever seen.
const FORGET_EVERY: u64 = 1024;

impl CallerLimit {
    /// `n` a minute per caller; 0: no limit.
    pub fn per_minute(n: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_minute: n,
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of `caller` doing `what` (each kind of request has its own allowance);
    /// past the limit, when to try again.
    pub fn check(&self, caller: &str, what: &str) -> Result<(), Limited> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        match limiter.check_key(&format!("{what}\u{0}{caller}")) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(Limited {
                    message: format!(
                        "{caller} made more than {} {what} a minute (rate_limit); try again in {} s",
                        self.per_minute,
                        wait.as_secs().max(1)
                    ),
                    retry_after: wait.max(Duration::from_secs(1)),
                })
            }
        }
    }
}

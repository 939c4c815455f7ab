//! Rate limits per caller for the requests that create work or hold data (records pushes,
//! session starts): a burst of a minute's worth, then a steady rate; past it, 429 with
//! `Retry-After`. The caller is the client's address (and, once people sign in, who they are).

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// A limit of `n` requests a minute per caller; `None` inside when there is no limit.
pub struct CallerLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_minute: u32,
}

impl CallerLimit {
    /// `n` a minute per caller; 0: no limit.
    pub fn per_minute(n: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_minute: n,
        }
    }

    /// Counts one request of `caller` doing `what`; a 429 saying when to try again past the limit.
    pub fn check(&self, caller: &str, what: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(&caller.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(ApiError::TooManyRequests {
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

/// The client's address as the listener saw it, when there is one (tests that call the router
/// directly have none).
pub type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// The caller's name for limits: its address, without the port.
pub fn caller(peer: &Peer) -> String {
    match peer {
        Some(axum::Extension(axum::extract::ConnectInfo(addr))) => match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => ip.to_string(),
        },
        None => "an unknown client".into(),
    }
}

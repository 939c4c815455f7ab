//! Whether a sync type's data is as fresh as its schedule promises: judged from its last
//! success and its schedule's last two fire times. Pure: the scheduler reads, this decides.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{FireOutcome, Freshness, ScheduleFire};

/// How fresh `last_success` is by the fires of the type's schedule (newest first) and
/// `stale_after`, with why when it is not fresh.
pub fn judge(
    last_success: Option<DateTime<Utc>>,
    fires: &[ScheduleFire],
    scheduled: bool,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> (Freshness, Option<String>) {
    let stale_age = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    if let Some(success) = last_success {
        if now - success > stale_age {
            return (
                Freshness::Stale,
                Some(format!(
                    "its last success was at {}, more than {} ago",
                    success.format("%Y-%m-%d %H:%M UTC"),
                    humantime_serde::re::humantime::format_duration(stale_after)
                )),
            );
        }
    }
    if let Some(newest) = fires.first() {
        if newest.outcome == FireOutcome::Missed {
            return (
                Freshness::Late,
                Some(format!(
                    "its run due at {} was missed",
                    newest.fire_time.format("%Y-%m-%d %H:%M UTC")
                )),
            );
        }
    }
    if let Some(before) = fires.get(1) {
        if last_success.is_none_or(|s| s < before.fire_time) {
            return (
                Freshness::Late,
                Some(format!(
                    "no run succeeded since the one due at {}",
                    before.fire_time.format("%Y-%m-%d %H:%M UTC")
                )),
            );
        }
    }
    let _ = scheduled;
    if last_success.is_some() {
        (Freshness::Fresh, None)
    } else {
        (Freshness::Unknown, None)
    }
}

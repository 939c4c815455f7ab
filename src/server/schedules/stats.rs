//! Seed 004's statistics per sync type: runs per day, success rate, median duration and records
//! changed over the last 7 and 30 days, from the finished jobs still kept. Pure: rows and `now`
//! in, figures out.

use chrono::{DateTime, Duration, Utc};

use crate::{
    model::{PeriodStats, TypeStats},
    server::store::JobRow,
};

/// Records a run changed, from its result (`created + updated + removed` of a pull).
fn changed(row: &JobRow) -> u64 {
    let Some(result) = row.result.as_deref() else {
        return 0;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(result) else {
        return 0;
    };
    ["created", "updated", "removed"]
        .iter()
        .filter_map(|k| value.get(k).and_then(serde_json::Value::as_u64))
        .sum()
}

fn period(rows: &[&JobRow], days: u32, now: DateTime<Utc>) -> PeriodStats {
    let since = now - Duration::days(i64::from(days));
    let inside: Vec<&&JobRow> = rows
        .iter()
        .filter(|r| r.finished_at.is_some_and(|f| f >= since))
        .collect();
    let completed = inside.iter().filter(|r| r.state == "completed").count();
    let failed = inside.iter().filter(|r| r.state == "failed").count();
    let mut durations: Vec<i64> = inside
        .iter()
        .filter_map(|r| Some((r.finished_at? - r.started_at?).num_milliseconds().max(0)))
        .collect();
    durations.sort_unstable();
    PeriodStats {
        days,
        runs: inside.len() as u64,
        per_day: inside.len() as f64 / f64::from(days),
        success_rate: (completed + failed > 0)
            .then(|| completed as f64 / (completed + failed) as f64),
        median_ms: (!durations.is_empty()).then(|| durations[durations.len() / 2] as u64),
        changed: inside.iter().map(|r| changed(r)).sum(),
    }
}

/// The statistics of each of `types` from `rows` (finished jobs of the last 30 days or more).
pub fn type_stats(types: &[String], rows: &[JobRow], now: DateTime<Utc>) -> Vec<TypeStats> {
    let month_start = now - Duration::days(30);
    types
        .iter()
        .map(|name| {
            let mine: Vec<&JobRow> = rows.iter().filter(|r| &r.sync_type == name).collect();
            let oldest = mine.iter().filter_map(|r| r.finished_at).min();
            TypeStats {
                sync_type: name.clone(),
                week: period(&mine, 7, now),
                month: period(&mine, 30, now),
                // Kept rows that start inside the month may mean older ones were pruned.
                kept_since: oldest.filter(|o| *o > month_start && mine.len() >= 100),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ty: &str, state: &str, ended_days_ago: i64, ms: i64, result: Option<&str>) -> JobRow {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let finished = now - Duration::days(ended_days_ago);
        JobRow {
            id: uuid::Uuid::now_v7(),
            sync_type: ty.into(),
            priority: 1,
            exclusive: true,
            state: state.into(),
            progress: 100,
            processed: 0,
            total: None,
            message: None,
            error: None,
            result: result.map(str::to_string),
            warnings: "[]".into(),
            attempt: 1,
            rescues: 0,
            max_attempts: 1,
            run_at: finished,
            source: "manual".into(),
            triggered_by: None,
            note: None,
            session_id: None,
            retry_of: None,
            checkpoint: None,
            dedupe_key: None,
            created_at: finished,
            started_at: Some(finished - Duration::milliseconds(ms)),
            finished_at: Some(finished),
            heartbeat_at: None,
            lease_owner: None,
            lease_expires_at: None,
            cancel_requested_at: None,
            yield_requested_at: None,
        }
    }

    #[test]
    fn runs_per_day_success_rate_median_and_changes_per_period() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let rows = vec![
            row(
                "orders",
                "completed",
                1,
                1000,
                Some(r#"{"created":2,"updated":3,"unchanged":9,"removed":1}"#),
            ),
            row("orders", "failed", 2, 3000, None),
            row("orders", "cancelled", 3, 500, None),
            row("orders", "completed", 20, 2000, Some(r#"{"created":10}"#)),
            row("prices", "completed", 40, 10, None),
        ];
        let stats = type_stats(&["orders".into(), "prices".into()], &rows, now);
        let week = &stats[0].week;
        assert_eq!(week.runs, 3);
        assert!((week.per_day - 3.0 / 7.0).abs() < 1e-9);
        assert_eq!(week.success_rate, Some(0.5), "cancelled runs are left out");
        assert_eq!(week.median_ms, Some(1000));
        assert_eq!(week.changed, 6);
        let month = &stats[0].month;
        assert_eq!(month.runs, 4);
        assert_eq!(month.changed, 16);
        assert_eq!(month.success_rate, Some(2.0 / 3.0));
        // Nothing in the month: no rate, no median.
        assert_eq!(stats[1].month.runs, 0);
        assert_eq!(stats[1].month.success_rate, None);
        assert_eq!(stats[1].month.median_ms, None);
    }
}

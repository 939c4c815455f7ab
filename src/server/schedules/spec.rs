//! Timings: a [`ScheduleSpec`] checked and compiled, the next fire times it gives (correct across
//! daylight-saving changes), and which fire times are due at a given moment. Pure: no clock, no
//! I/O; the scheduler and the tests pass the time in.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::model::{OnMissed, ScheduleSpec};

/// A fire time at most this old when it is seen is on time: it fires whatever `on_missed` says.
pub const ON_TIME: Duration = Duration::from_secs(60);

/// How many missed fire times one catch-up records one by one; the rest are counted in the last
/// one's reason.
pub const MISSED_ROWS: usize = 100;

/// A spec that cannot be used: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// `every`, `cron`, `tz` or `on_missed`.
    pub field: &'static str,
    /// In words a person can act on.
    pub message: String,
}

fn error(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError {
        field,
        message: message.into(),
    }
}

/// A checked timing.
#[derive(Clone, Debug)]
pub enum Timing {
    /// Every so long, on a grid from the schedule's anchor.
    Every(chrono::Duration),
    /// At the times a cron expression names, as the wall clock of `tz` shows them.
    Cron {
        /// The parsed expression.
        cron: Box<Cron>,
        /// The zone it is read in.
        tz: Tz,
    },
}

/// The five fields of a cron expression, in order, for error messages.
const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT"),
];

/// The server's own time zone: `TZ` when it names an IANA zone (as containers set it), else the
/// system's (`/etc/localtime`), UTC when neither can be told.
pub fn local_zone() -> Tz {
    zone_of(
        std::env::var("TZ").ok().as_deref(),
        iana_time_zone::get_timezone().ok(),
    )
}

/// The zone `TZ` names (with or without POSIX's leading `:`), else the system's, else UTC.
fn zone_of(tz: Option<&str>, system: Option<String>) -> Tz {
    tz.map(|t| t.trim().trim_start_matches(':'))
        .and_then(|t| t.parse().ok())
        .or_else(|| system.and_then(|name| name.parse().ok()))
        .unwrap_or(Tz::UTC)
}

impl Timing {
    /// Checks `spec`: exactly one of `every` and `cron`; an interval of at least 1 s; a cron
    /// expression of five valid fields; a known zone (only with `cron`). A cron error names the
    /// field and says why.
    pub fn compile(spec: &ScheduleSpec) -> Result<Self, SpecError> {
        match (&spec.every, &spec.cron) {
            (Some(_), Some(_)) => Err(error("every", "give either `every` or `cron`, not both")),
            (None, None) => Err(error(
                "every",
                "give `every` (an interval such as \"30m\") or `cron` (such as \"0 12 * * *\")",
            )),
            (Some(every), None) => {
                if spec.tz.is_some() {
                    return Err(error(
                        "tz",
                        "a time zone only applies to `cron`; an interval runs in real time",
                    ));
                }
                let interval = humantime_serde::re::humantime::parse_duration(every.trim())
                    .map_err(|e| {
                        error(
                            "every",
                            format!(
                                "`{every}` is not an interval ({e}); write e.g. 90s, 30m, 6h or 1d"
                            ),
                        )
                    })?;
                if interval < Duration::from_secs(1) {
                    return Err(error(
                        "every",
                        format!("`{every}` is under 1 s; the shortest interval is 1s"),
                    ));
                }
                if interval > Duration::from_secs(366 * 86_400) {
                    return Err(error(
                        "every",
                        format!("`{every}` is over a year; use `cron` for rare runs"),
                    ));
                }
                Ok(Timing::Every(
                    chrono::Duration::from_std(interval).expect("at most a year"),
                ))
            }
            (None, Some(expression)) => {
                let cron = parse_cron(expression)?;
                let tz = match spec.tz.as_deref().map(str::trim) {
                    None | Some("") => local_zone(),
                    Some(name) => Tz::from_str(name).map_err(|_| {
                        error(
                            "tz",
                            format!(
                                "`{name}` is not a time zone Baton knows; use an IANA name such \
                                 as Europe/Rome, America/New_York or UTC"
                            ),
                        )
                    })?,
                };
                // A pattern that never matches (30 February) is refused here, not at its first
                // fire.
                let timing = Timing::Cron {
                    cron: Box::new(cron),
                    tz,
                };
                if timing.next_after(Utc::now(), Utc::now()).is_none() {
                    return Err(error(
                        "cron",
                        format!("`{expression}` never matches a date that exists"),
                    ));
                }
                Ok(timing)
            }
        }
    }

    /// The first fire time strictly after `after`. `anchor` is where an interval's grid starts
    /// (fire times are `anchor + k × every`), so every process computes the same ones.
    ///
    /// A cron time is the wall clock of its zone: one that a spring-forward change skips (02:30
    /// on that night) fires once, at the first instant after the gap; one that an autumn change
    /// repeats fires once, at its first occurrence.
    pub fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Timing::Every(every) => {
                let step = every.num_milliseconds().max(1);
                let since = (after - anchor).num_milliseconds();
                let k = if since < 0 { 0 } else { since / step + 1 };
                let next = anchor + chrono::Duration::milliseconds(k * step);
                Some(if next <= after { next + *every } else { next })
            }
            Timing::Cron { cron, tz } => {
                let mut local = after.with_timezone(tz).naive_local();
                // Each round moves to a later wall-clock match; a year of rounds is plenty.
                for _ in 0..600 {
                    let naive = next_wall_clock(cron, local)?;
                    match tz.from_local_datetime(&naive) {
                        LocalResult::Single(t) => {
                            let t = t.with_timezone(&Utc);
                            if t > after {
                                return Some(t);
                            }
                        }
                        // The repeated hour: its first occurrence, unless that is already past
                        // (we are in the second pass): then that time has had its run.
                        LocalResult::Ambiguous(first, _) => {
                            let first = first.with_timezone(&Utc);
                            if first > after {
                                return Some(first);
                            }
                        }
                        // Skipped by the clock: the first instant after the gap.
                        LocalResult::None => {
                            let t = after_gap(tz, naive)?;
                            if t > after {
                                return Some(t);
                            }
                        }
                    }
                    local = naive;
                }
                None
            }
        }
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming(
        &self,
        after: DateTime<Utc>,
        anchor: DateTime<Utc>,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(n);
        let mut at = after;
        while times.len() < n {
            match self.next_after(at, anchor) {
                Some(t) => {
                    times.push(t);
                    at = t;
                }
                None => break,
            }
        }
        times
    }
}

/// Parses five cron fields; on an error, finds the field at fault by trying each alone.
fn parse_cron(expression: &str) -> Result<Cron, SpecError> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(error(
            "cron",
            format!(
                "`{expression}` has {} field(s); a cron expression has 5: minute hour \
                 day-of-month month day-of-week (e.g. \"0 12 * * *\" is every day at 12:00)",
                fields.len()
            ),
        ));
    }
    match Cron::new(&fields.join(" ")).parse() {
        Ok(cron) => Ok(cron),
        Err(whole) => {
            for (i, (name, range)) in CRON_FIELDS.iter().enumerate() {
                let mut alone = ["*"; 5];
                alone[i] = fields[i];
                if let Err(e) = Cron::new(&alone.join(" ")).parse() {
                    return Err(error(
                        "cron",
                        format!(
                            "field {} ({name}) `{}` is not valid: {}; it takes {range}, `*`, \
                             lists (1,15), ranges (1-5) and steps (*/15)",
                            i + 1,
                            fields[i],
                            plain(&e)
                        ),
                    ));
                }
            }
            Err(error(
                "cron",
                format!("`{expression}` is not valid: {}", plain(&whole)),
            ))
        }
    }
}

/// croner's message without its own prefix.
fn plain(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    text.split_once(": ")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(text)
        .trim_end_matches('.')
        .to_string()
}

/// The first wall-clock time after `local` that the expression names (seconds are zero).
fn next_wall_clock(cron: &Cron, local: NaiveDateTime) -> Option<NaiveDateTime> {
    // Searching in UTC is searching the naive calendar: no gaps, no repeats.
    cron.find_next_occurrence(&Utc.from_utc_datetime(&local), false)
        .ok()
        .map(|t| t.naive_utc())
}

/// The first instant at or after a wall-clock time that the zone skips.
fn after_gap(tz: &Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are whole minutes, at most a few hours.
    let mut probe = naive;
    for _ in 0..(24 * 60) {
        probe += chrono::Duration::minutes(1);
        let minute = probe
            .date()
            .and_hms_opt(
                chrono::Timelike::hour(&probe),
                chrono::Timelike::minute(&probe),
                0,
            )
            .unwrap_or(probe);
        match tz.from_local_datetime(&minute) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(t, _) => return Some(t.with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}

/// What is due at `now` for a schedule whose next fire time is `next`.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// The fire time to run now, if any.
    pub fire: Option<DateTime<Utc>>,
    /// Fire times recorded as missed (at most [`MISSED_ROWS`], the latest ones).
    pub missed: Vec<DateTime<Utc>>,
    /// How many more were missed than `missed` holds.
    pub missed_uncounted: u64,
    /// The fire time after these: the schedule's next one.
    pub next: Option<DateTime<Utc>>,
}

/// Which fire times from `next` up to `now` run and which are missed. A fire time no more than
/// [`ON_TIME`] old runs. Older ones (the process was down) are missed; with
/// [`OnMissed::RunOnce`] the latest of them runs instead, once. `None` when nothing is due.
pub fn due(
    timing: &Timing,
    anchor: DateTime<Utc>,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
    on_missed: OnMissed,
) -> Option<Due> {
    if next > now {
        return None;
    }
    let on_time = now - chrono::Duration::from_std(ON_TIME).expect("small");
    // Every fire time up to now: the late ones first, then at most one on time (the grid is
    // finer than a minute only for short intervals, where only the latest matters).
    let mut late: std::collections::VecDeque<DateTime<Utc>> = std::collections::VecDeque::new();
    let mut late_count: u64 = 0;
    let mut at = next;
    while let Some(following) = timing.next_after(at, anchor).filter(|f| *f <= now) {
        late.push_back(at);
        late_count += 1;
        if late.len() > MISSED_ROWS {
            late.pop_front();
        }
        at = following;
        // A long downtime on a 1-second interval: jump instead of walking every second.
        if late_count > 10_000 {
            if let Timing::Every(every) = timing {
                let step = every.num_milliseconds().max(1);
                let skip = (now - at).num_milliseconds() / step;
                if skip > 1 {
                    late_count += (skip - 1) as u64;
                    at += chrono::Duration::milliseconds((skip - 1) * step);
                    late.clear();
                }
            }
        }
    }
    // `latest` is the last fire time ≤ now; `late` holds the ones before it.
    let latest = at;
    let mut missed: Vec<DateTime<Utc>> = late.into_iter().collect();
    let mut uncounted = late_count - missed.len() as u64;
    let fire = if latest >= on_time {
        Some(latest)
    } else {
        match on_missed {
            OnMissed::RunOnce => Some(latest),
            OnMissed::Skip => {
                missed.push(latest);
                if missed.len() > MISSED_ROWS {
                    missed.remove(0);
                    uncounted += 1;
                }
                None
            }
        }
    };
    Some(Due {
        fire,
        missed,
        missed_uncounted: uncounted,
        next: timing.next_after(latest.max(now), anchor),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tz_variable_names_the_zone_before_the_system_does() {
        let system = || Some("Europe/Rome".to_string());
        assert_eq!(
            super::zone_of(Some("Asia/Tokyo"), system()),
            chrono_tz::Asia::Tokyo
        );
        assert_eq!(
            super::zone_of(Some(":America/New_York"), system()),
            chrono_tz::America::New_York
        );
        // Not a zone name (a POSIX rule, a typo): the system's zone, then UTC.
        assert_eq!(
            super::zone_of(Some("CET-1CEST"), system()),
            chrono_tz::Europe::Rome
        );
        assert_eq!(super::zone_of(None, system()), chrono_tz::Europe::Rome);
        assert_eq!(super::zone_of(None, None), chrono_tz::UTC);
    }

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str, tz: &str) -> Timing {
        Timing::compile(&ScheduleSpec::cron(expr, Some(tz))).unwrap()
    }

    fn every(s: &str) -> Timing {
        Timing::compile(&ScheduleSpec::every(s)).unwrap()
    }

    fn err(spec: ScheduleSpec) -> SpecError {
        Timing::compile(&spec).unwrap_err()
    }

    #[test]
    fn bad_specs_name_the_field_and_say_what_is_wrong() {
        let e = err(ScheduleSpec::every("500ms"));
        assert_eq!(e.field, "every");
        assert!(e.message.contains("under 1 s"), "{e}");
        let e = err(ScheduleSpec::every("soon"));
        assert!(e.message.contains("not an interval"), "{e}");
        let e = err(ScheduleSpec::cron("61 * * * *", Some("UTC")));
        assert_eq!(e.field, "cron");
        assert!(
            e.message.starts_with("field 1 (minute) `61` is not valid"),
            "{e}"
        );
        let e = err(ScheduleSpec::cron("0 12 * 13 *", Some("UTC")));
        assert!(e.message.starts_with("field 4 (month) `13`"), "{e}");
        let e = err(ScheduleSpec::cron("0 25 * * *", Some("UTC")));
        assert!(e.message.starts_with("field 2 (hour)"), "{e}");
        let e = err(ScheduleSpec::cron("0 12 * *", Some("UTC")));
        assert!(e.message.contains("has 4 field(s)"), "{e}");
        let e = err(ScheduleSpec::cron("0 12 * * *", Some("Mars/Olympus")));
        assert_eq!(e.field, "tz");
        assert!(
            e.message.contains("`Mars/Olympus` is not a time zone"),
            "{e}"
        );
        let e = err(ScheduleSpec::cron("0 0 30 2 *", Some("UTC")));
        assert!(e.message.contains("never matches"), "{e}");
        let mut both = ScheduleSpec::every("1m");
        both.cron = Some("* * * * *".into());
        assert!(err(both).message.contains("not both"));
        let mut neither = ScheduleSpec::every("1m");
        neither.every = None;
        assert_eq!(err(neither).field, "every");
        let mut tz = ScheduleSpec::every("1m");
        tz.tz = Some("UTC".into());
        assert_eq!(err(tz).field, "tz");
    }

    #[test]
    fn an_interval_is_a_grid_from_its_anchor() {
        let t = every("30m");
        let anchor = at("2026-01-01T10:07:00Z");
        assert_eq!(
            t.next_after(anchor, anchor),
            Some(at("2026-01-01T10:37:00Z"))
        );
        assert_eq!(
            t.next_after(at("2026-01-01T10:37:00Z"), anchor),
            Some(at("2026-01-01T11:07:00Z"))
        );
        assert_eq!(
            t.next_after(at("2026-01-01T10:40:00Z"), anchor),
            Some(at("2026-01-01T11:07:00Z"))
        );
        assert_eq!(
            t.next_after(at("2026-01-01T09:00:00Z"), anchor),
            Some(anchor)
        );
    }

    #[test]
    fn spring_forward_runs_a_skipped_time_once_at_the_first_valid_instant() {
        // Europe/Rome, 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let t = cron("30 2 * * *", "Europe/Rome");
        let from = at("2026-03-28T02:00:00Z"); // 03:00 CET on the 28th
        let times = t.upcoming(from, from, 3);
        assert_eq!(
            times,
            vec![
                at("2026-03-29T01:00:00Z"), // 03:00 CEST, the instant after the gap
                at("2026-03-30T00:30:00Z"), // 02:30 CEST
                at("2026-03-31T00:30:00Z"),
            ]
        );
        // America/New_York, 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let t = cron("30 2 * * *", "America/New_York");
        let from = at("2026-03-07T12:00:00Z");
        assert_eq!(
            t.upcoming(from, from, 2),
            vec![at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")]
        );
    }

    #[test]
    fn autumn_back_runs_a_repeated_time_once() {
        // Europe/Rome, 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let t = cron("30 2 * * *", "Europe/Rome");
        let from = at("2026-10-24T12:00:00Z");
        assert_eq!(
            t.upcoming(from, from, 2),
            vec![at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]
        );
        // Every 30 minutes through the repeated hour: each wall-clock time once.
        let t = cron("*/30 * * * *", "Europe/Rome");
        let from = at("2026-10-24T23:45:00Z"); // 01:45 CEST
        let times = t.upcoming(from, from, 4);
        assert_eq!(
            times,
            vec![
                at("2026-10-25T00:00:00Z"), // 02:00 CEST
                at("2026-10-25T00:30:00Z"), // 02:30 CEST
                at("2026-10-25T02:00:00Z"), // 03:00 CET (02:00 and 02:30 CET are repeats)
                at("2026-10-25T02:30:00Z"),
            ]
        );
        // America/New_York, 2026-11-01: 01:30 happens twice.
        let t = cron("30 1 * * *", "America/New_York");
        let from = at("2026-10-31T12:00:00Z");
        assert_eq!(
            t.upcoming(from, from, 2),
            vec![at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")]
        );
    }

    #[test]
    fn a_missed_run_fires_once_or_is_skipped_never_a_burst() {
        let t = every("1h");
        let anchor = at("2026-01-01T00:00:00Z");
        // Down from 01:00 to 05:10: 01, 02, 03, 04, 05 passed.
        let now = at("2026-01-01T05:10:00Z");
        let next = at("2026-01-01T01:00:00Z");
        let d = due(&t, anchor, next, now, OnMissed::RunOnce).unwrap();
        assert_eq!(d.fire, Some(at("2026-01-01T05:00:00Z")));
        assert_eq!(d.missed.len(), 4);
        assert_eq!(d.next, Some(at("2026-01-01T06:00:00Z")));
        let d = due(&t, anchor, next, now, OnMissed::Skip).unwrap();
        assert_eq!(d.fire, None);
        assert_eq!(d.missed.len(), 5);
        // On time: fires whatever the policy.
        let d = due(
            &t,
            anchor,
            next,
            at("2026-01-01T01:00:00.020Z"),
            OnMissed::Skip,
        )
        .unwrap();
        assert_eq!(d.fire, Some(next));
        assert!(d.missed.is_empty());
        assert!(due(&t, anchor, next, at("2026-01-01T00:59:59Z"), OnMissed::Skip).is_none());
        // A day down on a 1-second interval: one fire, 100 rows, the rest counted.
        let t = every("1s");
        let d = due(
            &t,
            anchor,
            anchor,
            at("2026-01-02T00:00:00Z"),
            OnMissed::RunOnce,
        )
        .unwrap();
        assert_eq!(d.fire, Some(at("2026-01-02T00:00:00Z")));
        assert_eq!(d.missed.len() as u64 + d.missed_uncounted, 86_400);
        assert!(d.missed.len() <= MISSED_ROWS);
    }

    /// Randomized: for intervals and cron expressions in two zones, over a year that crosses both
    /// changes, fire times strictly increase, each names a wall-clock time the expression
    /// matches (or the instant after a gap), and no wall-clock time fires twice.
    #[test]
    fn randomized_fire_times_increase_match_and_never_repeat() {
        let seed = std::env::var("BATON_SCHEDULE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        let mut rng = fastrand::Rng::with_seed(seed);
        let exprs = [
            "* * * * *",
            "*/7 * * * *",
            "30 2 * * *",
            "0 */6 * * *",
            "15 1-3 * * 0",
            "0 12 * * 1-5",
            "45 2 29 3 *",
            "0 0 1 * *",
            "*/20 2 * * *",
        ];
        for _ in 0..60 {
            let zone = ["Europe/Rome", "America/New_York"][rng.usize(..2)];
            let tz: Tz = zone.parse().unwrap();
            let expr = exprs[rng.usize(..exprs.len())];
            let t = cron(expr, zone);
            let start =
                at("2026-01-01T00:00:00Z") + chrono::Duration::minutes(rng.i64(0..365 * 24 * 60));
            let times = t.upcoming(start, start, 200);
            let mut seen = std::collections::HashSet::new();
            let mut last = start;
            for time in times {
                assert!(
                    time > last,
                    "seed {seed}: {expr} {zone}: {time} after {last}"
                );
                last = time;
                let local = time.with_timezone(&tz);
                let matches = Cron::new(expr)
                    .parse()
                    .unwrap()
                    .is_time_matching(&local)
                    .unwrap();
                // Not a match only at the first instant after a gap (the clock jumped over the
                // matching time): the minute before it does not exist.
                let after_gap = matches!(
                    tz.from_local_datetime(&(local.naive_local() - chrono::Duration::minutes(1))),
                    LocalResult::None
                );
                assert!(matches || after_gap, "seed {seed}: {expr} {zone}: {local}");
                assert!(
                    seen.insert(local.naive_local()),
                    "seed {seed}: {expr} {zone}: {} fired twice",
                    local.naive_local()
                );
            }
        }
        for _ in 0..60 {
            let secs = rng.u64(1..200_000);
            let t = every(&format!("{secs}s"));
            let anchor = at("2026-01-01T00:00:00Z") + chrono::Duration::seconds(rng.i64(0..10_000));
            let from = anchor + chrono::Duration::seconds(rng.i64(-10_000..10_000_000));
            let times = t.upcoming(from, anchor, 50);
            for w in times.windows(2) {
                assert_eq!((w[1] - w[0]).num_seconds(), secs as i64, "seed {seed}");
            }
            assert!(times[0] > from && times[0] - from <= chrono::Duration::seconds(secs as i64));
            assert_eq!(
                (times[0] - anchor).num_seconds() % secs as i64,
                0,
                "seed {seed}"
            );
        }
    }

    /// Randomized downtime: whatever the outage, at most one fire, missed rows bounded, and the
    /// next fire time is after now.
    #[test]
    fn randomized_downtime_fires_at_most_once() {
        let seed = fastrand::u64(..);
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..200 {
            let t = if rng.bool() {
                every(&format!("{}s", rng.u64(1..7200)))
            } else {
                cron(
                    ["*/5 * * * *", "0 12 * * *", "30 2 * * *"][rng.usize(..3)],
                    "Europe/Rome",
                )
            };
            let anchor = at("2026-03-01T00:00:00Z");
            let next = t.next_after(anchor, anchor).unwrap();
            let now = next + chrono::Duration::seconds(rng.i64(0..40 * 86_400));
            let policy = if rng.bool() {
                OnMissed::RunOnce
            } else {
                OnMissed::Skip
            };
            let d = due(&t, anchor, next, now, policy).unwrap();
            assert!(d.missed.len() <= MISSED_ROWS, "seed {seed}");
            assert!(d.next.unwrap() > now, "seed {seed}");
            if let Some(fire) = d.fire {
                assert!(
                    fire <= now && d.missed.iter().all(|m| *m < fire),
                    "seed {seed}"
                );
            }
            if policy == OnMissed::RunOnce {
                assert!(d.fire.is_some(), "seed {seed}");
            }
        }
    }
}

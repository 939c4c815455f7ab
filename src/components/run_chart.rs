//! A sync type's last runs as an SVG bar chart, drawn here (no chart library): one bar per run,
//! oldest on the left, height = duration, colour = outcome, and for people who do not see the
//! colour a mark on every bar that did not succeed (× failed, – cancelled). Each bar is a link to
//! its job in the tasks view, with the details on hover (an SVG `<title>`) and as its name. The
//! markup is written as text (escaped), so it is the same SVG on the server and in the browser.

use leptos::prelude::*;

use crate::model::{JobState, RunRecord};

/// Width of one bar and the gap after it, in SVG units.
const BAR: f64 = 6.0;
const GAP: f64 = 2.0;
/// Height of the plot area, and the space for marks above it.
const HEIGHT: f64 = 60.0;
const TOP: f64 = 10.0;

/// A bar's outcome: CSS class, word, mark.
fn outcome(state: JobState) -> (&'static str, &'static str, Option<&'static str>) {
    match state {
        JobState::Completed => ("bar-ok", "succeeded", None),
        JobState::Failed => ("bar-failed", "failed", Some("×")),
        JobState::Cancelled => ("bar-cancelled", "cancelled", Some("–")),
        JobState::Pending | JobState::Running => ("bar-cancelled", "not finished", None),
    }
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 5 s`.
pub fn duration_text(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// The chart of `runs` (newest first, as the history gives them) of `sync_type`.
#[component]
pub fn RunChart(sync_type: String, runs: Vec<RunRecord>) -> impl IntoView {
    let longest = runs
        .iter()
        .filter_map(|r| r.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let n = runs.len();
    let width = (n as f64 * (BAR + GAP)).max(BAR + GAP);
    let failed = runs
        .iter()
        .filter(|r| r.outcome == JobState::Failed)
        .count();
    let summary = format!(
        "{sync_type}: the last {n} runs, {failed} failed; the longest took {}",
        duration_text(longest)
    );
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"group\" aria-label=\"{}\" \
         viewBox=\"0 0 {width} {total}\" width=\"{width}\" height=\"{total}\">",
        escape(&summary),
        total = TOP + HEIGHT,
    );
    for (i, run) in runs.into_iter().rev().enumerate() {
        let (class, word, mark) = outcome(run.outcome);
        let ms = run.duration_ms.unwrap_or(0);
        // At least 2 units, so a very short run is still a bar one can point at.
        let h = (ms as f64 / longest as f64 * HEIGHT).max(2.0);
        let x = i as f64 * (BAR + GAP);
        let y = TOP + HEIGHT - h;
        let when = run
            .started_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "never started".into());
        let counts = match run.total {
            Some(total) => format!("{} of {total} items", run.processed),
            None => format!("{} items", run.processed),
        };
        let details = escape(&format!(
            "{when}: {word} after {}, {counts}, {}{}",
            duration_text(ms),
            run.source.as_str(),
            run.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        let id = escape(&run.job_id);
        svg.push_str(&format!(
            "<a href=\"/tasks?job={id}\" aria-label=\"{details}\" data-job=\"{id}\" \
             data-outcome=\"{word}\"><title>{details}</title>\
             <rect class=\"bar {class}\" x=\"{x}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{h:.1}\"/>"
        ));
        if let Some(m) = mark {
            svg.push_str(&format!(
                "<text class=\"bar-mark\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{m}</text>",
                x + BAR / 2.0,
                y - 1.0
            ));
        }
        svg.push_str("</a>");
    }
    svg.push_str("</svg>");
    view! {
        <figure class="run-chart" data-testid="run-chart" data-type=sync_type.clone()>
            <figcaption>
                <span class="type-name">{sync_type.clone()}</span>
                <span class="muted">{format!(" · {n} run{} · longest {}", if n == 1 { "" } else { "s" }, duration_text(longest))}</span>
            </figcaption>
            <div class="run-chart-plot" inner_html=svg></div>
        </figure>
    }
}

/// Text safe inside SVG markup and its attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

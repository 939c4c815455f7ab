//! Following a run live: the server's event stream read as server-sent events, a progress bar on
//! a terminal (plain lines otherwise), and the job or session read again whenever an event may
//! have been missed, so the end is never missed even if the stream is not.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, Client, Exit};
use crate::model::{EventKind, Job, JobState, LiveEvent, SessionState, SessionView, StepStatus};

/// How long without a relevant event before the run is read again (a safety net only).
const RECHECK: Duration = Duration::from_secs(2);

/// Reads server-sent events from a response body, one `data:` payload per event.
struct EventStream {
    body: Option<futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>>,
    buffer: Vec<u8>,
}

impl EventStream {
    fn new(response: reqwest::Response) -> Self {
        EventStream {
            body: Some(
                response
                    .bytes_stream()
                    .map(|c| c.map(|b| b.to_vec()))
                    .boxed(),
            ),
            buffer: Vec::new(),
        }
    }

    /// The next event, `Ok(None)` when `wait` passed without one, `Err` when the stream ended.
    async fn next(&mut self, wait: Duration) -> Result<Option<LiveEvent>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // A whole event is there: up to a blank line.
            if let Some(end) = find_blank_line(&self.buffer) {
                let frame: Vec<u8> = self.buffer.drain(..end.1).collect();
                let text = String::from_utf8_lossy(&frame[..end.0]);
                let data: String = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Ok(event) = serde_json::from_str::<LiveEvent>(&data) {
                    return Ok(Some(event));
                }
                // A keep-alive, a `resync` or an event kind this CLI does not know.
                if text.lines().any(|l| l.starts_with("event: resync")) {
                    return Ok(None);
                }
                continue;
            }
            let Some(body) = self.body.as_mut() else {
                return Err(());
            };
            match tokio::time::timeout_at(deadline, body.next()).await {
                Err(_) => return Ok(None),
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Some(Err(_)) | None) => {
                    self.body = None;
                    return Err(());
                }
            }
        }
    }
}

/// Where the first blank line ends an event: (end of the event's text, end of the separator).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let text = buffer;
    for i in 0..text.len() {
        if text[i..].starts_with(b"\n\n") {
            return Some((i, i + 2));
        }
        if text[i..].starts_with(b"\r\n\r\n") {
            return Some((i, i + 4));
        }
    }
    None
}

/// A progress bar on a terminal, throttled plain lines elsewhere (logs, pipes, CI).
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    last_line: Option<(Instant, String)>,
    started: Instant,
}

impl Progress {
    fn new(label: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} {rate} {elapsed} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            last_line: None,
            started: Instant::now(),
        }
    }

    /// Shows the counts; off a terminal at most a line a second, unless `last` (the run ended).
    fn update(&mut self, processed: u64, total: Option<u64>, message: Option<&str>, last: bool) {
        if let Some(bar) = &self.bar {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(processed);
            bar.set_message(message.unwrap_or("").to_string());
            return;
        }
        let rate = processed as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let count = match total {
            Some(total) => format!("{processed}/{total}"),
            None => format!("{processed}"),
        };
        let line = format!(
            "{}: {count} ({rate:.0}/s){}",
            self.label,
            message.map(|m| format!(" {m}")).unwrap_or_default()
        );
        // At most a line a second, and never the same line twice.
        let due = self.last_line.as_ref().is_none_or(|(at, before)| {
            *before != line && (last || at.elapsed() >= Duration::from_secs(1))
        });
        if due {
            eprintln!("{line}");
            self.last_line = Some((Instant::now(), line));
        }
    }

    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Follows job `id` until it ends, drawing its progress; returns it as it ended.
pub async fn follow_job(
    client: &Client,
    id: &str,
    events: reqwest::Response,
) -> Result<Job, CliError> {
    let mut stream = EventStream::new(events);
    let mut job: Job = client.get(&format!("/api/jobs/{id}")).await?;
    let mut progress = Progress::new(&job.sync_type);
    let mut last_attempt = job.attempt;
    let mut streaming = true;
    loop {
        let ended = job.state.is_terminal();
        progress.update(job.processed, job.total, job.message.as_deref(), ended);
        if ended {
            break;
        }
        let event = if streaming {
            match stream.next(RECHECK).await {
                Ok(event) => event,
                Err(()) => {
                    progress.say("the live stream ended; reading the job every second instead");
                    streaming = false;
                    None
                }
            }
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        };
        match event.map(|e| e.kind) {
            Some(EventKind::JobProgress(p)) if p.job_id == id => {
                job.processed = p.processed;
                job.total = p.total;
                job.message = p.message;
                job.progress = p.progress;
            }
            Some(
                EventKind::SyncStarted(j)
                | EventKind::SyncCompleted(j)
                | EventKind::SyncError(j)
                | EventKind::SyncCancelled(j),
            ) if j.id == id => job = j,
            Some(_) => continue,
            // Nothing for a while, a resync, or polling: read it.
            None => job = client.get(&format!("/api/jobs/{id}")).await?,
        }
        if job.state == JobState::Pending && job.attempt > last_attempt {
            progress.say(&format!(
                "attempt {} failed: {}; it runs again at {}",
                job.attempt,
                job.error.as_deref().unwrap_or("no error given"),
                job.run_at.with_timezone(&chrono::Local).format("%H:%M:%S")
            ));
        }
        last_attempt = job.attempt;
    }
    progress.finish();
    let took = match (job.started_at, job.finished_at) {
        (Some(a), Some(b)) => format!(" in {:.1} s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    };
    let counts = match job.total {
        Some(total) => format!("{}/{total} processed", job.processed),
        None => format!("{} processed", job.processed),
    };
    match job.state {
        JobState::Completed => eprintln!("{} {} completed{took}: {counts}", job.sync_type, job.id),
        JobState::Failed => eprintln!(
            "{} {} failed after {} attempt(s){took}: {}",
            job.sync_type,
            job.id,
            job.attempt,
            job.error.as_deref().unwrap_or("no error given")
        ),
        _ => eprintln!("{} {} was cancelled{took}: {counts}", job.sync_type, job.id),
    }
    for warning in &job.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(job)
}

/// Follows session `id` until it ends or waits at a gate (saying what to press); returns it
/// and the exit code it means.
pub async fn follow_session(
    client: &Client,
    id: &str,
    events: reqwest::Response,
) -> Result<(SessionView, Exit), CliError> {
    let mut stream = EventStream::new(events);
    let mut told: std::collections::HashMap<u32, (StepStatus, Option<String>)> = Default::default();
    let mut streaming = true;
    loop {
        let session: SessionView = client.get(&format!("/api/sessions/{id}")).await?;
        for step in session.steps.iter().filter(|s| s.reached) {
            let now = (step.status, step.message.clone());
            if told.get(&step.step) != Some(&now) {
                eprintln!(
                    "{} step {} {}: {}{}",
                    mark(step.status),
                    step.step,
                    step.name,
                    plain(step.status),
                    step.message
                        .as_deref()
                        .map(|m| format!(" — {m}"))
                        .unwrap_or_default()
                );
                told.insert(step.step, now);
            }
        }
        let exit = match session.state {
            SessionState::Completed => Some(Exit::Success),
            SessionState::CompletedWithWarnings => Some(Exit::Warnings),
            SessionState::Failed | SessionState::Cancelled => Some(Exit::Failed),
            SessionState::Waiting => Some(Exit::Gate),
            SessionState::Running => None,
        };
        if let Some(exit) = exit {
            match session.state {
                SessionState::Waiting => {
                    if let Some(step) = session.steps.iter().find(|s| s.action.is_some()) {
                        eprintln!(
                            "{} waits for a person: press \u{201c}{}\u{201d} (step {}) on the Daily \
                             sync page, or POST /api/sessions/{id}/steps/{}/action",
                            session.name,
                            step.action.as_deref().unwrap_or_default(),
                            step.step,
                            step.step
                        );
                    }
                }
                state => eprintln!("{} {}", session.name, plain(state)),
            }
            for warning in &session.warnings {
                eprintln!("warning: {warning}");
            }
            return Ok((session, exit));
        }
        // Wait for something about this session (or a while), then read it again.
        let deadline = Instant::now() + RECHECK;
        while streaming && Instant::now() < deadline {
            match stream.next(deadline - Instant::now()).await {
                Ok(Some(event)) if about(&event.kind, id) => break,
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(()) => streaming = false,
            }
        }
        if !streaming {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Whether an event concerns session `id`.
fn about(kind: &EventKind, id: &str) -> bool {
    match kind {
        EventKind::SessionUpdated(u) => u.session_id == id,
        EventKind::StepStatus(row) => row.session_id == id,
        EventKind::SessionCleared(c) => c.session_id == id,
        _ => false,
    }
}

fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Completed => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Processing => "…",
        _ => "·",
    }
}

/// A unit enum's serde name, with `_` as a space.
fn plain(value: impl serde::Serialize) -> String {
    super::serde_plain(&value).replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::find_blank_line;

    #[test]
    fn an_event_ends_at_the_first_blank_line_in_either_line_ending() {
        assert_eq!(find_blank_line(b"data: 1\n\ndata: 2\n\n"), Some((7, 9)));
        assert_eq!(find_blank_line(b"data: 1\r\n\r\n"), Some((7, 11)));
        assert_eq!(find_blank_line(b"data: 1\n"), None);
    }
}

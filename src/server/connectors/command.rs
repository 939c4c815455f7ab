//! `command`: runs a program. Its stdout and stderr become the job's log lines, lines of the
//! form `PROGRESS <done>/<total> <message>` (or `PROGRESS <done> <message>`) report progress,
//! and the exit code decides the outcome: 0 succeeds, 75 (`EX_TEMPFAIL`) fails retryably,
//! anything else fails for good. The program runs in its own process group, which is killed on
//! cancel, on timeout, when its worker loses the lease and if Baton drops the attempt; it is
//! killed by the kernel when Baton itself dies (a parent-death signal), so a `kill -9` of Baton
//! never leaves it running beside the copy a rescue starts. It gets Baton's environment without
//! the `BATON_*` variables and the variables holding connection secrets.

use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    model::LogLevel,
    server::engine::task::{SyncTask, TaskContext, TaskError, TaskOutput},
};

/// `task = { kind = "command", program = "…", args = [ … ] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program (a path, or a name looked up in `PATH`).
    pub program: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables (on top of Baton's own environment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The working directory; Baton's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The longest a run may take; it is killed then (and the attempt fails retryably).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10 * 60)
}

/// The exit code that asks for a retry (`EX_TEMPFAIL` from sysexits.h).
pub const EXIT_RETRY: i32 = 75;

/// The task.
pub struct CommandTask {
    config: CommandConfig,
    hidden: Vec<String>,
}

impl CommandTask {
    /// A task running `config`. The program gets Baton's environment without the `BATON_*`
    /// variables and without `hidden` (the variables that hold connection secrets).
    pub fn new(config: CommandConfig, hidden: Vec<String>) -> Self {
        Self { config, hidden }
    }
}

/// Reads a progress line: `PROGRESS 3/10 message`, `PROGRESS 3 message`.
pub fn parse_progress(line: &str) -> Option<(u64, Option<u64>, String)> {
    let rest = line.strip_prefix("PROGRESS ")?.trim_start();
    let (count, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let (done, total) = match count.split_once('/') {
        Some((done, total)) => (done.parse().ok()?, Some(total.parse().ok()?)),
        None => (count.parse().ok()?, None),
    };
    Some((done, total, message.trim().to_string()))
}

/// Kills the whole process group when dropped, unless it was let go.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; the group is the child's own.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The most of one output line kept; the rest of a longer line is skipped (a program that
/// prints gigabytes without a newline cannot fill the memory).
pub const LINE_BYTES: usize = 8 * 1024;

/// Lines of a program's output, each cut at [`LINE_BYTES`].
///
/// Cancel-safe: the output is read in a `select!` with the other stream and the exit, which
/// drops `next_line`'s future whenever another branch wins; the part of a line read so far is
/// kept here, not in the future, so no byte is lost when that happens.
struct BoundedLines<R> {
    reader: BufReader<R>,
    /// The line read so far.
    line: Vec<u8>,
    /// Whether it was longer than [`LINE_BYTES`] (the rest is skipped).
    cut: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> BoundedLines<R> {
    fn new(inner: R) -> Self {
        Self {
            reader: BufReader::new(inner),
            line: Vec::new(),
            cut: false,
        }
    }

    /// The line read so far, ended (with `…` when it was cut).
    fn take(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.cut) {
            line.extend_from_slice("…".as_bytes());
        }
        line
    }

    /// The next line without its end (a cut one ends with `…`), or `None` at the end.
    async fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            // The only await; between it and the return nothing can be interrupted.
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                let line = self.take();
                return Ok((!line.is_empty()).then_some(line));
            }
            let (taken, ended) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (available.len(), false),
            };
            let room = LINE_BYTES.saturating_sub(self.line.len());
            self.line.extend_from_slice(&available[..taken.min(room)]);
            self.cut |= taken > room;
            self.reader.consume(taken + usize::from(ended));
            if ended {
                return Ok(Some(self.take()));
            }
        }
    }
}

/// How long output may stay open after the program exited (a background child holding it).
const DRAIN: Duration = Duration::from_secs(2);

/// A line of output as text (invalid UTF-8 replaced, the line end removed).
fn text(bytes: Vec<u8>) -> String {
    let mut line = String::from_utf8_lossy(&bytes).into_owned();
    if line.ends_with('\r') {
        line.pop();
    }
    line
}

#[async_trait]
impl SyncTask for CommandTask {
    async fn run(&self, ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
        let config = &self.config;
        let mut command = tokio::process::Command::new(&config.program);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("BATON_") || self.hidden.iter().any(|h| *h == name) {
                command.env_remove(&key);
            }
        }
        command
            .args(&config.args)
            .envs(&config.env)
            .env("BATON_JOB_ID", ctx.job_id().to_string())
            .env("BATON_ATTEMPT", ctx.attempt().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The program dies with the thread that started it (a runtime worker, which lives as
        // long as the process): a kill -9 of Baton must not leave it running while the rescued
        // job starts a second copy. Only a parent-death signal survives a SIGKILL.
        // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if let Some(dir) = &config.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|e| TaskError::Fatal(format!("could not start `{}`: {e}", config.program)))?;
        let mut guard = GroupGuard {
            pgid: child.id().map(|id| id as i32),
        };
        let mut stdout = BoundedLines::new(child.stdout.take().expect("piped"));
        let mut stderr = BoundedLines::new(child.stderr.take().expect("piped"));
        let (mut out_open, mut err_open) = (true, true);
        let mut last_error = None::<String>;
        let mut lines = 0u64;
        let mut exited = None;
        let deadline = tokio::time::sleep(config.timeout);
        let drain = tokio::time::sleep(config.timeout + DRAIN);
        tokio::pin!(deadline, drain);
        loop {
            if exited.is_some() && !out_open && !err_open {
                break;
            }
            tokio::select! {
                _ = ctx.stop().cancelled() => {
                    guard.kill();
                    let _ = child.wait().await;
                    ctx.log(LogLevel::Warn, "stopped: the program was killed");
                    return Err(TaskError::Interrupted);
                }
                _ = &mut deadline, if exited.is_none() => {
                    guard.kill();
                    let _ = child.wait().await;
                    return Err(TaskError::Retryable(format!(
                        "`{}` ran longer than its timeout of {}s and was killed",
                        config.program,
                        config.timeout.as_secs()
                    )));
                }
                line = stdout.next_line(), if out_open => match line {
                    Ok(Some(line)) => {
                        lines += 1;
                        let line = text(line);
                        match parse_progress(&line) {
                            Some((done, total, message)) => ctx.progress(done, total, message),
                            None => ctx.log(LogLevel::Info, line),
                        }
                    }
                    _ => out_open = false,
                },
                line = stderr.next_line(), if err_open => match line {
                    Ok(Some(line)) => {
                        lines += 1;
                        let line = text(line);
                        if !line.trim().is_empty() {
                            last_error = Some(line.clone());
                        }
                        ctx.log(LogLevel::Warn, line);
                    }
                    _ => err_open = false,
                },
                status = child.wait(), if exited.is_none() => {
                    exited = Some(status);
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN);
                }
                _ = &mut drain, if exited.is_some() => {
                    // The program is done; something it started still holds its output.
                    guard.kill();
                    ctx.log(
                        LogLevel::Warn,
                        "the program exited but processes it started kept its output open; they were killed",
                    );
                    break;
                }
            }
        }
        guard.pgid = None;
        let status = exited.expect("the loop ends after the exit").map_err(|e| {
            TaskError::Retryable(format!("could not wait for `{}`: {e}", config.program))
        })?;
        let said = last_error.map(|l| format!(": {l}")).unwrap_or_default();
        match status.code() {
            Some(0) => Ok(TaskOutput {
                result: Some(json!({ "exit_code": 0, "lines": lines })),
            }),
            Some(EXIT_RETRY) => Err(TaskError::Retryable(format!(
                "`{}` exited with {EXIT_RETRY} (try again later){said}",
                config.program
            ))),
            Some(code) => Err(TaskError::Fatal(format!(
                "`{}` exited with {code}{said}",
                config.program
            ))),
            None => {
                use std::os::unix::process::ExitStatusExt;
                Err(TaskError::Fatal(format!(
                    "`{}` was killed by signal {}{said}",
                    config.program,
                    status.signal().unwrap_or(0)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_with_and_without_a_total() {
        assert_eq!(
            parse_progress("PROGRESS 3/10 importing rows"),
            Some((3, Some(10), "importing rows".into()))
        );
        assert_eq!(parse_progress("PROGRESS 7"), Some((7, None, String::new())));
        assert_eq!(parse_progress("PROGRESS x/10 no"), None);
        assert_eq!(parse_progress("progress 1/2"), None);
        assert_eq!(parse_progress("PROGRESS 1/ y"), None);
    }
}

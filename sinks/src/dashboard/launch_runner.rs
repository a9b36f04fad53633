//! Runs the launches of [`super::launch`]: one `trackiq` process per launch, at most one at a
//! time per entry, its output kept (the last [`KEPT_LINES`] lines) and streamed to the page as
//! server-sent events, a cancel that kills it, and the run it recorded linked when it ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::response::sse::Event;
use futures::Stream;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, broadcast};
use tracing::info;

use super::launch::LaunchEntry;
use crate::error::SinkError;

/// Output lines a launch keeps (older ones are dropped, the count said).
pub const KEPT_LINES: usize = 2_000;

/// How a launch ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// `succeeded`, `failed` or `cancelled`.
    pub status: &'static str,
    /// The process' exit code, where it exited by itself.
    pub exit_code: Option<i32>,
    /// The run it recorded (the last run id it printed).
    pub run_id: Option<String>,
}

#[derive(Debug, Clone)]
enum JobEvent {
    Line(String),
    Done(Outcome),
}

#[derive(Default)]
struct JobState {
    lines: Vec<String>,
    dropped: usize,
    outcome: Option<Outcome>,
}

/// One launch: its command and what it printed so far.
pub struct Job {
    /// The entry's arguments as run (after the pipeline's own flags).
    pub args: Vec<String>,
    state: Mutex<JobState>,
    events: broadcast::Sender<JobEvent>,
    cancel: Notify,
}

/// What a page shows of a launch.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub args: Vec<String>,
    pub lines: Vec<String>,
    pub dropped: usize,
    pub outcome: Option<Outcome>,
}

impl Job {
    fn push(&self, line: String) {
        let mut s = self.state.lock().expect("launch state");
        if s.lines.len() == KEPT_LINES {
            s.lines.remove(0);
            s.dropped += 1;
        }
        s.lines.push(line.clone());
        let _ = self.events.send(JobEvent::Line(line));
    }

    pub fn view(&self) -> JobView {
        let s = self.state.lock().expect("launch state");
        JobView { args: self.args.clone(), lines: s.lines.clone(), dropped: s.dropped, outcome: s.outcome.clone() }
    }

    pub fn running(&self) -> bool {
        self.state.lock().expect("launch state").outcome.is_none()
    }

    /// Kills the process (the outcome says `cancelled`).
    pub fn cancel(&self) {
        self.cancel.notify_one();
    }

    /// The output from line `from` (counting every line printed), then each new line, then the
    /// outcome, as server-sent events `line` and `done`.
    pub fn stream(self: &Arc<Self>, from: usize) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
        let (backlog, done, rx) = {
            let s = self.state.lock().expect("launch state");
            let skip = from.saturating_sub(s.dropped).min(s.lines.len());
            // Subscribed under the lock: no line falls between the backlog and the feed.
            (s.lines[skip..].to_vec(), s.outcome.clone(), self.events.subscribe())
        };
        let mut first: Vec<JobEvent> = backlog.into_iter().map(JobEvent::Line).collect();
        let finished = done.is_some();
        first.extend(done.map(JobEvent::Done));
        let live = futures::stream::unfold((rx, finished), |(mut rx, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(e @ JobEvent::Done(_)) => return Some((e, (rx, true))),
                    Ok(e) => return Some((e, (rx, false))),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let events = futures::StreamExt::chain(futures::stream::iter(first), live);
        futures::StreamExt::map(events, |e| {
            Ok(match e {
                JobEvent::Line(l) => Event::default().event("line").data(l),
                JobEvent::Done(o) => Event::default().event("done").json_data(&o).unwrap_or_else(|_| Event::default().event("done")),
            })
        })
    }
}

/// Why a launch did not start.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// No entry of that name.
    Unknown,
    /// A value is not allowed (the message names it).
    Invalid(String),
    /// The entry's previous launch is still running.
    Busy,
    /// The process could not be started.
    Failed(String),
}

/// The configured entries and their latest launches.
pub struct Launcher {
    pub entries: Vec<LaunchEntry>,
    program: PathBuf,
    base_args: Vec<String>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Launcher {
    /// Checks every entry; `program` is the `trackiq` binary and `base_args` the pipeline's
    /// own flags (`--data`, `--brokers`, `--config`), put before each entry's arguments.
    pub fn new(entries: Vec<LaunchEntry>, program: PathBuf, base_args: Vec<String>) -> Result<Launcher, SinkError> {
        for (i, e) in entries.iter().enumerate() {
            e.validate().map_err(SinkError::Dashboard)?;
            if entries[..i].iter().any(|f| f.name == e.name) {
                return Err(SinkError::Dashboard(format!("[[dashboard.launch]] `{}` is configured twice", e.name)));
            }
        }
        Ok(Launcher { entries, program, base_args, jobs: Mutex::new(HashMap::new()) })
    }

    pub fn entry(&self, name: &str) -> Option<&LaunchEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The latest launch of entry `name`.
    pub fn job(&self, name: &str) -> Option<Arc<Job>> {
        self.jobs.lock().expect("launch jobs").get(name).cloned()
    }

    /// Starts entry `name` with the values given, unless one of its launches is running.
    pub fn start(&self, name: &str, given: &[(String, String)]) -> Result<Arc<Job>, Refusal> {
        let entry = self.entry(name).ok_or(Refusal::Unknown)?;
        let args = entry.render(given).map_err(Refusal::Invalid)?;
        let mut jobs = self.jobs.lock().expect("launch jobs");
        if jobs.get(name).is_some_and(|j| j.running()) {
            return Err(Refusal::Busy);
        }
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.base_args)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Refusal::Failed(format!("starting {}: {e}", self.program.display())))?;
        info!(launch = name, args = ?args, "launched from the dashboard");
        let job = Arc::new(Job { args, state: Mutex::new(JobState::default()), events: broadcast::channel(1024).0, cancel: Notify::new() });
        let readers = [child.stdout.take().map(|o| read_lines(o, job.clone())), child.stderr.take().map(|e| read_lines(e, job.clone()))];
        let running = job.clone();
        tokio::spawn(async move {
            let (exit, cancelled) = tokio::select! {
                status = child.wait() => (status.ok().and_then(|s| s.code()), false),
                () = running.cancel.notified() => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    (None, true)
                }
            };
            for r in readers.into_iter().flatten() {
                let _ = r.await;
            }
            let run_id = running.state.lock().expect("launch state").lines.iter().rev().find_map(|l| last_run_id(l));
            let status = match (cancelled, exit) {
                (true, _) => "cancelled",
                (false, Some(0)) => "succeeded",
                _ => "failed",
            };
            let outcome = Outcome { status, exit_code: exit, run_id };
            running.state.lock().expect("launch state").outcome = Some(outcome.clone());
            let _ = running.events.send(JobEvent::Done(outcome));
        });
        jobs.insert(name.to_string(), job.clone());
        Ok(job)
    }
}

fn read_lines(pipe: impl AsyncRead + Unpin + Send + 'static, job: Arc<Job>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            job.push(strip_ansi(&line));
        }
    })
}

/// `line` without terminal escape sequences (colours, cursor moves).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The last run id (a UUID) in `line`.
fn last_run_id(line: &str) -> Option<String> {
    line.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')).filter(|t| uuid::Uuid::try_parse(t).is_ok() && t.len() == 36).last().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_and_escapes() {
        assert_eq!(last_run_id("verdict: trackiq gate 01a24d4a-006d-7026-a717-4e19a3ffa785   (a note)").as_deref(), Some("01a24d4a-006d-7026-a717-4e19a3ffa785"));
        assert_eq!(last_run_id("12 iterations, 3 ms"), None);
        assert_eq!(strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m done"), "2026  INFO done");
    }
}

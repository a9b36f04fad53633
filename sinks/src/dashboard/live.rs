//! Live updates: each summary and verdict the pipeline publishes becomes a [`LiveEvent`] on a
//! broadcast channel, sent to every open page as a server-sent event (`event: run`). A page
//! that falls behind skips what it missed (the next load shows it from the history) rather
//! than slowing the feed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use trackiq_schemas::AnyEvent;

use super::Dashboard;

/// Events kept for a slow page before it skips.
pub const FEED_CAPACITY: usize = 1024;

/// The sender side; cloned by whoever feeds it.
pub type LiveFeed = broadcast::Sender<LiveEvent>;

/// A new feed with no one listening yet.
pub fn feed() -> LiveFeed {
    broadcast::channel(FEED_CAPACITY).0
}

/// What a page is told about a run that was just summarised or judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// `summary` or `verdict`.
    pub kind: &'static str,
    pub run_id: String,
    pub series_id: String,
    pub workload: String,
    pub hardware: String,
    pub version: String,
    /// The first 12 characters of the commit measured, or empty.
    pub commit: String,
    /// The run's status (completed, failed, incomplete).
    pub status: String,
    /// The verdict's severity; empty for a summary.
    pub severity: String,
    /// When the run started (UTC), as the pages show it: `2026-12-05T07:45:31`.
    pub started: String,
}

impl LiveEvent {
    /// The live view of a summary or verdict; `None` for other events.
    pub fn of(event: &AnyEvent) -> Option<LiveEvent> {
        let (kind, summary, severity) = match event {
            AnyEvent::RunSummary(s) => ("summary", s.as_ref(), String::new()),
            AnyEvent::Verdict(v) => ("verdict", &v.summary, v.severity.as_str().to_string()),
            _ => return None,
        };
        let run = &summary.run;
        Some(LiveEvent {
            kind,
            run_id: run.run_id.clone(),
            series_id: run.series_id.clone(),
            workload: run.workload.name.clone(),
            hardware: run.platform.hardware_name.clone(),
            version: run.version.version_tag.clone().unwrap_or_default(),
            commit: run.version.git_commit.as_deref().unwrap_or_default().chars().take(12).collect(),
            status: summary.status.as_str().to_string(),
            severity,
            started: chrono::DateTime::from_timestamp_micros(run.timestamp).map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default(),
        })
    }
}

/// Whether the feed is connected to a pipeline; cloned by whoever feeds it.
#[derive(Debug, Clone, Default)]
pub struct Fed(Arc<std::sync::atomic::AtomicBool>);

impl Fed {
    pub fn set(&self, connected: bool) {
        self.0.store(connected, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `GET /events`: the feed as server-sent events; 503 when nothing feeds it (`trackiq ui`, or
/// the pipeline's follower stopped), so a page does not call itself live.
pub async fn events(State(d): State<Arc<Dashboard>>) -> Response {
    if !d.fed.get() {
        let why = "no live feed: this dashboard reads a history without a pipeline (trackiq ui), or the pipeline's feed stopped";
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")], why).into_response();
    }
    stream(&d).into_response()
}

fn stream(d: &Dashboard) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let rx = d.live.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let event = Event::default().event("run").json_data(&e).unwrap_or_else(|_| Event::default().comment("unencodable"));
                    return Some((Ok(event), rx));
                }
                // Too slow: what was missed is in the history; go on with what is new.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

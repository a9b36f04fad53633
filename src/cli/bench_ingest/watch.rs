//! Run end → summary → verdict → notification latency, as a fleet's on-call engineer sees
//! it: a reader of the summaries, verdicts and notifications topics (a stage of the
//! project's runtime, in its own consumer group) notes when each run's summary, verdict and
//! first delivered notification arrive; the generator says when each run ended
//! (`RunFinished.ended_at`, set just before it is sent).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use trackiq_infra::metrics::PipelineMetrics;
use trackiq_infra::runtime::{Effects, Input, Stage, StageContext, StageError, supervise};
use trackiq_infra::{Bus, Shutdown, ShutdownTrigger};
use trackiq_producers::load::FinishedRun;
use trackiq_schemas::{AnyEvent, NotificationStatus, NotifyReason, Topics};

/// Which result of a run arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrival {
    Summary,
    Verdict,
    /// A notification channel delivered a message about the run (its alert fired).
    Notification,
}

struct Tap {
    tx: mpsc::UnboundedSender<(Arrival, String, i64)>,
}

impl Stage for Tap {
    fn name(&self) -> &'static str {
        "bench-ingest-reader"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.summaries.clone(), topics.verdicts.clone(), topics.notifications.clone()]
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        let now = trackiq_schemas::now_us();
        let arrival = match input.event {
            AnyEvent::RunSummary(s) => Some((Arrival::Summary, s.run.run_id.clone())),
            AnyEvent::Verdict(v) => Some((Arrival::Verdict, v.run_id.clone())),
            // An alert that fired (or worsened) on this run, delivered.
            AnyEvent::Notification(n) if n.status == NotificationStatus::Sent && matches!(n.reason, NotifyReason::Firing | NotifyReason::Worse) => {
                Some((Arrival::Notification, n.run_id.clone()))
            }
            _ => None,
        };
        if let Some((kind, run)) = arrival {
            let _ = self.tx.send((kind, run, now));
        }
        Ok(Effects::done())
    }
}

/// Latencies of the runs the generator finished.
pub struct Watch {
    rx: mpsc::UnboundedReceiver<(Arrival, String, i64)>,
    ended: HashMap<String, i64>,
    /// Arrivals seen before the generator reported the run's end (the reader can be faster).
    early: Vec<(Arrival, String, i64)>,
    seen: HashMap<(Arrival, String), ()>,
    pub summary_ms: Vec<f64>,
    pub verdict_ms: Vec<f64>,
    /// Run end → its first delivered notification, for the runs whose alert fired.
    pub notification_ms: Vec<f64>,
    /// Every latency with its run's end (µs since the epoch), in arrival order.
    pub log: Vec<(i64, Arrival, f64)>,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl Watch {
    /// Starts reading both topics from their beginning in a new consumer group.
    pub fn start(bus: &Bus) -> Watch {
        let (tx, rx) = mpsc::unbounded_channel();
        let (trigger, shutdown) = Shutdown::new();
        let ctx = StageContext {
            bus: bus.clone(),
            metrics: PipelineMetrics::new(),
            group: format!("trackiq-bench-ingest-{}", uuid::Uuid::now_v7().simple()),
            stage: "bench-ingest-reader",
        };
        let make = move || {
            let tx = tx.clone();
            async move { Ok::<_, StageError>(Tap { tx }) }
        };
        let task = tokio::spawn(supervise(ctx, make, shutdown));
        Watch { rx, ended: HashMap::new(), early: Vec::new(), seen: HashMap::new(), summary_ms: Vec::new(), verdict_ms: Vec::new(), notification_ms: Vec::new(), log: Vec::new(), trigger, task }
    }

    /// A run the generator finished.
    pub fn ended(&mut self, run: FinishedRun) {
        self.ended.insert(run.run_id, run.ended_at_us);
    }

    /// Takes every arrival so far.
    pub fn drain(&mut self) {
        let mut arrivals = std::mem::take(&mut self.early);
        while let Ok(a) = self.rx.try_recv() {
            arrivals.push(a);
        }
        for (kind, run, at) in arrivals {
            let Some(&ended) = self.ended.get(&run) else {
                self.early.push((kind, run, at));
                continue;
            };
            // At-least-once: a replayed result is not a second latency.
            if self.seen.insert((kind, run), ()).is_some() {
                continue;
            }
            let ms = (at - ended) as f64 / 1000.0;
            self.log.push((ended, kind, ms));
            match kind {
                Arrival::Summary => self.summary_ms.push(ms),
                Arrival::Verdict => self.verdict_ms.push(ms),
                Arrival::Notification => self.notification_ms.push(ms),
            }
        }
    }

    /// Waits until every finished run has a verdict, at most `timeout`; true when all have.
    pub async fn settle(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.drain();
            if self.verdict_ms.len() >= self.ended.len() {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(arrival)) => self.early.push(arrival),
                Ok(None) | Err(_) => return false,
            }
        }
    }

    pub fn runs(&self) -> usize {
        self.ended.len()
    }

    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// The `q` quantile (0..1) of `v` by the nearest-rank rule; NaN when empty.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

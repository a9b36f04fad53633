//! The live side of `trackiq bench verdicts`: the workload (the built-in matrix multiply,
//! repeated an exact number of times per iteration) and a reader of the verdicts topic,
//! a stage of the project's runtime in its own consumer group.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use trackiq::stack::Stack;
use trackiq_infra::runtime::{Effects, Input, Stage, StageContext, StageError, supervise};
use trackiq_infra::{Shutdown, ShutdownTrigger};
use trackiq_producers::ProducerError;
use trackiq_producers::bench::Workload;
use trackiq_producers::workloads::MatmulWorkload;
use trackiq_schemas::{AnyEvent, Topics, Verdict};

/// The matrix multiply done `reps` times per iteration: work per iteration is exactly
/// proportional to `reps`.
#[derive(Clone)]
pub struct Repeated {
    inner: MatmulWorkload,
    reps: u32,
}

impl Repeated {
    pub fn new(n: usize, reps: u32) -> Self {
        Repeated { inner: MatmulWorkload::new(n), reps }
    }
}

impl Workload for Repeated {
    fn tool(&self) -> &'static str {
        "trackiq-bench-verdicts"
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        for _ in 0..self.reps {
            if let Some(failure) = self.inner.iterate().await? {
                return Ok(Some(failure));
            }
        }
        Ok(None)
    }
}

/// Hands every verdict read to a channel.
struct VerdictTap {
    tx: mpsc::UnboundedSender<Verdict>,
}

impl Stage for VerdictTap {
    fn name(&self) -> &'static str {
        "bench-verdicts-reader"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.verdicts.clone()]
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        if let AnyEvent::Verdict(v) = input.event {
            let _ = self.tx.send(*v);
        }
        Ok(Effects::done())
    }
}

/// The verdicts the live pipeline published, by run id.
pub struct Verdicts {
    rx: mpsc::UnboundedReceiver<Verdict>,
    got: HashMap<String, Verdict>,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl Verdicts {
    /// Starts reading the verdicts topic of `stack` from its beginning (a new consumer group).
    pub fn start(stack: &Stack) -> Verdicts {
        let (tx, rx) = mpsc::unbounded_channel();
        let (trigger, shutdown) = Shutdown::new();
        let ctx = StageContext {
            bus: stack.bus.clone(),
            metrics: stack.metrics.clone(),
            group: format!("trackiq-bench-verdicts-{}", uuid::Uuid::now_v7().simple()),
            stage: "bench-verdicts-reader",
        };
        let make = move || {
            let tx = tx.clone();
            async move { Ok::<_, StageError>(VerdictTap { tx }) }
        };
        let task = tokio::spawn(supervise(ctx, make, shutdown));
        Verdicts { rx, got: HashMap::new(), trigger, task }
    }

    /// Waits for the verdict of `run_id`, at most `timeout`.
    pub async fn wait_for(&mut self, stack: &Stack, run_id: &str, timeout: Duration) -> anyhow::Result<Verdict> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = self.got.get(run_id) {
                return Ok(v.clone());
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                // At-least-once: a verdict may come twice; the first is kept.
                Ok(Some(v)) => {
                    self.got.entry(v.run_id.clone()).or_insert(v);
                }
                Ok(None) => bail!("the verdicts reader stopped"),
                Err(_) => bail!("no verdict for run {run_id} within {timeout:?} (stages down: {:?})", stack.down_stages()),
            }
        }
    }

    /// Stops the reader.
    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

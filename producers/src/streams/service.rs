//! The telemetry service of `trackiq up`: scrape jobs and the OTLP receiver feed one task that
//! keeps every target's window ([`Windows`]); closed windows are published as runs (through
//! the importers' sender: RunStarted, samples, RunFinished, keyed by series) and a target that
//! stops answering as a `scrape_failed` detection on its open window's run, which alerts at
//! once and ends when that window is judged.

use std::time::Duration;

use trackiq_infra::bus::Producer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use trackiq_infra::Bus;
use trackiq_infra::metrics::PipelineMetrics;
use trackiq_schemas::{Detection, registry};

use super::config::{OtlpConfig, ScrapeJob};
use super::reading::{Observation, Target};
use super::window::{WindowRules, Windows};
use crate::error::ProducerError;
use crate::importers::ImportedRun;
use crate::importers::emit::send_runs_on;

/// What the readers send the windows task.
#[derive(Debug)]
pub enum Input {
    /// A target was read; `source` says whose windows it belongs to.
    Observed { source: Source, obs: Observation },
    /// A scrape target could not be read.
    Failed { source: Source, target: Target, at_us: i64, reason: String, down_after: u32 },
}

/// Where a reading came from: the scrape job of that index, or the OTLP receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Scrape(usize),
    Otlp,
}

/// The detector name of a target that stopped answering.
pub const SCRAPE_FAILED: &str = "scrape_failed";

/// Readings queued before the readers wait (back-pressure, not loss).
const QUEUE: usize = 4096;

/// What the service needs from the pipeline.
#[derive(Clone)]
pub struct Deps {
    pub bus: Bus,
    pub metrics: PipelineMetrics,
}

/// A running telemetry service.
pub struct Running {
    pub otlp_addr: Option<std::net::SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
}

impl Running {
    /// Stops the readers, publishes every open window as a (short) run, and returns.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

/// Starts the scrape jobs and (when enabled) the OTLP receiver on `otlp_listener`.
pub async fn start(jobs: &[ScrapeJob], otlp: &OtlpConfig, otlp_listener: Option<tokio::net::TcpListener>, deps: Deps) -> Result<Running, ProducerError> {
    for j in jobs {
        j.validate()?;
    }
    let stop = CancellationToken::new();
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut rules: Vec<(String, WindowRules)> = jobs
        .iter()
        .map(|j| (j.job.clone(), WindowRules { window_us: (j.window_secs * 1e6) as i64, max_samples: j.max_window_samples, tool: "prometheus" }))
        .collect();
    rules.push((String::new(), WindowRules { window_us: (otlp.window_secs * 1e6) as i64, max_samples: otlp.max_window_samples, tool: "otlp" }));
    let mut tasks = Vec::new();
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().map_err(|e| ProducerError::Telemetry(format!("building the scrape client: {e}")))?;
    for (i, j) in jobs.iter().enumerate() {
        tasks.extend(super::scrape::spawn_job(Source::Scrape(i), j, client.clone(), tx.clone(), stop.clone()));
    }
    let mut otlp_addr = None;
    if let Some(listener) = otlp_listener {
        otlp_addr = Some(listener.local_addr().map_err(|e| ProducerError::Telemetry(format!("the OTLP listener: {e}")))?);
        let receiver = super::otlp::Receiver::new(otlp, tx.clone())?;
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = super::otlp::serve(receiver, listener, s).await {
                warn!(error = %e, "the OTLP receiver stopped");
            }
        }));
    }
    drop(tx);
    if !jobs.is_empty() || otlp_addr.is_some() {
        info!(jobs = jobs.len(), targets = jobs.iter().map(|j| j.targets.len()).sum::<usize>(), otlp = ?otlp_addr, "telemetry in: scraping and receiving");
    }
    // The windows task ends when every reader has gone (the channel closes), after the stop.
    tasks.push(tokio::spawn(windows_task(rules, rx, deps)));
    Ok(Running { otlp_addr, tasks, stop })
}

/// The windows of every source; closed ones go to the publisher.
async fn windows_task(rules: Vec<(String, WindowRules)>, mut rx: mpsc::Receiver<Input>, deps: Deps) {
    let otlp = rules.len() - 1;
    let mut windows: Vec<Windows> = rules.into_iter().map(|(_, r)| Windows::new(r)).collect();
    let (pub_tx, pub_rx) = mpsc::channel::<Publish>(64);
    let publisher = tokio::spawn(publisher(pub_rx, deps.clone()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let input = tokio::select! {
            i = rx.recv() => i,
            _ = tick.tick() => {
                let now = trackiq_schemas::now_us();
                let closed: Vec<ImportedRun> = windows.iter_mut().flat_map(|w| w.close_due(now)).collect();
                if !closed.is_empty() {
                    let _ = pub_tx.send(Publish::Runs(closed)).await;
                }
                continue;
            }
        };
        // The readers are gone (stopped): what is open is published as short runs.
        let Some(input) = input else { break };
        match input {
            Input::Observed { source, obs } => {
                let i = match source {
                    Source::Scrape(i) => {
                        deps.metrics.reading("prometheus");
                        deps.metrics.scraped(&obs.target.job, &obs.target.instance, true);
                        i
                    }
                    Source::Otlp => {
                        deps.metrics.reading("otlp");
                        otlp
                    }
                };
                let closed = windows[i].observe(obs);
                if !closed.is_empty() {
                    let _ = pub_tx.send(Publish::Runs(closed)).await;
                }
            }
            Input::Failed { source, target, at_us, reason, down_after } => {
                deps.metrics.scraped(&target.job, &target.instance, false);
                let i = match source {
                    Source::Scrape(i) => i,
                    Source::Otlp => otlp,
                };
                let (closed, raised) = windows[i].failed(&target, at_us, &reason, down_after);
                // One warning per outage (when it raises), not one per failed scrape of every target.
                debug!(job = target.job, instance = target.instance, reason, "scrape failed");
                if !closed.is_empty() {
                    let _ = pub_tx.send(Publish::Runs(closed)).await;
                }
                if let Some(run_id) = raised {
                    let message = format!("{} target {} stopped answering ({down_after} scrapes in a row): {reason}", target.job, target.instance);
                    warn!(job = target.job, instance = target.instance, "{message}");
                    let now = trackiq_schemas::now_us();
                    let d = Detection { run_id, detector: SCRAPE_FAILED.into(), rank: None, step: None, event_ts: at_us, detected_at: now, value: f64::from(down_after), threshold: f64::from(down_after), message };
                    let _ = pub_tx.send(Publish::Detection(Box::new(d))).await;
                }
            }
        }
    }
    let now = trackiq_schemas::now_us();
    let closed: Vec<ImportedRun> = windows.iter_mut().flat_map(|w| w.close_all(now)).collect();
    let _ = pub_tx.send(Publish::Runs(closed)).await;
    drop(pub_tx);
    let _ = publisher.await;
}

enum Publish {
    Runs(Vec<ImportedRun>),
    Detection(Box<Detection>),
}

/// Publishes closed windows and detections, retrying while the broker is away (they wait in
/// memory; nothing is dropped). Windows closed meanwhile go out together, on one producer.
async fn publisher(mut rx: mpsc::Receiver<Publish>, deps: Deps) {
    let policy = trackiq_infra::runtime::RetryPolicy::default();
    let mut producer = None;
    while let Some(first) = rx.recv().await {
        let mut runs = Vec::new();
        let mut detections = Vec::new();
        let mut next = Some(first);
        while let Some(p) = next {
            match p {
                Publish::Runs(r) => runs.extend(r),
                Publish::Detection(d) => detections.push(d),
            }
            next = rx.try_recv().ok();
        }
        let mut delays = policy.delays();
        while !runs.is_empty() {
            let sent = async {
                let p = made(&mut producer, &deps.bus)?;
                send_runs_on(p, &deps.bus.topics().runs, &mut runs, |_| {}).await
            };
            match sent.await {
                Ok(()) => {
                    let otlp = runs.iter().filter(|r| r.run.tool == "otlp").count() as u64;
                    deps.metrics.windows_published("prometheus", runs.len() as u64 - otlp);
                    deps.metrics.windows_published("otlp", otlp);
                    runs.clear();
                }
                Err(e) => {
                    producer = None;
                    backoff(&mut delays, "publishing telemetry windows", &e).await;
                }
            }
        }
        for d in detections {
            loop {
                let sent = async {
                    let payload = registry().encode(d.as_ref())?;
                    trackiq_infra::bus::send(made(&mut producer, &deps.bus)?, &deps.bus.topics().detections, d.run_id.as_bytes(), &payload).await?;
                    Ok::<_, ProducerError>(())
                };
                match sent.await {
                    Ok(()) => break,
                    Err(e) => {
                        producer = None;
                        backoff(&mut delays, "publishing a scrape_failed detection", &e).await;
                    }
                }
            }
        }
    }
}

/// The publisher's producer, made on first use (and again after a failure dropped it).
fn made<'a>(producer: &'a mut Option<Producer>, bus: &Bus) -> Result<&'a Producer, ProducerError> {
    if producer.is_none() {
        *producer = Some(bus.ordered_producer()?);
    }
    Ok(producer.as_ref().expect("made above"))
}

/// Waits the next delay (exponential, with jitter, at most 30 s) after a failed try.
async fn backoff(delays: &mut impl Iterator<Item = Duration>, what: &str, e: &ProducerError) {
    let wait = delays.next().unwrap_or(Duration::from_secs(30));
    warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "{what} failed; retrying");
    tokio::time::sleep(wait).await;
}

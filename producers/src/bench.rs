//! The benchmark loop shared by every `trackiq bench` workload: warm-up, measured iterations
//! (by count or duration) driven closed-loop (N concurrent workers) or open-loop (Poisson
//! arrivals at a rate, the MLPerf Server / vLLM `--request-rate` model), one `latency_ms`
//! and one `iteration_failed` sample per iteration, hardware telemetry alongside, a progress
//! bar, and the run's end status. Failures are counted by reason and kept, never hidden.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use trackiq_infra::Bus;
use trackiq_schemas::{RunStatus, Sample};
use trackiq_stats::synthetic::Noise;

use crate::emitter::{Batching, RunEmitter};
use crate::error::ProducerError;
use crate::identity::{RunIdentity, run_started};
use crate::telemetry::Sampler;
use crate::telemetry::probe::{self, PROBE_METRIC};

/// Per-iteration sample of the items processed, when an iteration processes a batch.
pub const ITEMS_METRIC: &str = "batch_items";

/// How long a benchmark runs.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    Iterations(u64),
    Duration(Duration),
}

/// How iterations are started.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// `concurrency` workers, each starting its next iteration when the last one ends.
    Closed { concurrency: usize },
    /// Iterations start at Poisson arrival times, `rate` per second on average, whether or
    /// not earlier ones have ended; `seed` fixes the schedule.
    Open { rate: f64, seed: u64 },
}

/// One thing to benchmark; cloned once per concurrent worker.
pub trait Workload: Clone + Send + Sync + 'static {
    /// Producer name recorded in the run (`tool`).
    fn tool(&self) -> &'static str;
    /// Items one iteration processes (a batch), for throughput in items per second.
    fn items_per_iteration(&self) -> u64 {
        1
    }
    /// Runs one iteration. `Ok(Some(reason))` is a failed iteration (counted, measured);
    /// `Err` stops the benchmark.
    fn iterate(&mut self) -> impl std::future::Future<Output = Result<Option<String>, ProducerError>> + Send;
    /// Further samples the last iteration measured (metric, value, unit), e.g. TTFT.
    fn take_samples(&mut self) -> Vec<(&'static str, f64, &'static str)> {
        Vec::new()
    }
    /// Whether the work is done on this machine, so that this machine's power and energy
    /// (RAPL, NVML) are the work's. A client of a server elsewhere says no: its runs then
    /// carry no power readings, and no performance per watt is derived from the client's.
    fn power_is_local(&self) -> bool {
        true
    }
}

/// How a benchmark runs, whatever the workload.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Iterations run first and not measured.
    pub warmup: u64,
    pub stop: Stop,
    pub load: Load,
    /// Hardware telemetry period (zero: none).
    pub telemetry_interval: Duration,
    /// Show a progress bar.
    pub progress: bool,
}

impl BenchOptions {
    /// One worker after 2 warm-up iterations until `stop`, telemetry every 100 ms, no progress
    /// bar: runs driven by another command (demo, `bench verdicts`).
    pub fn in_process(stop: Stop) -> Self {
        BenchOptions { warmup: 2, stop, load: Load::Closed { concurrency: 1 }, telemetry_interval: Duration::from_millis(100), progress: false }
    }
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    pub run_id: String,
    pub iterations: u64,
    pub failures: u64,
    /// Failures by reason (e.g. `HTTP 500`, `timeout`).
    pub failure_reasons: BTreeMap<String, u64>,
    pub latencies_ms: Vec<f64>,
    pub wall: Duration,
    pub last_failure: Option<String>,
}

struct Done {
    ts_us: i64,
    ms: f64,
    failure: Option<String>,
    extra: Vec<(&'static str, f64, &'static str)>,
}

type Outcome = Result<Done, ProducerError>;

async fn timed<W: Workload>(w: &mut W) -> Outcome {
    let ts_us = trackiq_schemas::now_us();
    let t0 = Instant::now();
    let failure = w.iterate().await?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(Done { ts_us, ms, failure, extra: w.take_samples() })
}

/// Starts the iterations of `load` and sends each outcome to `tx`.
fn drive<W: Workload>(w: &W, load: Load, stop: Stop, tx: mpsc::UnboundedSender<Outcome>) {
    let started = Instant::now();
    let more = move |claimed: u64| match stop {
        Stop::Iterations(n) => claimed < n,
        Stop::Duration(d) => started.elapsed() < d,
    };
    match load {
        Load::Closed { concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency.max(1) {
                let (mut w, tx, next) = (w.clone(), tx.clone(), next.clone());
                tokio::spawn(async move {
                    while more(next.fetch_add(1, Ordering::SeqCst)) {
                        let r = timed(&mut w).await;
                        let stop = r.is_err();
                        if tx.send(r).is_err() || stop {
                            return;
                        }
                    }
                });
            }
        }
        Load::Open { rate, seed } => {
            let w = w.clone();
            tokio::spawn(async move {
                let mut noise = Noise::new(seed);
                let mut at = Duration::ZERO;
                let mut n = 0u64;
                while more(n) {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
                    if matches!(stop, Stop::Duration(d) if started.elapsed() >= d) {
                        break;
                    }
                    let (mut w, tx) = (w.clone(), tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(timed(&mut w).await);
                    });
                    n += 1;
                    // Exponential inter-arrival time with mean 1/rate.
                    at += Duration::from_secs_f64(-noise.uniform().ln() / rate);
                }
            });
        }
    }
}

/// The machine-speed probes of one end of a run, timed on a blocking thread.
async fn speed_probes() -> Result<Vec<f64>, ProducerError> {
    tokio::task::spawn_blocking(probe::probes).await.map_err(|e| ProducerError::Probe(e.to_string()))
}

/// Runs `w` and emits it as one run, with hardware telemetry sampled alongside.
pub async fn run_bench<W: Workload>(bus: &Bus, identity: &RunIdentity, w: &mut W, opts: &BenchOptions) -> Result<BenchOutcome, ProducerError> {
    if let Load::Open { rate, .. } = opts.load
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(ProducerError::Usage(format!("--rate must be a positive number of iterations per second, got {rate}")));
    }
    bus.check_reachable().await?;
    // Warm-up first: a workload that cannot start fails before any run is announced.
    for _ in 0..opts.warmup {
        w.iterate().await?;
    }
    // The machine's speed before the run (see `telemetry::probe`), off the runtime's workers.
    let probes_before = speed_probes().await?;
    let mut sampler = Sampler::start(opts.telemetry_interval, w.power_is_local());
    let mut run = run_started(w.tool(), identity);
    if let Some(s) = &sampler {
        if let Some(reason) = &s.gpu_off {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("GPU telemetry is off: {reason}; host telemetry continues"));
        }
        run.platform.gpus = s.gpus.clone();
        run.platform.driver = s.driver.clone();
        run.version.env_hash = trackiq_schemas::identity::env_hash(&run.platform);
    }
    let run_id = run.run_id.clone();
    let mut emitter = RunEmitter::start(bus, run, Batching::default()).await?;
    let bar = match (opts.progress, opts.stop) {
        (false, _) => ProgressBar::hidden(),
        (true, Stop::Iterations(n)) => ProgressBar::new(n),
        (true, Stop::Duration(d)) => ProgressBar::new(d.as_secs().max(1)),
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg}").expect("valid template"));
    let started = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    drive(w, opts.load, opts.stop, tx);
    let items = w.items_per_iteration();
    let mut out = BenchOutcome {
        run_id,
        iterations: 0,
        failures: 0,
        failure_reasons: BTreeMap::new(),
        latencies_ms: Vec::new(),
        wall: Duration::ZERO,
        last_failure: None,
    };
    // Every sender is dropped once the last iteration has reported: the loop then ends.
    while let Some(r) = rx.recv().await {
        let d = match r {
            Ok(d) => d,
            Err(e) => {
                if let Some(s) = sampler.take() {
                    s.stop();
                }
                emitter.finish(RunStatus::Failed, Some(e.to_string())).await?;
                return Err(e);
            }
        };
        let step = Some(out.iterations as i64);
        out.iterations += 1;
        let failed = d.failure.is_some();
        if let Some(f) = d.failure {
            out.failures += 1;
            *out.failure_reasons.entry(f.clone()).or_default() += 1;
            out.last_failure = Some(f);
        }
        out.latencies_ms.push(d.ms);
        let sample = |metric: &str, value: f64, unit: &str| Sample { ts_us: d.ts_us, metric: metric.into(), value, unit: unit.into(), rank: None, step };
        emitter.push(sample("latency_ms", d.ms, "ms")).await?;
        emitter.push(sample("iteration_failed", f64::from(u8::from(failed)), "bool")).await?;
        if items != 1 {
            emitter.push(sample(ITEMS_METRIC, items as f64, "items")).await?;
        }
        for (metric, value, unit) in &d.extra {
            emitter.push(sample(metric, *value, unit)).await?;
        }
        if let Some(s) = sampler.as_mut() {
            for t in s.drain() {
                emitter.push(t).await?;
            }
        }
        bar.set_message(format!("{:.2} ms, {} failed", d.ms, out.failures));
        bar.set_position(match opts.stop {
            Stop::Iterations(_) => out.iterations,
            Stop::Duration(_) => started.elapsed().as_secs(),
        });
    }
    bar.finish_and_clear();
    out.wall = started.elapsed();
    let now = trackiq_schemas::now_us();
    for ms in probes_before.into_iter().chain(speed_probes().await?) {
        emitter.push(Sample { ts_us: now, metric: PROBE_METRIC.into(), value: ms, unit: "ms".into(), rank: None, step: None }).await?;
    }
    if let Some(s) = sampler.take() {
        for t in s.stop() {
            emitter.push(t).await?;
        }
    }
    let last = out.last_failure.clone().unwrap_or_default();
    let (status, error) = match out.failures {
        0 => (RunStatus::Completed, None),
        f if f == out.iterations => (RunStatus::Failed, Some(format!("all {f} iterations failed (last: {last})"))),
        f => (RunStatus::Completed, Some(format!("{f} of {} iterations failed (last: {last})", out.iterations))),
    };
    emitter.finish(status, error).await?;
    Ok(out)
}

//! The benchmark loop shared by every `trackiq bench` workload: warm-up, measured iterations
//! (by count or duration), one `latency_ms` and one `iteration_failed` sample per iteration,
//! a progress bar, and the run's end status. Failures are counted and kept, never hidden.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use trackiq_infra::Bus;
use trackiq_schemas::{RunStatus, Sample};

use crate::emitter::{Batching, RunEmitter};
use crate::error::ProducerError;
use crate::identity::{RunIdentity, run_started};
use crate::telemetry::Sampler;

/// Per-iteration sample of the items processed, when an iteration processes a batch.
pub const ITEMS_METRIC: &str = "batch_items";

/// How long a benchmark runs.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    Iterations(u64),
    Duration(Duration),
}

/// One thing to benchmark.
pub trait Workload {
    /// Producer name recorded in the run (`tool`).
    fn tool(&self) -> &'static str;
    /// Items one iteration processes (a batch), for throughput in items per second.
    fn items_per_iteration(&self) -> u64 {
        1
    }
    /// Runs one iteration. `Ok(Some(reason))` is a failed iteration (counted, measured);
    /// `Err` stops the benchmark.
    fn iterate(&mut self) -> impl std::future::Future<Output = Result<Option<String>, ProducerError>>;
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    pub run_id: String,
    pub iterations: u64,
    pub failures: u64,
    pub latencies_ms: Vec<f64>,
    pub wall: Duration,
    pub last_failure: Option<String>,
}

/// How a benchmark runs, whatever the workload.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Iterations run first and not measured.
    pub warmup: u64,
    pub stop: Stop,
    /// Hardware telemetry period (zero: none).
    pub telemetry_interval: Duration,
    /// Show a progress bar.
    pub progress: bool,
}

/// Runs `w` and emits it as one run, with hardware telemetry sampled alongside.
pub async fn run_bench<W: Workload>(bus: &Bus, identity: &RunIdentity, w: &mut W, opts: &BenchOptions) -> Result<BenchOutcome, ProducerError> {
    let (stop, progress) = (opts.stop, opts.progress);
    bus.check_reachable().await?;
    // Warm-up first: a workload that cannot start fails before any run is announced.
    for _ in 0..opts.warmup {
        w.iterate().await?;
    }
    let mut sampler = Sampler::start(opts.telemetry_interval);
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
    let bar = match (progress, stop) {
        (false, _) => ProgressBar::hidden(),
        (true, Stop::Iterations(n)) => ProgressBar::new(n),
        (true, Stop::Duration(d)) => ProgressBar::new(d.as_secs().max(1)),
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg}").expect("valid template"));
    let started = Instant::now();
    let mut out = BenchOutcome { run_id, iterations: 0, failures: 0, latencies_ms: Vec::new(), wall: Duration::ZERO, last_failure: None };
    loop {
        match stop {
            Stop::Iterations(n) if out.iterations >= n => break,
            Stop::Duration(d) if started.elapsed() >= d => break,
            _ => {}
        }
        let ts = trackiq_schemas::now_us();
        let t0 = Instant::now();
        let failure = match w.iterate().await {
            Ok(f) => f,
            Err(e) => {
                if let Some(s) = sampler.take() {
                    s.stop();
                }
                emitter.finish(RunStatus::Failed, Some(e.to_string())).await?;
                return Err(e);
            }
        };
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let step = Some(out.iterations as i64);
        out.iterations += 1;
        let failed = failure.is_some();
        if failed {
            out.failures += 1;
            out.last_failure = failure;
        }
        out.latencies_ms.push(ms);
        emitter.push(Sample { ts_us: ts, metric: "latency_ms".into(), value: ms, unit: "ms".into(), rank: None, step }).await?;
        emitter
            .push(Sample { ts_us: ts, metric: "iteration_failed".into(), value: f64::from(u8::from(failed)), unit: "bool".into(), rank: None, step })
            .await?;
        if w.items_per_iteration() != 1 {
            let items = w.items_per_iteration() as f64;
            emitter.push(Sample { ts_us: ts, metric: ITEMS_METRIC.into(), value: items, unit: "items".into(), rank: None, step }).await?;
        }
        if let Some(s) = sampler.as_mut() {
            for t in s.drain() {
                emitter.push(t).await?;
            }
        }
        bar.set_message(format!("{ms:.2} ms, {} failed", out.failures));
        bar.set_position(match stop {
            Stop::Iterations(_) => out.iterations,
            Stop::Duration(_) => started.elapsed().as_secs(),
        });
    }
    bar.finish_and_clear();
    out.wall = started.elapsed();
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

//! Synthetic fleet load for `trackiq bench ingest`, modelled on Kafka's
//! `kafka-producer-perf-test`: `hosts × series_per_host` series, each streaming runs one
//! after another (`RunStarted`, sample batches, `RunFinished`, all under the series key as
//! real producers send them), at a target sample rate or flat out.
//!
//! A run's samples have the shapes benchmarks produce: per-iteration latency (log-normal
//! around the series' own level, with its iteration as step) and, every
//! `telemetry_every` samples, GPU power and temperature readings of the host. Batches are
//! built directly as [`SampleColumns`], the form every producer writes.
//!
//! Records are sent without waiting for each acknowledgement (up to `in_flight` records
//! are outstanding), so the generator measures the pipeline, not one round trip per record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, LogNormal, Normal};
use rdkafka::producer::FutureRecord;
use trackiq_infra::bus::Producer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trackiq_infra::Bus;
use trackiq_schemas::columns::{NONE, SampleColumns};
use trackiq_schemas::{RunFinished, RunStarted, RunStatus, registry};

use crate::error::ProducerError;
use crate::identity::{RunIdentity, run_started};

/// Tool name of the generated runs: they are easy to tell from real ones.
pub const LOAD_TOOL: &str = "trackiq-bench-ingest";
/// Latency metric of the generated runs (a catalog KPI).
const LATENCY: (&str, &str) = ("latency_ms", "ms");
/// Telemetry metrics of the generated runs (catalog telemetry), with mean and spread.
const TELEMETRY: [(&str, &str, f64, f64); 2] = [("gpu_power_watts", "W", 300.0, 5.0), ("gpu_temperature_celsius", "C", 65.0, 1.0)];

/// The shape of the simulated fleet.
#[derive(Debug, Clone)]
pub struct FleetShape {
    pub hosts: usize,
    pub series_per_host: usize,
    /// Samples of one run (its length).
    pub samples_per_run: usize,
    /// Samples per record at most.
    pub batch_samples: usize,
    /// One telemetry reading of each telemetry metric per this many samples (0: none).
    pub telemetry_every: usize,
    /// Every this many runs of a series (after its first [`REGRESSION_WARMUP_RUNS`]) is a
    /// regression, [`REGRESSION_FACTOR`] times slower: alerts fire and resolve as on a fleet
    /// (0: none).
    pub regress_every: usize,
}

/// Runs of a series before any regression: its baseline forms first.
pub const REGRESSION_WARMUP_RUNS: u64 = 6;
/// Latency of a regressed run against its series' level.
pub const REGRESSION_FACTOR: f64 = 1.3;

/// What to generate and how fast.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub shape: FleetShape,
    /// Samples per second over the whole fleet; `None` is flat out.
    pub rate: Option<f64>,
    /// Stop starting new work after this long.
    pub duration: Duration,
    /// Records sent and not yet acknowledged, at most.
    pub in_flight: usize,
    pub seed: u64,
}

/// Running totals, read by the reporter while the generator runs.
#[derive(Debug, Default)]
pub struct LoadCounters {
    /// Samples acknowledged by the broker.
    pub samples: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Runs whose `RunFinished` the broker acknowledged.
    pub runs: AtomicU64,
}

/// A run whose `RunFinished` was sent: when it ended, for run end → verdict latency.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub run_id: String,
    pub ended_at_us: i64,
    pub samples: i64,
}

/// One series: its identity and the run in progress.
struct Series {
    template: RunStarted,
    latency: LogNormal<f64>,
    /// The latency of a regressed run.
    slower: LogNormal<f64>,
    /// Runs started so far.
    runs: u64,
    /// The open run: its start, next batch number, samples sent, and whether it regresses.
    run: Option<(RunStarted, i64, i64, bool)>,
}

/// One record ready to send, and what it means once acknowledged.
struct Outgoing {
    key: String,
    payload: Vec<u8>,
    samples: u64,
    finished: Option<FinishedRun>,
}

impl Outgoing {
    /// A run's finish, stamped and encoded as it is handed to the producer: a benchmark
    /// sends its finish the moment it ends, and the time the generator itself waited for a
    /// free in-flight slot is not the pipeline's latency.
    fn finish(key: String, run_id: String, sample_count: i64) -> Result<Outgoing, ProducerError> {
        let ended_at = trackiq_schemas::now_us();
        let finish = RunFinished { run_id: run_id.clone(), status: RunStatus::Completed, ended_at, sample_count, error: None };
        Ok(Outgoing { key, payload: registry().encode(&finish)?, samples: 0, finished: Some(FinishedRun { run_id, ended_at_us: ended_at, samples: sample_count }) })
    }

    /// This record as it goes out now (a finish is stamped again).
    fn now(self) -> Result<Outgoing, ProducerError> {
        match self.finished {
            Some(f) => Outgoing::finish(self.key, f.run_id, f.samples),
            None => Ok(self),
        }
    }
}

/// Generates the plan's load until its duration is over or `stop` is cancelled, then
/// finishes every open run (so each gets a summary) and waits for every acknowledgement.
pub async fn generate(
    bus: &Bus,
    plan: &LoadPlan,
    counters: &LoadCounters,
    finished: mpsc::UnboundedSender<FinishedRun>,
    stop: CancellationToken,
) -> Result<(), ProducerError> {
    bus.check_reachable().await?;
    let producer = bus.producer()?;
    let topic = bus.topics().runs.clone();
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let mut fleet = fleet(&plan.shape, &mut rng)?;
    let telemetry: Vec<Normal<f64>> = TELEMETRY.iter().map(|(_, _, m, s)| Normal::new(*m, *s).expect("positive spread")).collect();
    let mut pending = FuturesUnordered::new();
    let started = Instant::now();
    let mut produced = 0u64;
    let mut next = 0usize;
    let mut closing = false;
    loop {
        if !closing && (stop.is_cancelled() || started.elapsed() >= plan.duration) {
            closing = true;
        }
        if closing && fleet.iter().all(|s| s.run.is_none()) {
            break;
        }
        if let (Some(rate), false) = (plan.rate, closing) {
            let due = started + Duration::from_secs_f64(produced as f64 / rate);
            if due > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = stop.cancelled() => continue,
                }
            }
        }
        let i = next % fleet.len();
        next += 1;
        let series = &mut fleet[i];
        if closing && series.run.is_none() {
            continue;
        }
        for out in next_records(series, &plan.shape, closing, &mut rng, &telemetry)? {
            produced += out.samples;
            while pending.len() >= plan.in_flight.max(1) {
                settle(pending.next().await, counters, &finished)?;
            }
            pending.push(send(&producer, &topic, out.now()?));
        }
    }
    while let Some(done) = pending.next().await {
        settle(Some(done), counters, &finished)?;
    }
    Ok(())
}

fn fleet(shape: &FleetShape, rng: &mut SmallRng) -> Result<Vec<Series>, ProducerError> {
    let mut fleet = Vec::with_capacity(shape.hosts * shape.series_per_host);
    for h in 0..shape.hosts {
        for s in 0..shape.series_per_host {
            let id = RunIdentity {
                workload: format!("ingest-s{s}"),
                workload_type: "inference".into(),
                hardware: Some(format!("host-{h:03}")),
                // Known, so that no run asks git for the working directory's commit.
                git_commit: Some("bench-ingest".into()),
                ..Default::default()
            };
            // Each series has its own latency level, 5-20 ms, and a 10 % spread.
            let level: f64 = 5.0 + 15.0 * rand::Rng::random::<f64>(rng);
            let spread = |level: f64| LogNormal::new(level.ln(), 0.1).map_err(|e| ProducerError::Usage(format!("latency distribution: {e}")));
            fleet.push(Series { template: run_started(LOAD_TOOL, &id), latency: spread(level)?, slower: spread(level * REGRESSION_FACTOR)?, runs: 0, run: None });
        }
    }
    Ok(fleet)
}

/// The next records of one series: a run start when none is open, one batch, and the
/// run's finish when it is complete (or when `closing`).
fn next_records(series: &mut Series, shape: &FleetShape, closing: bool, rng: &mut SmallRng, telemetry: &[Normal<f64>]) -> Result<Vec<Outgoing>, ProducerError> {
    let key = series.template.series_id.clone();
    let mut out = Vec::with_capacity(3);
    if series.run.is_none() {
        let mut run = series.template.clone();
        run.run_id = uuid::Uuid::now_v7().to_string();
        run.timestamp = trackiq_schemas::now_us();
        out.push(Outgoing { key: key.clone(), payload: registry().encode(&run)?, samples: 0, finished: None });
        let regresses = shape.regress_every > 0 && series.runs >= REGRESSION_WARMUP_RUNS && series.runs % shape.regress_every as u64 == 0;
        series.runs += 1;
        series.run = Some((run, 0, 0, regresses));
    }
    let (run, seq, sent, regresses) = series.run.as_mut().expect("a run is open");
    if !closing {
        let n = shape.batch_samples.min(shape.samples_per_run - *sent as usize).max(1);
        let latency = if *regresses { &series.slower } else { &series.latency };
        let columns = batch(&run.run_id, *seq, *sent, n, shape.telemetry_every, latency, telemetry, rng);
        *seq += 1;
        *sent += n as i64;
        out.push(Outgoing { key: key.clone(), payload: registry().encode_as("trackiq.SampleColumns", &columns)?, samples: n as u64, finished: None });
    }
    if closing || *sent as usize >= shape.samples_per_run {
        let (run, _, sent, _) = series.run.take().expect("a run is open");
        out.push(Outgoing::finish(key, run.run_id, sent)?);
    }
    Ok(out)
}

/// `n` samples of a run from its sample `first` on, as columns: one latency sample per
/// iteration, telemetry readings interleaved, timestamps 1 µs apart up to now.
#[allow(clippy::too_many_arguments)]
fn batch(run_id: &str, seq: i64, first: i64, n: usize, telemetry_every: usize, latency: &LogNormal<f64>, telemetry: &[Normal<f64>], rng: &mut SmallRng) -> SampleColumns {
    let mut c = SampleColumns {
        run_id: run_id.to_string(),
        seq,
        metrics: std::iter::once(LATENCY.0).chain(TELEMETRY.iter().map(|t| t.0)).map(String::from).collect(),
        units: std::iter::once(LATENCY.1).chain(TELEMETRY.iter().map(|t| t.1)).map(String::from).collect(),
        metric_index: Vec::with_capacity(n),
        ts_delta_us: Vec::with_capacity(n),
        values: Vec::with_capacity(n),
        ranks: Vec::new(),
        steps: Vec::with_capacity(n),
    };
    let start = trackiq_schemas::now_us() - n as i64;
    for i in 0..n {
        let index = first + i as i64;
        let reading = telemetry_every > 0 && index % telemetry_every as i64 == 0;
        let (metric, value, step) = if reading {
            let t = (index / telemetry_every as i64) as usize % telemetry.len();
            (1 + t as i32, telemetry[t].sample(rng), NONE)
        } else {
            (0, latency.sample(rng), index)
        };
        c.metric_index.push(metric);
        c.ts_delta_us.push(if i == 0 { start } else { 1 });
        c.values.push(value);
        c.steps.push(step);
    }
    c
}

type Delivery = (Result<(), ProducerError>, u64, usize, Option<FinishedRun>);

async fn send(producer: &Producer, topic: &str, out: Outgoing) -> Delivery {
    let record = FutureRecord::to(topic).key(out.key.as_bytes()).payload(&out.payload);
    let result = producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(e, _)| ProducerError::Infra(trackiq_infra::InfraError::Kafka { action: format!("producing to {topic}"), source: e }));
    (result, out.samples, out.payload.len(), out.finished)
}

fn settle(done: Option<Delivery>, counters: &LoadCounters, finished: &mpsc::UnboundedSender<FinishedRun>) -> Result<(), ProducerError> {
    let Some((result, samples, bytes, run)) = done else { return Ok(()) };
    result?;
    counters.samples.fetch_add(samples, Ordering::Relaxed);
    counters.records.fetch_add(1, Ordering::Relaxed);
    counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    if let Some(run) = run {
        counters.runs.fetch_add(1, Ordering::Relaxed);
        let _ = finished.send(run);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackiq_schemas::SampleBatch;

    #[test]
    fn a_batch_has_the_run_shape_and_decodes_as_samples() {
        let mut rng = SmallRng::seed_from_u64(7);
        let latency = LogNormal::new(10f64.ln(), 0.1).unwrap();
        let telemetry: Vec<Normal<f64>> = TELEMETRY.iter().map(|(_, _, m, s)| Normal::new(*m, *s).unwrap()).collect();
        let c = batch("0192f0c8-7a2b-7cde-8f00-0123456789ab", 2, 1000, 500, 100, &latency, &telemetry, &mut rng);
        let bytes = registry().encode_as("trackiq.SampleColumns", &c).unwrap();
        let AnyEvent::SampleBatch(b) = registry().decode_valid(&bytes).unwrap() else { panic!("not samples") };
        let b: SampleBatch = b;
        assert_eq!((b.seq, b.samples.len()), (2, 500));
        let readings = b.samples.iter().filter(|s| s.metric != "latency_ms").count();
        assert_eq!(readings, 5, "one reading per 100 samples");
        let lat: Vec<f64> = b.samples.iter().filter(|s| s.metric == "latency_ms").map(|s| s.value).collect();
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        assert!((9.0..11.0).contains(&mean), "latency around its level: {mean}");
        assert!(b.samples.windows(2).all(|w| w[1].ts_us == w[0].ts_us + 1));
        assert_eq!(b.samples[1].step, Some(1001));
        assert!(bytes.len() < 500 * 13, "{} bytes for 500 samples", bytes.len());
    }

    use trackiq_schemas::AnyEvent;
}

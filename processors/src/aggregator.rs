//! Aggregator: runs and samples in, one [`RunSummary`] per run out.
//!
//! A run is summarised when its `RunFinished` has arrived and all the samples it announces
//! have been received (records of one run share a partition number on both topics, but the
//! two topics are read independently, so samples may trail the `RunFinished`). A run that
//! stays open longer than the timeout is summarised with status `incomplete`.
//!
//! Offsets: a partition's offset is stored only up to just before the first record of any
//! run still open on it, so a crash replays every open run from its first record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use trackiq_infra::bus::{Next, OffsetStore, send};
use trackiq_infra::{Bus, Shutdown};
use trackiq_schemas::{
    AnyEvent, DerivedMetric, Histogram, MetricSummary, RunFinished, RunStarted, RunStatus, RunSummary, Sample, registry,
};

use crate::error::ProcessorError;
use trackiq_stats as stats;

/// Aggregator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Consumer group of the aggregator.
    pub group: String,
    /// A run with no `RunFinished` this many seconds after its last event is closed as `incomplete`.
    pub run_timeout_secs: u64,
    /// After `RunFinished`, how long to wait for announced samples still missing.
    pub finish_grace_secs: u64,
    /// Bins of the histogram kept for each metric in the summary.
    pub histogram_bins: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig { group: "trackiq-aggregator".into(), run_timeout_secs: 300, finish_grace_secs: 30, histogram_bins: 20 }
    }
}

type TopicPartition = (String, i32);

#[derive(Default)]
struct OpenRun {
    started: Option<RunStarted>,
    finished: Option<RunFinished>,
    finished_at: Option<Instant>,
    /// metric -> (unit, values)
    values: BTreeMap<String, (String, Vec<f64>)>,
    /// (first ts_us, last ts_us + duration) of latency samples, for throughput.
    latency_span_us: Option<(i64, i64)>,
    batches: HashSet<i64>,
    samples: i64,
    last_event: Option<Instant>,
    first_offsets: HashMap<TopicPartition, i64>,
}

/// Aggregation state, independent of Kafka so it can be tested directly.
#[derive(Default)]
pub struct Aggregation {
    config: AggregatorConfig,
    open: HashMap<String, OpenRun>,
    /// Offsets of the first record of each open run, per partition (a multiset).
    open_firsts: HashMap<TopicPartition, BTreeMap<i64, usize>>,
    /// Highest offset read per partition.
    read: HashMap<TopicPartition, i64>,
}

impl Aggregation {
    pub fn new(config: AggregatorConfig) -> Self {
        Aggregation { config, ..Default::default() }
    }

    /// Applies one decoded event read at `tp`/`offset`.
    pub fn apply(&mut self, tp: (&str, i32), offset: i64, event: AnyEvent, now: Instant) {
        let run_id = match &event {
            AnyEvent::RunStarted(e) => e.run_id.clone(),
            AnyEvent::SampleBatch(e) => e.run_id.clone(),
            AnyEvent::RunFinished(e) => e.run_id.clone(),
            _ => return,
        };
        self.mark_read(tp, offset);
        let tp_key = (tp.0.to_string(), tp.1);
        let run = self.open.entry(run_id).or_default();
        if !run.first_offsets.contains_key(&tp_key) {
            run.first_offsets.insert(tp_key.clone(), offset);
            *self.open_firsts.entry(tp_key).or_default().entry(offset).or_default() += 1;
        }
        run.last_event = Some(now);
        match event {
            AnyEvent::RunStarted(e) => run.started = Some(e),
            AnyEvent::RunFinished(e) => {
                run.finished = Some(e);
                run.finished_at = Some(now);
            }
            AnyEvent::SampleBatch(b) => {
                // At-least-once delivery may repeat a batch: count each sequence number once.
                if run.batches.insert(b.seq) {
                    for s in &b.samples {
                        add_sample(run, s);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records that `offset` was read without opening a run (e.g. a dead-lettered record).
    pub fn mark_read(&mut self, tp: (&str, i32), offset: i64) {
        let e = self.read.entry((tp.0.to_string(), tp.1)).or_insert(offset);
        *e = (*e).max(offset);
    }

    /// Runs ready to be summarised now, removed from the open set.
    pub fn take_ready(&mut self, now: Instant) -> Vec<RunSummary> {
        let timeout = Duration::from_secs(self.config.run_timeout_secs);
        let grace = Duration::from_secs(self.config.finish_grace_secs);
        let ready: Vec<(i64, String)> = self
            .open
            .iter()
            .filter(|(_, r)| match (&r.finished, r.finished_at) {
                (Some(f), Some(at)) => r.samples >= f.sample_count || now.duration_since(at) >= grace,
                _ => r.last_event.is_some_and(|t| now.duration_since(t) >= timeout),
            })
            .map(|(id, r)| (r.started.as_ref().map_or(i64::MAX, |s| s.timestamp), id.clone()))
            .collect();
        // Publish in start order: a series' baseline is the order of its summaries.
        let mut ready = ready;
        ready.sort();
        let ready: Vec<String> = ready.into_iter().map(|(_, id)| id).collect();
        let mut out = Vec::new();
        for id in ready {
            let run = self.open.remove(&id).expect("listed above");
            for (tp, off) in &run.first_offsets {
                if let Some(m) = self.open_firsts.get_mut(tp)
                    && let Some(c) = m.get_mut(off)
                {
                    *c -= 1;
                    if *c == 0 {
                        m.remove(off);
                    }
                }
            }
            match summarize_run(&id, run, self.config.histogram_bins, now) {
                Some(s) => out.push(s),
                None => warn!(run_id = %id, "dropping events of a run whose RunStarted was never read: it was summarised before this consumer's start position"),
            }
        }
        out
    }

    /// Offsets safe to store: per partition, just before the first record of any open run.
    pub fn safe_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.read
            .iter()
            .map(|(tp, &read)| {
                let first_open = self.open_firsts.get(tp).and_then(|m| m.keys().next().copied());
                (tp.clone(), first_open.map_or(read, |f| f - 1))
            })
            .filter(|(_, o)| *o >= 0)
            .collect()
    }

    /// Number of runs still open.
    pub fn open_runs(&self) -> usize {
        self.open.len()
    }
}

fn add_sample(run: &mut OpenRun, s: &Sample) {
    run.samples += 1;
    let entry = run.values.entry(s.metric.clone()).or_insert_with(|| (s.unit.clone(), Vec::new()));
    entry.1.push(s.value);
    if s.metric == LATENCY_METRIC {
        let end = s.ts_us + (s.value * 1000.0).round() as i64;
        run.latency_span_us = Some(match run.latency_span_us {
            Some((a, b)) => (a.min(s.ts_us), b.max(end)),
            None => (s.ts_us, end),
        });
    }
}

/// The per-iteration latency metric that throughput is derived from.
pub const LATENCY_METRIC: &str = "latency_ms";

fn summarize_run(run_id: &str, run: OpenRun, bins: usize, _now: Instant) -> Option<RunSummary> {
    let started = run.started?;
    let (status, ended_at, expected, mut error) = match &run.finished {
        Some(f) if run.samples >= f.sample_count => (f.status, f.ended_at, Some(f.sample_count), f.error.clone()),
        Some(f) => (
            RunStatus::Incomplete,
            f.ended_at,
            Some(f.sample_count),
            Some(format!("received {} of {} announced samples", run.samples, f.sample_count)),
        ),
        None => (RunStatus::Incomplete, trackiq_schemas::now_us(), None, Some("no RunFinished arrived before the run timeout".to_string())),
    };
    if let (Some(f), Some(e)) = (&run.finished, &mut error)
        && let Some(orig) = &f.error
        && !e.contains(orig.as_str())
    {
        e.push_str(&format!("; producer reported: {orig}"));
    }
    let mut metrics = Vec::new();
    for (metric, (unit, mut values)) in run.values {
        let Some(s) = stats::summarize(&mut values) else { continue };
        let histogram = (values.len() >= 2 && bins > 0).then(|| {
            let (edges, counts) = stats::histogram(&values, bins);
            Histogram { edges, counts }
        });
        metrics.push(MetricSummary {
            metric,
            unit,
            count: s.count as i64,
            mean: s.mean,
            stdev: s.stdev,
            min: s.min,
            p50: s.p50,
            p90: s.p90,
            p95: s.p95,
            p99: s.p99,
            max: s.max,
            histogram,
        });
    }
    let mut derived = Vec::new();
    if let Some((from, to)) = run.latency_span_us
        && let Some(lat) = metrics.iter().find(|m| m.metric == LATENCY_METRIC)
        && to > from
        && lat.count >= 2
    {
        derived.push(DerivedMetric { name: "throughput_per_sec".into(), value: lat.count as f64 / ((to - from) as f64 / 1e6), unit: "1/s".into() });
    }
    debug!(run_id, metrics = metrics.len(), "summarised run");
    Some(RunSummary { run: started, status, ended_at, sample_count: run.samples, expected_sample_count: expected, error, metrics, derived })
}

/// Runs the aggregator until `shutdown`.
pub async fn run(config: AggregatorConfig, bus: Bus, mut shutdown: Shutdown) -> Result<(), ProcessorError> {
    let topics = bus.topics().clone();
    let consumer: StreamConsumer = bus.consumer(&config.group, &[&topics.runs, &topics.samples])?;
    let producer: FutureProducer = bus.producer()?;
    let mut offsets = OffsetStore::default();
    let mut state = Aggregation::new(config);
    let group = state.config.group.clone();
    info!("aggregator started");
    loop {
        match bus.next(&consumer, &group, &mut shutdown, Duration::from_secs(1)).await {
            Next::Stop => break,
            Next::Idle => {}
            Next::Record(record) => {
                match registry().decode_any(&record.payload) {
                    Ok(ev @ (AnyEvent::RunStarted(_) | AnyEvent::RunFinished(_) | AnyEvent::SampleBatch(_))) => {
                        state.apply((&record.topic, record.partition), record.offset, ev, Instant::now());
                    }
                    Ok(other) => {
                        let reason = format!("unexpected event on {}: {}", record.topic, event_name(&other));
                        bus.dead_letter(&producer, &record, "aggregator", &reason).await?;
                        state.mark_read((&record.topic, record.partition), record.offset);
                    }
                    Err(e) => {
                        bus.dead_letter(&producer, &record, "aggregator", &e.to_string()).await?;
                        state.mark_read((&record.topic, record.partition), record.offset);
                    }
                }
            }
        }
        for summary in state.take_ready(Instant::now()) {
            let bytes = registry().encode(&summary)?;
            send(&producer, &topics.summaries, summary.run.series_id.as_bytes(), &bytes).await?;
            info!(run_id = %summary.run.run_id, status = summary.status.as_str(), samples = summary.sample_count, "published run summary");
        }
        for ((topic, partition), offset) in state.safe_offsets() {
            offsets.store(&consumer, &topic, partition, offset)?;
        }
    }
    offsets.commit(&consumer);
    info!(open_runs = state.open_runs(), "aggregator stopped");
    Ok(())
}

pub(crate) fn event_name(e: &AnyEvent) -> &'static str {
    match e {
        AnyEvent::RunStarted(_) => "RunStarted",
        AnyEvent::SampleBatch(_) => "SampleBatch",
        AnyEvent::RunFinished(_) => "RunFinished",
        AnyEvent::RunSummary(_) => "RunSummary",
        AnyEvent::Verdict(_) => "Verdict",
        AnyEvent::DeadLetter(_) => "DeadLetter",
    }
}

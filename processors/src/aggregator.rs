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
    AnyEvent, DerivedMetric, Detection, Histogram, MetricSummary, RunFinished, RunStarted, RunStatus, RunSummary, Sample, registry,
};

use crate::error::ProcessorError;
use crate::health::{CLUSTER_PREFIX, ClusterRun, DetectorConfig};
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
    /// A complete run waits this long before its summary is published, so that runs
    /// finishing close together (read from different partitions in any order) are published
    /// in the order they started: a series' baseline follows that order.
    pub reorder_ms: u64,
    /// Thresholds of the cluster-health detectors run on distributed-training samples.
    pub cluster: DetectorConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig { group: "trackiq-aggregator".into(), run_timeout_secs: 300, finish_grace_secs: 30, histogram_bins: 20, reorder_ms: 1500, cluster: DetectorConfig::default() }
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
    /// (metric, rank) -> (sum, count, max), for per-GPU figures.
    by_rank: HashMap<(String, i32), (f64, i64, f64)>,
    samples: i64,
    last_event: Option<Instant>,
    /// When the run was first seen complete (or timed out).
    complete_since: Option<Instant>,
    first_offsets: HashMap<TopicPartition, i64>,
    /// Detector state and samples of a distributed-training run.
    cluster: Option<ClusterRun>,
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
    /// Detections raised and not yet published.
    detections: Vec<Detection>,
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
            AnyEvent::RunStarted(e) => {
                if let Some(c) = run.cluster.as_mut() {
                    c.started(&e);
                }
                run.started = Some(e);
            }
            AnyEvent::RunFinished(e) => {
                run.finished = Some(e);
                run.finished_at = Some(now);
            }
            AnyEvent::SampleBatch(b) => {
                // At-least-once delivery may repeat a batch: count each sequence number once.
                if run.batches.insert(b.seq) {
                    for s in &b.samples {
                        add_sample(run, s);
                        if s.metric.starts_with(CLUSTER_PREFIX) {
                            let cluster = run.cluster.get_or_insert_with(|| {
                                let mut c = ClusterRun::new(self.config.cluster.clone(), &b.run_id);
                                if let Some(st) = &run.started {
                                    c.started(st);
                                }
                                c
                            });
                            self.detections.extend(cluster.observe(s, trackiq_schemas::now_us()));
                        }
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

    /// Runs ready to be summarised now, removed from the open set, in start order.
    pub fn take_ready(&mut self, now: Instant) -> Vec<RunSummary> {
        let timeout = Duration::from_secs(self.config.run_timeout_secs);
        let grace = Duration::from_secs(self.config.finish_grace_secs);
        let reorder = Duration::from_millis(self.config.reorder_ms);
        let start_of = |r: &OpenRun| r.started.as_ref().map_or(i64::MAX, |s| s.timestamp);
        let mut latest_due: Option<i64> = None;
        for r in self.open.values_mut() {
            let complete = match (&r.finished, r.finished_at) {
                (Some(f), Some(at)) => r.samples >= f.sample_count || now.duration_since(at) >= grace,
                _ => r.last_event.is_some_and(|t| now.duration_since(t) >= timeout),
            };
            if complete && r.complete_since.is_none() {
                r.complete_since = Some(now);
            }
            if r.complete_since.is_some_and(|t| now.duration_since(t) >= reorder) {
                latest_due = Some(latest_due.map_or(start_of(r), |l: i64| l.max(start_of(r))));
            }
        }
        let Some(latest_due) = latest_due else { return Vec::new() };
        // Every complete run that started no later than the latest due one goes out with it.
        let mut ready: Vec<(i64, String)> = self
            .open
            .iter()
            .filter(|(_, r)| r.complete_since.is_some() && start_of(r) <= latest_due)
            .map(|(id, r)| (start_of(r), id.clone()))
            .collect();
        ready.sort();
        let ready: Vec<String> = ready.into_iter().map(|(_, id)| id).collect();
        let mut out = Vec::new();
        for id in ready {
            let mut run = self.open.remove(&id).expect("listed above");
            if let Some(c) = run.cluster.as_mut() {
                let ended = run.finished.as_ref().map_or_else(trackiq_schemas::now_us, |f| f.ended_at);
                self.detections.extend(c.finish(ended, trackiq_schemas::now_us()));
            }
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
            match summarize_run(&id, run, self.config.histogram_bins) {
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

    /// Cluster-health detections raised since the last call, to publish.
    pub fn take_detections(&mut self) -> Vec<Detection> {
        std::mem::take(&mut self.detections)
    }

    /// Number of runs still open.
    pub fn open_runs(&self) -> usize {
        self.open.len()
    }
}

/// Unit of samples that mark events (heartbeats, injected faults) rather than measure something:
/// they are counted and archived, but get no metric summary.
pub const EVENT_UNIT: &str = "event";

fn add_sample(run: &mut OpenRun, s: &Sample) {
    run.samples += 1;
    if s.unit == EVENT_UNIT {
        return;
    }
    if let Some(rank) = s.rank {
        let e = run.by_rank.entry((s.metric.clone(), rank)).or_insert((0.0, 0, f64::MIN));
        *e = (e.0 + s.value, e.1 + 1, e.2.max(s.value));
    }
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
/// Items processed per iteration (a batch), when producers record it.
pub const ITEMS_METRIC: &str = "batch_items";

fn summarize_run(run_id: &str, run: OpenRun, bins: usize) -> Option<RunSummary> {
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
    if let Some(lat) = metrics.iter().find(|m| m.metric == LATENCY_METRIC)
        && lat.count >= 2
    {
        // The TrackIQ contract's canonical latency figures.
        for (name, v) in [("latency_p50_ms", lat.p50), ("latency_p95_ms", lat.p95), ("latency_p99_ms", lat.p99)] {
            derived.push(DerivedMetric { name: name.into(), value: v, unit: "ms".into() });
        }
        if let Some((from, to)) = run.latency_span_us
            && to > from
        {
            let secs = (to - from) as f64 / 1e6;
            derived.push(DerivedMetric { name: "throughput_per_sec".into(), value: lat.count as f64 / secs, unit: "1/s".into() });
            // Items: a batch per iteration where the producer says so, else one.
            let items = metrics.iter().find(|m| m.metric == ITEMS_METRIC).map_or(lat.count as f64, |m| m.mean * m.count as f64);
            derived.push(DerivedMetric { name: "throughput_samples_per_sec".into(), value: items / secs, unit: "items/s".into() });
            // LLM serving figures, as vLLM's `bench serve` reports them.
            let total = |name: &str| metrics.iter().find(|m| m.metric == name).map(|m| m.mean * m.count as f64);
            if let Some(tokens) = total("output_tokens") {
                derived.push(DerivedMetric { name: "tokens_per_sec".into(), value: tokens / secs, unit: "tokens/s".into() });
                derived.push(DerivedMetric { name: "request_throughput_per_sec".into(), value: lat.count as f64 / secs, unit: "requests/s".into() });
            }
            if let Some(good) = total("slo_met") {
                derived.push(DerivedMetric { name: "goodput_requests_per_sec".into(), value: good / secs, unit: "requests/s".into() });
            }
            if let Some(tpot) = metrics.iter().find(|m| m.metric == "tpot_ms") {
                derived.push(DerivedMetric { name: "decode_tpt_ms".into(), value: tpot.mean, unit: "ms".into() });
            }
        }
    }
    derived.extend(energy_figures(&metrics, &derived, &run.by_rank));
    let cluster = run.cluster.as_ref().and_then(|c| c.health(started.workload.batch_size)).map(|(health, figures)| {
        derived.extend(figures);
        health
    });
    debug!(run_id, metrics = metrics.len(), "summarised run");
    Some(RunSummary { run: started, status, ended_at, sample_count: run.samples, expected_sample_count: expected, error, metrics, derived, cluster })
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
                        let reason = format!("unexpected event on {}: {}", record.topic, other.name());
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
        let ready = state.take_ready(Instant::now());
        for d in state.take_detections() {
            send(&producer, &topics.detections, d.run_id.as_bytes(), &registry().encode(&d)?).await?;
            warn!(run_id = %d.run_id, detector = %d.detector, rank = ?d.rank, step = ?d.step, "{}", d.message);
        }
        for summary in ready {
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

/// Power, energy and efficiency of a run from its telemetry (nothing when none was read).
///
/// Power is the sum over GPUs of each GPU's mean power plus the CPU package's mean power;
/// energy the sum of every energy reading; per-step and per-item energy divide it by the
/// iterations and items; performance per watt is items per second over that power.
pub fn energy_figures(metrics: &[MetricSummary], derived: &[DerivedMetric], by_rank: &HashMap<(String, i32), (f64, i64, f64)>) -> Vec<DerivedMetric> {
    let m = |name: &str| metrics.iter().find(|x| x.metric == name);
    let d = |name: &str| derived.iter().find(|x| x.name == name).map(|x| x.value);
    let gpu_power: Option<f64> = {
        let per_gpu: Vec<f64> = by_rank.iter().filter(|((k, _), _)| k == "gpu_power_watts").map(|(_, (sum, n, _))| sum / *n as f64).collect();
        (!per_gpu.is_empty()).then(|| per_gpu.iter().sum())
    };
    let cpu_power = m("cpu_package_power_watts").map(|x| x.mean);
    let power = match (gpu_power, cpu_power) {
        (None, None) => None,
        (g, c) => Some(g.unwrap_or(0.0) + c.unwrap_or(0.0)),
    };
    let energy = ["gpu_energy_joules", "cpu_package_energy_joules"].iter().filter_map(|n| m(n)).map(|x| x.mean * x.count as f64).reduce(|a, b| a + b);
    let iterations = m(LATENCY_METRIC).map(|x| x.count as f64);
    let items = m(ITEMS_METRIC).map(|x| x.mean * x.count as f64).or(iterations);
    let mut out = Vec::new();
    let mut push = |name: &str, value: f64, unit: &str| {
        if value.is_finite() {
            out.push(DerivedMetric { name: name.into(), value, unit: unit.into() });
        }
    };
    if let Some(p) = power {
        push("power_consumption_watts", p, "W");
        if let Some(thr) = d("throughput_samples_per_sec") {
            push("performance_per_watt", thr / p, "items/s/W");
        }
    }
    if let Some(e) = energy {
        push("energy_joules", e, "J");
        if let Some(n) = iterations.filter(|n| *n > 0.0) {
            push("energy_per_step_joules", e / n, "J");
        }
        if let Some(n) = items.filter(|n| *n > 0.0) {
            push("energy_per_item_joules", e / n, "J");
        }
    }
    if let Some(t) = m("gpu_temperature_celsius") {
        push("temperature_celsius", t.mean, "C");
        push("temperature_max_celsius", t.max, "C");
    }
    if let Some(r) = m("process_rss_mib") {
        push("peak_memory_mib", r.max, "MiB");
    }
    if let Some(g) = m("gpu_memory_used_mib") {
        push("peak_gpu_memory_mib", g.max, "MiB");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trackiq_schemas::{Platform, SampleBatch, VersionInfo, Workload};

    use super::*;

    fn started(id: &str, ts: i64) -> RunStarted {
        RunStarted {
            run_id: id.into(),
            tool: "t".into(),
            tool_version: "0".into(),
            timestamp: ts,
            platform: Platform::default(),
            workload: Workload::default(),
            version: VersionInfo::default(),
            labels: BTreeMap::new(),
            series_id: "s".into(),
        }
    }

    fn batch(id: &str, seq: i64, values: &[f64]) -> AnyEvent {
        let samples = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample { ts_us: 1_000_000 + (seq * 2 + i as i64) * 10_000, metric: LATENCY_METRIC.into(), value: v, unit: "ms".into(), rank: None, step: None })
            .collect();
        AnyEvent::SampleBatch(SampleBatch { run_id: id.into(), seq, samples })
    }

    fn finished(id: &str, n: i64) -> AnyEvent {
        AnyEvent::RunFinished(RunFinished { run_id: id.into(), status: RunStatus::Completed, ended_at: 9, sample_count: n, error: None })
    }

    #[test]
    fn summary_waits_for_announced_samples_and_ignores_repeated_batches() {
        let mut a = Aggregation::new(AggregatorConfig { reorder_ms: 0, ..Default::default() });
        let now = Instant::now();
        a.apply(("runs", 0), 0, AnyEvent::RunStarted(started("r", 5)), now);
        a.apply(("samples", 0), 0, batch("r", 0, &[1.0, 2.0]), now);
        a.apply(("runs", 0), 1, finished("r", 4), now);
        assert!(a.take_ready(now).is_empty(), "2 of 4 samples: not ready");
        a.apply(("samples", 0), 1, batch("r", 0, &[1.0, 2.0]), now); // a redelivered batch
        assert!(a.take_ready(now).is_empty());
        a.apply(("samples", 0), 2, batch("r", 1, &[3.0, 4.0]), now);
        let s = a.take_ready(now).pop().expect("ready");
        assert_eq!(s.status, RunStatus::Completed);
        let m = &s.metrics[0];
        // numpy: np.percentile([1,2,3,4], [50, 99]) -> [2.5, 3.97]
        assert_eq!((m.count, m.mean, m.p50), (4, 2.5, 2.5));
        assert!((m.p99 - 3.97).abs() < 1e-12);
        // 4 iterations from t=1.00 s to t=1.03 s + 4 ms.
        let thr = s.derived.iter().find(|d| d.name == "throughput_per_sec").unwrap().value;
        assert!((thr - 4.0 / 0.034).abs() < 1e-9, "{thr}");
        let get = |n: &str| s.derived.iter().find(|d| d.name == n).unwrap().value;
        assert_eq!(get("throughput_samples_per_sec"), thr, "one item per iteration");
        assert!((get("latency_p99_ms") - 3.97).abs() < 1e-12);
        assert_eq!(a.open_runs(), 0);
    }

    #[test]
    fn power_energy_and_efficiency_come_from_telemetry() {
        let mut a = Aggregation::new(AggregatorConfig { reorder_ms: 0, ..Default::default() });
        let now = Instant::now();
        a.apply(("runs", 0), 0, AnyEvent::RunStarted(started("p", 5)), now);
        a.apply(("samples", 0), 0, batch("p", 0, &[10.0, 10.0]), now);
        let t = |metric: &str, value: f64, rank: Option<i32>| Sample { ts_us: 1_000_000, metric: metric.into(), value, unit: "".into(), rank, step: None };
        let telemetry = vec![
            t("gpu_power_watts", 100.0, Some(0)), t("gpu_power_watts", 300.0, Some(0)), // GPU 0: mean 200 W
            t("gpu_power_watts", 50.0, Some(1)),                                          // GPU 1: mean 50 W
            t("gpu_energy_joules", 30.0, Some(0)), t("gpu_energy_joules", 10.0, Some(1)),
            t("gpu_temperature_celsius", 60.0, Some(0)), t("gpu_temperature_celsius", 70.0, Some(1)),
        ];
        a.apply(("samples", 0), 1, AnyEvent::SampleBatch(SampleBatch { run_id: "p".into(), seq: 1, samples: telemetry }), now);
        a.apply(("runs", 0), 1, finished("p", 9), now);
        let s = a.take_ready(now).pop().unwrap();
        let get = |n: &str| s.derived.iter().find(|d| d.name == n).unwrap_or_else(|| panic!("{n} missing: {:?}", s.derived)).value;
        assert_eq!(get("power_consumption_watts"), 250.0);
        assert_eq!(get("energy_joules"), 40.0);
        assert_eq!(get("energy_per_step_joules"), 20.0, "two iterations");
        assert_eq!((get("temperature_celsius"), get("temperature_max_celsius")), (65.0, 70.0));
        assert!((get("performance_per_watt") - get("throughput_samples_per_sec") / 250.0).abs() < 1e-12);
    }

    #[test]
    fn no_telemetry_means_no_power_figures() {
        let derived = energy_figures(&[], &[], &HashMap::new());
        assert!(derived.is_empty(), "nothing is estimated: {derived:?}");
    }

    #[test]
    fn offsets_stay_before_open_runs() {
        let mut a = Aggregation::new(AggregatorConfig { reorder_ms: 0, ..Default::default() });
        let now = Instant::now();
        a.apply(("runs", 0), 10, AnyEvent::RunStarted(started("a", 1)), now);
        a.apply(("runs", 0), 11, AnyEvent::RunStarted(started("b", 2)), now);
        a.apply(("runs", 0), 12, finished("b", 0), now);
        assert_eq!(a.take_ready(now).len(), 1);
        let safe: HashMap<_, _> = a.safe_offsets().into_iter().collect();
        assert_eq!(safe[&("runs".to_string(), 0)], 9, "run a is open from offset 10");
        a.apply(("runs", 0), 13, finished("a", 0), now);
        a.take_ready(now);
        let safe: HashMap<_, _> = a.safe_offsets().into_iter().collect();
        assert_eq!(safe[&("runs".to_string(), 0)], 13);
    }

    #[test]
    fn missing_samples_or_finish_close_the_run_as_incomplete() {
        let cfg = AggregatorConfig { run_timeout_secs: 10, finish_grace_secs: 5, reorder_ms: 0, ..Default::default() };
        let mut a = Aggregation::new(cfg);
        let t0 = Instant::now();
        a.apply(("runs", 0), 0, AnyEvent::RunStarted(started("x", 1)), t0);
        a.apply(("runs", 0), 1, finished("x", 3), t0);
        a.apply(("runs", 1), 0, AnyEvent::RunStarted(started("y", 2)), t0);
        let s = a.take_ready(t0 + Duration::from_secs(6));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].status, RunStatus::Incomplete);
        assert_eq!(s[0].error.as_deref(), Some("received 0 of 3 announced samples"));
        let s = a.take_ready(t0 + Duration::from_secs(11));
        assert_eq!((s[0].run.run_id.as_str(), s[0].status), ("y", RunStatus::Incomplete));
    }

    #[test]
    fn a_run_completing_just_after_a_later_one_is_still_published_first() {
        let mut a = Aggregation::new(AggregatorConfig { reorder_ms: 1000, ..Default::default() });
        let t0 = Instant::now();
        a.apply(("runs", 0), 0, AnyEvent::RunStarted(started("later", 20)), t0);
        a.apply(("runs", 0), 1, finished("later", 0), t0);
        assert!(a.take_ready(t0).is_empty(), "waits for the reorder window");
        a.apply(("runs", 1), 0, AnyEvent::RunStarted(started("earlier", 10)), t0 + Duration::from_millis(400));
        a.apply(("runs", 1), 1, finished("earlier", 0), t0 + Duration::from_millis(400));
        assert!(a.take_ready(t0 + Duration::from_millis(400)).is_empty());
        let order: Vec<_> = a.take_ready(t0 + Duration::from_millis(1000)).into_iter().map(|s| s.run.run_id).collect();
        assert_eq!(order, ["earlier", "later"]);
    }

    #[test]
    fn runs_ready_together_are_published_in_start_order() {
        let mut a = Aggregation::new(AggregatorConfig { reorder_ms: 0, ..Default::default() });
        let now = Instant::now();
        for (i, (id, ts)) in [("late", 30), ("early", 10), ("mid", 20)].into_iter().enumerate() {
            a.apply(("runs", i as i32), 0, AnyEvent::RunStarted(started(id, ts)), now);
            a.apply(("runs", i as i32), 1, finished(id, 0), now);
        }
        let order: Vec<_> = a.take_ready(now).into_iter().map(|s| s.run.run_id).collect();
        assert_eq!(order, ["early", "mid", "late"]);
    }
}

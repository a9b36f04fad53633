//! Aggregator: a run's events in, one [`RunSummary`] per run out.
//!
//! A run's events (`RunStarted`, `SampleBatch`es, `RunFinished`) share its series' key and so
//! one partition of the runs topic, in the order the producer sent them: when `RunFinished`
//! arrives, every sample it announces has been read, and the run is summarised at once; a
//! series' runs finish, and so are summarised, in the order they ran.
//! (Producers before this contract sent samples to their own topic, still read: a run whose
//! announced samples are missing waits `finish_grace_secs` for them.) A run that stays open
//! longer than the timeout is summarised with status `incomplete`.
//!
//! Offsets: a run's first record on its partition is held until the run's summary is
//! acknowledged by the broker; the runtime stores a partition's offset only up to its oldest
//! held record, so a crash replays each open run from its first record. For the same reason
//! a partition moved to another instance needs no hand-over: its open runs are dropped here
//! ([`Aggregation::drop_partitions`]) and rebuilt there by the replay, which starts at or
//! before the first record of the oldest of them.
//!
//! Memory: per open run and metric, at most `exact_samples_per_metric` values (80 KB at the
//! default), then a DDSketch of at most 64 KiB (percentiles within 1 % relative error); plus
//! its first record's position. A run's memory is flat in its length.

mod energy;
mod summarize;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};
use trackiq_infra::runtime::{Effects, Input, Position, Stage, StageError};
use trackiq_schemas::{AnyEvent, Detection, RunFinished, RunStarted, RunSummary, Topics};
use trackiq_stats::ValueAccumulator;

use crate::health::{CLUSTER_PREFIX, ClusterRun, DetectorConfig};
pub use energy::energy_figures;
pub use summarize::{DERIVED_FROM_SAMPLES, EVENT_UNIT, ITEMS_METRIC, LATENCY_METRIC};

/// Aggregator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Consumer group of the aggregator.
    pub group: String,
    /// A run with no `RunFinished` this many seconds after its last event is closed as `incomplete`.
    pub run_timeout_secs: u64,
    /// After `RunFinished`, how long to wait for announced samples still missing (only
    /// samples sent on the legacy samples topic can still arrive then).
    pub finish_grace_secs: u64,
    /// Bins of the histogram kept for each metric in the summary.
    pub histogram_bins: usize,
    /// Values of one metric of one run kept exactly (8 bytes each); beyond, percentiles
    /// come from a DDSketch with 1 % relative error and at most 64 KiB per metric.
    pub exact_samples_per_metric: usize,
    /// Thresholds of the cluster-health detectors run on distributed-training samples.
    pub cluster: DetectorConfig,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            group: "trackiq-aggregator".into(),
            run_timeout_secs: 300,
            finish_grace_secs: 30,
            histogram_bins: 20,
            exact_samples_per_metric: 10_000,
            cluster: DetectorConfig::default(),
        }
    }
}

#[derive(Default)]
pub(crate) struct OpenRun {
    started: Option<RunStarted>,
    finished: Option<RunFinished>,
    finished_at: Option<Instant>,
    /// Values kept exactly per metric before a sketch takes over.
    exact_limit: usize,
    /// metric -> (unit, values)
    values: BTreeMap<String, (String, ValueAccumulator)>,
    /// (first ts_us, last ts_us + duration) of latency samples, for throughput.
    latency_span_us: Option<(i64, i64)>,
    batches: HashSet<i64>,
    /// (metric, rank) -> (sum, count, max), for per-GPU figures.
    by_rank: HashMap<(String, i32), (f64, i64, f64)>,
    samples: i64,
    last_event: Option<Instant>,
    /// The run's first record on each partition it was read from, held until its summary is
    /// published (at most two: the runs topic and the legacy samples topic).
    positions: Vec<Position>,
    /// Detector state and samples of a distributed-training run.
    cluster: Option<ClusterRun>,
}

/// Aggregation state, independent of Kafka so it can be tested directly.
#[derive(Default)]
pub struct Aggregation {
    config: AggregatorConfig,
    open: HashMap<String, OpenRun>,
    /// Detections raised and not yet published.
    detections: Vec<Detection>,
}

/// A run ready to publish, with the records it was built from.
pub struct Closed {
    /// None for a run whose `RunStarted` was never read.
    pub summary: Option<RunSummary>,
    pub positions: Vec<Position>,
}

impl Aggregation {
    pub fn new(config: AggregatorConfig) -> Self {
        Aggregation { config, ..Default::default() }
    }

    /// Applies one run event read at `position`: `Some(true)` when the record is held until
    /// the run is summarised (the run's first record on its partition: the watermark cannot
    /// pass it, so later records of the run need no holding), `Some(false)` when it is done,
    /// `None` for events that are not a run's.
    pub fn apply(&mut self, position: Position, event: AnyEvent, now: Instant) -> Option<bool> {
        let run_id = match &event {
            AnyEvent::RunStarted(e) => e.run_id.clone(),
            AnyEvent::SampleBatch(e) => e.run_id.clone(),
            AnyEvent::RunFinished(e) => e.run_id.clone(),
            _ => return None,
        };
        let exact_limit = self.config.exact_samples_per_metric;
        let run = self.open.entry(run_id).or_insert_with(|| OpenRun { exact_limit, ..Default::default() });
        let first_here = !run.positions.iter().any(|p| p.topic == position.topic && p.partition == position.partition);
        if first_here {
            run.positions.push(position);
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
                        summarize::add_sample(run, s);
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
        Some(first_here)
    }

    /// Runs ready to be summarised now, removed from the open set, in start order.
    pub fn take_ready(&mut self, now: Instant) -> Vec<Closed> {
        let timeout = Duration::from_secs(self.config.run_timeout_secs);
        let grace = Duration::from_secs(self.config.finish_grace_secs);
        let start_of = |r: &OpenRun| r.started.as_ref().map_or(i64::MAX, |s| s.timestamp);
        let mut ready: Vec<(i64, String)> = self
            .open
            .iter()
            .filter(|(_, r)| match (&r.finished, r.finished_at) {
                (Some(f), Some(at)) => r.samples >= f.sample_count || now.duration_since(at) >= grace,
                _ => r.last_event.is_some_and(|t| now.duration_since(t) >= timeout),
            })
            .map(|(id, r)| (start_of(r), id.clone()))
            .collect();
        ready.sort();
        let mut out = Vec::new();
        for (_, id) in ready {
            let mut run = self.open.remove(&id).expect("listed above");
            if let Some(c) = run.cluster.as_mut() {
                let ended = run.finished.as_ref().map_or_else(trackiq_schemas::now_us, |f| f.ended_at);
                self.detections.extend(c.finish(ended, trackiq_schemas::now_us()));
            }
            let positions = std::mem::take(&mut run.positions);
            // One run's bad data must not lose the others taken with it: a panic costs that run's summary.
            let bins = self.config.histogram_bins;
            let summary = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| summarize::summarize_run(&id, run, bins)))
                .unwrap_or_else(|_| {
                    error!(run_id = %id, "summarising the run panicked: released without a summary");
                    None
                });
            if summary.is_none() {
                warn!(run_id = %id, "no summary for this run (its RunStarted was never read, or summarising failed); its records are released");
            }
            out.push(Closed { summary, positions });
        }
        out
    }

    /// Cluster-health detections raised since the last call, to publish.
    pub fn take_detections(&mut self) -> Vec<Detection> {
        std::mem::take(&mut self.detections)
    }

    /// Forgets the open runs read from any of `revoked` (topic, partition), without a summary:
    /// their first records were held, so the partition's committed offset is at or before
    /// them and whoever owns the partition next reads them again. Returns how many.
    pub fn drop_partitions(&mut self, revoked: &[(String, i32)]) -> usize {
        let before = self.open.len();
        self.open.retain(|_, run| !run.positions.iter().any(|p| revoked.iter().any(|(t, n)| *t == p.topic && *n == p.partition)));
        before - self.open.len()
    }

    /// Number of runs still open.
    pub fn open_runs(&self) -> usize {
        self.open.len()
    }
}

/// The aggregator as a stage of the runtime.
pub struct AggregatorStage {
    state: Aggregation,
    topics: Topics,
}

impl AggregatorStage {
    pub fn new(config: AggregatorConfig, topics: Topics) -> Self {
        AggregatorStage { state: Aggregation::new(config), topics }
    }

    /// Detections at once, then closed runs' summaries; their records are released once
    /// the summaries are published.
    fn outputs(&mut self, now: Instant) -> Result<Effects, StageError> {
        let mut effects = Effects::done();
        for d in self.state.take_detections() {
            warn!(run_id = %d.run_id, detector = %d.detector, rank = ?d.rank, step = ?d.step, "{}", d.message);
            effects.publish(&self.topics.detections, d.run_id.as_bytes(), &d)?;
        }
        for closed in self.state.take_ready(now) {
            if let Some(s) = &closed.summary {
                info!(run_id = %s.run.run_id, status = s.status.as_str(), samples = s.sample_count, "run summarised");
                if let Err(e) = effects.publish(&self.topics.summaries, s.run.series_id.as_bytes(), s) {
                    error!(run_id = %s.run.run_id, error = %e, "the summary could not be encoded; its records are released");
                }
            }
            effects.release.extend(closed.positions);
        }
        Ok(effects)
    }
}

impl Stage for AggregatorStage {
    fn name(&self) -> &'static str {
        "aggregator"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.runs.clone(), topics.samples.clone()]
    }

    async fn handle(&mut self, input: Input, now: Instant) -> Result<Effects, StageError> {
        let name = input.event.name();
        let Some(held) = self.state.apply(input.position.clone(), input.event, now) else {
            return Err(StageError::Permanent(format!("unexpected {name} on {}: the aggregator reads run events only", input.position.topic)));
        };
        let mut effects = self.outputs(now)?;
        effects.hold_input = held;
        Ok(effects)
    }

    async fn tick(&mut self, now: Instant) -> Result<Effects, StageError> {
        self.outputs(now)
    }

    /// Open runs of revoked partitions are dropped (see the module doc). A run that was also
    /// read from a partition kept here (the legacy samples topic) keeps that record
    /// outstanding until a restart replays it: offsets stay behind, nothing is lost.
    async fn partitions_changed(&mut self, _assigned: &[(String, i32)], revoked: &[(String, i32)]) -> Result<(), StageError> {
        let dropped = self.state.drop_partitions(revoked);
        if dropped > 0 {
            info!(runs = dropped, "open runs of revoked partitions dropped; their new owner replays them");
        }
        Ok(())
    }
}

//! Verdict: each [`RunSummary`] judged against the last N summaries of its series.
//!
//! The baseline state is a function of the summaries topic alone, read in partition order
//! (all summaries of a series share a partition, keyed by series_id). At start-up the
//! processor re-reads the topic up to its group's committed offsets to rebuild that state
//! without emitting, then goes on from there; so verdicts never depend on how far the
//! archiver has got, and replaying the log gives the same verdicts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use trackiq_infra::bus::{Next, OffsetStore, send};
use trackiq_infra::{Bus, InfraError, Shutdown};
use trackiq_schemas::metrics::direction_of;
use trackiq_schemas::{MetricVerdict, RunStatus, RunSummary, Severity, Verdict, registry};

use crate::error::ProcessorError;
use trackiq_stats::{PercentageModel, judge_percentage};

/// Verdict settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictConfig {
    /// Consumer group of the verdict processor.
    pub group: String,
    /// Baseline: the last this-many completed summaries of the same series.
    pub window: usize,
    /// Fewer baseline runs than this give `insufficient_data`.
    pub min_baseline: usize,
    /// Change in the bad direction above this percentage warns.
    pub warn_pct: f64,
    /// Change in the bad direction above this percentage blocks.
    pub block_pct: f64,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig { group: "trackiq-verdict".into(), window: 10, min_baseline: 3, warn_pct: 5.0, block_pct: 10.0 }
    }
}

#[derive(Default)]
struct Series {
    /// metric -> (run start, value) of the latest `window` completed runs, by start time.
    history: HashMap<String, VecDeque<(i64, f64)>>,
    judged: HashSet<String>,
}

/// Baselines of every series, Kafka-free.
pub struct Baselines {
    config: VerdictConfig,
    series: HashMap<String, Series>,
}

/// The figures of a summary that are judged: each metric's mean and each derived figure.
pub fn judged_values(s: &RunSummary) -> Vec<(String, f64)> {
    s.metrics.iter().map(|m| (m.metric.clone(), m.mean)).chain(s.derived.iter().map(|d| (d.name.clone(), d.value))).collect()
}

impl Baselines {
    pub fn new(config: VerdictConfig) -> Self {
        Baselines { config, series: HashMap::new() }
    }

    /// Judges a summary and adds it to its series' baseline. `None` when this run was already
    /// judged (an at-least-once duplicate).
    pub fn judge(&mut self, s: &RunSummary, now_us: i64) -> Option<Verdict> {
        let series = self.series.entry(s.run.series_id.clone()).or_default();
        if !series.judged.insert(s.run.run_id.clone()) {
            return None;
        }
        let model = PercentageModel { warn_pct: self.config.warn_pct, block_pct: self.config.block_pct, min_samples: self.config.min_baseline };
        let mut metrics = Vec::new();
        for (metric, value) in judged_values(s) {
            // The baseline is the runs that started before this one: a summary that arrives
            // late (runs on other partitions overtook it) is still judged against its past.
            let started = s.run.timestamp;
            let history: Vec<f64> =
                series.history.get(&metric).map(|h| h.iter().filter(|(t, _)| *t < started).map(|(_, v)| *v).collect()).unwrap_or_default();
            let direction = direction_of(&metric);
            let j = judge_percentage(value, &history, direction, &model);
            metrics.push(MetricVerdict {
                metric,
                direction,
                value,
                baseline: j.baseline,
                baseline_count: history.len() as i32,
                model: "percentage".into(),
                lower_limit: j.lower_limit,
                upper_limit: j.upper_limit,
                change_pct: j.change_pct,
                severity: j.severity,
            });
        }
        // Only completed runs become baseline: a failed run must not drag the baseline.
        if s.status == RunStatus::Completed {
            for (metric, value) in judged_values(s) {
                let h = series.history.entry(metric).or_default();
                let at = h.partition_point(|(t, _)| *t <= s.run.timestamp);
                h.insert(at, (s.run.timestamp, value));
                while h.len() > self.config.window {
                    h.pop_front();
                }
            }
        }
        let severity = metrics.iter().map(|m| m.severity).max_by_key(|s| s.rank()).unwrap_or(Severity::InsufficientData);
        Some(Verdict { run_id: s.run.run_id.clone(), series_id: s.run.series_id.clone(), evaluated_at: now_us, severity, summary: s.clone(), metrics })
    }
}

/// Re-reads the summaries topic up to the group's committed offsets into `baselines`.
fn bootstrap(bus: &Bus, config: &VerdictConfig, baselines: &mut Baselines) -> Result<usize, ProcessorError> {
    let topic = bus.topics().summaries.clone();
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bus.config().bootstrap()).set("group.id", &config.group).set("enable.auto.commit", "false");
    for (k, v) in &bus.config().options {
        cc.set(k, v);
    }
    let consumer: BaseConsumer = cc.create().map_err(InfraError::kafka("creating the verdict bootstrap consumer"))?;
    let timeout = Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(&topic), timeout).map_err(InfraError::kafka("reading summaries metadata"))?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition(&topic, p.id());
    }
    let committed = consumer.committed_offsets(tpl, timeout).map_err(InfraError::kafka("reading committed offsets"))?;
    let mut targets: HashMap<i32, i64> = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for e in committed.elements() {
        if let Offset::Offset(o) = e.offset()
            && o > 0
        {
            targets.insert(e.partition(), o);
            assign.add_partition_offset(&topic, e.partition(), Offset::Beginning).map_err(InfraError::kafka("assigning"))?;
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assign).map_err(InfraError::kafka("assigning summaries partitions"))?;
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !targets.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else { continue };
        let msg = msg.map_err(InfraError::kafka("re-reading summaries"))?;
        let Some(&target) = targets.get(&msg.partition()) else { continue };
        if msg.offset() < target {
            if let Ok(s) = registry().decode::<RunSummary>(msg.payload().unwrap_or_default()) {
                baselines.judge(&s, 0);
                read += 1;
            }
        }
        if msg.offset() + 1 >= target {
            targets.remove(&msg.partition());
        }
    }
    if !targets.is_empty() {
        warn!(?targets, "verdict bootstrap did not reach the committed offsets of every partition");
    }
    Ok(read)
}

/// Runs the verdict processor until `shutdown`.
pub async fn run(config: VerdictConfig, bus: Bus, mut shutdown: Shutdown) -> Result<(), ProcessorError> {
    let topics = bus.topics().clone();
    let mut baselines = Baselines::new(config.clone());
    let rebuilt = {
        let (bus, config) = (bus.clone(), config.clone());
        let (n, b) = tokio::task::spawn_blocking(move || {
            let mut b = baselines;
            bootstrap(&bus, &config, &mut b).map(|n| (n, b))
        })
        .await
        .expect("bootstrap task")?;
        baselines = b;
        n
    };
    let consumer: StreamConsumer = bus.consumer(&config.group, &[&topics.summaries])?;
    let producer = bus.producer()?;
    let mut offsets = OffsetStore::default();
    info!(rebuilt_from = rebuilt, "verdict processor started");
    loop {
        let record = match bus.next(&consumer, &config.group, &mut shutdown, Duration::from_secs(1)).await {
            Next::Stop => break,
            Next::Idle => continue,
            Next::Record(r) => r,
        };
        match registry().decode::<RunSummary>(&record.payload) {
            Ok(summary) => {
                if let Some(verdict) = baselines.judge(&summary, trackiq_schemas::now_us()) {
                    let bytes = registry().encode(&verdict)?;
                    send(&producer, &topics.verdicts, verdict.series_id.as_bytes(), &bytes).await?;
                    info!(run_id = %verdict.run_id, severity = verdict.severity.as_str(), "published verdict");
                }
            }
            Err(e) => bus.dead_letter(&producer, &record, "verdict", &e.to_string()).await?,
        }
        offsets.store(&consumer, &record.topic, record.partition, record.offset)?;
    }
    offsets.commit(&consumer);
    info!("verdict processor stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trackiq_schemas::{DerivedMetric, Direction, MetricSummary, Platform, RunStarted, VersionInfo, Workload};

    use super::*;

    fn summary(id: &str, started: i64, latency: f64, status: RunStatus) -> RunSummary {
        let m = MetricSummary {
            metric: "latency_ms".into(), unit: "ms".into(), count: 1, mean: latency, stdev: None,
            min: latency, p50: latency, p90: latency, p95: latency, p99: latency, max: latency, histogram: None,
        };
        RunSummary {
            run: RunStarted {
                run_id: id.into(), tool: "t".into(), tool_version: "0".into(), timestamp: started,
                platform: Platform::default(), workload: Workload::default(), version: VersionInfo::default(),
                labels: BTreeMap::new(), series_id: "s".into(),
            },
            status, ended_at: started + 1, sample_count: 1, expected_sample_count: Some(1), error: None,
            metrics: vec![m],
            derived: vec![DerivedMetric { name: "throughput_per_sec".into(), value: 1000.0 / latency, unit: "1/s".into() }],
        }
    }

    #[test]
    fn regression_blocks_after_enough_baseline() {
        let mut b = Baselines::new(VerdictConfig::default());
        let sev = |b: &mut Baselines, id: &str, t: i64, v: f64| b.judge(&summary(id, t, v, RunStatus::Completed), 0).unwrap().severity;
        assert_eq!(sev(&mut b, "a", 1, 10.0), Severity::InsufficientData);
        assert_eq!(sev(&mut b, "b", 2, 10.2), Severity::InsufficientData);
        assert_eq!(sev(&mut b, "c", 3, 9.8), Severity::InsufficientData);
        assert_eq!(sev(&mut b, "d", 4, 10.1), Severity::Pass);
        let v = b.judge(&summary("e", 5, 13.0, RunStatus::Completed), 0).unwrap();
        assert_eq!(v.severity, Severity::Block);
        let lat = v.metrics.iter().find(|m| m.metric == "latency_ms").unwrap();
        assert_eq!(lat.baseline_count, 4);
        assert!((lat.baseline.unwrap() - 10.025).abs() < 1e-12);
        let thr = v.metrics.iter().find(|m| m.metric == "throughput_per_sec").unwrap();
        assert_eq!((thr.direction, thr.severity), (Direction::HigherIsBetter, Severity::Block));
    }

    #[test]
    fn duplicates_are_not_judged_twice_and_failed_runs_do_not_enter_the_baseline() {
        let mut b = Baselines::new(VerdictConfig::default());
        let s = summary("a", 1, 10.0, RunStatus::Completed);
        assert!(b.judge(&s, 0).is_some());
        assert!(b.judge(&s, 0).is_none());
        b.judge(&summary("f", 2, 99.0, RunStatus::Failed), 0).unwrap();
        let v = b.judge(&summary("g", 3, 10.0, RunStatus::Completed), 0).unwrap();
        assert_eq!(v.metrics[0].baseline, Some(10.0), "the failed run's 99 ms is not baseline");
    }

    #[test]
    fn a_late_summary_is_judged_against_runs_that_started_before_it() {
        let mut b = Baselines::new(VerdictConfig { min_baseline: 1, ..Default::default() });
        b.judge(&summary("second", 20, 12.0, RunStatus::Completed), 0);
        let v = b.judge(&summary("first", 10, 10.0, RunStatus::Completed), 0).unwrap();
        assert_eq!(v.metrics[0].baseline_count, 0);
        let v = b.judge(&summary("third", 30, 11.0, RunStatus::Completed), 0).unwrap();
        assert_eq!((v.metrics[0].baseline_count, v.metrics[0].baseline), (2, Some(11.0)));
    }

    #[test]
    fn replaying_the_same_summaries_gives_the_same_verdicts() {
        let log: Vec<RunSummary> = (0..12).map(|i| summary(&format!("r{i}"), i, 10.0 + (i % 3) as f64 + if i == 11 { 5.0 } else { 0.0 }, RunStatus::Completed)).collect();
        let judge_all = || {
            let mut b = Baselines::new(VerdictConfig::default());
            log.iter().map(|s| b.judge(s, 0).unwrap().metrics).collect::<Vec<_>>()
        };
        assert_eq!(judge_all(), judge_all());
    }
}

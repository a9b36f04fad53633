//! Rust types of the event contract. Each mirrors one `.avsc` file in `schemas/avro/`;
//! a test encodes and decodes every one through the Avro schema, so the two cannot drift.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Machine and software the run was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Platform {
    pub hardware_name: String,
    pub os: String,
    #[serde(default)]
    pub kernel: Option<String>,
    pub cpu: String,
    #[serde(default)]
    pub gpus: Vec<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub framework_version: Option<String>,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Workload {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub batch_size: Option<i64>,
    #[serde(default)]
    pub precision: Option<String>,
    #[serde(default)]
    pub sequence_length: Option<i64>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub steps: Option<i64>,
}

/// Which build of the software under test was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VersionInfo {
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub version_tag: Option<String>,
    pub env_hash: String,
    #[serde(default)]
    pub run_group: Option<String>,
}

/// A benchmark run began (topic `runs`, key run_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
    pub tool: String,
    pub tool_version: String,
    /// Start of the run, microseconds since the Unix epoch.
    pub timestamp: i64,
    pub platform: Platform,
    pub workload: Workload,
    pub version: VersionInfo,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub series_id: String,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the measured operation started, microseconds since the Unix epoch.
    pub ts_us: i64,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    #[serde(default)]
    pub rank: Option<i32>,
    #[serde(default)]
    pub step: Option<i64>,
}

/// Samples of one run (topic `samples`, key run_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleBatch {
    pub run_id: String,
    /// Batch sequence number within the run, from 0.
    pub seq: i64,
    pub samples: Vec<Sample>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    Failed,
    Incomplete,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Incomplete => "incomplete",
        }
    }
}

/// A run ended (topic `runs`, key run_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    pub run_id: String,
    pub status: RunStatus,
    pub ended_at: i64,
    /// Samples the producer sent for this run.
    pub sample_count: i64,
    /// Added in schema version 2: why the run failed or what went wrong.
    #[serde(default)]
    pub error: Option<String>,
}

/// Equal-width histogram: `edges.len() == counts.len() + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<i64>,
}

/// Statistics of one metric over a run's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub metric: String,
    pub unit: String,
    pub count: i64,
    pub mean: f64,
    /// Sample standard deviation (n-1); `None` below two samples.
    #[serde(default)]
    pub stdev: Option<f64>,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    #[serde(default)]
    pub histogram: Option<Histogram>,
    /// Added in schema version 3: `None` when the percentiles are exact; else they come
    /// from a quantile sketch and are within this relative error (e.g. 0.01).
    #[serde(default)]
    pub percentile_error: Option<f64>,
}

/// A run-level figure derived from the samples, such as throughput.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedMetric {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// Canonical per-run result (topic `summaries`, key series_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: RunStarted,
    pub status: RunStatus,
    pub ended_at: i64,
    pub sample_count: i64,
    #[serde(default)]
    pub expected_sample_count: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    pub metrics: Vec<MetricSummary>,
    #[serde(default)]
    pub derived: Vec<DerivedMetric>,
    /// Added in schema version 2: health of a distributed-training run.
    #[serde(default)]
    pub cluster: Option<ClusterHealth>,
}

/// A cluster-health detector fired (topic `detections`, key run_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub run_id: String,
    /// `straggler`, `slow_link`, `failed_worker`, `stalled_worker`, `loss_divergence` or `allreduce_spike`.
    pub detector: String,
    /// The rank blamed, when the detector blames one.
    #[serde(default)]
    pub rank: Option<i32>,
    #[serde(default)]
    pub step: Option<i64>,
    /// Event time (from the samples) at which the condition held, µs since the epoch.
    pub event_ts: i64,
    /// Wall-clock time the processor raised it, µs since the epoch.
    pub detected_at: i64,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// An injected fault and the detection matched to it (none: missed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    /// `slow_rank`, `kill_rank`, `net_delay` or `stall`.
    pub kind: String,
    pub rank: i32,
    pub step: i64,
    pub injected_at: i64,
    #[serde(default)]
    pub detector: Option<String>,
    #[serde(default)]
    pub detected_at: Option<i64>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

/// Health of a distributed-training run, part of its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterHealth {
    pub world_size: i32,
    /// Steps every rank completed.
    pub steps: i64,
    /// Training samples over all ranks per second of wall time.
    pub samples_per_sec: f64,
    /// Share of step time spent in the all-reduce, in percent.
    pub comm_overhead_pct: f64,
    /// Steps averaged into one matrix column (long runs are downsampled).
    pub steps_per_column: i32,
    /// Rank × step all-reduce milliseconds, one row per rank.
    pub allreduce_ms: Vec<Vec<Option<f64>>>,
    /// Mean loss over the ranks, per step.
    pub loss: Vec<f64>,
    pub faults: Vec<FaultOutcome>,
    pub detections: Vec<Detection>,
    /// Detections no injected fault explains.
    pub false_alarms: i32,
}

/// Outcome of judging a value against its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Pass,
    Warn,
    Block,
    Improved,
    InsufficientData,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Pass => "pass",
            Severity::Warn => "warn",
            Severity::Block => "block",
            Severity::Improved => "improved",
            Severity::InsufficientData => "insufficient_data",
        }
    }

    /// Every severity, best to worst by [`Severity::rank`].
    pub const ALL: [Severity; 5] = [Severity::Improved, Severity::Pass, Severity::InsufficientData, Severity::Warn, Severity::Block];

    /// The severity named `s` (as [`Severity::as_str`] writes it, e.g. in the verdicts table).
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Rank used to pick the overall severity of a verdict: the worst wins.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Block => 4,
            Severity::Warn => 3,
            Severity::InsufficientData => 2,
            Severity::Pass => 1,
            Severity::Improved => 0,
        }
    }
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::LowerIsBetter => "lower_is_better",
            Direction::HigherIsBetter => "higher_is_better",
        }
    }
}

/// Verdict on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    pub metric: String,
    pub direction: Direction,
    pub value: f64,
    #[serde(default)]
    pub baseline: Option<f64>,
    pub baseline_count: i32,
    pub model: String,
    #[serde(default)]
    pub lower_limit: Option<f64>,
    #[serde(default)]
    pub upper_limit: Option<f64>,
    #[serde(default)]
    pub change_pct: Option<f64>,
    pub severity: Severity,
    /// Added in schema version 2: probability of a value at least this bad under the
    /// baseline model, where the model has one.
    #[serde(default)]
    pub pvalue: Option<f64>,
    /// Added in schema version 5: the metric's kind in the catalog.
    #[serde(default)]
    pub kind: Option<crate::catalog::MetricKind>,
    /// Added in schema version 5: whether this metric decided the run's severity.
    #[serde(default = "gates_by_default")]
    pub gates: bool,
    /// Added in schema version 5: nobody declared the metric; its direction is a guess.
    #[serde(default)]
    pub direction_guessed: bool,
    /// Added in schema version 5: the 95 % interval of `change_pct`.
    #[serde(default)]
    pub change_ci_low: Option<f64>,
    #[serde(default)]
    pub change_ci_high: Option<f64>,
    /// Added in schema version 5: `pvalue` after Holm's adjustment over the run's gating metrics.
    #[serde(default)]
    pub pvalue_adjusted: Option<f64>,
}

fn gates_by_default() -> bool {
    true
}

/// A rule-based observation about a run, beyond the per-metric thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub metric: String,
    pub severity: Severity,
    #[serde(default)]
    pub value: Option<f64>,
    pub message: String,
}

/// Regression verdict for one run (topic `verdicts`, key series_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub run_id: String,
    pub series_id: String,
    pub evaluated_at: i64,
    pub severity: Severity,
    pub summary: RunSummary,
    pub metrics: Vec<MetricVerdict>,
    /// Added in schema version 2.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// A record that could not be processed (topic `dlq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub stage: String,
    pub reason: String,
    pub failed_at: i64,
    #[serde(default, with = "apache_avro::serde_avro_bytes_opt")]
    pub key: Option<Vec<u8>>,
    #[serde(with = "apache_avro::serde_avro_bytes")]
    pub payload: Vec<u8>,
}

/// Trend classes of a metric over a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendClass {
    Stable,
    Volatile,
    Improving,
    Degrading,
}

impl TrendClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TrendClass::Stable => "stable",
            TrendClass::Volatile => "volatile",
            TrendClass::Improving => "improving",
            TrendClass::Degrading => "degrading",
        }
    }
}

/// A change point found in a series' history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePointEvent {
    /// First run after the change.
    pub run_id: String,
    pub index: i32,
    pub mean_before: f64,
    pub mean_after: f64,
    pub change_pct: f64,
    pub pvalue: f64,
}

/// Trend and change points of one metric of a series (topic `trends`, key series_id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendResult {
    pub series_id: String,
    pub metric: String,
    pub run_id: String,
    pub computed_at: i64,
    pub points: i32,
    pub class: TrendClass,
    pub slope: f64,
    pub r_squared: f64,
    pub theil_sen_slope: f64,
    #[serde(default)]
    pub mann_kendall_p: Option<f64>,
    pub total_change_pct: f64,
    pub cv: f64,
    pub confidence: f64,
    #[serde(default)]
    pub change_points: Vec<ChangePointEvent>,
}

/// A run whose judged values form (part of) a pinned baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedRun {
    pub run_id: String,
    pub values: BTreeMap<String, f64>,
}

/// Pins a series' baseline (topic `baselines`, key series_id); no runs: rolling again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselinePin {
    pub series_id: String,
    pub runs: Vec<PinnedRun>,
    pub set_at: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

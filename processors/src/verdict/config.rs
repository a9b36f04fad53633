//! Verdict settings: baseline window, threshold models per metric and series, metric
//! directions, finding rules and trend analysis.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trackiq_schemas::Direction;
use trackiq_schemas::catalog::{self, MetricDecl, MetricInfo};
use trackiq_stats::{ModelKind, ModelSpec};

/// Verdict settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictConfig {
    /// Consumer group of the verdict processor.
    pub group: String,
    /// Rolling baseline: the last this-many completed, unflagged runs of the series.
    pub window: usize,
    /// Rolling baseline: only runs that started at most this many days before the judged
    /// run (0: no age limit).
    pub window_days: u64,
    /// Fewer baseline runs than this give `insufficient_data`.
    pub min_baseline: usize,
    /// Default model (significance): a change in the bad direction above this percentage
    /// warns, when it is also significant at `alpha`.
    pub warn_pct: f64,
    /// Default model (significance): above this percentage, and significant, blocks.
    pub block_pct: f64,
    /// Default model: family-wise significance level over the gating metrics of one run
    /// (Holm-adjusted p-values below it are significant). 0.005: at most 0.5 % of unchanged
    /// runs flagged by chance whatever the number of metrics, leaving room under the 1 %
    /// false-block goal for real noise being heavier-tailed than normal.
    pub alpha: f64,
    /// A run during which other processes left the benchmark this many percent less of the
    /// machine's CPU (100 − `host_other_cpu_percent`) than during its baseline runs ran on a
    /// noisy machine: its regressions warn instead of blocking, with a `noisy_host` finding
    /// (0 disables).
    pub noisy_host_pct: f64,
    /// A run whose machine-speed probe (`host_speed_probe_ms`, a fixed CPU loop timed at the
    /// run's start and end) took this many percent longer than during its baseline runs ran
    /// on a slower machine: its regressions warn instead of blocking (0 disables).
    pub slow_host_pct: f64,
    /// Models for chosen metrics and series; the first matching rule wins.
    pub rules: Vec<ModelRule>,
    /// Your own metrics (recorded or imported), or changes to built-in ones:
    /// `[verdict.metrics.queue_depth] direction = "lower_is_better", kind = "kpi", unit = ""`.
    /// Undeclared metrics not in the catalog gate as KPIs with a direction guessed by name.
    pub metrics: BTreeMap<String, MetricDecl>,
    /// Direction overrides only (older form of `metrics`), e.g. `{ "queue_depth" = "lower_is_better" }`.
    pub directions: BTreeMap<String, Direction>,
    /// Rules that add findings to a verdict.
    pub findings: FindingsConfig,
    /// Trend and change-point analysis of each series.
    pub trends: TrendConfig,
}

/// A threshold model for the metrics (and series) it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRule {
    /// Metric name; a trailing `*` matches a prefix. Absent: every metric.
    #[serde(default)]
    pub metric: Option<String>,
    /// Series id. Absent: every series.
    #[serde(default)]
    pub series: Option<String>,
    /// significance | percentage | static | z_score | t_test | log_normal | iqr | delta_iqr
    pub model: ModelName,
    /// Warn boundary: percent (significance, percentage), absolute limit (static), cumulative probability
    /// (z_score, t_test, log_normal) or IQR multiplier (iqr, delta_iqr).
    pub warn: f64,
    /// Block boundary, in the same unit as `warn`.
    pub block: f64,
    /// Minimum baseline runs for this rule (default: `min_baseline`).
    #[serde(default)]
    pub min_samples: Option<usize>,
}

/// Names of the threshold models in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    /// Magnitude and significance (the default): percent thresholds, and a change must be
    /// significant against the baseline runs' variation at `alpha` (Holm-adjusted).
    Significance,
    Percentage,
    Static,
    ZScore,
    TTest,
    LogNormal,
    Iqr,
    DeltaIqr,
}

impl ModelName {
    /// Bencher's model, or `None` for the significance model.
    pub fn bencher(self) -> Option<ModelKind> {
        Some(match self {
            ModelName::Significance => return None,
            ModelName::Percentage => ModelKind::Percentage,
            ModelName::Static => ModelKind::Static,
            ModelName::ZScore => ModelKind::ZScore,
            ModelName::TTest => ModelKind::TTest,
            ModelName::LogNormal => ModelKind::LogNormal,
            ModelName::Iqr => ModelKind::Iqr,
            ModelName::DeltaIqr => ModelKind::DeltaIqr,
        })
    }
}

/// Finding rules (the seed's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsConfig {
    /// A standard deviation this many percent above the baseline's is a consistency
    /// regression, when a variance test confirms it.
    pub stdev_increase_pct: f64,
    /// Significance of the (one-sided F) variance test confirming a consistency regression.
    pub variance_test_pvalue: f64,
    /// All-reduce p99 above this multiple of p50 is a tail-latency finding.
    pub allreduce_tail_ratio: f64,
    /// Scaling efficiency below this percentage is a finding.
    pub min_scaling_efficiency_pct: f64,
    /// A change point in the bad direction among the latest this-many runs is a step-change
    /// finding (0 disables).
    pub step_recent_runs: usize,
    /// ... when the step changes the mean by at least this percentage (the default warn
    /// threshold: a smaller step stays a change point in the trends, not a warning).
    pub step_min_change_pct: f64,
    /// This many consecutive runs (the judged one included), each worse than the baseline
    /// mean by more than `sustained_pct`, are a sustained-shift finding (0 disables).
    pub sustained_runs: usize,
    /// Percentage for `sustained_runs`.
    pub sustained_pct: f64,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        FindingsConfig { stdev_increase_pct: 25.0, variance_test_pvalue: 0.05, allreduce_tail_ratio: 1.3, min_scaling_efficiency_pct: 90.0, step_recent_runs: 5, step_min_change_pct: 5.0, sustained_runs: 3, sustained_pct: 2.5 }
    }
}

/// Trend and change-point analysis, recomputed for a series when it gets a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendConfig {
    /// Runs analysed: the latest this many of the series.
    pub window: usize,
    /// No trend below this many runs.
    pub min_points: usize,
    /// Change points: E-divisive window length.
    pub window_len: usize,
    /// Change points: significance.
    pub max_pvalue: f64,
    /// Change points: smallest relative change kept.
    pub min_magnitude: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        TrendConfig { window: 100, min_points: 5, window_len: 30, max_pvalue: 0.001, min_magnitude: 0.0 }
    }
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig {
            group: "trackiq-verdict".into(),
            window: 10,
            window_days: 0,
            min_baseline: 3,
            warn_pct: 5.0,
            block_pct: 10.0,
            alpha: 0.005,
            noisy_host_pct: 20.0,
            slow_host_pct: 5.0,
            rules: Vec::new(),
            metrics: BTreeMap::new(),
            directions: BTreeMap::new(),
            findings: FindingsConfig::default(),
            trends: TrendConfig::default(),
        }
    }
}

impl ModelRule {
    fn matches(&self, metric: &str, series: &str) -> bool {
        let metric_ok = match self.metric.as_deref() {
            None => true,
            Some(p) => match p.strip_suffix('*') {
                Some(prefix) => metric.starts_with(prefix),
                None => p == metric,
            },
        };
        metric_ok && self.series.as_deref().is_none_or(|s| s == series)
    }
}

/// How one metric of one series is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judging {
    /// Magnitude and significance, thresholds in percent.
    Significance { warn_pct: f64, block_pct: f64, min_samples: usize },
    /// One of Bencher's models.
    Bencher(ModelSpec),
}

impl Judging {
    pub fn min_samples(&self) -> usize {
        match self {
            Judging::Significance { min_samples, .. } => *min_samples,
            Judging::Bencher(spec) => spec.min_samples,
        }
    }

    pub fn set_min_samples(&mut self, n: usize) {
        match self {
            Judging::Significance { min_samples, .. } => *min_samples = n,
            Judging::Bencher(spec) => spec.min_samples = n,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Judging::Significance { .. } => "significance",
            Judging::Bencher(spec) => spec.kind.name(),
        }
    }
}

impl VerdictConfig {
    /// How `metric` of `series` is judged: the first matching rule, else the default model.
    pub fn judging_for(&self, metric: &str, series: &str) -> Judging {
        match self.rules.iter().find(|r| r.matches(metric, series)) {
            Some(r) => {
                let min_samples = r.min_samples.unwrap_or(self.min_baseline);
                match r.model.bencher() {
                    Some(kind) => Judging::Bencher(ModelSpec { kind, warn: r.warn, block: r.block, min_samples }),
                    None => Judging::Significance { warn_pct: r.warn, block_pct: r.block, min_samples },
                }
            }
            None => Judging::Significance { warn_pct: self.warn_pct, block_pct: self.block_pct, min_samples: self.min_baseline },
        }
    }

    /// What is known of a metric: declared here, else in the catalog, else guessed by name
    /// (a `directions` entry replaces the direction and the guess).
    pub fn info(&self, metric: &str) -> MetricInfo {
        let mut info = match self.metrics.get(metric) {
            Some(d) => d.into(),
            None => catalog::info(metric),
        };
        if let Some(d) = self.directions.get(metric) {
            info.direction = *d;
            info.guessed = false;
        }
        info
    }

    /// What is known of a figure of a run: [`VerdictConfig::info`], except that a figure the
    /// aggregator derived from the run's own metrics is judged as derived (reported, not
    /// gating) unless declared here — its KPI is the metric it comes from.
    pub fn info_of(&self, metric: &str, derived: bool) -> MetricInfo {
        let mut info = self.info(metric);
        if derived && !self.metrics.contains_key(metric) {
            info.kind = catalog::MetricKind::Derived;
            info.gates = false;
        }
        info
    }

    /// Direction of a metric: configured, else from the catalog, else by name.
    pub fn direction_of(&self, metric: &str) -> Direction {
        self.info(metric).direction
    }
}

//! Per-series state and judging: rolling or pinned baselines, threshold models, findings,
//! trends and change points. Kafka-free; a verdict costs O(window).

use std::collections::{HashMap, HashSet, VecDeque};

use trackiq_schemas::{
    BaselinePin, ChangePointEvent, Finding, MetricVerdict, RunStatus, RunSummary, Severity, TrendResult, Verdict,
};
use trackiq_stats::changepoint::{ChangePointParams, change_points};
use trackiq_stats::trend::classify;

use trackiq_stats::significance::{RunFigure, Samples};

use super::config::VerdictConfig;
use super::{findings, judging};

const DAY_US: i64 = 86_400_000_000;

/// One run's figure of one metric, as kept in a series' history.
#[derive(Debug, Clone)]
struct Entry {
    started: i64,
    run_id: String,
    value: f64,
    stdev: Option<f64>,
    count: i64,
    /// Judged warn or block: kept for trends but out of the rolling baseline, so a regression
    /// never becomes the baseline silently (pin a new baseline to accept it).
    flagged: bool,
}

/// Run ids remembered per series to drop at-least-once duplicates. Duplicates come from a
/// replay after a crash, so they are recent; older ids are forgotten to keep memory bounded.
const JUDGED_PER_SERIES: usize = 4096;

#[derive(Default)]
struct Series {
    metrics: HashMap<String, VecDeque<Entry>>,
    judged: HashSet<String>,
    /// `judged` in the order judged, to forget the oldest.
    judged_order: VecDeque<String>,
    /// metric -> pinned values, when the baseline is pinned.
    pinned: Option<HashMap<String, Vec<f64>>>,
}

/// A judged figure of a summary: each metric's mean (with its spread) and each derived figure.
pub struct Figure {
    pub metric: String,
    pub value: f64,
    pub stdev: Option<f64>,
    pub count: i64,
    /// Computed by the aggregator from the run's other metrics (`RunSummary.derived`).
    pub derived: bool,
    /// Which statistic of the run's samples `value` is (see [`judged_value`]).
    pub statistic: &'static str,
}

/// The figure of a run's metric that is judged, and its name: the **median** of a duration
/// with two or more samples, else the mean. On a busy machine a preempted iteration takes a
/// whole time slice longer; a few such iterations move a run's mean by tens of percent from
/// one run to the next while its median stays put (measured: under two busy loops the mean
/// of 2,000 matrix multiplies varied 0.20–0.38 ms between identical runs, the median ±3 %).
/// A metric of 0/1 samples (failed iterations) is judged by its mean, which is a rate.
pub fn judged_value(metric: &str, count: i64, mean: f64, p50: f64) -> (f64, &'static str) {
    if count >= 2 && trackiq_schemas::catalog::is_duration(metric) {
        (p50, "median")
    } else if trackiq_schemas::catalog::is_rate(metric) {
        (mean, "rate")
    } else {
        (mean, "mean")
    }
}

/// The sample spread the significance model's samples test may use: none for a median (the
/// test compares means), so the runs test alone judges it.
fn sample_spread(f: &Figure, stdev: Option<f64>) -> Option<f64> {
    if f.statistic == "median" { None } else { stdev }
}

/// The figures of a summary that are judged.
pub fn figures(s: &RunSummary) -> Vec<Figure> {
    s.metrics
        .iter()
        .map(|m| {
            let (value, statistic) = judged_value(&m.metric, m.count, m.mean, m.p50);
            Figure { metric: m.metric.clone(), value, stdev: m.stdev, count: m.count, derived: false, statistic }
        })
        .chain(s.derived.iter().map(|d| Figure { metric: d.name.clone(), value: d.value, stdev: None, count: 1, derived: true, statistic: "mean" }))
        .collect()
}

/// Baselines of every series.
pub struct Baselines {
    config: VerdictConfig,
    series: HashMap<String, Series>,
}

/// Baseline statistics a finding rule may compare against.
pub struct BaselineSpread {
    /// Mean of the baseline runs' standard deviations.
    pub stdev: f64,
    /// Σ(count − 1) over those runs: degrees of freedom of the pooled variance.
    pub dof: f64,
    /// Each baseline run's standard deviation, oldest first.
    pub stdevs: Vec<f64>,
}

impl Baselines {
    pub fn new(config: VerdictConfig) -> Self {
        Baselines { config, series: HashMap::new() }
    }

    /// Applies a pin (or, with no runs, a return to the rolling baseline).
    pub fn pin(&mut self, pin: &BaselinePin) {
        let series = self.series.entry(pin.series_id.clone()).or_default();
        if pin.runs.is_empty() {
            series.pinned = None;
            return;
        }
        let mut values: HashMap<String, Vec<f64>> = HashMap::new();
        for r in &pin.runs {
            for (m, v) in &r.values {
                values.entry(m.clone()).or_default().push(*v);
            }
        }
        series.pinned = Some(values);
    }

    /// Remembers that a run was judged (at start-up, from the verdicts table), so a replayed
    /// summary of it is not judged again; bounded like the ids [`Baselines::judge`] keeps.
    pub fn mark_judged(&mut self, series_id: &str, run_id: &str) {
        let series = self.series.entry(series_id.to_string()).or_default();
        if series.judged.insert(run_id.to_string()) {
            series.judged_order.push_back(run_id.to_string());
            while series.judged_order.len() > JUDGED_PER_SERIES {
                if let Some(old) = series.judged_order.pop_front() {
                    series.judged.remove(&old);
                }
            }
        }
    }

    /// Judges a summary, adds it to its series, and recomputes the series' trends. `None` when
    /// this run was already judged (an at-least-once duplicate).
    pub fn judge(&mut self, s: &RunSummary, now_us: i64) -> Option<(Verdict, Vec<TrendResult>)> {
        let cfg = &self.config;
        let series_id = s.run.series_id.clone();
        let series = self.series.entry(series_id.clone()).or_default();
        if !series.judged.insert(s.run.run_id.clone()) {
            return None;
        }
        series.judged_order.push_back(s.run.run_id.clone());
        while series.judged_order.len() > JUDGED_PER_SERIES {
            if let Some(old) = series.judged_order.pop_front() {
                series.judged.remove(&old);
            }
        }
        let started = s.run.timestamp;
        let oldest = (cfg.window_days > 0).then(|| started - cfg.window_days as i64 * DAY_US);
        let mut metrics = Vec::new();
        let mut judged = Vec::new();
        let mut findings = Vec::new();
        let mut host = judging::HostFigures::default();
        for f in figures(s) {
            let history: Vec<&Entry> = series
                .metrics
                .get(&f.metric)
                .map(|h| h.iter().filter(|e| e.started < started && !e.flagged && oldest.is_none_or(|o| e.started >= o)).collect())
                .unwrap_or_default();
            let history: Vec<&Entry> = history[history.len().saturating_sub(cfg.window)..].to_vec();
            let (baseline, model_note): (Vec<RunFigure>, &str) = match series.pinned.as_ref().and_then(|p| p.get(&f.metric)) {
                Some(pinned) => (pinned.iter().map(|&v| RunFigure::single(v)).collect(), "pinned"),
                None => (history.iter().map(|e| RunFigure { value: e.value, stdev: sample_spread(&f, e.stdev), count: e.count }).collect(), ""),
            };
            let info = cfg.info_of(&f.metric, f.derived);
            let direction = info.direction;
            let mut judging = cfg.judging_for(&f.metric, &series_id);
            if !model_note.is_empty() {
                // A pinned baseline is a deliberate choice: one pinned run is enough.
                judging.set_min_samples(1);
            }
            let candidate = RunFigure { value: f.value, stdev: sample_spread(&f, f.stdev), count: f.count };
            let samples = if f.statistic == "rate" { Samples::Rate } else { Samples::Measured };
            let judged_metric = judging::judge_metric(&candidate, &baseline, direction, &judging, cfg.alpha, samples);
            let j = &judged_metric.judgement;
            let notes: Vec<&str> = [model_note, if f.statistic == "mean" { "" } else { f.statistic }].into_iter().filter(|n| !n.is_empty()).collect();
            let model = if notes.is_empty() { judging.name().to_string() } else { format!("{} ({})", judging.name(), notes.join(", ")) };
            let this_and_baseline = || Some((f.value, history.iter().map(|e| e.value).collect()));
            match f.metric.as_str() {
                judging::HOST_CONTENTION_METRIC => host.contention = this_and_baseline(),
                judging::SPEED_PROBE_METRIC => host.probe = this_and_baseline(),
                _ => {}
            }
            let interval = judged_metric.evidence.as_ref().map(|(e, _)| (e.ci_low_pct, e.ci_high_pct)).filter(|(l, h)| l.is_finite() && h.is_finite());
            metrics.push(MetricVerdict {
                metric: f.metric.clone(),
                direction,
                value: f.value,
                baseline: j.baseline,
                baseline_count: baseline.len() as i32,
                model,
                lower_limit: j.lower_limit,
                upper_limit: j.upper_limit,
                change_pct: j.change_pct,
                severity: j.severity,
                pvalue: j.pvalue,
                kind: Some(info.kind),
                gates: info.gates,
                direction_guessed: info.guessed,
                change_ci_low: interval.map(|i| i.0),
                change_ci_high: interval.map(|i| i.1),
                pvalue_adjusted: None,
            });
            judged.push(judged_metric);
            if cfg.findings.sustained_runs > 0 {
                // The previous runs of the streak are compared with the baseline before them.
                let all: Vec<&Entry> = series.metrics.get(&f.metric).map(|h| h.iter().filter(|e| e.started < started).collect()).unwrap_or_default();
                let k = cfg.findings.sustained_runs - 1;
                if all.len() >= k {
                    let (older, recent) = all.split_at(all.len() - k);
                    let base: Vec<f64> = older.iter().filter(|e| !e.flagged).rev().take(cfg.window).map(|e| e.value).collect();
                    if base.len() >= cfg.min_baseline {
                        let streak: Vec<f64> = recent.iter().map(|e| e.value).chain(std::iter::once(f.value)).collect();
                        findings.extend(findings::sustained_shift(&cfg.findings, &f.metric, &streak, &base, direction, cfg.alpha));
                    }
                }
            }
            let spread: Vec<&Entry> = history.iter().copied().filter(|e| e.stdev.is_some() && e.count >= 2).collect();
            if !spread.is_empty() {
                let stdevs: Vec<f64> = spread.iter().map(|e| e.stdev.unwrap_or_default()).collect();
                let base = BaselineSpread {
                    stdev: stdevs.iter().sum::<f64>() / stdevs.len() as f64,
                    dof: spread.iter().map(|e| (e.count - 1) as f64).sum(),
                    stdevs,
                };
                findings.extend(findings::consistency(&cfg.findings, &f, &base, cfg.alpha));
            }
        }
        judging::adjust_for_multiplicity(&mut metrics, &judged);
        findings.extend(judging::noisy_host(&mut metrics, &host, cfg.noisy_host_pct, cfg.slow_host_pct, cfg.block_pct));
        findings.extend(findings::from_summary(&cfg.findings, s));

        // Only completed runs enter the history: a failed run says nothing about performance.
        // A late arrival (recorded or imported with a time before runs already judged) goes
        // in at its time: the series' trend and change points include it in time order, but a
        // change point speaks of the newest runs, so it is no finding of this one.
        let late = series.metrics.values().any(|h| h.back().is_some_and(|e| e.started > started));
        let mut trends = Vec::new();
        if s.status == RunStatus::Completed {
            let cap = cfg.window.max(cfg.trends.window);
            for (f, m) in figures(s).into_iter().zip(&metrics) {
                let h = series.metrics.entry(f.metric.clone()).or_default();
                let at = h.partition_point(|e| e.started <= started);
                let flagged = matches!(m.severity, Severity::Warn | Severity::Block);
                h.insert(at, Entry { started, run_id: s.run.run_id.clone(), value: f.value, stdev: f.stdev, count: f.count, flagged });
                // The run's index moves down as the oldest runs leave the window (and it is
                // gone when it was itself older than the whole window).
                let mut at = Some(at);
                while h.len() > cap {
                    h.pop_front();
                    at = at.and_then(|i| i.checked_sub(1));
                }
                if let Some(t) = trend_of(cfg, &series_id, &f.metric, h, now_us) {
                    if let Some(step) = findings::step_change(&cfg.findings, &t, m.direction).filter(|_| !late) {
                        // A run on the far side of a step is not baseline either.
                        if let Some(i) = at {
                            h[i].flagged = true;
                        }
                        findings.push(step);
                    }
                    trends.push(t);
                }
            }
        }
        let severity = judging::run_severity(&metrics, &findings);
        let verdict = Verdict { run_id: s.run.run_id.clone(), series_id, evaluated_at: now_us, severity, summary: s.clone(), metrics, findings };
        Some((verdict, trends))
    }
}

fn trend_of(cfg: &VerdictConfig, series_id: &str, metric: &str, h: &VecDeque<Entry>, now_us: i64) -> Option<TrendResult> {
    let window: Vec<&Entry> = h.iter().skip(h.len().saturating_sub(cfg.trends.window)).collect();
    if window.len() < cfg.trends.min_points.max(2) {
        return None;
    }
    let values: Vec<f64> = window.iter().map(|e| e.value).collect();
    let t = classify(&values, cfg.direction_of(metric))?;
    let params = ChangePointParams { window_len: cfg.trends.window_len.max(2), max_pvalue: cfg.trends.max_pvalue, min_magnitude: cfg.trends.min_magnitude };
    let cps = change_points(&values, &params)
        .into_iter()
        .map(|c| ChangePointEvent {
            run_id: window[c.index].run_id.clone(),
            index: c.index as i32,
            mean_before: c.stats.mean_before,
            mean_after: c.stats.mean_after,
            change_pct: c.stats.forward_change() * 100.0,
            pvalue: c.stats.pvalue,
        })
        .collect();
    Some(TrendResult {
        series_id: series_id.to_string(),
        metric: metric.to_string(),
        run_id: window.last()?.run_id.clone(),
        computed_at: now_us,
        points: values.len() as i32,
        class: t.class,
        slope: t.ols.slope,
        r_squared: t.ols.r_squared,
        theil_sen_slope: t.theil_sen_slope,
        mann_kendall_p: t.mann_kendall_p,
        total_change_pct: t.total_change_pct,
        cv: t.cv,
        confidence: t.confidence,
        change_points: cps,
    })
}

/// Findings need the verdict's types only.
pub(super) fn finding(rule: &str, metric: &str, value: f64, message: String) -> Finding {
    Finding { rule: rule.into(), metric: metric.into(), severity: Severity::Warn, value: Some(value), message }
}

//! The seed's finding rules: consistency regressions (confirmed by a variance test),
//! all-reduce tail latency, and scaling efficiency; and from cluster health, every detection
//! (warn) and every injected fault the detectors missed (block: the monitoring failed).

use trackiq_schemas::{Direction, Finding, RunSummary};
use trackiq_stats::significance::{self, RunFigure};

use super::baselines::{BaselineSpread, Figure, finding};
use super::config::FindingsConfig;

/// Standard deviation up by more than the threshold, and significantly so twice over: a
/// one-sided F-test of the run's variance against the baseline's pooled variance, and the
/// run's standard deviation against the spread of the baseline runs' standard deviations
/// (the runs test of the significance model, at `alpha`). The F-test alone treats every
/// sample as independent, so one scheduling hiccup in a run of thousands of samples is
/// "significant"; the second test asks whether runs on this machine vary that much anyway.
pub fn consistency(cfg: &FindingsConfig, f: &Figure, base: &BaselineSpread, alpha: f64) -> Option<Finding> {
    let s = f.stdev?;
    if f.count < 2 || base.stdev <= 0.0 || base.dof < 1.0 {
        return None;
    }
    let increase = (s - base.stdev) / base.stdev * 100.0;
    if increase <= cfg.stdev_increase_pct {
        return None;
    }
    let p = trackiq_stats::hypothesis::variance_increase_pvalue(s, f.count, base.stdev, base.dof)?;
    if p >= cfg.variance_test_pvalue {
        return None;
    }
    let runs: Vec<RunFigure> = base.stdevs.iter().map(|&v| RunFigure::single(v)).collect();
    let across_runs = significance::evidence(&RunFigure::single(s), &runs, Direction::LowerIsBetter).and_then(|e| e.pvalue_worse);
    if across_runs.is_none_or(|q| q >= alpha) {
        return None;
    }
    Some(finding(
        "consistency_regression",
        &f.metric,
        s,
        format!("stdev of {} rose {increase:.1} % ({:.4} → {s:.4}); F-test p = {p:.3e}, against the baseline runs' spread p = {:.3e}", f.metric, base.stdev, across_runs.unwrap_or(f64::NAN)),
    ))
}

/// Findings read from one summary alone.
pub fn from_summary(cfg: &FindingsConfig, s: &RunSummary) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &s.metrics {
        let name = m.metric.to_ascii_lowercase();
        // A tail of all-reduce *times*: the numerical error and byte counts of the collective
        // share the name but not the meaning (a tail in the error is not a slow network).
        let is_time = trackiq_schemas::metrics::is_duration(&m.metric);
        if is_time && (name.contains("allreduce") || name.contains("all_reduce")) && m.p50 > 0.0 && m.p99 > cfg.allreduce_tail_ratio * m.p50 {
            let ratio = m.p99 / m.p50;
            out.push(finding("allreduce_tail", &m.metric, ratio, format!("{} p99 is {ratio:.2}× p50 (limit {}×)", m.metric, cfg.allreduce_tail_ratio)));
        }
    }
    // A run whose every iteration failed measured nothing it was meant to: it blocks, with
    // or without a baseline to compare its failure rate with.
    for m in s.metrics.iter().filter(|m| trackiq_schemas::catalog::is_rate(&m.metric) && m.count > 0 && m.mean >= 1.0) {
        let mut all = finding("all_iterations_failed", &m.metric, m.mean, format!("every one of the run's {} iterations failed ({} = 1 in each)", m.count, m.metric));
        all.severity = trackiq_schemas::Severity::Block;
        out.push(all);
    }
    let named = s.metrics.iter().map(|m| (&m.metric, m.mean)).chain(s.derived.iter().map(|d| (&d.name, d.value)));
    for (name, value) in named {
        if name.to_ascii_lowercase().contains("scaling_efficiency") && value < cfg.min_scaling_efficiency_pct {
            out.push(finding("scaling_efficiency", name, value, format!("{name} is {value:.1} % (below {} %)", cfg.min_scaling_efficiency_pct)));
        }
    }
    if let Some(c) = &s.cluster {
        for d in &c.detections {
            out.push(finding("cluster_detection", &format!("cluster.{}", d.detector), d.value, d.message.clone()));
        }
        for f in c.faults.iter().filter(|f| f.latency_ms.is_none()) {
            let mut missed = finding("fault_missed", &format!("cluster.fault.{}", f.kind), f.step as f64, format!("{} injected on rank {} at step {} was never detected", f.kind, f.rank, f.step));
            missed.severity = trackiq_schemas::Severity::Block;
            out.push(missed);
        }
    }
    out
}

/// A recent change point in the bad direction: a sustained step that single-run thresholds
/// may miss while each run stays just inside its limit.
pub fn step_change(cfg: &FindingsConfig, t: &trackiq_schemas::TrendResult, direction: trackiq_schemas::Direction) -> Option<Finding> {
    if cfg.step_recent_runs == 0 {
        return None;
    }
    let cp = t.change_points.last()?;
    let recent = cp.index as usize + cfg.step_recent_runs >= t.points as usize;
    let worse = match direction {
        trackiq_schemas::Direction::LowerIsBetter => cp.change_pct > 0.0,
        trackiq_schemas::Direction::HigherIsBetter => cp.change_pct < 0.0,
    };
    (recent && worse && cp.change_pct.abs() >= cfg.step_min_change_pct).then(|| {
        finding(
            "step_change",
            &t.metric,
            cp.change_pct,
            format!(
                "{} changed {:+.1} % ({:.4} → {:.4}) at run {}; change point p = {:.2e}",
                t.metric, cp.change_pct, cp.mean_before, cp.mean_after, cp.run_id, cp.pvalue
            ),
        )
    })
}

/// `runs` consecutive values (oldest first, the judged run last) all worse than the mean of
/// `baseline` by more than the configured percentage, and their mean significantly worse
/// (pooled t-test at `alpha`): a shift each run alone stays just inside, but not noise.
pub fn sustained_shift(cfg: &FindingsConfig, metric: &str, runs: &[f64], baseline: &[f64], direction: trackiq_schemas::Direction, alpha: f64) -> Option<Finding> {
    if cfg.sustained_runs == 0 || runs.len() < cfg.sustained_runs || baseline.is_empty() {
        return None;
    }
    let mean = baseline.iter().sum::<f64>() / baseline.len() as f64;
    if mean == 0.0 {
        return None;
    }
    let worse = |v: f64| {
        let change = (v - mean) / mean.abs() * 100.0;
        match direction {
            trackiq_schemas::Direction::LowerIsBetter => change > cfg.sustained_pct,
            trackiq_schemas::Direction::HigherIsBetter => change < -cfg.sustained_pct,
        }
    };
    let last = &runs[runs.len() - cfg.sustained_runs..];
    if !last.iter().all(|&v| worse(v)) {
        return None;
    }
    let p = trackiq_stats::significance::shift_pvalue(last, baseline, direction).filter(|p| *p < alpha)?;
    let current = last[last.len() - 1];
    Some(finding(
        "sustained_shift",
        metric,
        current,
        format!(
            "{metric}: the last {} runs are all more than {} % worse than the baseline mean {mean:.4} (shift p = {p:.2e})",
            cfg.sustained_runs, cfg.sustained_pct
        ),
    ))
}

#[cfg(test)]
mod tests {
    use trackiq_schemas::{MetricSummary, RunStarted, RunStatus, RunSummary};

    use super::*;

    #[test]
    fn an_allreduce_tail_is_about_times_not_the_collectives_error_or_bytes() {
        let m = |metric: &str, unit: &str| MetricSummary {
            metric: metric.into(), unit: unit.into(), count: 100, mean: 1.0, stdev: None, min: 0.5, p50: 1.0, p90: 1.5, p95: 1.8, p99: 2.0, max: 2.0,
            histogram: None, percentile_error: None,
        };
        let run = RunStarted {
            run_id: "r".into(), tool: "t".into(), tool_version: "0".into(), timestamp: 0, platform: Default::default(), workload: Default::default(),
            version: Default::default(), labels: Default::default(), series_id: "s".into(),
        };
        let s = RunSummary {
            run, status: RunStatus::Completed, ended_at: 1, sample_count: 300, expected_sample_count: None, error: None,
            metrics: vec![m("cluster.allreduce_ms", "ms"), m("cluster.allreduce_error", "ratio"), m("cluster.allreduce_bytes", "bytes")], derived: vec![], cluster: None,
        };
        let found: Vec<String> = from_summary(&crate::verdict::config::FindingsConfig::default(), &s).into_iter().map(|f| f.metric).collect();
        assert_eq!(found, ["cluster.allreduce_ms"], "p99 = 2 × p50 > 1.3 × for all three; only the time is a tail");
    }
}

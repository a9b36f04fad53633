//! The seed's finding rules: consistency regressions (confirmed by a variance test),
//! all-reduce tail latency, and scaling efficiency.

use trackiq_schemas::{Finding, RunSummary};

use super::baselines::{BaselineSpread, Figure, finding};
use super::config::FindingsConfig;

/// Standard deviation up by more than the threshold, and a one-sided F-test (the run's
/// variance against the baseline's pooled variance) significant.
pub fn consistency(cfg: &FindingsConfig, f: &Figure, base: &BaselineSpread) -> Option<Finding> {
    let s = f.stdev?;
    if f.count < 2 || base.stdev <= 0.0 || base.dof < 1.0 {
        return None;
    }
    let increase = (s - base.stdev) / base.stdev * 100.0;
    if increase <= cfg.stdev_increase_pct {
        return None;
    }
    let p = trackiq_stats::hypothesis::variance_increase_pvalue(s, f.count, base.stdev, base.dof)?;
    (p < cfg.variance_test_pvalue).then(|| {
        finding(
            "consistency_regression",
            &f.metric,
            s,
            format!("stdev of {} rose {increase:.1} % ({:.4} → {s:.4}); F-test p = {p:.3e}", f.metric, base.stdev),
        )
    })
}

/// Findings read from one summary alone.
pub fn from_summary(cfg: &FindingsConfig, s: &RunSummary) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &s.metrics {
        let name = m.metric.to_ascii_lowercase();
        if (name.contains("allreduce") || name.contains("all_reduce")) && m.p50 > 0.0 && m.p99 > cfg.allreduce_tail_ratio * m.p50 {
            let ratio = m.p99 / m.p50;
            out.push(finding("allreduce_tail", &m.metric, ratio, format!("{} p99 is {ratio:.2}× p50 (limit {}×)", m.metric, cfg.allreduce_tail_ratio)));
        }
    }
    let named = s.metrics.iter().map(|m| (&m.metric, m.mean)).chain(s.derived.iter().map(|d| (&d.name, d.value)));
    for (name, value) in named {
        if name.to_ascii_lowercase().contains("scaling_efficiency") && value < cfg.min_scaling_efficiency_pct {
            out.push(finding("scaling_efficiency", name, value, format!("{name} is {value:.1} % (below {} %)", cfg.min_scaling_efficiency_pct)));
        }
    }
    out
}

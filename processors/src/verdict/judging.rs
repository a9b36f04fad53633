//! One metric judged against its baseline runs (the significance model or one of Bencher's),
//! then the whole run: Holm's adjustment across its metrics, the noisy-host rule, and the
//! run's severity from the metrics that gate it.

use trackiq_schemas::{Direction, Finding, MetricVerdict, Severity};
use trackiq_stats::significance::{self, Evidence, RunFigure, SignificanceSpec};

use super::config::Judging;

/// A metric judged on its own, before the run's other metrics are taken into account.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub severity: Severity,
    pub baseline: Option<f64>,
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    pub change_pct: Option<f64>,
    pub pvalue: Option<f64>,
    /// The significance model's evidence, to be re-decided after Holm's adjustment.
    pub evidence: Option<(Evidence, SignificanceSpec)>,
}

/// Judges `candidate` against `baseline` (oldest first) with `judging`; `alpha` is the
/// significance level before any adjustment.
pub fn judge_metric(candidate: &RunFigure, baseline: &[RunFigure], direction: Direction, judging: &Judging, alpha: f64) -> Judged {
    match *judging {
        Judging::Bencher(spec) => {
            let values: Vec<f64> = baseline.iter().map(|b| b.value).collect();
            let j = trackiq_stats::judge(candidate.value, &values, direction, &spec);
            Judged { severity: j.severity, baseline: j.baseline, lower_limit: j.lower_limit, upper_limit: j.upper_limit, change_pct: j.change_pct, pvalue: j.pvalue, evidence: None }
        }
        Judging::Significance { warn_pct, block_pct, min_samples } => {
            let spec = SignificanceSpec { warn_pct, block_pct, alpha };
            let Some(e) = significance::evidence(candidate, baseline, direction) else {
                return Judged { severity: Severity::InsufficientData, baseline: None, lower_limit: None, upper_limit: None, change_pct: None, pvalue: None, evidence: None };
            };
            let band = e.baseline.abs() * warn_pct / 100.0;
            let mut j = Judged {
                severity: significance::severity(&e, e.pvalue_worse, direction, &spec),
                baseline: Some(e.baseline),
                lower_limit: Some(e.baseline - band),
                upper_limit: Some(e.baseline + band),
                change_pct: e.change_pct.is_finite().then_some(e.change_pct),
                pvalue: e.pvalue_worse,
                evidence: Some((e, spec)),
            };
            if baseline.len() < min_samples {
                j.severity = Severity::InsufficientData;
                j.evidence = None;
            }
            j
        }
    }
}

/// Holm's adjustment within each family of the run's metrics judged by significance — the
/// gating ones, and separately the others — and each such metric re-decided on it.
pub fn adjust_for_multiplicity(verdicts: &mut [MetricVerdict], judged: &[Judged]) {
    for gates in [true, false] {
        let family: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].gates == gates && judged[i].evidence.is_some_and(|(e, _)| e.pvalue_worse.is_some())).collect();
        let raw: Vec<f64> = family.iter().filter_map(|&i| judged[i].pvalue).collect();
        for (&i, p) in family.iter().zip(significance::holm(&raw)) {
            let Some((e, spec)) = &judged[i].evidence else { continue };
            verdicts[i].pvalue_adjusted = Some(p);
            verdicts[i].severity = significance::severity(e, Some(p), verdicts[i].direction, spec);
        }
    }
}

/// Metric carrying how busy the machine was with other processes during a run.
pub const HOST_CONTENTION_METRIC: &str = "host_other_cpu_percent";

/// A run measured while other processes used `noisy_host_pp` points more CPU than during its
/// baseline runs cannot block: its gating regressions become warnings, with a finding that
/// says why. Its slowdown may be real, but it cannot be told apart from the contention.
pub fn noisy_host(verdicts: &mut [MetricVerdict], candidate: Option<f64>, baseline: &[f64], noisy_host_pp: f64) -> Option<Finding> {
    let (Some(c), false) = (candidate, baseline.is_empty() || noisy_host_pp <= 0.0) else { return None };
    let b = baseline.iter().sum::<f64>() / baseline.len() as f64;
    if c - b <= noisy_host_pp {
        return None;
    }
    let mut downgraded = Vec::new();
    for m in verdicts.iter_mut().filter(|m| m.gates && m.severity == Severity::Block) {
        m.severity = Severity::Warn;
        downgraded.push(format!("{} {:+.1} %", m.metric, m.change_pct.unwrap_or(f64::NAN)));
    }
    let moved = if downgraded.is_empty() { String::new() } else { format!("; not blocking on {}", downgraded.join(", ")) };
    Some(super::baselines::finding(
        "noisy_host",
        HOST_CONTENTION_METRIC,
        c,
        format!("other processes used {c:.0} % of the machine's CPU during this run against {b:.0} % during its baseline runs: re-run on a quiet machine to confirm{moved}"),
    ))
}

/// Rules that judge one metric's history: they count toward the run only for gating metrics.
const PER_METRIC_RULES: &[&str] = &["consistency_regression", "sustained_shift", "step_change"];

/// The run's severity: the worst of its gating metrics and of its findings (a per-metric
/// finding only where that metric gates); `insufficient_data` when nothing gating was judged.
pub fn run_severity(verdicts: &[MetricVerdict], findings: &[Finding]) -> Severity {
    let gates = |metric: &str| verdicts.iter().any(|m| m.metric == metric && m.gates);
    // A run with nothing gating (only telemetry) passes once anything of it was judged.
    let nothing_gates = !verdicts.iter().any(|m| m.gates) && verdicts.iter().any(|m| m.severity != Severity::InsufficientData);
    verdicts
        .iter()
        .filter(|m| m.gates)
        .map(|m| m.severity)
        .chain(nothing_gates.then_some(Severity::Pass))
        .chain(findings.iter().filter(|f| !PER_METRIC_RULES.contains(&f.rule.as_str()) || gates(&f.metric)).map(|f| f.severity))
        .max_by_key(|s| s.rank())
        .unwrap_or(Severity::InsufficientData)
}

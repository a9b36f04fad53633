//! One metric judged against its baseline runs (the significance model or one of Bencher's),
//! then the whole run: Holm's adjustment across its metrics, the noisy-host rule, and the
//! run's severity from the metrics that gate it.

use trackiq_schemas::{Direction, Finding, MetricVerdict, Severity};
use trackiq_stats::Judgement;
use trackiq_stats::significance::{self, Evidence, RunFigure, Samples, SignificanceSpec};

use super::config::Judging;

/// A metric judged on its own, before the run's other metrics are taken into account.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Severity, baseline, limits, change and p-value, as every model reports them.
    pub judgement: Judgement,
    /// The significance model's evidence, to be re-decided after Holm's adjustment.
    pub evidence: Option<(Evidence, SignificanceSpec)>,
}

/// Judges `candidate` against `baseline` (oldest first) with `judging`; `alpha` is the
/// significance level before any adjustment; `samples` says what the runs' samples are.
pub fn judge_metric(candidate: &RunFigure, baseline: &[RunFigure], direction: Direction, judging: &Judging, alpha: f64, samples: Samples) -> Judged {
    match *judging {
        Judging::Bencher(spec) => {
            let values: Vec<f64> = baseline.iter().map(|b| b.value).collect();
            Judged { judgement: trackiq_stats::judge(candidate.value, &values, direction, &spec), evidence: None }
        }
        Judging::Significance { warn_pct, block_pct, min_samples } => {
            let spec = SignificanceSpec { warn_pct, block_pct, alpha };
            let Some(e) = significance::evidence_of(candidate, baseline, direction, samples) else {
                let judgement = Judgement { severity: Severity::InsufficientData, baseline: None, lower_limit: None, upper_limit: None, change_pct: None, pvalue: None };
                return Judged { judgement, evidence: None };
            };
            let band = e.baseline.abs() * warn_pct / 100.0;
            let enough = baseline.len() >= min_samples;
            let judgement = Judgement {
                severity: if enough { significance::severity(&e, e.pvalue_worse, direction, &spec) } else { Severity::InsufficientData },
                baseline: Some(e.baseline),
                lower_limit: Some(e.baseline - band),
                upper_limit: Some(e.baseline + band),
                change_pct: e.change_pct.is_finite().then_some(e.change_pct),
                pvalue: e.pvalue_worse,
            };
            Judged { judgement, evidence: enough.then_some((e, spec)) }
        }
    }
}

/// Holm's adjustment within each family of the run's metrics judged by significance — the
/// gating ones, and separately the others — and each such metric re-decided on it.
pub fn adjust_for_multiplicity(verdicts: &mut [MetricVerdict], judged: &[Judged]) {
    for gates in [true, false] {
        let family: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].gates == gates && judged[i].evidence.is_some_and(|(e, _)| e.pvalue_worse.is_some())).collect();
        let raw: Vec<f64> = family.iter().filter_map(|&i| judged[i].judgement.pvalue).collect();
        for (&i, p) in family.iter().zip(significance::holm(&raw)) {
            let Some((e, spec)) = &judged[i].evidence else { continue };
            verdicts[i].pvalue_adjusted = Some(p);
            verdicts[i].severity = significance::severity(e, Some(p), verdicts[i].direction, spec);
        }
    }
}

/// Metric carrying how busy the machine was with other processes during a run.
pub const HOST_CONTENTION_METRIC: &str = "host_other_cpu_percent";

/// Metric of the harness' machine-speed probe (producers' `telemetry::probe`).
pub const SPEED_PROBE_METRIC: &str = "host_speed_probe_ms";

/// What a run's machine looked like against its baseline runs': a figure of the candidate and
/// the same figure of each baseline run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFigures {
    /// `host_other_cpu_percent`.
    pub contention: Option<(f64, Vec<f64>)>,
    /// `host_speed_probe_ms` (median of the run's probes).
    pub probe: Option<(f64, Vec<f64>)>,
}

fn mean(x: &[f64]) -> Option<f64> {
    (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64)
}

/// Why a run's machine was not the machine of its baseline runs, if it was not, and by how
/// much slower the machine itself was (percent), where the probe says.
fn noisy_reason(host: &HostFigures, noisy_host_pct: f64, slow_host_pct: f64) -> Option<(f64, String, Option<f64>)> {
    if let Some((c, base)) = &host.contention
        && let Some(b) = mean(base)
        && noisy_host_pct > 0.0
    {
        let (left_c, left_b) = (100.0 - c, 100.0 - b);
        let lost_pct = if left_b > 0.0 { (left_b - left_c) / left_b * 100.0 } else { 0.0 };
        if lost_pct > noisy_host_pct {
            let why = format!("other processes used {c:.0} % of the machine's CPU during this run against {b:.0} % during its baseline runs, leaving the benchmark {lost_pct:.0} % less");
            return Some((*c, why, None));
        }
    }
    if let Some((c, base)) = &host.probe
        && let Some(b) = mean(base)
        && slow_host_pct > 0.0
        && b > 0.0
    {
        let slower = (c - b) / b * 100.0;
        if slower > slow_host_pct {
            let why = format!("the machine itself was {slower:.0} % slower: a fixed CPU probe took {c:.3} ms of CPU against {b:.3} ms during its baseline runs (a hypervisor or thermal slowdown, invisible to the processes)");
            return Some((*c, why, Some(slower)));
        }
    }
    None
}

/// Whether a machine `slower_pct` slower explains a metric's change: once the change is
/// divided by the machine's slowdown, it no longer exceeds `block_pct`.
fn explained_by(m: &MetricVerdict, slower_pct: f64, block_pct: f64) -> bool {
    let (c, s) = (m.change_pct.unwrap_or(0.0) / 100.0, slower_pct / 100.0);
    let adjusted = match m.direction {
        Direction::LowerIsBetter => (1.0 + c) / (1.0 + s) - 1.0,
        Direction::HigherIsBetter => -((1.0 + c) * (1.0 + s) - 1.0),
    };
    adjusted * 100.0 <= block_pct
}

/// A run measured on a machine that was not the machine of its baseline runs — other processes
/// left the benchmark `noisy_host_pct` percent less CPU (100 − `host_other_cpu_percent`), or
/// the machine-speed probe ran `slow_host_pct` percent slower — cannot block on what the
/// machine explains: those gating regressions become warnings, with a `noisy_host` finding that
/// says why. Contention cannot be converted into a slowdown of this benchmark (it depends on
/// its threads), so under contention every block becomes a warning; a slower machine explains
/// only changes that, divided by its slowdown, stay within `block_pct` (a +87 % regression on
/// a 5 % slower machine still blocks). Contention is relative, not in points: a benchmark left
/// 27 % of the CPU instead of 38 % lost as much as one left 60 % instead of 85 % (measured:
/// +55 % latency when a hog joined two busy loops, 62 → 73 %).
pub fn noisy_host(verdicts: &mut [MetricVerdict], host: &HostFigures, noisy_host_pct: f64, slow_host_pct: f64, block_pct: f64) -> Option<Finding> {
    let (value, why, slower) = noisy_reason(host, noisy_host_pct, slow_host_pct)?;
    let mut downgraded = Vec::new();
    // A busy or slow machine explains slowness, not failures: a failure rate is never downgraded.
    for m in verdicts.iter_mut().filter(|m| m.gates && m.severity == Severity::Block && !trackiq_schemas::catalog::is_rate(&m.metric)) {
        if slower.is_some_and(|s| !explained_by(m, s, block_pct)) {
            continue;
        }
        m.severity = Severity::Warn;
        downgraded.push(format!("{} {:+.1} %", m.metric, m.change_pct.unwrap_or(f64::NAN)));
    }
    let moved = if downgraded.is_empty() { String::new() } else { format!("; not blocking on {}", downgraded.join(", ")) };
    let metric = if slower.is_none() { HOST_CONTENTION_METRIC } else { SPEED_PROBE_METRIC };
    let mut f = super::baselines::finding("noisy_host", metric, value, format!("{why}: re-run on a quiet machine to confirm{moved}"));
    // Only a verdict it changed makes the finding a warning: a run that passed on a busy
    // machine still passes, with the note.
    if downgraded.is_empty() {
        f.severity = Severity::Pass;
    }
    Some(f)
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

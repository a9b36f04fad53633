//! A/A and step-shift simulations of the verdict: noise-only series and series with a step,
//! judged by the real [`Baselines`] code. A complement to `trackiq bench verdicts` (real runs
//! on this machine), never the evidence on its own: it shows how the default model behaves
//! at a known coefficient of variation. The noise is a fixed-seed generator, so the figures
//! are reproducible.

use std::collections::BTreeMap;

use trackiq_schemas::{MetricSummary, Platform, RunStarted, RunStatus, RunSummary, Severity, VersionInfo, Workload};

use super::{Baselines, VerdictConfig};

use trackiq_stats::synthetic::Noise;

fn run(series: &str, i: usize, latency_ms: f64) -> RunSummary {
    RunSummary {
        run: RunStarted {
            run_id: format!("{series}-{i}"),
            tool: "sim".into(),
            tool_version: "0".into(),
            timestamp: i as i64 * 60_000_000,
            platform: Platform::default(),
            workload: Workload::default(),
            version: VersionInfo::default(),
            labels: BTreeMap::new(),
            series_id: series.into(),
        },
        status: RunStatus::Completed,
        ended_at: i as i64 * 60_000_000 + 1,
        sample_count: 1,
        expected_sample_count: Some(1),
        error: None,
        metrics: vec![MetricSummary {
            metric: "latency_ms".into(),
            unit: "ms".into(),
            count: 1,
            mean: latency_ms,
            stdev: None,
            min: latency_ms,
            p50: latency_ms,
            p90: latency_ms,
            p95: latency_ms,
            p99: latency_ms,
            max: latency_ms,
            histogram: None,
            percentile_error: None,
        }],
        derived: Vec::new(),
        cluster: None,
    }
}

/// Runs of each simulated series; the step (if any) comes after `STEP_AT` of them.
pub const RUNS: usize = 30;
/// Baseline runs before the step.
pub const STEP_AT: usize = 20;
/// Runs after the step within which it must be flagged.
pub const DETECT_WITHIN: usize = 3;
/// Fixed seed of the default simulation.
pub const SEED: u64 = 0x7EAC_2026_1123;

/// What a simulation measured, per run (every metric of the run, as the verdict decides).
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationResult {
    pub cv: f64,
    pub step: f64,
    pub judged: usize,
    pub false_blocks: usize,
    pub false_warns: usize,
    pub series: usize,
    /// Series whose step was judged `block` within `DETECT_WITHIN` runs.
    pub detected_block: usize,
    /// ... judged `warn` or `block`.
    pub detected_flagged: usize,
}

impl SimulationResult {
    pub fn false_block_pct(&self) -> f64 {
        self.false_blocks as f64 / self.judged.max(1) as f64 * 100.0
    }
    pub fn false_warn_pct(&self) -> f64 {
        self.false_warns as f64 / self.judged.max(1) as f64 * 100.0
    }
    pub fn detected_block_pct(&self) -> f64 {
        self.detected_block as f64 / self.series.max(1) as f64 * 100.0
    }
    pub fn detected_flagged_pct(&self) -> f64 {
        self.detected_flagged as f64 / self.series.max(1) as f64 * 100.0
    }
}

/// `series` noise-only series of `RUNS` runs at coefficient of variation `cv`, then `series`
/// series stepping up by `step` (a fraction: 0.10 = +10 % latency) after `STEP_AT` runs.
pub fn simulate(config: &VerdictConfig, cv: f64, step: f64, series: usize, seed: u64) -> SimulationResult {
    let mut noise = Noise::new(seed);
    let mut b = Baselines::new(config.clone());
    let mut r = SimulationResult { cv, step, judged: 0, false_blocks: 0, false_warns: 0, series, detected_block: 0, detected_flagged: 0 };
    for s in 0..series {
        let id = format!("aa-{s}");
        for i in 0..RUNS {
            let Some((v, _)) = b.judge(&run(&id, i, 100.0 * (1.0 + cv * noise.normal())), 0) else { continue };
            if v.severity == Severity::InsufficientData {
                continue;
            }
            r.judged += 1;
            r.false_blocks += usize::from(v.severity == Severity::Block);
            r.false_warns += usize::from(v.severity == Severity::Warn);
        }
    }
    for s in 0..series {
        let id = format!("step-{s}");
        let (mut block, mut flagged) = (false, false);
        for i in 0..STEP_AT + DETECT_WITHIN {
            let level = if i >= STEP_AT { 100.0 * (1.0 + step) } else { 100.0 };
            let Some((v, _)) = b.judge(&run(&id, i, level * (1.0 + cv * noise.normal())), 0) else { continue };
            if i >= STEP_AT {
                block |= v.severity == Severity::Block;
                flagged |= matches!(v.severity, Severity::Warn | Severity::Block);
            }
        }
        r.detected_block += usize::from(block);
        r.detected_flagged += usize::from(flagged);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIES: usize = 1000;
    /// The goals: per-run false block at most 1 %; a +10 % change flagged within 3 runs
    /// in at least 95 % of series where the run-to-run noise allows it (CV 2 %).
    const MAX_FALSE_BLOCK_PCT: f64 = 1.0;
    const MIN_DETECTION_PCT: f64 = 95.0;

    #[test]
    fn aa_false_blocks_and_step_detection_at_defaults() {
        let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
        for cv in [0.02, 0.05, 0.10] {
            let r = simulate(&VerdictConfig::default(), cv, 0.10, SERIES, seed);
            println!(
                "CV {:>4.1} %: false block {:.2} %, false warn {:.2} % of {} runs; +10 % step within {DETECT_WITHIN} runs: block {:.1} %, warn or block {:.1} %",
                cv * 100.0, r.false_block_pct(), r.false_warn_pct(), r.judged, r.detected_block_pct(), r.detected_flagged_pct()
            );
            assert!(r.false_block_pct() <= MAX_FALSE_BLOCK_PCT, "{r:?}");
            if cv <= 0.02 {
                assert!(r.detected_flagged_pct() >= MIN_DETECTION_PCT, "{r:?}");
            }
        }
    }
}

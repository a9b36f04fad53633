//! A/A and step-shift simulations of the verdict at its defaults (test only).
//!
//! 1,000 noise-only series of 30 runs (CV 2 %) must give at most 1 % false `block`s; a 5 %
//! step shift must be flagged `warn` or `block` within 5 runs in at least 95 % of series.
//! The noise is a fixed-seed generator, so the figures printed are reproducible.

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

const SERIES: usize = 1000;
const RUNS: usize = 30;
const CV: f64 = 0.02;
const SHIFT_AT: usize = 20;
const SHIFT: f64 = 0.05;
const SEED: u64 = 0x7EAC_2026_1123;

fn config() -> VerdictConfig {
    VerdictConfig::default()
}

#[test]
fn aa_false_blocks_and_step_detection_at_defaults() {
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut noise = Noise::new(seed);
    let mut b = Baselines::new(config());
    let (mut judged, mut false_blocks, mut false_warns) = (0usize, 0usize, 0usize);
    for s in 0..SERIES {
        let id = format!("aa-{s}");
        for i in 0..RUNS {
            let (v, _) = b.judge(&run(&id, i, 100.0 * (1.0 + CV * noise.normal())), 0).unwrap();
            judged += 1;
            false_blocks += usize::from(v.severity == Severity::Block);
            false_warns += usize::from(v.severity == Severity::Warn);
        }
    }
    let mut detected = 0usize;
    for s in 0..SERIES {
        let id = format!("step-{s}");
        let mut flagged = false;
        for i in 0..RUNS {
            let level = if i >= SHIFT_AT { 100.0 * (1.0 + SHIFT) } else { 100.0 };
            let (v, _) = b.judge(&run(&id, i, level * (1.0 + CV * noise.normal())), 0).unwrap();
            if (SHIFT_AT..SHIFT_AT + 5).contains(&i) && matches!(v.severity, Severity::Warn | Severity::Block) {
                flagged = true;
            }
        }
        detected += usize::from(flagged);
    }
    let false_rate = false_blocks as f64 / judged as f64;
    let detect_rate = detected as f64 / SERIES as f64;
    println!(
        "A/A: {false_blocks} false blocks ({:.3} %) and {false_warns} false warns ({:.2} %) in {judged} verdicts",
        false_rate * 100.0,
        false_warns as f64 / judged as f64 * 100.0
    );
    println!("5 % step: flagged within 5 runs in {detected} of {SERIES} series ({:.1} %)", detect_rate * 100.0);
    assert!(false_rate <= 0.01, "false block rate {false_rate}");
    assert!(detect_rate >= 0.95, "detection rate {detect_rate}");
}


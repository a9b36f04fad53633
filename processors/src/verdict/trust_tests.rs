//! The verdict does not cry wolf: telemetry never gates, a noisy machine warns instead of
//! blocking, p-values are adjusted across a run's metrics, undeclared metrics say so.

use std::collections::BTreeMap;

use trackiq_schemas::{MetricSummary, Platform, RunStarted, RunStatus, RunSummary, Severity, VersionInfo, Workload};

use super::{Baselines, VerdictConfig};

fn metric(name: &str, unit: &str, mean: f64) -> MetricSummary {
    MetricSummary {
        metric: name.into(), unit: unit.into(), count: 1, mean, stdev: None,
        min: mean, p50: mean, p90: mean, p95: mean, p99: mean, max: mean, histogram: None, percentile_error: None,
    }
}

fn run(i: i64, metrics: Vec<MetricSummary>) -> RunSummary {
    RunSummary {
        run: RunStarted {
            run_id: format!("r{i}"), tool: "t".into(), tool_version: "0".into(), timestamp: i,
            platform: Platform::default(), workload: Workload::default(), version: VersionInfo::default(),
            labels: BTreeMap::new(), series_id: "s".into(),
        },
        status: RunStatus::Completed, ended_at: i + 1, sample_count: 1, expected_sample_count: None, error: None,
        metrics, derived: vec![], cluster: None,
    }
}

/// Baseline latencies with ~1 % run-to-run variation.
const LATENCY: [f64; 6] = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0];

fn judged_after_baseline(last: Vec<MetricSummary>, extra: impl Fn(usize) -> Vec<MetricSummary>) -> trackiq_schemas::Verdict {
    let mut b = Baselines::new(VerdictConfig::default());
    for (i, l) in LATENCY.iter().enumerate() {
        let mut m = vec![metric("latency_ms", "ms", *l)];
        m.extend(extra(i));
        b.judge(&run(i as i64, m), 0).unwrap();
    }
    b.judge(&run(100, last), 0).unwrap().0
}

#[test]
fn host_telemetry_is_reported_but_never_blocks_the_run() {
    let v = judged_after_baseline(
        vec![metric("latency_ms", "ms", 10.02), metric("memory_used_mib", "MiB", 9000.0), metric("process_rss_mib", "MiB", 900.0)],
        |i| vec![metric("memory_used_mib", "MiB", 4000.0 + i as f64), metric("process_rss_mib", "MiB", 100.0 + i as f64)],
    );
    let mem = v.metrics.iter().find(|m| m.metric == "memory_used_mib").unwrap();
    assert_eq!((mem.severity, mem.gates), (Severity::Block, false), "the metric itself moved, and says so");
    assert_eq!(v.severity, Severity::Pass, "but the run passes: its KPI did not move");
}

#[test]
fn a_kpi_regression_blocks_with_an_interval_and_adjusted_p_values() {
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 11.5), metric("my_score", "", 50.0)], |i| vec![metric("my_score", "", 50.0 + i as f64 * 0.1)]);
    let lat = v.metrics.iter().find(|m| m.metric == "latency_ms").unwrap();
    assert_eq!((lat.severity, v.severity), (Severity::Block, Severity::Block));
    let (lo, hi) = (lat.change_ci_low.unwrap(), lat.change_ci_high.unwrap());
    assert!(lo < lat.change_pct.unwrap() && lat.change_pct.unwrap() < hi && lo > 10.0, "{lat:?}");
    assert!(lat.pvalue_adjusted.unwrap() >= lat.pvalue.unwrap(), "Holm never lowers a p-value");
    assert_eq!(lat.model, "significance");
    let score = v.metrics.iter().find(|m| m.metric == "my_score").unwrap();
    assert!(score.direction_guessed && score.gates, "an undeclared metric is a KPI with a guessed direction");
}

#[test]
fn a_change_within_the_baseline_noise_does_not_warn() {
    let mut b = Baselines::new(VerdictConfig::default());
    for (i, l) in [10.0, 13.0, 8.0, 12.0, 9.0, 11.5].iter().enumerate() {
        b.judge(&run(i as i64, vec![metric("latency_ms", "ms", *l)]), 0).unwrap();
    }
    let v = b.judge(&run(100, vec![metric("latency_ms", "ms", 12.5)]), 0).unwrap().0;
    let lat = &v.metrics[0];
    assert!(lat.change_pct.unwrap() > 10.0, "above the block threshold ...");
    assert_eq!(v.severity, Severity::Pass, "... but not significant against runs varying by ±20 %: {lat:?}");
}

#[test]
fn a_run_on_a_noisy_machine_warns_instead_of_blocking() {
    let quiet = |i: usize| vec![metric("host_other_cpu_percent", "%", 2.0 + i as f64 * 0.5)];
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 15.0), metric("host_other_cpu_percent", "%", 95.0)], quiet);
    let lat = v.metrics.iter().find(|m| m.metric == "latency_ms").unwrap();
    assert_eq!(lat.severity, Severity::Warn);
    assert_eq!(v.severity, Severity::Warn);
    let f = v.findings.iter().find(|f| f.rule == "noisy_host").expect("a noisy_host finding");
    assert!(f.message.contains("95 %") && f.message.contains("latency_ms"), "{}", f.message);
    // The same slowdown on a machine as busy as during its baseline blocks.
    // An unchanged run on a noisier machine passes, with the note.
    let quiet_again = |i: usize| vec![metric("host_other_cpu_percent", "%", 2.0 + i as f64 * 0.5)];
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 10.0), metric("host_other_cpu_percent", "%", 95.0)], quiet_again);
    assert_eq!(v.severity, Severity::Pass);
    assert_eq!(v.findings.iter().find(|f| f.rule == "noisy_host").map(|f| f.severity), Some(Severity::Pass));
    let busy = |i: usize| vec![metric("host_other_cpu_percent", "%", 61.5 + i as f64 * 0.2)];
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 15.0), metric("host_other_cpu_percent", "%", 63.0)], busy);
    assert_eq!(v.severity, Severity::Block);
    // A busy machine getting busier: 62 % → 73 % leaves the benchmark 29 % less CPU.
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 15.0), metric("host_other_cpu_percent", "%", 73.0)], busy);
    assert_eq!(v.severity, Severity::Warn);
}

#[test]
fn a_run_on_a_slower_machine_warns_instead_of_blocking() {
    // The machine-speed probe (a fixed CPU loop) took 9 % longer than during the baseline runs:
    // the hypervisor slowed everything, the code did not change.
    let steady = |i: usize| vec![metric("host_speed_probe_ms", "ms", 1.0 + i as f64 * 0.002)];
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 11.5), metric("host_speed_probe_ms", "ms", 1.09)], steady);
    assert_eq!(v.severity, Severity::Warn);
    let f = v.findings.iter().find(|f| f.rule == "noisy_host").expect("a noisy_host finding");
    assert!(f.message.contains("slower") && f.metric == "host_speed_probe_ms", "{}", f.message);
    // A regression far beyond what the slower machine explains still blocks.
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 18.0), metric("host_speed_probe_ms", "ms", 1.09)], steady);
    assert_eq!(v.severity, Severity::Block);
    // A code regression does not move the probe: it blocks.
    let v = judged_after_baseline(vec![metric("latency_ms", "ms", 11.5), metric("host_speed_probe_ms", "ms", 1.004)], steady);
    assert_eq!(v.severity, Severity::Block);
}

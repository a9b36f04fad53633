//! Sample reports for screenshots and eyeballing, written to /tmp by an ignored test:
//! `cargo test -p trackiq-sinks -- --ignored write_sample_reports`.

use super::compare::{Comparison, MetricComparison, RunIdentity, render_compare};
use super::render;
use super::tests::{cluster_verdict, llm_verdict};

/// Two serving runs: B is faster and steadier but draws more power for the same work.
fn comparison() -> Comparison {
    let id = |run: &str, commit: &str| RunIdentity {
        run_id: run.into(),
        fields: [("workload", "llama-7b-serve"), ("hardware", "dgx-h100-07"), ("batch size", "8"), ("git commit", commit), ("precision", "bf16")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let m = |metric: &str, unit: &str, a: f64, b: f64, p: Option<f64>, vp: Option<f64>, sd: Option<(f64, f64)>, n: usize| MetricComparison {
        metric: metric.into(), unit: unit.into(), direction: trackiq_schemas::metrics::direction_of(metric), a: Some(a), b: Some(b), pvalue: p, variance_pvalue: vp,
        stdev_a: sd.map(|s| s.0), stdev_b: sd.map(|s| s.1), n_a: n, n_b: n,
    };
    Comparison {
        a: id("llm-7b-0041", "9c0d2e7"),
        b: id("llm-7b-0042", "3f2a9c1"),
        alpha: 0.05,
        metrics: vec![
            m("latency_ms", "ms", 131.0, 120.0, Some(2.1e-5), Some(0.004), Some((41.0, 30.0)), 200),
            m("ttft_ms", "ms", 44.0, 45.0, Some(0.41), Some(0.7), Some((4.1, 4.0)), 200),
            m("throughput_samples_per_sec", "items/s", 61.2, 64.0, None, None, None, 0),
            m("power_consumption_watts", "W", 238.0, 250.0, None, None, None, 0),
            m("performance_per_watt", "items/s/W", 0.257, 0.256, None, None, None, 0),
            m("gpu_utilization_percent", "%", 44.0, 41.0, Some(0.12), Some(0.5), Some((8.0, 9.0)), 6),
        ],
        notes: vec!["consistency: ttft_ms stdev 4.1 → 4.0 (−2 %), not significant".into()],
    }
}

#[test]
#[ignore = "writes sample reports to /tmp for screenshots"]
fn write_sample_reports() {
    for (path, html) in [
        ("/tmp/report-run.html", render(&llm_verdict())),
        ("/tmp/report-cluster.html", render(&cluster_verdict())),
        ("/tmp/report-compare.html", render_compare(&comparison())),
    ] {
        std::fs::write(path, html.expect("renders")).expect("writes /tmp");
        eprintln!("wrote {path}");
    }
}

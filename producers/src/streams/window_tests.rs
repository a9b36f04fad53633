use std::collections::BTreeMap;

use super::*;

const SECOND: i64 = 1_000_000;

fn rules() -> WindowRules {
    WindowRules { window_us: 60 * SECOND, max_samples: 1_000, tool: "prometheus" }
}

fn target() -> Target {
    Target { job: "llm-serving".into(), instance: "gpu-7:8000".into(), labels: BTreeMap::from([("team".into(), "inference".into())]) }
}

fn ttft(cumulative: &[(f64, f64)]) -> Point {
    Point { name: "vllm:time_to_first_token_seconds".into(), labels: BTreeMap::from([("model_name".into(), "m".into())]), reading: Reading::CumulativeHistogram(Buckets::from_cumulative(cumulative.to_vec())) }
}

fn obs(at_us: i64, version: &str, points: Vec<Point>) -> Observation {
    Observation { target: target(), at_us, version: Some(version.into()), points }
}

#[test]
fn a_deploy_closes_the_window_and_the_next_runs_carry_the_new_version() {
    let mut w = Windows::new(rules());
    let t0 = 1_800_000 * 60 * SECOND; // a window boundary
    assert!(w.observe(obs(t0, "v1", vec![ttft(&[(0.1, 0.0), (0.2, 0.0), (f64::INFINITY, 0.0)])])).is_empty());
    // 100 requests in the interval, all in (0.1, 0.2]: median 0.15 s, p99 0.199 s.
    assert!(w.observe(obs(t0 + 15 * SECOND, "v1", vec![ttft(&[(0.1, 0.0), (0.2, 100.0), (f64::INFINITY, 100.0)])])).is_empty());
    let closed = w.observe(obs(t0 + 30 * SECOND, "v2", vec![ttft(&[(0.1, 0.0), (0.2, 100.0), (f64::INFINITY, 150.0)])]));
    assert_eq!(closed.len(), 1, "the version change closed v1's window");
    let r = &closed[0];
    assert_eq!((r.run.version.version_tag.as_deref(), r.run.workload.name.as_str(), r.run.platform.hardware_name.as_str()), (Some("v1"), "llm-serving", "gpu-7:8000"));
    assert_eq!((r.run.timestamp, r.ended_at, r.status), (t0, t0 + 30 * SECOND, RunStatus::Completed));
    assert_eq!(r.run.labels["source"], "prometheus");
    let metrics: Vec<(&str, f64)> = r.samples.iter().map(|s| (s.metric.as_str(), s.value)).collect();
    assert_eq!(metrics.len(), 2);
    assert!((metrics[0].1 - 150.0).abs() < 1e-9 && metrics[0].0 == "ttft_ms", "{metrics:?}");
    assert!((metrics[1].1 - 199.0).abs() < 1e-9 && metrics[1].0 == "ttft_p99_ms", "{metrics:?}");
    // v2's window is the same series, and the rest of the aligned minute.
    let rest = w.close_due(t0 + 60 * SECOND);
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].run.series_id.as_str(), rest[0].run.version.version_tag.as_deref()), (r.run.series_id.as_str(), Some("v2")));
    // The interval after the deploy: 50 requests, all in the open bucket: p50 floors at 200 ms.
    assert_eq!(rest[0].samples.iter().map(|s| s.value).collect::<Vec<_>>(), vec![200.0, 200.0]);
    assert_ne!(rest[0].run.run_id, r.run.run_id);
}

#[test]
fn counters_become_rates_and_resets_count_from_zero() {
    let mut w = Windows::new(rules());
    let counter = |v: f64| vec![Point { name: "requests_total".into(), labels: BTreeMap::new(), reading: Reading::Cumulative(v) }];
    let t0 = 0;
    w.observe(obs(t0, "v1", counter(100.0)));
    w.observe(obs(t0 + 10 * SECOND, "v1", counter(150.0)));
    w.observe(obs(t0 + 20 * SECOND, "v1", counter(20.0)));
    let r = w.close_all(t0 + 30 * SECOND);
    let rates: Vec<(String, f64, String)> = r[0].samples.iter().map(|s| (s.metric.clone(), s.value, s.unit.clone())).collect();
    assert_eq!(rates, vec![("scraped.requests_per_second".into(), 5.0, "/s".into()), ("scraped.requests_per_second".into(), 2.0, "/s".into())]);
}

#[test]
fn dcgm_gauges_per_gpu_and_node_exporter_cpu_and_memory() {
    let mut w = Windows::new(rules());
    let gauge = |name: &str, labels: &[(&str, &str)], v: f64| Point { name: name.into(), labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), reading: Reading::Gauge(v) };
    let cpu = |cpu: &str, mode: &str, v: f64| Point { name: "node_cpu_seconds_total".into(), labels: BTreeMap::from([("cpu".into(), cpu.into()), ("mode".into(), mode.into())]), reading: Reading::Cumulative(v) };
    let points = |idle: f64, user: f64| {
        vec![
            gauge("DCGM_FI_DEV_POWER_USAGE", &[("gpu", "1"), ("UUID", "GPU-x")], 287.5),
            gauge("DCGM_FI_DEV_FB_USED", &[("gpu", "1")], 40_000.0),
            gauge("node_memory_MemTotal_bytes", &[], 8.0 * 1024.0 * 1024.0 * 1024.0),
            gauge("node_memory_MemAvailable_bytes", &[], 6.0 * 1024.0 * 1024.0 * 1024.0),
            gauge("node_filesystem_avail_bytes", &[("mountpoint", "/")], 1e9),
            cpu("0", "idle", idle),
            cpu("0", "user", user),
        ]
    };
    w.observe(obs(0, "v1", points(100.0, 50.0)));
    w.observe(obs(10 * SECOND, "v1", points(102.5, 57.5)));
    let r = &w.close_all(20 * SECOND)[0];
    let second: BTreeMap<&str, (f64, Option<i32>, &str)> = r.samples.iter().filter(|s| s.step == Some(1)).map(|s| (s.metric.as_str(), (s.value, s.rank, s.unit.as_str()))).collect();
    assert_eq!(second["gpu_power_watts"], (287.5, Some(1), "W"));
    assert_eq!(second["gpu_memory_used_mib"], (40_000.0, Some(1), "MiB"));
    assert_eq!(second["cpu_utilization_percent"], (75.0, None, "%"), "7.5 of 10 CPU seconds busy");
    assert_eq!(second["memory_used_mib"], (2048.0, None, "MiB"));
    assert_eq!(second["memory_utilization_percent"], (25.0, None, "%"));
    assert_eq!(second["scraped.node_memory_memtotal_bytes"].2, "B");
    assert!(!second.keys().any(|k| k.contains("filesystem")), "unknown series with labels are not kept: {second:?}");
}

#[test]
fn a_silent_target_raises_once_then_its_window_fails() {
    let mut w = Windows::new(rules());
    let t = target();
    assert_eq!(w.failed(&t, 0, "connection refused", 2).1, None);
    let (_, raised) = w.failed(&t, 15 * SECOND, "connection refused", 2);
    let run_id = raised.expect("the second failure in a row raises");
    assert_eq!(w.failed(&t, 30 * SECOND, "connection refused", 2).1, None, "raised once per outage");
    let (closed, _) = w.failed(&t, 60 * SECOND, "connection refused", 2);
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].run.run_id.as_str(), closed[0].status), (run_id.as_str(), RunStatus::Failed));
    assert!(closed[0].error.as_deref().unwrap().contains("connection refused"));
}

#[test]
fn a_full_window_closes_early() {
    let mut w = Windows::new(WindowRules { max_samples: 2, ..rules() });
    let g = || vec![Point { name: "load".into(), labels: BTreeMap::new(), reading: Reading::Gauge(1.0) }];
    assert!(w.observe(obs(0, "v1", g())).is_empty());
    assert!(w.observe(obs(SECOND, "v1", g())).is_empty());
    let closed = w.observe(obs(2 * SECOND, "v1", g()));
    assert_eq!((closed.len(), closed[0].samples.len()), (1, 2));
    assert_eq!(w.open_samples(), 1);
}

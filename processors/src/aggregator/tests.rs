//! Aggregation tested directly, without Kafka.

use std::collections::BTreeMap;

use trackiq_schemas::{Platform, RunStatus, Sample, SampleBatch, VersionInfo, Workload};

use super::energy::CHILD_PEAK_RSS_METRIC;
use super::*;
use trackiq_infra::runtime::Position;

fn pos(topic: &str, partition: i32, offset: i64) -> Position {
    Position { topic: topic.into(), partition, offset }
}

fn started(id: &str, ts: i64) -> RunStarted {
    RunStarted {
        run_id: id.into(),
        tool: "t".into(),
        tool_version: "0".into(),
        timestamp: ts,
        platform: Platform::default(),
        workload: Workload::default(),
        version: VersionInfo::default(),
        labels: BTreeMap::new(),
        series_id: "s".into(),
    }
}

fn batch(id: &str, seq: i64, values: &[f64]) -> AnyEvent {
    let samples = values
        .iter()
        .enumerate()
        .map(|(i, &v)| Sample { ts_us: 1_000_000 + (seq * 2 + i as i64) * 10_000, metric: LATENCY_METRIC.into(), value: v, unit: "ms".into(), rank: None, step: None })
        .collect();
    AnyEvent::SampleBatch(SampleBatch { run_id: id.into(), seq, samples })
}

fn finished(id: &str, n: i64) -> AnyEvent {
    AnyEvent::RunFinished(RunFinished { run_id: id.into(), status: RunStatus::Completed, ended_at: 9, sample_count: n, error: None })
}

#[test]
fn summary_waits_for_announced_samples_and_ignores_repeated_batches() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    a.apply(pos("runs", 0, 0), AnyEvent::RunStarted(started("r", 5)), now);
    a.apply(pos("samples", 0, 0), batch("r", 0, &[1.0, 2.0]), now);
    a.apply(pos("runs", 0, 1), finished("r", 4), now);
    assert!(a.take_ready(now).is_empty(), "2 of 4 samples: not ready");
    a.apply(pos("samples", 0, 1), batch("r", 0, &[1.0, 2.0]), now); // a redelivered batch
    assert!(a.take_ready(now).is_empty());
    a.apply(pos("samples", 0, 2), batch("r", 1, &[3.0, 4.0]), now);
    let s = a.take_ready(now).pop().expect("ready").summary.unwrap();
    assert_eq!(s.status, RunStatus::Completed);
    let m = &s.metrics[0];
    // numpy: np.percentile([1,2,3,4], [50, 99]) -> [2.5, 3.97]
    assert_eq!((m.count, m.mean, m.p50), (4, 2.5, 2.5));
    assert!((m.p99 - 3.97).abs() < 1e-12);
    // 4 iterations from t=1.00 s to t=1.03 s + 4 ms.
    let thr = s.derived.iter().find(|d| d.name == "throughput_per_sec").unwrap().value;
    assert!((thr - 4.0 / 0.034).abs() < 1e-9, "{thr}");
    let get = |n: &str| s.derived.iter().find(|d| d.name == n).unwrap().value;
    assert_eq!(get("throughput_samples_per_sec"), thr, "one item per iteration");
    assert!((get("latency_p99_ms") - 3.97).abs() < 1e-12);
    assert_eq!(a.open_runs(), 0);
}

#[test]
fn power_energy_and_efficiency_come_from_telemetry() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    a.apply(pos("runs", 0, 0), AnyEvent::RunStarted(started("p", 5)), now);
    a.apply(pos("samples", 0, 0), batch("p", 0, &[10.0, 10.0]), now);
    let t = |metric: &str, value: f64, rank: Option<i32>| Sample { ts_us: 1_000_000, metric: metric.into(), value, unit: "".into(), rank, step: None };
    let telemetry = vec![
        t("gpu_power_watts", 100.0, Some(0)), t("gpu_power_watts", 300.0, Some(0)), // GPU 0: mean 200 W
        t("gpu_power_watts", 50.0, Some(1)),                                          // GPU 1: mean 50 W
        t("gpu_energy_joules", 30.0, Some(0)), t("gpu_energy_joules", 10.0, Some(1)),
        t("gpu_temperature_celsius", 60.0, Some(0)), t("gpu_temperature_celsius", 70.0, Some(1)),
    ];
    a.apply(pos("samples", 0, 1), AnyEvent::SampleBatch(SampleBatch { run_id: "p".into(), seq: 1, samples: telemetry }), now);
    a.apply(pos("runs", 0, 1), finished("p", 9), now);
    let s = a.take_ready(now).pop().unwrap().summary.unwrap();
    let get = |n: &str| s.derived.iter().find(|d| d.name == n).unwrap_or_else(|| panic!("{n} missing: {:?}", s.derived)).value;
    assert_eq!(get("power_consumption_watts"), 250.0);
    assert_eq!(get("energy_joules"), 40.0);
    assert_eq!(get("energy_per_step_joules"), 20.0, "two iterations");
    assert_eq!((get("temperature_celsius"), get("temperature_max_celsius")), (65.0, 70.0));
    assert!((get("performance_per_watt") - get("throughput_samples_per_sec") / 250.0).abs() < 1e-12);
}

#[test]
fn peak_memory_is_the_benchmarked_programs_not_the_harness() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    let t = |metric: &str, value: f64| Sample { ts_us: 1_000_000, metric: metric.into(), value, unit: "MiB".into(), rank: None, step: None };
    for (i, (id, with_child)) in [("c", true), ("h", false)].into_iter().enumerate() {
        let o = i as i64 * 2;
        a.apply(pos("runs", 0, o), AnyEvent::RunStarted(started(id, 5)), now);
        a.apply(pos("samples", 0, o), batch(id, 0, &[10.0, 10.0]), now);
        let mut samples = vec![t("process_rss_mib", 900.0), t("process_rss_mib", 950.0)];
        if with_child {
            samples.extend([t(CHILD_PEAK_RSS_METRIC, 30.0), t(CHILD_PEAK_RSS_METRIC, 52.5)]);
        }
        let n = 2 + samples.len() as i64;
        a.apply(pos("samples", 0, o + 1), AnyEvent::SampleBatch(SampleBatch { run_id: id.into(), seq: 1, samples }), now);
        a.apply(pos("runs", 0, o + 1), finished(id, n), now);
    }
    let peaks: BTreeMap<String, Option<f64>> = a
        .take_ready(now)
        .into_iter()
        .map(|c| {
            let s = c.summary.unwrap();
            (s.run.run_id.clone(), s.derived.iter().find(|d| d.name == "peak_memory_mib").map(|d| d.value))
        })
        .collect();
    assert_eq!(peaks["c"], Some(52.5), "the largest child peak");
    assert_eq!(peaks["h"], None, "the harness' RSS is not the program's peak memory");
}

#[test]
fn no_telemetry_means_no_power_figures() {
    let derived = energy_figures(&[], &[], &HashMap::new());
    assert!(derived.is_empty(), "nothing is estimated: {derived:?}");
}

#[test]
fn a_run_holds_its_records_until_it_is_summarised() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    assert_eq!(a.apply(pos("runs", 0, 10), AnyEvent::RunStarted(started("a", 1)), now), Some(true));
    assert_eq!(a.apply(pos("runs", 0, 11), AnyEvent::RunStarted(started("b", 2)), now), Some(true));
    assert_eq!(a.apply(pos("runs", 0, 12), finished("b", 0), now), Some(false), "later records of a run need no holding");
    let closed = a.take_ready(now);
    assert_eq!(closed.len(), 1);
    let offsets: Vec<i64> = closed[0].positions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [11], "run b's first record is released; run a (offset 10) stays held");
    assert_eq!(a.open_runs(), 1);
}

#[test]
fn an_unexpected_event_is_refused() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let pin = trackiq_schemas::BaselinePin { series_id: "s".into(), runs: vec![], set_at: 1, reason: None };
    assert_eq!(a.apply(pos("runs", 0, 0), AnyEvent::BaselinePin(pin), Instant::now()), None);
}

#[test]
fn missing_samples_or_finish_close_the_run_as_incomplete() {
    let cfg = AggregatorConfig { run_timeout_secs: 10, finish_grace_secs: 5, ..Default::default() };
    let mut a = Aggregation::new(cfg);
    let t0 = Instant::now();
    a.apply(pos("runs", 0, 0), AnyEvent::RunStarted(started("x", 1)), t0);
    a.apply(pos("runs", 0, 1), finished("x", 3), t0);
    a.apply(pos("runs", 1, 0), AnyEvent::RunStarted(started("y", 2)), t0);
    let s = a.take_ready(t0 + Duration::from_secs(6));
    assert_eq!(s.len(), 1);
    let s0 = s[0].summary.as_ref().unwrap();
    assert_eq!(s0.status, RunStatus::Incomplete);
    assert_eq!(s0.error.as_deref(), Some("received 0 of 3 announced samples"));
    let s = a.take_ready(t0 + Duration::from_secs(11));
    let s0 = s[0].summary.as_ref().unwrap();
    assert_eq!((s0.run.run_id.as_str(), s0.status), ("y", RunStatus::Incomplete));
}

#[test]
fn runs_ready_together_are_published_in_start_order() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    for (i, (id, ts)) in [("late", 30), ("early", 10), ("mid", 20)].into_iter().enumerate() {
        a.apply(pos("runs", i as i32, 0), AnyEvent::RunStarted(started(id, ts)), now);
        a.apply(pos("runs", i as i32, 1), finished(id, 0), now);
    }
    let order: Vec<_> = a.take_ready(now).into_iter().map(|c| c.summary.unwrap().run.run_id).collect();
    assert_eq!(order, ["early", "mid", "late"]);
}

#[test]
fn beyond_the_exact_limit_percentiles_come_from_a_sketch_and_the_summary_says_so() {
    let mut a = Aggregation::new(AggregatorConfig { exact_samples_per_metric: 10, ..Default::default() });
    let now = Instant::now();
    a.apply(pos("runs", 0, 0), AnyEvent::RunStarted(started("long", 5)), now);
    let values: Vec<f64> = (1..=1000).map(f64::from).collect();
    a.apply(pos("runs", 0, 1), batch("long", 0, &values), now);
    a.apply(pos("runs", 0, 2), finished("long", 1000), now);
    let s = a.take_ready(now).pop().unwrap().summary.unwrap();
    let m = &s.metrics[0];
    assert_eq!(m.percentile_error, Some(trackiq_stats::accumulator::SKETCH_RELATIVE_ACCURACY));
    // numpy: np.percentile(np.arange(1, 1001), [50, 99]) -> [500.5, 990.01]
    assert!((m.p50 - 500.5).abs() <= 0.01 * 500.5, "{}", m.p50);
    assert!((m.p99 - 990.01).abs() <= 0.01 * 990.01, "{}", m.p99);
    assert_eq!((m.count, m.min, m.max, m.mean), (1000, 1.0, 1000.0, 500.5), "count, extremes and mean stay exact");
}

#[test]
fn a_revoked_partition_loses_its_open_runs_and_a_replay_rebuilds_them() {
    let now = Instant::now();
    let feed = |a: &mut Aggregation, id: &str, partition: i32, from: i64| {
        a.apply(pos("runs", partition, from), AnyEvent::RunStarted(started(id, 5)), now);
        a.apply(pos("runs", partition, from + 1), batch(id, 0, &[1.0, 2.0]), now);
    };
    let mut a = Aggregation::new(AggregatorConfig::default());
    feed(&mut a, "moved", 0, 10);
    feed(&mut a, "kept", 1, 20);
    assert_eq!(a.drop_partitions(&[("runs".into(), 0)]), 1);
    assert_eq!(a.open_runs(), 1);
    a.apply(pos("runs", 1, 22), finished("kept", 2), now);
    let ready = a.take_ready(now);
    assert_eq!(ready.len(), 1, "only the kept run is summarised here");
    assert_eq!(ready[0].positions, vec![pos("runs", 1, 20)], "its held first record is released");
    // The new owner replays partition 0 from the committed offset (at or before offset 10).
    let mut b = Aggregation::new(AggregatorConfig::default());
    feed(&mut b, "moved", 0, 10);
    b.apply(pos("runs", 0, 12), finished("moved", 2), now);
    let s = b.take_ready(now).pop().unwrap().summary.unwrap();
    assert_eq!((s.run.run_id.as_str(), s.sample_count), ("moved", 2), "the whole run, summarised once, by its new owner");
}

/// `trackiq metrics` says which figures gate from [`DERIVED_FROM_SAMPLES`] and the catalog:
/// every figure the aggregator derives must be in that list or be derived-only in the catalog,
/// or the table would say "gates" of a figure the verdicts report without gating.
#[test]
fn every_derived_figure_is_known_to_the_metrics_table() {
    let mut a = Aggregation::new(AggregatorConfig::default());
    let now = Instant::now();
    a.apply(pos("runs", 0, 0), AnyEvent::RunStarted(started("llm", 5)), now);
    // An LLM serving run: every metric a derived figure comes from, in two iterations.
    let metrics = [(LATENCY_METRIC, "ms", 20.0), ("output_tokens", "tokens", 64.0), ("slo_met", "bool", 1.0), ("tpot_ms", "ms", 3.0), (ITEMS_METRIC, "items", 8.0)];
    let samples = (0..2i64)
        .flat_map(|i| metrics.iter().map(move |&(m, u, v)| Sample { ts_us: 1_000_000 + i * 30_000, metric: m.into(), value: v + i as f64, unit: u.into(), rank: None, step: None }))
        .collect::<Vec<_>>();
    let n = samples.len() as i64;
    a.apply(pos("samples", 0, 0), AnyEvent::SampleBatch(SampleBatch { run_id: "llm".into(), seq: 0, samples }), now);
    a.apply(pos("runs", 0, 1), finished("llm", n), now);
    let s = a.take_ready(now).pop().expect("ready").summary.unwrap();
    assert!(s.derived.len() >= DERIVED_FROM_SAMPLES.len(), "{:?}", s.derived);
    for d in &s.derived {
        let derived_only = trackiq_schemas::catalog::info(&d.name).kind == trackiq_schemas::catalog::MetricKind::Derived;
        assert!(DERIVED_FROM_SAMPLES.contains(&d.name.as_str()) || derived_only, "{} is derived but the metrics table would not say so", d.name);
    }
}

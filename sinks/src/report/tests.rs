//! Tests of the per-run report: escaping, cards, sections and their notes.
use std::collections::BTreeMap;

use trackiq_schemas::*;

use super::cards::{Card, cards, fmt_duration_us};
use super::sections::{Family, Figures, family_of, notes};
use super::*;

#[test]
fn report_escapes_user_strings_and_shows_findings_and_charts() {
    let mut labels = BTreeMap::new();
    labels.insert("owner".to_string(), "<img src=x onerror=alert(1)>".to_string());
    let run = RunStarted {
        run_id: "r1".into(),
        tool: "t".into(),
        tool_version: "0".into(),
        timestamp: 0,
        platform: Platform { hardware_name: "h&w".into(), ..Default::default() },
        workload: Workload { name: "<b>w</b>".into(), kind: "k".into(), ..Default::default() },
        version: VersionInfo::default(),
        labels,
        series_id: "s".into(),
    };
    let m = MetricSummary {
        metric: "latency_ms".into(), unit: "ms".into(), count: 4, mean: 2.5, stdev: Some(1.29), min: 1.0, p50: 2.5, p90: 3.7,
        p95: 3.85, p99: 3.97, max: 4.0, histogram: Some(Histogram { edges: vec![1.0, 2.5, 4.0], counts: vec![2, 2] }), percentile_error: None,
    };
    let summary = RunSummary { run, status: RunStatus::Completed, ended_at: 1, sample_count: 4, expected_sample_count: Some(4), error: None, metrics: vec![m], derived: vec![], cluster: None };
    let v = Verdict {
        run_id: "r1".into(), series_id: "s".into(), evaluated_at: 2, severity: Severity::Warn, summary, metrics: vec![],
        findings: vec![Finding { rule: "step_change".into(), metric: "latency_ms".into(), severity: Severity::Warn, value: Some(5.0), message: "latency <up>".into() }],
    };
    let html = render(&v).unwrap();
    assert!(!html.contains("<img src=x") && html.contains("&lt;img src=x"), "label escaped");
    assert!(!html.contains("<b>w</b>") && html.contains("&lt;b&gt;w&lt;&#x2F;b&gt;"), "workload escaped");
    assert!(html.contains("step_change") && html.contains("latency &lt;up&gt;"), "findings shown, escaped");
    assert!(html.contains("<svg") && html.contains("latency_ms distribution (4 samples)"), "histogram chart");
    assert!(!html.contains("Cluster health"), "no cluster section for a plain run");

    let mut v = v;
    v.summary.cluster = Some(trackiq_schemas::ClusterHealth {
        world_size: 2,
        steps: 3,
        samples_per_sec: 120.0,
        comm_overhead_pct: 40.0,
        steps_per_column: 1,
        allreduce_ms: vec![vec![Some(1.0), Some(1.2), None], vec![Some(1.1), Some(9.0), Some(1.0)]],
        loss: vec![0.5, 0.3, 0.2],
        faults: vec![
            trackiq_schemas::FaultOutcome { kind: "kill_rank".into(), rank: 1, step: 2, injected_at: 1, detector: None, detected_at: None, latency_ms: None },
            trackiq_schemas::FaultOutcome { kind: "<i>odd</i>".into(), rank: 0, step: 1, injected_at: 1, detector: None, detected_at: None, latency_ms: None },
        ],
        detections: vec![],
        false_alarms: 0,
    });
    let html = render(&v).unwrap();
    assert!(html.contains("Cluster health") && html.contains("kill_rank") && html.contains("missed"), "faults table, a missed one said so");
    assert!(html.contains("all-reduce time per rank and step (2 ranks)") && html.contains("loss curve"), "heatmap and loss charts");
    let heatmap = &html[html.find("all-reduce time per rank and step").unwrap()..];
    let heatmap = &heatmap[..heatmap.find("</svg>").unwrap()];
    for rank in ["0", "1"] {
        assert!(heatmap.contains(&format!(">\n{rank}\n</text>")), "rank {rank} labelled as a whole number");
    }
    assert!(!["0.0", "0.5", "1.0"].iter().any(|l| heatmap.contains(&format!(">\n{l}\n</text>"))), "no fractional rank or step labels");
    assert!(!html.contains("<i>odd</i>") && html.contains("&lt;i&gt;odd&lt;&#x2F;i&gt;"), "a fault kind is escaped in the table");
    // Latency histogram, heatmap, all-reduce histogram (from the 5 cells), loss, fault timeline.
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("all-reduce time distribution (5 cells, one per rank and step)") && html.contains("fault timeline"));
    assert!(html.contains("faults missed: 2"));

    // A user's metric name reaches the SVG as a chart title: plotters must escape it.
    v.summary.metrics[0].metric = "<script>x</script>_ms".into();
    let html = render(&v).unwrap();
    assert!(!html.contains("<script>x"), "metric name escaped in HTML and SVG");
}

fn metric(name: &str, unit: &str, count: i64, mean: f64, stdev: Option<f64>, [min, p50, p90, p95, p99, max]: [f64; 6]) -> MetricSummary {
    MetricSummary { metric: name.into(), unit: unit.into(), count, mean, stdev, min, p50, p90, p95, p99, max, histogram: None, percentile_error: None }
}

fn derived(name: &str, value: f64, unit: &str) -> DerivedMetric {
    DerivedMetric { name: name.into(), value, unit: unit.into() }
}

fn judged(metric: &str, value: f64, change_pct: f64, severity: Severity) -> MetricVerdict {
    MetricVerdict {
        metric: metric.into(), direction: trackiq_schemas::metrics::direction_of(metric), value, baseline: Some(value / (1.0 + change_pct / 100.0)),
        baseline_count: 8, model: "bootstrap".into(), lower_limit: None, upper_limit: None, change_pct: Some(change_pct), severity, pvalue: Some(0.003),
        kind: None, gates: true, direction_guessed: false, change_ci_low: None, change_ci_high: None, pvalue_adjusted: Some(0.006),
    }
}

/// An LLM serving run with GPU telemetry: every figure chosen so the notes are easy to check.
pub(super) fn llm_verdict() -> Verdict {
    let run = RunStarted {
        run_id: "llm-7b-0042".into(), tool: "trackiq".into(), tool_version: "0.1.0".into(), timestamp: 1_700_000_000_000_000,
        platform: Platform { hardware_name: "dgx-h100-07".into(), os: "Ubuntu 24.04".into(), cpu: "Xeon 8480+".into(), gpus: vec!["H100 80GB HBM3".into()], driver: Some("550.54".into()), ..Default::default() },
        workload: Workload { name: "llama-7b-serve".into(), kind: "llm".into(), batch_size: Some(8), precision: Some("bf16".into()), sequence_length: Some(2048), ..Default::default() },
        version: VersionInfo { git_commit: Some("3f2a9c1".into()), version_tag: Some("v1.4.0".into()), env_hash: "e3b0c442".into(), run_group: None },
        labels: BTreeMap::from([("team".to_string(), "inference".to_string())]),
        series_id: "llama-7b-serve/dgx-h100".into(),
    };
    let mut latency = metric("latency_ms", "ms", 200, 120.0, Some(30.0), [80.0, 110.0, 160.0, 190.0, 374.0, 420.0]);
    latency.histogram = Some(Histogram { edges: vec![80.0, 165.0, 250.0, 335.0, 420.0], counts: vec![170, 20, 6, 4] });
    let mut ttft = metric("ttft_ms", "ms", 200, 45.0, Some(4.0), [30.0, 40.0, 52.0, 58.0, 70.0, 75.0]);
    ttft.histogram = Some(Histogram { edges: vec![30.0, 45.0, 60.0, 75.0], counts: vec![120, 70, 10] });
    let metrics = vec![
        latency,
        ttft,
        metric("tpot_ms", "ms", 200, 12.5, Some(0.5), [11.0, 12.5, 13.0, 13.2, 13.9, 14.0]),
        metric("output_tokens", "tokens", 200, 6.0, Some(1.0), [3.0, 6.0, 7.0, 8.0, 9.0, 9.0]),
        metric("gpu_utilization_percent", "%", 25, 41.0, Some(9.0), [20.0, 40.0, 55.0, 58.0, 62.0, 63.0]),
        metric("host_other_cpu_percent", "%", 25, 12.5, Some(2.0), [8.0, 12.0, 15.0, 16.0, 17.0, 17.0]),
        metric("gpu_temperature_celsius", "C", 25, 70.0, Some(6.0), [58.0, 70.0, 79.0, 81.0, 83.0, 83.0]),
        metric("gpu_sm_clock_mhz", "MHz", 25, 1850.0, Some(120.0), [1500.0, 1900.0, 1980.0, 1980.0, 1980.0, 1980.0]),
        metric("gpu_power_watts", "W", 25, 250.0, Some(40.0), [180.0, 250.0, 300.0, 310.0, 320.0, 320.0]),
        metric("gpu_memory_used_mib", "MiB", 25, 22000.0, Some(900.0), [20000.0, 22000.0, 23500.0, 23800.0, 24000.0, 24000.0]),
    ];
    let derived = vec![
        derived("latency_p50_ms", 110.0, "ms"), derived("latency_p99_ms", 374.0, "ms"),
        derived("throughput_per_sec", 8.0, "1/s"), derived("throughput_samples_per_sec", 64.0, "items/s"),
        derived("tokens_per_sec", 48.0, "tokens/s"), derived("request_throughput_per_sec", 8.0, "requests/s"),
        derived("goodput_requests_per_sec", 6.8, "requests/s"), derived("power_consumption_watts", 250.0, "W"),
        derived("performance_per_watt", 0.256, "items/s/W"), derived("energy_per_item_joules", 3.90625, "J"),
    ];
    let summary = RunSummary {
        run, status: RunStatus::Completed, ended_at: 1_700_000_025_000_000, sample_count: 1350, expected_sample_count: Some(1350), error: None,
        metrics, derived, cluster: None,
    };
    Verdict {
        run_id: "llm-7b-0042".into(), series_id: "llama-7b-serve/dgx-h100".into(), evaluated_at: 1_700_000_030_000_000, severity: Severity::Warn, summary,
        metrics: vec![judged("latency_p99_ms", 374.0, 12.34, Severity::Warn), judged("throughput_samples_per_sec", 64.0, -3.0, Severity::Pass)],
        findings: vec![Finding { rule: "tail_growth".into(), metric: "latency_ms".into(), severity: Severity::Warn, value: Some(3.4), message: "p99 grew faster than p50".into() }],
    }
}

#[test]
fn cards_show_headline_kpis_with_their_change_vs_baseline() {
    let c = cards(&llm_verdict());
    let find = |label: &str| c.iter().find(|c| c.label == label).unwrap_or_else(|| panic!("no card {label}: {c:?}")).clone();
    assert_eq!(find("verdict"), Card { label: "verdict".into(), value: "warn".into(), change: None, severity: Some("warn".into()) });
    assert_eq!(find("samples").value, "1350");
    assert_eq!(find("duration").value, "25 s");
    assert_eq!(find("latency p50").value, "110 ms");
    assert_eq!(find("latency p99"), Card { label: "latency p99".into(), value: "374 ms".into(), change: Some("+12.3 % vs baseline".into()), severity: Some("warn".into()) });
    assert_eq!(find("throughput").change.as_deref(), Some("-3.0 % vs baseline"));
    assert_eq!(find("throughput").value, "64 items/s");
    assert_eq!((find("TTFT p50").value, find("TPOT mean").value), ("40 ms".into(), "12.5 ms".into()));
    assert_eq!(find("mean power").value, "250 W");
    assert_eq!(find("energy per item").value, "3.906 J", "3.90625 J to 3 decimals");
    assert_eq!(find("perf/W").value, "0.256 items/s/W");
    assert!(find("TTFT p50").change.is_none(), "not judged: no change shown");
    assert!(!c.iter().any(|c| c.label == "comm overhead"), "no cluster cards for a serving run");
    assert_eq!((fmt_duration_us(850_000), fmt_duration_us(125_000_000), fmt_duration_us(7_380_000_000)), ("850 ms".into(), "2 min 05 s".into(), "2 h 03 min".into()));
}

#[test]
fn families_come_from_the_catalog_and_units() {
    for (name, unit, fam) in [
        ("latency_ms", "ms", Family::Latency), ("latency_p99_ms", "ms", Family::Latency), ("ttft_ms", "ms", Family::Llm),
        ("tokens_per_sec", "tokens/s", Family::Llm), ("throughput_samples_per_sec", "items/s", Family::Throughput),
        ("busbw_gbps.1048576B", "GB/s", Family::Throughput), ("gpu_utilization_percent", "%", Family::Utilisation),
        ("memory_utilization_percent", "%", Family::Memory), ("gpu_temperature_celsius", "C", Family::Power),
        ("gpu_sm_clock_mhz", "MHz", Family::Power), ("performance_per_watt", "items/s/W", Family::Power),
        ("peak_gpu_memory_mib", "MiB", Family::Memory), ("host_speed_probe_ms", "ms", Family::Other), ("cluster.loss", "loss", Family::Other),
        // Undeclared: by the summary's unit and the duration heuristic.
        ("my_compile_time_ms", "ms", Family::Latency), ("my_qps", "requests/s", Family::Throughput), ("my_share_pct", "%", Family::Other),
        // The cluster-health summary's own figures go to its section.
        ("comm_overhead_pct", "%", Family::Cluster), ("detection_latency_ms.slow_rank", "ms", Family::Cluster),
    ] {
        assert_eq!(family_of(name, unit), fam, "{name}");
    }
}

#[test]
fn notes_interpret_the_numbers() {
    let v = llm_verdict();
    let f = Figures::of(&v.summary);
    // 374 / 110 = 3.4; stdev 30 / mean 120 = 25 %.
    assert_eq!(notes(Family::Latency, &f), vec![
        "latency_ms: p99 is 3.4× p50: a heavy tail".to_string(),
        "latency_ms: stdev is 25 % of the mean: noisy, compare distributions rather than means".to_string(),
    ]);
    // 8 /s × 0.120 s = 0.96 in flight.
    assert_eq!(notes(Family::Throughput, &f), vec!["throughput × mean latency = 0.96: iterations ran one at a time, so throughput is 1 / latency".to_string()]);
    // TTFT 70 / 40 = 1.75 (tight, cv 8.9 %: quiet); TTFT/TPOT = 40 / 12.5 = 3.2; goodput 6.8 / 8 = 85 %.
    assert_eq!(notes(Family::Llm, &f), vec![
        "ttft_ms: p99 is 1.8× p50: a tight distribution".to_string(),
        "median TTFT is 3.2× the median TPOT: prefill costs as much as that many output tokens".to_string(),
        "85 % of requests met every SLO: goodput is low: SLOs were missed".to_string(),
    ]);
    assert_eq!(notes(Family::Utilisation, &f), vec![
        "GPU utilisation averaged 41 %: the GPU waited (input pipeline, host or launch overhead)".to_string(),
        "other processes used 12.5 % of the CPUs: a noisy host, expect variance".to_string(),
    ]);
    // Clock 1500 / 1980 = 0.7576: 24.2 % below peak.
    assert_eq!(notes(Family::Power, &f), vec![
        "temperature peaked at 83 °C: in the throttling range".to_string(),
        "gpu_sm_clock_mhz dipped 24.2 % below its peak: throttling likely".to_string(),
        "250 W mean for 0.256 items/s per watt".to_string(),
    ]);
    // 24000 / 20000 = 1.2.
    assert_eq!(notes(Family::Memory, &f), vec!["GPU memory peaked at 24000 MiB (20 % above its lowest reading)".to_string()]);
}

#[test]
fn sections_appear_only_with_metrics_in_family_order() {
    let html = render(&llm_verdict()).unwrap();
    let at = |h: &str| html.find(&format!("<h2>{h}</h2>"));
    let order: Vec<_> = ["Latency", "Throughput", "LLM serving", "Utilisation", "Power &amp; thermal", "Memory"].iter().map(|h| at(h).unwrap_or_else(|| panic!("no section {h}"))).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "sections in family order");
    assert!(at("Other").is_none() && at("Cluster health").is_none());
    assert!(html.contains("GPU utilisation averaged 41 %") && html.contains("temperature peaked at 83 °C"), "notes rendered");
    assert!(html.contains("ttft_ms distribution (200 samples)") && html.contains("latency_ms distribution (200 samples)"));
    assert!(html.contains("<th>git commit</th><td>3f2a9c1</td>"), "metadata tables");
    assert!(html.contains("+12.3 % vs baseline"), "card change rendered");
}

/// A 4-rank training run: rank 2 slowed at step 10 (caught 2 steps later), rank 3 killed
/// at step 25 (missed), and one false alarm.
pub(super) fn cluster_verdict() -> Verdict {
    let (world, steps) = (4usize, 40usize);
    // Deterministic jitter, so the heatmap and histogram look like data and not stripes.
    let jitter = |r: usize, s: usize| ((r * 7 + s * 13) % 11) as f64 * 0.08;
    let allreduce_ms: Vec<Vec<Option<f64>>> = (0..world)
        .map(|r| {
            (0..steps)
                .map(|s| match (r, s) {
                    (3, s) if s > 25 => None,
                    (_, 10..=13) => Some(4.0 + jitter(r, s) + if r == 2 { 0.2 } else { 3.5 }),
                    _ => Some(2.0 + jitter(r, s)),
                })
                .collect()
        })
        .collect();
    let mut v = llm_verdict();
    v.run_id = "train-gpt2-4r-0007".into();
    v.summary.run.run_id = v.run_id.clone();
    v.summary.run.workload = Workload { name: "gpt2-small-ddp".into(), kind: "training".into(), batch_size: Some(32), precision: Some("fp32".into()), steps: Some(40), ..Default::default() };
    v.summary.run.platform.gpus = vec!["H100 80GB HBM3".into(); 4];
    v.summary.ended_at = v.summary.run.timestamp + 95_000_000;
    v.severity = Severity::Block;
    let step = MetricSummary {
        metric: "cluster.step_ms".into(), unit: "ms".into(), count: 150, mean: 48.0, stdev: Some(9.0), min: 40.0, p50: 45.0, p90: 55.0, p95: 60.0, p99: 92.0, max: 110.0,
        histogram: Some(Histogram { edges: vec![40.0, 57.5, 75.0, 92.5, 110.0], counts: vec![128, 14, 5, 3] }), percentile_error: None,
    };
    let gpu = v.summary.metrics.iter().filter(|m| m.metric.starts_with("gpu_")).cloned();
    v.summary.metrics = std::iter::once(step).chain(gpu).collect();
    v.summary.derived = vec![
        DerivedMetric { name: "cluster_samples_per_sec".into(), value: 2666.7, unit: "items/s".into() },
        DerivedMetric { name: "comm_overhead_pct".into(), value: 7.9, unit: "%".into() },
        DerivedMetric { name: "faults_missed".into(), value: 1.0, unit: "count".into() },
        DerivedMetric { name: "detection_latency_ms.slow_rank".into(), value: 850.0, unit: "ms".into() },
    ];
    v.metrics = vec![];
    v.findings = vec![Finding { rule: "fault_missed".into(), metric: "cluster".into(), severity: Severity::Block, value: None, message: "kill_rank on rank 3 at step 25 was not detected".into() }];
    let t0 = v.summary.run.timestamp;
    let detection = |detector: &str, rank, step, at: i64, message: &str| Detection {
        run_id: v.run_id.clone(), detector: detector.into(), rank: Some(rank), step: Some(step), event_ts: at, detected_at: at, value: 0.0, threshold: 0.0, message: message.into(),
    };
    let caught = detection("straggler", 2, 12, t0 + 31_850_000, "rank 2 step time 3.1× the median");
    // Before the first fault nothing explains it: a false alarm. After one: a knock-on effect.
    let alarm = detection("allreduce_spike", 1, 4, t0 + 12_000_000, "all-reduce 2.4× its rolling median");
    let knock_on = detection("allreduce_spike", 0, 11, t0 + 33_000_000, "rank 0 waits in the all-reduce");
    v.summary.cluster = Some(ClusterHealth {
        world_size: world as i32, steps: 25, samples_per_sec: 2666.7, comm_overhead_pct: 7.9, steps_per_column: 1, allreduce_ms,
        loss: (0..steps).map(|s| 4.2 * (-(s as f64) / 18.0).exp() + 1.1).collect(),
        faults: vec![
            FaultOutcome { kind: "slow_rank".into(), rank: 2, step: 10, injected_at: t0 + 31_000_000, detector: Some("straggler".into()), detected_at: Some(caught.detected_at), latency_ms: Some(850.0) },
            FaultOutcome { kind: "kill_rank".into(), rank: 3, step: 25, injected_at: t0 + 62_000_000, detector: None, detected_at: None, latency_ms: None },
        ],
        detections: vec![alarm, caught, knock_on],
        false_alarms: 1,
    });
    v
}

#[test]
fn cluster_report_draws_the_fault_timeline_and_routes_health_figures() {
    let html = render(&cluster_verdict()).unwrap();
    let cluster = &html[html.find("<h2>Cluster health</h2>").expect("cluster section")..];
    // The health figures sit in the cluster section, not in "Latency" or "Other".
    assert!(cluster.contains("detection_latency_ms.slow_rank") && cluster.contains("comm_overhead_pct"));
    assert!(!html.contains("<h2>Other</h2>"));
    let timeline = &cluster[cluster.find("<h3>fault timeline</h3>").expect("timeline")..];
    // slow_rank caught after 850 ms, kill_rank missed.
    assert!(timeline.contains("850 ms") && timeline.contains("missed"));
    // One grey cross (the false alarm) and one light-blue (the knock-on), each plus its legend
    // glyph; a cross is two strokes.
    assert_eq!((timeline.matches("#616161").count(), timeline.matches("#64B5F6").count()), (4, 4));
    assert!(cluster.contains("all-reduce time distribution (146 cells, one per rank and step)"), "4 × 40 cells less rank 3's 14 after it died");
    assert!(cluster.contains(r#"<tr class="missed"><td class="l">kill_rank</td>"#), "the missed fault is highlighted");
    assert!(html.contains("<th>GPUs</th><td>4 × H100 80GB HBM3</td>"), "identical GPUs counted");
    // p99 92 / p50 45 = 2.04, printed 2×: not above the 2× threshold as printed.
    assert!(html.contains("cluster.step_ms: p99 is 2× p50: a tight distribution"));
    let c = cards(&cluster_verdict());
    let card = |l: &str| c.iter().find(|c| c.label == l).map(|c| c.value.clone());
    assert_eq!((card("samples/s (all ranks)"), card("comm overhead")), (Some("2666.7 items/s".into()), Some("7.9 % of step time".into())));
    assert_eq!(card("duration").as_deref(), Some("1 min 35 s"));
}

//! Issue #9's probes: bad records from one host never stop the pipeline. Each goes to the
//! dead-letter topic with a reason naming the field; a normal run recorded afterwards is
//! summarised and judged; no stage was restarted; SQL never returns a wrong value for a NaN
//! already in the history.

use std::time::Duration;

use trackiq_producers::identity::{RunIdentity, run_started};
use trackiq_schemas::{RunFinished, RunStatus, Sample, SampleBatch, registry};

use crate::support::*;

/// A run whose only batch holds `sample`: RunStarted, the batch, RunFinished, on the runs
/// topic. The batch goes out row by row (`trackiq.SampleBatch`, what producers of the first
/// contract send), or as columns (`trackiq.SampleColumns`) when `columnar`.
fn bad_run(up: &Up, name: &str, sample: Sample, columnar: bool) -> String {
    let id = RunIdentity { workload: format!("probe-{name}"), workload_type: "probe".into(), ..Default::default() };
    let mut started = run_started("probe", &id);
    started.labels.insert("world_size".into(), "4".into());
    let run_id = started.run_id.clone();
    let topic = "trackiq.runs";
    produce_raw(&up.brokers, topic, &run_id, &registry().encode(&started).unwrap());
    let batch = SampleBatch { run_id: run_id.clone(), seq: 0, samples: vec![sample] };
    let encoded = if columnar { registry().encode(&batch) } else { registry().encode_as("trackiq.SampleBatch", &batch) };
    produce_raw(&up.brokers, topic, &run_id, &encoded.unwrap());
    let finished = RunFinished { run_id: run_id.clone(), status: RunStatus::Completed, ended_at: trackiq_schemas::now_us(), sample_count: 1, error: None };
    produce_raw(&up.brokers, topic, &run_id, &registry().encode(&finished).unwrap());
    run_id
}

fn sample(metric: &str, value: f64, rank: Option<i32>) -> Sample {
    Sample { ts_us: trackiq_schemas::now_us(), metric: metric.into(), value, unit: "ms".into(), rank, step: Some(0) }
}

/// A counter or gauge of the metrics text, summed over label sets matching `labels`.
pub fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn bad_records_are_dead_lettered_with_the_field_and_the_pipeline_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let config = fast_config(dir.path());
    std::fs::write(&config, format!("{}[aggregator]\nfinish_grace_secs = 1\n", std::fs::read_to_string(&config).unwrap())).unwrap();
    let up = Up::start(&data, &config, &[], &[]);
    let probes = [
        ("rank-minus-one", sample("cluster.allreduce_ms", 3.0, Some(-1)), false, "samples[0].rank"),
        ("rank-2e9", sample("cluster.allreduce_ms", 3.0, Some(2_000_000_000)), false, "samples[0].rank"),
        ("nan", sample("latency_ms", f64::NAN, None), false, "samples[0].value"),
        ("inf", sample("latency_ms", f64::INFINITY, None), false, "samples[0].value"),
        ("empty-metric", sample("", 1.0, None), false, "samples[0].metric"),
        ("columns-rank-minus-one", sample("cluster.allreduce_ms", 3.0, Some(-1)), true, "ranks[0]"),
        ("columns-nan", sample("latency_ms", f64::NAN, None), true, "samples[0].value"),
    ];
    let mut runs = Vec::new();
    for (name, s, columnar, _) in &probes {
        runs.push(bad_run(&up, name, s.clone(), *columnar));
    }
    // Not an Avro event at all.
    produce_raw(&up.brokers, "trackiq.runs", "garbage", b"{\"latency\": 12}");

    // A normal run afterwards is summarised and judged.
    let normal = recorded_run_id(&ok(&up.cli(&["record", "--workload", "after-probes", "--metric", "latency_ms=10"])));
    wait_for("the normal run's verdict", Duration::from_secs(60), || {
        (sql_n(&up, &format!("SELECT count(*) AS n FROM verdicts WHERE run_id = '{normal}'")) > 0).then_some(())
    });

    // Every bad record is in the dead-letter table with its reason, once per stage reading it.
    let letters = wait_for("dead letters of every probe", Duration::from_secs(60), || {
        let rows = sql(&up, "SELECT stage, reason, source_topic FROM dlq WHERE stage = 'aggregator' ORDER BY kafka_partition, kafka_offset");
        (rows.len() >= probes.len() + 1).then_some(rows)
    });
    for l in &letters {
        eprintln!("dead letter: {}", l["reason"].as_str().unwrap());
    }
    for (name, _, _, field) in &probes {
        assert!(letters.iter().any(|l| l["reason"].as_str().unwrap().contains(field)), "no dead letter naming {field} for probe {name}: {letters:?}");
    }
    assert!(letters.iter().any(|l| l["reason"].as_str().unwrap().contains("C3 01")), "the garbage record: {letters:?}");
    // No probe's bad sample reached the samples table; the empty name is nowhere.
    assert_eq!(sql_n(&up, "SELECT count(*) AS n FROM samples WHERE metric = '' OR isnan(value) OR value = 'Infinity'::double"), 0);

    // No stage failed or restarted; every stage is up.
    let metrics = up.metrics_text();
    assert_eq!(metric_value(&metrics, "trackiq_stage_restarts_total", ""), 0.0, "{metrics}");
    for stage in ["aggregator", "archiver", "verdict", "report"] {
        assert_eq!(metric_value(&metrics, "trackiq_stage_up", &format!("stage=\"{stage}\"")), 1.0, "{stage} is up: {metrics}");
    }
    assert!(metric_value(&metrics, "trackiq_dead_letters_total", "stage=\"aggregator\"") >= probes.len() as f64);
    let status = ok(&up.cli(&["status", "--metrics", up.metrics.as_deref().unwrap()]));
    assert!(status.contains("aggregator") && status.contains("archiver"), "{status}");
    assert!(up.stop().success());
}

//! Writes the seed corpus of `decode_validate`: one record of every event type as trackiq
//! encodes it (the nested and optional parts filled in, so that the fuzzer starts from every
//! branch of every schema), and records framed as before trackiq followed the spec (legacy
//! fingerprints, an old schema version). Each must pass `decode_valid`.
//!
//! cargo run --example seeds -- seeds/decode_validate

use std::collections::BTreeMap;

use trackiq_schemas::*;

const RUN_ID: &str = "0192f0c8-7a2b-7cde-8f00-0123456789ab";
const T0: i64 = 1_763_900_000_000_000;

fn started() -> RunStarted {
    let mut labels = BTreeMap::new();
    labels.insert("world_size".to_string(), "4".to_string());
    let mut r = RunStarted {
        run_id: RUN_ID.into(),
        tool: "trackiq-cluster".into(),
        tool_version: "0.1.0".into(),
        timestamp: T0,
        platform: Platform {
            hardware_name: "box".into(),
            os: "linux".into(),
            kernel: Some("6.1".into()),
            cpu: "x86_64".into(),
            gpus: vec!["NVIDIA H100".into()],
            driver: Some("550".into()),
            framework: Some("torch".into()),
            framework_version: Some("2.5".into()),
        },
        workload: Workload { name: "ring".into(), kind: "training".into(), batch_size: Some(32), precision: Some("f32".into()), sequence_length: Some(128), backend: Some("tcp".into()), steps: Some(50) },
        version: VersionInfo { git_commit: Some("abc".into()), version_tag: Some("v1".into()), env_hash: "e".into(), run_group: Some("g".into()) },
        labels,
        series_id: String::new(),
    };
    r.series_id = identity::series_id(&r);
    r
}

fn detection() -> Detection {
    Detection { run_id: RUN_ID.into(), detector: "straggler".into(), rank: Some(1), step: Some(7), event_ts: T0 + 10, detected_at: T0 + 12, value: 61.0, threshold: 24.0, message: "rank 1 computes 61 ms".into() }
}

fn summary() -> RunSummary {
    RunSummary {
        run: started(),
        status: RunStatus::Completed,
        ended_at: T0 + 1_000_000,
        sample_count: 3,
        expected_sample_count: Some(3),
        error: Some("none".into()),
        metrics: vec![MetricSummary {
            metric: "latency_ms".into(), unit: "ms".into(), count: 3, mean: 2.0, stdev: Some(1.0), min: 1.0, p50: 2.0, p90: 2.8, p95: 2.9, p99: 2.98, max: 3.0,
            histogram: Some(Histogram { edges: vec![1.0, 2.0, 3.0], counts: vec![1, 2] }),
            percentile_error: Some(0.01),
        }],
        derived: vec![DerivedMetric { name: "throughput_per_sec".into(), value: 3.0, unit: "1/s".into() }],
        cluster: Some(ClusterHealth {
            world_size: 4, steps: 2, samples_per_sec: 100.0, comm_overhead_pct: 12.5, steps_per_column: 1,
            allreduce_ms: vec![vec![Some(1.0), None], vec![Some(1.5), Some(2.0)]],
            loss: vec![1.0, 0.5],
            faults: vec![FaultOutcome { kind: "slow_rank".into(), rank: 1, step: 1, injected_at: T0, detector: Some("straggler".into()), detected_at: Some(T0 + 12), latency_ms: Some(0.012) }],
            detections: vec![detection()],
            false_alarms: 0,
        }),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds <dir>")?);
    std::fs::create_dir_all(&dir)?;
    let reg = registry();
    let batch = SampleBatch {
        run_id: RUN_ID.into(),
        seq: 0,
        samples: vec![
            Sample { ts_us: T0, metric: "latency_ms".into(), value: 1.5, unit: "ms".into(), rank: None, step: None },
            Sample { ts_us: T0 + 1, metric: "cluster.allreduce_ms".into(), value: 3.5, unit: "ms".into(), rank: Some(2), step: Some(7) },
        ],
    };
    let verdict = Verdict {
        run_id: RUN_ID.into(), series_id: "s".into(), evaluated_at: T0 + 2, severity: Severity::Block, summary: summary(),
        metrics: vec![MetricVerdict {
            metric: "latency_ms".into(), direction: Direction::LowerIsBetter, value: 2.0, baseline: Some(1.5), baseline_count: 3, model: "percentage".into(),
            lower_limit: Some(0.0), upper_limit: Some(1.65), change_pct: Some(33.3), severity: Severity::Block, pvalue: Some(0.001),
            kind: Some(trackiq_schemas::catalog::MetricKind::Kpi), gates: true, direction_guessed: false, change_ci_low: Some(20.1), change_ci_high: Some(46.5), pvalue_adjusted: Some(0.002),
        }],
        findings: vec![Finding { rule: "consistency_regression".into(), metric: "latency_ms".into(), severity: Severity::Warn, value: Some(2.0), message: "stdev rose".into() }],
    };
    let mut values = BTreeMap::new();
    values.insert("latency_ms".to_string(), 2.5);
    let records: Vec<(&str, Vec<u8>)> = vec![
        ("run_started", reg.encode(&started())?),
        ("sample_batch", reg.encode(&batch)?),
        ("run_finished", reg.encode(&RunFinished { run_id: RUN_ID.into(), status: RunStatus::Failed, ended_at: T0 + 5, sample_count: 2, error: Some("exit 1".into()) })?),
        ("run_summary", reg.encode(&summary())?),
        ("detection", reg.encode(&detection())?),
        ("verdict", reg.encode(&verdict)?),
        ("dead_letter", reg.encode(&DeadLetter { topic: "trackiq.runs".into(), partition: 1, offset: 7, stage: "aggregator".into(), reason: "bad".into(), failed_at: T0, key: Some(vec![1, 2]), payload: vec![0xC3, 1, 7] })?),
        ("trend_result", reg.encode(&TrendResult {
            series_id: "s".into(), metric: "latency_ms".into(), run_id: RUN_ID.into(), computed_at: T0, points: 10, class: TrendClass::Degrading, slope: 0.5, r_squared: 0.9,
            theil_sen_slope: 0.4, mann_kendall_p: Some(0.01), total_change_pct: 12.0, cv: 0.05, confidence: 0.9,
            change_points: vec![ChangePointEvent { run_id: "r".into(), index: 4, mean_before: 1.0, mean_after: 2.0, change_pct: 100.0, pvalue: 1e-5 }],
        })?),
        ("baseline_pin", reg.encode(&BaselinePin { series_id: "s".into(), runs: vec![PinnedRun { run_id: "r".into(), values }], set_at: T0, reason: Some("accepted".into()) })?),
    ];
    // As trackiq framed records before following the spec: the legacy fingerprint of the
    // current RunStarted, and RunFinished version 1 (resolved against version 2 on decoding).
    let mut legacy = vec![0xC3, 0x01];
    legacy.extend_from_slice(&reg.versions("trackiq.RunStarted")[0].legacy_fingerprint);
    legacy.extend_from_slice(&records[0].1[10..]);
    let v1 = reg.versions("trackiq.RunFinished").into_iter().find(|v| !v.canonical_form.contains("error")).ok_or("no RunFinished v1")?;
    use apache_avro::types::Value as V;
    let old = V::Record(vec![
        ("run_id".into(), V::Uuid(RUN_ID.parse()?)),
        ("status".into(), V::Enum(0, "completed".into())),
        ("ended_at".into(), V::TimestampMicros(T0 + 5)),
        ("sample_count".into(), V::Long(10)),
    ]);
    let mut v1_record = vec![0xC3, 0x01];
    v1_record.extend_from_slice(&v1.legacy_fingerprint);
    v1_record.extend(apache_avro::to_avro_datum(v1.schema, old)?);
    let records: Vec<(&str, Vec<u8>)> = records.into_iter().chain([("run_started_legacy", legacy), ("run_finished_v1_legacy", v1_record)]).collect();
    for (name, bytes) in &records {
        reg.decode_valid(bytes).map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    Ok(())
}

use std::collections::BTreeMap;

use super::*;

pub(crate) fn run_started() -> RunStarted {
    let mut labels = BTreeMap::new();
    labels.insert("team".to_string(), "perf".to_string());
    let mut r = RunStarted {
        run_id: "0192f0c8-7a2b-7cde-8f00-0123456789ab".into(),
        tool: "trackiq-record".into(),
        tool_version: "0.1.0".into(),
        timestamp: 1_763_900_000_000_000,
        platform: Platform {
            hardware_name: "ci-box".into(),
            os: "linux".into(),
            kernel: Some("6.1".into()),
            cpu: "x86_64".into(),
            gpus: vec!["NVIDIA H100".into()],
            ..Default::default()
        },
        workload: Workload { name: "resnet".into(), kind: "inference".into(), batch_size: Some(8), ..Default::default() },
        version: VersionInfo { git_commit: Some("abc123".into()), env_hash: "e".into(), ..Default::default() },
        labels,
        series_id: String::new(),
    };
    r.series_id = identity::series_id(&r);
    r
}

pub(crate) fn summary() -> RunSummary {
    RunSummary {
        run: run_started(),
        status: RunStatus::Completed,
        ended_at: 1_763_900_001_000_000,
        sample_count: 3,
        expected_sample_count: Some(3),
        error: None,
        metrics: vec![MetricSummary {
            metric: "latency_ms".into(),
            unit: "ms".into(),
            count: 3,
            mean: 2.0,
            stdev: Some(1.0),
            min: 1.0,
            p50: 2.0,
            p90: 2.8,
            p95: 2.9,
            p99: 2.98,
            max: 3.0,
            histogram: Some(Histogram { edges: vec![1.0, 2.0, 3.0], counts: vec![1, 2] }),
            percentile_error: None,
        }],
        derived: vec![DerivedMetric { name: "throughput_per_sec".into(), value: 3.0, unit: "1/s".into() }],
        cluster: None,
    }
}

/// One event of every type, with the nested and optional parts filled in (a summary with and
/// without cluster health): the round trip below and `validate`'s tests (every one of them
/// must validate) share them.
pub(crate) fn fixture_events() -> Vec<AnyEvent> {
    let started = run_started();
    let batch = SampleBatch {
        run_id: started.run_id.clone(),
        seq: 0,
        samples: vec![Sample { ts_us: 1, metric: "latency_ms".into(), value: 1.5, unit: "ms".into(), rank: Some(2), step: None }],
    };
    let finished = RunFinished { run_id: started.run_id.clone(), status: RunStatus::Failed, ended_at: 5, sample_count: 1, error: Some("exit 1".into()) };
    let detection = Detection {
        run_id: started.run_id.clone(),
        detector: "straggler".into(),
        rank: Some(1),
        step: Some(7),
        event_ts: 10,
        detected_at: 12,
        value: 61.0,
        threshold: 24.0,
        message: "rank 1 computes 61 ms".into(),
    };
    let mut clustered = summary();
    clustered.cluster = Some(ClusterHealth {
        world_size: 2,
        steps: 2,
        samples_per_sec: 100.0,
        comm_overhead_pct: 12.5,
        steps_per_column: 1,
        allreduce_ms: vec![vec![Some(1.0), None], vec![Some(1.5), Some(2.0)]],
        loss: vec![1.0, 0.5],
        faults: vec![FaultOutcome { kind: "slow_rank".into(), rank: 1, step: 1, injected_at: 9, detector: Some("straggler".into()), detected_at: Some(12), latency_ms: Some(0.003) }],
        detections: vec![detection.clone()],
        false_alarms: 0,
    });
    let verdict = Verdict {
        run_id: started.run_id.clone(),
        series_id: started.series_id.clone(),
        evaluated_at: 9,
        severity: Severity::Block,
        summary: summary(),
        metrics: vec![MetricVerdict {
            metric: "latency_ms".into(),
            direction: Direction::LowerIsBetter,
            value: 2.0,
            baseline: Some(1.5),
            baseline_count: 3,
            model: "percentage".into(),
            lower_limit: None,
            upper_limit: Some(1.65),
            change_pct: Some(33.3),
            severity: Severity::Block,
            pvalue: Some(0.001),
            kind: Some(crate::catalog::MetricKind::Kpi),
            gates: true,
            direction_guessed: false,
            change_ci_low: Some(20.1),
            change_ci_high: Some(46.5),
            pvalue_adjusted: Some(0.002),
        }],
        findings: vec![Finding {
            rule: "consistency_regression".into(),
            metric: "latency_ms".into(),
            severity: Severity::Warn,
            value: Some(2.0),
            message: "stdev rose".into(),
        }],
    };
    let dead = DeadLetter {
        topic: "trackiq.samples".into(),
        partition: 1,
        offset: 7,
        stage: "aggregator".into(),
        reason: "bad".into(),
        failed_at: 3,
        key: Some(vec![1, 2]),
        payload: vec![0, 255, 7],
    };
    let trend = TrendResult {
        series_id: "s".into(),
        metric: "latency_ms".into(),
        run_id: started.run_id.clone(),
        computed_at: 1,
        points: 10,
        class: TrendClass::Degrading,
        slope: 0.5,
        r_squared: 0.9,
        theil_sen_slope: 0.4,
        mann_kendall_p: Some(0.01),
        total_change_pct: 12.0,
        cv: 0.05,
        confidence: 0.9,
        change_points: vec![ChangePointEvent { run_id: "r".into(), index: 4, mean_before: 1.0, mean_after: 2.0, change_pct: 100.0, pvalue: 1e-5 }],
    };
    let mut values = BTreeMap::new();
    values.insert("latency_ms".to_string(), 2.5);
    let pin = BaselinePin { series_id: "s".into(), runs: vec![PinnedRun { run_id: "r".into(), values }], set_at: 3, reason: Some("v2 accepted".into()) };
    vec![
        AnyEvent::RunStarted(started),
        AnyEvent::SampleBatch(batch),
        AnyEvent::RunFinished(finished),
        AnyEvent::RunSummary(Box::new(summary())),
        AnyEvent::RunSummary(Box::new(clustered)),
        AnyEvent::Detection(detection),
        AnyEvent::Verdict(Box::new(verdict)),
        AnyEvent::DeadLetter(dead),
        AnyEvent::TrendResult(Box::new(trend)),
        AnyEvent::BaselinePin(pin),
    ]
}

/// Encodes an event of any type with its current schema.
pub(crate) fn encode_any(event: &AnyEvent) -> Vec<u8> {
    registry().encode_any(event).unwrap_or_else(|e| panic!("{}: {e}", event.name()))
}

#[test]
fn every_event_round_trips_through_its_schema() {
    let reg = registry();
    let events = fixture_events();
    let mut types: Vec<&str> = events.iter().map(AnyEvent::name).collect();
    types.dedup();
    assert_eq!(types.len(), 9, "one event of every type: {types:?}");
    for event in &events {
        let bytes = encode_any(event);
        assert_eq!(&reg.decode_any(&bytes).unwrap(), event, "{}", event.name());
    }
    // The typed decoder reads the same bytes as decode_any.
    let AnyEvent::Verdict(verdict) = &events[6] else { panic!("events[6] is the verdict") };
    assert_eq!(&reg.decode::<Verdict>(&encode_any(&events[6])).unwrap(), verdict.as_ref());
}

#[test]
fn version_1_verdicts_decode_without_findings_or_pvalues() {
    // A v1 Verdict, written with the v1 schema as an old verdict processor did.
    let versions = registry().writer_schemas("trackiq.Verdict");
    assert_eq!(versions.len(), 5, "v1 to v5 are known");
    let (fp, v1) = versions.into_iter().find(|(_, s)| !s.canonical_form().contains("findings")).unwrap();
    #[derive(serde::Serialize)]
    struct MetricV1 {
        metric: String,
        direction: Direction,
        value: f64,
        baseline: Option<f64>,
        baseline_count: i32,
        model: String,
        lower_limit: Option<f64>,
        upper_limit: Option<f64>,
        change_pct: Option<f64>,
        severity: Severity,
    }
    #[derive(serde::Serialize)]
    struct VerdictV1 {
        run_id: String,
        series_id: String,
        evaluated_at: i64,
        severity: Severity,
        summary: RunSummary,
        metrics: Vec<MetricV1>,
    }
    let old = VerdictV1 {
        run_id: "0192f0c8-7a2b-7cde-8f00-0123456789ab".into(),
        series_id: "s".into(),
        evaluated_at: 5,
        severity: Severity::Pass,
        summary: summary(),
        metrics: vec![MetricV1 {
            metric: "latency_ms".into(),
            direction: Direction::LowerIsBetter,
            value: 1.0,
            baseline: Some(1.0),
            baseline_count: 3,
            model: "percentage".into(),
            lower_limit: None,
            upper_limit: None,
            change_pct: Some(0.0),
            severity: Severity::Pass,
        }],
    };
    let value = apache_avro::to_value(&old).unwrap().resolve(v1).unwrap();
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&fp);
    bytes.extend(apache_avro::to_avro_datum(v1, value).unwrap());
    let decoded = registry().decode::<Verdict>(&bytes).unwrap();
    assert_eq!(decoded.metrics[0].pvalue, None);
    assert!(decoded.findings.is_empty());
    assert_eq!(decoded.summary, summary());
}

#[test]
fn records_are_standard_single_object_encoding() {
    // `C3 01`, the CRC-64-AVRO of the writer schema's Parsing Canonical Form (little-endian),
    // then a datum any Avro library decodes with the schema alone.
    let reg = registry();
    let started = run_started();
    let bytes = reg.encode(&started).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    let current = &reg.versions("trackiq.RunStarted")[0];
    let spec = codec::canonical::crc64_avro(current.canonical_form.as_bytes()).to_le_bytes();
    assert_eq!(bytes[2..10], spec);
    assert_ne!(bytes[2..10], current.legacy_fingerprint, "the spec's fingerprint is written, not apache-avro's");
    let value = apache_avro::from_avro_datum(current.schema, &mut &bytes[10..], None).unwrap();
    let back: RunStarted = apache_avro::from_value(&value).unwrap();
    assert_eq!(back, started);
}

#[test]
fn records_of_apache_avro_single_object_writer_still_decode() {
    // apache-avro's writer frames with its own fingerprint, as trackiq did before it followed
    // the spec: the legacy alias must keep such records (and the history in Kafka and
    // Parquet) readable.
    let reg = registry();
    let started = run_started();
    let schema = reg.schema("trackiq.RunStarted").unwrap();
    let value = apache_avro::to_value(&started).unwrap().resolve(schema).unwrap();
    let mut bytes = Vec::new();
    apache_avro::GenericSingleObjectWriter::new_with_capacity(schema, 128).unwrap().write_value(value, &mut bytes).unwrap();
    assert_eq!(bytes[2..10], reg.versions("trackiq.RunStarted")[0].legacy_fingerprint);
    assert_eq!(reg.decode::<RunStarted>(&bytes).unwrap(), started);
}

#[test]
fn old_run_finished_decodes_with_the_new_schema() {
    // Encode a RunFinished with the v1 schema (no `error` field), as an old producer did.
    let v1_text = include_str!("../avro/history/RunFinished.v1.avsc");
    let v1 = apache_avro::Schema::parse_str(v1_text).unwrap();
    let fp = v1.fingerprint::<apache_avro::rabin::Rabin>().bytes;
    assert_ne!(fp.as_slice(), registry().fingerprint("trackiq.RunFinished").unwrap().as_slice());
    let old = apache_avro::types::Value::Record(vec![
        ("run_id".into(), apache_avro::types::Value::Uuid("0192f0c8-7a2b-7cde-8f00-0123456789ab".parse().unwrap())),
        ("status".into(), apache_avro::types::Value::Enum(0, "completed".into())),
        ("ended_at".into(), apache_avro::types::Value::TimestampMicros(42)),
        ("sample_count".into(), apache_avro::types::Value::Long(10)),
    ]);
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend_from_slice(&fp);
    bytes.extend(apache_avro::to_avro_datum(&v1, old).unwrap());

    let decoded = registry().decode::<RunFinished>(&bytes).unwrap();
    assert_eq!(decoded.sample_count, 10);
    assert_eq!(decoded.status, RunStatus::Completed);
    assert_eq!(decoded.error, None, "the field added in v2 takes its default");
}

#[test]
fn unknown_fingerprint_is_rejected_with_a_clear_error() {
    let mut bytes = registry().encode(&run_started()).unwrap();
    bytes[2..10].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let err = registry().decode::<RunStarted>(&bytes).unwrap_err().to_string();
    assert!(err.contains("fingerprint 0102030405060708"), "{err}");
    assert!(err.contains("not a trackiq schema"), "{err}");

    let err = registry().decode_any(b"{\"json\": true}").unwrap_err().to_string();
    assert!(err.contains("C3 01"), "{err}");
    let err = registry().decode_any(&[0xC3]).unwrap_err().to_string();
    assert!(err.contains("too short"), "{err}");
}

#[test]
fn wrong_record_type_is_named() {
    let bytes = registry().encode(&run_started()).unwrap();
    let err = registry().decode::<SampleBatch>(&bytes).unwrap_err().to_string();
    assert_eq!(err, "expected a trackiq.SampleBatch record, found a trackiq.RunStarted record");
}

#[test]
fn series_id_ignores_version_and_label_order_but_not_workload() {
    let a = run_started();
    let mut b = a.clone();
    b.version.git_commit = Some("def456".into());
    b.run_id = "other".into();
    assert_eq!(identity::series_id(&a), identity::series_id(&b));
    b.workload.batch_size = Some(16);
    assert_ne!(identity::series_id(&a), identity::series_id(&b));
    let mut c = a.clone();
    c.labels.insert("zone".into(), "eu".into());
    assert_ne!(identity::series_id(&a), identity::series_id(&c));
}

#[test]
fn arrow_schemas_exist_for_every_table() {
    for t in arrow::TABLES {
        let s = arrow::table_schema(t).unwrap();
        assert!(s.field_with_name("kafka_offset").is_ok(), "{t}");
    }
    let topics = Topics::new("x");
    assert_eq!(topics.table_of("x.samples"), Some("samples"));
    assert_eq!(topics.table_of("y.samples"), None);
}

/// Fingerprints of every schema version ever written. Records in Kafka and in Parquet carry
/// them, so a change to an `.avsc` file (or to how references are inlined) that alters an old
/// version's fingerprint would make old records undecodable: such a change must add a new
/// version instead.
#[test]
fn fingerprints_of_written_versions_never_change() {
    // apache-avro's fingerprints, which trackiq wrote until it followed the spec; printed by
    // this build before RunSummary version 3. They stay accepted as aliases.
    const LEGACY: &[(&str, &str)] = &[
        ("trackiq.RunSummary", "770705a812cdc19a"),
        ("trackiq.Verdict", "1297458dfa7f2a24"),
        ("trackiq.Verdict", "5966545db82c2aec"),
        ("trackiq.RunFinished", "8985625ff193c41d"),
        ("trackiq.RunFinished", "b2b679cafa15c5c2"),
        ("trackiq.RunStarted", "0c459f5d9a80eedf"),
        ("trackiq.SampleBatch", "f6086629e4e1d474"),
        ("trackiq.RunSummary", "db829b40b9aa3220"),
        ("trackiq.Verdict", "823e608d582b6fee"),
        ("trackiq.Detection", "ddea33254b851c00"),
        ("trackiq.DeadLetter", "3c10bd2b4d904f11"),
        ("trackiq.TrendResult", "5bc6d1e05c80f330"),
        ("trackiq.BaselinePin", "9a890f60dc9be4e1"),
        ("trackiq.RunSummary", "b67184e89784d2e3"),
        ("trackiq.Verdict", "15eaa96859a5d055"),
    ];
    // The spec's fingerprints of the same versions, which trackiq writes since; computed by
    // fastavro too (schemas/tests/python_avro.rs has the command).
    const SPEC: &[(&str, &str)] = &[
        ("trackiq.RunSummary", "30730dc92aa45460"),
        ("trackiq.Verdict", "cff68c80dddeaf8d"),
        ("trackiq.Verdict", "52b182a837ee9580"),
        ("trackiq.RunFinished", "3f55122af2fe3eac"),
        ("trackiq.RunFinished", "fa382e59580af6f3"),
        ("trackiq.RunStarted", "405e62a555e35d4d"),
        ("trackiq.SampleBatch", "2dc1b7967b95c0b9"),
        ("trackiq.RunSummary", "45bd03f646f22d53"),
        ("trackiq.Verdict", "2a99ec7684a6b1c1"),
        ("trackiq.Detection", "4c96297aaeb24c9c"),
        ("trackiq.DeadLetter", "1dcdb4ebc1fd3455"),
        ("trackiq.TrendResult", "f04f227343053c29"),
        ("trackiq.BaselinePin", "022aa30f3266566a"),
        ("trackiq.SampleColumns", "28e41532a41ac017"),
        ("trackiq.Alert", "c0a73e714f002d96"),
        ("trackiq.AlertAction", "5d37267f625b84b6"),
        ("trackiq.Notification", "268fd423f603bc9b"),
        // With the `note` reason and the `note` / `downgrade` actions.
        ("trackiq.Alert", "b7d18d1133f7e296"),
        ("trackiq.AlertAction", "f1f8adc476df482a"),
        ("trackiq.Notification", "90a54a43c3f014d6"),
    ];
    let hex = |f: [u8; 8]| f.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for (list, which) in [(LEGACY, "legacy"), (SPEC, "spec")] {
        for (name, fp) in list {
            let versions = registry().versions(name);
            let known: Vec<String> = versions.iter().map(|v| hex(if which == "spec" { v.fingerprint } else { v.legacy_fingerprint })).collect();
            assert!(known.iter().any(|k| k == fp), "{name} {which} fingerprint {fp} is no longer known (known: {known:?})");
            // Known is not enough: a record carrying it must reach the decoder.
            let mut bytes = vec![0xC3, 0x01];
            bytes.extend((0..8).map(|i| u8::from_str_radix(&fp[2 * i..2 * i + 2], 16).unwrap()));
            let err = registry().decode_any(&bytes).unwrap_err();
            assert!(matches!(err, SchemaError::Decode { .. }), "{name} {fp}: an empty datum fails to decode, not {err}");
        }
    }
}

/// The seed corpus of fuzz target `decode_validate` (`fuzz/seeds/decode_validate/`, written by
/// `fuzz/examples/seeds.rs`): one record of every type, current and legacy framing. Seeds that
/// stopped decoding would leave the fuzzer starting from nothing but the header check.
#[test]
fn fuzz_seed_records_are_valid_events() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/decode_validate");
    let mut types = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let event = registry().decode_valid(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        types.insert(event.name());
    }
    assert_eq!(types.len(), 9, "{types:?}");
}

/// The samples' fast path (serde_avro_fast straight into columns) reads exactly what
/// apache-avro's `Value` path reads, and refuses what it refuses.
#[test]
fn sample_columns_decode_the_same_on_both_paths() {
    let reg = registry();
    let schema = reg.schema(SampleBatch::WIRE).unwrap();
    let by_apache_avro = |bytes: &[u8]| -> Result<SampleBatch, String> {
        let mut datum = &bytes[10..];
        let value = apache_avro::from_avro_datum(schema, &mut datum, None).map_err(|e| e.to_string())?;
        if !datum.is_empty() {
            return Err(format!("{} trailing bytes", datum.len()));
        }
        SampleBatch::from_wire(SampleBatch::WIRE, &value).map_err(|e| e.to_string())
    };
    let metrics = [("latency_ms", "ms"), ("gpu_power_w", "W"), ("latency_ms", "s"), ("ünïcode_metric", "µs")];
    for n in [0usize, 1, 2, 7, 64, 1000, 5000] {
        let samples = (0..n)
            .map(|i| {
                let (metric, unit) = metrics[(i * 7 + n) % metrics.len()];
                Sample {
                    // Out of order now and then, so some deltas are negative.
                    ts_us: 1_700_000_000_000_000 + (i as i64 * 1000) - if i % 5 == 3 { 2500 } else { 0 },
                    metric: metric.into(),
                    value: (i as f64).sqrt() * if i % 3 == 0 { -1.5 } else { 1e-3 },
                    unit: unit.into(),
                    rank: (n % 2 == 0 && i % 4 != 1).then_some((i % 8) as i32),
                    step: (n % 3 != 0).then_some(i as i64 / 3),
                }
            })
            .collect();
        let batch = SampleBatch { run_id: "8b1a9953-c461-4296-a1e6-2a4c6b7d0e11".into(), seq: n as i64, samples };
        let bytes = reg.encode(&batch).unwrap();
        assert_eq!(reg.decode_any(&bytes).unwrap(), AnyEvent::SampleBatch(batch.clone()), "{n} samples");
        assert_eq!(by_apache_avro(&bytes).unwrap(), batch, "{n} samples");
        assert_eq!(reg.decode::<SampleBatch>(&bytes).unwrap(), batch, "the typed decoder takes the same path");
        // Every truncation is refused by both, never a panic; so is a byte too many.
        for cut in (10..bytes.len()).step_by(1 + bytes.len() / 97) {
            let fast = reg.decode_any(&bytes[..cut]);
            assert!(fast.is_err() && by_apache_avro(&bytes[..cut]).is_err(), "{n} samples cut at {cut}: {fast:?}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let e = reg.decode_any(&longer).unwrap_err().to_string();
        assert!(e.contains("1 trailing bytes"), "{e}");
    }
    // A column claiming more items than there are bytes is refused before anything is allocated.
    let batch = SampleBatch { run_id: "8b1a9953-c461-4296-a1e6-2a4c6b7d0e11".into(), seq: 0, samples: vec![] };
    let mut bytes = reg.encode(&batch).unwrap();
    let metrics_at = 10 + 1 + 36 + 1; // after the header, the run id (its length, 36 bytes) and seq 0
    assert_eq!(bytes[metrics_at], 0, "the empty metrics array");
    bytes[metrics_at] = 0x80;
    bytes.splice(metrics_at + 1..metrics_at + 1, [0x80, 0x80, 0x40]);
    let e = reg.decode_any(&bytes).unwrap_err().to_string();
    assert!(e.contains("SampleColumns") && e.contains("bytes are left"), "{e}");
}

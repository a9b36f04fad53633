//! trackiq's fingerprints and codec against two Python Avro implementations.
//!
//! The recorded truth below was printed by (fastavro 1.13.1, avro 1.12.2):
//!
//! ```sh
//! pip install fastavro==1.13.1 avro==1.12.2
//! cargo run -q -p trackiq-schemas --example schema_json -- /tmp/trackiq-schemas
//! python3 schemas/tests/fixtures/spec_fingerprints.py /tmp/trackiq-schemas
//! python3 schemas/tests/fixtures/python_single_object.py /tmp/trackiq-schemas schemas/tests/fixtures
//! ```

use trackiq_schemas::{AnyEvent, RunStarted, SampleBatch, registry};

/// Per schema version (`<name>.<n>`, n = 0 current, then the history in the registry's
/// order: Verdict v4 first, as it embeds the current RunSummary, then v1, v2, v3):
/// fastavro's CRC-64-AVRO of `to_parsing_canonical_form` (the spec's, as Java computes it),
/// and the `avro` package's `schema.fingerprint("CRC-64-AVRO")`. The `avro` package keeps
/// `{"type":"long"}` for logical types in its canonical form, as apache-avro does: its values
/// are trackiq's legacy fingerprints.
const PYTHON: &[(&str, usize, &str, &str)] = &[
    ("trackiq.BaselinePin", 0, "022aa30f3266566a", "9a890f60dc9be4e1"),
    ("trackiq.DeadLetter", 0, "1dcdb4ebc1fd3455", "3c10bd2b4d904f11"),
    ("trackiq.Detection", 0, "4c96297aaeb24c9c", "ddea33254b851c00"),
    ("trackiq.RunFinished", 0, "fa382e59580af6f3", "b2b679cafa15c5c2"),
    ("trackiq.RunFinished", 1, "3f55122af2fe3eac", "8985625ff193c41d"),
    ("trackiq.RunStarted", 0, "405e62a555e35d4d", "0c459f5d9a80eedf"),
    ("trackiq.RunSummary", 0, "a251be9829d8e21b", "b67184e89784d2e3"),
    ("trackiq.RunSummary", 1, "30730dc92aa45460", "770705a812cdc19a"),
    ("trackiq.RunSummary", 2, "45bd03f646f22d53", "db829b40b9aa3220"),
    ("trackiq.SampleBatch", 0, "2dc1b7967b95c0b9", "f6086629e4e1d474"),
    ("trackiq.SampleColumns", 0, "28e41532a41ac017", "bb3c4bbcf3603378"),
    ("trackiq.TrendResult", 0, "f04f227343053c29", "5bc6d1e05c80f330"),
    ("trackiq.Verdict", 0, "e4792b9fa10cfc30", "44afccd5877c1840"),
    ("trackiq.Verdict", 1, "c60b360677ad2254", "15eaa96859a5d055"),
    ("trackiq.Verdict", 2, "cff68c80dddeaf8d", "1297458dfa7f2a24"),
    ("trackiq.Verdict", 3, "52b182a837ee9580", "5966545db82c2aec"),
    ("trackiq.Verdict", 4, "2a99ec7684a6b1c1", "823e608d582b6fee"),
];

/// fastavro's `to_parsing_canonical_form` of SampleBatch, printed by the script above.
const SAMPLE_BATCH_FORM: &str = concat!(
    r#"{"name":"trackiq.SampleBatch","type":"record","fields":[{"name":"run_id","type":"string"},"#,
    r#"{"name":"seq","type":"long"},{"name":"samples","type":{"type":"array","items":{"name":"trackiq.Sample","#,
    r#""type":"record","fields":[{"name":"ts_us","type":"long"},{"name":"metric","type":"string"},"#,
    r#"{"name":"value","type":"double"},{"name":"unit","type":"string"},{"name":"rank","type":["null","int"]},"#,
    r#"{"name":"step","type":["null","long"]}]}}}]}"#
);

fn hex(fp: [u8; 8]) -> String {
    fp.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn spec_fingerprints_match_python_avro_libraries() {
    for (name, n, fastavro, avro) in PYTHON {
        let versions = registry().versions(name);
        let v = versions.get(*n).unwrap_or_else(|| panic!("{name} has no version {n}"));
        assert_eq!(hex(v.fingerprint), *fastavro, "{name}.{n}: spec fingerprint");
        assert_eq!(hex(v.legacy_fingerprint), *avro, "{name}.{n}: legacy fingerprint");
        if *n == 0 {
            assert_eq!(registry().fingerprint(name).map(hex).as_deref(), Some(*fastavro), "{name}: encoded with the spec's");
        }
    }
    let listed = |name: &str| PYTHON.iter().filter(|(n, ..)| *n == name).count();
    for name in ["trackiq.RunStarted", "trackiq.SampleBatch", "trackiq.SampleColumns", "trackiq.RunFinished", "trackiq.Detection", "trackiq.RunSummary",
        "trackiq.Verdict", "trackiq.DeadLetter", "trackiq.TrendResult", "trackiq.BaselinePin"]
    {
        assert_eq!(registry().versions(name).len(), listed(name), "{name}: every version is checked");
    }
    assert_eq!(registry().versions("trackiq.SampleBatch")[0].canonical_form, SAMPLE_BATCH_FORM);
}

#[test]
fn records_written_by_python_avro_decode() {
    let AnyEvent::RunStarted(fastavro) = registry().decode_valid(include_bytes!("fixtures/fastavro_run_started.bin")).unwrap() else {
        panic!("not a RunStarted")
    };
    assert_eq!(fastavro.run_id, "0192f0c8-7a2b-7cde-8f00-0123456789ab");
    assert_eq!(fastavro.tool, "python-producer");
    assert_eq!(fastavro.timestamp, 1_763_900_000_000_000);
    assert_eq!(fastavro.platform.gpus, ["NVIDIA H100"]);
    assert_eq!(fastavro.platform.framework.as_deref(), Some("torch"));
    assert_eq!(fastavro.workload.batch_size, Some(8));
    assert_eq!(fastavro.workload.sequence_length, None);
    assert_eq!(fastavro.labels.get("team").map(String::as_str), Some("perf"));
    assert_eq!(fastavro.series_id, "series-from-python");

    // The `avro` package frames with its own (apache-avro-like) fingerprint: the legacy alias.
    let avro: RunStarted = registry().decode(include_bytes!("fixtures/avro_run_started.bin")).unwrap();
    assert_eq!(avro, fastavro);

    let bytes = include_bytes!("fixtures/fastavro_sample_batch.bin");
    let AnyEvent::SampleBatch(batch) = registry().decode_valid(bytes).unwrap() else { panic!("not a SampleBatch") };
    assert_eq!((batch.run_id.as_str(), batch.seq, batch.samples.len()), ("0192f0c8-7a2b-7cde-8f00-0123456789ab", 3, 2));
    let s = &batch.samples[1];
    assert_eq!((s.ts_us, s.metric.as_str(), s.value, s.unit.as_str(), s.rank, s.step), (1_763_900_000_200_000, "cluster.allreduce_ms", 1.5, "ms", Some(3), Some(17)));
    assert_eq!((batch.samples[0].rank, batch.samples[0].step, batch.samples[0].value), (None, None, 8.25));

    // And trackiq writes the same bytes for the same batch: one encoding, both directions.
    let ours: SampleBatch = registry().decode(bytes).unwrap();
    assert_eq!(registry().encode_as("trackiq.SampleBatch", &ours).unwrap(), bytes);
    // Written today as columns, the same batch reads back the same...
    assert_eq!(registry().decode::<SampleBatch>(&registry().encode(&ours).unwrap()).unwrap(), ours);
    // ...and fastavro writes those columns byte for byte as trackiq does.
    let columns = include_bytes!("fixtures/fastavro_sample_columns.bin");
    assert_eq!(registry().decode::<SampleBatch>(columns).unwrap(), ours);
    assert_eq!(registry().encode(&ours).unwrap(), columns);
}

//! The TrackIQ contract in and out: real results written by the original tools import as
//! runs, and exporting them gives back every metric value.

use std::time::Duration;

use crate::support::*;

const FIXTURES: &[&str] = &["tests/fixtures/trackiq/autoperfpy_real_output.json", "tests/fixtures/trackiq/minicluster_real_output.json"];

#[test]
fn conformance_results_round_trip_through_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let root = env!("CARGO_MANIFEST_DIR");
    for fixture in FIXTURES {
        let path = format!("{root}/{fixture}");
        let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let out = ok(&up.cli(&["import", "trackiq-json", &path]));
        let run = crate::pipeline::uuid_in(&out);
        let q = format!("SELECT count(*) AS n FROM summaries WHERE run_id = '{run}'");
        wait_for("the imported run's summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r[0]["n"].as_i64() > Some(0)));

        let exported: serde_json::Value = serde_json::from_str(&ok(&up.cli(&["export", &run, "--format", "trackiq-json"]))).unwrap();
        for (k, v) in original["metrics"].as_object().unwrap() {
            assert_eq!(&exported["metrics"][k], v, "{fixture}: metric {k}");
        }
        for k in ["tool_name", "tool_version", "timestamp", "schema_version"] {
            assert_eq!(exported[k], original[k], "{fixture}: {k}");
        }
        for k in ["hardware_name", "os", "framework", "framework_version"] {
            assert_eq!(exported["platform"][k], original["platform"][k], "{fixture}: platform.{k}");
        }
        for k in ["name", "workload_type", "batch_size", "steps"] {
            assert_eq!(exported["workload"][k], original["workload"][k], "{fixture}: workload.{k}");
        }

        let csv = ok(&up.cli(&["export", &run, "--format", "csv"]));
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("run_id,timestamp_us,metric,value,unit,rank,step"));
        let non_null = original["metrics"].as_object().unwrap().values().filter(|v| !v.is_null()).count();
        assert!(lines.filter(|l| !l.is_empty()).count() >= non_null);
    }
    // nccl-tests output joins the same history, per message size.
    let out = ok(&up.cli(&["import", "nccl-tests", &format!("{root}/tests/fixtures/nccl/all_reduce_perf_8gpu.txt"), "--hardware", "h100-node"]));
    let run = crate::pipeline::uuid_in(&out);
    let q = format!("SELECT metric, mean FROM summaries WHERE run_id = '{run}' AND metric IN ('busbw_gbps.134217728B', 'avg_busbw_gbps') ORDER BY metric");
    let rows = wait_for("the nccl-tests summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r.len() == 2));
    assert_eq!((rows[0]["mean"].as_f64(), rows[1]["mean"].as_f64()), (Some(67.1234), Some(214.79)));
    // The same run as nccl-tests' -J JSON file gives the same figures.
    let out = ok(&up.cli(&["import", "nccl-tests", &format!("{root}/tests/fixtures/nccl/all_reduce_perf_8gpu.json"), "--hardware", "h100-node"]));
    let run = crate::pipeline::uuid_in(&out);
    let q = format!("SELECT metric, mean FROM summaries WHERE run_id = '{run}' AND metric IN ('busbw_gbps.134217728B', 'avg_busbw_gbps') ORDER BY metric");
    let rows = wait_for("the nccl-tests JSON summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r.len() == 2));
    assert_eq!((rows[0]["mean"].as_f64(), rows[1]["mean"].as_f64()), (Some(67.1234), Some(214.79)));
    let bad = up.cli(&["import", "nccl-tests", &format!("{root}/Cargo.toml")]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("no result rows"));
    let bad = up.cli(&["import", "trackiq-json", "Cargo.toml"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not valid JSON"));
    let _ = up.stop();
}

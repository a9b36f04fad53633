//! Bad input gets a clear error naming what was wrong, and a non-zero exit.

use std::process::Command;

use crate::support::{BIN, free_port};

fn fails_with(args: &[&str], needle: &str) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in:\n{stderr}");
}

#[test]
fn invalid_metrics_name_the_field() {
    fails_with(&["record", "--metric", "latency_ms=-3"], "metric `latency_ms`: value -3 is negative");
    fails_with(&["record", "--metric", "ttft_ms=NaN"], "metric `ttft_ms`: value NaN is not a finite number");
    fails_with(&["record", "--metric", "throughput"], "invalid --metric `throughput`: no `=`");
    fails_with(&["record", "--metric", "x=1", "--label", "novalue"], "invalid --label `novalue`");
}

#[test]
fn producers_fail_at_once_without_a_broker() {
    let brokers = format!("127.0.0.1:{}", free_port());
    let t = std::time::Instant::now();
    fails_with(&["record", "--brokers", &brokers, "--metric", "x=1"], "start `trackiq up`");
    fails_with(&["bench", "cmd", "--brokers", &brokers, "--", "true"], "or pass --brokers");
    assert!(t.elapsed().as_secs() < 15, "fails fast, took {:?}", t.elapsed());
}

#[test]
fn bad_queries_and_flags_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().display());
    fails_with(&["sql", "SELEC 1", "--data", &data], "SQL error");
    fails_with(&["sql", "SELECT * FROM nope", "--data", &data], "nope");
    fails_with(&["sql", "SELECT 1", "--format", "xml"], "invalid value 'xml'");
    fails_with(&["bench", "cmd", "--iterations", "0", "--", "true"], "--iterations must be at least 1");
    fails_with(&["--data", "ftp://x", "sql", "SELECT 1"], "supported schemes are file:// and s3://");
    fails_with(&["gate"], "<RUN_ID>");
    fails_with(&["changepoints", "--metric", "x", "--window-len", "1", "--data", &data], "--window-len must be at least 2");
    fails_with(&["compare", "a", "b", "--data", &data], "run a is not in the history");
    // An empty history is a valid, empty answer.
    let out = Command::new(BIN).args(["sql", "SELECT count(*) AS n FROM samples", "--format", "csv", "--data", &data]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n0");
}

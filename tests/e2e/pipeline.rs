//! The walking skeleton end to end on the default `file://` store: record and bench cmd →
//! summary → verdict → webhook received → report written → rows queryable with SQL.

use std::time::Duration;

use crate::support::*;

/// A run id (36-character UUID) printed anywhere in `text`.
pub fn uuid_in(text: &str) -> String {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')).find(|t| t.len() == 36).expect("a run id in the output").to_string()
}

/// The scenario shared by the file:// and s3:// tests; `read_report(run_id)` returns the
/// report's HTML once it exists.
pub fn scenario(up: &Up, hooks: &Receiver, read_report: impl Fn(&str) -> Option<String>) {
    let identity = ["--workload", "resnet50", "--hardware", "ci-box", "--batch-size", "8", "--label", "team=<script>alert(1)</script>"];
    // Four baseline runs: with three, the t-test of the runs has 2 degrees of freedom and only
    // enormous changes are significant at the default alpha.
    for (latency, throughput) in [("10.0", "100"), ("10.2", "98"), ("9.8", "101"), ("10.0", "101")] {
        let mut args = vec!["record", "--version-tag", "base"];
        args.extend(identity);
        let (l, t) = (format!("latency_ms={latency}"), format!("throughput={throughput}"));
        args.extend(["--metric", &l, "--metric", &t]);
        ok(&up.cli(&args));
    }
    let mut args = vec!["record", "--version-tag", "candidate", "--metric", "latency_ms=13", "--metric", "throughput=80"];
    args.extend(identity);
    let regression = recorded_run_id(&ok(&up.cli(&args)));

    // The webhook carries the block verdict: latency 13 against a baseline mean of 10 is +30 %.
    let alert = hooks.wait_for_run(&regression, Duration::from_secs(60));
    assert_eq!(alert["severity"], "block", "{alert}");
    let latency = alert["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "latency_ms").unwrap();
    assert_eq!(latency["baseline_count"], 4);
    assert!(latency["change_ci_low"].as_f64().unwrap() > 10.0 && latency["pvalue_adjusted"].as_f64().unwrap() < 0.005, "significant: {latency}");
    assert!((latency["baseline"].as_f64().unwrap() - 10.0).abs() < 1e-9, "{latency}");
    assert!((latency["change_pct"].as_f64().unwrap() - 30.0).abs() < 1e-9, "{latency}");
    let throughput = alert["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "throughput").unwrap();
    assert_eq!((throughput["direction"].as_str(), throughput["severity"].as_str()), (Some("higher_is_better"), Some("block")));

    // bench cmd: one latency sample per iteration; failing iterations are counted, not hidden.
    let bench_out = up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "5", "--telemetry-interval", "20", "--workload", "true-cmd", "--", "true"]);
    let bench_id = uuid_in(&ok(&bench_out));
    // No GPU here (as on CI): one line says so, and the run goes on with host telemetry.
    let stderr = String::from_utf8_lossy(&bench_out.stderr);
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        assert_eq!(stderr.matches("GPU telemetry is off").count(), 1, "{stderr}");
    }
    let failing = up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "3", "--", "false"]);
    assert_eq!(failing.status.code(), Some(2), "failing iterations give exit code 2");
    assert!(String::from_utf8_lossy(&failing.stdout).contains("3 of 3 iterations failed"));

    // The report of the regression exists, shows the verdict, and escapes user strings.
    let html = wait_for("the regression's report", Duration::from_secs(60), || read_report(&regression));
    assert!(html.contains("class=\"badge block\""), "report shows the block verdict");
    assert!(html.contains("resnet50") && html.contains("candidate"));
    assert!(!html.contains("<script>alert(1)</script>"), "user strings are escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"));
    let bench_html = wait_for("the bench run's report", Duration::from_secs(60), || read_report(&bench_id));
    assert!(bench_html.contains("<svg") && bench_html.contains("latency_ms distribution (5 samples)"), "latency histogram chart");

    // SQL over the Parquet history.
    let q = format!("SELECT severity, value, baseline FROM verdicts WHERE run_id = '{regression}' AND metric = 'latency_ms' AND kind = 'metric'");
    let rows = wait_for("the regression's verdict in Parquet", Duration::from_secs(60), || Some(sql(up, &q)).filter(|r| !r.is_empty()));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["severity"].as_str(), rows[0]["value"].as_f64()), (Some("block"), Some(13.0)));
    let q = format!(
        "SELECT metric, count(*) AS n, min(value) AS lo FROM samples WHERE run_id = '{bench_id}' AND metric IN ('iteration_failed', 'latency_ms') GROUP BY metric ORDER BY metric"
    );
    let rows = wait_for("the bench run's samples in Parquet", Duration::from_secs(60), || Some(sql(up, &q)).filter(|r| r.len() == 2));
    assert_eq!(rows[0]["metric"], "iteration_failed");
    assert_eq!((rows[0]["n"].as_i64(), rows[0]["lo"].as_f64()), (Some(5), Some(0.0)));
    assert_eq!((rows[1]["metric"].as_str(), rows[1]["n"].as_i64()), (Some("latency_ms"), Some(5)));
    assert!(rows[1]["lo"].as_f64().unwrap() > 0.0, "a measured latency");
    let q = format!("SELECT DISTINCT metric FROM samples WHERE run_id = '{bench_id}' AND (metric LIKE 'gpu_%' OR metric = 'memory_used_mib')");
    let telemetry: Vec<String> = sql(up, &q).iter().map(|r| r["metric"].as_str().unwrap_or_default().to_string()).collect();
    assert!(telemetry.contains(&"memory_used_mib".to_string()), "host telemetry sampled: {telemetry:?}");
    if !std::path::Path::new("/dev/nvidiactl").exists() {
        assert!(telemetry.iter().all(|m| !m.starts_with("gpu_")), "nothing simulated without a GPU: {telemetry:?}");
    }
    let q = format!("SELECT count, p50, status FROM summaries WHERE run_id = '{bench_id}' AND metric = 'latency_ms'");
    let rows = wait_for("the bench summary in Parquet", Duration::from_secs(60), || Some(sql(up, &q)).filter(|r| !r.is_empty()));
    assert_eq!((rows[0]["count"].as_i64(), rows[0]["status"].as_str()), (Some(5), Some("completed")));
    let q = format!("SELECT event, status FROM runs WHERE run_id = '{regression}' ORDER BY event DESC");
    let rows = wait_for("the regression's run events", Duration::from_secs(60), || Some(sql(up, &q)).filter(|r| r.len() == 2));
    assert_eq!((rows[0]["event"].as_str(), rows[1]["status"].as_str()), (Some("started"), Some("completed")));
}

#[test]
fn record_and_bench_to_verdict_webhook_report_and_sql() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Receiver::start(0);
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[hooks.url.clone()], &[]);
    let reports = dir.path().join("data").join("reports");
    scenario(&up, &hooks, |id| std::fs::read_to_string(reports.join(format!("{id}.html"))).ok());
    let log = up.log.clone();
    assert!(up.stop().success(), "graceful stop:\n{}", log.lock().unwrap());
}

//! Regression intelligence through the CLI over a live pipeline: verdicts with findings,
//! the CI gate, change points and trends over the history, pinned baselines, compare.

use std::time::Duration;

use crate::pipeline::uuid_in;
use crate::support::*;

fn record(up: &Up, tag: &str, latency: f64) -> String {
    let metric = format!("latency_ms={latency}");
    recorded_run_id(&ok(&up.cli(&["record", "--workload", "step", "--hardware", "box", "--version-tag", tag, "--metric", &metric])))
}

fn verdict_of(up: &Up, run: &str) -> (String, Vec<String>) {
    let q = format!("SELECT severity, kind, model FROM verdicts WHERE run_id = '{run}' AND metric = 'latency_ms' ORDER BY kind DESC");
    let rows = wait_for(&format!("verdict of {run}"), Duration::from_secs(60), || Some(sql(up, &q)).filter(|r| !r.is_empty()));
    let metric = rows.iter().find(|r| r["kind"] == "metric").expect("a metric verdict");
    let findings = rows.iter().filter(|r| r["kind"] == "finding").map(|r| r["model"].as_str().unwrap_or_default().to_string()).collect();
    (metric["severity"].as_str().unwrap_or_default().to_string(), findings)
}

#[test]
fn gate_changepoints_trends_baselines_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);

    let baseline = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0];
    let mut runs = Vec::new();
    for (i, v) in baseline.iter().enumerate() {
        runs.push(record(&up, &format!("b{i}"), *v));
    }
    let step = record(&up, "step", 12.0);
    let (severity, _) = verdict_of(&up, &step);
    assert_eq!(severity, "block", "+20 % blocks");
    assert_eq!(verdict_of(&up, &runs[5]).0, "pass");

    // The gate: exit 1 and a Markdown summary on block, exit 0 on pass.
    let gate = up.cli(&["gate", &step, "--timeout", "60"]);
    let md = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(1), "{md}");
    assert!(md.starts_with("### trackiq gate: BLOCK") && md.contains("| latency_ms | 12 | 10 | +20.00 % | block |"), "{md}");
    let pass = up.cli(&["gate", &runs[5]]);
    assert_eq!(pass.status.code(), Some(0), "{}", String::from_utf8_lossy(&pass.stdout));

    // Two more runs after the step: the change point is at the step run.
    for v in [12.1, 11.9] {
        record(&up, "after", v);
    }
    let last = record(&up, "after", 12.05);
    verdict_of(&up, &last);
    // A run's summary and its verdict are archived to two tables, each flushed on its own
    // clock: the last summaries can land a flush after the verdict waited for above.
    let trend = wait_for("the trend over all 10 runs", Duration::from_secs(60), || {
        let t: Vec<serde_json::Value> = serde_json::from_str(&ok(&up.cli(&["trend", "--metric", "latency_ms", "--format", "json"]))).unwrap();
        t.first().is_some_and(|r| r["runs"] == "10").then_some(t)
    });
    assert_eq!(trend[0]["runs"], "10");
    let cps: Vec<serde_json::Value> = serde_json::from_str(&ok(&up.cli(&[
        "changepoints", "--metric", "latency_ms", "--window-len", "10", "--max-pvalue", "0.01", "--format", "json",
    ])))
    .unwrap();
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert_eq!((cps[0]["first run after"].as_str(), cps[0]["index"].as_str()), (Some(step.as_str()), Some("6")));
    // The trends topic is archived too: the latest result saw all 10 runs and the step.
    let q = "SELECT points, change_points, last_change_run_id FROM trends WHERE metric = 'latency_ms' ORDER BY points DESC LIMIT 1";
    let rows = wait_for("trend results in Parquet", Duration::from_secs(60), || Some(sql(&up, q)).filter(|r| r.first().is_some_and(|r| r["points"] == 10)));
    assert_eq!(rows[0]["last_change_run_id"].as_str(), Some(step.as_str()));

    // Pin the baseline to the step run: 12.2 passes against it, 13.5 blocks.
    let pinned = ok(&up.cli(&["baseline", "set", &step, "--reason", "new allocator accepted"]));
    assert!(pinned.contains("pinned series"), "{pinned}");
    let shown = wait_for("the pinned baseline in Parquet", Duration::from_secs(60), || {
        Some(ok(&up.cli(&["baseline", "show", "--format", "json"]))).filter(|s| s.contains("pinned to 1 run"))
    });
    assert!(shown.contains("new allocator accepted"), "{shown}");
    // No wait: the pin and the next summary share the series' partition of the summaries
    // topic, so the verdict processor applies the pin first by construction.
    let ok_run = record(&up, "pinned", 12.2);
    assert_eq!(verdict_of(&up, &ok_run).0, "pass");
    let bad_run = record(&up, "pinned", 13.5);
    assert_eq!(verdict_of(&up, &bad_run).0, "block");

    // Compare two bench runs with raw samples: significance and a confidence column.
    let a = uuid_in(&ok(&up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "8", "--workload", "sleepy", "--", "sleep", "0.01"])));
    let b = uuid_in(&ok(&up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "8", "--workload", "sleepy", "--", "sleep", "0.05"])));
    let q = format!("SELECT count(*) AS n FROM summaries WHERE run_id IN ('{a}', '{b}') AND metric = 'latency_ms'");
    wait_for("both bench summaries", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r[0]["n"] == 2));
    // The samples table is flushed on its own schedule: compare reads the raw samples.
    let q = format!("SELECT count(*) AS n FROM samples WHERE run_id IN ('{a}', '{b}') AND metric = 'latency_ms'");
    wait_for("both runs' 16 latency samples", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r[0]["n"] == 16));
    let cmp: Vec<serde_json::Value> = serde_json::from_str(&ok(&up.cli(&["compare", &a, &b, "--format", "json"]))).unwrap();
    let lat = cmp.iter().find(|r| r["metric"] == "latency_ms").unwrap();
    assert_eq!((lat["winner"].as_str(), lat["confidence"].as_str()), (Some("A"), Some("strong")));
    assert!(lat["Mann-Whitney"].as_str().unwrap().contains("(significant)"), "{lat}");
    let refused = up.cli(&["compare", &a, &step]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(up.stop().success());
}

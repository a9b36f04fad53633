//! A run recorded with a time older than runs already judged: judged against the runs before
//! it in time, its findings about itself only, and no verdict already given changes.

use std::time::Duration;

use crate::support::*;

fn record(up: &Up, at: &str, latency: f64) -> String {
    let metric = format!("latency_ms={latency}");
    recorded_run_id(&ok(&up.cli(&["record", "--workload", "late", "--hardware", "box", "--at", at, "--metric", &metric])))
}

/// (run, baseline_count, severity, findings) of every verdict record, by run start.
fn verdicts(up: &Up) -> Vec<(String, i64, String, i64)> {
    sql(
        up,
        "SELECT v.run_id, v.baseline_count, v.severity, (SELECT count(*) FROM verdicts f WHERE f.run_id = v.run_id AND f.kind = 'finding') AS findings \
         FROM verdicts v WHERE v.kind = 'metric' AND v.metric = 'latency_ms' ORDER BY v.started_at",
    )
    .iter()
    .map(|r| (r["run_id"].as_str().unwrap().to_string(), r["baseline_count"].as_i64().unwrap(), r["severity"].as_str().unwrap().to_string(), r["findings"].as_i64().unwrap()))
    .collect()
}

#[test]
fn an_older_run_recorded_late_is_judged_against_the_runs_before_it_and_changes_no_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    // Ten runs a day apart; the last five 20 % slower (a step the in-order verdicts see).
    let mut ids = Vec::new();
    for day in 1..=10 {
        let latency = if day <= 5 { 10.0 + f64::from(day % 3) * 0.05 } else { 12.0 + f64::from(day % 3) * 0.05 };
        ids.push(record(&up, &format!("2026-11-{day:02}T12:00:00Z"), latency));
    }
    let before = wait_for("ten verdicts", Duration::from_secs(90), || Some(verdicts(&up)).filter(|v| v.len() == 10));
    assert!(before.iter().any(|v| v.3 > 0), "the in-order runs see the step (findings): {before:?}");
    // A run of 2 November at noon + 1 h, recorded last.
    let late = record(&up, "2026-11-02T13:00:00Z", 10.02);
    let after = wait_for("the late run's verdict", Duration::from_secs(90), || Some(verdicts(&up)).filter(|v| v.len() == 11));
    let mine = after.iter().find(|v| v.0 == late).unwrap();
    assert_eq!(mine.1, 2, "judged against the two runs before it in time: {after:?}");
    assert_eq!(mine.3, 0, "no finding about the later runs' step: {after:?}");
    let others: Vec<_> = after.iter().filter(|v| v.0 != late).cloned().collect();
    assert_eq!(others, before, "the ten verdicts stay as they were");
    assert_eq!(after.iter().map(|v| v.0.as_str()).position(|r| r == late), Some(2), "in time order in the history");
    // The series' trend includes it: 11 points.
    let points = wait_for("the trend with the late run", Duration::from_secs(60), || {
        sql(&up, "SELECT max(points) AS n FROM trends WHERE metric = 'latency_ms'").first().and_then(|r| r["n"].as_i64()).filter(|n| *n == 11)
    });
    assert_eq!(points, 11);
    assert_eq!(ids.len(), 10);
}

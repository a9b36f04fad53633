//! One verdict everywhere: a run whose iterations fail is judged on its failure rate like any
//! KPI, and the CI gate, the verdicts table, the alert, the report and the dashboard all show
//! the severity the verdict stage decided, never one of their own.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(90);

/// `bench cmd` of a shell step that counts its calls in `counter` and, when `fail_every_other`,
/// fails every second one: the same work either way, only the exit status differs.
fn bench(up: &Up, counter: &Path, fail_every_other: bool) -> String {
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n + 1)) > {c}; exit $(( n % 2 * {f} ))",
        c = counter.display(),
        f = u8::from(fail_every_other)
    );
    let out = up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "20", "--workload", "flaky-step", "--hardware", "box", "--", "sh", "-c", &script]);
    // Failed iterations make `bench cmd` exit with 2 (its run is recorded all the same).
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(if fail_every_other { 2 } else { 0 }), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    crate::pipeline::uuid_in(&stdout)
}

#[test]
fn a_run_with_failed_iterations_shows_one_severity_on_all_five_surfaces() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let counter = dir.path().join("calls");
    for _ in 0..5 {
        bench(&up, &counter, false);
    }
    let flaky = bench(&up, &counter, true);

    // The verdict: the failure rate (10 of 20 against 0 of 100) gates and blocks.
    let rows = wait_for("the flaky run's verdict", WAIT, || {
        Some(sql(&up, &format!("SELECT metric, value, severity, gates, run_severity FROM verdicts WHERE run_id = '{flaky}' AND kind = 'metric'"))).filter(|r| !r.is_empty())
    });
    let failed = rows.iter().find(|r| r["metric"] == "iteration_failed").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!((failed["value"].as_f64(), failed["gates"].as_bool(), failed["severity"].as_str()), (Some(0.5), Some(true), Some("block")), "{failed}");
    let verdict = rows[0]["run_severity"].as_str().unwrap().to_string();
    assert_eq!(verdict, "block");

    // 1. The CI gate: the same severity and its exit code.
    let gate = up.cli(&["gate", &flaky]);
    let gate_out = String::from_utf8_lossy(&gate.stdout);
    assert!(gate_out.contains("trackiq gate: BLOCK") && gate.status.code() == Some(1), "{gate_out}");
    // 2. The alert of the series.
    let alert = wait_for("the alert", WAIT, || sql(&up, &format!("SELECT subject, severity FROM alerts WHERE run_id = '{flaky}'")).into_iter().next());
    assert_eq!((alert["subject"].as_str(), alert["severity"].as_str()), (Some("iteration_failed"), Some(verdict.as_str())), "{alert}");
    // 3. The report beside the HTML.
    let report = dir.path().join("data").join("reports").join(format!("{flaky}.json"));
    let report: serde_json::Value = wait_for("the report", WAIT, || std::fs::read(&report).ok().and_then(|b| serde_json::from_slice(&b).ok()));
    assert_eq!(report["severity"], verdict.as_str(), "{report}");
    // 4. The dashboard's runs page.
    let at = wait_for("the dashboard address", Duration::from_secs(10), || {
        up.log.lock().unwrap().lines().find_map(|l| l.split("dashboard http://").nth(1).map(|r| r.split('/').next().unwrap().to_string()))
    });
    let page = http_get(&format!("http://{at}/runs?workload=flaky-step"));
    let row = page.split("<tr data-run-id=").find(|r| r.starts_with(&format!("\"{flaky}\""))).unwrap_or_else(|| panic!("no row of {flaky}: {page}"));
    assert!(row.contains(&format!("<span class=\"badge {verdict}\">{verdict}</span>")), "{row}");
}

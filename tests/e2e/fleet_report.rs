//! `trackiq report` over a live pipeline's history: six steady runs and a +20 % regression
//! give a block verdict, a firing alert and a trend with a change point; the Markdown report
//! lists them in tables, the HTML page adds a chart per series; bad input is refused.

use std::time::Duration;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(90);

fn record(up: &Up, tag: &str, latency: f64) -> String {
    let metric = format!("latency_ms={latency}");
    recorded_run_id(&ok(&up.cli(&["record", "--workload", "fleet|step", "--hardware", "box", "--version-tag", tag, "--metric", &metric])))
}

#[test]
fn fleet_report_lists_regression_alert_trend_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);

    for (i, v) in [10.0, 10.1, 9.9, 10.05, 9.95, 10.0].iter().enumerate() {
        record(&up, &format!("b{i}"), *v);
    }
    let step = record(&up, "step", 12.0);
    let q = format!("SELECT severity FROM verdicts WHERE run_id = '{step}' AND metric = 'latency_ms' AND kind = 'metric'");
    let verdict = wait_for("the regression's verdict in Parquet", WAIT, || Some(sql(&up, &q)).filter(|r| !r.is_empty()));
    assert_eq!(verdict[0]["severity"], "block", "+20 % blocks");
    // The metric's alert (the step_change finding raises one of its own).
    let q = format!("SELECT alert_id FROM alerts WHERE run_id = '{step}' AND subject = 'latency_ms' AND state = 'firing'");
    let alert = wait_for("its alert in Parquet", WAIT, || Some(sql(&up, &q)).filter(|r| !r.is_empty()));
    let alert_id = alert[0]["alert_id"].as_str().unwrap().to_string();
    // The tables are archived independently: wait until every run and verdict is in too.
    let q = "SELECT (SELECT count(DISTINCT run_id) FROM runs WHERE event = 'started') + (SELECT count(DISTINCT run_id) FROM verdicts) AS n";
    wait_for("7 runs and 7 verdicts in Parquet", WAIT, || (sql_n(&up, q) == 14).then_some(()));
    let q = format!("SELECT count(*) AS n FROM trends WHERE run_id = '{step}' AND metric = 'latency_ms'");
    wait_for("its trend result in Parquet", WAIT, || (sql_n(&up, &q) > 0).then_some(()));

    let md = ok(&up.cli(&["report", "--days", "30", "--format", "markdown"]));
    assert!(md.starts_with("# trackiq fleet report\n\nLast 30 days: "), "{md}");
    // Headline: 7 runs, all judged: 3 without enough baseline yet, 3 pass, 1 block. The pipe
    // of the workload name is escaped in every table.
    assert!(md.contains("| Runs | Judged | pass | warn | block | improved | insufficient_data |\n|---|---|---|---|---|---|---|\n| 7 | 7 | 3 | 0 | 1 | 0 | 3 |"), "{md}");
    let row = |section: &str| md.split(section).nth(1).and_then(|s| s.split("\n## ").next()).unwrap_or_default().to_string();
    let changes = row("## Regressions and improvements");
    let regression = changes.lines().find(|l| l.contains(&step)).unwrap_or_else(|| panic!("no row of {step}: {md}"));
    assert!(regression.contains("| fleet\\|step | box | ") && regression.contains("| latency_ms | 12 | 10 | +20.00 % | block |"), "{regression}");
    assert_eq!(changes.lines().filter(|l| l.starts_with("| 20")).count(), 1, "only the regression is a change: {changes}");
    let alerts = row("## Open alerts");
    assert!(alerts.lines().any(|l| l.starts_with(&format!("| {alert_id} | block |")) && l.contains("| latency_ms | fleet\\|step | box | 12 | 10 | +20.00 % |")), "{alerts}");
    let trends = row("## Trends and change points");
    assert!(trends.lines().any(|l| l.contains("| fleet\\|step | box | latency_ms | 7 |") && l.ends_with(&format!("| 1 | {step} | +20.00 % |"))), "change point at the step: {trends}");
    let movers = row("## Top movers");
    assert!(movers.lines().filter(|l| l.starts_with("| ")).nth(1).is_some_and(|l| l.contains("| latency_ms | +20.00 % | 12 | 10 | block |")), "the regression moves most: {movers}");
    assert!(md.contains("the history charts (1 series × metric:") && !md.contains("<svg"), "{md}");

    let out = dir.path().join("r.html");
    let wrote = up.cli(&["report", "--days", "30", "--format", "html", "--output", out.to_str().unwrap()]);
    assert!(ok(&wrote).is_empty(), "the page goes to --output, not stdout");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&alert_id) && html.contains(&step), "{html}");
    assert!(html.contains("fleet|step on box — latency_ms (7 runs, change point marked)"), "chart caption");
    assert_eq!(html.matches("<svg").count(), 1, "one chart: one series × metric");
    assert_eq!(html.matches("<circle").count(), 7, "a verdict mark per run");
    assert!(html.contains("fill=\"#C62828\"") && html.contains("fill=\"#2E7D32\""), "block and pass marks");
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained");

    // Bad input is refused; another workload's report is empty, not an error.
    let zero = up.cli(&["report", "--days", "0"]);
    assert!(!zero.status.success() && String::from_utf8_lossy(&zero.stderr).contains("0 is not in 1..=3650"));
    let other = ok(&up.cli(&["report", "--workload", "nothing-here"]));
    assert!(other.contains("No runs in this period.") && other.contains("No alerts firing."), "{other}");
    assert!(up.stop().success());
}

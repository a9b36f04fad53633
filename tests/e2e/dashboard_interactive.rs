//! The dashboard's interactive parts in headless Chromium, over real benchmark runs of one
//! workload on two machines: the series chart overlays both with a legend and axis titles,
//! hovering a point shows its value, run, version, commit and verdict (read from the DOM after
//! real pointer input), dragging zooms the x range and a double-click resets it, the log
//! toggle switches the y scale; a run's page and a comparison chart their samples; a result
//! file chosen on the runs page is published through the run API and its run appears, a
//! broken one is refused naming where; the candidate's release review lists both series, an
//! approval lands in the `approvals` table and the exports hold its verdicts; unknown paths and bad query strings get the styled
//! page; `trackiq ui` does not call itself live. Screenshots under
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots` (`chart-*.png`, `upload.png`, ...).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::{Tour, browser_tools, capabilities, driver, run_of};
use crate::ingest_api::served;
use crate::support::*;
use crate::webdriver::Session;

const WAIT: Duration = Duration::from_secs(30);
const COMMIT: &str = "c0ffee1234567890";

/// The viewport position of point `point` (counting the line's drawn points) of line `line`
/// of the page's first chart.
async fn point_at(t: &Tour, line: usize, point: usize) -> (i64, i64) {
    let script = format!(
        "const u = document.querySelector('figure[data-chart][data-ready]').uplot; const r = u.over.getBoundingClientRect(); \
         let k = -1, n = {point}; for (let i = 0; i < u.data[0].length; i++) {{ if (u.data[{s}][i] != null && n-- === 0) {{ k = i; break; }} }} \
         return [r.left + u.valToPos(u.data[0][k], 'x'), r.top + u.valToPos(u.data[{s}][k], 'y')];",
        s = line + 1
    );
    let v = t.client.execute(&script).await.unwrap();
    (v[0].as_f64().unwrap().round() as i64, v[1].as_f64().unwrap().round() as i64)
}

fn mv(x: i64, y: i64) -> Value {
    json!({"type": "pointerMove", "duration": 50, "x": x, "y": y, "origin": "viewport"})
}

/// The chart's x range as the page publishes it.
async fn x_range(t: &Tour) -> (f64, f64) {
    let f = t.client.find("figure[data-chart][data-ready]").await.unwrap();
    let n = |v: Option<String>| v.unwrap().parse::<f64>().unwrap();
    (n(f.attr("data-x-min").await.unwrap()), n(f.attr("data-x-max").await.unwrap()))
}

/// Hovers point `point` of line `line` and returns the tooltip's text.
async fn hover(t: &Tour, line: usize, point: usize) -> String {
    let (x, y) = point_at(t, line, point).await;
    t.client.pointer(vec![mv(x, y)]).await.unwrap();
    let tip = t.wait(".chart-tip:not([hidden])", WAIT).await;
    tip.text().await.unwrap()
}

#[test]
fn charts_hover_zoom_overlay_upload_and_truthful_pages() {
    let Some((chromium, chromedriver)) = browser_tools("the dashboard's charts and upload in a browser") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let bench = |hw: &str, version: &str| {
        run_of(&up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "12", "--telemetry-interval", "20", "--workload", "sleepy", "--hardware", hw, "--version-tag", version, "--git-commit", COMMIT, "--", "sleep", "0.01"]))
    };
    let a_runs: Vec<String> = ["v1.0", "v1.1", "v1.2", "v1.3"].iter().map(|v| bench("box-a", v)).collect();
    let b_runs: Vec<String> = ["v2.0", "v2.1"].iter().map(|v| bench("box-b", v)).collect();
    wait_for("6 verdicts", Duration::from_secs(90), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") == 6).then_some(()));
    let series_of = |run: &str| sql(&up, &format!("SELECT DISTINCT series_id FROM summaries WHERE run_id = '{run}'"))[0]["series_id"].as_str().unwrap().to_string();
    let (series_a, series_b) = (series_of(&a_runs[0]), series_of(&b_runs[0]));
    let base = served(&up, "dashboard http://");
    let last_a = sql(&up, &format!("SELECT value, severity FROM verdicts WHERE run_id = '{}' AND metric = 'latency_ms' AND kind = 'metric'", a_runs[3]));
    let (last_value, last_severity) = (last_a[0]["value"].as_f64().unwrap(), last_a[0]["severity"].as_str().unwrap().to_string());

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let chromedriver = driver(&chromedriver);
    let upload_ok = dir.path().join("results.json");
    std::fs::write(&upload_ok, r#"{"uploaded_bench": {"latency": {"value": 1500.0, "lower_value": 1400.0, "upper_value": 1600.0}}}"#).unwrap();
    let upload_bad = dir.path().join("broken.json");
    std::fs::write(&upload_bad, "{\"uploaded_bench\": {\"latency\": {\"value\": \"fast\"}}}").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let uploaded_run = rt.block_on(async {
        let client = Session::start(&chromedriver.1, capabilities(&chromium)).await.expect("a chromium session");
        let t = Tour { client, base: base.clone(), shots: shots.clone() };

        // The series chart, one workload on two machines overlaid.
        t.visit(&format!("/series?series={series_a}&metric=latency_ms&overlay={series_b}"), "figure[data-chart][data-ready]").await;
        let figure = t.client.find("figure[data-chart]").await.unwrap();
        assert_eq!(figure.attr("data-lines").await.unwrap().as_deref(), Some("2"));
        let legend = t.text(".u-legend").await;
        assert!(legend.contains("sleepy on box-a") && legend.contains("sleepy on box-b"), "a legend names both: {legend}");
        let axes = t.client.execute("const u = document.querySelector('figure[data-chart]').uplot; return [u.axes[0].label, u.axes[1].label];").await.unwrap();
        assert_eq!(axes, json!(["run started (UTC)", "latency_ms (ms)"]), "axis titles with the metric and unit");
        assert!(!t.client.find("figure[data-chart] > svg").await.unwrap().is_displayed().await.unwrap(), "the SVG fallback gives way");
        t.check("chart-series-overlay").await;

        // Hover: box-a's 4th run, exactly as judged.
        let tip = hover(&t, 0, 3).await;
        let value = format!("{}", (last_value * 1e5).round() / 1e5);
        assert!(tip.contains("sleepy on box-a: ") && tip.contains(" ms"), "{tip}");
        assert!(tip.contains(&value[..value.len().min(6)]), "the value {last_value} in {tip}");
        for want in [format!("run {}", a_runs[3]), "version v1.3".to_string(), format!("commit {}", &COMMIT[..12]), format!("verdict {last_severity}")] {
            assert!(tip.contains(&want), "`{want}` in the tooltip: {tip}");
        }
        t.check("chart-hover").await;

        // Zoom: drag over the middle of the plot, then double-click back.
        let full = x_range(&t).await;
        let (left, top, width, height) = {
            let r = t.client.execute("const r = document.querySelector('figure[data-chart] .u-over').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];").await.unwrap();
            let f = |i: usize| r[i].as_f64().unwrap() as i64;
            (f(0), f(1), f(2), f(3))
        };
        let y = top + height / 2;
        t.client.pointer(vec![mv(left + width / 5, y), json!({"type": "pointerDown", "button": 0}), mv(left + width * 3 / 5, y), json!({"type": "pointerUp", "button": 0})]).await.unwrap();
        let zoomed = x_range(&t).await;
        assert!(zoomed.0 > full.0 && zoomed.1 < full.1, "dragging zooms in: {full:?} -> {zoomed:?}");
        t.check("chart-zoomed").await;
        let at = mv(left + width / 2, y);
        t.client.pointer(vec![at.clone(), json!({"type": "pointerDown", "button": 0}), json!({"type": "pointerUp", "button": 0}), json!({"type": "pointerDown", "button": 0}), json!({"type": "pointerUp", "button": 0})]).await.unwrap();
        let reset = x_range(&t).await;
        assert!((reset.0 - full.0).abs() < 1e-6 && (reset.1 - full.1).abs() < 1e-6, "a double-click resets: {full:?} vs {reset:?}");

        // Log scale.
        t.client.find("input[name=log-scale]").await.unwrap().click().await.unwrap();
        t.wait("figure[data-chart][data-scale=log]", WAIT).await;
        let distr = t.client.execute("return document.querySelector('figure[data-chart]').uplot.scales.y.distr;").await.unwrap();
        assert_eq!(distr, json!(3), "a log y scale");
        t.check("chart-log").await;

        // A run's samples over time; a comparison's overlaid.
        t.visit(&format!("/runs/{}", a_runs[1]), "figure[data-chart][data-ready]").await;
        let tip = hover(&t, 0, 2).await;
        assert!(tip.contains(&format!("run {}", a_runs[1])) && tip.contains("version v1.1") && tip.contains(" s"), "{tip}");
        t.check("chart-run").await;
        t.visit(&format!("/compare?run={}&run={}", a_runs[0], b_runs[0]), "figure[data-chart][data-ready]").await;
        assert_eq!(t.client.find("figure[data-chart]").await.unwrap().attr("data-lines").await.unwrap().as_deref(), Some("2"));
        t.check("chart-compare").await;

        // Upload: a good file is published and its run appears; a broken one is refused,
        // the answer naming where.
        t.visit("/runs", "section[data-upload] input[type=file]").await;
        t.client.find("section[data-upload] input[type=file]").await.unwrap().send_keys(upload_ok.to_str().unwrap()).await.unwrap();
        let done = t.wait("ul.uploads li.uploaded a[data-run-id]", Duration::from_secs(60)).await;
        let run = done.attr("data-run-id").await.unwrap().unwrap();
        assert!(t.text("ul.uploads li.uploaded").await.starts_with("results.json: bmf · 1 run(s), 1 new"), "{}", t.text("ul.uploads").await);
        t.wait(&format!("tr.live[data-run-id=\"{run}\"]"), Duration::from_secs(60)).await;
        t.client.find("section[data-upload] input[type=file]").await.unwrap().send_keys(upload_bad.to_str().unwrap()).await.unwrap();
        let refused = t.wait("ul.uploads li.error", Duration::from_secs(60)).await.text().await.unwrap();
        assert!(refused == "broken.json: refused (400): request body: $.uploaded_bench.latency.value: expected a number, found a string", "{refused}");
        t.check_expecting("upload", &["/runs/upload?format=auto - Failed to load resource: the server responded with a status of 400"]).await;

        // Small truths: a path that is not served, a query that does not parse.
        t.visit("/no/such/page", "main h1").await;
        assert_eq!(t.text("main h1").await, "Not found");
        t.check_expecting("not-found", &["/no/such/page - Failed to load resource: the server responded with a status of 404"]).await;
        t.visit("/runs?page=second", "main h1").await;
        assert_eq!(t.text("main h1").await, "Bad request");
        assert!(t.text("main p").await.contains("page"), "names the parameter: {}", t.text("main p").await);
        t.check_expecting("bad-query", &["/runs?page=second - Failed to load resource: the server responded with a status of 400"]).await;
        assert!(t.text("#live-status").await.starts_with("live"), "up's dashboard is fed");
        // Release review of the commit every sleepy run measured: both series, then approved.
        let candidate = &COMMIT[..8];
        t.visit(&format!("/release?commit={candidate}"), "#release-series").await;
        assert_eq!(t.count("#release-series tbody tr").await, 2, "box-a's and box-b's series");
        for s in [&series_a, &series_b] {
            assert_eq!(t.count(&format!("#release-series tr[data-series=\"{s}\"]")).await, 1);
        }
        t.check("release").await;
        t.client.find("#release-decide input[name=by]").await.unwrap().send_keys("release-manager").await.unwrap();
        t.client.find("#release-decide input[name=reason]").await.unwrap().send_keys("no regression on either machine").await.unwrap();
        t.client.find("#release-decide button[value=approve]").await.unwrap().click().await.unwrap();
        let recorded = t.wait("#decided", WAIT).await.text().await.unwrap();
        assert_eq!(recorded, format!("Recorded: approve of commit {candidate} by release-manager"));
        t.check("release-approved").await;

        t.client.close().await.unwrap();
        run
    });
    // The approval is in the history with what the page showed; the exports hold the verdicts.
    let approved = format!("SELECT count(*) AS n FROM approvals WHERE candidate_kind = 'commit' AND candidate = '{}' AND decision = 'approve' AND series = 2 AND by = 'release-manager' AND reason = 'no regression on either machine'", &COMMIT[..8]);
    wait_for("the approval in the approvals table", Duration::from_secs(60), || (sql_n(&up, &approved) == 1).then_some(()));
    let exported: Value = serde_json::from_str(&http_get(&format!("{base}/release/export.json?commit={}", &COMMIT[..8]))).unwrap();
    let verdicts = exported["verdicts"].as_array().unwrap();
    assert!(verdicts.iter().any(|v| v["metric"] == "latency_ms" && v["series_id"] == series_a.as_str()) && verdicts.iter().all(|v| v["git_commit"] == COMMIT), "{exported}");
    let csv = http_get(&format!("{base}/release/export.csv?commit={}", &COMMIT[..8]));
    assert!(csv.starts_with("series_id,tool,workload,hardware_name,metric,severity,") && csv.lines().count() == verdicts.len() + 1, "{csv}");
    let archived = |n: i64| sql_n(&up, &format!("SELECT count(*) AS n FROM runs WHERE run_id = '{uploaded_run}' AND event = 'started'")) == n;
    wait_for("the upload's run in the history", Duration::from_secs(60), || archived(1).then_some(()));

    // `trackiq ui`: a history without a pipeline is not called live.
    let ui_args: Vec<String> = ["ui", "--dashboard-listen", "127.0.0.1:0"].map(String::from).to_vec();
    let ui = Up::spawn(&ui_args, &up.brokers, &data, &fast_config(dir.path()), &[], "trackiq ui at");
    let ui_base = served(&ui, "trackiq ui at http://");
    rt.block_on(async {
        let client = Session::start(&chromedriver.1, capabilities(&chromium)).await.expect("a chromium session");
        let t = Tour { client, base: ui_base, shots: shots.clone() };
        t.visit("/", "#live-status").await;
        let deadline = std::time::Instant::now() + WAIT;
        let mut status = t.text("#live-status").await;
        while status == "not live" && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = t.text("#live-status").await;
        }
        assert_eq!(status, "not live · history only", "the header once the feed was refused");
        assert_eq!(t.count("#live-status[data-connected]").await, 0);
        let logs = t.client.browser_log().await.unwrap();
        t.client.close().await.unwrap();
        // The refused feed (503) is the one console error such a page has.
        assert!(logs.iter().filter(|m| m["level"] == "SEVERE").all(|m| m["message"].as_str().unwrap_or("").contains("/events")), "{logs:#?}");
    });
    println!("screenshots: {}", shots.display());
}

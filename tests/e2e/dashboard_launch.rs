//! Launching a configured benchmark from the dashboard of a real `trackiq up`, in headless
//! Chromium: the form runs `trackiq bench cmd` with the chosen values, its output streams onto
//! the page and the run it recorded is linked and judged; tampered values, unknown
//! parameters, another site's post and a second launch while one runs are refused; a launch is
//! cancelled from its page. Screenshots `launch-*.png` beside the dashboard's.

use std::path::PathBuf;
use std::time::Duration;

use crate::browser::{Tour, browser_tools, capabilities, driver};
use crate::ingest_api::served;
use crate::support::*;
use crate::webdriver::Session;

const WAIT: Duration = Duration::from_secs(60);

const LAUNCH: &str = r#"
[[dashboard.launch]]
name = "sleep-bench"
description = "a sleeping command, timed"
args = ["bench", "cmd", "--warmup", "0", "--iterations", "{iterations}", "--telemetry-interval", "20", "--workload", "launched", "--", "sleep", "{pause}"]
[[dashboard.launch.params]]
name = "iterations"
min = 2
max = 400
integer = true
default = "5"
[[dashboard.launch.params]]
name = "pause"
choices = ["0.01", "0.02"]
default = "0.01"
"#;

/// A form post to `url` as a page of `origin` would send it: the status and body.
async fn post(url: &str, origin: Option<&str>, form: &str) -> (u16, String) {
    let mut req = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap().post(url).header("content-type", "application/x-www-form-urlencoded").body(form.to_string());
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn a_configured_benchmark_is_launched_streamed_linked_and_nothing_else_runs() {
    let Some((chromium, chromedriver)) = browser_tools("launching from the dashboard in a browser") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let config = fast_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(LAUNCH);
    std::fs::write(&config, text).unwrap();
    let up = Up::start(&data, &config, &[], &[]);
    let base = served(&up, "dashboard http://");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let chromedriver = driver(&chromedriver);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let launched = rt.block_on(async {
        // Refusals, over HTTP as a tampered form would post them.
        let at = format!("{base}/launch/sleep-bench");
        for (form, status, why) in [
            ("iterations=100000&pause=0.01", 400, "iterations 100000 is above the maximum 400"),
            ("iterations=5&pause=0.01%3B%20rm%20-rf%20%2F", 400, "pause `0.01; rm -rf /` is not one of 0.01, 0.02"),
            ("iterations=5&command=rm", 400, "`command` is not a parameter of sleep-bench; its parameters: iterations, pause"),
            ("iterations=-3", 400, "iterations -3 is below the minimum 2"),
        ] {
            let (got, body) = post(&at, Some(&base), form).await;
            assert!(got == status && unescape(&body).contains(why), "{form}: {got} {body}");
        }
        let (got, _) = post(&format!("{base}/launch/nonesuch"), Some(&base), "").await;
        assert_eq!(got, 404, "an entry that is not configured");
        let (got, _) = post(&at, Some("https://evil.example"), "iterations=5").await;
        assert_eq!(got, 403, "another site's page cannot launch");

        // One at a time, and a cancel: a long launch, a second post while it runs.
        let (got, _) = post(&at, Some(&base), "iterations=400&pause=0.02").await;
        assert_eq!(got, 303, "launched, and sent to its page");
        let (got, body) = post(&at, Some(&base), "iterations=5").await;
        assert!(got == 409 && body.contains("one launch of an entry at a time"), "{got}: {body}");
        let client = Session::start(&chromedriver.1, capabilities(&chromium)).await.expect("a chromium session");
        let t = Tour { client, base: base.clone(), shots: shots.clone() };
        t.visit("/launch/sleep-bench", "#launch-status[data-status=running]").await;
        t.wait("#launch-cancel button", WAIT).await.click().await.unwrap();
        t.wait("#launch-status[data-status=cancelled]", WAIT).await;
        t.check("launch-cancelled").await;

        // The form: choose the values, run, follow the output, open the run.
        t.visit("/launch", "section[data-launch=sleep-bench] form").await;
        t.client.execute("document.querySelector('section[data-launch=sleep-bench] input[name=iterations]').value = '8';").await.unwrap();
        t.client.find("section[data-launch=sleep-bench] select[name=pause] option[value=\"0.02\"]").await.unwrap().click().await.unwrap();
        t.check("launch-form").await;
        t.client.find("section[data-launch=sleep-bench] button[type=submit]").await.unwrap().click().await.unwrap();
        let link = t.wait("a[data-launched-run]", WAIT).await;
        let run = link.attr("data-launched-run").await.unwrap().unwrap();
        assert_eq!(t.client.find("#launch-status").await.unwrap().attr("data-status").await.unwrap().as_deref(), Some("succeeded"));
        let output = t.text("#launch-output").await;
        assert!(output.contains(&run), "the output streamed onto the page names the run: {output}");
        assert!(t.text("main p.sub code").await.ends_with("--iterations 8 --telemetry-interval 20 --workload launched -- sleep 0.02"), "the command as run");
        t.check("launch-done").await;
        link.click().await.unwrap();
        t.wait(".tabs button", WAIT).await;
        t.check("launch-run").await;
        t.client.close().await.unwrap();
        run
    });
    wait_for("the launched run's verdict", WAIT, || (sql_n(&up, &format!("SELECT count(*) AS n FROM verdicts WHERE run_id = '{launched}' AND workload = 'launched'")) > 0).then_some(()));
    let samples = sql_n(&up, &format!("SELECT count(*) AS n FROM samples WHERE run_id = '{launched}' AND metric = 'latency_ms'"));
    assert_eq!(samples, 8, "the chosen iterations");
}

/// Text of a page as tera escaped it.
fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

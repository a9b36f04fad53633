//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! through [`crate::webdriver`]) against the dashboard of a real `trackiq up` with runs from real
//! benchmarks and a real cluster run with an injected fault. Every page renders with no
//! console error (the browser's own log, so a script the CSP refused or a missing asset
//! counts), a run recorded while the overview is open appears on it without a reload, the
//! runs filter and the compare picker work, a run's tabs switch, a baseline is pinned from
//! the series page, and a workload named `<script>alert(1)</script>` is shown as text.
//! Screenshots of every page are saved under `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.
//!
//! Skipped, saying why, where `chromium` or `chromedriver` is not installed (`.ci/run`
//! installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::skips::on_path;
use crate::support::*;
use crate::webdriver::{Element, Session};

const HOSTILE: &str = "<script>alert(1)</script>";
const WAIT: Duration = Duration::from_secs(30);


/// chromedriver on a free port (its URL), killed on drop.
pub struct Driver(Child, pub String);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn driver(chromedriver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(chromedriver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    wait_for("chromedriver to listen", WAIT, || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    Driver(child, url)
}

/// A page visit: waits for `ready`, saves a screenshot as `name.png`, and fails on any
/// console message of level SEVERE (errors, CSP refusals, failed loads).
pub(crate) struct Tour {
    pub(crate) client: Session,
    pub(crate) base: String,
    pub(crate) shots: PathBuf,
}

impl Tour {
    pub(crate) async fn visit(&self, path: &str, ready: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("opening {path}: {e}"));
        self.wait(ready, WAIT).await;
    }

    /// The first element matching `css` once there is one; on a timeout, fails with the page.
    pub(crate) async fn wait(&self, css: &str, timeout: Duration) -> Element<'_> {
        match self.client.wait_for(css, timeout).await {
            Ok(e) => e,
            Err(e) => {
                let url = self.client.current_url().await.unwrap_or_default();
                let page = self.client.source().await.unwrap_or_default();
                panic!("{url}: no `{css}` after {timeout:?} ({e}); the page:\n{page}")
            }
        }
    }

    pub(crate) async fn check(&self, name: &str) {
        self.check_expecting(name, &[]).await;
    }

    /// As [`Tour::check`], where console errors naming one of `expected` (a refusal the test
    /// caused) are allowed.
    pub(crate) async fn check_expecting(&self, name: &str, expected: &[&str]) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name}: a screenshot of a drawn page");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        let log = self.client.browser_log().await.expect("reading the browser's console");
        let severe: Vec<&Value> = log.iter().filter(|m| m["level"] == "SEVERE" && !expected.iter().any(|e| m["message"].as_str().unwrap_or("").contains(e))).collect();
        assert!(severe.is_empty(), "{name}: console errors: {severe:#?}");
        assert!(self.client.alert_text().await.is_err(), "{name}: no alert ever opens");
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.client.find(css).await.unwrap_or_else(|e| panic!("no `{css}`: {e}")).text().await.unwrap()
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client.find_all(css).await.unwrap().len()
    }
}

/// Headless Chromium at 1400x1100 with its console log kept.
pub(crate) fn capabilities(chromium: &Path) -> Value {
    json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100", "--hide-scrollbars"]
        },
        "goog:loggingPrefs": { "browser": "ALL" }
    })
}

/// Chromium and chromedriver for `part`, or `None` (the part said SKIPPED) without them.
pub(crate) fn browser_tools(part: &str) -> Option<(PathBuf, PathBuf)> {
    if !crate::skips::have(part, &crate::skips::CHROMIUM) {
        return None;
    }
    Some((on_path(&["chromium", "chromium-browser"]).expect("checked"), on_path(&["chromedriver"]).expect("checked")))
}

pub(crate) fn run_of(out: &std::process::Output) -> String {
    crate::pipeline::uuid_in(&ok(out))
}

#[test]
fn every_page_in_headless_chromium_live_updates_filters_compare_and_escaping() {
    let Some((chromium, chromedriver)) = browser_tools("the dashboard in a browser") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    // Real runs: two benchmarks of one command (a series, a pair to compare), a cluster run
    // with a straggler really injected, and a hand-recorded run with a hostile name.
    let bench = |pause: &str| run_of(&up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", "12", "--telemetry-interval", "20", "--workload", "sleepy", "--", "sleep", pause]));
    let (fast, slow) = (bench("0.01"), bench("0.03"));
    let cluster = run_of(&up.cli(&["cluster", "run", "--workers", "2", "--grad-mib", "0.25", "--steps", "12", "--fault", "slow-rank:1:40ms@5"]));
    let hostile = recorded_run_id(&ok(&up.cli(&["record", "--workload", HOSTILE, "--hardware", "box", "--metric", "latency_ms=5"])));
    let runs = [&fast, &slow, &cluster, &hostile];
    wait_for("4 reports", Duration::from_secs(90), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") == 4).then_some(()));
    let served = up.log.lock().unwrap().lines().find_map(|l| l.split("dashboard http://").nth(1).map(|r| r.split('/').next().unwrap().to_string())).expect("up prints its dashboard");
    let series = sql(&up, &format!("SELECT DISTINCT series_id FROM summaries WHERE run_id = '{fast}'"))[0]["series_id"].as_str().unwrap().to_string();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let chromedriver = driver(&chromedriver);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = Session::start(&chromedriver.1, capabilities(&chromium)).await.expect("a chromium session");
        let t = Tour { client, base: format!("http://{served}"), shots: shots.clone() };

        // Overview, then live: a run recorded while it is open appears without a reload.
        t.visit("/", "#live-status[data-connected]").await;
        assert!(t.text("main").await.contains("runs in the history"));
        let live = recorded_run_id(&ok(&up.cli(&["record", "--workload", "live-one", "--hardware", "box", "--metric", "latency_ms=3"])));
        let row = t.wait(&format!("tr.live[data-run-id=\"{live}\"]"), Duration::from_secs(60)).await;
        assert!(row.text().await.unwrap().contains("live-one"));
        assert!(t.text("#live-status").await.starts_with("live · live-one"));
        t.check("overview").await;

        // Runs: every run, the hostile name as text, a filter typed into the form.
        t.visit("/runs", "tbody[data-live-runs] tr").await;
        for id in runs {
            assert_eq!(t.count(&format!("tr[data-run-id=\"{id}\"]")).await, 1, "{id} listed");
        }
        let hostile_row = t.text(&format!("tr[data-run-id=\"{hostile}\"]")).await;
        assert!(hostile_row.contains(HOSTILE), "shown as text: {hostile_row}");
        assert_eq!(t.count("main script").await, 0, "no script element came from data");
        t.check("runs").await;
        t.client.find("input[name=workload]").await.unwrap().send_keys("sleepy").await.unwrap();
        t.client.find("form.filters button").await.unwrap().click().await.unwrap();
        t.wait("tbody[data-filter-workload=\"sleepy\"]", WAIT).await;
        let listed: Vec<String> = futures::future::join_all(t.client.find_all("tbody[data-live-runs] tr").await.unwrap().iter().map(|r| async move { r.attr("data-run-id").await.unwrap().unwrap() })).await;
        assert_eq!(listed.len(), 2, "the filter keeps the two sleepy runs: {listed:?}");
        assert!(listed.contains(&fast) && listed.contains(&slow));
        t.check("runs-filtered").await;

        // The compare picker: its button waits for exactly two runs, then compares them.
        let button = t.client.find("form[data-compare-picker] button[type=submit]").await.unwrap();
        assert!(!button.is_enabled().await.unwrap(), "disabled before two are checked");
        for id in [&fast, &slow] {
            t.client.find(&format!("input[name=run][value=\"{id}\"]")).await.unwrap().click().await.unwrap();
        }
        assert!(button.is_enabled().await.unwrap());
        button.click().await.unwrap();
        t.wait("main table", WAIT).await;
        let compared = t.text("main").await;
        assert!(url::Url::parse(&t.client.current_url().await.unwrap()).unwrap().path() == "/compare" && compared.contains(&fast) && compared.contains(&slow), "{compared}");
        assert!(compared.contains("Winner") || compared.contains("winner"), "winner per metric family: {compared}");
        t.check("compare").await;

        // A run's page: summary cards, tabs that switch, exports.
        t.visit(&format!("/runs/{slow}"), ".tabs button").await;
        let tabs: Vec<String> = futures::future::join_all(t.client.find_all(".tabs button").await.unwrap().iter().map(|b| async move { b.text().await.unwrap() })).await;
        assert!(tabs.iter().any(|n| n == "Overview") && tabs.iter().any(|n| n.contains("Latency")), "{tabs:?}");
        t.check("run-overview").await;
        let latency = tabs.iter().find(|n| n.contains("Latency")).unwrap().clone();
        t.client.find(&format!(".tabs button[data-tab=\"{latency}\"]")).await.unwrap().click().await.unwrap();
        let pane = t.client.find(&format!(".pane[data-pane=\"{latency}\"]")).await.unwrap();
        assert!(pane.is_displayed().await.unwrap() && !t.client.find(".pane[data-pane=\"Overview\"]").await.unwrap().is_displayed().await.unwrap());
        assert!(t.count(&format!(".pane[data-pane=\"{latency}\"] svg")).await > 0, "a latency chart");
        t.check("run-latency").await;
        assert!(t.count(&format!("a[href=\"/runs/{slow}/verdict.json\"]")).await == 1 && t.count(&format!("a[href=\"/runs/{slow}/samples.csv\"]")).await == 1);

        // The cluster run: its cluster-health tab with the rank x step heatmap.
        t.visit(&format!("/runs/{cluster}"), ".tabs button").await;
        t.client.find(".tabs button[data-tab=\"Cluster health\"]").await.expect("a cluster tab").click().await.unwrap();
        assert!(t.count(".pane[data-pane=\"Cluster health\"] svg").await >= 2, "the heatmap and the all-reduce histogram");
        t.check("run-cluster").await;

        // The hostile run's page.
        t.visit(&format!("/runs/{hostile}"), ".tabs button").await;
        assert!(t.text("main").await.contains(HOSTILE));
        t.check("run-hostile").await;

        // Series: the list, one series' chart, and a baseline pinned from the form.
        t.visit("/series", "main table").await;
        assert!(t.text("main").await.contains("sleepy"));
        t.check("series-list").await;
        t.visit(&format!("/series?series={series}&metric=latency_ms"), "main figure svg").await;
        t.check("series").await;
        t.client.find(&format!("form input[name=run][value=\"{fast}\"]")).await.unwrap().click().await.unwrap();
        t.client.find("form input[name=reason]").await.unwrap().send_keys("browser test: the fast run is the reference").await.unwrap();
        t.client.find("form[action=\"/series/pin\"] button[type=submit]").await.unwrap().click().await.unwrap();
        let pinned = t.wait("p.card", WAIT).await.text().await.unwrap();
        assert_eq!(pinned, format!("Pinned: pinned series {series} to 1 run(s)"));
        t.check("series-pinned").await;

        // SQL console.
        t.visit("/sql?q=SELECT%20workload%2C%20count(*)%20AS%20runs%20FROM%20summaries%20GROUP%20BY%20workload%20ORDER%20BY%20workload", "main table").await;
        assert!(t.text("main table").await.contains(HOSTILE));
        t.check("sql").await;
        t.client.close().await.unwrap();
    });
    // The pin went through the pipeline into the baselines table.
    wait_for("the pin in Parquet", Duration::from_secs(60), || (sql_n(&up, &format!("SELECT count(DISTINCT run_id) AS n FROM baselines WHERE series_id = '{series}' AND run_id = '{fast}' AND reason LIKE 'browser test%'")) == 1).then_some(()));
    println!("screenshots of every page: {}", shots.display());
}

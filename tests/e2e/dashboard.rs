//! `trackiq ui` over a real pipeline's history, through real HTTP: every page renders with
//! the runs, filters and paging work, a hostile workload name is shown as text, the SQL
//! console answers queries and refuses COPY, DDL and CREATE EXTERNAL TABLE, and a
//! non-loopback bind needs the token (constant-time compared) — 401 without it, and a pin
//! posted from another site is refused. (`browser.rs` drives the same pages in Chromium.)

use std::time::Duration;

use crate::support::*;

const HOSTILE: &str = "<script>alert(1)</script>";
const TOKEN: &str = "ui-token-7f3a9c";

fn get(url: &str, bearer: Option<&str>) -> (u16, String, reqwest::header::HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, r.text().await.unwrap(), headers)
    })
}

fn ui(up: &Up, listen: &str, env: &[(String, String)], extra: &[&str]) -> Up {
    let mut args: Vec<String> = vec!["ui".into(), "--dashboard-listen".into(), listen.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let dir = tempfile::tempdir().unwrap();
    Up::spawn(&args, &up.brokers, &up.data, &fast_config(dir.path()), env, "trackiq ui at")
}

fn base(ui: &Up) -> String {
    let log = ui.log.lock().unwrap();
    let line = log.lines().find(|l| l.contains("trackiq ui at http://")).unwrap();
    line.split("at ").nth(1).unwrap().split_whitespace().next().unwrap().trim_end_matches('/').to_string()
}

#[test]
fn pages_filters_escaping_console_limits_and_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let mut ids = Vec::new();
    for (w, v) in [("step", 10.0), ("step", 10.1), (HOSTILE, 5.0)] {
        let metric = format!("latency_ms={v}");
        let team = if w == "step" { "team=perf" } else { "team=red" };
        ids.push(recorded_run_id(&ok(&up.cli(&["record", "--workload", w, "--hardware", "box", "--label", team, "--metric", &metric]))));
    }
    wait_for("3 verdicts in Parquet", Duration::from_secs(60), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") == 3).then_some(()));
    // `trackiq up` serves it too, with the stages' health.
    let served = up.log.lock().unwrap().lines().find_map(|l| l.split("dashboard http://").nth(1).map(|r| r.split('/').next().unwrap().to_string())).expect("up prints its dashboard");
    let (status, page, _) = get(&format!("http://{served}/"), None);
    assert!(status == 200 && page.contains("Pipeline health") && page.contains("<td>aggregator</td><td class=\"n\">up</td>"), "{page}");
    let server = ui(&up, "127.0.0.1:0", &[], &[]);
    let at = base(&server);

    let (status, page, headers) = get(&format!("{at}/"), None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<b data-live-count>3</b>runs in the history"), "{page}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.split(';').any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline")), "no inline script: {csp}");

    let (status, page, _) = get(&format!("{at}/runs"), None);
    assert_eq!(status, 200);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;") && !page.contains(HOSTILE), "the workload is text: {page}");
    assert!(ids.iter().all(|id| page.contains(id.as_str())));
    let (_, filtered, _) = get(&format!("{at}/runs?workload=step"), None);
    assert!(filtered.contains(&ids[0]) && filtered.contains(&ids[1]) && !filtered.contains(&ids[2]));
    let (_, paged, _) = get(&format!("{at}/runs?workload=step&page=0"), None);
    assert!(paged.contains("Page 1"));
    let (_, labelled, _) = get(&format!("{at}/runs?label=team%3Dred"), None);
    assert!(labelled.contains(&ids[2]) && !labelled.contains(&ids[0]) && !labelled.contains(&ids[1]), "{labelled}");
    let today = chrono::Utc::now().date_naive();
    let (_, dated, _) = get(&format!("{at}/runs?since={}&until={today}", today - chrono::Days::new(1)), None);
    assert!(ids.iter().all(|id| dated.contains(id.as_str())), "{dated}");
    let (_, future, _) = get(&format!("{at}/runs?since={}", today + chrono::Days::new(2)), None);
    assert!(future.contains("No runs match") && !future.contains(&ids[0]), "{future}");
    let (status, bad, _) = get(&format!("{at}/runs?label=team&since=yesterday"), None);
    assert!(status == 400 && bad.contains("label `team` is not key=value"), "{status}: {bad}");
    let (status, bad, _) = get(&format!("{at}/runs?severity=bogus"), None);
    assert!(status == 400 && bad.contains("severity `bogus` is not one of block, warn"), "{status}: {bad}");
    let (status, bad, _) = get(&format!("{at}/runs?since=yesterday"), None);
    assert!(status == 400 && bad.contains("since `yesterday` is not a day written YYYY-MM-DD"), "{status}: {bad}");

    // A run's page is its report.
    let (status, report, _) = wait_for("the run's report", Duration::from_secs(60), || Some(get(&format!("{at}/runs/{}", ids[0]), None)).filter(|r| r.0 == 200));
    assert!(status == 200 && report.contains(&ids[0]));
    assert_eq!(get(&format!("{at}/runs/..%2F..%2Fetc%2Fpasswd"), None).0, 400);
    let series = sql(&up, &format!("SELECT DISTINCT series_id FROM summaries WHERE run_id = '{}'", ids[0]))[0]["series_id"].as_str().unwrap().to_string();
    let (status, page, _) = get(&format!("{at}/series?series={series}&metric=latency_ms"), None);
    assert!(status == 200 && page.contains("<svg"), "{status}: {page}");
    let (status, page, _) = get(&format!("{at}/series?series={series}&metric=nonesuch"), None);
    assert!(status == 404 && page.contains("has no judged metric `nonesuch`; it has: latency_ms"), "{status}: {page}");

    // The console: queries answer (and download as CSV); writing and reading files do not.
    let (status, page, _) = get(&format!("{at}/sql?q=SELECT%20count(*)%20AS%20n%20FROM%20verdicts"), None);
    assert!(status == 200 && page.contains("<th>n</th>"), "{page}");
    let (status, csv, headers) = get(&format!("{at}/sql.csv?q=SELECT%20DISTINCT%20workload%20FROM%20runs%20WHERE%20event%20%3D%20%27started%27%20ORDER%20BY%20workload"), None);
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "text/csv; charset=utf-8"));
    assert_eq!(csv, format!("workload\r\n{HOSTILE}\r\nstep\r\n"));
    let copy = format!("COPY (SELECT 1) TO '{}'", dir.path().join("leak.csv").display());
    for q in [copy.as_str(), "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'", "DROP TABLE runs", "SET datafusion.execution.batch_size = 1"] {
        let url = reqwest::Url::parse_with_params(&format!("{at}/sql"), [("q", q)]).unwrap();
        let (status, page, _) = get(url.as_str(), None);
        assert_eq!(status, 403, "{q}: {page}");
        assert!(page.contains("only queries of the history can run here"), "{q}: {page}");
    }
    assert!(!dir.path().join("leak.csv").exists());
    // Files outside the history cannot be read as tables either.
    for q in ["SELECT * FROM '/etc/passwd'", "SELECT * FROM read_csv('/etc/passwd')"] {
        let url = reqwest::Url::parse_with_params(&format!("{at}/sql"), [("q", q)]).unwrap();
        let (status, page, _) = get(url.as_str(), None);
        assert!(status >= 400 && !page.contains("root:"), "{q}: {status} {page}");
    }

    // Pins: refused from another site's page (cross-site request forgery), and `trackiq ui`
    // has no pipeline to publish one to.
    let pin = |base: &str, headers: &[(&str, &str)]| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut req = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap().post(format!("{base}/series/pin"));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let body = format!("series=x&metric=latency_ms&run={}&reason=forged", ids[0]);
            let r = req.header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let (status, page) = pin(&format!("http://{served}"), &[("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")]);
    assert!(status == 403 && page.contains("only accepted from this dashboard"), "{status}: {page}");
    assert_eq!(pin(&format!("http://{served}"), &[("origin", "http://evil.example")]).0, 403);
    let (status, page) = pin(&at, &[("sec-fetch-site", "same-origin")]);
    assert!(status == 409 && page.contains("trackiq baseline set"), "{status}: {page}");

    // Any other address needs a token: refused without one, then 401 unless it is given.
    let refused = up.cli(&["ui", "--dashboard-listen", "0.0.0.0:0"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("not a loopback address"), "{refused:?}");
    let env = [("TRACKIQ_TEST_UI_TOKEN".to_string(), TOKEN.to_string())];
    let guarded = ui(&up, "0.0.0.0:0", &env, &["--token-env", "TRACKIQ_TEST_UI_TOKEN"]);
    let at = base(&guarded).replace("0.0.0.0", "127.0.0.1");
    assert_eq!(get(&format!("{at}/runs"), None).0, 401);
    assert_eq!(get(&format!("{at}/runs"), Some("ui-token-7f3a9d")).0, 401);
    assert_eq!(get(&format!("{at}/runs"), Some(TOKEN)).0, 200);
    let (status, _, headers) = get(&format!("{at}/?token={TOKEN}"), None);
    assert_eq!(status, 200);
    assert!(headers["set-cookie"].to_str().unwrap().starts_with("trackiq_token=") && headers["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    drop(server);
    drop(guarded);
}

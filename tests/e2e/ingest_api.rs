//! The HTTP ingest API of a real `trackiq up`, through a real HTTP client: the OpenAPI
//! document, a missing and a wrong token (401), an oversized body (413), malformed JSON and
//! a wrong value (400 naming the line or JSON path), an unknown format (400 naming the known
//! ones); a good BMF body is answered 202 with its run ids and the run appears in the history
//! with the posted commit, hardware and label, `trackiq gate --commit` finds it, and posting
//! the same body again (before and after it is archived) creates no second run. A TrackiqResult
//! and a pytest-benchmark file are recognised without `format`. The README's
//! curl example runs as written. Then the API of `trackiq up --role sinks` against a
//! `trackiq broker` that is killed: 503; and `trackiq ui`, which has no pipeline: 404.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

const TOKEN: &str = "ingest-token-3c9e1f";
const TOKEN_ENV: &str = "TRACKIQ_TEST_INGEST_TOKEN";
/// `[ingest] max_body_bytes` of the tests.
const MAX_BODY: usize = 1 << 20;

/// The fast test config with the ingest API on.
fn config(dir: &Path) -> PathBuf {
    let p = fast_config(dir);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!("[ingest]\ntoken = {{ env = \"{TOKEN_ENV}\" }}\nmax_body_bytes = {MAX_BODY}\n"));
    std::fs::write(&p, text).unwrap();
    p
}

fn env() -> Vec<(String, String)> {
    vec![(TOKEN_ENV.to_string(), TOKEN.to_string())]
}

/// `http://host:port` after `marker` in the ready line (`dashboard http://`, `trackiq ui at http://`),
/// which reaches the log just after `Up::spawn` returns.
pub(crate) fn served(up: &Up, marker: &str) -> String {
    let at = wait_for("the ready line in the log", Duration::from_secs(10), || {
        up.log.lock().unwrap().lines().find_map(|l| l.split(marker).nth(1).map(|r| r.split('/').next().unwrap().to_string()))
    });
    format!("http://{at}")
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: serde_json::Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_else(|| panic!("no error in {self:?}"))
    }

    fn run_ids(&self) -> Vec<String> {
        self.json["runs"].as_array().unwrap_or_else(|| panic!("no runs in {self:?}")).iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect()
    }
}

fn request(req: reqwest::RequestBuilder) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = req.send().await.unwrap_or_else(|e| panic!("request failed: {e}"));
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
        eprintln!("-> {status} {text}");
        Answer { status, headers, json }
    })
}

fn post(url: &str, token: Option<&str>, body: impl Into<Vec<u8>>) -> Answer {
    let mut req = client().post(url).header("content-type", "application/json").body(body.into());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    request(req)
}

/// reqwest's async client (its blocking one is not built here).
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

/// A BMF body: one benchmark with two measures.
fn bmf(latency_ns: f64) -> String {
    format!(r#"{{"bench_ingest": {{"latency": {{"value": {latency_ns}, "lower_value": {}, "upper_value": {}}}, "throughput": {{"value": 800.0}}}}}}"#, latency_ns * 0.9, latency_ns * 1.1)
}

fn started_rows(up: &Up, run_id: &str) -> i64 {
    sql_n(up, &format!("SELECT count(*) AS n FROM runs WHERE run_id = '{run_id}' AND event = 'started'"))
}

#[test]
fn posts_are_checked_then_published_once_and_gated_by_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &config(dir.path()), &[], &env());
    let at = served(&up, "dashboard http://");
    assert!(up.log.lock().unwrap().contains(&format!("ingest {at}/api/v1/runs")), "up prints the ingest address");

    // The OpenAPI document, without a token.
    let doc = request(client().get(format!("{at}/api/v1/openapi.json")));
    assert_eq!((doc.status, doc.json["openapi"].as_str()), (200, Some("3.1.0")));
    assert!(doc.json["paths"]["/api/v1/runs"]["post"].is_object());

    let url = format!("{at}/api/v1/runs?format=bmf&git_commit=feedc0de42&hardware=ci-runner&label=source%3Dhttp");
    // Tokens: none, then a wrong one.
    let a = post(&url, None, bmf(1000.0));
    assert!(a.status == 401 && a.headers["www-authenticate"] == "Bearer" && a.error().contains("Authorization: Bearer"), "{a:?}");
    let a = post(&url, Some("ingest-token-3c9e1e"), bmf(1000.0));
    assert!(a.status == 401 && a.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer") && a.error().contains("not the [ingest] token"), "{a:?}");
    // Too large: 1 MiB of JSON and one byte more.
    let mut big = bmf(1000.0).into_bytes();
    big.resize(MAX_BODY + 1, b' ');
    let a = post(&url, Some(TOKEN), big);
    assert!(a.status == 413 && a.error() == format!("the body is larger than [ingest] max_body_bytes = {MAX_BODY} bytes"), "{a:?}");
    // Malformed JSON, a value of the wrong type, an unknown format, an unknown parameter.
    let a = post(&url, Some(TOKEN), r#"{"bench_ingest": {"latency": {"value": 1000.0}"#);
    assert!(a.status == 400 && a.error().starts_with("request body: line 1 column") && a.error().contains("not valid JSON"), "{a:?}");
    let a = post(&url, Some(TOKEN), r#"{"bench_ingest": {"latency": {"value": "fast"}}}"#);
    assert!(a.status == 400 && a.error() == "request body: $.bench_ingest.latency.value: expected a number, found a string", "{a:?}");
    let a = post(&format!("{at}/api/v1/runs?format=bencher"), Some(TOKEN), bmf(1000.0));
    assert!(a.status == 400 && a.error().contains("unknown format `bencher`; known formats: auto, trackiq-json") && a.error().contains("bmf"), "{a:?}");
    let a = post(&format!("{at}/api/v1/runs?commit=feedc0de42"), Some(TOKEN), bmf(1000.0));
    assert!(a.status == 400 && a.error().contains("unknown query parameter `commit`"), "{a:?}");

    // A good body: 202 with its runs, then in the history as posted.
    let first = post(&url, Some(TOKEN), bmf(1000.0));
    assert_eq!(first.status, 202, "{first:?}");
    let run = &first.json["runs"][0];
    assert_eq!((first.json["format"].as_str(), run["workload"].as_str(), run["samples"].as_u64(), run["already_in_history"].as_bool()), (Some("bmf"), Some("bench_ingest"), Some(2), Some(false)), "{first:?}");
    let (run_id, series) = (run["run_id"].as_str().unwrap().to_string(), run["series_id"].as_str().unwrap().to_string());
    // The same body at once (not archived yet): the same run, which the archiver keeps once.
    let again = post(&url, Some(TOKEN), bmf(1000.0));
    assert!(matches!(again.status, 200 | 202) && again.run_ids() == [run_id.clone()], "{again:?}");
    wait_for("the posted run in the history", Duration::from_secs(60), || (started_rows(&up, &run_id) > 0).then_some(()));
    let row = &sql(&up, &format!("SELECT git_commit, hardware_name, labels['source'] AS source, series_id FROM runs WHERE run_id = '{run_id}' AND event = 'started'"))[0];
    assert_eq!((row["git_commit"].as_str(), row["hardware_name"].as_str(), row["source"].as_str(), row["series_id"].as_str()), (Some("feedc0de42"), Some("ci-runner"), Some("http"), Some(series.as_str())), "{row}");
    // Once archived, the same body is recognised and nothing is published.
    let later = post(&url, Some(TOKEN), bmf(1000.0));
    assert!(later.status == 200 && later.run_ids() == [run_id.clone()] && later.json["runs"][0]["already_in_history"] == true, "{later:?}");

    // Another body of the same series follows the repeats in its partition: once it is
    // archived, so is whatever the repeats left.
    let next = post(&url, Some(TOKEN), bmf(1010.0));
    assert_eq!((next.status, next.json["runs"][0]["series_id"].as_str()), (202, Some(series.as_str())), "{next:?}");
    let next_id = next.run_ids()[0].clone();
    assert_ne!(next_id, run_id);
    wait_for("the second run's samples in the history", Duration::from_secs(60), || {
        (sql_n(&up, &format!("SELECT count(*) AS n FROM samples WHERE run_id = '{next_id}'")) == 2 && started_rows(&up, &next_id) == 1).then_some(())
    });
    assert_eq!(started_rows(&up, &run_id), 1, "one start of the posted run");
    assert_eq!(sql_n(&up, &format!("SELECT count(DISTINCT run_id) AS n FROM runs WHERE series_id = '{series}'")), 2, "no other run in the series");
    assert_eq!(sql_n(&up, &format!("SELECT count(*) AS n FROM samples WHERE run_id = '{run_id}'")), 2, "its two samples, once");

    // The CI recipe's gate: the runs of the posted commit, judged.
    let gate = up.cli(&["gate", "--commit", "feedc0de42", "--timeout", "60"]);
    let summary = ok(&gate);
    assert!(summary.starts_with("### trackiq gate: ") && summary.contains(&run_id) && summary.contains(&next_id), "{summary}");

    // Other formats, recognised by their content: a TrackiqResult and a pytest-benchmark file.
    let result = r#"{"tool_name": "autoperfpy", "tool_version": "0.3.1", "timestamp": "2026-12-05T11:20:00Z", "platform": {"hardware_name": "a100-node-3"},
        "workload": {"name": "resnet50", "workload_type": "inference"}, "metrics": {"latency_p50_ms": 6.1, "throughput_samples_per_sec": 1250.4, "power_consumption_watts": null}}"#;
    let a = post(&format!("{at}/api/v1/runs"), Some(TOKEN), result);
    assert!(a.status == 202 && a.json["format"] == "trackiq-json" && a.json["runs"][0]["workload"] == "resnet50" && a.json["runs"][0]["samples"] == 2, "{a:?}");
    let pytest = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/pytest-benchmark.json")).unwrap();
    let a = post(&format!("{at}/api/v1/runs?hardware=ci-runner"), Some(TOKEN), pytest);
    assert!(a.status == 202 && a.json["format"] == "pytest-benchmark" && !a.run_ids().is_empty(), "{a:?}");
    let ids = a.run_ids().iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ");
    wait_for("the pytest-benchmark runs in the history", Duration::from_secs(60), || {
        let rows = sql(&up, &format!("SELECT DISTINCT run_id, hardware_name FROM runs WHERE run_id IN ({ids}) AND event = 'started'"));
        (rows.len() == a.run_ids().len()).then_some(rows)
    })
    .iter()
    .for_each(|r| assert_eq!(r["hardware_name"], "ci-runner", "{r}"));

    readme_curl_example_works(&up, &at, dir.path());
}

/// The README's curl example, run as written against this server (its address replaced).
fn readme_curl_example_works(up: &Up, at: &str, dir: &Path) {
    if !crate::skips::have("the README's curl example of HTTP ingest", &crate::skips::CURL) {
        return;
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## HTTP ingest").nth(1).expect("README has a section `HTTP ingest`");
    let script = section.split("```sh\n").nth(1).and_then(|s| s.split("```").next()).expect("a sh block in `HTTP ingest`");
    assert!(script.contains("curl ") && script.contains("http://127.0.0.1:8080/api/v1/runs"), "{script}");
    let results = dir.join("ci");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join("results.json"), bmf(2000.0)).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-euc", &script.replace("http://127.0.0.1:8080", at)])
        .current_dir(&results)
        .env("TRACKIQ_INGEST_TOKEN", TOKEN)
        .output()
        .expect("sh runs");
    let stdout = ok(&out);
    let answer: serde_json::Value = serde_json::from_str(stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON answer: {stdout}"))).unwrap();
    let id = answer["runs"][0]["run_id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string();
    wait_for("the README example's run in the history", Duration::from_secs(60), || (started_rows(up, &id) == 1).then_some(()));
}

#[test]
fn without_a_broker_posts_are_503_and_trackiq_ui_has_no_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let brokers = format!("127.0.0.1:{}", free_port());
    let broker_args: Vec<String> = ["broker", "--broker-listen", &brokers].map(String::from).to_vec();
    let broker = Up::spawn(&broker_args, &brokers, &data, &fast_config(dir.path()), &[], "trackiq broker is up");
    let args: Vec<String> = ["up", "--brokers", &brokers, "--role", "sinks"].map(String::from).to_vec();
    let sinks = Up::spawn(&args, &brokers, &data, &config(dir.path()), &env(), "trackiq is up");
    let url = format!("{}/api/v1/runs?format=bmf&hardware=ci-runner", served(&sinks, "dashboard http://"));
    let a = post(&url, Some(TOKEN), bmf(1000.0));
    assert_eq!(a.status, 202, "the sinks role publishes what it is posted: {a:?}");
    broker.kill9();
    let a = post(&url, Some(TOKEN), bmf(1001.0));
    assert!(a.status == 503 && a.headers["retry-after"] == "10" && a.error().contains("unreachable"), "{a:?}");

    let ui_args: Vec<String> = ["ui", "--dashboard-listen", "127.0.0.1:0"].map(String::from).to_vec();
    let ui = Up::spawn(&ui_args, &brokers, &data, &config(dir.path()), &env(), "trackiq ui at");
    let at = served(&ui, "trackiq ui at http://");
    let a = post(&format!("{at}/api/v1/runs"), Some(TOKEN), bmf(1000.0));
    assert!(a.status == 404 && a.error().contains("trackiq ui"), "{a:?}");
}

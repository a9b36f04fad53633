//! Outages of what the pipeline depends on: the S3 server stopped for 30 s mid-ingest, a
//! webhook endpoint down for 60 s. No stage exits, nothing is lost, the backlog drains when
//! the dependency returns, each verdict reaches the webhook once, other sinks go on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

use crate::bad_records::metric_value;
use crate::support::*;

const KEY: &str = "trackiq-test-key";
const SECRET: &str = "trackiq-test-secret";
const S3_OUTAGE: Duration = Duration::from_secs(30);
const WEBHOOK_OUTAGE: Duration = Duration::from_secs(60);

/// An S3 server (s3s + s3s-fs) on a fixed loopback address that can be stopped and started
/// again: stopping closes the listener and every open connection.
struct S3 {
    rt: tokio::runtime::Runtime,
    root: std::path::PathBuf,
    addr: SocketAddr,
    tasks: Option<tokio::task::JoinSet<()>>,
}

impl S3 {
    fn start(root: &std::path::Path) -> S3 {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let addr = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap().local_addr().unwrap();
        let mut s3 = S3 { rt, root: root.to_path_buf(), addr, tasks: None };
        s3.resume();
        s3
    }

    fn resume(&mut self) {
        let fs = s3s_fs::FileSystem::new(&self.root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(KEY, SECRET));
        let service = builder.build();
        let listener = self.rt.block_on(tokio::net::TcpListener::bind(self.addr)).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        let _guard = self.rt.enter();
        tasks.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                conns.spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Aborting the accept loop drops its JoinSet of connections, which aborts them too.
    fn stop(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            self.rt.block_on(async { t.shutdown().await });
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let endpoint = format!("http://{}", self.addr);
        [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET), ("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint.as_str()), ("AWS_ALLOW_HTTP", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

fn bench(up: &Up, workload: &str, iterations: &str) -> String {
    crate::pipeline::uuid_in(&ok(&up.cli(&["bench", "cmd", "--warmup", "0", "--iterations", iterations, "--telemetry-interval", "50", "--workload", workload, "--", "true"])))
}

#[test]
fn an_s3_outage_of_30_s_loses_nothing_and_the_backlog_drains() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("s3").join("history")).unwrap();
    let mut s3 = S3::start(&dir.path().join("s3"));
    let config = fast_config(dir.path());
    let extra = format!("broker_dir = \"{}\"\n", dir.path().join("broker").display());
    std::fs::write(&config, format!("{extra}{}", std::fs::read_to_string(&config).unwrap())).unwrap();
    let up = Up::start("s3://history/trackiq", &config, &[], &s3.env());
    let mut runs = vec![bench(&up, "before-outage", "200")];
    wait_for("the first run archived", Duration::from_secs(60), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") >= 1).then_some(()));

    s3.stop();
    let down = Instant::now();
    // Ingest goes on while the store is down: Kafka holds the backlog.
    for i in 0..3 {
        runs.push(bench(&up, &format!("during-outage-{i}"), "200"));
    }
    let left = S3_OUTAGE.saturating_sub(down.elapsed());
    std::thread::sleep(left); // the outage itself: a fixed duration is what is being tested
    s3.resume();
    eprintln!("S3 was down for {:.1} s", down.elapsed().as_secs_f64());

    let expected: i64 = runs.len() as i64 * 200;
    let n = wait_for("the backlog archived", Duration::from_secs(120), || {
        let n = sql_n(&up, "SELECT count(*) AS n FROM samples WHERE metric = 'latency_ms'");
        (n >= expected).then_some(n)
    });
    assert_eq!(n, expected, "every latency sample once");
    let distinct = sql_n(&up, "SELECT count(DISTINCT run_id || '/' || CAST(ts AS VARCHAR)) AS n FROM samples WHERE metric = 'latency_ms'");
    assert_eq!(distinct, expected, "no sample twice");
    wait_for("a verdict for every run", Duration::from_secs(60), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") >= runs.len() as i64).then_some(()));
    let metrics = up.metrics_text();
    assert_eq!(metric_value(&metrics, "trackiq_stage_restarts_total", ""), 0.0, "no stage exited: {metrics}");
    assert!(metric_value(&metrics, "trackiq_stage_retries_total", "stage=\"archiver\"") > 0.0, "the archiver retried: {metrics}");
    assert!(up.stop().success());
}

#[test]
fn a_webhook_down_for_60_s_gets_each_verdict_once_and_other_sinks_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let hook = Receiver::start(0);
    let config = fast_config(dir.path());
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace("[webhook]\n", "[webhook]\nmax_backoff_ms = 5000\n")).unwrap();
    let up = Up::start(&data, &config, std::slice::from_ref(&hook.url), &[]);
    let record = |v: &str| recorded_run_id(&ok(&up.cli(&["record", "--workload", "hook-outage", "--metric", &format!("latency_ms={v}")])));
    for v in ["10", "10.1", "9.9"] {
        record(v);
    }
    hook.set_down(true);
    let down = Instant::now();
    // Regressions while the endpoint is down: block verdicts to notify.
    let regressions: Vec<String> = ["20", "21", "22"].iter().map(|v| record(v)).collect();
    // The report sink is not held up by the webhook.
    for id in &regressions {
        let report = dir.path().join("data").join("reports").join(format!("{id}.html"));
        wait_for(&format!("report of {id} during the outage"), Duration::from_secs(30), || report.exists().then_some(()));
    }
    assert!(down.elapsed() < WEBHOOK_OUTAGE, "reports were written while the endpoint was down");
    std::thread::sleep(WEBHOOK_OUTAGE.saturating_sub(down.elapsed())); // the outage itself
    let failed_during = *hook.attempts.lock().unwrap();
    hook.set_down(false);
    for id in &regressions {
        hook.wait_for_run(id, Duration::from_secs(30));
    }
    let bodies = hook.bodies.lock().unwrap().clone();
    for id in &regressions {
        assert_eq!(bodies.iter().filter(|b| b["run_id"] == id.as_str()).count(), 1, "verdict of {id} delivered once");
    }
    eprintln!("webhook down {:.0} s: {failed_during} attempts until it returned, then each of {} verdicts delivered once", WEBHOOK_OUTAGE.as_secs_f64(), regressions.len());
    let metrics = up.metrics_text();
    assert_eq!(metric_value(&metrics, "trackiq_stage_restarts_total", ""), 0.0, "{metrics}");
    assert_eq!(metric_value(&metrics, "trackiq_dead_letters_total", "stage=\"webhook\""), 0.0, "nothing given up: {metrics}");
    assert!(up.stop().success());
}

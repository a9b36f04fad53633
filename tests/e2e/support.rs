//! Shared helpers: a `trackiq up` child process, a webhook receiver, CLI runs and SQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_trackiq");

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `trackiq up`, killed with SIGTERM on drop.
pub struct Up {
    child: Child,
    pub brokers: String,
    pub data: String,
    pub log: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
    /// Address of the metrics endpoint, as printed when ready.
    pub metrics: Option<String>,
    /// Time from spawning the process to "trackiq is up".
    pub ready_after: Duration,
}

/// Body of a plain HTTP GET (blocking), or a panic naming the URL.
pub fn http_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}")).text().await.unwrap() })
}

impl Up {
    /// Starts `trackiq up` with its embedded broker on a free port and waits until it is ready.
    pub fn start(data: &str, config: &Path, webhooks: &[String], env: &[(String, String)]) -> Up {
        Up::start_at(&format!("127.0.0.1:{}", free_port()), data, config, webhooks, env)
    }

    /// Starts `trackiq up` with its embedded broker at `brokers` (host:port).
    pub fn start_at(brokers: &str, data: &str, config: &Path, webhooks: &[String], env: &[(String, String)]) -> Up {
        let mut args: Vec<String> = vec!["up".into(), "--broker-listen".into(), brokers.into()];
        for w in webhooks {
            args.extend(["--webhook".to_string(), w.clone()]);
        }
        Up::spawn(&args, brokers, data, config, env, "trackiq is up")
    }

    /// Starts `trackiq <args...>` against the broker at `brokers` (e.g. `up --brokers ... --role
    /// archiver`, or `broker --listen ...`), and waits until it prints `ready`.
    pub fn spawn(args: &[String], brokers: &str, data: &str, config: &Path, env: &[(String, String)], ready: &'static str) -> Up {
        let brokers = brokers.to_string();
        let mut cmd = Command::new(BIN);
        cmd.args(args).args(["--data", data, "--config"]).arg(config);
        cmd.envs(env.iter().cloned()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("trackiq starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Logged before the ready signal: a test reading the ready line from the log
                // right after `spawn` returns must find it.
                l.lock().unwrap().push_str(&format!("{line}\n"));
                if line.contains(ready) {
                    let metrics = line.split("metrics http://").nth(1).and_then(|r| r.split('/').next()).map(str::to_string);
                    let _ = tx.send(metrics);
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let started = Instant::now();
        let Ok(metrics) = rx.recv_timeout(Duration::from_secs(90)) else {
            let _ = child.kill();
            panic!("trackiq {args:?} did not become ready:\n{}", log.lock().unwrap());
        };
        Up { child, brokers, data: data.to_string(), log, env: env.to_vec(), metrics, ready_after: started.elapsed() }
    }

    /// SIGKILL: no flush, no commit, no goodbye to the consumer groups.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The Prometheus text of this pipeline's metrics endpoint.
    pub fn metrics_text(&self) -> String {
        let addr = self.metrics.as_deref().expect("the metrics endpoint is enabled");
        http_get(&format!("http://{addr}/metrics"))
    }

    /// Runs a trackiq command against this pipeline.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(["--brokers", &self.brokers, "--data", &self.data]).args(args).envs(self.env.iter().cloned()).output().unwrap()
    }

    /// Stops with SIGTERM (graceful: flush and commit) and returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("trackiq up did not stop on SIGTERM:\n{}", self.log.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Stdout of a successful command, or a panic with everything it printed.
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "command failed ({}):\nstdout: {stdout}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The run id printed by `trackiq record`.
pub fn recorded_run_id(stdout: &str) -> String {
    stdout.split_whitespace().nth(2).expect("`recorded run <id>`").to_string()
}

/// Rows of a `trackiq sql --format json` query.
pub fn sql(up: &Up, query: &str) -> Vec<serde_json::Value> {
    let out = ok(&up.cli(&["sql", query, "--format", "json"]));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("sql output is not JSON ({e}): {out}"))
}

/// A config file that flushes Parquet every second (tests should not wait 5 s) and serves
/// metrics and the dashboard on free ports.
pub fn fast_config(dir: &Path) -> PathBuf {
    let p = dir.join("trackiq.toml");
    std::fs::write(&p, "[archiver]\nflush_secs = 1\n[webhook]\ninitial_backoff_ms = 20\n[metrics]\nlisten = \"127.0.0.1:0\"\n[dashboard]\nlisten = \"127.0.0.1:0\"\n[sql_server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    p
}

/// One number of a `trackiq sql --format json` query (`SELECT ... AS n`).
pub fn sql_n(up: &Up, query: &str) -> i64 {
    sql(up, query)[0]["n"].as_i64().unwrap_or_else(|| panic!("no number from {query}"))
}

/// Sends raw bytes to a topic and waits for the broker's acknowledgement.
pub fn produce_raw(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let p: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
        p.send(FutureRecord::to(topic).key(key).payload(payload), Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
    });
}

/// A local HTTP endpoint recording every JSON body POSTed to `/hook`; the first
/// `fail_first` requests get HTTP 500.
pub struct Receiver {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    pub attempts: Arc<Mutex<u32>>,
    /// While set, every request gets HTTP 503 (the endpoint is down).
    down: Arc<std::sync::atomic::AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start(fail_first: u32) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let attempts: Arc<Mutex<u32>> = Arc::default();
        let down: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (b, a, d) = (bodies.clone(), attempts.clone(), down.clone());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let (b, a, d) = (b.clone(), a.clone(), d.clone());
                async move {
                    let n = {
                        let mut a = a.lock().unwrap();
                        *a += 1;
                        *a
                    };
                    if d.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if n <= fail_first {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    b.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        );
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver { url, bodies, attempts, down, _rt: rt }
    }

    /// Takes the endpoint down (HTTP 503 to everything) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// The first body whose `run_id` is `run_id`.
    pub fn wait_for_run(&self, run_id: &str, timeout: Duration) -> serde_json::Value {
        wait_for(&format!("webhook for run {run_id}"), timeout, || self.bodies.lock().unwrap().iter().find(|b| b["run_id"] == run_id).cloned())
    }
}

/// What the history holds once every sample of a streamed workload is archived: sample rows
/// and distinct samples (by run and step), and per-run summaries and verdicts as records
/// (by Kafka position) and as runs.
#[derive(Debug)]
pub struct ArchivedOnce {
    pub rows: i64,
    pub distinct: i64,
    pub verdicts: i64,
    pub verdict_records: i64,
    pub summaries: i64,
    pub summary_records: i64,
}

/// Waits (each wait up to `timeout`) until `total` distinct samples and a verdict for each of
/// `runs` runs are in the history, and counts them.
pub fn wait_archived(up: &Up, total: i64, runs: i64, timeout: Duration) -> ArchivedOnce {
    let (rows, distinct) = wait_for("every sample archived", timeout, || {
        let r = sql(up, "SELECT count(*) AS n, count(DISTINCT run_id || '/' || CAST(step AS VARCHAR)) AS d FROM samples");
        let (n, d) = (r[0]["n"].as_i64().unwrap(), r[0]["d"].as_i64().unwrap());
        (d >= total).then_some((n, d))
    });
    let verdicts = wait_for("a verdict for every run", timeout, || {
        let n = sql_n(up, "SELECT count(DISTINCT run_id) AS n FROM verdicts");
        (n >= runs).then_some(n)
    });
    ArchivedOnce {
        rows,
        distinct,
        verdicts,
        verdict_records: sql_n(up, "SELECT count(*) AS n FROM (SELECT DISTINCT run_id, kafka_partition, kafka_offset FROM verdicts)"),
        summaries: sql_n(up, "SELECT count(DISTINCT run_id) AS n FROM summaries"),
        summary_records: sql_n(up, "SELECT count(*) AS n FROM (SELECT DISTINCT run_id, kafka_partition, kafka_offset FROM summaries)"),
    }
}

/// A paced stream of runs, each `per_run` samples of `latency_ms` in records of `batch`
/// with `pace` between records, so that faults fall in the middle of it.
pub struct PacedRuns {
    pub runs: i64,
    pub per_run: i64,
    pub batch: i64,
    pub pace: Duration,
    /// Tool name of the runs.
    pub tool: &'static str,
    /// Workload of run `r`.
    pub workload: fn(i64) -> String,
}

impl PacedRuns {
    /// Streams the runs from a thread; `pushed` counts samples handed to the emitter. A run
    /// whose start fails (the broker is down, killed) is started again once it is back.
    pub fn stream(self, brokers: String, pushed: Arc<std::sync::atomic::AtomicI64>) -> std::thread::JoinHandle<()> {
        use std::sync::atomic::Ordering;
        use trackiq_producers::emitter::{Batching, RunEmitter};
        use trackiq_producers::identity::{RunIdentity, run_started};
        use trackiq_schemas::{RunStatus, Sample};
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let bus = trackiq_infra::Bus::new(trackiq_infra::BusConfig { brokers, ..Default::default() });
                for r in 0..self.runs {
                    let id = RunIdentity { workload: (self.workload)(r), workload_type: "test".into(), ..Default::default() };
                    let batching = Batching { max_samples: self.batch as usize, linger: Duration::from_secs(5) };
                    let mut emitter = loop {
                        match RunEmitter::start(&bus, run_started(self.tool, &id), batching).await {
                            Ok(e) => break e,
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    };
                    for step in 0..self.per_run {
                        let value = 10.0 + (step % 7) as f64 * 0.1;
                        let s = Sample { ts_us: trackiq_schemas::now_us(), metric: "latency_ms".into(), value, unit: "ms".into(), rank: None, step: Some(step) };
                        emitter.push(s).await.unwrap_or_else(|e| panic!("run {r} step {step}: {e}"));
                        pushed.fetch_add(1, Ordering::Relaxed);
                        if step % self.batch == 0 {
                            tokio::time::sleep(self.pace).await;
                        }
                    }
                    emitter.finish(RunStatus::Completed, None).await.unwrap();
                }
            });
        })
    }
}

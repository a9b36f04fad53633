//! Continuous telemetry in, with the real software fleets run: a Python `prometheus_client`
//! server exporting vLLM's TTFT histogram is scraped, redeployed as a slower version, and the
//! deploy regression is judged and reaches the alert channels; Debian's node_exporter and a
//! DCGM-exporter text (NVIDIA's documented field names) are scraped into catalog metrics; the
//! OpenTelemetry Python SDK pushes a histogram and a gauge over OTLP/HTTP. A target that stops
//! answering raises `scrape_failed` and shows in `trackiq status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::skips::{NODE_EXPORTER, OTEL_SDK, PROMETHEUS_CLIENT, have};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(120);

/// A vLLM-like server: `vllm:time_to_first_token_seconds` with vLLM's TTFT buckets, a
/// `version` label, 20 requests every 50 ms with log-normal TTFT around `median` seconds.
const VLLM_LIKE: &str = r#"
import math, random, sys, time
from prometheus_client import Histogram, start_http_server
port, version, median = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
buckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ["model_name", "version"], buckets=buckets)
child = ttft.labels(model_name="llama-3-8b", version=version)
start_http_server(port, addr="127.0.0.1")
print("serving", flush=True)
rng = random.Random(version)
while True:
    for _ in range(20):
        child.observe(rng.lognormvariate(math.log(median), 0.25))
    time.sleep(0.05)
"#;

/// The OpenTelemetry SDK pushing a GenAI TTFT histogram and a GPU power gauge over OTLP/HTTP.
const OTEL_PUSH: &str = r#"
import math, random, sys, time
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
endpoint, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
exporter = OTLPMetricExporter(endpoint=endpoint, headers={"Authorization": "Bearer " + token})
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=200)
view = View(instrument_name="gen_ai.server.time_to_first_token", aggregation=ExplicitBucketHistogramAggregation([0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0]))
resource = Resource.create({"service.name": "chat-otel", "service.version": "v7", "host.name": "otel-host-1", "deployment.environment": "prod"})
provider = MeterProvider(resource=resource, metric_readers=[reader], views=[view])
meter = provider.get_meter("trackiq-e2e")
ttft = meter.create_histogram("gen_ai.server.time_to_first_token", unit="s")
meter.create_observable_gauge("gpu_power_watts", callbacks=[lambda options: [Observation(250.0, {"gpu": 0})]], unit="W")
rng = random.Random(1)
end = time.time() + seconds
while time.time() < end:
    for _ in range(20):
        ttft.record(rng.lognormvariate(math.log(0.05), 0.25))
    time.sleep(0.05)
provider.shutdown()
print("pushed", flush=True)
"#;

/// A DCGM exporter's answer, written from NVIDIA's documented default fields
/// (dcgm-exporter `etc/default-counters.csv`): two GPUs of one host.
const DCGM_TEXT: &str = "# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).\n# TYPE DCGM_FI_DEV_SM_CLOCK gauge\n\
DCGM_FI_DEV_SM_CLOCK{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 1980\n\
DCGM_FI_DEV_SM_CLOCK{gpu=\"1\",UUID=\"GPU-77c1\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 1755\n\
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n\
DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 61\n\
DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"GPU-77c1\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 83\n\
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 412.5\n\
DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"GPU-77c1\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 655.25\n\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 97\n\
DCGM_FI_DEV_GPU_UTIL{gpu=\"1\",UUID=\"GPU-77c1\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 100\n\
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n# TYPE DCGM_FI_DEV_FB_USED gauge\n\
DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 71234\n\
DCGM_FI_DEV_FB_USED{gpu=\"1\",UUID=\"GPU-77c1\",device=\"nvidia1\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 80001\n\
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.\n# TYPE DCGM_FI_DEV_XID_ERRORS gauge\n\
DCGM_FI_DEV_XID_ERRORS{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 0\n\
# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\",UUID=\"GPU-5a2b\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 912345678\n";

/// Serves `body` as `text/plain` to every request on a free port (one request per connection).
fn serve_text(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body.as_bytes()));
        }
    });
    port
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the vLLM-like server and waits until it serves.
fn vllm_like(dir: &Path, port: u16, version: &str, median_s: f64) -> Proc {
    let script = dir.join("vllm_like.py");
    std::fs::write(&script, VLLM_LIKE).unwrap();
    let mut child = Command::new("python3").arg(&script).args([port.to_string(), version.into(), median_s.to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "serving", "the prometheus_client server started");
    Proc(child)
}

fn config(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("trackiq.toml");
    std::fs::write(&p, format!("[archiver]\nflush_secs = 1\n[metrics]\nlisten = \"127.0.0.1:0\"\n[dashboard]\nlisten = \"127.0.0.1:0\"\n[sql_server]\nlisten = \"127.0.0.1:0\"\n{body}")).unwrap();
    p
}

#[test]
fn a_deploy_regression_in_scraped_histograms_reaches_the_alert_channels() {
    if !have("scraping a prometheus_client server through a deploy", &PROMETHEUS_CLIENT) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let body = format!(
        "[[notify.channels]]\nkind = \"log\"\nname = \"log\"\n\
         [[scrape]]\njob = \"llm-serving\"\ntargets = [\"127.0.0.1:{port}\"]\ninterval_secs = 0.25\nwindow_secs = 2.0\ndown_after = 3\nlabels = {{ team = \"inference\" }}\n"
    );
    let cfg = config(dir.path(), &body);
    let data = format!("file://{}", dir.path().join("data").display());
    let v1 = vllm_like(dir.path(), port, "v2.4.0", 0.05);
    let up = Up::start(&data, &cfg, &[], &[]);
    let windows = |version: &str| {
        sql_n(&up, &format!("SELECT count(DISTINCT run_id) AS n FROM summaries WHERE workload = 'llm-serving' AND version_tag = '{version}' AND metric = 'ttft_ms'"))
    };
    wait_for("four judged windows of v2.4.0", WAIT, || (windows("v2.4.0") >= 4).then_some(()));
    // The deploy: the old server goes, the new version (40 % slower to the first token) comes.
    drop(v1);
    let _v2 = vllm_like(dir.path(), port, "v2.4.1", 0.07);
    let alert = wait_for("an alert on TTFT after the deploy", WAIT, || {
        let rows = sql(&up, "SELECT subject, severity, version_tag, change_pct, message, hardware, workload FROM alerts WHERE workload = 'llm-serving' AND subject IN ('ttft_ms', 'ttft_p99_ms') AND state = 'firing'");
        rows.into_iter().find(|r| r["version_tag"] == "v2.4.1")
    });
    assert_eq!(alert["hardware"], format!("127.0.0.1:{port}"));
    assert!(alert["change_pct"].as_f64().unwrap() > 20.0, "{alert}");
    let before = sql(&up, "SELECT count(*) AS n FROM alerts WHERE workload = 'llm-serving' AND subject LIKE 'ttft%' AND version_tag = 'v2.4.0' AND state = 'firing'");
    assert_eq!(before[0]["n"], 0, "no false alarm on the unchanged version's windows");
    // The alert reached the channel: the log channel's line in the pipeline's output.
    let line = wait_for("the alert on the log channel", WAIT, || up.log.lock().unwrap().lines().find(|l| l.contains("ttft") && l.contains("llm-serving")).map(str::to_string));
    eprintln!("alert as delivered: {line}");
    let delivered = sql_n(&up, "SELECT count(*) AS n FROM notifications WHERE channel = 'log' AND status = 'sent'");
    assert!(delivered >= 1, "the notifications table records the delivery");
    // Samples carry the catalog's units; unknown series of the exporter are telemetry.
    let units = sql(&up, "SELECT DISTINCT metric, unit FROM samples WHERE metric IN ('ttft_ms', 'ttft_p99_ms', 'scraped.process_cpu_seconds_per_second') ORDER BY metric");
    let units: Vec<(String, String)> = units.iter().map(|r| (r["metric"].as_str().unwrap().into(), r["unit"].as_str().unwrap().into())).collect();
    assert_eq!(units, [("scraped.process_cpu_seconds_per_second".into(), "/s".into()), ("ttft_ms".into(), "ms".into()), ("ttft_p99_ms".into(), "ms".into())]);
    // The target stops answering: scrape_failed, in the history and in `trackiq status`.
    drop(_v2);
    let detection = wait_for("a scrape_failed detection", WAIT, || sql(&up, "SELECT message FROM detections WHERE detector = 'scrape_failed'").into_iter().next());
    assert!(detection["message"].as_str().unwrap().contains(&format!("llm-serving target 127.0.0.1:{port} stopped answering")), "{detection}");
    let status = ok(&std::process::Command::new(BIN).args(["status", "--metrics", up.metrics.as_deref().unwrap()]).output().unwrap());
    assert!(status.contains("scrape targets: 0 up, 1 down") && status.contains("NO (scrape_failed)"), "{status}");
}

#[test]
fn node_exporter_dcgm_text_and_otlp_pushes_become_catalog_metrics() {
    let node = have("scraping Debian's node_exporter", &NODE_EXPORTER);
    let otel = have("OTLP pushed by the OpenTelemetry Python SDK", &OTEL_SDK);
    let dir = tempfile::tempdir().unwrap();
    let dcgm = serve_text(DCGM_TEXT);
    let (node_port, otlp_port) = (free_port(), free_port());
    let _node = node.then(|| {
        let program = crate::skips::on_path(&["prometheus-node-exporter", "node_exporter"]).unwrap();
        let child = Command::new(program).arg(format!("--web.listen-address=127.0.0.1:{node_port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        Proc(child)
    });
    let node_job = if node { format!("[[scrape]]\njob = \"node\"\ntargets = [\"127.0.0.1:{node_port}\"]\ninterval_secs = 0.5\nwindow_secs = 2.0\n") } else { String::new() };
    let body = format!(
        "[otlp]\nenabled = true\nlisten = \"127.0.0.1:{otlp_port}\"\nwindow_secs = 1.0\ntoken = {{ env = \"TEST_OTLP_TOKEN\" }}\n\
         [[scrape]]\njob = \"dcgm\"\ntargets = [\"http://127.0.0.1:{dcgm}/metrics\"]\ninterval_secs = 0.25\nwindow_secs = 1.0\n{node_job}"
    );
    let cfg = config(dir.path(), &body);
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &cfg, &[], &[("TEST_OTLP_TOKEN".into(), "otlp-Secret-123".into())]);
    assert!(up.log.lock().unwrap().contains(&format!("OTLP http://127.0.0.1:{otlp_port}/v1/metrics")));
    // DCGM: per GPU (the index is the rank), in the catalog's units.
    let q = "SELECT s.metric, s.rank, min(s.value) AS lo, max(s.value) AS hi, min(s.unit) AS unit FROM samples s JOIN (SELECT DISTINCT run_id FROM runs WHERE workload = 'dcgm') r ON s.run_id = r.run_id GROUP BY s.metric, s.rank ORDER BY s.metric, s.rank";
    let rows = wait_for("DCGM samples", WAIT, || Some(sql(&up, q)).filter(|r| r.len() >= 10));
    let got: Vec<String> = rows.iter().map(|r| format!("{} {} {} {}", r["metric"].as_str().unwrap(), r["rank"], r["hi"], r["unit"].as_str().unwrap())).collect();
    for want in ["gpu_power_watts 1 655.25 W", "gpu_power_watts 0 412.5 W", "gpu_temperature_celsius 1 83.0 C", "gpu_memory_used_mib 0 71234.0 MiB", "gpu_sm_clock_mhz 1 1755.0 MHz", "gpu_utilization_percent 1 100.0 %"] {
        assert!(got.iter().any(|g| g == want), "{want} missing in {got:?}");
    }
    assert!(!got.iter().any(|g| g.contains("energy") || g.contains("xid")), "unknown per-GPU series are not kept: {got:?}");
    if node {
        let q = "SELECT s.metric, min(s.value) AS lo, max(s.value) AS hi, min(s.unit) AS unit FROM samples s JOIN (SELECT DISTINCT run_id FROM runs WHERE workload = 'node') r ON s.run_id = r.run_id WHERE s.metric IN ('cpu_utilization_percent', 'memory_used_mib', 'memory_utilization_percent', 'scraped.node_load1') GROUP BY s.metric ORDER BY s.metric";
        let rows = wait_for("node_exporter samples", WAIT, || Some(sql(&up, q)).filter(|r| r.len() == 4));
        let by: std::collections::BTreeMap<&str, &serde_json::Value> = rows.iter().map(|r| (r["metric"].as_str().unwrap(), r)).collect();
        let range = |m: &str| (by[m]["lo"].as_f64().unwrap(), by[m]["hi"].as_f64().unwrap());
        assert!(range("cpu_utilization_percent").0 >= 0.0 && range("cpu_utilization_percent").1 <= 100.0, "{rows:?}");
        assert!(range("memory_used_mib").0 > 10.0 && by["memory_used_mib"]["unit"] == "MiB", "{rows:?}");
        assert!(range("memory_utilization_percent").1 < 100.0, "{rows:?}");
    }
    // OTLP: a post without the token is refused; a malformed one is named; the SDK's pushes land.
    let endpoint = format!("http://127.0.0.1:{otlp_port}/v1/metrics");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let post = |token: Option<&str>, body: &'static [u8], json: bool| {
        rt.block_on(async {
            let mut req = reqwest::Client::new().post(&endpoint).body(body).header("content-type", if json { "application/json" } else { "application/x-protobuf" });
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        })
    };
    assert_eq!(post(None, b"", false).0, 401);
    assert_eq!(post(Some("wrong"), b"", false).0, 401);
    let (status, text) = post(Some("otlp-Secret-123"), br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"bucketCounts":[1,2],"explicitBounds":[0.1,0.2]}]}}]}]}]}"#, true);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("metrics[0] (`h`): dataPoints[0]: 2 bucketCounts for 2 explicitBounds"), "{text}");
    assert!(!up.log.lock().unwrap().contains("otlp-Secret-123"), "the token is never logged");
    if otel {
        let script = dir.path().join("otel_push.py");
        std::fs::write(&script, OTEL_PUSH).unwrap();
        let out = Command::new("python3").arg(&script).args([&endpoint, "otlp-Secret-123", "3"]).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pushed"), "{}", String::from_utf8_lossy(&out.stderr));
        let q = "SELECT r.hardware_name, r.version_tag, s.metric, s.unit, min(s.rank) AS rank, count(*) AS n, min(s.value) AS lo, max(s.value) AS hi FROM samples s \
                 JOIN (SELECT DISTINCT run_id, hardware_name, version_tag FROM runs WHERE workload = 'chat-otel') r ON s.run_id = r.run_id GROUP BY r.hardware_name, r.version_tag, s.metric, s.unit ORDER BY s.metric";
        let rows = wait_for("the OTLP pushes in the history", WAIT, || Some(sql(&up, q)).filter(|r| r.len() >= 3 && r.iter().all(|x| x["n"].as_i64().unwrap() >= 5)));
        let by: std::collections::BTreeMap<&str, &serde_json::Value> = rows.iter().map(|r| (r["metric"].as_str().unwrap(), r)).collect();
        assert_eq!((by["gpu_power_watts"]["lo"].as_f64(), by["gpu_power_watts"]["rank"].as_i64(), by["gpu_power_watts"]["unit"].as_str()), (Some(250.0), Some(0), Some("W")));
        let ttft = by["ttft_ms"];
        assert_eq!((ttft["hardware_name"].as_str(), ttft["version_tag"].as_str(), ttft["unit"].as_str()), (Some("otel-host-1"), Some("v7"), Some("ms")));
        // Log-normal around 50 ms: every interval's median lies in the (40, 60] ms bucket.
        assert!(ttft["lo"].as_f64().unwrap() > 40.0 && ttft["hi"].as_f64().unwrap() <= 60.0, "{ttft}");
        assert!(by.contains_key("ttft_p99_ms"), "{rows:?}");
    }
}

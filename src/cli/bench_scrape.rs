//! `trackiq bench scrape`: continuous telemetry in at fleet scale. This process serves
//! `--targets` distinct exporters (`/t/<i>/metrics`: a vLLM TTFT histogram, 8 GPUs of DCGM
//! gauges, process counters; every target's counts grow with each scrape) and, with
//! `--otlp-senders`, posts OTLP/HTTP protobuf requests back to back; `trackiq up` runs as its
//! own process with one `[[scrape]]` job over those targets and the OTLP receiver. Printed:
//! scrapes/s against the schedule, the interval each target actually saw (p50/p99), failures,
//! windows published, OTLP requests/s and points/s with their latency, and the pipeline's CPU
//! and resident memory over the run.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path, State};
use clap::Args;
use comfy_table::Table;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use trackiq::config::Config;
use trackiq_producers::streams::config::ScrapeJob;

use super::bench_ingest::pipeline::Pipeline;
use super::bench_ingest::watch::quantile;

#[derive(Debug, Args)]
pub struct ScrapeBenchArgs {
    /// Exporters served (each a distinct target of one scrape job).
    #[arg(long, default_value_t = 1000)]
    pub targets: usize,
    /// Scrape interval (a plain number is seconds).
    #[arg(long, default_value = "15s", value_parser = super::spelling::seconds_f64)]
    pub interval: f64,
    /// Window of readings per run (a plain number is seconds).
    #[arg(long, default_value = "60s", value_parser = super::spelling::seconds_f64)]
    pub window: f64,
    /// How long the load runs (a plain number is seconds).
    #[arg(long, default_value = "120s", value_parser = super::spelling::seconds_f64)]
    pub duration: f64,
    /// Concurrent OTLP senders posting back to back (0: no OTLP load).
    #[arg(long, default_value_t = 0)]
    pub otlp_senders: usize,
    /// Distinct resources (services × hosts) the OTLP senders post for.
    #[arg(long, default_value_t = 1000)]
    pub otlp_resources: usize,
}

/// GPUs per DCGM target.
const GPUS: usize = 8;
/// vLLM's TTFT buckets (seconds).
const BUCKETS: [f64; 16] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// What the exporters saw.
struct Served {
    scrapes: Vec<AtomicU64>,
    last: Mutex<Vec<Option<Instant>>>,
    intervals: Mutex<Vec<f64>>,
}

/// The exposition of target `i` at its `n`-th scrape: counts grow by 20 requests a scrape.
fn exposition(i: usize, n: u64) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str("# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n# TYPE vllm:time_to_first_token_seconds histogram\n");
    let shift = (i % 4) as u64;
    let mut cumulative = 0;
    for (b, le) in BUCKETS.iter().enumerate() {
        // 20 requests a scrape, spread over buckets 4..8 (20–100 ms), shifted per target.
        cumulative += if (4 + shift as usize..8 + shift as usize).contains(&b) { 5 * n } else { 0 };
        s.push_str(&format!("vllm:time_to_first_token_seconds_bucket{{le=\"{le}\",model_name=\"m{i}\"}} {cumulative}\n"));
    }
    s.push_str(&format!("vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"m{i}\"}} {cumulative}\nvllm:time_to_first_token_seconds_count{{model_name=\"m{i}\"}} {cumulative}\n"));
    for (name, base) in [("DCGM_FI_DEV_POWER_USAGE", 300.0), ("DCGM_FI_DEV_GPU_TEMP", 60.0), ("DCGM_FI_DEV_GPU_UTIL", 90.0), ("DCGM_FI_DEV_FB_USED", 40000.0)] {
        s.push_str(&format!("# TYPE {name} gauge\n"));
        for g in 0..GPUS {
            s.push_str(&format!("{name}{{gpu=\"{g}\",UUID=\"GPU-{i}-{g}\",Hostname=\"host-{i}\"}} {}\n", base + (i + g) as f64 % 7.0));
        }
    }
    s.push_str(&format!("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n# TYPE node_load1 gauge\nnode_load1 {}\n", n as f64 * 0.5, (i % 10) as f64 / 10.0));
    s
}

async fn serve_target(State(served): State<Arc<Served>>, Path(i): Path<usize>) -> Result<String, axum::http::StatusCode> {
    let counter = served.scrapes.get(i).ok_or(axum::http::StatusCode::NOT_FOUND)?;
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    let now = Instant::now();
    let previous = std::mem::replace(&mut served.last.lock().unwrap()[i], Some(now));
    if let Some(p) = previous {
        served.intervals.lock().unwrap().push(now.duration_since(p).as_secs_f64());
    }
    Ok(exposition(i, n))
}

/// One OTLP request for resource `r`: a TTFT histogram (cumulative) and 8 GPU power gauges.
fn otlp_request(r: usize, n: u64) -> Vec<u8> {
    let kv = |k: &str, v: String| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }) };
    let now = trackiq_schemas::now_us() as u64 * 1000;
    let hist = HistogramDataPoint {
        time_unix_nano: now,
        start_time_unix_nano: now - 60_000_000_000,
        count: 20 * n,
        bucket_counts: BUCKETS.iter().enumerate().map(|(b, _)| if (4..8).contains(&b) { 5 * n } else { 0 }).chain([0]).collect(),
        explicit_bounds: BUCKETS.to_vec(),
        ..Default::default()
    };
    let gauges = (0..GPUS).map(|g| NumberDataPoint { time_unix_nano: now, attributes: vec![kv("gpu", g.to_string())], value: Some(number_data_point::Value::AsDouble(300.0 + g as f64)), ..Default::default() }).collect();
    let metrics = vec![
        Metric { name: "gen_ai.server.time_to_first_token".into(), unit: "s".into(), data: Some(metric::Data::Histogram(Histogram { data_points: vec![hist], aggregation_temporality: 2 })), ..Default::default() },
        Metric { name: "gpu_power_watts".into(), unit: "W".into(), data: Some(metric::Data::Gauge(Gauge { data_points: gauges })), ..Default::default() },
    ];
    let resource = Resource { attributes: vec![kv("service.name", format!("svc-{}", r % 10)), kv("host.name", format!("host-{r}")), kv("service.version", "v1".into())], ..Default::default() };
    ExportMetricsServiceRequest { resource_metrics: vec![ResourceMetrics { resource: Some(resource), scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }], ..Default::default() }] }.encode_to_vec()
}

pub async fn run(config: Config, a: ScrapeBenchArgs) -> anyhow::Result<ExitCode> {
    for (name, v) in [("--interval", a.interval), ("--window", a.window), ("--duration", a.duration)] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} must be a positive number of seconds, got {v}");
        }
    }
    let served = Arc::new(Served { scrapes: (0..a.targets).map(|_| AtomicU64::new(0)).collect(), last: Mutex::new(vec![None; a.targets]), intervals: Mutex::new(Vec::new()) });
    let app = axum::Router::new().route("/t/{i}/metrics", axum::routing::get(serve_target)).with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut bench_config = config.clone();
    if a.targets > 0 {
        bench_config.scrape = vec![ScrapeJob {
            job: "bench-scrape".into(),
            targets: (0..a.targets).map(|i| format!("http://127.0.0.1:{port}/t/{i}/metrics")).collect(),
            interval_secs: a.interval,
            timeout_secs: a.interval.min(10.0),
            window_secs: a.window.max(a.interval),
            ..ScrapeJob::default()
        }];
    }
    let otlp_port = super::bench_ingest::free_port()?;
    bench_config.otlp.enabled = a.otlp_senders > 0;
    bench_config.otlp.listen = format!("127.0.0.1:{otlp_port}");
    bench_config.otlp.window_secs = a.window;
    let dir = super::bench_ingest::tempdir()?;
    let (mut pipeline, _) = Pipeline::start_fresh(&bench_config, &dir, "bench-scrape")?;
    println!("`trackiq up` ready: scraping {} targets every {} s, windows of {} s, {} OTLP sender(s); running {:.0} s", a.targets, a.interval, a.window, a.otlp_senders, a.duration);

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(a.duration);
    let otlp_done = Arc::new(AtomicU64::new(0));
    let otlp_latency = Arc::new(Mutex::new(Vec::new()));
    let otlp_failed = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..a.otlp_senders)
        .map(|s| {
            let (done, lat, failed) = (otlp_done.clone(), otlp_latency.clone(), otlp_failed.clone());
            let url = format!("http://127.0.0.1:{otlp_port}{}", trackiq_producers::streams::otlp::METRICS_PATH);
            let resources = a.otlp_resources.max(1);
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let body = otlp_request((s + n as usize * 7919) % resources, n);
                    let t = Instant::now();
                    let ok = client.post(&url).header("content-type", "application/x-protobuf").body(body).send().await.is_ok_and(|r| r.status().is_success());
                    lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                    if ok { done.fetch_add(1, Ordering::Relaxed) } else { failed.fetch_add(1, Ordering::Relaxed) };
                }
            })
        })
        .collect();
    let bar = indicatif::ProgressBar::new(a.duration as u64).with_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} s")?);
    pipeline.cpu_percent();
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()))).await;
        rss.extend(pipeline.rss_mib());
        bar.set_position(started.elapsed().as_secs());
    }
    bar.finish_and_clear();
    let cpu = pipeline.cpu_percent().context("reading the pipeline's CPU time from /proc")?;
    for s in senders {
        let _ = s.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = super::status::parse(&super::status::fetch(&pipeline.metrics).await?)?;
    let sum = |name: &str, label: Option<(&str, &str)>| metrics.iter().filter(|s| s.name == name && label.is_none_or(|(k, v)| s.labels.get(k).is_some_and(|x| x == v))).map(|s| s.value).sum::<f64>();
    let scrapes: u64 = served.scrapes.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let mut intervals = served.intervals.lock().unwrap().clone();
    intervals.sort_by(f64::total_cmp);
    let mut lat = otlp_latency.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    pipeline.stop()?;

    let mut t = Table::new();
    t.set_header(["figure", "value"]);
    let mut rows: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let mut row = |k: &str, v: String| {
        rows.insert(rows.len(), (k.to_string(), v));
    };
    if a.targets > 0 {
        row("scrapes served", format!("{scrapes} ({:.1}/s; schedule {:.1}/s)", scrapes as f64 / elapsed, a.targets as f64 / a.interval));
        row("interval seen by a target p50 / p99", format!("{:.2} / {:.2} s", quantile(&intervals, 0.5), quantile(&intervals, 0.99)));
        row("scrape readings / failures", format!("{} / {}", sum("trackiq_telemetry_readings_total", Some(("source", "prometheus"))), sum("trackiq_scrape_failures_total", None)));
    }
    row("windows published (prometheus / otlp)", format!("{} / {}", sum("trackiq_telemetry_windows_total", Some(("source", "prometheus"))), sum("trackiq_telemetry_windows_total", Some(("source", "otlp")))));
    if a.otlp_senders > 0 {
        let ok = otlp_done.load(Ordering::Relaxed);
        row("OTLP requests ok / failed", format!("{ok} / {}", otlp_failed.load(Ordering::Relaxed)));
        row("OTLP requests/s · points/s", format!("{:.0} · {:.0}", ok as f64 / elapsed, ok as f64 * (1 + GPUS) as f64 / elapsed));
        row("OTLP latency p50 / p99", format!("{:.2} / {:.2} ms", quantile(&lat, 0.5), quantile(&lat, 0.99)));
    }
    row("pipeline CPU (share of one core)", format!("{cpu:.1} %"));
    row("pipeline RSS first / max / last", format!("{:.0} / {:.0} / {:.0} MiB", rss.first().unwrap_or(&0.0), rss.iter().copied().fold(0.0, f64::max), rss.last().unwrap_or(&0.0)));
    for (_, (k, v)) in rows {
        t.add_row([k, v]);
    }
    println!("{t}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(ExitCode::SUCCESS)
}

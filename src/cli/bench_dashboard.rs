//! `trackiq bench dashboard`: page load times of the dashboard over a large history.
//!
//! The history is made by the pipeline's own code without the broker, so that 100,000 runs
//! take minutes rather than hours: each synthetic run's events (start, sample batches,
//! finish) go through the aggregator's [`Aggregation`], its summary through the verdict
//! stage's [`Baselines`] (rolling baselines, trends), and every event into Parquet through
//! the archiver's [`Archive`] — the same rows and objects `trackiq up` writes. The report
//! sink's verdict JSON is written for the newest runs, whose pages are timed. Then the
//! dashboard is served in-process on a loopback port and each page is fetched over HTTP:
//! the first (cold) load and the median and slowest of the next `--repeat`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use trackiq::config::Config;
use trackiq_infra::runtime::Position;
use trackiq_infra::{DataStore, Shutdown};
use trackiq_processors::aggregator::{Aggregation, AggregatorConfig};
use trackiq_processors::archiver::Archive;
use trackiq_processors::verdict::baselines::Baselines;
use trackiq_producers::identity::{RunIdentity, run_started};
use trackiq_schemas::{AnyEvent, RunFinished, RunStatus, Sample, SampleBatch};
use trackiq_sinks::dashboard::{Dashboard, DashboardConfig, serve};

/// Partitions of each topic in the synthetic log (the pipeline's default).
const PARTITIONS: i32 = 6;
/// Archive flush threshold: rows buffered before the archive writes its objects.
const FLUSH_ROWS: usize = 500_000;
/// Newest runs whose report JSON is written (the run pages timed come from these).
const REPORTED_RUNS: usize = 100;
/// Microseconds between consecutive synthetic runs: 100,000 runs span about 35 days.
const RUN_SPACING_US: i64 = 30_000_000;

#[derive(Debug, Args)]
pub struct DashboardBenchArgs {
    /// Runs in the synthetic history.
    #[arg(long, default_value_t = 100_000)]
    pub runs: usize,
    /// Distinct workloads (each on each hardware name is a series).
    #[arg(long, default_value_t = 40)]
    pub workloads: usize,
    /// Distinct hardware names.
    #[arg(long, default_value_t = 5)]
    pub hardware: usize,
    /// Latency samples per run.
    #[arg(long, default_value_t = 20)]
    pub samples_per_run: usize,
    /// Timed loads of each page after the first.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Directory for the history (default: a new directory under the system's temporary
    /// directory, kept so that it can be queried or served again with `trackiq ui`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

struct Positions([i64; PARTITIONS as usize * 8]);

impl Positions {
    fn next(&mut self, topic: usize, key: &str) -> Position {
        let partition = (key.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % PARTITIONS as u32) as i32;
        let slot = &mut self.0[topic * PARTITIONS as usize + partition as usize];
        *slot += 1;
        let names = ["trackiq.runs", "trackiq.samples", "trackiq.summaries", "trackiq.verdicts", "trackiq.trends"];
        Position { topic: names[topic].to_string(), partition, offset: *slot }
    }
}

async fn flush_all(archive: &mut Archive, all: bool) -> anyhow::Result<()> {
    if all || archive.buffered_rows() >= FLUSH_ROWS {
        for slot in archive.due(0, Duration::ZERO, true) {
            archive.flush(&slot).await?;
        }
    }
    Ok(())
}

/// Writes the synthetic history; returns the newest runs' ids and one series id.
async fn write_history(a: &DashboardBenchArgs, config: &Config, store: &DataStore) -> anyhow::Result<(Vec<String>, String)> {
    let mut archive = Archive::open(store.clone(), "benchdash").await?;
    let mut aggregation = Aggregation::new(AggregatorConfig::default());
    let mut baselines = Baselines::new(config.verdict.clone());
    let mut rng = SmallRng::seed_from_u64(13);
    let noise = LogNormal::new(0.0, 0.05)?;
    let mut positions = Positions([0; PARTITIONS as usize * 8]);
    let templates: Vec<_> = (0..a.workloads * a.hardware)
        .map(|i| {
            let identity = RunIdentity {
                workload: format!("workload-{:02}", i / a.hardware),
                workload_type: "inference".into(),
                hardware: Some(format!("node-{}", i % a.hardware)),
                version_tag: Some("v1".into()),
                git_commit: Some(format!("{:040x}", i)),
                labels: [("team".to_string(), format!("team-{}", i % 3))].into(),
                ..Default::default()
            };
            run_started("trackiq-bench-dashboard", &identity)
        })
        .collect();
    let start = trackiq_schemas::now_us() - a.runs as i64 * RUN_SPACING_US;
    let bar = ProgressBar::new(a.runs as u64).with_style(ProgressStyle::with_template("writing the history {bar:40} {pos}/{len} runs · {per_sec} · eta {eta}")?);
    let mut newest = Vec::new();
    let mut reports = Vec::new();
    for i in 0..a.runs {
        let mut run = templates[i % templates.len()].clone();
        let ts = start + i as i64 * RUN_SPACING_US;
        run.run_id = uuid::Uuid::now_v7().to_string();
        run.timestamp = ts;
        run.version.version_tag = Some(format!("v{}", 1 + i * 10 / a.runs));
        // A step of +15 % halfway through some series: verdicts, change points and trends to show.
        let slower = if (i % templates.len()) % 7 == 0 && i > a.runs / 2 { 1.15 } else { 1.0 };
        let base = 5.0 + (i % templates.len()) as f64 * 0.25;
        let samples: Vec<Sample> = (0..a.samples_per_run)
            .map(|k| Sample { ts_us: ts + k as i64 * 1000, metric: "latency_ms".into(), value: base * slower * noise.sample(&mut rng), unit: "ms".into(), rank: None, step: None })
            .collect();
        let throughput = 1000.0 / (base * slower) * rng.random_range(0.97..1.03);
        let mut all = samples;
        all.push(Sample { ts_us: ts + 30_000, metric: "throughput_per_sec".into(), value: throughput, unit: "1/s".into(), rank: None, step: None });
        let finished = RunFinished { run_id: run.run_id.clone(), status: RunStatus::Completed, ended_at: ts + 40_000, sample_count: all.len() as i64, error: None };
        let id = run.run_id.clone();
        let now = Instant::now();
        let events = [(0, AnyEvent::RunStarted(run)), (1, AnyEvent::SampleBatch(SampleBatch { run_id: id.clone(), seq: 0, samples: all })), (0, AnyEvent::RunFinished(finished))];
        for (topic, event) in events {
            let position = positions.next(topic, &id);
            aggregation.apply(position.clone(), event.clone(), now);
            archive.add(&position, Some(ts / 1000), event);
        }
        for closed in aggregation.take_ready(now) {
            let Some(summary) = closed.summary else { continue };
            let judged = baselines.judge(&summary, summary.run.timestamp + 60_000);
            let position = positions.next(2, &summary.run.series_id);
            archive.add(&position, Some(ts / 1000), AnyEvent::RunSummary(Box::new(summary.clone())));
            if let Some((verdict, trends)) = judged {
                let position = positions.next(3, &summary.run.series_id);
                if i + REPORTED_RUNS >= a.runs {
                    reports.push(verdict.clone());
                }
                archive.add(&position, Some(ts / 1000), AnyEvent::Verdict(Box::new(verdict)));
                for t in trends {
                    let position = positions.next(4, &summary.run.series_id);
                    archive.add(&position, Some(ts / 1000), AnyEvent::TrendResult(Box::new(t)));
                }
            }
        }
        if i + REPORTED_RUNS >= a.runs {
            newest.push(id);
        }
        flush_all(&mut archive, false).await?;
        bar.inc(1);
    }
    flush_all(&mut archive, true).await?;
    bar.finish();
    for v in &reports {
        store.put(&trackiq_sinks::report::verdict_path(&v.summary.run.run_id), serde_json::to_vec(v)?).await?;
    }
    let series = reports.last().map(|v| v.summary.run.series_id.clone()).context("no verdicts were made")?;
    newest.reverse();
    Ok((newest, series))
}

pub async fn run(config: Config, a: DashboardBenchArgs) -> anyhow::Result<ExitCode> {
    let dir = a.out.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("trackiq-bench-dashboard-{}", uuid::Uuid::now_v7().simple())));
    std::fs::create_dir_all(&dir)?;
    let store = DataStore::open(&format!("file://{}", dir.canonicalize()?.display()))?;
    let began = Instant::now();
    let (newest, series) = write_history(&a, &config, &store).await?;
    let written = began.elapsed();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let dashboard = Dashboard::new(store.clone(), DashboardConfig::default(), addr)?;
    let (trigger, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(dashboard, listener, shutdown));
    let client = reqwest::Client::new();
    let (a_run, b_run) = (&newest[0], &newest[1]);
    let pages: Vec<(&str, String)> = vec![
        ("overview", "/".into()),
        ("runs, first page", "/runs".into()),
        ("runs, page 1000", "/runs?page=999".into()),
        ("runs of one workload", "/runs?workload=workload-07".into()),
        ("runs with a block verdict", "/runs?severity=block".into()),
        ("a run", format!("/runs/{a_run}")),
        ("a run's samples CSV", format!("/runs/{a_run}/samples.csv")),
        ("series list", "/series".into()),
        ("a series", format!("/series?series={series}&metric=latency_ms")),
        ("compare two runs", format!("/compare?a={a_run}&b={b_run}")),
        ("a series' chart data", format!("/charts/series.json?metric=latency_ms&series={series}")),
        ("a run's chart data", format!("/charts/samples.json?metric=latency_ms&run={a_run}")),
        ("the chart script (uPlot)", "/assets/uplot.js".into()),
        ("SQL console: count runs", "/sql?q=SELECT%20count(DISTINCT%20run_id)%20AS%20runs%20FROM%20runs".into()),
    ];
    let mut table = Table::new();
    table.set_header(["page", "first load ms", "median ms", "slowest ms", "KiB"]);
    for (name, path) in &pages {
        let url = format!("http://{addr}{path}");
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..=a.repeat {
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(status.is_success(), "{name} ({path}) answered {status}: {}", String::from_utf8_lossy(&body));
            size = body.len();
        }
        let first = times.remove(0);
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(first);
        let worst = times.last().copied().unwrap_or(first);
        table.add_row([name.to_string(), format!("{first:.0}"), format!("{median:.0}"), format!("{worst:.0}"), format!("{:.1}", size as f64 / 1024.0)]);
    }
    trigger.trigger();
    server.await??;
    let objects = store.list("").await?.len();
    println!(
        "history: {} runs ({} series, {} latency samples each) written in {:.1} s as {objects} Parquet objects under {}",
        a.runs,
        a.workloads * a.hardware,
        a.samples_per_run,
        written.as_secs_f64(),
        dir.display()
    );
    println!("{table}");
    println!("pages fetched over HTTP from the dashboard in this process (loopback), one at a time; {} timed loads after the first", a.repeat);
    Ok(ExitCode::SUCCESS)
}

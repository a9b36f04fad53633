//! `trackiq bench ingest`: fleet-scale load through the real pipeline, measured from
//! outside as `kafka-producer-perf-test` does. The pipeline runs as its own `trackiq up`
//! process (embedded broker unless `--brokers`) over a fresh data directory; the load
//! generator ([`trackiq_producers::load`]) streams H hosts × S series of runs into it.
//!
//! Every second: samples/s produced (acknowledged by the broker), samples/s end to end
//! (rows written to the `samples` Parquet table, from the pipeline's metrics), runs ended,
//! consumer lag, and the pipeline's RSS and CPU. At the end: totals, run end → summary and
//! → verdict latency (p50/p99), and a SQL count proving every sample archived exactly once.

pub(super) mod pipeline;
pub(super) mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::Table;
use tokio_util::sync::CancellationToken;
use trackiq::config::Config;
use trackiq_infra::{Bus, DataStore};
use trackiq_producers::load::{FleetShape, LOAD_TOOL, LoadCounters, LoadPlan, generate};

use pipeline::Pipeline;
use watch::{Watch, quantile};

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Simulated hosts.
    #[arg(long, default_value_t = 10)]
    pub hosts: usize,
    /// Series (benchmarks) per host, each streaming runs one after another.
    #[arg(long, default_value_t = 10)]
    pub series: usize,
    /// Samples per run.
    #[arg(long, default_value_t = 10_000)]
    pub samples_per_run: usize,
    /// Samples per Kafka record (a producer's batch of samples).
    #[arg(long, default_value_t = 5_000)]
    pub samples_per_record: usize,
    /// One GPU power and one temperature reading per this many samples (0: none).
    #[arg(long, default_value_t = 100)]
    pub telemetry_every: usize,
    /// Target samples per second over the fleet; flat out when not given.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long the load lasts (a plain number is seconds).
    #[arg(long, default_value = "60s", value_parser = super::spelling::seconds_f64)]
    pub duration: f64,
    /// Records sent and not yet acknowledged, at most. Default: 64 flat out (to saturate the
    /// pipeline), 4 with --rate: the generator speaks for a whole fleet over one connection, and
    /// a fleet's hosts each send their run as it ends — 60 other records queued ahead of every
    /// run's finish on one connection measured the generator's queue (run end → summary p50
    /// 117 ms at 100 runs/s, against 18 ms with 4 in flight).
    #[arg(long)]
    pub in_flight: Option<usize>,
    /// Directory kept afterwards with the benchmark pipeline's config and its data in
    /// `OUT/data` (history and broker log; `trackiq --data file://OUT/data bench sql`).
    /// Default: a new temporary directory, removed at the end.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Longest wait after the load for the pipeline to archive and judge everything (a plain number is seconds).
    #[arg(long, default_value = "120s", value_parser = super::spelling::seconds_f64)]
    pub drain_timeout: f64,
    /// Every this many runs of a series is 30 % slower, so that alerts fire (and resolve) and
    /// run end → notification is measured; the pipeline gets a `log` notification channel when
    /// the configuration has none (0: no regressions).
    #[arg(long, default_value_t = 0)]
    pub regress_every: usize,
    /// Writes each run's end (s from the start of the load) and its latencies to this CSV file,
    /// to see when slow ones happened.
    #[arg(long)]
    pub latencies_csv: Option<std::path::PathBuf>,
    /// Processes spinning on the CPU for the load's duration (as `yes > /dev/null` would):
    /// the pipeline measured on a machine something else keeps busy.
    #[arg(long, default_value_t = 0)]
    pub hog: usize,
}

/// One second of the report.
struct Tick {
    t: f64,
    produced: u64,
    archived: u64,
    runs: u64,
    lag: i64,
    rss: Option<f64>,
    cpu: Option<f64>,
}

pub async fn run(config: Config, a: IngestBenchArgs) -> anyhow::Result<ExitCode> {
    if a.hosts == 0 || a.series == 0 || a.samples_per_run == 0 || a.samples_per_record == 0 {
        bail!("--hosts, --series, --samples-per-run and --batch must be at least 1");
    }
    if !(a.duration.is_finite() && a.duration > 0.0) {
        bail!("--duration must be a positive number of seconds, got {}", a.duration);
    }
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => tempdir()?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    println!("pipeline: `trackiq up` over file://{}/data ({})", dir.display(), if config.bus.embedded() { "embedded broker" } else { "external brokers" });
    let mut config = config;
    if a.regress_every > 0 && config.notify.channels.is_empty() {
        config.notify.channels.push(toml::from_str("kind = \"log\"\nname = \"log\"").context("a log notification channel")?);
    }
    let (mut pipeline, pipeline_config) = Pipeline::start_fresh(&config, &dir, "bench-ingest")?;
    let mut bus_config = pipeline_config.bus.clone();
    bus_config.brokers = pipeline.brokers.clone();
    let bus = Bus::new(bus_config);

    let plan = LoadPlan {
        shape: FleetShape {
            hosts: a.hosts,
            series_per_host: a.series,
            samples_per_run: a.samples_per_run,
            batch_samples: a.samples_per_record,
            telemetry_every: a.telemetry_every,
            regress_every: a.regress_every,
        },
        rate: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        in_flight: a.in_flight.unwrap_or(if a.rate.is_some() { 4 } else { 64 }),
        seed: trackiq_schemas::now_us() as u64,
    };
    let hog = (a.hog > 0).then(|| super::bench_verdicts::hog::Hog::start(a.hog)).transpose()?;
    let counters = Arc::new(LoadCounters::default());
    let (finished_tx, mut finished_rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let mut watch = Watch::start(&bus);
    // The reader joins its consumer group before the first run ends, or the runs of the
    // first seconds would be measured from when it got its partitions.
    let joined_by = Instant::now() + Duration::from_secs(60);
    while bus.assigned_groups() == 0 {
        if Instant::now() > joined_by {
            bail!("the latency reader got no partitions within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let generator = {
        let (bus, plan, counters, stop) = (bus.clone(), plan.clone(), counters.clone(), stop.clone());
        tokio::spawn(async move { generate(&bus, &plan, &counters, finished_tx, stop).await })
    };
    println!(
        "load: {} hosts × {} series, runs of {} samples in records of {}, {} for {:.0} s",
        a.hosts,
        a.series,
        a.samples_per_run,
        a.samples_per_record,
        a.rate.map(|r| format!("{r:.0} samples/s")).unwrap_or_else(|| "flat out".into()),
        a.duration
    );
    println!("{:>6} {:>14} {:>14} {:>8} {:>10} {:>9} {:>8}", "t (s)", "produced/s", "end-to-end/s", "runs/s", "lag", "RSS MiB", "CPU %");
    let mut ticks: Vec<Tick> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    let drain_deadline = |end: Instant| end + Duration::from_secs_f64(a.drain_timeout);
    let mut load_end: Option<Instant> = None;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = &mut ctrl_c => {
                println!("interrupted: finishing open runs");
                stop.cancel();
            }
        }
        while let Ok(run) = finished_rx.try_recv() {
            watch.ended(run);
        }
        watch.drain();
        let metrics = crate::cli::status::parse(&crate::cli::status::fetch(&pipeline.metrics).await?)?;
        let archived = metrics.iter().filter(|s| s.name == "trackiq_parquet_rows_total" && s.labels.get("table").is_some_and(|t| t == "samples")).map(|s| s.value as u64).sum();
        let lag = metrics.iter().filter(|s| s.name == "trackiq_consumer_lag" && s.value > 0.0).map(|s| s.value as i64).sum();
        let tick = Tick {
            t: started.elapsed().as_secs_f64(),
            produced: counters.samples.load(Ordering::Relaxed),
            archived,
            runs: counters.runs.load(Ordering::Relaxed),
            lag,
            rss: pipeline.rss_mib(),
            cpu: pipeline.cpu_percent(),
        };
        print_tick(&tick, ticks.last());
        ticks.push(tick);
        if load_end.is_none() && generator.is_finished() {
            load_end = Some(Instant::now());
        }
        let last = ticks.last().expect("pushed");
        if let Some(end) = load_end {
            if last.archived >= last.produced || Instant::now() > drain_deadline(end) {
                break;
            }
        }
    }
    generator.await.context("the load generator panicked")?.context("the load generator failed")?;
    // The busy loops run while the pipeline drains and judges too: those latencies are measured under them.
    let all_judged_under_hog = watch.settle(Duration::from_secs_f64(a.drain_timeout)).await;
    if let Some(h) = hog {
        let usage = h.stop().await?;
        println!("busy loops: {} processes kept {} cores busy", usage.procs, usage.cores().map(|c| format!("{c:.2}")).unwrap_or_else(|| "?".into()));
    }
    while let Ok(run) = finished_rx.try_recv() {
        watch.ended(run);
    }
    let all_judged = all_judged_under_hog && watch.settle(Duration::from_secs(1)).await;
    if a.regress_every > 0 {
        // Notifications follow their verdicts by the notifier's hop: give the last ones time.
        tokio::time::sleep(Duration::from_secs(2)).await;
        watch.drain();
    }
    let store = DataStore::open(&pipeline_config.data)?;
    let sql = format!("SELECT count(*) AS n, count(DISTINCT run_id) AS runs FROM samples s JOIN (SELECT DISTINCT run_id AS r FROM runs WHERE tool = '{LOAD_TOOL}') ON s.run_id = r");
    let counted = trackiq_infra::tables::query_rows(&store, &sql).await?;
    let n = |k: &str| counted.first().and_then(|r| r.get(k)).and_then(|v| v.as_i64()).unwrap_or(0);
    let (rows, runs_archived) = (n("n"), n("runs"));
    let produced = counters.samples.load(Ordering::Relaxed);
    if let Some(path) = &a.latencies_csv {
        let t0 = watch.log.iter().map(|l| l.0).min().unwrap_or(0);
        let mut csv = String::from("run_end_s,arrival,latency_ms\n");
        for (ended, kind, ms) in &watch.log {
            csv.push_str(&format!("{:.3},{kind:?},{ms:.1}\n", (ended - t0) as f64 / 1e6));
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    print_summary(&ticks, load_end.map(|e| e.duration_since(started).as_secs_f64()).unwrap_or(a.duration), produced, &counters, &watch, rows, runs_archived);
    let unjudged = watch.runs().saturating_sub(watch.verdict_ms.len());
    watch.stop().await;
    pipeline.stop()?;
    if a.out.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let data = format!("file://{}", dir.join("data").display());
        println!("data kept in {} · history {data} · try: {}", dir.display(), super::hint::over_data(&data, &["bench", "sql"]));
    }
    if (rows as u64) < produced {
        bail!("{produced} samples were acknowledged but the samples table holds {rows}: {} not archived within the drain timeout (raise --drain-timeout; the pipeline was stopped gracefully, so the rest is archived when it next runs)", produced - rows as u64);
    }
    if rows as u64 > produced {
        bail!("{produced} samples were acknowledged but the samples table holds {rows}: {} duplicated", rows as u64 - produced);
    }
    if !all_judged {
        bail!("{unjudged} of {} runs got no verdict within the drain timeout", counters.runs.load(Ordering::Relaxed));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tick(t: &Tick, prev: Option<&Tick>) {
    let (dt, p0, a0, r0) = prev.map(|p| (t.t - p.t, p.produced, p.archived, p.runs)).unwrap_or((t.t, 0, 0, 0));
    let rate = |now: u64, before: u64| (now.saturating_sub(before)) as f64 / dt.max(1e-9);
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    println!(
        "{:>6.1} {:>14.0} {:>14.0} {:>8.1} {:>10} {:>9} {:>8}",
        t.t,
        rate(t.produced, p0),
        rate(t.archived, a0),
        rate(t.runs, r0),
        t.lag,
        opt(t.rss),
        opt(t.cpu)
    );
}

fn print_summary(ticks: &[Tick], load_secs: f64, produced: u64, c: &LoadCounters, w: &Watch, rows: i64, runs_archived: i64) {
    let last = ticks.last();
    let archived_at = ticks.iter().find(|t| t.archived >= produced).map(|t| t.t);
    let e2e = archived_at.map(|t| produced as f64 / t);
    // Steady state: the seconds in which the load ran, leaving out the first (start-up).
    let steady: Vec<&Tick> = ticks.iter().filter(|t| t.t > 1.5 && t.t <= load_secs + 0.5).collect();
    let steady_rate = match (steady.first(), steady.last()) {
        (Some(a), Some(b)) if b.t > a.t => Some((b.archived - a.archived) as f64 / (b.t - a.t)),
        _ => None,
    };
    let rss: Vec<f64> = ticks.iter().filter_map(|t| t.rss).collect();
    let cpu: Vec<f64> = ticks.iter().filter(|t| t.t <= load_secs + 0.5).filter_map(|t| t.cpu).collect();
    let mut table = Table::new();
    table.set_header(vec!["figure", "value"]);
    let f0 = |v: f64| format!("{v:.0}");
    let opt = |v: Option<f64>, unit: &str| v.map(|v| format!("{v:.0} {unit}")).unwrap_or_else(|| "-".into());
    table.add_row(vec!["samples produced (acknowledged)".into(), format!("{produced} in {:.1} s = {} /s", load_secs, f0(produced as f64 / load_secs))]);
    table.add_row(vec!["records produced".into(), format!("{} ({:.1} MB, {:.1} bytes/sample)", c.records.load(Ordering::Relaxed), c.bytes.load(Ordering::Relaxed) as f64 / 1e6, c.bytes.load(Ordering::Relaxed) as f64 / produced.max(1) as f64)]);
    table.add_row(vec!["end to end: all archived after".into(), opt(archived_at, "s")]);
    table.add_row(vec!["end to end, overall".into(), opt(e2e, "samples/s")]);
    table.add_row(vec!["end to end, steady (during the load)".into(), opt(steady_rate, "samples/s")]);
    table.add_row(vec!["runs ended".into(), format!("{} ({:.1} runs/s)", c.runs.load(Ordering::Relaxed), c.runs.load(Ordering::Relaxed) as f64 / load_secs)]);
    table.add_row(vec!["run end → summary p50 / p99 (ms)".into(), format!("{:.0} / {:.0} ({} runs)", quantile(&w.summary_ms, 0.5), quantile(&w.summary_ms, 0.99), w.summary_ms.len())]);
    table.add_row(vec!["run end → verdict p50 / p99 (ms)".into(), format!("{:.0} / {:.0} ({} of {} runs)", quantile(&w.verdict_ms, 0.5), quantile(&w.verdict_ms, 0.99), w.verdict_ms.len(), w.runs())]);
    if !w.notification_ms.is_empty() {
        table.add_row(vec!["run end → alert delivered (log channel) p50 / p99 (ms)".into(), format!("{:.0} / {:.0} ({} alerts)", quantile(&w.notification_ms, 0.5), quantile(&w.notification_ms, 0.99), w.notification_ms.len())]);
    }
    table.add_row(vec!["consumer lag, max".into(), ticks.iter().map(|t| t.lag).max().unwrap_or(0).to_string()]);
    table.add_row(vec![
        "pipeline RSS MiB: first / max / last".into(),
        format!("{} / {} / {}", opt(rss.first().copied(), ""), opt(rss.iter().copied().reduce(f64::max), ""), opt(last.and_then(|t| t.rss), "")),
    ]);
    table.add_row(vec!["pipeline CPU % of a core, mean during the load".into(), opt((!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64), "%")]);
    table.add_row(vec!["samples table (SQL count)".into(), format!("{rows} rows of {runs_archived} runs ({})", if rows as u64 == produced { "every sample once" } else { "MISMATCH" })]);
    println!("{table}");
}

pub(super) fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("trackiq-bench-ingest-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

//! `trackiq bench idle`: what an idle pipeline costs the machine it measures. Starts `trackiq
//! up` as its own process with the user's settings over a fresh history, waits until it is
//! ready, and reads its CPU time and resident memory from /proc over the window; then runs one
//! `bench cmd` of a fixed program beside it, as a user would, and reads that run's
//! `host_other_cpu_percent` (the CPU other processes — the idle pipeline — took meanwhile).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::Table;
use trackiq::config::Config;
use trackiq_infra::DataStore;

use super::bench_ingest::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct IdleBenchArgs {
    /// How long the idle pipeline is watched for (a plain number is seconds).
    #[arg(long, default_value = "60s", value_parser = super::spelling::seconds_f64)]
    pub duration: f64,
    /// Iterations of the probe run (`bench cmd -- sleep 0.02`) beside the idle pipeline.
    #[arg(long, default_value_t = 100)]
    pub probe_iterations: u32,
}

/// Goals: an idle pipeline takes at most this share of one core ...
const GOAL_CPU_PCT: f64 = 1.0;
/// ... this much memory ...
const GOAL_RSS_MIB: f64 = 80.0;
/// ... and a benchmark beside it sees at most this much CPU taken by other processes.
const GOAL_OTHER_CPU_PCT: f64 = 3.0;

pub async fn run(config: Config, a: IdleBenchArgs) -> anyhow::Result<ExitCode> {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        bail!("--duration must be a positive number of seconds, got {}", a.duration);
    }
    let dir = super::bench_ingest::tempdir()?;
    let (mut pipeline, pipeline_config) = Pipeline::start_fresh(&config, &dir, "bench-idle")?;
    println!("`trackiq up` ready ({}); watching it idle for {:.0} s", if config.bus.embedded() { "embedded broker" } else { "external brokers" }, a.duration);
    let started = Instant::now();
    pipeline.cpu_percent();
    let mut rss = Vec::new();
    while started.elapsed().as_secs_f64() < a.duration {
        tokio::time::sleep(Duration::from_secs(1).min(Duration::from_secs_f64((a.duration - started.elapsed().as_secs_f64()).max(0.0)))).await;
        rss.extend(pipeline.rss_mib());
    }
    let cpu = pipeline.cpu_percent().context("reading the pipeline's CPU time from /proc")?;
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    let rss_mean = rss.iter().sum::<f64>() / rss.len().max(1) as f64;

    // One benchmark run beside the idle pipeline, through it, as a user would run one.
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .args(["--brokers", &pipeline.brokers, "bench", "cmd", "--warmup", "2", "--iterations", &a.probe_iterations.to_string(), "--workload", "idle-probe", "--", "sleep", "0.02"])
        .env_remove("TRACKIQ_CONFIG")
        .output()
        .context("running the probe `bench cmd`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("the probe `bench cmd` failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    }
    let run = stdout.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')).find(|t| t.len() == 36).context("no run id in the probe's output")?.to_string();
    let store = DataStore::open(&pipeline_config.data)?;
    let sql = format!("SELECT mean FROM summaries WHERE run_id = '{run}' AND metric = 'host_other_cpu_percent'");
    let deadline = Instant::now() + Duration::from_secs(60);
    let other = loop {
        if let Some(v) = trackiq_infra::tables::query_rows(&store, &sql).await?.first().and_then(|r| r.get("mean")).and_then(|m| m.as_f64()) {
            break v;
        }
        if Instant::now() > deadline {
            bail!("the probe run {run} reached no summary within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    pipeline.stop()?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut t = Table::new();
    t.set_header(["figure", "measured", "goal"]);
    t.add_row([format!("`trackiq up` idle, CPU over {:.0} s (% of one core)", a.duration), format!("{cpu:.2} %"), format!("≤ {GOAL_CPU_PCT} %")]);
    t.add_row(["`trackiq up` idle, RSS max (mean)".to_string(), format!("{rss_max:.0} MiB ({rss_mean:.0})"), format!("≤ {GOAL_RSS_MIB} MiB")]);
    t.add_row([format!("`bench cmd -- sleep 0.02` ×{} beside it: host_other_cpu_percent", a.probe_iterations), format!("{other:.2} %"), format!("≤ {GOAL_OTHER_CPU_PCT} %")]);
    println!("{t}");
    println!("probe run {run}");
    Ok(ExitCode::SUCCESS)
}

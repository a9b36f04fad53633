//! `trackiq bench import`: a backfill through the real path a user takes. N result files
//! (hyperfine, pytest-benchmark, Google Benchmark, vLLM, BMF; [`files`]) are written, a
//! `trackiq up` runs as its own process over a fresh data directory, and `trackiq import auto
//! DIR` runs as its own process against it. Reported: files, runs and samples; the import
//! command's time (parsed, sent and acknowledged by the broker) and its runs/s and samples/s;
//! the time until the history holds every run and sample (end to end) and every run's verdict;
//! and a second import of
//! the same directory (everything already there: nothing sent).

mod files;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::Table;
use indicatif::ProgressBar;
use trackiq::config::Config;
use trackiq_infra::DataStore;

use super::bench_ingest::pipeline::Pipeline;
use super::bench_ingest::tempdir;

#[derive(Debug, Args)]
pub struct ImportBenchArgs {
    /// Result files to write and import.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Series the files belong to (one run per file; runs of a series 10 minutes apart).
    #[arg(long, default_value_t = 50)]
    series: usize,
    /// Directory for the files and the pipeline's data (default: a new temporary directory).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

async fn count(store: &DataStore, sql: &str) -> i64 {
    trackiq_infra::tables::query_rows(store, sql).await.ok().and_then(|r| r.first().and_then(|r| r["n"].as_i64())).unwrap_or(0)
}

pub async fn run(config: Config, a: ImportBenchArgs) -> anyhow::Result<ExitCode> {
    if a.files == 0 || a.series == 0 {
        bail!("--files and --series must be at least 1");
    }
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => tempdir()?,
    };
    let inputs = dir.join("results");
    std::fs::create_dir_all(&inputs).with_context(|| format!("creating {}", inputs.display()))?;
    let dir = dir.canonicalize()?;
    let written = Instant::now();
    let (mut runs, mut samples) = (0, 0);
    let pb = ProgressBar::new(a.files as u64);
    for i in 0..a.files {
        let made = files::write(&inputs, i, a.series, Duration::from_secs(600), a.files)?;
        (runs, samples) = (runs + made.runs, samples + made.samples);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let bytes: u64 = std::fs::read_dir(&inputs)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    println!("{} files ({:.1} MB) of {} series written in {:.1} s: {runs} runs, {samples} samples expected", a.files, bytes as f64 / 1e6, a.series, written.elapsed().as_secs_f64());

    let (pipeline, pipeline_config) = Pipeline::start_fresh(&config, &dir, "bench-import")?;
    let exe = std::env::current_exe()?;
    let import = |what: &str| -> anyhow::Result<(f64, String)> {
        let started = Instant::now();
        let out = Command::new(&exe).args(["--brokers", &pipeline.brokers, "--data", &pipeline_config.data, "import", "auto"]).arg(&inputs).output()?;
        let secs = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("{what} failed ({}): {}{}", out.status, stdout, String::from_utf8_lossy(&out.stderr));
        }
        Ok((secs, stdout))
    };
    let started = Instant::now();
    let (first_secs, first_out) = import("the import")?;
    println!("{first_out}");
    let store = DataStore::open(&pipeline_config.data)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut archived_runs, mut archived_samples);
    loop {
        archived_runs = count(&store, "SELECT count(DISTINCT run_id) AS n FROM runs WHERE event = 'finished'").await;
        archived_samples = count(&store, "SELECT count(*) AS n FROM samples").await;
        if (archived_runs as usize >= runs && archived_samples as usize >= samples) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end_to_end = started.elapsed().as_secs_f64();
    // Judged: every run has its verdict (the verdict stage works through each series in order).
    let mut judged;
    loop {
        judged = count(&store, "SELECT count(DISTINCT run_id) AS n FROM verdicts").await;
        if judged as usize >= runs || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let judged_secs = started.elapsed().as_secs_f64();
    let (again_secs, again_out) = import("the second import")?;
    let again_runs = again_out.lines().find(|l| l.starts_with("imported: ")).unwrap_or("").to_string();
    pipeline.stop()?;

    let mut t = Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED).set_header(["figure", "value"]);
    let rate = |n: usize, s: f64| format!("{:.0}/s", n as f64 / s);
    t.add_row(["files · runs · samples".to_string(), format!("{} · {runs} · {samples}", a.files)]);
    t.add_row(["import command (parse, send, acknowledged)".to_string(), format!("{first_secs:.1} s: {} runs, {} samples", rate(runs, first_secs), rate(samples, first_secs))]);
    t.add_row(["end to end (every run and sample in the history)".to_string(), format!("{end_to_end:.1} s: {} runs, {} samples", rate(runs, end_to_end), rate(samples, end_to_end))]);
    t.add_row(["every run judged (a verdict in the history)".to_string(), format!("{judged_secs:.1} s: {}; {judged} runs with a verdict", rate(runs, judged_secs))]);
    t.add_row(["history holds (runs · samples)".to_string(), format!("{archived_runs} · {archived_samples}")]);
    t.add_row(["second import of the same files".to_string(), format!("{again_secs:.1} s; {again_runs}")]);
    println!("{t}");
    if archived_runs as usize != runs || archived_samples as usize != samples {
        bail!("the history holds {archived_runs} runs and {archived_samples} samples, expected {runs} and {samples}");
    }
    Ok(ExitCode::SUCCESS)
}

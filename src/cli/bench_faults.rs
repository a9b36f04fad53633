//! `trackiq bench faults`: the cluster-health detectors measured as a classifier. N real
//! cluster runs (worker processes, TCP ring all-reduce) through the whole pipeline, with
//! faults drawn from a seeded matrix and really injected; each run's summary says what was
//! injected and what the detectors raised. Prints recall, localization and latency per fault
//! kind and for overlapping pairs, precision over all detections, and false alarms per 100
//! fault-free runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq::stack::Stack;
use trackiq_processors::health::scoring::{RunScore, ScoreTable, score_run, score_table};
use trackiq_producers::cluster::coordinator::{ClusterOptions, run_cluster};
use trackiq_producers::cluster::fault_matrix::{KINDS, MatrixShape, fault_matrix};
use trackiq_producers::cluster::protocol::{Job, TrainConfig};
use trackiq_producers::identity::{RunIdentity, run_started};

use super::bench_verdicts::hog::Hog;
use super::bench_verdicts::tap::Verdicts;

#[derive(Debug, Args)]
pub struct FaultsBenchArgs {
    /// Cluster runs.
    #[arg(long, default_value_t = 60)]
    runs: usize,
    /// Seed of the fault matrix (same seed, same faults on the same ranks at the same steps).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker processes (ranks) per run.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Training steps per run.
    #[arg(long, default_value_t = 40)]
    steps: u64,
    /// Gradient size in MiB: the all-reduce's payload (0.25 MiB: steps of about 50 ms on a
    /// 2-core machine with 4 ranks, release build).
    #[arg(long, default_value_t = 0.25)]
    grad_mib: f64,
    /// Share of runs without a fault.
    #[arg(long, default_value_t = 0.25)]
    fault_free: f64,
    /// Extra compute time of a slow rank.
    #[arg(long, default_value = "40ms", value_parser = super::spelling::millis)]
    slow: Duration,
    /// Delay before every send of a slow link.
    #[arg(long, default_value = "20ms", value_parser = super::spelling::millis)]
    delay: Duration,
    /// A rank silent this long, or that keeps its peers waiting this long, ends the run (a
    /// kill or a stall costs this much time per run).
    #[arg(long, default_value = "3s", value_parser = super::spelling::seconds)]
    failure_timeout: Duration,
    /// Processes spinning on the CPU during all runs (as `yes > /dev/null` would; 0: none).
    #[arg(long, default_value_t = 0)]
    hog: usize,
    /// Directory for the benchmark's history and broker log, kept afterwards (default: a new temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Steps before the first fault (the detectors' reference windows fill) and after the last one.
const SETTLE_STEPS: u64 = 8;

pub async fn run(mut config: Config, a: FaultsBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.workers >= 2, "--workers must be at least 2: a ring of one has no faults to localize");
    anyhow::ensure!(a.steps >= 3 * SETTLE_STEPS, "--steps must be at least {}: {SETTLE_STEPS} steps before a first fault, {SETTLE_STEPS} between two, {SETTLE_STEPS} after", 3 * SETTLE_STEPS);
    anyhow::ensure!((0.0..=1.0).contains(&a.fault_free), "--fault-free is a share between 0 and 1, not {}", a.fault_free);
    let shape = MatrixShape {
        seed: a.seed,
        runs: a.runs,
        world: a.workers,
        steps: a.steps,
        fault_free: a.fault_free,
        first_step: SETTLE_STEPS,
        tail_steps: SETTLE_STEPS,
        slow_ms: a.slow.as_secs_f64() * 1e3,
        delay_ms: a.delay.as_secs_f64() * 1e3,
    };
    let plan = fault_matrix(&shape);
    let dir = super::demo::in_process(&mut config, a.out.clone(), "bench-faults")?;
    println!("trackiq bench faults · {} runs × {} workers × {} steps · seed {} · data {}", a.runs, a.workers, a.steps, a.seed, dir.display());
    let stack = Stack::start(&config).await?;
    stack.wait_ready(Duration::from_secs(60)).await?;
    let outcome = bench(&stack, &a, &plan).await;
    stack.stop().await?;
    let (scores, hog) = outcome?;
    if let Some(h) = hog {
        println!("busy loops: {} processes kept {} cores busy", h.procs, h.cores().map(|c| format!("{c:.2}")).unwrap_or_else(|| "?".into()));
    }
    print_table(&score_table(&scores, &KINDS.map(|k| k.as_str())));
    Ok(ExitCode::SUCCESS)
}

async fn bench(stack: &Stack, a: &FaultsBenchArgs, plan: &[Vec<trackiq_producers::cluster::faults::FaultSpec>]) -> anyhow::Result<(Vec<RunScore>, Option<super::bench_verdicts::hog::HogUsage>)> {
    let mut verdicts = Verdicts::start(stack);
    let hog = (a.hog > 0).then(|| Hog::start(a.hog)).transpose()?;
    let opts = ClusterOptions {
        workers: a.workers,
        listen: "127.0.0.1:0".into(),
        spawn_local: true,
        worker_exe: None,
        failure_timeout: a.failure_timeout,
        rendezvous_timeout: Duration::from_secs(60),
        // Loopback only: nothing beyond this host can reach the run.
        secret: None,
    };
    let bar = indicatif::ProgressBar::new(plan.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs · {msg}").expect("valid template"));
    let started = Instant::now();
    let mut scores = Vec::with_capacity(plan.len());
    for (i, faults) in plan.iter().enumerate() {
        let cfg = TrainConfig {
            steps: a.steps,
            grad_bytes: (a.grad_mib * 1024.0 * 1024.0) as u64,
            batch: super::cluster::DEFAULT_BATCH,
            seed: a.seed.wrapping_add(i as u64),
            learning_rate: 0.1,
            faults: faults.clone(),
            collective_timeout_ms: a.failure_timeout.as_millis() as u64,
            heartbeat_ms: 100,
        };
        let mut id = RunIdentity { workload: "bench-faults".into(), workload_type: "training-cluster".into(), steps: Some(a.steps as i64), ..Default::default() };
        id.labels.insert("world_size".into(), a.workers.to_string());
        id.labels.insert("bench".into(), "faults".into());
        id.labels.insert("faults".into(), if faults.is_empty() { "none".into() } else { faults.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" ") });
        let report = run_cluster(&stack.bus, run_started("trackiq-bench-faults", &id), Job::Train(cfg), &opts).await?;
        let verdict = verdicts.wait_for(stack, &report.run_id, Duration::from_secs(120)).await?;
        let health = verdict.summary.cluster.with_context(|| format!("run {} has no cluster health in its summary", report.run_id))?;
        anyhow::ensure!(
            health.faults.len() == faults.len(),
            "run {}: {} faults planned ({}), {} recorded as injected",
            report.run_id,
            faults.len(),
            id.labels["faults"],
            health.faults.len()
        );
        let score = score_run(&health.faults, &health.detections);
        let missed = score.faults.iter().filter(|f| !f.caught).count();
        if missed > 0 || score.false_alarms() > 0 {
            // Printed whether or not the bar is drawn (it is hidden when stderr is not a terminal).
            bar.suspend(|| println!("run {} ({}): {missed} missed, {} false alarms", report.run_id, id.labels["faults"], score.false_alarms()));
        }
        scores.push(score);
        bar.set_message(format!("{:.0} s", started.elapsed().as_secs_f64()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    verdicts.stop().await;
    let usage = match hog {
        Some(h) => Some(h.stop().await?),
        None => None,
    };
    Ok((scores, usage))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0} %", v * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn print_table(t: &ScoreTable) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["faults", "injected", "caught", "recall", "localized", "latency p50 ms", "latency p95 ms"]);
    for r in &t.rows {
        table.add_row([r.label.clone(), r.injected.to_string(), r.caught.to_string(), pct(r.recall()), pct(r.localization()), ms(r.latency_p50_ms), ms(r.latency_p95_ms)]);
    }
    println!("{table}");
    let mut by = Table::new();
    by.load_preset(UTF8_FULL_CONDENSED).set_header(["detector", "detections", "explained by a fault", "precision"]);
    for (detector, (n, explained)) in &t.per_detector {
        by.add_row([detector.clone(), n.to_string(), explained.to_string(), pct(Some(*explained as f64 / *n as f64))]);
    }
    println!("{by}");
    println!(
        "precision {} ({} of {} detections explained by an injected fault) · false alarms {} per 100 fault-free runs ({} in {} runs)",
        pct(t.precision()),
        t.explained,
        t.detections,
        t.false_alarms_per_100().map_or("-".into(), |v| format!("{v:.1}")),
        t.fault_free_alarms,
        t.fault_free_runs
    );
}

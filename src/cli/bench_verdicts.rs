//! `trackiq bench verdicts`: a real A/A and A/B benchmark of the verdicts. The whole pipeline
//! runs in-process (embedded broker, as `trackiq demo`); runs of an unchanged matrix multiply
//! (A), part of them while child processes spin on every core, then runs with exactly 10 %
//! more work per iteration (B). The verdicts the live pipeline publishes are read back from
//! the verdicts topic; their summaries are judged again offline with the verdict code, for
//! the live configuration (which must agree run by run) and for each threshold model, with
//! detection trials: A runs up to a cut, then a few consecutive B runs.

pub(super) mod hog;
mod report;
pub(super) mod tap;
mod trials;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use trackiq::config::Config;
use trackiq::stack::Stack;
use trackiq_producers::bench::{BenchOptions, Stop, run_bench};
use trackiq_producers::identity::RunIdentity;

use hog::{Hog, loadavg};
use report::{Phase, RunRecord};
use tap::{Repeated, Verdicts};

#[derive(Debug, Args)]
pub struct VerdictsBenchArgs {
    /// Runs of the unchanged workload (A/A).
    #[arg(long, default_value_t = 60)]
    a_runs: usize,
    /// First A run (1-based) during which the CPU hog competes for the cores.
    #[arg(long, default_value_t = 21)]
    hog_from: usize,
    /// Last A run (1-based, inclusive) under the CPU hog.
    #[arg(long, default_value_t = 40)]
    hog_to: usize,
    /// Spinning child processes of the hog (default: one per core; 0: no hog).
    #[arg(long)]
    hog_procs: Option<usize>,
    /// Runs with more work per iteration (A/B, --reps-b against --reps-a), after the A runs, on a quiet machine.
    #[arg(long, default_value_t = 30)]
    b_runs: usize,
    /// Measured iterations per run (after 2 warm-up iterations). The defaults make a run
    /// last about half a second in a release build: long enough for several telemetry
    /// readings (the noisy-host rule needs them), short enough for 90 runs in minutes.
    #[arg(long, default_value_t = 40)]
    iterations: u64,
    /// Size n of the n×n f64 matrix multiply.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Matrix multiplies per iteration of an A run.
    #[arg(long, default_value_t = 100)]
    reps_a: u32,
    /// Matrix multiplies per iteration of a B run (110 against 100: exactly +10 % work).
    #[arg(long, default_value_t = 110)]
    reps_b: u32,
    /// Detection trials: a regression counts as detected when one of this many consecutive B runs is flagged.
    #[arg(long, default_value_t = 3)]
    within: usize,
    /// Smallest cut of a detection trial: the number of A runs judged before the B runs
    /// (default: 20, or the last run before the hog window when that is earlier). Cuts whose
    /// last A run is under the hog are skipped.
    #[arg(long)]
    first_cut: Option<usize>,
    /// Directory for the benchmark's history and broker log, kept afterwards (default: a new temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long to wait for each run's verdict.
    #[arg(long, default_value = "60s", value_parser = super::spelling::seconds)]
    verdict_timeout: Duration,
    /// Simulated series per coefficient of variation (CV 2, 5 and 10 %) judged by the same
    /// code after the real runs, as a complement (0: no simulation).
    #[arg(long, default_value_t = 1000)]
    simulate_series: usize,
}

impl VerdictsBenchArgs {
    fn hog_procs(&self) -> usize {
        self.hog_procs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// The hog window (1-based, inclusive), when there is a hog.
    fn hog_window(&self) -> Option<(usize, usize)> {
        (self.hog_procs() > 0).then_some((self.hog_from, self.hog_to))
    }

    fn first_cut(&self) -> usize {
        self.first_cut.unwrap_or_else(|| match self.hog_window() {
            Some((from, _)) => 20.min(from.saturating_sub(1)).max(1),
            None => 20,
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.a_runs == 0 || self.iterations == 0 || self.size == 0 || self.reps_a == 0 || self.reps_b == 0 {
            bail!("--a-runs, --iterations, --size, --reps-a and --reps-b must be at least 1");
        }
        if self.within == 0 || self.b_runs < self.within {
            bail!("--b-runs ({}) must be at least --within ({}), which must be at least 1", self.b_runs, self.within);
        }
        if self.hog_procs() > 0 && !(1 <= self.hog_from && self.hog_from <= self.hog_to && self.hog_to <= self.a_runs) {
            bail!("the hog window must satisfy 1 ≤ --hog-from ({}) ≤ --hog-to ({}) ≤ --a-runs ({})", self.hog_from, self.hog_to, self.a_runs);
        }
        Ok(())
    }
}

pub async fn run(config: Config, a: VerdictsBenchArgs) -> anyhow::Result<ExitCode> {
    a.check()?;
    // On Ctrl-C the benchmark future is dropped: the hog's guard kills its processes.
    tokio::select! {
        r = bench(config, a) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; the CPU hog was stopped"),
    }
}

async fn bench(mut config: Config, a: VerdictsBenchArgs) -> anyhow::Result<ExitCode> {
    let dir = super::demo::in_process(&mut config, a.out.clone(), "bench-verdicts")?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let default_model = config.verdict.judging_for("latency_ms", "").name().to_string();
    println!(
        "trackiq bench verdicts · data {} · {cores} cores · {}×{} f64 matmul, {} (A) vs {} (B) per iteration · {} iterations per run",
        dir.display(),
        a.size,
        a.size,
        a.reps_a,
        a.reps_b,
        a.iterations
    );
    let stack = Stack::start(&config).await?;
    stack.wait_ready(Duration::from_secs(60)).await?;
    let mut verdicts = Verdicts::start(&stack);
    println!("embedded Kafka-API broker on {} · processors running", stack.brokers());

    let mut load = report::Load { start: loadavg(), hog_end: None, end: String::new(), hog: None };
    let bar = ProgressBar::new((a.a_runs + a.b_runs) as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg}").expect("valid template"));
    let identity = RunIdentity {
        workload: "verdicts-bench".into(),
        workload_type: "compute".into(),
        backend: Some(format!("matmul-{}", a.size)),
        git_commit: Some("verdicts-bench".into()),
        ..Default::default()
    };
    let opts = BenchOptions::in_process(Stop::Iterations(a.iterations));
    let hog_window = a.hog_window();
    let mut hog: Option<Hog> = None;
    let mut runs: Vec<RunRecord> = Vec::with_capacity(a.a_runs + a.b_runs);
    for i in 1..=a.a_runs + a.b_runs {
        let is_b = i > a.a_runs;
        let phase = match hog_window {
            _ if is_b => Phase::B,
            None => Phase::Before,
            Some((from, _)) if i < from => Phase::Before,
            Some((_, to)) if i <= to => Phase::Hog,
            Some(_) => Phase::After,
        };
        if phase == Phase::Hog && hog.is_none() {
            hog = Some(Hog::start(a.hog_procs())?);
        }
        let label = if is_b { format!("B{:02}", i - a.a_runs) } else { format!("A{i:02}") };
        let mut id = identity.clone();
        id.version_tag = Some(label.clone());
        let mut w = Repeated::new(a.size, if is_b { a.reps_b } else { a.reps_a });
        let out = run_bench(&stack.bus, &id, &mut w, &opts).await?;
        if out.failures > 0 {
            bail!("run {label} ({}): {} of {} iterations failed", out.run_id, out.failures, out.iterations);
        }
        let v = verdicts.wait_for(&stack, &out.run_id, a.verdict_timeout).await?;
        tracing::info!(run = %label, run_id = %out.run_id, severity = v.severity.as_str(), "verdict");
        bar.set_message(format!("{label}{} → {}", if phase == Phase::Hog { " (hog)" } else { "" }, v.severity.as_str()));
        bar.inc(1);
        runs.push(RunRecord { label, phase, live: v.severity, summary: v.summary });
        if phase == Phase::Hog && hog_window.is_some_and(|(_, to)| to == i) {
            load.hog_end = Some(loadavg());
            if let Some(h) = hog.take() {
                load.hog = Some(h.stop().await?);
            }
        }
    }
    bar.finish_and_clear();
    load.end = loadavg();
    verdicts.stop().await;
    stack.stop().await?;

    println!();
    report::print_load(&runs, &load);
    println!();
    report::print_live(&runs, &default_model);
    println!();
    let code = offline(&config, &a, &runs, &default_model)?;
    if a.simulate_series > 0 {
        println!();
        report::print_simulation(&config.verdict, a.simulate_series);
    }
    let data = format!("file://{}", dir.display());
    println!("data: {} · try: {}", dir.display(), super::hint::over_data(&data, &["sql", "SELECT run_id, version_tag, metric, value, severity FROM verdicts WHERE kind = 'metric' ORDER BY evaluated_at"]));
    Ok(code)
}

/// Offline re-judging of the live runs' summaries: the live configuration (must agree), then
/// every model, A/A and detection trials.
fn offline(config: &Config, a: &VerdictsBenchArgs, runs: &[RunRecord], default_model: &str) -> anyhow::Result<ExitCode> {
    let live_cfg = &config.verdict;
    let all: Vec<_> = runs.iter().map(|r| r.summary.clone()).collect();
    let offline = trials::judge_in_order(live_cfg, &all);
    let agree = report::print_agreement(runs, &offline);

    let mut models = vec![(format!("default ({default_model})"), live_cfg.clone())];
    models.extend(trials::MODELS.iter().map(|&(name, model, warn, block)| (name.to_string(), trials::with_model(live_cfg, model, warn, block))));
    let cuts = trials::cuts(a.a_runs, a.first_cut(), a.hog_window());
    let a_sum = &all[..a.a_runs];
    let b_sum = &all[a.a_runs..];
    let hog_mask: Vec<bool> = runs[..a.a_runs].iter().map(|r| r.phase == Phase::Hog).collect();
    let per_model = cuts.len() * (a.b_runs + 1 - a.within);
    println!();
    println!(
        "offline: {} models × {} trials (cuts {:?} × B starts 1..={}), each judged fresh with Baselines::judge",
        models.len(),
        per_model,
        cuts,
        a.b_runs + 1 - a.within
    );
    let bar = ProgressBar::new((models.len() * per_model) as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} trials {msg} ({eta})").expect("valid template"));
    let tick = || bar.inc(1);
    let t0 = std::time::Instant::now();
    let results = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = models
                .iter()
                .map(|(name, cfg)| {
                    let (hog_mask, cuts, tick, all) = (&hog_mask, &cuts, &tick, &all);
                    scope.spawn(move || {
                        // Trials judge only the figures a run's severity depends on, when that
                        // gives the very same severities on the whole sequence (it should).
                        let trimmed: Vec<_> = all.iter().map(|s| trials::decisive_only(cfg, s)).collect();
                        let same = trials::judge_in_order(cfg, &trimmed) == trials::judge_in_order(cfg, all);
                        if !same {
                            tracing::warn!(model = %name, "judging only the decisive figures changed a severity; trials use the full summaries");
                        }
                        let (ta, tb) = if same { trimmed.split_at(a.a_runs) } else { (a_sum, b_sum) };
                        trials::evaluate(name, cfg, trials::Runs { a: ta, hog: hog_mask, b: tb }, cuts, a.within, tick)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a trial thread panicked")).collect::<Vec<_>>()
        })
    });
    bar.finish_and_clear();
    tracing::info!(seconds = t0.elapsed().as_secs_f64(), "offline judging done");
    report::print_models(&results, a.within);
    println!(
        "A/A: the {} A runs judged in order ({} under the CPU hog); detection: A runs up to each cut, then {} consecutive B runs (+{:.0} % work)",
        a.a_runs,
        hog_mask.iter().filter(|h| **h).count(),
        a.within,
        (a.reps_b as f64 / a.reps_a as f64 - 1.0) * 100.0
    );
    Ok(if agree { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

//! `trackiq cluster`: distributed-training health with real collectives between real
//! processes (run, worker, bench, scaling).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_infra::secret::{Secret, SecretSource};
use trackiq_producers::cluster::auth::ClusterSecret;
use trackiq_producers::cluster::coordinator::{ClusterOptions, ClusterReport, run_cluster};
use trackiq_producers::cluster::faults::FaultSpec;
use trackiq_producers::cluster::model::Shape;
use trackiq_producers::cluster::nccl::parse_size_range;
use trackiq_producers::cluster::protocol::{Job, SweepConfig, TrainConfig};
use trackiq_stats::scaling::scaling_efficiency;
use trackiq_producers::cluster::worker::{WorkerOptions, run_worker};
use trackiq_producers::emitter::{Batching, RunEmitter};
use trackiq_producers::identity::run_started;
use trackiq_schemas::{RunStatus, Sample};

use super::identity::IdentityArgs;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Data-parallel training on N local worker processes: real gradients, ring all-reduce over TCP, per-step per-rank events.
    Run(RunArgs),
    /// One rank of a run whose coordinator is elsewhere (multi-host runs use the same code).
    Worker(WorkerArgs),
    /// Collective sweep like nccl-tests all_reduce_perf: time, algbw, busbw per message size.
    Bench(SweepArgs),
    /// Runs the training at several world sizes and reports scaling efficiency.
    Scaling(ScalingArgs),
}

/// Coordinator settings shared by run, bench and scaling.
#[derive(Debug, Clone, Args)]
pub struct CoordinatorArgs {
    /// Address the coordinator listens on for workers (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    coordinator_listen: String,
    /// Wait for remote workers instead of launching them on this host.
    #[arg(long)]
    remote_workers: bool,
    /// A rank without heartbeat this long, or that keeps its peers waiting this long in an all-reduce, has failed.
    #[arg(long, default_value = "5s", value_parser = super::spelling::seconds)]
    failure_timeout: Duration,
    /// Time between worker heartbeats.
    #[arg(long, default_value = "100ms", value_parser = super::spelling::millis)]
    heartbeat: Duration,
    #[command(flatten)]
    secret: SecretArgs,
}

/// The run's shared secret, which the coordinator, the workers and the ring peers prove to
/// each other before trusting a byte (HMAC challenge-response; see SECURITY.md).
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Environment variable holding the run's shared secret (at least 16 bytes, e.g. `openssl rand -hex 32`). Required when a listener is not on loopback.
    #[arg(long, value_name = "VAR", conflicts_with = "secret_file")]
    secret_env: Option<String>,
    /// File holding the run's shared secret (a trailing newline is ignored), e.g. a mounted Kubernetes secret.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<std::path::PathBuf>,
}

impl SecretArgs {
    /// The secret, read now; errors name the variable or file, never the value.
    fn load(&self) -> anyhow::Result<Option<ClusterSecret>> {
        let source = match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => SecretSource::Env(var.clone()),
            (None, Some(path)) => SecretSource::File(path.clone()),
            (None, None) => return Ok(None),
        };
        let secret = Secret::read("cluster", "secret", &source)?;
        Ok(Some(ClusterSecret::new(secret.expose().to_string()).map_err(anyhow::Error::msg)?))
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Training steps.
    #[arg(long, default_value_t = 50)]
    steps: u64,
    /// Gradient size in MiB (f32), the payload of every all-reduce.
    #[arg(long, default_value_t = 1.0)]
    grad_mib: f64,
    /// Seed of the synthetic data and the teacher model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// SGD learning rate (stable up to about 2 / (1 + 256 / (batch size × workers))).
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f32,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Worker processes (ranks).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[command(flatten)]
    train: TrainArgs,
    /// Fault to inject: slow-rank:R:50ms@S, kill-rank:R@S, net-delay:R:20ms@S, stall:R@S (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
    #[command(flatten)]
    coordinator: CoordinatorArgs,
    #[command(flatten)]
    identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// This worker's rank, from 0.
    #[arg(long)]
    rank: usize,
    /// Number of ranks.
    #[arg(long)]
    world: usize,
    /// Coordinator address host:port.
    #[arg(long)]
    coordinator: String,
    /// Address to accept ring peers on (default: the interface that reaches the coordinator).
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// The run to join, as the coordinator printed it: a coordinator of another run is refused.
    #[arg(long)]
    run_id: Option<String>,
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Worker processes (ranks).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Message sizes MIN..MAX, doubling (nccl-tests -b MIN -e MAX -f 2).
    #[arg(long, default_value = "8B..64MiB")]
    sizes: String,
    /// Timed iterations per size (nccl-tests -n).
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Warm-up iterations per size (nccl-tests -w).
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    #[command(flatten)]
    coordinator: CoordinatorArgs,
    #[command(flatten)]
    identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct ScalingArgs {
    /// World sizes to run, comma-separated; must include 1.
    #[arg(long, default_value = "1,2,4", value_delimiter = ',')]
    world_sizes: Vec<usize>,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    coordinator: CoordinatorArgs,
    #[command(flatten)]
    identity: IdentityArgs,
}

fn options(c: &CoordinatorArgs, workers: usize) -> anyhow::Result<ClusterOptions> {
    Ok(ClusterOptions {
        workers,
        listen: c.coordinator_listen.clone(),
        spawn_local: !c.remote_workers,
        worker_exe: None,
        failure_timeout: c.failure_timeout,
        rendezvous_timeout: Duration::from_secs(60),
        secret: c.secret.load()?,
    })
}

/// Samples per rank per step when `--batch-size` does not say.
pub(super) const DEFAULT_BATCH: usize = 32;

fn train_config(t: &TrainArgs, batch: usize, faults: Vec<FaultSpec>, c: &CoordinatorArgs) -> anyhow::Result<TrainConfig> {
    anyhow::ensure!(t.grad_mib > 0.0 && t.grad_mib.is_finite(), "--grad-mib must be a positive number, not {}", t.grad_mib);
    Ok(TrainConfig {
        steps: t.steps,
        grad_bytes: (t.grad_mib * 1024.0 * 1024.0) as u64,
        batch,
        seed: t.seed,
        learning_rate: t.learning_rate,
        faults,
        collective_timeout_ms: c.failure_timeout.as_millis() as u64,
        heartbeat_ms: c.heartbeat.as_millis() as u64,
    })
}

async fn train_once(config: &Config, t: &TrainArgs, faults: Vec<FaultSpec>, c: &CoordinatorArgs, identity: &IdentityArgs, workers: usize) -> anyhow::Result<ClusterReport> {
    let batch = identity.batch_or(DEFAULT_BATCH)?;
    let cfg = train_config(t, batch, faults, c)?;
    let shape = Shape::for_gradient(cfg.grad_bytes, cfg.batch);
    let mut id = identity.to_identity(&format!("linear-sgd-{}x{}", shape.d_out, shape.d_in), "training-cluster")?;
    id.batch_size.get_or_insert(batch as i64);
    id.precision.get_or_insert_with(|| "fp32".into());
    id.backend.get_or_insert_with(|| "cpu-tcp-ring-allreduce".into());
    id.steps.get_or_insert(t.steps as i64);
    id.labels.entry("world_size".into()).or_insert_with(|| workers.to_string());
    let run = run_started("trackiq-cluster", &id);
    let bus = Bus::new(config.bus.clone());
    Ok(run_cluster(&bus, run, Job::Train(cfg), &options(c, workers)?).await?)
}

fn print_training(r: &ClusterReport) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["rank", "steps", "compute ms", "all-reduce ms", "busbw GB/s", "last loss"]);
    for (rank, s) in r.ranks.iter().enumerate() {
        t.add_row([
            rank.to_string(),
            s.steps.to_string(),
            format!("{:.2}", s.compute_ms),
            format!("{:.2}", s.allreduce_ms),
            format!("{:.3}", s.busbw_gbps),
            s.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        ]);
    }
    println!("run {} · {} workers · {} steps completed", r.run_id, r.world, r.steps_completed);
    println!("{t}");
    if let (Some(first), Some(last)) = (r.loss.first(), r.loss.last()) {
        println!("loss {first:.4} -> {last:.4} · all-reduce equals the serial sum within {:.1e} (relative), bit-identical on every rank", r.max_sum_error);
    }
    if let Some(s) = r.samples_per_sec {
        println!("throughput {s:.1} samples/s");
    }
    for f in &r.faults {
        println!("fault injected: {f}");
    }
}

fn outcome(r: &ClusterReport) -> ExitCode {
    match (&r.status, &r.error) {
        (RunStatus::Completed, _) => ExitCode::SUCCESS,
        (_, e) => {
            eprintln!("run {} failed: {}", r.run_id, e.as_deref().unwrap_or("unknown error"));
            ExitCode::FAILURE
        }
    }
}

pub async fn run(config: Config, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Worker(a) => {
            let secret = a.secret.load()?;
            run_worker(WorkerOptions { rank: a.rank, world: a.world, coordinator: a.coordinator, bind: a.bind, run_id: a.run_id, secret }).await?;
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Run(a) => {
            let faults = a.faults.iter().map(|f| f.parse::<FaultSpec>()).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let r = train_once(&config, &a.train, faults, &a.coordinator, &a.identity, a.workers).await?;
            print_training(&r);
            Ok(outcome(&r))
        }
        ClusterCommand::Bench(a) => {
            let sizes = parse_size_range(&a.sizes).map_err(anyhow::Error::msg)?;
            let cfg = SweepConfig { sizes, warmup_iters: a.warmup, iters: a.iterations.max(1), collective_timeout_ms: a.coordinator.failure_timeout.as_millis() as u64, heartbeat_ms: a.coordinator.heartbeat.as_millis() as u64 };
            let mut id = a.identity.to_identity("all_reduce_perf", "collective")?;
            id.backend.get_or_insert_with(|| "cpu-tcp-ring-allreduce".into());
            id.precision.get_or_insert_with(|| "fp32".into());
            id.labels.entry("world_size".into()).or_insert_with(|| a.workers.to_string());
            let run = run_started("trackiq-cluster-bench", &id);
            let bus = Bus::new(config.bus.clone());
            let r = run_cluster(&bus, run, Job::Sweep(cfg), &options(&a.coordinator, a.workers)?).await?;
            print_sweep(&r);
            Ok(outcome(&r))
        }
        ClusterCommand::Scaling(a) => scaling(config, a).await,
    }
}

fn print_sweep(r: &ClusterReport) {
    println!("run {} · all-reduce sum, float, {} ranks", r.run_id, r.world);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["size (B)", "count", "time (us)", "algbw (GB/s)", "busbw (GB/s)", "in-place time (us)", "algbw (GB/s)", "busbw (GB/s)", "#wrong"]);
    for row in &r.sweep.rows {
        t.add_row([
            row.size_bytes.to_string(),
            row.count.to_string(),
            format!("{:.1}", row.out_time_us),
            format!("{:.3}", row.out_algbw),
            format!("{:.3}", row.out_busbw),
            format!("{:.1}", row.in_time_us),
            format!("{:.3}", row.in_algbw),
            format!("{:.3}", row.in_busbw),
            row.wrong.to_string(),
        ]);
    }
    println!("{t}");
    if let Some(avg) = r.sweep.avg_busbw {
        println!("avg bus bandwidth: {avg:.4} GB/s");
    }
}

async fn scaling(config: Config, a: ScalingArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.world_sizes.contains(&1), "--world-sizes must include 1: efficiency is relative to one worker");
    let mut points = Vec::new();
    for &n in &a.world_sizes {
        let r = train_once(&config, &a.train, Vec::new(), &a.coordinator, &a.identity, n).await?;
        anyhow::ensure!(r.status == RunStatus::Completed, "the {n}-worker run failed: {}", r.error.unwrap_or_default());
        let thr = r.samples_per_sec.context("a run without timed steps")?;
        println!("{n} workers: {thr:.1} samples/s (run {})", r.run_id);
        points.push((n, thr));
    }
    let eff = scaling_efficiency(&points).context("no 1-worker run")?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["workers", "samples/s", "ideal samples/s", "scaling efficiency %"]);
    let base = points.iter().find(|(n, _)| *n == 1).map(|p| p.1).unwrap_or_default();
    for &(n, e) in &eff {
        let thr = points.iter().find(|(m, _)| *m == n).map(|p| p.1).unwrap_or_default();
        t.add_row([n.to_string(), format!("{thr:.1}"), format!("{:.1}", base * n as f64), format!("{e:.1}")]);
    }
    println!("{t}");
    // The efficiencies join the history as one run of their own, so they get trends and verdicts.
    let mut id = a.identity.to_identity("scaling:linear-sgd", "scaling")?;
    id.batch_size.get_or_insert(a.identity.batch_or(DEFAULT_BATCH)? as i64);
    id.labels.entry("world_sizes".into()).or_insert_with(|| a.world_sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    let bus = Bus::new(config.bus.clone());
    let mut emitter = RunEmitter::start(&bus, run_started("trackiq-cluster-scaling", &id), Batching::default()).await?;
    let now = trackiq_schemas::now_us();
    for &(n, e) in &eff {
        emitter.push(Sample { ts_us: now, metric: format!("scaling_efficiency_pct.n{n}"), value: e, unit: "%".into(), rank: None, step: None }).await?;
    }
    for &(n, thr) in &points {
        emitter.push(Sample { ts_us: now, metric: format!("samples_per_sec.n{n}"), value: thr, unit: "items/s".into(), rank: None, step: None }).await?;
    }
    let f = emitter.finish(RunStatus::Completed, None).await?;
    println!("scaling run {}", f.run_id);
    Ok(ExitCode::SUCCESS)
}

//! The coordinator of a cluster run: rendezvous, heartbeats, failure decisions, and the one
//! Kafka producer of the run. Workers (local child processes, or `trackiq cluster worker`
//! on other hosts) stream their measurements here; each becomes a sample with its rank and
//! step. A rank is declared failed when its heartbeats stop for `failure_timeout`, or when
//! its peers time out in an all-reduce waiting for it; the run then ends `failed` with
//! "rank R failed at step S", and everything measured so far has already been emitted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::{info, warn};
use trackiq_infra::Bus;
use trackiq_schemas::{RunStarted, RunStatus, Sample, now_us};

use super::admission::{Joined, admit};
use super::auth::ClusterSecret;
use super::nccl::{NcclResult, NcclRow, algbw_gbps, allreduce_busbw};
use super::protocol::{CoordinatorMsg, Job, StepReport, SweepRow, WorkerMsg, send};
use crate::emitter::{Batching, RunEmitter};
use crate::error::ProducerError;

/// How the coordinator runs.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub workers: usize,
    /// Address the coordinator listens on for workers.
    pub listen: String,
    /// Launch the workers as child processes of this binary on this host.
    pub spawn_local: bool,
    /// Program to launch workers with (default: this executable).
    pub worker_exe: Option<PathBuf>,
    /// A rank silent (no heartbeat) this long is declared failed.
    pub failure_timeout: Duration,
    /// How long to wait for every worker to join.
    pub rendezvous_timeout: Duration,
    /// The run's shared secret: workers and ring peers must prove it. Required when
    /// `listen` is not a loopback address.
    pub secret: Option<ClusterSecret>,
}

/// Environment variable through which local workers receive the secret (never an argument:
/// arguments are visible to every user of the host).
pub const SECRET_ENV: &str = "TRACKIQ_CLUSTER_SECRET";

/// Per-rank means over the completed steps.
#[derive(Debug, Clone, Default)]
pub struct RankStats {
    pub steps: u64,
    pub compute_ms: f64,
    pub allreduce_ms: f64,
    pub busbw_gbps: f64,
    pub last_loss: Option<f64>,
}

impl RankStats {
    /// Folds one step into the running means.
    fn add(&mut self, s: &StepReport, busbw_gbps: f64) {
        self.steps += 1;
        let k = self.steps as f64;
        self.compute_ms += (s.compute_ms - self.compute_ms) / k;
        self.allreduce_ms += (s.allreduce_ms - self.allreduce_ms) / k;
        self.busbw_gbps += (busbw_gbps - self.busbw_gbps) / k;
        self.last_loss = Some(s.loss);
    }
}

/// The samples of one rank's step (compute time went out when the compute ended), and its busbw.
fn step_samples(s: &StepReport, rank: usize, world: usize) -> ([Sample; 7], f64) {
    let ar_ts = s.ts_us + (s.compute_ms * 1e3) as i64;
    let secs = s.allreduce_ms / 1e3;
    let alg = if secs > 0.0 { algbw_gbps(s.bytes as f64, secs) } else { 0.0 };
    let bus = allreduce_busbw(alg, world);
    let samples = [
        sample(ar_ts, "cluster.allreduce_ms", s.allreduce_ms, "ms", rank, s.step),
        sample(s.ts_us, "cluster.step_ms", s.step_ms, "ms", rank, s.step),
        sample(ar_ts, "cluster.allreduce_bytes", s.bytes as f64, "B", rank, s.step),
        sample(ar_ts, "cluster.link_ms", s.link_ms, "ms", rank, s.step),
        sample(ar_ts, "cluster.algbw_gbps", alg, "GB/s", rank, s.step),
        sample(ar_ts, "cluster.busbw_gbps", bus, "GB/s", rank, s.step),
        sample(s.ts_us, "cluster.loss", s.loss, "loss", rank, s.step),
    ];
    (samples, bus)
}

/// What the coordinator saw.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub run_id: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub world: usize,
    /// Steps every rank completed.
    pub steps_completed: u64,
    /// Training samples of all ranks per second, from the first step start to the last step end.
    pub samples_per_sec: Option<f64>,
    pub ranks: Vec<RankStats>,
    /// Mean loss over ranks per completed step.
    pub loss: Vec<f64>,
    /// Largest |ring sum − serial sum| / Σ|terms| over the probes of every step.
    pub max_sum_error: f64,
    pub faults: Vec<String>,
    pub sweep: NcclResult,
}

struct Rank {
    writer: Option<OwnedWriteHalf>,
    last_heartbeat: Instant,
    step: u64,
    /// Last step whose compute phase ended.
    computed: Option<u64>,
    done: bool,
    blocked: Option<(u64, String)>,
}

enum Event {
    Msg(usize, WorkerMsg),
    Closed(usize, Option<String>),
}

fn sample(ts_us: i64, metric: &str, value: f64, unit: &str, rank: usize, step: u64) -> Sample {
    Sample { ts_us, metric: metric.into(), value, unit: unit.into(), rank: Some(rank as i32), step: Some(step as i64) }
}

/// Launches the worker processes of a local run.
fn spawn_workers(opts: &ClusterOptions, addr: &str, run_id: &str) -> Result<Vec<Child>, ProducerError> {
    let exe = match &opts.worker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| ProducerError::Cluster(format!("cannot find this executable: {e}")))?,
    };
    (0..opts.workers)
        .map(|r| {
            let mut cmd = Command::new(&exe);
            cmd.args(["cluster", "worker", "--rank", &r.to_string(), "--world", &opts.workers.to_string(), "--coordinator", addr, "--run-id", run_id]);
            match &opts.secret {
                Some(secret) => cmd.args(["--secret-env", SECRET_ENV]).env(SECRET_ENV, secret.expose()),
                None => cmd.env_remove(SECRET_ENV),
            };
            cmd.stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| ProducerError::Spawn { program: exe.display().to_string(), source: e })
        })
        .collect()
}

/// Runs one cluster job as one run: `run` is its identity, `job` what the workers do.
pub async fn run_cluster(bus: &Bus, run: RunStarted, job: Job, opts: &ClusterOptions) -> Result<ClusterReport, ProducerError> {
    let n = opts.workers;
    if n == 0 {
        return Err(ProducerError::Usage("--workers must be at least 1".into()));
    }
    if let Job::Train(cfg) = &job
        && let Some(f) = cfg.faults.iter().find(|f| f.rank >= n)
    {
        return Err(ProducerError::Usage(format!("--fault {f}: rank {} does not exist with {n} workers", f.rank)));
    }
    let listener = TcpListener::bind(&opts.listen).await.map_err(|e| ProducerError::Cluster(format!("cannot listen on {}: {e}", opts.listen)))?;
    let local = listener.local_addr().map_err(|e| ProducerError::Cluster(e.to_string()))?;
    if !local.ip().is_loopback() && opts.secret.is_none() {
        return Err(ProducerError::Usage(format!(
            "the coordinator would listen on {local}, reachable from other hosts: give the run a shared secret (--secret-env VAR or --secret-file PATH; workers need the same)"
        )));
    }
    let addr = local.to_string();
    let mut emitter = RunEmitter::start(bus, run, Batching { max_samples: 500, linger: Duration::from_millis(100) }).await?;
    let run_id = emitter.run().run_id.clone();
    let children = if opts.spawn_local { spawn_workers(opts, &addr, &run_id)? } else { Vec::new() };
    if !opts.spawn_local {
        let secret = if opts.secret.is_some() { " --secret-env VAR (the same secret)" } else { "" };
        // Listening on every interface: workers need this host's name, not 0.0.0.0.
        let reach = if local.ip().is_unspecified() { format!("THIS-HOST:{}", local.port()) } else { addr.clone() };
        eprintln!("coordinator listening on {addr}: start `trackiq cluster worker --rank R --world {n} --coordinator {reach} --run-id {run_id}{secret}` on each host");
    }
    let mut report = ClusterReport {
        run_id,
        status: RunStatus::Completed,
        error: None,
        world: n,
        steps_completed: 0,
        samples_per_sec: None,
        ranks: vec![RankStats::default(); n],
        loss: Vec::new(),
        max_sum_error: 0.0,
        faults: Vec::new(),
        sweep: NcclResult::default(),
    };

    // Rendezvous: every rank proves the secret and says hello with its ring address.
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let (joins_tx, mut joins) = mpsc::unbounded_channel::<Joined>();
    let mut ranks: Vec<Option<Rank>> = (0..n).map(|_| None).collect();
    let mut peers = vec![String::new(); n];
    let deadline = tokio::time::Instant::from_std(Instant::now() + opts.rendezvous_timeout);
    let mut joined = 0;
    while joined < n {
        let j = tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, from)) = accepted {
                    tokio::spawn(admit(stream, from, opts.secret.clone(), report.run_id.clone(), joins_tx.clone()));
                }
                continue;
            }
            Some(j) = joins.recv() => j,
            _ = tokio::time::sleep_until(deadline) => {
                let missing: Vec<usize> = (0..n).filter(|r| ranks[*r].is_none()).collect();
                let error = format!("rendezvous: ranks {missing:?} did not join within {:.0} s", opts.rendezvous_timeout.as_secs_f64());
                return finish(emitter, report, children, ranks, RunStatus::Failed, Some(error)).await;
            }
        };
        let Joined { from, rank, world, ring_addr, mut reader, writer: wr } = j;
        if world != n || rank >= n || ranks[rank].is_some() {
            let error = format!("rendezvous: {from} joined as rank {rank} of {world}, but this run has {n} workers{}", if rank < n && ranks[rank].is_some() { " and that rank already joined" } else { "" });
            return finish(emitter, report, children, ranks, RunStatus::Failed, Some(error)).await;
        }
        peers[rank] = ring_addr;
        ranks[rank] = Some(Rank { writer: Some(wr), last_heartbeat: Instant::now(), step: 0, computed: None, done: false, blocked: None });
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match reader.next::<WorkerMsg>().await {
                    Ok(Some(m)) => {
                        if tx.send(Event::Msg(rank, m)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return drop(tx.send(Event::Closed(rank, None))),
                    Err(e) => return drop(tx.send(Event::Closed(rank, Some(e.to_string())))),
                }
            }
        });
        joined += 1;
    }
    // Nobody else joins this run: later connections are refused by the kernel.
    drop(listener);
    info!(workers = n, %addr, "every rank joined; starting");
    for r in ranks.iter_mut().flatten() {
        let w = r.writer.as_mut().expect("set at hello");
        send(w, &CoordinatorMsg::Start { peers: peers.clone(), job: job.clone() }).await.map_err(|e| ProducerError::Cluster(format!("sending the job: {e}")))?;
        r.last_heartbeat = Instant::now();
    }

    let mut steps: BTreeMap<u64, Vec<Option<StepReport>>> = BTreeMap::new();
    let mut sweep: BTreeMap<u64, Vec<Option<SweepRow>>> = BTreeMap::new();
    let mut span: Option<(i64, i64)> = None;
    let batch = match &job {
        Job::Train(c) => c.batch as f64,
        Job::Sweep(_) => 0.0,
    };
    let bar = indicatif::ProgressBar::new(match &job {
        Job::Train(c) => c.steps,
        Job::Sweep(c) => c.sizes.len() as u64,
    });
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg}").expect("valid template"));
    bar.set_message(if matches!(job, Job::Train(_)) { "steps" } else { "sizes" });
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (status, error) = loop {
        if ranks.iter().flatten().all(|r| r.done) {
            break (RunStatus::Completed, None);
        }
        tokio::select! {
            ev = rx.recv() => match ev {
                None => break (RunStatus::Failed, Some("every worker connection closed".into())),
                Some(Event::Closed(rank, why)) => {
                    let r = ranks[rank].as_mut().expect("joined");
                    if !r.done {
                        warn!(rank, reason = why.as_deref().unwrap_or("closed"), "worker connection lost");
                        // The process is gone (or its host unreachable): evidence the detectors
                        // act on at once, rather than after a heartbeat timeout.
                        emitter.push(sample(now_us(), "cluster.worker_exit", 1.0, "event", rank, r.step)).await?;
                        emitter.flush().await?;
                    }
                    r.writer = None;
                }
                Some(Event::Msg(rank, msg)) => {
                    let r = ranks[rank].as_mut().expect("joined");
                    r.last_heartbeat = Instant::now();
                    match msg {
                        WorkerMsg::Heartbeat { step, ts_us } => {
                            r.step = r.step.max(step);
                            emitter.push(sample(ts_us, "cluster.heartbeat", step as f64, "event", rank, step)).await?;
                        }
                        WorkerMsg::Computed { step, ts_us, compute_ms } => {
                            r.computed = Some(step);
                            emitter.push(sample(ts_us, "cluster.compute_ms", compute_ms, "ms", rank, step)).await?;
                        }
                        WorkerMsg::Fault { kind, step, ts_us, delay_ms } => {
                            report.faults.push(format!("{} on rank {rank} at step {step}", kind.as_str()));
                            emitter.push(sample(ts_us, &kind.metric(), delay_ms, "event", rank, step)).await?;
                            // The fault event must be durable before a worker that is about to die goes.
                            emitter.flush().await?;
                            if let Some(w) = r.writer.as_mut() {
                                let _ = send(w, &CoordinatorMsg::FaultAck).await;
                            }
                        }
                        WorkerMsg::StepDone(s) => {
                            r.step = r.step.max(s.step + 1);
                            let end = s.ts_us + (s.step_ms * 1e3) as i64;
                            span = Some(span.map_or((s.ts_us, end), |(a, b)| (a.min(s.ts_us), b.max(end))));
                            let (samples, busbw) = step_samples(&s, rank, n);
                            for smp in samples {
                                emitter.push(smp).await?;
                            }
                            report.ranks[rank].add(&s, busbw);
                            let step = s.step;
                            let slot = steps.entry(step).or_insert_with(|| vec![None; n]);
                            slot[rank] = Some(s);
                            if slot.iter().all(Option::is_some) {
                                let all: Vec<StepReport> = steps.remove(&step).expect("present").into_iter().flatten().collect();
                                match verify_step(&all) {
                                    Ok(err) => {
                                        report.max_sum_error = report.max_sum_error.max(err);
                                        report.steps_completed += 1;
                                        bar.inc(1);
                                        report.loss.push(all.iter().map(|s| s.loss).sum::<f64>() / n as f64);
                                        let ts = all.iter().map(|s| s.ts_us).min().unwrap_or_default();
                                        emitter.push(Sample { ts_us: ts, metric: "cluster.allreduce_error".into(), value: err, unit: "ratio".into(), rank: None, step: Some(step as i64) }).await?;
                                    }
                                    Err(e) => break (RunStatus::Failed, Some(e)),
                                }
                            }
                        }
                        WorkerMsg::SweepRow(row) => {
                            let size = row.size;
                            let slot = sweep.entry(size).or_insert_with(|| vec![None; n]);
                            slot[rank] = Some(row);
                            if slot.iter().all(Option::is_some) {
                                let rows: Vec<SweepRow> = sweep.remove(&size).expect("present").into_iter().flatten().collect();
                                report.sweep.rows.push(sweep_row(&rows, n));
                                bar.inc(1);
                            }
                        }
                        WorkerMsg::Blocked { step, reason } => {
                            warn!(rank, step, %reason, "rank blocked in a collective");
                            r.blocked = Some((step, reason));
                            // Peers waited a full collective timeout: the least advanced rank that is
                            // not itself waiting (still computing, or gone) is the culprit.
                            let progress = |x: &Rank| 2 * x.step + u64::from(x.computed == Some(x.step));
                            let culprit = (0..n)
                                .filter_map(|q| ranks[q].as_ref().map(|x| (q, x)))
                                .filter(|(_, x)| x.blocked.is_none() && !x.done)
                                .min_by_key(|(_, x)| progress(x));
                            if let Some((q, x)) = culprit {
                                let waited = opts.failure_timeout.as_secs_f64();
                                let heard = x.last_heartbeat.elapsed().as_secs_f64();
                                let why = if x.writer.is_none() || heard > waited / 2.0 {
                                    format!("process exited or unreachable (connection {}, last heartbeat {heard:.1} s ago)", if x.writer.is_none() { "closed" } else { "open" })
                                } else {
                                    format!("hung: heartbeats continue, but no progress while its peers waited {waited:.1} s in the all-reduce")
                                };
                                break (RunStatus::Failed, Some(format!("rank {q} failed at step {}: {why}", x.step)));
                            }
                            if ranks.iter().flatten().all(|x| x.blocked.is_some() || x.done) {
                                break (RunStatus::Failed, Some(format!("every rank is blocked in the all-reduce of step {step}")));
                            }
                        }
                        WorkerMsg::Done => r.done = true,
                        WorkerMsg::Hello { .. } => {}
                    }
                }
            },
            _ = tick.tick() => {
                emitter.flush_due().await?;
                let silent = ranks.iter().enumerate().filter_map(|(q, r)| r.as_ref().map(|r| (q, r))).find(|(_, r)| !r.done && r.last_heartbeat.elapsed() > opts.failure_timeout);
                if let Some((q, r)) = silent {
                    break (RunStatus::Failed, Some(format!("rank {q} failed at step {}: no heartbeat for {:.1} s (process exited or unreachable)", r.step, r.last_heartbeat.elapsed().as_secs_f64())));
                }
            }
        }
    };
    bar.finish_and_clear();
    if let Some((a, b)) = span
        && b > a
        && batch > 0.0
    {
        let items: f64 = report.ranks.iter().map(|r| r.steps as f64 * batch).sum();
        report.samples_per_sec = Some(items / ((b - a) as f64 / 1e6));
    }
    if !report.sweep.rows.is_empty() {
        let rows = &report.sweep.rows;
        report.sweep.avg_busbw = Some(rows.iter().map(|r| r.out_busbw + r.in_busbw).sum::<f64>() / (2 * rows.len()) as f64);
        for s in super::nccl::to_samples(&report.sweep, trackiq_schemas::now_us()) {
            emitter.push(s).await?;
        }
        if let Some(bad) = report.sweep.rows.iter().find(|r| r.wrong > 0) {
            let error = format!("all-reduce of {} B gave {} wrong elements", bad.size_bytes, bad.wrong);
            return finish(emitter, report, children, ranks, RunStatus::Failed, Some(error)).await;
        }
    }
    finish(emitter, report, children, ranks, status, error).await
}

/// Checks one step across ranks: bit-identical sums, equal to the serial sum of the local
/// gradients at the probes. Returns the largest relative probe error.
fn verify_step(all: &[StepReport]) -> Result<f64, String> {
    let first = &all[0];
    if let Some(other) = all.iter().find(|s| s.checksum != first.checksum) {
        return Err(format!("all-reduce results differ between ranks at step {} (checksums {:016x} vs {:016x})", first.step, first.checksum, other.checksum));
    }
    let mut worst = 0.0f64;
    for i in 0..first.probes_reduced.len() {
        let serial: f64 = all.iter().map(|s| s.probes_local[i] as f64).sum();
        let scale: f64 = all.iter().map(|s| (s.probes_local[i] as f64).abs()).sum::<f64>().max(f64::MIN_POSITIVE);
        worst = worst.max((first.probes_reduced[i] as f64 - serial).abs() / scale);
    }
    // f32 addition of N terms in another order: a few ulps of the magnitude.
    if worst > 1e-5 {
        return Err(format!("all-reduce sum differs from the serial sum at step {} by {worst:.2e} (relative)", first.step));
    }
    Ok(worst)
}

/// One nccl-tests style row from every rank's timings: the slowest rank sets the time.
fn sweep_row(rows: &[SweepRow], world: usize) -> NcclRow {
    let size = rows[0].size;
    let out_us = rows.iter().map(|r| r.out_of_place_us).fold(0.0, f64::max);
    let in_us = rows.iter().map(|r| r.in_place_us).fold(0.0, f64::max);
    let out_alg = algbw_gbps(size as f64, out_us / 1e6);
    let in_alg = algbw_gbps(size as f64, in_us / 1e6);
    NcclRow {
        size_bytes: size,
        count: rows[0].count,
        dtype: "float".into(),
        redop: "sum".into(),
        out_time_us: out_us,
        out_algbw: out_alg,
        out_busbw: allreduce_busbw(out_alg, world),
        in_time_us: in_us,
        in_algbw: in_alg,
        in_busbw: allreduce_busbw(in_alg, world),
        wrong: rows.iter().map(|r| r.wrong).sum(),
    }
}

async fn finish(
    emitter: RunEmitter,
    mut report: ClusterReport,
    mut children: Vec<Child>,
    mut ranks: Vec<Option<Rank>>,
    status: RunStatus,
    error: Option<String>,
) -> Result<ClusterReport, ProducerError> {
    if let Some(e) = &error {
        warn!(error = %e, "cluster run failed");
        for r in ranks.iter_mut().flatten() {
            if let Some(w) = r.writer.as_mut() {
                let _ = send(w, &CoordinatorMsg::Abort { reason: e.clone() }).await;
            }
        }
    }
    // Workers exit on their own (done or aborted); a hung or unreachable one is killed.
    let grace = Instant::now() + Duration::from_secs(if error.is_some() { 1 } else { 10 });
    for c in children.iter_mut() {
        if tokio::time::timeout_at(grace.into(), c.wait()).await.is_err() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
    report.status = status;
    report.error = error.clone();
    emitter.finish(status, error).await?;
    Ok(report)
}

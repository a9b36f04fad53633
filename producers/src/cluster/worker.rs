//! `trackiq cluster worker`: one rank. It connects to the coordinator, joins the TCP ring,
//! then runs the job: data-parallel training ([`super::model`]) or a collective sweep. A
//! separate task sends heartbeats, so a rank that hangs in its step stays visibly alive.
//! Faults assigned to this rank are performed here, for real.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tracing::warn;
use trackiq_schemas::now_us;

use super::faults::FaultKind;
use super::model::{Replica, Shape, checksum, probe_indices};
use super::protocol::{CoordinatorMsg, Job, Reader, StepReport, SweepConfig, SweepRow, TrainConfig, WorkerMsg, send};
use super::auth::{self, Channel, ClusterSecret};
use super::ring::{Ring, RingAuth};
use crate::error::ProducerError;

/// Where this rank sits and whom it reports to.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub rank: usize,
    pub world: usize,
    /// Coordinator address host:port.
    pub coordinator: String,
    /// Address the ring listener binds; default: the interface that reaches the coordinator.
    pub bind: Option<IpAddr>,
    /// The run this worker joins: a coordinator of another run is refused.
    pub run_id: Option<String>,
    /// The run's shared secret (required when the ring listener is not on loopback).
    pub secret: Option<ClusterSecret>,
}

/// Exit status of a worker aborted by the coordinator.
pub const EXIT_ABORTED: i32 = 3;
/// Exit status of a worker whose coordinator went away.
pub const EXIT_ORPHANED: i32 = 4;
/// Probes per step compared with the serial sum.
const PROBES: usize = 16;

struct Blocked {
    step: u64,
    reason: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn io(what: &str, e: impl std::fmt::Display) -> ProducerError {
    ProducerError::Cluster(format!("{what}: {e}"))
}

async fn connect(addr: &str, patience: Duration) -> Result<TcpStream, ProducerError> {
    let until = Instant::now() + patience;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= until => return Err(io(&format!("cannot reach the coordinator at {addr}"), e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs one rank until its job ends. On a failed collective it reports itself blocked and
/// keeps heartbeating until the coordinator aborts it (the process then exits with [`EXIT_ABORTED`]).
pub async fn run_worker(opts: WorkerOptions) -> Result<(), ProducerError> {
    let (rank, world) = (opts.rank, opts.world);
    if rank >= world {
        return Err(ProducerError::Usage(format!("--rank {rank} is not below --world {world}")));
    }
    let mut stream = connect(&opts.coordinator, Duration::from_secs(15)).await?;
    stream.set_nodelay(true).map_err(|e| io("socket option", e))?;
    let ip = match opts.bind {
        Some(ip) => ip,
        None => stream.local_addr().map_err(|e| io("local address", e))?.ip(),
    };
    if !ip.is_loopback() && opts.secret.is_none() {
        return Err(ProducerError::Usage(format!(
            "rank {rank}: the ring listener would be on {ip}, reachable from other hosts: give the run's shared secret (--secret-env VAR or --secret-file PATH)"
        )));
    }
    let run_id = auth::connect(&mut stream, opts.secret.as_ref(), Channel::Control, opts.run_id.as_deref())
        .await
        .map_err(|e| ProducerError::Cluster(format!("rank {rank}: coordinator at {}: {e}", opts.coordinator)))?;
    let listener = TcpListener::bind((ip, 0)).await.map_err(|e| io(&format!("cannot listen for ring peers on {ip}"), e))?;
    let ring_addr = listener.local_addr().map_err(|e| io("ring address", e))?.to_string();
    let (rd, mut wr) = stream.into_split();
    let mut reader = Reader::new(rd);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    send(&mut wr, &WorkerMsg::Hello { rank, world, ring_addr, pid: std::process::id(), host }).await.map_err(|e| io("hello", e))?;
    let (peers, job) = match reader.next::<CoordinatorMsg>().await.map_err(|e| io("waiting for the job", e))? {
        Some(CoordinatorMsg::Start { peers, job }) => (peers, job),
        Some(CoordinatorMsg::Abort { reason }) => return Err(ProducerError::Cluster(format!("rank {rank}: aborted before start: {reason}"))),
        other => return Err(ProducerError::Cluster(format!("rank {rank}: expected the job, got {other:?}"))),
    };
    if peers.len() != world {
        return Err(ProducerError::Cluster(format!("rank {rank}: {} peers for a world of {world}", peers.len())));
    }
    let right: SocketAddr = peers[(rank + 1) % world].parse().map_err(|e| io("peer address", e))?;
    let mut ring = tokio::time::timeout(Duration::from_secs(30), Ring::connect(rank, world, listener, right, RingAuth { secret: opts.secret.clone(), run_id }))
        .await
        .map_err(|_| ProducerError::Cluster(format!("rank {rank}: ring neighbours did not connect within 30 s")))?
        .map_err(|e| io("joining the ring", e))?;

    let heartbeat_ms = match &job {
        Job::Train(c) => c.heartbeat_ms,
        Job::Sweep(c) => c.heartbeat_ms,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkerMsg>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let last = m == WorkerMsg::Done;
            if send(&mut wr, &m).await.is_err() || last {
                break;
            }
        }
    });
    let finished = Arc::new(AtomicBool::new(false));
    let ack = Arc::new(Notify::new());
    {
        let (finished, ack) = (finished.clone(), ack.clone());
        tokio::spawn(async move {
            loop {
                match reader.next::<CoordinatorMsg>().await {
                    Ok(Some(CoordinatorMsg::FaultAck)) => ack.notify_one(),
                    Ok(Some(CoordinatorMsg::Abort { reason })) => {
                        eprintln!("rank {rank}: aborted by the coordinator: {reason}");
                        std::process::exit(EXIT_ABORTED);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) if finished.load(Ordering::SeqCst) => return,
                    Ok(None) | Err(_) => {
                        eprintln!("rank {rank}: the coordinator went away");
                        std::process::exit(EXIT_ORPHANED);
                    }
                }
            }
        });
    }
    let progress = Arc::new(AtomicU64::new(0));
    {
        let (tx, progress) = (tx.clone(), progress.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(heartbeat_ms.max(1)));
            loop {
                tick.tick().await;
                if tx.send(WorkerMsg::Heartbeat { step: progress.load(Ordering::SeqCst), ts_us: now_us() }).is_err() {
                    break;
                }
            }
        });
    }
    let outcome = match job {
        Job::Train(cfg) => train(&mut ring, &cfg, &tx, &progress, &ack).await,
        Job::Sweep(cfg) => sweep(&mut ring, &cfg, &tx, &progress).await,
    };
    match outcome {
        Ok(()) => {
            finished.store(true, Ordering::SeqCst);
            let _ = tx.send(WorkerMsg::Done);
            let _ = writer.await;
            Ok(())
        }
        Err(Blocked { step, reason }) => {
            warn!(rank, step, %reason, "blocked; waiting for the coordinator");
            let _ = tx.send(WorkerMsg::Blocked { step, reason });
            // Heartbeats go on; the coordinator aborts this process. Should it never do so,
            // give up after a minute rather than linger.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Err(ProducerError::Cluster(format!("rank {rank}: blocked at step {step} and never aborted")))
        }
    }
}

/// Kills this process with SIGKILL: no destructor, no goodbye on the sockets beyond what
/// the kernel does for a dead process.
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught; this is only reached if kill(2) failed.
    std::process::abort()
}

async fn reduce(ring: &mut Ring, data: &mut [f32], timeout: Duration, step: u64) -> Result<(), Blocked> {
    let rank = ring.rank;
    let began = Instant::now();
    match tokio::time::timeout(timeout, ring.all_reduce_sum(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            // A broken connection surfaces at once; a real collective would hang until its
            // timeout, and so do we: the run ends the same way whatever the failure.
            tokio::time::sleep_until((began + timeout).into()).await;
            Err(Blocked { step, reason: format!("rank {rank}: all-reduce of step {step} failed after {:.1} s: {e}", timeout.as_secs_f64()) })
        }
        Err(_) => Err(Blocked { step, reason: format!("rank {rank}: all-reduce of step {step} timed out after {:.1} s", timeout.as_secs_f64()) }),
    }
}

async fn train(ring: &mut Ring, cfg: &TrainConfig, tx: &mpsc::UnboundedSender<WorkerMsg>, progress: &AtomicU64, ack: &Notify) -> Result<(), Blocked> {
    let (rank, world) = (ring.rank, ring.world);
    let shape = Shape::for_gradient(cfg.grad_bytes, cfg.batch);
    let mut replica = Replica::new(shape, cfg.seed);
    let probes = probe_indices(shape.params(), PROBES);
    let bytes = (shape.params() * 4) as u64;
    let timeout = Duration::from_millis(cfg.collective_timeout_ms);
    let active = |kind: FaultKind, step: u64| cfg.faults.iter().find(|f| f.kind == kind && f.active(rank, step));
    for step in 0..cfg.steps {
        progress.store(step, Ordering::SeqCst);
        let start = Instant::now();
        let ts_us = now_us();
        for f in cfg.faults.iter().filter(|f| f.rank == rank && f.step == step) {
            let _ = tx.send(WorkerMsg::Fault { kind: f.kind, step, ts_us: now_us(), delay_ms: f.delay_ms });
            if f.kind == FaultKind::KillRank {
                // Wait until the coordinator has the fault event, so that it is not lost with us.
                let _ = tokio::time::timeout(Duration::from_secs(2), ack.notified()).await;
                kill_self();
            }
        }
        let loss = replica.compute(rank, step);
        if let Some(f) = active(FaultKind::SlowRank, step) {
            tokio::time::sleep(Duration::from_secs_f64(f.delay_ms / 1e3)).await;
        }
        if active(FaultKind::Stall, step).is_some() {
            // Hung: no progress ever again, while the heartbeat task keeps the rank "alive".
            std::future::pending::<()>().await;
        }
        let compute_ms = ms(start.elapsed());
        let _ = tx.send(WorkerMsg::Computed { step, ts_us, compute_ms });
        ring.send_delay = active(FaultKind::NetDelay, step).map(|f| Duration::from_secs_f64(f.delay_ms / 1e3));
        let mut sum = replica.grad.clone();
        let (sent_before, link_before, t1) = (ring.bytes_sent, ring.link_us, Instant::now());
        reduce(ring, &mut sum, timeout, step).await?;
        let allreduce_ms = ms(t1.elapsed());
        replica.apply(&sum, world, cfg.learning_rate);
        let report = StepReport {
            step,
            ts_us,
            compute_ms,
            allreduce_ms,
            step_ms: ms(start.elapsed()),
            bytes,
            bytes_sent: ring.bytes_sent - sent_before,
            link_ms: (ring.link_us - link_before) as f64 / 1e3,
            loss,
            checksum: checksum(&sum),
            probes_local: probes.iter().map(|&i| replica.grad[i]).collect(),
            probes_reduced: probes.iter().map(|&i| sum[i]).collect(),
        };
        let _ = tx.send(WorkerMsg::StepDone(report));
    }
    ring.flush().await.map_err(|e| Blocked { step: cfg.steps, reason: format!("rank {rank}: delivering the last messages of a delayed link failed: {e}") })?;
    Ok(())
}

/// Input of `rank` in a sweep: small integers, so every sum is exact and checkable.
fn sweep_input(i: usize, rank: usize) -> f32 {
    ((i * 7 + rank * 13) % 29) as f32 - 14.0
}

async fn sweep(ring: &mut Ring, cfg: &SweepConfig, tx: &mpsc::UnboundedSender<WorkerMsg>, progress: &AtomicU64) -> Result<(), Blocked> {
    let (rank, world) = (ring.rank, ring.world);
    let timeout = Duration::from_millis(cfg.collective_timeout_ms);
    for (n, &size) in cfg.sizes.iter().enumerate() {
        progress.store(n as u64, Ordering::SeqCst);
        let count = (size / 4).max(1) as usize;
        let input: Vec<f32> = (0..count).map(|i| sweep_input(i, rank)).collect();
        let expected: Vec<f32> = (0..count).map(|i| (0..world).map(|r| sweep_input(i, r)).sum()).collect();
        let mut out = vec![0.0f32; count];
        for _ in 0..cfg.warmup_iters {
            out.copy_from_slice(&input);
            reduce(ring, &mut out, timeout, n as u64).await?;
        }
        // Out of place: the input stays untouched and the sum lands in a second buffer.
        reduce(ring, &mut [0.0], timeout, n as u64).await?; // barrier
        let t = Instant::now();
        for _ in 0..cfg.iters {
            out.copy_from_slice(&input);
            reduce(ring, &mut out, timeout, n as u64).await?;
        }
        let out_of_place_us = t.elapsed().as_secs_f64() * 1e6 / cfg.iters.max(1) as f64;
        let mut wrong = out.iter().zip(&expected).filter(|(a, b)| a != b).count() as u64;
        // In place: the buffer is reduced onto itself.
        let mut buf = input.clone();
        reduce(ring, &mut [0.0], timeout, n as u64).await?;
        let t = Instant::now();
        for _ in 0..cfg.iters {
            reduce(ring, &mut buf, timeout, n as u64).await?;
        }
        let in_place_us = t.elapsed().as_secs_f64() * 1e6 / cfg.iters.max(1) as f64;
        buf.copy_from_slice(&input);
        reduce(ring, &mut buf, timeout, n as u64).await?;
        wrong += buf.iter().zip(&expected).filter(|(a, b)| a != b).count() as u64;
        let _ = tx.send(WorkerMsg::SweepRow(SweepRow { size: (count * 4) as u64, count: count as u64, out_of_place_us, in_place_us, wrong }));
    }
    Ok(())
}

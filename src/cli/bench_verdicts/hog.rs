//! A real CPU hog: processes that spin on the cores, detached from trackiq, so that they are
//! *other* processes as a noisy neighbour is (`host_other_cpu_percent` counts trackiq and its
//! descendants as the benchmark's own CPU). They are killed when stopped or dropped (an error,
//! Ctrl-C), and each also exits by itself once trackiq is gone, so a `kill -9` of trackiq
//! leaves nothing spinning. And what the machine's load was.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Starts, in the background, a subshell that spins in shell arithmetic (pure user-space CPU)
/// and prints its pid; the starting shell then exits, so the spinner is re-parented away from
/// trackiq. Every 100 000 additions (tens of ms) it checks that trackiq, `$1`, is still alive,
/// and exits when it is not.
const SPIN: &str = r#"p=$1; ( while kill -0 "$p" 2>/dev/null; do n=0; while [ "$n" -lt 100000 ]; do n=$((n+1)); done; done ) </dev/null >/dev/null 2>&1 & echo $!"#;

pub struct Hog {
    pids: Vec<u32>,
    started: Instant,
}

/// What the hog consumed.
#[derive(Debug, Clone, Copy)]
pub struct HogUsage {
    pub procs: usize,
    pub wall: Duration,
    /// CPU time the hog's processes got (from /proc/<pid>/schedstat), when readable.
    pub cpu: Option<Duration>,
}

impl HogUsage {
    /// Cores the hog kept busy on average.
    pub fn cores(&self) -> Option<f64> {
        self.cpu.map(|c| c.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }
}

/// Whether `pid` is still a running process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(|state| state != "Z" && state != "X")))
        .unwrap_or(false)
}

impl Hog {
    /// Starts `procs` spinning processes.
    pub fn start(procs: usize) -> anyhow::Result<Hog> {
        let parent = std::process::id().to_string();
        let mut hog = Hog { pids: Vec::with_capacity(procs), started: Instant::now() };
        for _ in 0..procs {
            // On failure `hog` is dropped, which kills the ones already started.
            let out = Command::new("sh")
                .args(["-c", SPIN, "trackiq-cpu-hog", &parent])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .context("starting a CPU hog process (sh)")?;
            let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().with_context(|| format!("the CPU hog's shell printed no pid ({})", out.status))?;
            hog.pids.push(pid);
        }
        tracing::info!(procs, pids = ?hog.pids, "CPU hog started");
        Ok(hog)
    }

    fn cpu(&self) -> Option<Duration> {
        let mut ns = 0u64;
        for pid in &self.pids {
            let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(ns))
    }

    /// Stops the hog: what it used, read just before its processes are killed; returns once
    /// they are gone (at most 10 s).
    pub async fn stop(mut self) -> anyhow::Result<HogUsage> {
        let usage = HogUsage { procs: self.pids.len(), wall: self.started.elapsed(), cpu: self.cpu() };
        let pids = std::mem::take(&mut self.pids);
        kill(&pids);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| alive(p)) {
            if Instant::now() > deadline {
                bail!("CPU hog processes {pids:?} still running 10 s after SIGKILL");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(?usage, "CPU hog stopped");
        Ok(usage)
    }
}

/// SIGKILL to `pids` (not our children: `kill(1)`, as trackiq links no libc binding).
fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let status = Command::new("kill").arg("-KILL").args(pids.iter().map(u32::to_string)).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(?pids, "could not kill every CPU hog process; each exits by itself when trackiq does");
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        kill(&self.pids);
    }
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg says.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "n/a".into())
}

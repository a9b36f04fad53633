//! Built-in workloads: a command run as a child process, and a CPU matrix multiply.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use crate::bench::Workload;
use crate::error::ProducerError;

/// Per-iteration CPU time (user + system) of the benchmarked program, in ms.
pub const CHILD_CPU_METRIC: &str = "child_cpu_ms";
/// Per-iteration peak resident memory of the benchmarked program, in MiB, when it exceeds the
/// harness' own peak (see [`run_child`] for why a smaller one cannot be told apart).
pub const CHILD_PEAK_RSS_METRIC: &str = "child_peak_rss_mib";

/// `ru_maxrss` units per MiB: Linux reports KiB (macOS would report bytes).
const MAXRSS_PER_MIB: f64 = if cfg!(target_os = "macos") { 1_048_576.0 } else { 1024.0 };

/// `trackiq bench cmd -- program args...`: one child process per iteration.
///
/// Besides the latency, each iteration reports what that child itself used
/// ([`CHILD_CPU_METRIC`], [`CHILD_PEAK_RSS_METRIC`]): the harness' own figures (telemetry's
/// `process_rss_mib`) say nothing about the program being benchmarked.
#[derive(Debug, Clone)]
pub struct CmdWorkload {
    pub program: String,
    pub args: Vec<String>,
    /// Working directory of the child (default: this process's).
    pub dir: Option<std::path::PathBuf>,
    /// What the last iteration's child used, handed out by `take_samples`.
    last: Vec<(&'static str, f64, &'static str)>,
}

impl CmdWorkload {
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        CmdWorkload { program: program.into(), args, dir: None, last: Vec::new() }
    }

    /// The same command run in `dir` (a relative program path with a `/` is taken from there).
    pub fn in_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        let dir = dir.into();
        if self.program.contains('/') && std::path::Path::new(&self.program).is_relative() {
            self.program = dir.join(&self.program).to_string_lossy().into_owned();
        }
        self.dir = Some(dir);
        self
    }
}

/// How a child ended and what it used.
#[derive(Debug, Clone, Copy)]
struct Reaped {
    status: ExitStatus,
    cpu_ms: f64,
    /// None when the figure could be the harness' rather than the program's.
    peak_rss_mib: Option<f64>,
}

/// Peak resident memory (VmHWM) of this process, the harness, in MiB.
fn harness_peak_rss_mib() -> Option<f64> {
    crate::telemetry::host::kb_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM:")
}

fn timeval_ms(t: libc::timeval) -> f64 {
    t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3
}

/// Runs `program` to its end and reaps it with `wait4`, which returns the resource usage of
/// that one child (and of the descendants it reaped itself). `getrusage(RUSAGE_CHILDREN)`
/// would sum every child of this process, mixing iterations that run concurrently.
/// Blocks until the child exits: call it from a blocking thread.
///
/// `ru_maxrss` also keeps the peak of the image the child replaced at `exec`, which is this
/// process (vfork shares its memory, fork copies its page counts): `sh -c 'exit 0'` spawned
/// by a 200 MiB harness reports ~200 MiB. A peak above the harness' own (read after the exec,
/// so it bounds what was inherited) is the program's; one below is left out, not guessed.
fn run_child(program: &str, args: &[String], dir: Option<&std::path::Path>) -> io::Result<Reaped> {
    // A std child, not a tokio one: tokio's reaper would race this `wait4` for the status.
    let mut command = std::process::Command::new(program);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // `spawn` returns once the child has exec'd: the inherited peak is at most this.
    let harness_peak = harness_peak_rss_mib();
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (dropping a std `Child` neither waits
        // nor kills); `status` and `usage` are valid for writes for the whole call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(Reaped {
        status: ExitStatus::from_raw(status),
        cpu_ms: timeval_ms(usage.ru_utime) + timeval_ms(usage.ru_stime),
        peak_rss_mib: Some(usage.ru_maxrss as f64 / MAXRSS_PER_MIB).filter(|peak| harness_peak.is_some_and(|h| *peak > h)),
    })
}

impl Workload for CmdWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-cmd"
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        let (program, args, dir) = (self.program.clone(), self.args.clone(), self.dir.clone());
        // `wait4` blocks its thread until the child ends: keep it off the runtime's workers.
        let reaped = tokio::task::spawn_blocking(move || run_child(&program, &args, dir.as_deref()))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|source| ProducerError::Spawn { program: self.program.clone(), source })?;
        self.last = vec![(CHILD_CPU_METRIC, reaped.cpu_ms, "ms")];
        self.last.extend(reaped.peak_rss_mib.map(|mib| (CHILD_PEAK_RSS_METRIC, mib, "MiB")));
        Ok((!reaped.status.success()).then(|| reaped.status.to_string()))
    }

    fn take_samples(&mut self) -> Vec<(&'static str, f64, &'static str)> {
        std::mem::take(&mut self.last)
    }
}

/// Dense `n × n` f64 matrix multiply, C = A·B, naive triple loop: a real, deterministic CPU
/// workload whose cost grows as n³.
#[derive(Debug, Clone)]
pub struct MatmulWorkload {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    /// Sum of C after the last iteration, so the work cannot be optimised away.
    pub checksum: f64,
}

impl MatmulWorkload {
    pub fn new(n: usize) -> Self {
        let a = (0..n * n).map(|i| ((i * 7 + 3) % 11) as f64 / 11.0).collect();
        let b = (0..n * n).map(|i| ((i * 5 + 1) % 13) as f64 / 13.0).collect();
        MatmulWorkload { n, a, b, c: vec![0.0; n * n], checksum: 0.0 }
    }

    fn multiply(&mut self) {
        let n = self.n;
        for i in 0..n {
            for j in 0..n {
                let mut acc = 0.0;
                for k in 0..n {
                    acc += self.a[i * n + k] * self.b[k * n + j];
                }
                self.c[i * n + j] = acc;
            }
        }
        self.checksum = std::hint::black_box(self.c.iter().sum());
    }
}

impl Workload for MatmulWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-matmul"
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        self.multiply();
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_is_a_real_product() {
        let mut w = MatmulWorkload::new(3);
        w.multiply();
        // c[0][0] = sum_k a[0][k] * b[k][0]
        let expect: f64 = (0..3).map(|k| w.a[k] * w.b[k * 3]).sum();
        assert_eq!(w.c[0], expect);
        assert!(w.checksum > 0.0);
    }

    fn sh(script: &str) -> CmdWorkload {
        CmdWorkload::new("sh", vec!["-c".into(), script.into()])
    }

    /// One iteration; its samples by name.
    async fn once(w: &mut CmdWorkload) -> (Option<String>, std::collections::HashMap<&'static str, f64>) {
        let failure = w.iterate().await.expect("the child runs");
        (failure, w.take_samples().into_iter().map(|(m, v, _)| (m, v)).collect())
    }

    /// A child that allocates and fills a buffer of 512 MiB (dd's block): more than this test
    /// process' peak (tests run side by side), which a smaller child could not be told from.
    fn dd_512_mib() -> CmdWorkload {
        sh(&format!("dd if=/dev/zero of=/dev/null bs={} count=1 2>/dev/null", 512 << 20))
    }

    #[tokio::test]
    async fn the_childs_own_memory_and_cpu_are_measured() {
        let (failure, s) = once(&mut dd_512_mib()).await;
        assert_eq!(failure, None);
        assert!(s[CHILD_PEAK_RSS_METRIC] >= 500.0, "{s:?}");
        // A shell busy loop: user time, all of it the child's.
        let (failure, s) = once(&mut sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")).await;
        assert_eq!(failure, None);
        assert!(s[CHILD_CPU_METRIC] > 0.0, "{s:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_iterations_each_get_their_own_childs_usage() {
        let (mut big, mut small) = (dd_512_mib(), sh("exit 0"));
        let ((_, b), (_, s)) = tokio::join!(once(&mut big), once(&mut small));
        assert!(b[CHILD_PEAK_RSS_METRIC] >= 500.0, "{b:?}");
        assert!(s.get(CHILD_PEAK_RSS_METRIC).is_none_or(|mib| *mib < 100.0), "the small child is not charged the big one's memory: {s:?}");
    }

    #[tokio::test]
    async fn the_harness_memory_is_not_reported_as_the_childs() {
        // 64 MiB more resident in this process: a child exec'd from it inherits that peak in
        // ru_maxrss, though `exit 0` itself needs a few hundred KiB.
        let ballast = vec![1u8; 64 << 20];
        let (failure, s) = once(&mut sh("exit 0")).await;
        std::hint::black_box(&ballast);
        assert_eq!(failure, None);
        assert_eq!(s.get(CHILD_PEAK_RSS_METRIC), None, "{s:?}");
        assert!(s.contains_key(CHILD_CPU_METRIC));
    }

    #[tokio::test]
    async fn a_failing_child_is_a_failed_iteration_and_a_missing_program_an_error() {
        let (failure, s) = once(&mut sh("exit 3")).await;
        assert_eq!(failure.as_deref(), Some("exit status: 3"));
        assert!(s.contains_key(CHILD_CPU_METRIC), "a failed child still ran: {s:?}");
        let err = CmdWorkload::new("/nonexistent/trackiq-no-such-program", vec![]).iterate().await.unwrap_err();
        assert!(matches!(err, ProducerError::Spawn { .. }), "{err}");
    }
}

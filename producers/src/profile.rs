//! Call-stack profiles of a benchmarked program (`bench cmd --profile`): Linux `perf record -g`
//! samples the child's stacks (software clock, so it works in VMs without PMU access), `perf
//! script` prints them, and inferno folds them into `frame;frame;leaf count` lines — the
//! format flame graphs are drawn from. Counts are perf's sample periods (ns of the CPU clock),
//! so a share of the counts is a share of the CPU time sampled. Profiling runs are extra runs of the command after the
//! timed ones: perf's overhead never reaches a measured iteration.
//!
//! Shares of functions and what moved between two profiles: `trackiq_stats::profiles`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use inferno::collapse::Collapse;
use inferno::collapse::perf::{Folder, Options};

use crate::error::ProducerError;

/// Sampling frequency (Hz): an odd number, so sampling does not beat with periodic work.
pub const SAMPLE_HZ: u32 = 997;

pub use trackiq_stats::profiles::{Folded, ShareChange, biggest_changes, merge, parse, shares, to_text};

/// `perf` when it is on PATH and may sample this user's processes; why not otherwise.
pub fn perf() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let exe = std::env::split_paths(&path).map(|d| d.join("perf")).find(|p| p.is_file()).ok_or("perf is not installed (Debian: apt-get install linux-perf)")?;
    let probe = Command::new(&exe).args(["record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"]).stdout(Stdio::null()).stderr(Stdio::piped()).output();
    match probe {
        Ok(o) if o.status.success() => Ok(exe),
        Ok(o) => Err(format!("perf may not sample here ({}): see /proc/sys/kernel/perf_event_paranoid", String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("no reason given"))),
        Err(e) => Err(format!("perf does not run: {e}")),
    }
}

/// Runs `program args` `runs` times under `perf record -g` in `dir` and folds every sample.
pub fn record(perf: &Path, program: &str, args: &[String], dir: Option<&Path>, runs: u32) -> Result<Folded, ProducerError> {
    let scratch = std::env::temp_dir().join(format!("trackiq-perf-{}-{}.data", std::process::id(), uuid::Uuid::now_v7().simple()));
    let mut folded = Folded::new();
    for _ in 0..runs.max(1) {
        let mut rec = Command::new(perf);
        rec.args(["record", "-q", "-g", "-e", "cpu-clock", "-F", &SAMPLE_HZ.to_string(), "-o"]).arg(&scratch).arg("--").arg(program).args(args);
        if let Some(d) = dir {
            rec.current_dir(d);
        }
        let out = rec.stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| ProducerError::Profile(format!("running perf record: {e}")))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&scratch);
            return Err(ProducerError::Profile(format!("perf record of `{program}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
        }
        let script = Command::new(perf).args(["script", "-i"]).arg(&scratch).stderr(Stdio::null()).output().map_err(|e| ProducerError::Profile(format!("running perf script: {e}")))?;
        let _ = std::fs::remove_file(&scratch);
        let mut lines = Vec::new();
        Folder::from(Options::default()).collapse(&script.stdout[..], &mut lines).map_err(|e| ProducerError::Profile(format!("folding perf's stacks: {e}")))?;
        merge(&mut folded, &parse(&String::from_utf8_lossy(&lines)));
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_program_is_sampled_where_perf_may_sample() {
        let Ok(perf) = perf() else { return };
        let f = record(&perf, "sh", &["-c".into(), "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done".into()], None, 1).unwrap();
        assert!(f.values().sum::<u64>() > 5, "{f:?}");
    }
}

//! The machine's speed, measured: a fixed piece of CPU work timed by the harness at a run's
//! start and end. On a virtual machine the hypervisor can slow every instruction by 5–10 %
//! for minutes (measured here after a CPU-heavy period: every iteration of an unchanged
//! workload 8–10 % slower, no steal time and no other process visible in the guest). Such a
//! slowdown moves the probe as much as the benchmark, so the verdict can tell it apart from
//! a change in the benchmarked code, which does not move the probe.

use std::time::Instant;

/// Metric of one probe's time, in ms.
pub const PROBE_METRIC: &str = "host_speed_probe_ms";

/// Xorshift steps of one probe: about 1 ms in a release build (20 ms in a debug one). The
/// state stays in registers, so the probe measures the core, not memory.
const PROBE_STEPS: u64 = 1_000_000;

/// Probes taken at each end of a run; the verdict judges their median.
pub const PROBES_PER_END: usize = 5;

/// CPU time this thread has used, in ms (`CLOCK_THREAD_CPUTIME_ID`); wall time where the
/// clock cannot be read.
fn thread_cpu_ms(wall: Instant) -> f64 {
    // SAFETY: `timespec` is plain integers (all zeroes is valid); the call writes only `ts`.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
        ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
    } else {
        wall.elapsed().as_secs_f64() * 1e3
    }
}

/// Times one probe, in ms of this thread's CPU time: preemption by other threads and
/// processes (the pipeline itself, a busy neighbour) does not count — `host_other_cpu_percent`
/// measures that — while a slower core (hypervisor, thermal, frequency) does.
pub fn probe_ms() -> f64 {
    let origin = Instant::now();
    let t0 = thread_cpu_ms(origin);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..std::hint::black_box(PROBE_STEPS) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    thread_cpu_ms(origin) - t0
}

/// `PROBES_PER_END` probes, in ms each.
pub fn probes() -> Vec<f64> {
    (0..PROBES_PER_END).map(|_| probe_ms()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_of_a_run_end_is_timed() {
        let p = probes();
        assert_eq!(p.len(), PROBES_PER_END);
        assert!(p.iter().all(|ms| ms.is_finite() && *ms > 0.0), "{p:?}");
    }
}

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

/// Times one probe, in ms.
pub fn probe_ms() -> f64 {
    let t0 = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..std::hint::black_box(PROBE_STEPS) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    t0.elapsed().as_secs_f64() * 1e3
}

/// `PROBES_PER_END` probes, in ms each.
pub fn probes() -> Vec<f64> {
    (0..PROBES_PER_END).map(|_| probe_ms()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_takes_measurable_time_and_more_steps_take_longer() {
        let p = probes();
        assert_eq!(p.len(), PROBES_PER_END);
        assert!(p.iter().all(|ms| ms.is_finite() && *ms > 0.0), "{p:?}");
    }
}

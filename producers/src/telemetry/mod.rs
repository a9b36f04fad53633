//! Hardware telemetry sampled alongside every benchmark run, every `interval`: the host
//! (CPU utilisation and frequency, memory, RAPL package energy when readable) and each
//! NVIDIA GPU through NVML, loaded at run time (no link-time dependency on the driver).
//! Nothing is ever estimated: a figure that cannot be read is not emitted, and without
//! NVML one line says GPU telemetry is off.
//!
//! Power and energy are emitted only when the work runs on this machine (the sampler's
//! `power` option): for a benchmark of a remote server, this machine's power is the
//! client's, and a performance per watt computed from it would be meaningless.
//!
//! `process_rss_mib` is the resident memory of the trackiq process, the harness; what the
//! benchmarked program itself used comes from the workload (`bench cmd`: `child_peak_rss_mib`).

pub mod gpu;
pub mod host;
pub mod probe;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use trackiq_schemas::Sample;

/// One reading: metric, value, unit, and the GPU index for per-GPU figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub gpu: Option<i32>,
}

/// Readings of this machine's power and energy, the host's (RAPL) and the GPUs' (NVML).
pub const POWER_METRICS: [&str; 4] = ["cpu_package_power_watts", "cpu_package_energy_joules", "gpu_power_watts", "gpu_energy_joules"];

/// Drops the power and energy readings unless `power`: they describe this machine, which is
/// not the one doing the work when the benchmark targets a remote server.
pub fn attributable(readings: &mut Vec<Reading>, power: bool) {
    if !power {
        readings.retain(|r| !POWER_METRICS.contains(&r.metric));
    }
}

impl Reading {
    pub fn into_sample(self, ts_us: i64) -> Sample {
        Sample { ts_us, metric: self.metric.into(), value: self.value, unit: self.unit.into(), rank: self.gpu, step: None }
    }
}

/// A running sampler; its samples arrive on the receiver.
pub struct Sampler {
    task: JoinHandle<()>,
    pub samples: mpsc::UnboundedReceiver<Sample>,
    /// Why GPU telemetry is off, if it is.
    pub gpu_off: Option<String>,
    /// GPU names, for the run's platform.
    pub gpus: Vec<String>,
    pub driver: Option<String>,
}

impl Sampler {
    /// Starts sampling every `interval` (zero: no sampler); `power`: whether this machine's
    /// power and energy are the work's and are emitted (see [`attributable`]).
    pub fn start(interval: Duration, power: bool) -> Option<Sampler> {
        if interval.is_zero() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (gpu, gpu_off) = match gpu::Gpus::open() {
            Ok(g) => (Some(g), None),
            Err(reason) => (None, Some(reason)),
        };
        let gpus = gpu.as_ref().map(|g| g.names()).unwrap_or_default();
        let driver = gpu.as_ref().and_then(|g| g.driver());
        let task = tokio::task::spawn_blocking(move || {
            let mut host = host::Host::new();
            let mut gpu = gpu;
            loop {
                let ts = trackiq_schemas::now_us();
                let mut readings = host.read();
                if let Some(g) = gpu.as_mut() {
                    readings.extend(g.read());
                }
                attributable(&mut readings, power);
                for r in readings {
                    if tx.send(r.into_sample(ts)).is_err() {
                        return;
                    }
                }
                std::thread::sleep(interval);
                if tx.is_closed() {
                    return;
                }
            }
        });
        Some(Sampler { task, samples: rx, gpu_off, gpus, driver })
    }

    /// Samples read so far.
    pub fn drain(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        while let Ok(s) = self.samples.try_recv() {
            out.push(s);
        }
        out
    }

    /// Stops sampling; returns what was read since the last drain.
    pub fn stop(mut self) -> Vec<Sample> {
        let rest = self.drain();
        self.samples.close();
        self.task.abort();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(metric: &'static str, gpu: Option<i32>) -> Reading {
        Reading { metric, value: 1.0, unit: "", gpu }
    }

    #[test]
    fn power_off_drops_power_and_energy_and_keeps_the_rest() {
        let all = vec![
            reading("cpu_utilization_percent", None),
            reading("cpu_package_power_watts", None),
            reading("cpu_package_energy_joules", None),
            reading("memory_used_mib", None),
            reading("gpu_power_watts", Some(0)),
            reading("gpu_energy_joules", Some(0)),
            reading("gpu_temperature_celsius", Some(0)),
        ];
        let mut off = all.clone();
        attributable(&mut off, false);
        let names: Vec<_> = off.iter().map(|r| r.metric).collect();
        assert_eq!(names, ["cpu_utilization_percent", "memory_used_mib", "gpu_temperature_celsius"]);
        let mut on = all.clone();
        attributable(&mut on, true);
        assert_eq!(on, all, "a local workload keeps its power readings");
    }
}

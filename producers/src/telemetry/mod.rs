//! Hardware telemetry sampled alongside every benchmark run, every `interval`: the host
//! (CPU utilisation and frequency, memory, RAPL package energy when readable) and each
//! NVIDIA GPU through NVML, loaded at run time (no link-time dependency on the driver).
//! Nothing is ever estimated: a figure that cannot be read is not emitted, and without
//! NVML one line says GPU telemetry is off.

pub mod gpu;
pub mod host;

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
    /// Starts sampling every `interval` (zero: no sampler).
    pub fn start(interval: Duration) -> Option<Sampler> {
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

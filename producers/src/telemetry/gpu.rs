//! NVIDIA GPU telemetry through NVML, loaded at run time.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};

use super::Reading;

/// Every GPU NVML sees.
pub struct Gpus {
    nvml: Nvml,
    count: u32,
    /// Energy counter (mJ) at the previous reading, per GPU.
    last_energy: Vec<Option<u64>>,
}

impl Gpus {
    /// Loads NVML; the error says why GPU telemetry is off.
    pub fn open() -> Result<Gpus, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML not available ({e})"))?;
        let count = nvml.device_count().map_err(|e| format!("NVML found no devices ({e})"))?;
        if count == 0 {
            return Err("NVML reports no GPU".into());
        }
        Ok(Gpus { nvml, count, last_energy: vec![None; count as usize] })
    }

    pub fn names(&self) -> Vec<String> {
        (0..self.count).filter_map(|i| self.nvml.device_by_index(i).ok()?.name().ok()).collect()
    }

    pub fn driver(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }

    /// One reading of every GPU; a figure a GPU does not support is left out.
    pub fn read(&mut self) -> Vec<Reading> {
        let mut out = Vec::new();
        for i in 0..self.count {
            let Ok(d) = self.nvml.device_by_index(i) else { continue };
            let g = Some(i as i32);
            let mut push = |metric, value: f64, unit| out.push(Reading { metric, value, unit, gpu: g });
            if let Ok(mw) = d.power_usage() {
                push("gpu_power_watts", mw as f64 / 1000.0, "W");
            }
            if let Ok(mj) = d.total_energy_consumption() {
                if let Some(prev) = self.last_energy[i as usize] {
                    push("gpu_energy_joules", mj.saturating_sub(prev) as f64 / 1000.0, "J");
                }
                self.last_energy[i as usize] = Some(mj);
            }
            if let Ok(t) = d.temperature(TemperatureSensor::Gpu) {
                push("gpu_temperature_celsius", t as f64, "C");
            }
            if let Ok(u) = d.utilization_rates() {
                push("gpu_utilization_percent", u.gpu as f64, "%");
                push("gpu_memory_utilization_percent", u.memory as f64, "%");
            }
            if let Ok(m) = d.memory_info() {
                push("gpu_memory_used_mib", m.used as f64 / 1_048_576.0, "MiB");
            }
            if let Ok(c) = d.clock_info(Clock::SM) {
                push("gpu_sm_clock_mhz", c as f64, "MHz");
            }
            if let Ok(c) = d.clock_info(Clock::Memory) {
                push("gpu_memory_clock_mhz", c as f64, "MHz");
            }
            if let Ok(r) = d.current_throttle_reasons() {
                push("gpu_throttle_reasons", r.bits() as f64, "bitmask");
            }
            if let Ok(kb) = d.pcie_throughput(PcieUtilCounter::Send) {
                push("gpu_pcie_tx_kib_per_sec", kb as f64, "KiB/s");
            }
            if let Ok(kb) = d.pcie_throughput(PcieUtilCounter::Receive) {
                push("gpu_pcie_rx_kib_per_sec", kb as f64, "KiB/s");
            }
        }
        out
    }
}

//! Power, energy and efficiency figures of a run from its telemetry summaries.

use std::collections::HashMap;

use trackiq_schemas::{DerivedMetric, MetricSummary};

use super::{ITEMS_METRIC, LATENCY_METRIC};

/// Per-iteration peak resident memory of the benchmarked program (`bench cmd`, from `wait4`).
/// `process_rss_mib` is not used for peak memory: it is the harness' (trackiq's) own.
pub const CHILD_PEAK_RSS_METRIC: &str = "child_peak_rss_mib";

/// Power, energy and efficiency of a run from its telemetry (nothing when none was read).
///
/// Power is the sum over GPUs of each GPU's mean power plus the CPU package's mean power;
/// energy the sum of every energy reading; per-step and per-item energy divide it by the
/// iterations and items; performance per watt is items per second over that power. Power
/// readings are present only where the producer measured the machine doing the work.
/// Peak memory is the benchmarked program's (the largest `child_peak_rss_mib`), when measured.
pub fn energy_figures(metrics: &[MetricSummary], derived: &[DerivedMetric], by_rank: &HashMap<(String, i32), (f64, i64, f64)>) -> Vec<DerivedMetric> {
    let m = |name: &str| metrics.iter().find(|x| x.metric == name);
    let d = |name: &str| derived.iter().find(|x| x.name == name).map(|x| x.value);
    let gpu_power: Option<f64> = {
        let per_gpu: Vec<f64> = by_rank.iter().filter(|((k, _), _)| k == "gpu_power_watts").map(|(_, (sum, n, _))| sum / *n as f64).collect();
        (!per_gpu.is_empty()).then(|| per_gpu.iter().sum())
    };
    let cpu_power = m("cpu_package_power_watts").map(|x| x.mean);
    let power = match (gpu_power, cpu_power) {
        (None, None) => None,
        (g, c) => Some(g.unwrap_or(0.0) + c.unwrap_or(0.0)),
    };
    let energy = ["gpu_energy_joules", "cpu_package_energy_joules"].iter().filter_map(|n| m(n)).map(|x| x.mean * x.count as f64).reduce(|a, b| a + b);
    let iterations = m(LATENCY_METRIC).map(|x| x.count as f64);
    let items = m(ITEMS_METRIC).map(|x| x.mean * x.count as f64).or(iterations);
    let mut out = Vec::new();
    let mut push = |name: &str, value: f64, unit: &str| {
        if value.is_finite() {
            out.push(DerivedMetric { name: name.into(), value, unit: unit.into() });
        }
    };
    if let Some(p) = power {
        push("power_consumption_watts", p, "W");
        if let Some(thr) = d("throughput_samples_per_sec") {
            push("performance_per_watt", thr / p, "items/s/W");
        }
    }
    if let Some(e) = energy {
        push("energy_joules", e, "J");
        if let Some(n) = iterations.filter(|n| *n > 0.0) {
            push("energy_per_step_joules", e / n, "J");
        }
        if let Some(n) = items.filter(|n| *n > 0.0) {
            push("energy_per_item_joules", e / n, "J");
        }
    }
    if let Some(t) = m("gpu_temperature_celsius") {
        push("temperature_celsius", t.mean, "C");
        push("temperature_max_celsius", t.max, "C");
    }
    if let Some(r) = m(CHILD_PEAK_RSS_METRIC) {
        push("peak_memory_mib", r.max, "MiB");
    }
    if let Some(g) = m("gpu_memory_used_mib") {
        push("peak_gpu_memory_mib", g.max, "MiB");
    }
    out
}


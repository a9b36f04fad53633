//! Metric families of the report and the interpretation note of each section.
//!
//! The catalog declares every metric's unit and kind but no family, so the family follows
//! from the declared unit (a watt is power, a MiB memory, a rate throughput); only the LLM
//! serving metrics are named, because their units (ms, tokens/s) are shared with plain
//! latency and throughput. Undeclared metrics (a user's recorded figure) fall back to the
//! unit their summary carries and the catalog's duration heuristic, else land in "Other".

use trackiq_schemas::catalog::{self, MetricKind};
use trackiq_schemas::{DerivedMetric, MetricSummary, RunSummary};

use super::fmt_num;

/// Tail ratio (p99 / p50) above which a latency distribution is called heavy-tailed.
pub const HEAVY_TAIL_RATIO: f64 = 2.0;
/// Coefficient of variation (stdev / mean) above which a latency is called noisy.
pub const NOISY_CV: f64 = 0.10;
/// Mean GPU utilisation (%) below which the GPU mostly waited for work.
pub const GPU_STARVED_PCT: f64 = 50.0;
/// Mean GPU utilisation (%) above which the GPU was the bottleneck.
pub const GPU_SATURATED_PCT: f64 = 90.0;
/// Mean CPU share (%) of other processes above which the host was not quiet.
pub const HOST_BUSY_PCT: f64 = 10.0;
/// GPU temperature (°C) from which consumer and data-centre parts start to throttle clocks.
pub const THERMAL_THROTTLE_C: f64 = 80.0;
/// Relative dip of a clock below its peak that suggests throttling rather than jitter.
pub const CLOCK_DIP_RATIO: f64 = 0.10;
/// Host memory share (%) above which the run risked swapping.
pub const HOST_MEMORY_HIGH_PCT: f64 = 90.0;
/// Share of requests meeting every SLO below which goodput is called low.
pub const GOODPUT_LOW_SHARE: f64 = 0.90;
/// Little's-law concurrency (throughput × mean latency) below which requests ran one at a time.
pub const SERIAL_CONCURRENCY: f64 = 1.2;

/// A section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Times the benchmark measures (iterations, requests, collectives, steps).
    Latency,
    /// Rates and bandwidths.
    Throughput,
    /// LLM serving: TTFT, TPOT, ITL, tokens and goodput.
    Llm,
    /// CPU and GPU busy shares.
    Utilisation,
    /// Power, energy, temperature and clocks.
    Power,
    /// Host and GPU memory.
    Memory,
    /// Everything else (counts, losses, probes, undeclared figures without a known unit).
    Other,
    /// The health figures of a training job: shown in the cluster-health section.
    Cluster,
}

impl Family {
    /// The families with a section of their own, in report order: the benchmark's figures
    /// first, then the machine's state.
    pub const ALL: [Family; 7] = [Family::Latency, Family::Throughput, Family::Llm, Family::Utilisation, Family::Power, Family::Memory, Family::Other];

    /// Section heading.
    pub fn title(self) -> &'static str {
        match self {
            Family::Latency => "Latency",
            Family::Throughput => "Throughput",
            Family::Llm => "LLM serving",
            Family::Utilisation => "Utilisation",
            Family::Power => "Power & thermal",
            Family::Memory => "Memory",
            Family::Other => "Other",
            Family::Cluster => "Cluster health",
        }
    }
}

/// Catalog metrics of LLM serving (vLLM `bench serve` figures).
const LLM_METRICS: &[&str] = &[
    "ttft_ms", "tpot_ms", "itl_ms", "e2el_ms", "output_tokens", "completion_tokens", "tokens_per_sec", "request_throughput_per_sec",
    "goodput_requests_per_sec", "decode_tpt_ms",
];

/// Figures the cluster-health summary derives (processors/src/health/summary.rs); the
/// per-fault `detection_latency_ms.<kind>` figures too, by prefix.
const CLUSTER_FIGURES: &[&str] = &["cluster_samples_per_sec", "comm_overhead_pct", "false_alarms", "faults_missed"];

/// Rate units: throughput (GB/s too: nccl-tests' bandwidth is its throughput).
const RATE_UNITS: &[&str] = &["1/s", "items/s", "requests/s", "tokens/s", "GB/s"];

/// The section a metric belongs to; `unit` is what its summary says, used when undeclared.
pub fn family_of(name: &str, unit: &str) -> Family {
    if CLUSTER_FIGURES.contains(&name) || name.starts_with("detection_latency_ms.") {
        return Family::Cluster;
    }
    let Some(d) = catalog::lookup(name) else {
        // A user's figure: only the unit is known; a duration reads as a latency.
        return match unit {
            _ if catalog::is_duration(name) => Family::Latency,
            u if RATE_UNITS.contains(&u) => Family::Throughput,
            "W" | "J" | "C" => Family::Power,
            "MiB" | "GiB" | "B" => Family::Memory,
            _ => Family::Other,
        };
    };
    if LLM_METRICS.contains(&d.name) {
        return Family::Llm;
    }
    match d.unit {
        // Durations the benchmark measures; a telemetry probe's time is machine context.
        _ if catalog::is_duration(d.name) => if d.kind == MetricKind::Telemetry { Family::Other } else { Family::Latency },
        u if RATE_UNITS.contains(&u) => Family::Throughput,
        "%" if d.name.starts_with("memory") => Family::Memory,
        "%" => Family::Utilisation,
        // Clocks sit with temperature: a dipping clock is how throttling shows.
        "W" | "J" | "C" | "MHz" | "items/s/W" => Family::Power,
        "MiB" => Family::Memory,
        _ => Family::Other,
    }
}

/// The figures of one run, looked up by name in its metrics and derived figures.
pub struct Figures<'a> {
    pub metrics: &'a [MetricSummary],
    pub derived: &'a [DerivedMetric],
}

impl<'a> Figures<'a> {
    /// The figures of a run's summary.
    pub fn of(s: &'a RunSummary) -> Self {
        Figures { metrics: &s.metrics, derived: &s.derived }
    }

    /// The summary of a sampled metric.
    pub fn metric(&self, name: &str) -> Option<&'a MetricSummary> {
        self.metrics.iter().find(|m| m.metric == name)
    }

    /// A figure the aggregator derived.
    pub fn derived(&self, name: &str) -> Option<f64> {
        self.derived.iter().find(|d| d.name == name).map(|d| d.value)
    }

    /// A derived figure, else the mean of the metric of that name (imported runs report
    /// `latency_p99_ms` as a metric, the aggregator derives it).
    pub fn value(&self, name: &str) -> Option<f64> {
        self.derived(name).or_else(|| self.metric(name).map(|m| m.mean))
    }
}

/// The interpretation notes of a section, computed from the run's figures.
pub fn notes(family: Family, f: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    match family {
        Family::Latency => {
            let lat = f.metric("latency_ms").or_else(|| f.metrics.iter().find(|m| family_of(&m.metric, &m.unit) == Family::Latency && m.count >= 2));
            if let Some(m) = lat {
                out.extend(tail_note(m));
            }
        }
        Family::Throughput => {
            // Little's law: in-flight requests = arrival rate × time in the system.
            if let (Some(thr), Some(lat)) = (f.derived("throughput_per_sec"), f.metric("latency_ms")) {
                let c = thr * lat.mean / 1000.0;
                out.push(if c < SERIAL_CONCURRENCY {
                    format!("throughput × mean latency = {}: iterations ran one at a time, so throughput is 1 / latency", fmt_num(round(c, 2)))
                } else {
                    format!("throughput × mean latency = {}: about that many iterations were in flight at once", fmt_num(round(c, 1)))
                });
            }
        }
        Family::Llm => {
            if let Some(ttft) = f.metric("ttft_ms") {
                out.extend(tail_note(ttft));
                if let Some(tpot) = f.metric("tpot_ms").filter(|t| t.p50 > 0.0) {
                    out.push(format!("median TTFT is {}× the median TPOT: prefill costs as much as that many output tokens", fmt_num(round(ttft.p50 / tpot.p50, 1))));
                }
            }
            if let (Some(good), Some(req)) = (f.value("goodput_requests_per_sec"), f.value("request_throughput_per_sec").filter(|r| *r > 0.0)) {
                let share = good / req;
                let verdict = if share < GOODPUT_LOW_SHARE { "goodput is low: SLOs were missed" } else { "most requests met their SLOs" };
                out.push(format!("{} % of requests met every SLO: {verdict}", fmt_num(round(share * 100.0, 1))));
            }
        }
        Family::Utilisation => {
            if let Some(g) = f.metric("gpu_utilization_percent") {
                let u = round(g.mean, 1);
                out.push(if g.mean < GPU_STARVED_PCT {
                    format!("GPU utilisation averaged {} %: the GPU waited (input pipeline, host or launch overhead)", fmt_num(u))
                } else if g.mean >= GPU_SATURATED_PCT {
                    format!("GPU utilisation averaged {} %: the GPU was the bottleneck", fmt_num(u))
                } else {
                    format!("GPU utilisation averaged {} %: busy, with headroom", fmt_num(u))
                });
            }
            if let Some(o) = f.metric("host_other_cpu_percent").filter(|o| o.mean > HOST_BUSY_PCT) {
                out.push(format!("other processes used {} % of the CPUs: a noisy host, expect variance", fmt_num(round(o.mean, 1))));
            }
        }
        Family::Power => {
            let peak = f.metric("gpu_temperature_celsius").map(|t| t.max).or_else(|| f.derived("temperature_max_celsius"));
            if let Some(t) = peak {
                let tail = if t >= THERMAL_THROTTLE_C { ": in the throttling range" } else { "" };
                out.push(format!("temperature peaked at {} °C{tail}", fmt_num(round(t, 1))));
            }
            for clock in ["gpu_sm_clock_mhz", "cpu_frequency_mhz"] {
                if let Some(c) = f.metric(clock).filter(|c| c.max > 0.0 && c.min < c.max * (1.0 - CLOCK_DIP_RATIO)) {
                    out.push(format!("{clock} dipped {} % below its peak: throttling likely", fmt_num(round((1.0 - c.min / c.max) * 100.0, 1))));
                }
            }
            if let (Some(p), Some(ppw)) = (f.derived("power_consumption_watts"), f.derived("performance_per_watt")) {
                out.push(format!("{} W mean for {} items/s per watt", fmt_num(round(p, 1)), fmt_num(round(ppw, 3))));
            }
        }
        Family::Memory => {
            if let Some(m) = f.metric("memory_utilization_percent").filter(|m| m.max > HOST_MEMORY_HIGH_PCT) {
                out.push(format!("host memory peaked at {} %: close to swapping", fmt_num(round(m.max, 1))));
            }
            if let Some(g) = f.metric("gpu_memory_used_mib").filter(|g| g.min > 0.0) {
                let growth = (g.max / g.min - 1.0) * 100.0;
                out.push(format!("GPU memory peaked at {} MiB ({} % above its lowest reading)", fmt_num(round(g.max, 0)), fmt_num(round(growth, 1))));
            }
        }
        Family::Other | Family::Cluster => {}
    }
    out
}

/// Tail and spread of a latency distribution.
fn tail_note(m: &MetricSummary) -> Vec<String> {
    let mut out = Vec::new();
    if m.p50 > 0.0 {
        // Judged on the ratio as printed, so "2× p50" never reads as a heavy tail.
        let r = round(m.p99 / m.p50, 1);
        let shape = if r > HEAVY_TAIL_RATIO { "a heavy tail" } else { "a tight distribution" };
        out.push(format!("{}: p99 is {}× p50: {shape}", m.metric, fmt_num(r)));
    }
    if let Some(sd) = m.stdev.filter(|_| m.mean > 0.0 && m.count >= 2) {
        let cv = sd / m.mean;
        if cv > NOISY_CV {
            out.push(format!("{}: stdev is {} % of the mean: noisy, compare distributions rather than means", m.metric, fmt_num(round(cv * 100.0, 1))));
        }
    }
    out
}

/// `x` to `digits` decimals, so notes say "3.4×" and not "3.3999×".
pub fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

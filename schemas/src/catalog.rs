//! The metric catalog: every metric trackiq emits, declared once with its unit, direction,
//! kind and dimensions. Verdict rules, report labels and the Arrow tables read it; a metric
//! it does not declare (a user's recorded or imported figure) falls back to a name
//! heuristic, and whoever uses the result sees `guessed`.
//!
//! Kinds decide what a metric may do to a verdict: a [`MetricKind::Kpi`] is what the
//! benchmark is for and gates the run; telemetry (machine state), derived figures (computed
//! by the aggregator from other metrics) and events are reported, never gating by default.
//! A figure's origin counts too: `latency_p99_ms` or `throughput_samples_per_sec` reported by
//! a tool and imported is a KPI, but the same figure the aggregator derives from a run's own
//! latency samples (`RunSummary.derived`) is judged as derived — the samples' mean already
//! gates, and the tail of a few dozen iterations is too noisy to block on by default.
//!
//! Dimensions are fields, not name parts: rank and GPU index travel in `Sample.rank`, steps in
//! `Sample.step`; nccl-tests' per-message-size figures keep their historical `<name>.<size>B`
//! names, which [`MetricId::parse`] splits into the family and a typed message size.

use serde::{Deserialize, Serialize};

use crate::events::Direction;
use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

/// What a metric is, which decides whether it can gate a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// What the benchmark measures (latency, bandwidth, a user's recorded figure): gates.
    Kpi,
    /// The machine's state while the benchmark ran (utilisation, memory, power, clocks).
    Telemetry,
    /// Computed by the aggregator from other metrics (throughput, energy per item, perf/W).
    Derived,
    /// Counts and markers of things that happened (heartbeats, faults).
    Event,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Kpi => "kpi",
            MetricKind::Telemetry => "telemetry",
            MetricKind::Derived => "derived",
            MetricKind::Event => "event",
        }
    }

    /// Whether a metric of this kind decides the run's severity unless configured otherwise.
    pub fn gates_by_default(self) -> bool {
        self == MetricKind::Kpi
    }
}

/// A dimension a metric is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// `Sample.rank`: the rank of a distributed job.
    Rank,
    /// `Sample.rank` of GPU telemetry: the NVML device index.
    GpuIndex,
    /// `Sample.step`: the training step or iteration.
    Step,
    /// nccl-tests message size in bytes (the `.<size>B` name suffix).
    MessageSize,
    /// Number of ranks of the job (`ClusterHealth.world_size`).
    WorldSize,
}

/// One declared metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: &'static str,
    pub direction: Direction,
    pub kind: MetricKind,
    pub dimensions: &'static [Dimension],
    /// What it measures, for report labels and `trackiq metrics`.
    pub about: &'static str,
}

const fn def(name: &'static str, unit: &'static str, direction: Direction, kind: MetricKind, dimensions: &'static [Dimension], about: &'static str) -> MetricDef {
    MetricDef { name, unit, direction, kind, dimensions, about }
}

use Dimension::{GpuIndex, MessageSize, Rank, Step};
use MetricKind::{Derived, Event, Kpi, Telemetry};

/// Every metric trackiq's producers and aggregator emit.
pub const CATALOG: &[MetricDef] = &[
    // Benchmark loop (producers/src/bench.rs) and its workloads.
    def("latency_ms", "ms", Lower, Kpi, &[Step], "time of one iteration or request"),
    // A run's mean of these 0/1 samples is its failure rate: a KPI, judged against the
    // baseline runs' failure rate (Fisher's exact test, see `is_rate`).
    def("iteration_failed", RATE_UNIT, Lower, Kpi, &[Step], "1 when an iteration failed; a run's mean is its failure rate"),
    def("batch_items", "items", Higher, Telemetry, &[Step], "items one iteration processed"),
    def("child_cpu_ms", "ms", Lower, Kpi, &[Step], "CPU time (user + system) of the benchmarked program"),
    def("child_peak_rss_mib", "MiB", Lower, Kpi, &[Step], "peak resident memory of the benchmarked program"),
    // LLM serving (bench llm).
    def("ttft_ms", "ms", Lower, Kpi, &[Step], "time to first token"),
    def("tpot_ms", "ms", Lower, Kpi, &[Step], "time per output token after the first"),
    def("itl_ms", "ms", Lower, Kpi, &[Step], "inter-token latency"),
    def("e2el_ms", "ms", Lower, Kpi, &[Step], "end-to-end request latency"),
    // Percentiles of one scrape interval, from the bucket deltas of a served latency histogram
    // (Prometheus scrape, OTLP; producers/src/streams): a window's samples are its intervals'.
    def("ttft_p99_ms", "ms", Lower, Kpi, &[], "99th-percentile time to first token of a scrape interval"),
    def("tpot_p99_ms", "ms", Lower, Kpi, &[], "99th-percentile time per output token of a scrape interval"),
    def("itl_p99_ms", "ms", Lower, Kpi, &[], "99th-percentile inter-token latency of a scrape interval"),
    def("e2el_p99_ms", "ms", Lower, Kpi, &[], "99th-percentile end-to-end request latency of a scrape interval"),
    def("output_tokens", "tokens", Higher, Telemetry, &[Step], "tokens a request produced"),
    def("completion_tokens", "tokens", Higher, Telemetry, &[Step], "completion tokens the server reported"),
    // Imported result files (TrackiqResult).
    def("latency_p50_ms", "ms", Lower, Kpi, &[], "median latency reported by the tool"),
    def("latency_p95_ms", "ms", Lower, Kpi, &[], "95th-percentile latency reported by the tool"),
    def("latency_p99_ms", "ms", Lower, Kpi, &[], "99th-percentile latency reported by the tool"),
    // nccl-tests (per message size).
    def("time_us", "us", Lower, Kpi, &[MessageSize], "out-of-place collective time"),
    def("algbw_gbps", "GB/s", Higher, Kpi, &[MessageSize], "out-of-place algorithm bandwidth"),
    def("busbw_gbps", "GB/s", Higher, Kpi, &[MessageSize], "out-of-place bus bandwidth"),
    def("inplace_time_us", "us", Lower, Kpi, &[MessageSize], "in-place collective time"),
    def("inplace_algbw_gbps", "GB/s", Higher, Kpi, &[MessageSize], "in-place algorithm bandwidth"),
    def("inplace_busbw_gbps", "GB/s", Higher, Kpi, &[MessageSize], "in-place bus bandwidth"),
    def("avg_busbw_gbps", "GB/s", Higher, Kpi, &[], "average bus bandwidth over message sizes"),
    // Cluster training (per rank and step).
    def("cluster.step_ms", "ms", Lower, Kpi, &[Rank, Step], "training step time"),
    def("cluster.compute_ms", "ms", Lower, Kpi, &[Rank, Step], "compute part of a step"),
    def("cluster.allreduce_ms", "ms", Lower, Kpi, &[Rank, Step], "all-reduce time"),
    def("cluster.algbw_gbps", "GB/s", Higher, Kpi, &[Rank, Step], "all-reduce algorithm bandwidth"),
    def("cluster.busbw_gbps", "GB/s", Higher, Kpi, &[Rank, Step], "all-reduce bus bandwidth"),
    def("cluster.loss", "loss", Lower, Kpi, &[Rank, Step], "training loss"),
    def("cluster.link_ms", "ms", Lower, Telemetry, &[Rank, Step], "time the all-reduce's data from the left neighbour spent on its link into this rank, per step"),
    def("cluster.allreduce_bytes", "B", Higher, Telemetry, &[Rank, Step], "bytes all-reduced per step"),
    def("cluster.allreduce_error", "ratio", Lower, Event, &[Step], "relative error of the reduced gradient"),
    def("cluster.heartbeat", "event", Lower, Event, &[Rank, Step], "a rank's heartbeat"),
    def("cluster.worker_exit", "event", Lower, Event, &[Rank, Step], "a rank's connection to the coordinator closed before its job ended"),
    // Host telemetry (producers/src/telemetry/host.rs).
    def("cpu_utilization_percent", "%", Higher, Telemetry, &[], "busy share of all CPUs"),
    def("host_other_cpu_percent", "%", Lower, Telemetry, &[], "CPU share used by other processes than the benchmark: how busy the machine was"),
    def("host_speed_probe_ms", "ms", Lower, Telemetry, &[], "time of a fixed CPU probe at the run's start and end: how fast the machine was"),
    def("cpu_frequency_mhz", "MHz", Higher, Telemetry, &[], "mean CPU clock: lower means throttling"),
    def("memory_used_mib", "MiB", Lower, Telemetry, &[], "host memory in use (every process)"),
    def("memory_utilization_percent", "%", Lower, Telemetry, &[], "host memory in use, share of total"),
    def("process_rss_mib", "MiB", Lower, Telemetry, &[], "resident memory of the trackiq process (the harness)"),
    def("cpu_package_power_watts", "W", Lower, Telemetry, &[], "CPU package power (RAPL)"),
    def("cpu_package_energy_joules", "J", Lower, Telemetry, &[], "CPU package energy per interval (RAPL)"),
    // GPU telemetry (NVML).
    def("gpu_utilization_percent", "%", Higher, Telemetry, &[GpuIndex], "GPU busy share"),
    def("gpu_memory_utilization_percent", "%", Higher, Telemetry, &[GpuIndex], "GPU memory-controller busy share"),
    def("gpu_memory_used_mib", "MiB", Lower, Telemetry, &[GpuIndex], "GPU memory in use"),
    def("gpu_power_watts", "W", Lower, Telemetry, &[GpuIndex], "GPU board power"),
    def("gpu_energy_joules", "J", Lower, Telemetry, &[GpuIndex], "GPU energy per interval"),
    def("gpu_temperature_celsius", "C", Lower, Telemetry, &[GpuIndex], "GPU temperature"),
    def("gpu_sm_clock_mhz", "MHz", Higher, Telemetry, &[GpuIndex], "GPU SM clock: lower means throttling"),
    def("gpu_memory_clock_mhz", "MHz", Higher, Telemetry, &[GpuIndex], "GPU memory clock"),
    def("gpu_pcie_tx_kib_per_sec", "KiB/s", Higher, Telemetry, &[GpuIndex], "PCIe transmit throughput"),
    def("gpu_pcie_rx_kib_per_sec", "KiB/s", Higher, Telemetry, &[GpuIndex], "PCIe receive throughput"),
    // Rates: the headline figures of imported results (KPIs); the aggregator's own figures of a
    // run, computed from its latency samples, are judged as derived (see below).
    def("throughput_per_sec", "1/s", Higher, Kpi, &[], "iterations per second"),
    def("throughput_samples_per_sec", "items/s", Higher, Kpi, &[], "items per second"),
    def("tokens_per_sec", "tokens/s", Higher, Kpi, &[], "output tokens per second"),
    def("request_throughput_per_sec", "requests/s", Higher, Kpi, &[], "requests per second"),
    def("goodput_requests_per_sec", "requests/s", Higher, Kpi, &[], "requests per second meeting every SLO"),
    // Derived by the aggregator (processors/src/aggregator).
    def("decode_tpt_ms", "ms", Lower, Derived, &[], "mean time per output token"),
    def("power_consumption_watts", "W", Lower, Derived, &[], "mean power of the machine doing the work"),
    def("performance_per_watt", "items/s/W", Higher, Derived, &[], "throughput per watt of locally measured power"),
    def("energy_joules", "J", Lower, Derived, &[], "energy of the run"),
    def("energy_per_step_joules", "J", Lower, Derived, &[], "energy per iteration"),
    def("energy_per_item_joules", "J", Lower, Derived, &[], "energy per item"),
    def("temperature_celsius", "C", Lower, Derived, &[], "mean GPU temperature"),
    def("temperature_max_celsius", "C", Lower, Derived, &[], "highest GPU temperature"),
    def("peak_memory_mib", "MiB", Lower, Derived, &[], "peak resident memory of the benchmarked program"),
    def("peak_gpu_memory_mib", "MiB", Lower, Derived, &[GpuIndex], "peak GPU memory in use"),
];

/// Prefix of the cluster fault markers (`cluster.fault.<kind>`): events.
const FAULT_PREFIX: &str = "cluster.fault.";

/// Prefix of metrics scraped or received that the catalog does not know (`scraped.<name>`):
/// telemetry, reported and never gating unless declared in `[verdict.metrics]`.
pub const SCRAPED_PREFIX: &str = "scraped.";

/// A metric name split into its catalog family and the dimension its name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricId<'a> {
    pub family: &'a str,
    /// nccl-tests message size, from a `<family>.<size>B` name.
    pub message_size: Option<u64>,
}

impl<'a> MetricId<'a> {
    /// Splits `busbw_gbps.1048576B` into `busbw_gbps` and 1 MiB; other names are their family.
    pub fn parse(name: &'a str) -> Self {
        if let Some((family, size)) = name.rsplit_once('.')
            && let Some(bytes) = size.strip_suffix('B').and_then(|d| d.parse::<u64>().ok())
        {
            return MetricId { family, message_size: Some(bytes) };
        }
        MetricId { family: name, message_size: None }
    }
}

/// The declaration of a metric, by name (a message-size suffix is the dimension, not the name).
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    let family = MetricId::parse(name).family;
    CATALOG.iter().find(|d| d.name == family)
}

/// What is known about a metric: declared, or guessed from its name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    pub unit: Option<String>,
    pub direction: Direction,
    pub kind: MetricKind,
    /// Whether it decides the run's severity.
    pub gates: bool,
    /// The direction (and kind) came from the name heuristic: nobody declared the metric.
    pub guessed: bool,
}

impl From<&MetricDef> for MetricInfo {
    fn from(d: &MetricDef) -> Self {
        MetricInfo { unit: Some(d.unit.to_string()), direction: d.direction, kind: d.kind, gates: d.kind.gates_by_default(), guessed: false }
    }
}

/// A user's declaration of a metric (config `[verdict.metrics.<name>]`), for figures trackiq
/// does not emit itself (recorded or imported), or to change how a built-in one is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDecl {
    /// Unit, e.g. `ms`, `items/s`.
    #[serde(default)]
    pub unit: Option<String>,
    /// `lower_is_better` or `higher_is_better`.
    pub direction: Direction,
    /// `kpi`, `telemetry`, `derived` or `event`.
    #[serde(default = "default_kind")]
    pub kind: MetricKind,
    /// Whether the metric may warn/block the run (default: only KPIs do).
    #[serde(default)]
    pub gate: Option<bool>,
}

fn default_kind() -> MetricKind {
    MetricKind::Kpi
}

impl From<&MetricDecl> for MetricInfo {
    fn from(d: &MetricDecl) -> Self {
        MetricInfo { unit: d.unit.clone(), direction: d.direction, kind: d.kind, gates: d.gate.unwrap_or(d.kind.gates_by_default()), guessed: false }
    }
}

/// Name words of metrics where a larger value is better. Whole words (split on `_`, `.`,
/// `-`, `/`), so `drops` is not `ops` and `cpu_frequency_mhz` is a clock.
const HIGHER_WORDS: &[&str] = &[
    "throughput", "goodput", "qps", "rps", "tps", "ops", "iops", "flops", "gflops", "tflops", "bandwidth", "busbw", "algbw", "bw",
    "efficiency", "speedup", "hit", "hits", "accuracy", "score", "frequency", "freq", "mhz", "ghz",
];

/// Name fragments of rates: `x_per_sec`, `per_second`, `per_watt`, `items/s`.
const HIGHER_FRAGMENTS: &[&str] = &["per_sec", "per_second", "per_s_", "per_watt", "/s", "slo_met"];

/// The name heuristic for undeclared metrics: a rate, bandwidth, clock or efficiency is
/// higher-is-better; anything else (times, sizes, counts of bad things) lower-is-better.
pub fn guess_direction(name: &str) -> Direction {
    let n = name.to_ascii_lowercase();
    let family = MetricId::parse(&n).family.to_string();
    let rate = family.ends_with("_per_s") || HIGHER_FRAGMENTS.iter().any(|f| family.contains(f));
    let word = family.split(['_', '.', '-', '/']).any(|w| HIGHER_WORDS.contains(&w));
    if rate || word { Higher } else { Lower }
}

/// What is known of `name` from the built-in catalog, else guessed: an undeclared metric is
/// a user's own figure, so it is a KPI (it gates) with a guessed direction.
pub fn info(name: &str) -> MetricInfo {
    if let Some(d) = lookup(name) {
        return d.into();
    }
    if name.starts_with(FAULT_PREFIX) {
        return MetricInfo { unit: Some("event".into()), direction: Lower, kind: Event, gates: false, guessed: false };
    }
    if name.starts_with(SCRAPED_PREFIX) {
        return MetricInfo { unit: None, direction: guess_direction(name), kind: Telemetry, gates: false, guessed: true };
    }
    MetricInfo { unit: None, direction: guess_direction(name), kind: Kpi, gates: true, guessed: true }
}

/// Unit of 0/1 samples whose mean over a run is a rate (the share of iterations that failed).
pub const RATE_UNIT: &str = "bool";

/// Whether a metric's samples are 0/1 indicators, so a run's figure is a rate: judged by
/// how many ones the run and its baseline runs had (Fisher's exact test), not by a spread.
pub fn is_rate(name: &str) -> bool {
    lookup(name).is_some_and(|d| d.unit == RATE_UNIT)
}

/// Units of time: values of such metrics are durations and never negative.
const TIME_UNITS: &[&str] = &["ns", "us", "µs", "ms", "s", "sec", "seconds", "min", "h"];

/// Whether a metric is a duration: declared with a time unit, or (undeclared) named like one.
pub fn is_duration(name: &str) -> bool {
    match lookup(name) {
        Some(d) => TIME_UNITS.contains(&d.unit),
        None => {
            let n = name.to_ascii_lowercase();
            guess_direction(&n) == Lower
                && ["latency", "_ms", "_us", "_ns", "_sec", "_seconds", "duration", "time", "ttft", "tpot", "itl", "e2el"].iter().any(|f| n.contains(f))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_name_is_unique_and_its_own_family() {
        let mut names: Vec<_> = CATALOG.iter().map(|d| d.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a metric is declared twice");
        for d in CATALOG {
            assert_eq!(lookup(d.name).map(|x| x.name), Some(d.name));
        }
    }

    #[test]
    fn the_catalog_fixes_what_the_name_heuristic_got_wrong() {
        // Thermal throttling lowers the clock: higher is better, and it is context.
        let f = info("cpu_frequency_mhz");
        assert_eq!((f.direction, f.kind, f.gates, f.guessed), (Higher, Telemetry, false, false));
        // Host-wide memory and the harness' own RSS never gate a run.
        for m in ["memory_used_mib", "memory_utilization_percent", "process_rss_mib", "peak_memory_mib"] {
            assert!(!info(m).gates, "{m}");
        }
        assert!(info("latency_ms").gates);
        assert_eq!(info("busbw_gbps.1048576B").direction, Higher);
        assert_eq!(info("busbw_gbps.1048576B").kind, Kpi);
        assert_eq!(info("cluster.fault.kill_rank").kind, Event);
    }

    #[test]
    fn undeclared_metrics_are_guessed_by_whole_words() {
        assert_eq!(guess_direction("packet_drops"), Lower, "`drops` is not `ops`");
        assert_eq!(guess_direction("db_ops"), Higher);
        assert_eq!(guess_direction("requests_per_second"), Higher);
        assert_eq!(guess_direction("items/s"), Higher);
        assert_eq!(guess_direction("queue_depth"), Lower);
        assert_eq!(guess_direction("compile_time_s"), Lower);
        let i = info("my_custom_score");
        assert_eq!((i.direction, i.kind, i.gates, i.guessed), (Higher, Kpi, true, true));
    }

    #[test]
    fn message_sizes_are_a_dimension_not_a_name() {
        assert_eq!(MetricId::parse("time_us.8B"), MetricId { family: "time_us", message_size: Some(8) });
        assert_eq!(MetricId::parse("cluster.step_ms"), MetricId { family: "cluster.step_ms", message_size: None });
        assert!(is_duration("time_us.1024B"));
        assert!(is_duration("latency_ms") && !is_duration("throughput_per_sec") && !is_duration("temperature_delta"));
    }
}

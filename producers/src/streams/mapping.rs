//! Exporters' metric names → the catalog, so scraped GPUs, hosts and inference servers gate and
//! chart like the harness's own metrics. Names come from the exporters' documentation:
//! NVIDIA DCGM exporter's default counters (`DCGM_FI_DEV_*`, one series per `gpu`), vLLM's
//! `/metrics` (`vllm:*` histograms in seconds), OpenTelemetry's GenAI semantic conventions
//! (`gen_ai.server.*`, seconds) and node_exporter (handled where two series make one figure,
//! see [`super::window`]). Anything else is `scraped.<name>`: telemetry, never gating unless
//! declared in `[verdict.metrics]` (`trackiq_schemas::catalog::SCRAPED_PREFIX`).

use trackiq_schemas::catalog::{Dimension, SCRAPED_PREFIX, lookup};

/// How an exporter's gauge becomes a catalog metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaugeMap {
    pub metric: &'static str,
    /// Multiplies the exporter's value into the catalog's unit.
    pub scale: f64,
    /// The label whose value is the sample's rank (the GPU index), if any.
    pub rank_label: Option<&'static str>,
}

/// How an exporter's latency histogram becomes two catalog metrics: each scrape interval's
/// median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramMap {
    pub median: &'static str,
    pub p99: &'static str,
    pub scale: f64,
}

const fn gpu(metric: &'static str) -> GaugeMap {
    GaugeMap { metric, scale: 1.0, rank_label: Some("gpu") }
}

/// DCGM exporter's default fields (dcgm-exporter `default-counters.csv`; units as documented:
/// W, °C, %, MiB, MHz).
const GAUGES: &[(&str, GaugeMap)] = &[
    ("DCGM_FI_DEV_POWER_USAGE", gpu("gpu_power_watts")),
    ("DCGM_FI_DEV_GPU_TEMP", gpu("gpu_temperature_celsius")),
    ("DCGM_FI_DEV_GPU_UTIL", gpu("gpu_utilization_percent")),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", gpu("gpu_memory_utilization_percent")),
    ("DCGM_FI_DEV_FB_USED", gpu("gpu_memory_used_mib")),
    ("DCGM_FI_DEV_SM_CLOCK", gpu("gpu_sm_clock_mhz")),
    ("DCGM_FI_DEV_MEM_CLOCK", gpu("gpu_memory_clock_mhz")),
];

const fn ms(median: &'static str, p99: &'static str) -> HistogramMap {
    HistogramMap { median, p99, scale: 1000.0 }
}

/// Latency histograms in seconds: vLLM (both spellings of TPOT across its versions) and the
/// OpenTelemetry GenAI server metrics (OTLP names, and as Prometheus exports them).
const HISTOGRAMS: &[(&str, HistogramMap)] = &[
    ("vllm:time_to_first_token_seconds", ms("ttft_ms", "ttft_p99_ms")),
    ("vllm:time_per_output_token_seconds", ms("tpot_ms", "tpot_p99_ms")),
    ("vllm:request_time_per_output_token_seconds", ms("tpot_ms", "tpot_p99_ms")),
    ("vllm:inter_token_latency_seconds", ms("itl_ms", "itl_p99_ms")),
    ("vllm:e2e_request_latency_seconds", ms("e2el_ms", "e2el_p99_ms")),
    ("gen_ai.server.time_to_first_token", ms("ttft_ms", "ttft_p99_ms")),
    ("gen_ai_server_time_to_first_token_seconds", ms("ttft_ms", "ttft_p99_ms")),
    ("gen_ai.server.time_per_output_token", ms("tpot_ms", "tpot_p99_ms")),
    ("gen_ai_server_time_per_output_token_seconds", ms("tpot_ms", "tpot_p99_ms")),
    ("gen_ai.server.request.duration", ms("e2el_ms", "e2el_p99_ms")),
    ("gen_ai_server_request_duration_seconds", ms("e2el_ms", "e2el_p99_ms")),
];

/// The catalog metric of an exporter's gauge, if it is a known one.
pub fn gauge(name: &str) -> Option<GaugeMap> {
    // A catalog name sent as is (an OTLP gauge named `gpu_power_watts`): per GPU when the
    // catalog says it is.
    let as_is = || lookup(name).map(|d| GaugeMap { metric: d.name, scale: 1.0, rank_label: d.dimensions.contains(&Dimension::GpuIndex).then_some("gpu") });
    GAUGES.iter().find(|(n, _)| *n == name).map(|(_, m)| *m).or_else(as_is)
}

/// The catalog metrics of an exporter's latency histogram, if it is a known one.
pub fn histogram(name: &str) -> Option<HistogramMap> {
    HISTOGRAMS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}

/// The name and unit an unknown series is kept under: `scraped.` and its name in lower case
/// (`:` and `.` kept as `_`), the unit from its suffix (the exporters' naming conventions).
pub fn unknown(name: &str) -> (String, &'static str) {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let unit = [("_seconds", "s"), ("_bytes", "B"), ("_celsius", "C"), ("_ratio", "ratio"), ("_percent", "%"), ("_watts", "W"), ("_joules", "J")]
        .iter()
        .find(|(suffix, _)| clean.ends_with(suffix) || clean.ends_with(&format!("{suffix}_total")))
        .map_or("", |(_, u)| *u);
    (format!("{SCRAPED_PREFIX}{clean}"), unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_map_to_the_catalog_with_its_units() {
        for (name, m) in GAUGES {
            assert!(lookup(m.metric).is_some(), "{name} → {} is not in the catalog", m.metric);
        }
        for (name, m) in HISTOGRAMS {
            for metric in [m.median, m.p99] {
                let d = lookup(metric).unwrap_or_else(|| panic!("{name} → {metric} is not in the catalog"));
                assert_eq!(d.unit, "ms", "{name}: seconds × 1000 are ms");
            }
        }
        assert_eq!(gauge("DCGM_FI_DEV_POWER_USAGE").unwrap().metric, "gpu_power_watts");
        assert_eq!(histogram("vllm:time_to_first_token_seconds").unwrap().p99, "ttft_p99_ms");
        assert_eq!(unknown("node_load1"), ("scraped.node_load1".into(), ""));
        assert_eq!(unknown("process_resident_memory_bytes"), ("scraped.process_resident_memory_bytes".into(), "B"));
        assert_eq!(unknown("http.server.Duration_seconds"), ("scraped.http_server_duration_seconds".into(), "s"));
        let info = trackiq_schemas::catalog::info("scraped.http_server_duration_seconds");
        assert!(!info.gates, "unknown scraped metrics are telemetry");
    }
}

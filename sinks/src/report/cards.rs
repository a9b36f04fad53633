//! The summary cards at the top of a run's report: the verdict, the run's size, and the
//! headline KPIs with their change against the baseline where the verdict judged them.

use serde::Serialize;
use trackiq_schemas::{MetricVerdict, Verdict};

use super::fmt_num;
use super::sections::{Figures, round};

/// One card: a label, a value with its unit and, when judged, the change vs baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub label: String,
    pub value: String,
    /// E.g. `+3.2 % vs baseline`.
    pub change: Option<String>,
    /// Severity of the judged metric (a CSS class), or of the run for the verdict card.
    pub severity: Option<String>,
}

/// The headline figures: label, where the value comes from, unit, the metric the verdict
/// judges for it. Latency percentiles come from the latency samples when there are some.
enum Source {
    /// A derived figure, else a metric's mean.
    Value(&'static str),
    P50(&'static str),
    P99(&'static str),
    Mean(&'static str),
}

const KPIS: &[(&str, Source, &str, &str)] = &[
    ("latency p50", Source::P50("latency_ms"), "ms", "latency_p50_ms"),
    ("latency p99", Source::P99("latency_ms"), "ms", "latency_p99_ms"),
    ("throughput", Source::Value("throughput_samples_per_sec"), "items/s", "throughput_samples_per_sec"),
    ("TTFT p50", Source::P50("ttft_ms"), "ms", "ttft_ms"),
    ("TPOT mean", Source::Mean("tpot_ms"), "ms", "tpot_ms"),
    ("output tokens/s", Source::Value("tokens_per_sec"), "tokens/s", "tokens_per_sec"),
    ("mean power", Source::Value("power_consumption_watts"), "W", "power_consumption_watts"),
    ("energy per item", Source::Value("energy_per_item_joules"), "J", "energy_per_item_joules"),
    ("perf/W", Source::Value("performance_per_watt"), "items/s/W", "performance_per_watt"),
];

/// Duration of a run for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub fn fmt_duration_us(us: i64) -> String {
    if us < 0 {
        return "—".into();
    }
    let s = us as f64 / 1e6;
    match us {
        _ if s < 1.0 => format!("{} ms", fmt_num(round(s * 1000.0, 0))),
        _ if s < 60.0 => format!("{} s", fmt_num(round(s, 1))),
        _ if s < 3600.0 => format!("{} min {:02} s", (s / 60.0) as i64, (s % 60.0) as i64),
        _ => format!("{} h {:02} min", (s / 3600.0) as i64, ((s % 3600.0) / 60.0) as i64),
    }
}

/// A value with its unit; `%` and `°C` hug the number the way people write them.
pub fn with_unit(v: f64, unit: &str) -> String {
    let v = fmt_num(round(v, if v.abs() >= 100.0 { 1 } else { 3 }));
    match unit {
        "" => v,
        "C" => format!("{v} °C"),
        "1/s" => format!("{v} /s"),
        u => format!("{v} {u}"),
    }
}

fn change(mv: &MetricVerdict) -> Option<String> {
    mv.change_pct.map(|c| format!("{c:+.1} % vs baseline"))
}

/// The cards of a verdict, in reading order; KPIs the run lacks are left out.
pub fn cards(v: &Verdict) -> Vec<Card> {
    let s = &v.summary;
    let f = Figures::of(s);
    let samples = match s.expected_sample_count {
        Some(e) if e != s.sample_count => format!("{} of {e}", s.sample_count),
        _ => s.sample_count.to_string(),
    };
    let plain = |label: &str, value: String, severity: Option<&str>| Card { label: label.into(), value, change: None, severity: severity.map(Into::into) };
    let mut out = vec![
        plain("verdict", v.severity.as_str().replace('_', " "), Some(v.severity.as_str())),
        plain("status", s.status.as_str().into(), None),
        plain("samples", samples, None),
        plain("duration", fmt_duration_us(s.ended_at - s.run.timestamp), None),
    ];
    let judged_card = |label: &str, value: String, judged: &str| {
        let mv = v.metrics.iter().find(|m| m.metric == judged);
        Card { label: label.into(), value, change: mv.and_then(change), severity: mv.map(|m| m.severity.as_str().into()) }
    };
    for (label, source, unit, judged) in KPIS {
        let value = match source {
            // The samples' percentile is exact where the aggregator's figure is the same number.
            Source::P50(m) => f.metric(m).filter(|m| m.count >= 2).map(|m| m.p50).or_else(|| f.value(judged)),
            Source::P99(m) => f.metric(m).filter(|m| m.count >= 2).map(|m| m.p99).or_else(|| f.value(judged)),
            Source::Mean(m) => f.metric(m).map(|m| m.mean),
            Source::Value(name) => f.value(name),
        };
        if let Some(value) = value {
            out.push(judged_card(label, with_unit(value, unit), judged));
        }
    }
    // A training job's headline figures live in its cluster health, not in latency samples.
    if let Some(c) = &s.cluster {
        out.push(judged_card("samples/s (all ranks)", with_unit(c.samples_per_sec, "items/s"), "cluster_samples_per_sec"));
        out.push(judged_card("comm overhead", format!("{} % of step time", fmt_num(round(c.comm_overhead_pct, 1))), "comm_overhead_pct"));
    }
    out
}

//! A closed run's state to its [`RunSummary`]: metric statistics, derived figures (latency
//! percentiles, throughput, LLM serving figures, power and energy) and cluster health.

use trackiq_schemas::{DerivedMetric, Histogram, MetricSummary, RunStatus, RunSummary, Sample};
use tracing::debug;
use trackiq_stats::{Precision, ValueAccumulator};

use super::OpenRun;
use super::energy::energy_figures;

/// Unit of samples that mark events (heartbeats, injected faults) rather than measure something:
/// they are counted and archived, but get no metric summary.
pub const EVENT_UNIT: &str = "event";

pub(super) fn add_sample(run: &mut OpenRun, s: &Sample) {
    run.samples += 1;
    if s.unit == EVENT_UNIT {
        return;
    }
    if let Some(rank) = s.rank {
        let e = run.by_rank.entry((s.metric.clone(), rank)).or_insert((0.0, 0, f64::MIN));
        *e = (e.0 + s.value, e.1 + 1, e.2.max(s.value));
    }
    // Looked up by reference first: the key is cloned once per metric, not once per sample.
    match run.values.get_mut(s.metric.as_str()) {
        Some(entry) => entry.1.push(s.value),
        None => {
            let mut accumulator = ValueAccumulator::new(run.exact_limit);
            accumulator.push(s.value);
            run.values.insert(s.metric.clone(), (s.unit.clone(), accumulator));
        }
    }
    if s.metric == LATENCY_METRIC {
        // Saturating: a value is finite (validated), but may still be absurdly large.
        let end = s.ts_us.saturating_add((s.value * 1000.0).round() as i64);
        run.latency_span_us = Some(match run.latency_span_us {
            Some((a, b)) => (a.min(s.ts_us), b.max(end)),
            None => (s.ts_us, end),
        });
    }
}

/// Figures the aggregator derives from a run's own samples under names that the catalog also
/// knows as recorded KPIs (a tool may report `latency_p50_ms` itself). Derived, they are
/// judged but do not gate ([`crate::verdict`]'s `info_of`); `trackiq metrics` reads this list
/// so that its "gates" column says the same. (Energy and power figures are derived-only in the
/// catalog and need no entry.)
pub const DERIVED_FROM_SAMPLES: &[&str] = &[
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "throughput_per_sec",
    "throughput_samples_per_sec",
    "tokens_per_sec",
    "request_throughput_per_sec",
    "goodput_requests_per_sec",
    "decode_tpt_ms",
];

/// The per-iteration latency metric that throughput is derived from.
pub const LATENCY_METRIC: &str = "latency_ms";
/// Items processed per iteration (a batch), when producers record it.
pub const ITEMS_METRIC: &str = "batch_items";

pub(super) fn summarize_run(run_id: &str, run: OpenRun, bins: usize) -> Option<RunSummary> {
    let started = run.started?;
    let (status, ended_at, expected, mut error) = match &run.finished {
        Some(f) if run.samples >= f.sample_count => (f.status, f.ended_at, Some(f.sample_count), f.error.clone()),
        Some(f) => (
            RunStatus::Incomplete,
            f.ended_at,
            Some(f.sample_count),
            Some(format!("received {} of {} announced samples", run.samples, f.sample_count)),
        ),
        None => (RunStatus::Incomplete, trackiq_schemas::now_us(), None, Some("no RunFinished arrived before the run timeout".to_string())),
    };
    if let (Some(f), Some(e)) = (&run.finished, &mut error)
        && let Some(orig) = &f.error
        && !e.contains(orig.as_str())
    {
        e.push_str(&format!("; producer reported: {orig}"));
    }
    let mut metrics = Vec::new();
    let mut sketched = Vec::new();
    for (metric, (unit, values)) in run.values {
        let Some(acc) = values.summary(bins) else { continue };
        let s = acc.summary;
        let percentile_error = match acc.precision {
            Precision::Sketched { relative_error } => {
                sketched.push(metric.clone());
                Some(relative_error)
            }
            Precision::Exact => None,
        };
        let histogram = (s.count >= 2 && bins > 0).then_some(Histogram { edges: acc.edges, counts: acc.counts });
        metrics.push(MetricSummary {
            metric,
            unit,
            count: s.count as i64,
            mean: s.mean,
            stdev: s.stdev,
            min: s.min,
            p50: s.p50,
            p90: s.p90,
            p95: s.p95,
            p99: s.p99,
            max: s.max,
            histogram,
            percentile_error,
        });
    }
    if !sketched.is_empty() {
        debug!(run_id, metrics = %sketched.join(", "), "percentiles from a quantile sketch");
    }
    let mut derived = Vec::new();
    if let Some(lat) = metrics.iter().find(|m| m.metric == LATENCY_METRIC)
        && lat.count >= 2
    {
        // The TrackIQ contract's canonical latency figures.
        for (name, v) in [("latency_p50_ms", lat.p50), ("latency_p95_ms", lat.p95), ("latency_p99_ms", lat.p99)] {
            derived.push(DerivedMetric { name: name.into(), value: v, unit: "ms".into() });
        }
        if let Some((from, to)) = run.latency_span_us
            && to > from
        {
            let secs = (to - from) as f64 / 1e6;
            derived.push(DerivedMetric { name: "throughput_per_sec".into(), value: lat.count as f64 / secs, unit: "1/s".into() });
            // Items: a batch per iteration where the producer says so, else one.
            let items = metrics.iter().find(|m| m.metric == ITEMS_METRIC).map_or(lat.count as f64, |m| m.mean * m.count as f64);
            derived.push(DerivedMetric { name: "throughput_samples_per_sec".into(), value: items / secs, unit: "items/s".into() });
            // LLM serving figures, as vLLM's `bench serve` reports them.
            let total = |name: &str| metrics.iter().find(|m| m.metric == name).map(|m| m.mean * m.count as f64);
            if let Some(tokens) = total("output_tokens") {
                derived.push(DerivedMetric { name: "tokens_per_sec".into(), value: tokens / secs, unit: "tokens/s".into() });
                derived.push(DerivedMetric { name: "request_throughput_per_sec".into(), value: lat.count as f64 / secs, unit: "requests/s".into() });
            }
            if let Some(good) = total("slo_met") {
                derived.push(DerivedMetric { name: "goodput_requests_per_sec".into(), value: good / secs, unit: "requests/s".into() });
            }
            if let Some(tpot) = metrics.iter().find(|m| m.metric == "tpot_ms") {
                derived.push(DerivedMetric { name: "decode_tpt_ms".into(), value: tpot.mean, unit: "ms".into() });
            }
        }
    }
    derived.extend(energy_figures(&metrics, &derived, &run.by_rank));
    let cluster = run.cluster.as_ref().and_then(|c| c.health(started.workload.batch_size)).map(|(health, figures)| {
        derived.extend(figures);
        health
    });
    debug!(run_id, metrics = metrics.len(), "summarised run");
    Some(RunSummary { run: started, status, ended_at, sample_count: run.samples, expected_sample_count: expected, error, metrics, derived, cluster })
}


//! OTLP/HTTP metrics as they arrive: a body (protobuf or JSON) decoded into the export request,
//! then into observations per resource. Pure functions, apart from the receiver in
//! [`super::otlp`] (which authenticates, bounds the body and answers), so they are fuzzed
//! as they are (`fuzz/fuzz_targets/otlp_decode.rs`).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint, metric, number_data_point};
use prost::Message;

use super::histogram::Buckets;
use super::mapping;
use super::reading::{Observation, Point, Reading, Target};

/// Which resource attributes become a run's version and labels (`[otlp]`'s
/// `version_attributes` and `label_attributes`).
pub struct Attributes<'a> {
    /// The first of these present is the version.
    pub version: &'a [String],
    /// Each of these present becomes a label.
    pub labels: &'a [String],
}

/// The request in either encoding; the error says where it broke.
pub fn decode(body: &[u8], json: bool) -> Result<ExportMetricsServiceRequest, String> {
    if json {
        let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("the JSON body does not parse: {e}"))?;
        normalize_integers(&mut value);
        serde_json::from_value(value).map_err(|e| format!("the JSON body is not an ExportMetricsServiceRequest: {e}"))
    } else {
        ExportMetricsServiceRequest::decode(body).map_err(|e| format!("the protobuf body is not an ExportMetricsServiceRequest: {e}"))
    }
}

/// OTLP/JSON writes 64-bit integers as strings, and senders also write them as numbers. The
/// message types decode timestamps from strings only and counts from numbers only: both are
/// brought to what they decode.
fn normalize_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    const AS_STRING: [&str; 2] = ["timeUnixNano", "startTimeUnixNano"];
    const AS_NUMBER: [&str; 5] = ["count", "bucketCounts", "asInt", "zeroCount", "offset"];
    let number = |x: &mut Value| {
        if let Some(n) = x.as_str().and_then(|s| s.parse::<i64>().ok()) {
            *x = Value::from(n);
        }
    };
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if AS_STRING.contains(&k.as_str()) && x.is_number() {
                    *x = Value::String(x.to_string());
                } else if AS_NUMBER.contains(&k.as_str()) {
                    match x {
                        Value::Array(items) => items.iter_mut().for_each(number),
                        other => number(other),
                    }
                } else {
                    normalize_integers(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_integers),
        _ => {}
    }
}

/// A string form of an attribute value (arrays and maps are left out).
fn text(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter().filter_map(|kv| text(kv).map(|v| (kv.key.clone(), v))).collect()
}

/// One observation per resource of the request.
pub fn observations(req: &ExportMetricsServiceRequest, config: &Attributes, now_us: i64) -> Result<Vec<Observation>, String> {
    let mut out = Vec::with_capacity(req.resource_metrics.len());
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        let resource = attributes(rm.resource.as_ref().map_or(&[][..], |r| &r.attributes));
        let job = resource.get("service.name").cloned().unwrap_or_else(|| "unknown_service".into());
        let instance = ["host.name", "service.instance.id"].iter().find_map(|k| resource.get(*k)).cloned().unwrap_or_else(|| "unknown".into());
        let labels = config.labels.iter().filter_map(|k| resource.get(k).map(|v| (k.clone(), v.clone()))).collect();
        let version = config.version.iter().find_map(|k| resource.get(k)).cloned();
        let mut points = Vec::new();
        let mut at_ns = 0u64;
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            for (mi, m) in sm.metrics.iter().enumerate() {
                let at = |what: String| format!("resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}] (`{}`): {what}", m.name);
                if m.name.is_empty() {
                    return Err(at("a metric without a name".into()));
                }
                // Known latency histograms are kept in seconds: one in milliseconds is converted.
                let to_seconds = if m.unit == "ms" && mapping::histogram(&m.name).is_some() { 1e-3 } else { 1.0 };
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            at_ns = at_ns.max(p.time_unix_nano);
                            points.push(Point { name: m.name.clone(), labels: attributes(&p.attributes), reading: Reading::Gauge(number(&p.value)) });
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        for p in &s.data_points {
                            at_ns = at_ns.max(p.time_unix_nano);
                            let v = number(&p.value);
                            let reading = match (s.is_monotonic, temporality(s.aggregation_temporality)) {
                                (false, _) => Reading::Gauge(v),
                                (true, Some(AggregationTemporality::Delta)) => Reading::Delta { value: v, over_us: (p.time_unix_nano.saturating_sub(p.start_time_unix_nano) / 1000) as i64 },
                                (true, Some(AggregationTemporality::Cumulative)) => Reading::Cumulative(v),
                                _ => return Err(at(format!("aggregationTemporality {} is neither delta (1) nor cumulative (2)", s.aggregation_temporality))),
                            };
                            points.push(Point { name: m.name.clone(), labels: attributes(&p.attributes), reading });
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        let delta = is_delta(h.aggregation_temporality).map_err(&at)?;
                        for (pi, p) in h.data_points.iter().enumerate() {
                            at_ns = at_ns.max(p.time_unix_nano);
                            let b = explicit(p, to_seconds).map_err(|e| at(format!("dataPoints[{pi}]: {e}")))?;
                            points.push(histogram_point(&m.name, &p.attributes, b, delta));
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        let delta = is_delta(h.aggregation_temporality).map_err(&at)?;
                        for p in &h.data_points {
                            at_ns = at_ns.max(p.time_unix_nano);
                            points.push(histogram_point(&m.name, &p.attributes, exponential(p, to_seconds), delta));
                        }
                    }
                    Some(metric::Data::Summary(_)) => {}
                    None => return Err(at("no gauge, sum, histogram, exponentialHistogram or summary that decodes (check its points' fields)".into())),
                }
            }
        }
        let at_us = if at_ns == 0 { now_us } else { (at_ns / 1000) as i64 };
        out.push(Observation { target: Target { job, instance, labels }, at_us, version, points });
    }
    Ok(out)
}

fn number(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => f64::NAN,
    }
}

fn temporality(t: i32) -> Option<AggregationTemporality> {
    AggregationTemporality::try_from(t).ok()
}

fn is_delta(t: i32) -> Result<bool, String> {
    match temporality(t) {
        Some(AggregationTemporality::Delta) => Ok(true),
        Some(AggregationTemporality::Cumulative) => Ok(false),
        _ => Err(format!("aggregationTemporality {t} is neither delta (1) nor cumulative (2)")),
    }
}

fn histogram_point(name: &str, attrs: &[KeyValue], b: Buckets, delta: bool) -> Point {
    let reading = if delta { Reading::DeltaHistogram(b) } else { Reading::CumulativeHistogram(b) };
    Point { name: name.to_string(), labels: attributes(attrs), reading }
}

/// Explicit buckets: `bucketCounts` has one more entry than `explicitBounds` (the last is +Inf).
fn explicit(p: &HistogramDataPoint, scale: f64) -> Result<Buckets, String> {
    if p.bucket_counts.is_empty() {
        return Ok(Buckets::default());
    }
    if p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(format!("{} bucketCounts for {} explicitBounds (expected one more count than bounds)", p.bucket_counts.len(), p.explicit_bounds.len()));
    }
    // NaN compares false with every neighbour, so a lone NaN bound would pass the order check.
    if let Some(b) = p.explicit_bounds.iter().find(|b| !b.is_finite()) {
        return Err(format!("explicitBounds hold {b}, not a finite number"));
    }
    if p.explicit_bounds.windows(2).any(|w| !(w[0] < w[1])) {
        return Err("explicitBounds are not increasing".into());
    }
    let bounds = p.explicit_bounds.iter().map(|b| b * scale).chain([f64::INFINITY]).collect();
    Ok(Buckets { bounds, counts: p.bucket_counts.iter().map(|&c| c as f64).collect() })
}

/// Exponential buckets as explicit ones: bucket `i` of the positive range holds
/// (base^(offset+i), base^(offset+i+1)] with base = 2^(2^-scale); the zero bucket comes first.
pub(crate) fn exponential(p: &ExponentialHistogramDataPoint, scale: f64) -> Buckets {
    let base = 2f64.powf(2f64.powi(-p.scale));
    let mut bounds = vec![p.zero_threshold * scale];
    let mut counts = vec![p.zero_count as f64];
    if let Some(pos) = &p.positive {
        for (i, &c) in pos.bucket_counts.iter().enumerate() {
            bounds.push(base.powi(pos.offset + i as i32 + 1) * scale);
            counts.push(c as f64);
        }
    }
    Buckets { bounds, counts }
}


//! `trackiq record`: a run from figures measured elsewhere (`--metric name=value[unit]`).

use trackiq_infra::Bus;
use trackiq_schemas::metrics::validate_value;
use trackiq_schemas::{RunStatus, Sample};

use crate::emitter::{Batching, RunEmitter};
use crate::error::ProducerError;
use crate::identity::{RunIdentity, run_started};

/// One `--metric` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricArg {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// Unit implied by a metric's name when none is written after the value.
fn unit_from_name(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.ends_with("_ms") { "ms" } else if n.ends_with("_us") { "us" } else if n.ends_with("_per_sec") || n.contains("throughput") { "1/s" } else if n.ends_with("_watts") { "W" } else if n.ends_with("_percent") { "%" } else { "" }
}

/// Parses `name=value[unit]`, e.g. `latency_ms=8.2`, `throughput=125.7items/s`, `power=300W`.
pub fn parse_metric(arg: &str) -> Result<MetricArg, ProducerError> {
    let bad = |reason: &str| ProducerError::MetricArg { arg: arg.to_string(), reason: reason.to_string() };
    let (name, rest) = arg.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) {
        return Err(bad("metric names use letters, digits and _ . - /"));
    }
    let rest = rest.trim();
    // The longest prefix that parses as a number is the value; what follows is the unit.
    let split = (1..=rest.len()).rev().filter(|&i| rest.is_char_boundary(i)).find(|&i| rest[..i].parse::<f64>().is_ok());
    let Some(split) = split else { return Err(bad("no number after `=`")) };
    let value: f64 = rest[..split].parse().expect("checked");
    // "inf"/"nan" parse as numbers: reject them here with the metric named.
    validate_value(name, value).map_err(|reason| bad(&reason))?;
    let unit = rest[split..].trim();
    Ok(MetricArg { name: name.to_string(), value, unit: if unit.is_empty() { unit_from_name(name).to_string() } else { unit.to_string() } })
}

/// Emits a recorded run, measured now or at `at_us` (hand-entered history); returns its run id.
pub async fn record(bus: &Bus, identity: &RunIdentity, metrics: &[MetricArg], at_us: Option<i64>) -> Result<String, ProducerError> {
    if metrics.is_empty() {
        return Err(ProducerError::Usage("give at least one --metric name=value".into()));
    }
    let mut run = run_started("trackiq-record", identity);
    if let Some(at) = at_us {
        // A UUID v7 of that time: run ids sort by when the runs ran, as the pipeline's own do.
        run.run_id = uuid::Builder::from_unix_timestamp_millis((at.max(0) / 1000) as u64, &rand::random()).into_uuid().to_string();
        run.timestamp = at;
    }
    let ts = run.timestamp;
    let mut emitter = RunEmitter::start(bus, run, Batching { max_samples: metrics.len(), ..Default::default() }).await?;
    for m in metrics {
        emitter.push(Sample { ts_us: ts, metric: m.name.clone(), value: m.value, unit: m.unit.clone(), rank: None, step: None }).await?;
    }
    let run_id = emitter.run().run_id.clone();
    emitter.finish_at(RunStatus::Completed, None, at_us.unwrap_or_else(trackiq_schemas::now_us)).await?;
    Ok(run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_units() {
        assert_eq!(parse_metric("throughput=125.7").unwrap(), MetricArg { name: "throughput".into(), value: 125.7, unit: "1/s".into() });
        assert_eq!(parse_metric("latency_ms=8.2").unwrap().unit, "ms");
        assert_eq!(parse_metric("power=300W").unwrap(), MetricArg { name: "power".into(), value: 300.0, unit: "W".into() });
        assert_eq!(parse_metric("x=1e3 items").unwrap().value, 1000.0);
    }

    #[test]
    fn rejects_bad_metrics_naming_what_is_wrong() {
        let e = parse_metric("latency_ms=-3").unwrap_err().to_string();
        assert!(e.contains("latency_ms") && e.contains("negative"), "{e}");
        let e = parse_metric("latency_ms=NaN").unwrap_err().to_string();
        assert!(e.contains("not a finite number"), "{e}");
        let e = parse_metric("throughput=inf").unwrap_err().to_string();
        assert!(e.contains("throughput"), "{e}");
        assert!(parse_metric("latency_ms").unwrap_err().to_string().contains("no `=`"));
        assert!(parse_metric("latency_ms=fast").unwrap_err().to_string().contains("no number"));
    }
}

//! `trackiq import trackiq-json`: a `TrackiqResult` written by the original TrackIQ tools
//! (AutoPerfPy, MiniCluster, ...) becomes a run on Kafka, like any other producer's: its
//! `metrics` as samples (null ones left out), the numeric per-sample readings of
//! `tool_payload.samples` as samples at their own timestamps.

use std::collections::BTreeMap;

use serde_json::Value;
use trackiq_infra::Bus;
use trackiq_schemas::identity::{env_hash, series_id};
use trackiq_schemas::{Platform, RunStarted, RunStatus, Sample, VersionInfo, Workload};

use crate::emitter::{Batching, RunEmitter};
use crate::error::ProducerError;

/// Unit of a canonical TrackIQ metric, from its name.
pub fn unit_of(metric: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    if m.ends_with("_ms") {
        "ms"
    } else if m.ends_with("_percent") {
        "%"
    } else if m.ends_with("_watts") {
        "W"
    } else if m.ends_with("_joules") {
        "J"
    } else if m.ends_with("_celsius") {
        "C"
    } else if m.ends_with("_per_sec") {
        "1/s"
    } else if m.ends_with("_per_watt") {
        "1/s/W"
    } else {
        ""
    }
}

fn bad(field: &str, why: &str) -> ProducerError {
    ProducerError::Usage(format!("TrackiqResult field `{field}`: {why}"))
}

/// Parses `2026-02-21T02:59:10.681015` (naive: UTC) or RFC 3339 into µs since the epoch.
pub fn parse_timestamp(s: &str) -> Result<i64, ProducerError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp_micros())
        .map_err(|e| bad("timestamp", &format!("`{s}` is not an ISO 8601 time ({e})")))
}

/// The run and samples a `TrackiqResult` describes.
pub fn parse(doc: &Value) -> Result<(RunStarted, Vec<Sample>), ProducerError> {
    let obj = doc.as_object().ok_or_else(|| bad("(document)", "not a JSON object"))?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let tool = obj.get("tool_name").and_then(text).ok_or_else(|| bad("tool_name", "missing"))?;
    let ts = parse_timestamp(obj.get("timestamp").and_then(|v| v.as_str()).ok_or_else(|| bad("timestamp", "missing"))?)?;
    let p = &doc["platform"];
    let w = &doc["workload"];
    let platform = Platform {
        hardware_name: text(&p["hardware_name"]).ok_or_else(|| bad("platform.hardware_name", "missing"))?,
        os: text(&p["os"]).unwrap_or_default(),
        kernel: None,
        cpu: text(&p["cpu"]).or_else(|| text(&p["hardware_name"])).unwrap_or_default(),
        gpus: p["gpus"].as_array().map(|a| a.iter().filter_map(text).collect()).unwrap_or_default(),
        driver: text(&p["driver"]),
        framework: text(&p["framework"]),
        framework_version: text(&p["framework_version"]),
    };
    let workload = Workload {
        name: text(&w["name"]).ok_or_else(|| bad("workload.name", "missing"))?,
        kind: text(&w["workload_type"]).unwrap_or_else(|| "unknown".into()),
        batch_size: w["batch_size"].as_i64(),
        precision: text(&w["precision"]),
        sequence_length: w["sequence_length"].as_i64(),
        backend: text(&w["backend"]),
        steps: w["steps"].as_i64(),
    };
    let mut labels = BTreeMap::new();
    labels.insert("imported_from".to_string(), "trackiq-json".to_string());
    let mut run = RunStarted {
        run_id: uuid::Uuid::now_v7().to_string(),
        tool,
        tool_version: text(&doc["tool_version"]).unwrap_or_default(),
        timestamp: ts,
        version: VersionInfo { env_hash: env_hash(&platform), ..Default::default() },
        platform,
        workload,
        labels,
        series_id: String::new(),
    };
    run.series_id = series_id(&run);
    let mut samples = Vec::new();
    for (k, v) in doc["metrics"].as_object().ok_or_else(|| bad("metrics", "missing or not an object"))? {
        match v {
            Value::Null => {}
            Value::Number(n) => {
                let value = n.as_f64().ok_or_else(|| bad(&format!("metrics.{k}"), "not a finite number"))?;
                trackiq_schemas::metrics::validate_value(k, value).map_err(|e| bad(&format!("metrics.{k}"), &e))?;
                samples.push(Sample { ts_us: ts, metric: k.clone(), value, unit: unit_of(k).into(), rank: None, step: None });
            }
            _ => return Err(bad(&format!("metrics.{k}"), "not a number or null")),
        }
    }
    // Per-sample readings of the original collector, at their own times.
    for (i, s) in doc["tool_payload"]["samples"].as_array().into_iter().flatten().enumerate() {
        let at = s["timestamp"].as_f64().map_or(ts, |t| (t * 1e6) as i64);
        for (k, v) in s["metrics"].as_object().into_iter().flatten() {
            if let Some(value) = v.as_f64().filter(|x| x.is_finite()) {
                samples.push(Sample { ts_us: at, metric: format!("payload.{k}"), value, unit: unit_of(k).into(), rank: None, step: Some(i as i64) });
            }
        }
    }
    Ok((run, samples))
}

/// Imports a `TrackiqResult` document; returns the new run id.
pub async fn import_trackiq_json(bus: &Bus, doc: &Value) -> Result<String, ProducerError> {
    let (run, samples) = parse(doc)?;
    let run_id = run.run_id.clone();
    let mut e = RunEmitter::start(bus, run, Batching::default()).await?;
    for s in samples {
        e.push(s).await?;
    }
    e.finish(RunStatus::Completed, None).await?;
    Ok(run_id)
}

/// Imports nccl-tests output (the text table or the `-J` JSON file, e.g. of `all_reduce_perf`) as a run; returns the run id.
pub async fn import_nccl_tests(bus: &Bus, text: &str, test_name: &str, hardware: Option<&str>) -> Result<String, ProducerError> {
    let parsed = crate::cluster::nccl::parse_any(text).map_err(|e| ProducerError::Usage(format!("nccl-tests output: {e}")))?;
    let mut platform = crate::identity::detect_platform(hardware);
    if !parsed.devices.is_empty() {
        platform.gpus = parsed.devices.clone();
    }
    let mut labels = BTreeMap::new();
    labels.insert("imported_from".to_string(), "nccl-tests".to_string());
    let ts = trackiq_schemas::now_us();
    let dtype = parsed.rows.first().map(|r| r.dtype.clone());
    let mut run = RunStarted {
        run_id: uuid::Uuid::now_v7().to_string(),
        tool: "nccl-tests".into(),
        tool_version: String::new(),
        timestamp: ts,
        version: VersionInfo { env_hash: env_hash(&platform), ..Default::default() },
        platform,
        workload: Workload { name: test_name.into(), kind: "collective".into(), precision: dtype, ..Default::default() },
        labels,
        series_id: String::new(),
    };
    run.series_id = series_id(&run);
    let run_id = run.run_id.clone();
    let mut e = RunEmitter::start(bus, run, Batching::default()).await?;
    for s in crate::cluster::nccl::to_samples(&parsed, ts) {
        e.push(s).await?;
    }
    e.finish(RunStatus::Completed, None).await?;
    Ok(run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_files_parse_with_every_metric() {
        for text in [
            include_str!("../../tests/fixtures/trackiq/autoperfpy_real_output.json"),
            include_str!("../../tests/fixtures/trackiq/minicluster_real_output.json"),
        ] {
            let doc: Value = serde_json::from_str(text).unwrap();
            let (run, samples) = parse(&doc).unwrap();
            let non_null = doc["metrics"].as_object().unwrap().values().filter(|v| !v.is_null()).count();
            assert_eq!(samples.iter().filter(|s| !s.metric.starts_with("payload.")).count(), non_null);
            assert_eq!(run.workload.name, doc["workload"]["name"].as_str().unwrap());
        }
    }

    #[test]
    fn bad_documents_name_the_field() {
        let err = parse(&serde_json::json!({"tool_name": "x", "timestamp": "yesterday"})).unwrap_err().to_string();
        assert!(err.contains("`timestamp`"), "{err}");
        let doc = serde_json::json!({"tool_name": "x", "timestamp": "2026-01-01T00:00:00", "platform": {"hardware_name": "h"},
            "workload": {"name": "w"}, "metrics": {"latency_p50_ms": -1.0}});
        assert!(parse(&doc).unwrap_err().to_string().contains("metrics.latency_p50_ms"));
    }
}

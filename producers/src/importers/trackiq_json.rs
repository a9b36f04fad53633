//! `trackiq-json`: a `TrackiqResult` written by the original TrackIQ tools (AutoPerfPy,
//! MiniCluster, ...): its `metrics` as figures (null ones left out), the numeric per-sample
//! readings of `tool_payload.samples` as samples at their own times.

use serde_json::Value;
use trackiq_schemas::{Platform, Workload};

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft, parse_time};

/// Unit of a canonical TrackIQ metric, from its name.
pub fn unit_of(metric: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    let units = [("_ms", "ms"), ("_percent", "%"), ("_watts", "W"), ("_joules", "J"), ("_celsius", "C"), ("_per_sec", "1/s"), ("_per_watt", "1/s/W")];
    units.iter().find(|(suffix, _)| m.ends_with(suffix)).map_or("", |(_, u)| u)
}

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    let tool = root.field("tool_name", |n| n.str().map(str::to_string))?;
    let ts = root.field("timestamp", |n| {
        let s = n.str()?;
        parse_time(s).ok_or_else(|| n.error(format!("`{s}` is not an ISO 8601 time")))
    })?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut d = RunDraft::new(&tool, "");
    d.tool_version = text(&doc["tool_version"]).unwrap_or_default();
    d.time_us = Some(ts);
    let p = &doc["platform"];
    let hardware = root.field("platform", |n| n.field("hardware_name", |n| n.str().map(str::to_string)))?;
    d.platform = Platform {
        cpu: text(&p["cpu"]).unwrap_or_else(|| hardware.clone()),
        hardware_name: hardware,
        os: text(&p["os"]).unwrap_or_default(),
        kernel: None,
        gpus: p["gpus"].as_array().map(|a| a.iter().filter_map(text).collect()).unwrap_or_default(),
        driver: text(&p["driver"]),
        framework: text(&p["framework"]),
        framework_version: text(&p["framework_version"]),
    };
    let w = &doc["workload"];
    d.workload = Workload {
        name: root.field("workload", |n| n.field("name", |n| n.str().map(str::to_string)))?,
        kind: text(&w["workload_type"]).unwrap_or_else(|| "unknown".into()),
        batch_size: w["batch_size"].as_i64(),
        precision: text(&w["precision"]),
        sequence_length: w["sequence_length"].as_i64(),
        backend: text(&w["backend"]),
        steps: w["steps"].as_i64(),
    };
    root.field("metrics", |m| {
        m.members(|k, n| {
            if !n.value.is_null() {
                let value = n.num()?;
                trackiq_schemas::metrics::validate_value(k, value).map_err(|e| n.error(e))?;
                d.sample(k, unit_of(k), value, 0, None);
            }
            Ok(())
        })
    })?;
    // Per-sample readings of the original collector, at their own times (seconds).
    for (i, s) in doc["tool_payload"]["samples"].as_array().into_iter().flatten().enumerate() {
        let at = s["timestamp"].as_f64().map_or(0, |t| ((t * 1e6) as i64).saturating_sub(ts).max(0));
        for (k, v) in s["metrics"].as_object().into_iter().flatten() {
            if let Some(value) = v.as_f64().filter(|x| x.is_finite()) {
                d.sample(&format!("payload.{k}"), unit_of(k), value, at, Some(i as i64));
            }
        }
    }
    Ok(vec![d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importers::{Format, parse as import};

    #[test]
    fn conformance_files_parse_with_every_metric() {
        for text in [
            include_str!("../../../tests/fixtures/trackiq/autoperfpy_real_output.json"),
            include_str!("../../../tests/fixtures/trackiq/minicluster_real_output.json"),
        ] {
            let doc: Value = serde_json::from_str(text).unwrap();
            let runs = import(Format::TrackiqJson, text.as_bytes(), &ImportContext::default()).unwrap();
            let non_null = doc["metrics"].as_object().unwrap().values().filter(|v| !v.is_null()).count();
            assert_eq!(runs[0].samples.iter().filter(|s| !s.metric.starts_with("payload.")).count(), non_null);
            assert_eq!(runs[0].run.workload.name, doc["workload"]["name"].as_str().unwrap());
        }
    }

    #[test]
    fn bad_documents_name_the_field() {
        let ctx = ImportContext { file: "r.json".into(), ..Default::default() };
        let err = import(Format::TrackiqJson, br#"{"tool_name": "x", "timestamp": "yesterday"}"#, &ctx).unwrap_err().to_string();
        assert!(err.starts_with("r.json: $.timestamp: `yesterday`"), "{err}");
        let doc = br#"{"tool_name": "x", "timestamp": "2026-01-01T00:00:00", "platform": {"hardware_name": "h"}, "workload": {"name": "w"}, "metrics": {"latency_p50_ms": -1.0}}"#;
        assert!(import(Format::TrackiqJson, doc, &ctx).unwrap_err().to_string().contains("$.metrics.latency_p50_ms"));
    }
}

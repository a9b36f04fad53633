//! `autoperfpy`: the two result files AutoPerfPy writes besides its TrackiqResult.
//! - its LLM **bench-inference** result (`model`, `backend`, `num_prompts`, mean/p99 TTFT and
//!   TPOT in ms, `throughput_tokens_per_sec`): one run of figures;
//! - its **collector report**, JSON (`collector_name`, `profile`, `run_label`, `samples` with
//!   `timestamp` seconds and `metrics`) or CSV (a `timestamp` column then one column per
//!   metric): one run, each reading a sample. Readings with a catalog equivalent take its name
//!   (`cpu_percent` → `cpu_utilization_percent`, `gpu_percent` → `gpu_utilization_percent`,
//!   `power_w` → `gpu_power_watts`, `temperature_c` → `gpu_temperature_celsius`,
//!   `memory_used_mb` → `memory_used_mib`), so telemetry is reported and never gates.
//! Neither file has an absolute time (collector timestamps start at 0): the file's time.

use std::collections::BTreeMap;

use serde_json::Value;

use super::node::{Node, parse_json};
use super::{ImportContext, ImportError, RunDraft};

/// A collector reading's name and unit in trackiq.
fn reading(name: &str) -> (&str, &'static str) {
    match name {
        "latency_ms" => ("latency_ms", "ms"),
        "throughput_fps" => ("throughput_fps", "1/s"),
        "cpu_percent" => ("cpu_utilization_percent", "%"),
        "gpu_percent" => ("gpu_utilization_percent", "%"),
        "power_w" => ("gpu_power_watts", "W"),
        "temperature_c" => ("gpu_temperature_celsius", "C"),
        "memory_used_mb" => ("memory_used_mib", "MiB"),
        other => (other, ""),
    }
}

/// Collector timestamps are seconds from the run's start, or Unix seconds.
fn offset_us(t: f64, first: f64) -> i64 {
    (((if first > 1e9 { t - first } else { t }) * 1e6) as i64).max(0)
}

pub fn parse(content: &[u8], ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    if content.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return collector_csv(content, ctx);
    }
    let doc = parse_json(content, ctx)?;
    let root = Node::root(&doc, ctx);
    if doc.get("samples").is_some() || doc.get("collector_name").is_some() {
        return collector_json(&doc, root, ctx);
    }
    let model = root.field("model", |n| n.str().map(str::to_string))?;
    let mut d = RunDraft::new("autoperfpy", model.clone());
    d.platform = ctx.machine();
    d.workload.name = model;
    d.workload.kind = "serving".into();
    d.workload.backend = root.str_at("backend");
    for key in ["mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms"] {
        if let Some(x) = root.opt_field(key, |n| n.non_negative())? {
            d.sample(key, "ms", x, 0, None);
        }
    }
    if let Some(x) = root.opt_field("throughput_tokens_per_sec", |n| n.non_negative())? {
        d.sample("tokens_per_sec", "tokens/s", x, 0, None);
    }
    if d.samples.is_empty() {
        return Err(root.error("no figures: expected mean_ttft_ms, p99_ttft_ms, mean_tpot_ms, p99_tpot_ms or throughput_tokens_per_sec"));
    }
    Ok(vec![d])
}

fn collector_json(doc: &Value, root: Node<'_>, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let profile = root.str_at("profile").or_else(|| root.str_at("collector_name")).unwrap_or_else(|| "autoperfpy".into());
    let mut d = RunDraft::new("autoperfpy", profile.clone());
    d.platform = ctx.machine();
    d.workload.name = profile;
    d.workload.kind = "inference".into();
    d.version.version_tag = root.str_at("run_label");
    if let Some(c) = root.str_at("collector_name") {
        d.labels.insert("collector".into(), c);
    }
    let first = doc["samples"][0]["timestamp"].as_f64().unwrap_or(0.0);
    root.field("samples", |samples| {
        samples.each(|i, s| {
            let at = offset_us(s.field("timestamp", |n| n.num())?, first);
            s.field("metrics", |m| {
                m.members(|k, v| {
                    if !v.value.is_null() {
                        let (name, unit) = reading(k);
                        d.sample(name, unit, v.num()?, at, Some(i as i64));
                    }
                    Ok(())
                })
            })
        })
    })?;
    d.duration_us = d.samples.iter().map(|s| s.ts_us).max();
    Ok(vec![d])
}

fn collector_csv(content: &[u8], ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(content);
    let header: Vec<String> = reader.headers().map_err(|e| ctx.error("line 1", format!("not CSV: {e}")))?.iter().map(str::to_string).collect();
    if header.first().map(String::as_str) != Some("timestamp") || header.len() < 2 {
        return Err(ctx.error("line 1", format!("expected a header `timestamp,<metric>,...` (AutoPerfPy's collector CSV), found `{}`", header.join(","))));
    }
    let stem = std::path::Path::new(&ctx.file).file_stem().map_or("autoperfpy".to_string(), |s| s.to_string_lossy().into_owned());
    let mut d = RunDraft::new("autoperfpy", stem.clone());
    d.platform = ctx.machine();
    d.workload.name = stem;
    d.workload.kind = "inference".into();
    let mut first = None;
    let mut columns: BTreeMap<usize, (&str, &str)> = BTreeMap::new();
    for (i, h) in header.iter().enumerate().skip(1) {
        columns.insert(i, reading(h));
    }
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ctx.error(format!("line {line}"), format!("not CSV: {e}")))?;
        let number = |col: usize| -> Result<Option<f64>, ImportError> {
            let cell = record.get(col).unwrap_or("");
            if cell.is_empty() {
                return Ok(None);
            }
            cell.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some).ok_or_else(|| ctx.error(format!("line {line}, column `{}`", header[col]), format!("expected a number, found `{cell}`")))
        };
        let t = number(0)?.ok_or_else(|| ctx.error(format!("line {line}, column `timestamp`"), "expected a number, found nothing"))?;
        let at = offset_us(t, *first.get_or_insert(t));
        for (&col, &(name, unit)) in &columns {
            if let Some(x) = number(col)? {
                d.sample(name, unit, x, at, Some(i as i64));
            }
        }
    }
    d.duration_us = d.samples.iter().map(|s| s.ts_us).max();
    Ok(vec![d])
}

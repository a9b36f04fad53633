//! `trackiq export`: a run as the TrackIQ result contract (the way in is `trackiq import`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use trackiq::config::Config;

use super::history::{lit, rows};

/// Metrics of the TrackIQ contract, always present in an export (null when not measured).
const CANONICAL: &[&str] = &[
    "throughput_samples_per_sec",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "memory_utilization_percent",
    "communication_overhead_percent",
    "power_consumption_watts",
    "energy_per_step_joules",
    "performance_per_watt",
    "temperature_celsius",
];
/// Contract metrics exported when the run has them (LLM serving).
const OPTIONAL: &[&str] = &["ttft_ms", "tokens_per_sec", "decode_tpt_ms", "goodput_requests_per_sec"];

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    TrackiqJson,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run to export (its id, as `bench` and `record` print it).
    #[arg(value_name = "RUN_ID")]
    run_id: String,
    /// trackiq-json: a TrackiqResult document for the original TrackIQ tools; csv: the run's samples.
    #[arg(long, value_enum, default_value_t = ExportFormat::TrackiqJson)]
    format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

type Row = serde_json::Map<String, serde_json::Value>;

fn text(r: &Row, k: &str) -> serde_json::Value {
    r.get(k).cloned().unwrap_or(serde_json::Value::Null)
}

async fn trackiq_json(config: &Config, run: &str) -> anyhow::Result<serde_json::Value> {
    let id = rows(
        config,
        &format!(
            "SELECT tool, tool_version, CAST(started_at AS BIGINT) AS started_us, hardware_name, os, cpu, gpus, framework, framework_version, \
             workload, workload_type, batch_size, precision, steps, series_id FROM runs WHERE run_id = {} AND event = 'started' LIMIT 1",
            lit(run)
        ),
    )
    .await?;
    let Some(id) = id.first() else { bail!("run {run} is not in the history") };
    let summary = rows(config, &format!("SELECT DISTINCT kind, metric, mean FROM summaries WHERE run_id = {}", lit(run))).await?;
    if summary.is_empty() {
        bail!("run {run} has no summary in the history yet");
    }
    // A measured sample metric wins over a derived figure of the same name.
    let value_of = |name: &str| {
        let pick = |kind: &str| summary.iter().find(|r| r.get("metric").and_then(|m| m.as_str()) == Some(name) && r.get("kind").and_then(|k| k.as_str()) == Some(kind));
        pick("samples").or_else(|| pick("derived")).and_then(|r| r.get("mean").cloned())
    };
    let mut metrics = serde_json::Map::new();
    for m in CANONICAL {
        metrics.insert(m.to_string(), value_of(m).unwrap_or(serde_json::Value::Null));
    }
    for m in OPTIONAL {
        if let Some(v) = value_of(m) {
            metrics.insert(m.to_string(), v);
        }
    }
    let verdicts = rows(config, &format!("SELECT DISTINCT run_severity, metric, severity, change_pct, coalesce(gates, true) AS gates FROM verdicts WHERE run_id = {} AND kind = 'metric'", lit(run))).await?;
    let status = verdicts.first().and_then(|r| r.get("run_severity").and_then(|s| s.as_str())).unwrap_or("not_judged").to_string();
    // The metrics that made the run block: blocked and gating (a reported metric never does).
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|r| r.get("severity").and_then(|s| s.as_str()) == Some("block") && r.get("gates").and_then(|g| g.as_bool()) == Some(true))
        .filter_map(|r| r.get("metric").and_then(|m| m.as_str()).map(str::to_string))
        .collect();
    let delta = verdicts
        .iter()
        .find(|r| r.get("metric").and_then(|m| m.as_str()) == Some("latency_ms"))
        .and_then(|r| r.get("change_pct").and_then(|c| c.as_f64()))
        .unwrap_or(0.0);
    let samples = rows(config, &format!("SELECT DISTINCT CAST(ts AS BIGINT) AS ts_us, metric, value, unit, rank, step FROM samples WHERE run_id = {} ORDER BY ts_us, metric", lit(run))).await?;
    let started = id.get("started_us").and_then(|v| v.as_i64()).unwrap_or(0);
    let timestamp = chrono::DateTime::from_timestamp_micros(started).unwrap_or_default().naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    Ok(serde_json::json!({
        "tool_name": text(id, "tool"),
        "tool_version": text(id, "tool_version"),
        "timestamp": timestamp,
        "platform": {
            "hardware_name": text(id, "hardware_name"), "os": text(id, "os"), "cpu": text(id, "cpu"), "gpus": text(id, "gpus"),
            "framework": text(id, "framework"), "framework_version": text(id, "framework_version"),
        },
        "workload": {
            "name": text(id, "workload"), "workload_type": text(id, "workload_type"), "batch_size": text(id, "batch_size"),
            "precision": text(id, "precision"), "steps": text(id, "steps"),
        },
        "metrics": metrics,
        "regression": {"baseline_id": null, "delta_percent": delta, "status": status, "failed_metrics": failed},
        "tool_payload": {
            "exported_by": "trackiq",
            "run_id": run,
            "series_id": text(id, "series_id"),
            "sample_count": samples.len(),
            "samples": samples.iter().map(|s| serde_json::json!({
                "timestamp": s.get("ts_us").and_then(|t| t.as_f64()).map(|t| t / 1e6),
                "metric": text(s, "metric"), "value": text(s, "value"), "unit": text(s, "unit"), "rank": text(s, "rank"), "step": text(s, "step"),
            })).collect::<Vec<_>>(),
        },
        "schema_version": "1.1.0",
    }))
}

async fn csv(config: &Config, run: &str) -> anyhow::Result<String> {
    let sql = format!(
        "SELECT DISTINCT run_id, CAST(ts AS BIGINT) AS timestamp_us, metric, value, unit, rank, step FROM samples WHERE run_id = {} ORDER BY timestamp_us, metric, step",
        lit(run)
    );
    let batches = super::sql::query(config, &sql).await?;
    if batches.iter().map(|b| b.num_rows()).sum::<usize>() == 0 {
        bail!("run {run} has no samples in the history");
    }
    super::sql::render(&batches, super::sql::Format::Csv)
}

pub async fn export(config: Config, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let text = match a.format {
        ExportFormat::TrackiqJson => serde_json::to_string_pretty(&trackiq_json(&config, &a.run_id).await?)?,
        ExportFormat::Csv => csv(&config, &a.run_id).await?,
    };
    match a.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

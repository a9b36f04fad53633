//! `google-benchmark`: the JSON of `--benchmark_format=json` / `--benchmark_out`. One run per
//! benchmark (`run_name`), at the context's `date` on its `host_name`. Each repetition
//! (`run_type` "iteration") is one sample: `latency_ms` from `real_time`, `cpu_time_ms` from
//! `cpu_time` (per iteration, in the row's `time_unit`), `throughput_samples_per_sec` from
//! `items_per_second`, `bytes_per_sec`, and user counters as `counter.<name>`. Aggregate rows
//! (mean, median, stddev, cv, BigO) are the tool's own statistics of those repetitions and are
//! not samples; only when a file holds aggregates alone (`--benchmark_report_aggregates_only`)
//! does the median become the run's `latency_p50_ms`.

use serde_json::Value;

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft, parse_time};

/// Keys of a benchmark row that are not user counters.
const FIELDS: &[&str] = &[
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations", "real_time",
    "cpu_time", "time_unit", "items_per_second", "bytes_per_second", "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
    "big_o", "rms", "complexity_n", "skipped", "skip_message",
];

/// Milliseconds per one of the tool's time units.
fn ms_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-6,
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        _ => return None,
    })
}

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    let context = &doc["context"];
    let time = root.field("context", |c| {
        c.opt_field("date", |n| {
            let s = n.str()?;
            parse_time(s).ok_or_else(|| n.error(format!("`{s}` is not a date the tool writes")))
        })
    })?;
    let mut runs: Vec<(RunDraft, bool)> = Vec::new();
    root.field("benchmarks", |b| {
        b.each(|_, row| {
            let name = row.field("name", |n| n.str().map(str::to_string))?;
            let run_name = row.str_at("run_name").unwrap_or_else(|| name.clone());
            let i = match runs.iter().position(|(d, _)| d.key == run_name) {
                Some(i) => i,
                None => {
                    let mut d = RunDraft::new("google-benchmark", run_name.clone());
                    d.time_us = time;
                    d.tool_version = context["library_version"].as_str().unwrap_or_default().to_string();
                    d.platform.hardware_name = context["host_name"].as_str().unwrap_or_default().to_string();
                    if let (Some(n), Some(mhz)) = (context["num_cpus"].as_i64(), context["mhz_per_cpu"].as_i64()) {
                        d.platform.cpu = format!("{n} CPUs at {mhz} MHz");
                    }
                    d.workload.name = run_name;
                    d.workload.kind = "microbenchmark".into();
                    if let Some(exe) = context["executable"].as_str() {
                        d.labels.insert("executable".into(), exe.rsplit('/').next().unwrap_or(exe).to_string());
                    }
                    runs.push((d, false));
                    runs.len() - 1
                }
            };
            let (d, has_iterations) = &mut runs[i];
            if row.value["error_occurred"].as_bool() == Some(true) {
                d.failed = Some(row.str_at("error_message").unwrap_or_else(|| "the benchmark reported an error".into()));
                return Ok(());
            }
            let unit = row.field("time_unit", |n| {
                let u = n.str()?;
                ms_per(u).ok_or_else(|| n.error(format!("`{u}` is not a time unit (ns, us, ms, s)")))
            });
            match row.str_at("run_type").as_deref().unwrap_or("iteration") {
                "iteration" => {
                    let unit = unit?;
                    *has_iterations = true;
                    let step = row.opt_field("repetition_index", |n| n.int())?.unwrap_or(d.samples.iter().filter(|s| s.metric == "latency_ms").count() as i64);
                    d.sample("latency_ms", "ms", row.field("real_time", |n| n.non_negative())? * unit, 0, Some(step));
                    if let Some(cpu) = row.opt_field("cpu_time", |n| n.non_negative())? {
                        d.sample("cpu_time_ms", "ms", cpu * unit, 0, Some(step));
                    }
                    if let Some(x) = row.opt_field("items_per_second", |n| n.non_negative())? {
                        d.sample("throughput_samples_per_sec", "items/s", x, 0, Some(step));
                    }
                    if let Some(x) = row.opt_field("bytes_per_second", |n| n.non_negative())? {
                        d.sample("bytes_per_sec", "B/s", x, 0, Some(step));
                    }
                    row.members(|k, v| {
                        if !FIELDS.contains(&k) && v.value.is_number() {
                            d.sample(&format!("counter.{k}"), "", v.num()?, 0, Some(step));
                        }
                        Ok(())
                    })?;
                }
                "aggregate" if row.str_at("aggregate_name").as_deref() == Some("median") => {
                    let unit = unit?;
                    d.samples.retain(|s| s.metric != "latency_p50_ms");
                    d.sample("latency_p50_ms", "ms", row.field("real_time", |n| n.non_negative())? * unit, 0, None);
                }
                "aggregate" => {}
                other => return Err(row.error(format!("`run_type` is `{other}`; expected `iteration` or `aggregate`"))),
            }
            Ok(())
        })
    })?;
    // Repetitions are the samples; the median aggregate only stands in when there are none.
    Ok(runs
        .into_iter()
        .map(|(mut d, has_iterations)| {
            if has_iterations {
                d.samples.retain(|s| s.metric != "latency_p50_ms");
            }
            d
        })
        .collect())
}

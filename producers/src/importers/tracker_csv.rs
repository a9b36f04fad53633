//! `tracker-csv`: the IPFS performance tracker's results, one row per result with the
//! columns `model, hardware, batch_size, throughput, latency, memory, power, version_tag,
//! git_commit, environment_hash, timestamp` (any order; `env_hash` and `created_at` are read
//! too). Each row is a run at its own timestamp: `throughput` → `throughput_samples_per_sec`
//! (items/s), `latency` → `latency_ms`, `memory` → `memory_mb`, `power` → `power_watts`.
//! A row's run id comes from the row itself, so a tracker file that grew imports only its new
//! rows.

use super::{Format, ImportContext, ImportError, ImportedRun, RunDraft, finish, parse_time};

/// Columns with figures: (column, metric, unit).
const FIGURES: &[(&str, &str, &str)] =
    &[("throughput", "throughput_samples_per_sec", "items/s"), ("latency", "latency_ms", "ms"), ("memory", "memory_mb", "MB"), ("power", "power_watts", "W")];

pub fn parse(content: &[u8], ctx: &ImportContext) -> Result<Vec<ImportedRun>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(content);
    let header: Vec<String> = reader.headers().map_err(|e| ctx.error("line 1", format!("not CSV: {e}")))?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let required = |name: &str| col(&[name]).ok_or_else(|| ctx.error("line 1", format!("no `{name}` column (expected model, hardware, timestamp and figures: throughput, latency, memory, power)")));
    let (model, hardware) = (required("model")?, required("hardware")?);
    let timestamp = col(&["timestamp", "created_at"]).ok_or_else(|| ctx.error("line 1", "no `timestamp` column"))?;
    let figures: Vec<(usize, &str, &str)> = FIGURES.iter().filter_map(|(c, m, u)| col(&[c]).map(|i| (i, *m, *u))).collect();
    if figures.is_empty() {
        return Err(ctx.error("line 1", "no figure columns: expected at least one of throughput, latency, memory, power"));
    }
    let (batch, tag, commit, env) = (col(&["batch_size"]), col(&["version_tag"]), col(&["git_commit"]), col(&["environment_hash", "env_hash"]));
    let mut runs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let at = |column: usize| format!("line {line}, column `{}`", header[column]);
        let record = record.map_err(|e| ctx.error(format!("line {line}"), format!("not CSV: {e}")))?;
        let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).filter(|s| !s.is_empty()).map(str::to_string);
        let text = |c: usize| cell(Some(c)).ok_or_else(|| ctx.error(at(c), "expected a value, found nothing"));
        let mut d = RunDraft::new("ipfs-tracker", String::new());
        d.workload.name = text(model)?;
        d.workload.kind = "inference".into();
        d.platform.hardware_name = text(hardware)?;
        let when = text(timestamp)?;
        d.time_us = Some(parse_time(&when).ok_or_else(|| ctx.error(at(timestamp), format!("`{when}` is not a time (ISO 8601 or Unix seconds)")))?);
        if let Some(b) = cell(batch) {
            d.workload.batch_size = Some(b.parse().map_err(|_| ctx.error(at(batch.unwrap()), format!("expected an integer batch size, found `{b}`")))?);
        }
        d.version.version_tag = cell(tag);
        d.version.git_commit = cell(commit);
        d.version.env_hash = cell(env).unwrap_or_default();
        for &(c, metric, unit) in &figures {
            if let Some(v) = cell(Some(c)) {
                let x = v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| ctx.error(at(c), format!("expected a number ≥ 0, found `{v}`")))?;
                d.sample(metric, unit, x, 0, None);
            }
        }
        if d.samples.is_empty() {
            return Err(ctx.error(format!("line {line}"), "a row without figures (throughput, latency, memory, power are all empty)"));
        }
        let row = record.iter().collect::<Vec<_>>().join("\u{1f}");
        let row_ctx = ImportContext { file: format!("{} line {line}", ctx.file), ..ctx.clone() };
        runs.extend(finish(Format::TrackerCsv, row.as_bytes(), &row_ctx, vec![d])?);
    }
    if runs.is_empty() {
        return Err(ctx.error("(file)", "no rows after the header"));
    }
    Ok(runs)
}

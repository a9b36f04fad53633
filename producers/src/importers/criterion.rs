//! `criterion`: a criterion output directory (`target/criterion`, or any directory under
//! it). Every benchmark's latest measurement (`<id>/new/`: `benchmark.json`, `sample.json`,
//! `estimates.json`) is one run: each sample's time per iteration (`times[i] / iters[i]`, ns)
//! a `latency_ms` sample, the median estimate `latency_p50_ms` only when there are no samples.
//! Criterion records no time or machine: the time `sample.json` was written and this host
//! (or `--at`, `--hardware`). The directory imports whole or not at all.

use std::path::{Path, PathBuf};

use super::node::{Node, parse_json};
use super::{Format, ImportContext, ImportError, ImportedRun, RunDraft, finish, mtime_us};

/// Every `new/benchmark.json` under `dir`, sorted (criterion's `report/` pages are skipped).
fn benchmarks(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            match path.file_name().and_then(|n| n.to_str()) {
                Some("report" | "base" | "change") => {}
                Some("new") if path.join("benchmark.json").is_file() => out.push(path),
                _ => benchmarks(&path, out)?,
            }
        }
    }
    Ok(())
}

/// Reads a JSON file of a benchmark; errors name that file.
fn read(path: &Path, ctx: &ImportContext) -> Result<(Vec<u8>, serde_json::Value, ImportContext), ImportError> {
    let sub = ImportContext { file: path.display().to_string(), file_time_us: mtime_us(path), ..ctx.clone() };
    let bytes = std::fs::read(path).map_err(|e| sub.error("(file)", format!("cannot read: {e}")))?;
    let doc = parse_json(&bytes, &sub)?;
    Ok((bytes, doc, sub))
}

pub fn parse_dir(dir: &Path, ctx: &ImportContext) -> Result<Vec<ImportedRun>, ImportError> {
    let mut found = Vec::new();
    benchmarks(dir, &mut found).map_err(|e| ctx.error("(directory)", format!("cannot list: {e}")))?;
    if found.is_empty() {
        return Err(ctx.error("(directory)", "no criterion benchmark here (expected <benchmark>/new/benchmark.json, as in target/criterion)"));
    }
    found.sort();
    let mut runs = Vec::new();
    for new in found {
        let (meta_bytes, meta, meta_ctx) = read(&new.join("benchmark.json"), ctx)?;
        let id = Node::root(&meta, &meta_ctx).field("full_id", |n| n.str().map(str::to_string))?;
        let mut d = RunDraft::new("criterion", id.clone());
        d.platform = ctx.machine();
        d.workload.name = id;
        d.workload.kind = "microbenchmark".into();
        if let Some(g) = meta["group_id"].as_str() {
            d.labels.insert("group".into(), g.to_string());
        }
        let sample_path = new.join("sample.json");
        let (mut content, sample, sample_ctx) = read(&sample_path, ctx)?;
        let s = Node::root(&sample, &sample_ctx);
        let iters = s.field("iters", |n| n.numbers())?;
        let times = s.field("times", |n| n.numbers())?;
        if iters.len() != times.len() {
            return Err(sample_ctx.error("$.times", format!("{} times for {} iteration counts", times.len(), iters.len())));
        }
        let mut at = 0.0;
        for (i, (n, t)) in iters.iter().zip(&times).enumerate() {
            if *n <= 0.0 {
                return Err(sample_ctx.error(format!("$.iters[{i}]"), "expected a positive iteration count"));
            }
            d.sample("latency_ms", "ms", t / n / 1e6, (at / 1e3) as i64, Some(i as i64));
            at += t;
        }
        d.duration_us = Some((at / 1e3) as i64);
        if times.is_empty() {
            let (_, est, est_ctx) = read(&new.join("estimates.json"), ctx)?;
            let median = Node::root(&est, &est_ctx).field("median", |m| m.field("point_estimate", |n| n.non_negative()))?;
            d.sample("latency_p50_ms", "ms", median / 1e6, 0, None);
        }
        content.extend_from_slice(&meta_bytes);
        let file_ctx = ImportContext { file_time_us: sample_ctx.file_time_us, ..ctx.clone() };
        runs.extend(finish(Format::Criterion, &content, &file_ctx, vec![d])?);
    }
    Ok(runs)
}

//! `nccl-tests`: the text table or the `-J` JSON file of an nccl-tests binary (e.g.
//! `all_reduce_perf`), one run per file with the figures per message size. The `-J` file's
//! `start_time` is the run's time; the text table has none: the file's modification time
//! unless `--at` says otherwise.

use super::{ImportContext, ImportError, RunDraft};
use crate::cluster::nccl;

pub fn parse(content: &[u8], ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let text = std::str::from_utf8(content).map_err(|e| ctx.error(format!("byte {}", e.valid_up_to()), "not UTF-8 text"))?;
    let parsed = nccl::parse_any(text).map_err(|e| ctx.error("(file)", format!("not nccl-tests output: {e}")))?;
    let test = std::path::Path::new(&ctx.file).file_stem().map_or("nccl-tests".to_string(), |s| s.to_string_lossy().into_owned());
    let mut d = RunDraft::new("nccl-tests", "");
    d.platform = ctx.machine();
    d.platform.gpus = parsed.devices.clone();
    d.workload.name = test;
    d.workload.kind = "collective".into();
    d.workload.precision = parsed.rows.first().map(|r| r.dtype.clone());
    d.samples = nccl::to_samples(&parsed, 0);
    // The `-J` file says when it ran and which nccl-tests wrote it.
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
        d.time_us = doc["start_time"].as_str().and_then(super::parse_time);
        d.tool_version = doc["version"].as_str().map(str::to_string).or_else(|| doc["version"].as_i64().map(|v| v.to_string())).unwrap_or_default();
    }
    Ok(vec![d])
}

//! `--format auto`: which tool wrote a file, from its content (the keys a tool always writes,
//! a CSV header, nccl-tests' banner). Ambiguity is an error naming the candidates' keys, so a
//! file is never imported as the wrong thing.

use std::sync::OnceLock;

use serde_json::Value;
use trackiq_schemas::Platform;

use super::{Format, ImportContext, ImportError};

/// This machine's platform, read once (formats that record no machine ran here unless
/// `--hardware` says otherwise).
pub fn this_host() -> Platform {
    static HOST: OnceLock<Platform> = OnceLock::new();
    HOST.get_or_init(|| crate::identity::detect_platform(None)).clone()
}

fn json_format(doc: &Value) -> Option<Format> {
    let has = |k: &str| doc.get(k).is_some();
    if has("machine_info") && has("benchmarks") {
        return Some(Format::PytestBenchmark);
    }
    if has("context") && has("benchmarks") {
        return Some(Format::GoogleBenchmark);
    }
    if has("tool_name") && has("metrics") && has("platform") {
        return Some(Format::TrackiqJson);
    }
    if has("nccl_version") || (has("results") && has("average_bus_bandwidth")) {
        return Some(Format::NcclTests);
    }
    if doc["results"].as_array().is_some_and(|r| r.first().is_some_and(|x| x.get("command").is_some())) {
        return Some(Format::Hyperfine);
    }
    if has("model_id") && (has("ttfts") || has("output_throughput") || has("median_ttft_ms")) {
        return Some(Format::Vllm);
    }
    if has("collector_name") || (has("samples") && has("summary")) || (has("model") && has("mean_ttft_ms")) {
        return Some(Format::Autoperfpy);
    }
    // BMF: every member an object of measures, each an object with a `value`.
    let bmf = doc.as_object().is_some_and(|o| {
        !o.is_empty() && o.values().all(|m| m.as_object().is_some_and(|m| !m.is_empty() && m.values().all(|x| x.get("value").is_some())))
    });
    bmf.then_some(Format::Bmf)
}

/// The format of `content`.
pub fn detect(content: &[u8], ctx: &ImportContext) -> Result<Format, ImportError> {
    let start = content.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(content.len());
    if content.get(start) == Some(&b'{') {
        let doc = super::node::parse_json(content, ctx)?;
        return json_format(&doc).ok_or_else(|| {
            let keys: Vec<&str> = doc.as_object().map(|o| o.keys().take(8).map(String::as_str).collect()).unwrap_or_default();
            ctx.error("$", format!("a JSON document with keys {keys:?} is none of the formats trackiq reads ({}): name its format instead of auto", names()))
        });
    }
    let text = String::from_utf8_lossy(&content[start..content.len().min(start + 4096)]);
    let first = text.lines().next().unwrap_or("").to_ascii_lowercase();
    let columns: Vec<&str> = first.split(',').map(str::trim).collect();
    if ["model", "hardware"].iter().all(|c| columns.contains(c)) && (columns.contains(&"timestamp") || columns.contains(&"created_at")) {
        return Ok(Format::TrackerCsv);
    }
    if columns.first() == Some(&"timestamp") && columns.len() > 1 {
        return Ok(Format::Autoperfpy);
    }
    if text.contains("nThread") || text.contains("out-of-place") || text.contains("Avg bus bandwidth") {
        return Ok(Format::NcclTests);
    }
    let start: String = first.chars().take(60).collect();
    Err(ctx.error("line 1", format!("`{}` starts no format trackiq reads ({}): name its format instead of auto", start.escape_debug(), names())))
}

fn names() -> String {
    Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

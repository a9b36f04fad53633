//! `vllm`: the result JSON of `vllm bench serve --save-result` (and of the older
//! `benchmark_serving.py`). One run: the model served, at the file's `date` (vLLM writes the
//! local time without a zone; read as UTC unless `--at` says otherwise). With
//! `--save-detailed`, each request is a sample: `ttft_ms` (`ttfts`, seconds), its
//! inter-token latencies `itl_ms` (`itls`), `output_tokens`; a request with an error is an
//! `iteration_failed` sample instead. The rates are figures (`tokens_per_sec`,
//! `request_throughput_per_sec`, `goodput_requests_per_sec`); without per-request data the
//! tool's percentiles (`median_ttft_ms`, `p99_itl_ms`, ...) are the figures.

use serde_json::Value;

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft, parse_time};

/// `mean_ttft_ms`, `p99.9_e2el_ms`, ...: the tool's own statistics of its requests.
fn is_percentile_key(k: &str) -> bool {
    let Some(rest) = k.strip_suffix("_ms") else { return false };
    let Some((stat, metric)) = rest.split_once('_') else { return false };
    ["ttft", "tpot", "itl", "e2el"].contains(&metric)
        && (["mean", "median", "std"].contains(&stat) || stat.strip_prefix('p').is_some_and(|p| p.parse::<f64>().is_ok()))
}

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    let model = root.field("model_id", |n| n.str().map(str::to_string))?;
    let mut d = RunDraft::new("vllm-bench-serve", model.clone());
    d.time_us = root.opt_field("date", |n| {
        let s = n.str()?;
        parse_time(s).ok_or_else(|| n.error(format!("`{s}` is not a date vLLM writes (YYYYMMDD-HHMMSS)")))
    })?;
    d.duration_us = root.opt_field("duration", |n| n.non_negative())?.map(|s| (s * 1e6) as i64);
    d.platform = ctx.machine();
    d.workload.name = model;
    d.workload.kind = "serving".into();
    d.workload.backend = root.str_at("backend");
    for key in ["request_rate", "max_concurrency", "burstiness", "label"] {
        if let Some(v) = root.value.get(key).and_then(|v| Node::root(v, ctx).text()) {
            d.labels.insert(key.into(), v);
        }
    }
    let ttfts = root.opt_field("ttfts", |n| n.numbers())?;
    if let Some(ttfts) = &ttfts {
        let errors = root.opt_field("errors", |n| n.each(|_, e| Ok(e.value.as_str().is_some_and(|s| !s.is_empty()))))?;
        let itls = root.opt_field("itls", |n| n.each(|_, r| r.numbers()))?;
        let outputs = root.opt_field("output_lens", |n| n.numbers())?;
        for (name, len) in [("errors", errors.as_ref().map(Vec::len)), ("itls", itls.as_ref().map(Vec::len)), ("output_lens", outputs.as_ref().map(Vec::len))] {
            if let Some(len) = len.filter(|&l| l != ttfts.len()) {
                return Err(root.error(format!("`{name}` has {len} entries but `ttfts` has {}", ttfts.len())));
            }
        }
        if let Some(e) = errors.as_ref().filter(|e| !e.is_empty() && e.iter().all(|failed| *failed)) {
            d.failed = Some(format!("all {} requests failed", e.len()));
        }
        for (i, ttft) in ttfts.iter().enumerate() {
            let step = Some(i as i64);
            let failed = errors.as_ref().is_some_and(|e| e[i]);
            d.sample("iteration_failed", "bool", if failed { 1.0 } else { 0.0 }, 0, step);
            if failed {
                continue;
            }
            d.sample("ttft_ms", "ms", ttft * 1e3, 0, step);
            for itl in itls.as_ref().map(|x| x[i].as_slice()).unwrap_or_default() {
                d.sample("itl_ms", "ms", itl * 1e3, 0, step);
            }
            if let Some(o) = &outputs {
                d.sample("output_tokens", "tokens", o[i], 0, step);
            }
        }
    }
    for (key, metric, unit) in [
        ("output_throughput", "tokens_per_sec", "tokens/s"),
        ("request_throughput", "request_throughput_per_sec", "requests/s"),
        ("request_goodput", "goodput_requests_per_sec", "requests/s"),
    ] {
        if let Some(x) = root.opt_field(key, |n| n.non_negative())? {
            d.sample(metric, unit, x, 0, None);
        }
    }
    if ttfts.is_none() {
        root.members(|k, n| {
            if is_percentile_key(k) && !n.value.is_null() {
                d.sample(k, "ms", n.non_negative()?, 0, None);
            }
            Ok(())
        })?;
    }
    if d.samples.is_empty() {
        return Err(root.error("no figures: expected `ttfts` (with --save-detailed) or `output_throughput` and the tool's percentiles (`median_ttft_ms`, ...)"));
    }
    Ok(vec![d])
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_keys() {
        for k in ["mean_ttft_ms", "median_tpot_ms", "p99_itl_ms", "p99.9_e2el_ms", "std_e2el_ms"] {
            assert!(super::is_percentile_key(k), "{k}");
        }
        for k in ["mean_ttft", "total_ms", "p99_foo_ms", "px_ttft_ms"] {
            assert!(!super::is_percentile_key(k), "{k}");
        }
    }
}

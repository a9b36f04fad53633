//! `pytest-benchmark`: the `--benchmark-json` file. One run per benchmark (its `fullname`),
//! at the file's `datetime`, with the commit and machine pytest-benchmark recorded. With
//! per-round data (`stats.data`: each round's time per iteration, seconds; always in
//! `--benchmark-json`, in `--benchmark-autosave` files only with `--benchmark-save-data`) each
//! round is a `latency_ms` sample; without it only the median is known (`latency_p50_ms`).

use serde_json::Value;

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft, parse_time};

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    let version = root.str_at("version").unwrap_or_default();
    let time = root.opt_field("datetime", |n| {
        let s = n.str()?;
        parse_time(s).ok_or_else(|| n.error(format!("`{s}` is not an ISO 8601 time")))
    })?;
    let machine = &doc["machine_info"];
    let commit = doc["commit_info"]["id"].as_str().filter(|c| !c.is_empty() && *c != "unversioned").map(str::to_string);
    let branch = doc["commit_info"]["branch"].as_str().filter(|b| !b.is_empty() && !b.starts_with('(')).map(str::to_string);
    root.field("benchmarks", |b| {
        b.each(|_, bench| {
            let fullname = bench.field("fullname", |n| n.str().map(str::to_string))?;
            let mut d = RunDraft::new("pytest-benchmark", fullname.clone());
            d.tool_version = version.clone();
            d.time_us = time;
            d.platform.hardware_name = machine["node"].as_str().unwrap_or_default().to_string();
            d.platform.cpu = machine["cpu"]["brand_raw"].as_str().unwrap_or_default().to_string();
            d.platform.os = format!("{} {}", machine["system"].as_str().unwrap_or_default(), machine["release"].as_str().unwrap_or_default()).trim().to_string();
            d.platform.framework = machine["python_implementation"].as_str().map(str::to_string);
            d.platform.framework_version = machine["python_version"].as_str().map(str::to_string);
            d.workload.name = fullname;
            d.workload.kind = "microbenchmark".into();
            d.version.git_commit = commit.clone();
            if let Some(b) = &branch {
                d.labels.insert("branch".into(), b.clone());
            }
            if let Some(g) = bench.str_at("group") {
                d.labels.insert("group".into(), g);
            }
            bench.field("stats", |stats| {
                match stats.opt_field("data", |n| n.numbers())? {
                    Some(rounds) => {
                        // One iteration per round on the timeline (rounds run `iterations` times, but
                        // the samples are times per iteration): the pipeline's throughput, samples
                        // over their span, is then pytest-benchmark's `ops` (1 / mean).
                        let mut at = 0.0;
                        for (i, t) in rounds.into_iter().enumerate() {
                            d.sample("latency_ms", "ms", t * 1e3, (at * 1e6) as i64, Some(i as i64));
                            at += t;
                        }
                        d.duration_us = Some((at * 1e6) as i64);
                    }
                    None => d.sample("latency_p50_ms", "ms", stats.field("median", |n| n.non_negative())? * 1e3, 0, None),
                }
                Ok(())
            })?;
            Ok(d)
        })
    })
}

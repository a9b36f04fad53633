//! `hyperfine`: the `--export-json` file. One run per command (with its parameters as
//! labels); each timed run is a `latency_ms` sample (`times`, seconds), a non-zero exit code
//! an `iteration_failed` sample, `memory_usage_byte` (hyperfine ≥ 1.19) `child_peak_rss_mib`.
//! hyperfine records neither time nor machine: the file's time and this host (or `--at`,
//! `--hardware`).

use serde_json::Value;

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft};

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    root.field("results", |results| {
        results.each(|_, r| {
            let command = r.field("command", |n| n.str().map(str::to_string))?;
            let params = r.opt_field("parameters", |p| p.members(|k, v| Ok((k.to_string(), v.text().unwrap_or_default()))))?.unwrap_or_default();
            let key = std::iter::once(command.clone()).chain(params.iter().map(|(k, v)| format!("{k}={v}"))).collect::<Vec<_>>().join("\u{1f}");
            let mut d = RunDraft::new("hyperfine", key);
            d.platform = ctx.machine();
            d.workload.name = command;
            d.workload.kind = "command".into();
            for (k, v) in params {
                d.labels.insert(format!("param.{k}"), v);
            }
            let times = r.field("times", |n| n.numbers())?;
            let codes = r.opt_field("exit_codes", |n| n.each(|_, c| c.value.as_i64().map(Some).or(c.value.is_null().then_some(None)).ok_or_else(|| c.error("expected an integer or null"))))?;
            let memory = r.opt_field("memory_usage_byte", |n| n.numbers())?;
            for (name, len) in [("exit_codes", codes.as_ref().map(Vec::len)), ("memory_usage_byte", memory.as_ref().map(Vec::len))] {
                if let Some(len) = len.filter(|&l| l != times.len()) {
                    return Err(r.error(format!("`{name}` has {len} entries but `times` has {}", times.len())));
                }
            }
            let mut at = 0.0;
            for (i, t) in times.iter().enumerate() {
                let offset = (at * 1e6) as i64;
                d.sample("latency_ms", "ms", t * 1e3, offset, Some(i as i64));
                if let Some(codes) = &codes {
                    d.sample("iteration_failed", "bool", if codes[i] == Some(0) { 0.0 } else { 1.0 }, offset, Some(i as i64));
                }
                if let Some(m) = &memory {
                    d.sample("child_peak_rss_mib", "MiB", m[i] / 1_048_576.0, offset, Some(i as i64));
                }
                at += t;
            }
            d.duration_us = Some((at * 1e6) as i64);
            if let Some(codes) = codes.as_ref().filter(|c| !c.is_empty() && c.iter().all(|c| *c != Some(0))) {
                d.failed = Some(format!("every timed run failed (exit codes {:?})", codes.iter().flatten().collect::<Vec<_>>()));
            }
            if let (Some(user), Some(system)) = (r.opt_field("user", |n| n.non_negative())?, r.opt_field("system", |n| n.non_negative())?) {
                // hyperfine reports the mean CPU time per timed run.
                d.sample("child_cpu_ms", "ms", (user + system) * 1e3, 0, None);
            }
            Ok(d)
        })
    })
}

//! `bmf`: Bencher Metric Format, `{"<benchmark>": {"<measure>": {"value": x, "lower_value": l,
//! "upper_value": u}}}`. One run per benchmark, one figure per measure named as the measure;
//! Bencher's built-in measures keep their units (`latency` ns, `throughput` operations/s,
//! `file-size` bytes, `build-time` s). The bounds are checked (lower ≤ value ≤ upper) but are
//! not figures of their own: they would gate as if they were measurements. BMF has no time or
//! machine: the file's time (the request's, over HTTP) and this host, or `--at`, `--hardware`.

use serde_json::Value;

use super::node::Node;
use super::{ImportContext, ImportError, RunDraft};

fn unit_of(measure: &str) -> &'static str {
    match measure {
        "latency" => "ns",
        "throughput" => "ops/s",
        "file-size" => "B",
        "build-time" => "s",
        _ => "",
    }
}

pub fn parse(doc: &Value, ctx: &ImportContext) -> Result<Vec<RunDraft>, ImportError> {
    let root = Node::root(doc, ctx);
    root.members(|bench, measures| {
        let mut d = RunDraft::new("bmf", bench);
        d.platform = ctx.machine();
        d.workload.name = bench.to_string();
        d.workload.kind = "benchmark".into();
        measures.members(|measure, m| {
            let value = m.field("value", |n| n.num())?;
            let lower = m.opt_field("lower_value", |n| n.num())?;
            let upper = m.opt_field("upper_value", |n| n.num())?;
            if lower.is_some_and(|l| l > value) || upper.is_some_and(|u| u < value) {
                return Err(m.error(format!("expected lower_value ≤ value ≤ upper_value, found {lower:?} ≤ {value} ≤ {upper:?}")));
            }
            trackiq_schemas::metrics::validate_value(measure, value).map_err(|e| m.error(e))?;
            d.sample(measure, unit_of(measure), value, 0, None);
            Ok(())
        })?;
        if d.samples.is_empty() {
            return Err(measures.error("a benchmark without measures"));
        }
        Ok(d)
    })
}

//! Semantic checks of decoded events: what Avro's types cannot say. A record that decodes
//! but fails here is refused at the contract (dead-lettered with the reason), so no stage
//! ever sees a NaN, an empty metric name, or a rank that would make it allocate gigabytes.
//! Every error names the field as a path, e.g. `samples[3].rank`.

use crate::codec::AnyEvent;
use crate::error::SchemaError;
use crate::events::{ClusterHealth, Detection, Histogram, MetricSummary, RunStarted, Sample};

/// Largest world size (and so rank + 1) accepted. Per-rank state downstream (the rank × step
/// matrix of cluster health, per-rank detectors) is sized by the highest rank seen; the
/// largest training jobs run on tens of thousands of GPUs.
pub const MAX_WORLD_SIZE: i64 = 65_536;
/// Largest step number accepted (a training run of a billion steps is beyond any real one).
pub const MAX_STEP: i64 = 1_000_000_000;
/// Samples in one batch at most: a batch is one Kafka record.
pub const MAX_SAMPLES_PER_BATCH: usize = 1_000_000;
/// Longest metric, unit, run id or series id, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Timestamps are µs since the Unix epoch, not before it ...
pub const MIN_TIMESTAMP_US: i64 = 0;
/// ... and not after 2200-01-01 (a value beyond is a unit mistake or garbage).
pub const MAX_TIMESTAMP_US: i64 = 7_258_118_400_000_000;
/// Histogram bins at most.
pub const MAX_HISTOGRAM_BINS: usize = 10_000;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SchemaError {
    SchemaError::Invalid { field: field.into(), reason: reason.into() }
}

fn finite(field: &str, v: f64) -> Result<(), SchemaError> {
    if v.is_finite() { Ok(()) } else { Err(invalid(field, format!("{v} is not a finite number"))) }
}

fn finite_opt(field: &str, v: Option<f64>) -> Result<(), SchemaError> {
    v.map_or(Ok(()), |v| finite(field, v))
}

/// A name: not empty, at most [`MAX_NAME_LEN`] bytes, no control characters.
fn name(field: &str, s: &str) -> Result<(), SchemaError> {
    if s.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(invalid(field, format!("is {} bytes long (at most {MAX_NAME_LEN})", s.len())));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// At most [`MAX_NAME_LEN`] bytes (may be empty: a unit, say).
fn bounded(field: &str, s: &str) -> Result<(), SchemaError> {
    if s.len() > MAX_NAME_LEN { Err(invalid(field, format!("is {} bytes long (at most {MAX_NAME_LEN})", s.len()))) } else { Ok(()) }
}

fn timestamp(field: &str, us: i64) -> Result<(), SchemaError> {
    if (MIN_TIMESTAMP_US..=MAX_TIMESTAMP_US).contains(&us) {
        Ok(())
    } else {
        Err(invalid(field, format!("{us} µs since the epoch is outside 1970-01-01 .. 2200-01-01")))
    }
}

fn non_negative(field: &str, v: i64) -> Result<(), SchemaError> {
    if v >= 0 { Ok(()) } else { Err(invalid(field, format!("{v} is negative"))) }
}

fn rank(field: &str, rank: i64, world: Option<i64>) -> Result<(), SchemaError> {
    let limit = world.unwrap_or(MAX_WORLD_SIZE).min(MAX_WORLD_SIZE);
    if (0..limit).contains(&rank) {
        Ok(())
    } else {
        Err(invalid(field, format!("{rank} is outside 0 .. {} (the world size{})", limit - 1, if world.is_some() { "" } else { " limit" })))
    }
}

fn step(field: &str, step: i64) -> Result<(), SchemaError> {
    if (0..=MAX_STEP).contains(&step) { Ok(()) } else { Err(invalid(field, format!("{step} is outside 0 .. {MAX_STEP}"))) }
}

/// Checks an event's meaning after decoding.
pub fn validate(event: &AnyEvent) -> Result<(), SchemaError> {
    match event {
        AnyEvent::RunStarted(r) => run_started("", r),
        AnyEvent::SampleBatch(b) => {
            name("run_id", &b.run_id)?;
            non_negative("seq", b.seq)?;
            if b.samples.len() > MAX_SAMPLES_PER_BATCH {
                return Err(invalid("samples", format!("{} samples in one batch (at most {MAX_SAMPLES_PER_BATCH})", b.samples.len())));
            }
            b.samples.iter().enumerate().try_for_each(|(i, s)| sample(&format!("samples[{i}]"), s))
        }
        AnyEvent::RunFinished(f) => {
            name("run_id", &f.run_id)?;
            timestamp("ended_at", f.ended_at)?;
            non_negative("sample_count", f.sample_count)
        }
        AnyEvent::RunSummary(s) => {
            run_started("run.", &s.run)?;
            timestamp("ended_at", s.ended_at)?;
            non_negative("sample_count", s.sample_count)?;
            s.metrics.iter().enumerate().try_for_each(|(i, m)| metric_summary(&format!("metrics[{i}]"), m))?;
            for (i, d) in s.derived.iter().enumerate() {
                name(&format!("derived[{i}].name"), &d.name)?;
                finite(&format!("derived[{i}].value"), d.value)?;
            }
            s.cluster.as_ref().map_or(Ok(()), |c| cluster("cluster", c))
        }
        AnyEvent::Verdict(v) => {
            name("run_id", &v.run_id)?;
            name("series_id", &v.series_id)?;
            timestamp("evaluated_at", v.evaluated_at)?;
            for (i, m) in v.metrics.iter().enumerate() {
                let f = |k: &str| format!("metrics[{i}].{k}");
                name(&f("metric"), &m.metric)?;
                finite(&f("value"), m.value)?;
                finite_opt(&f("baseline"), m.baseline)?;
                finite_opt(&f("lower_limit"), m.lower_limit)?;
                finite_opt(&f("upper_limit"), m.upper_limit)?;
                finite_opt(&f("change_pct"), m.change_pct)?;
                finite_opt(&f("pvalue"), m.pvalue)?;
            }
            for (i, f) in v.findings.iter().enumerate() {
                finite_opt(&format!("findings[{i}].value"), f.value)?;
            }
            validate(&AnyEvent::RunSummary(Box::new(v.summary.clone()))).map_err(|e| prefixed("summary.", e))
        }
        AnyEvent::DeadLetter(d) => timestamp("failed_at", d.failed_at),
        AnyEvent::TrendResult(t) => {
            name("series_id", &t.series_id)?;
            name("metric", &t.metric)?;
            for (k, v) in [("slope", t.slope), ("r_squared", t.r_squared), ("theil_sen_slope", t.theil_sen_slope), ("total_change_pct", t.total_change_pct), ("cv", t.cv), ("confidence", t.confidence)] {
                finite(k, v)?;
            }
            finite_opt("mann_kendall_p", t.mann_kendall_p)?;
            for (i, c) in t.change_points.iter().enumerate() {
                for (k, v) in [("mean_before", c.mean_before), ("mean_after", c.mean_after), ("change_pct", c.change_pct), ("pvalue", c.pvalue)] {
                    finite(&format!("change_points[{i}].{k}"), v)?;
                }
            }
            Ok(())
        }
        AnyEvent::BaselinePin(p) => {
            name("series_id", &p.series_id)?;
            timestamp("set_at", p.set_at)?;
            for (i, r) in p.runs.iter().enumerate() {
                for (m, v) in &r.values {
                    name(&format!("runs[{i}].values"), m)?;
                    finite(&format!("runs[{i}].values[{m}]"), *v)?;
                }
            }
            Ok(())
        }
        AnyEvent::Detection(d) => detection("", d, None),
    }
}

fn prefixed(prefix: &str, e: SchemaError) -> SchemaError {
    match e {
        SchemaError::Invalid { field, reason } => invalid(format!("{prefix}{field}"), reason),
        other => other,
    }
}

fn run_started(p: &str, r: &RunStarted) -> Result<(), SchemaError> {
    name(&format!("{p}run_id"), &r.run_id)?;
    name(&format!("{p}series_id"), &r.series_id)?;
    timestamp(&format!("{p}timestamp"), r.timestamp)?;
    for (k, v) in [("batch_size", r.workload.batch_size), ("sequence_length", r.workload.sequence_length), ("steps", r.workload.steps)] {
        if let Some(v) = v {
            non_negative(&format!("{p}workload.{k}"), v)?;
        }
    }
    if let Some(w) = r.labels.get("world_size") {
        match w.parse::<i64>() {
            Ok(n) if (1..=MAX_WORLD_SIZE).contains(&n) => {}
            _ => return Err(invalid(format!("{p}labels.world_size"), format!("`{w}` is not a world size in 1 .. {MAX_WORLD_SIZE}"))),
        }
    }
    Ok(())
}

fn sample(p: &str, s: &Sample) -> Result<(), SchemaError> {
    name(&format!("{p}.metric"), &s.metric)?;
    bounded(&format!("{p}.unit"), &s.unit)?;
    finite(&format!("{p}.value"), s.value)?;
    timestamp(&format!("{p}.ts_us"), s.ts_us)?;
    if let Some(r) = s.rank {
        rank(&format!("{p}.rank"), r as i64, None)?;
    }
    if let Some(st) = s.step {
        step(&format!("{p}.step"), st)?;
    }
    Ok(())
}

fn metric_summary(p: &str, m: &MetricSummary) -> Result<(), SchemaError> {
    name(&format!("{p}.metric"), &m.metric)?;
    bounded(&format!("{p}.unit"), &m.unit)?;
    non_negative(&format!("{p}.count"), m.count)?;
    for (k, v) in [("mean", m.mean), ("min", m.min), ("p50", m.p50), ("p90", m.p90), ("p95", m.p95), ("p99", m.p99), ("max", m.max)] {
        finite(&format!("{p}.{k}"), v)?;
    }
    finite_opt(&format!("{p}.stdev"), m.stdev)?;
    m.histogram.as_ref().map_or(Ok(()), |h| histogram(&format!("{p}.histogram"), h))
}

fn histogram(p: &str, h: &Histogram) -> Result<(), SchemaError> {
    if h.counts.len() > MAX_HISTOGRAM_BINS {
        return Err(invalid(format!("{p}.counts"), format!("{} bins (at most {MAX_HISTOGRAM_BINS})", h.counts.len())));
    }
    if h.edges.len() != h.counts.len() + 1 {
        return Err(invalid(format!("{p}.edges"), format!("{} edges for {} bins (needs bins + 1)", h.edges.len(), h.counts.len())));
    }
    for (i, e) in h.edges.iter().enumerate() {
        finite(&format!("{p}.edges[{i}]"), *e)?;
    }
    for (i, c) in h.counts.iter().enumerate() {
        non_negative(&format!("{p}.counts[{i}]"), *c)?;
    }
    Ok(())
}

fn detection(p: &str, d: &Detection, world: Option<i64>) -> Result<(), SchemaError> {
    name(&format!("{p}run_id"), &d.run_id)?;
    name(&format!("{p}detector"), &d.detector)?;
    if let Some(r) = d.rank {
        rank(&format!("{p}rank"), r as i64, world)?;
    }
    if let Some(s) = d.step {
        step(&format!("{p}step"), s)?;
    }
    timestamp(&format!("{p}event_ts"), d.event_ts)?;
    timestamp(&format!("{p}detected_at"), d.detected_at)?;
    finite(&format!("{p}value"), d.value)?;
    finite(&format!("{p}threshold"), d.threshold)
}

fn cluster(p: &str, c: &ClusterHealth) -> Result<(), SchemaError> {
    let world = c.world_size as i64;
    if !(1..=MAX_WORLD_SIZE).contains(&world) {
        return Err(invalid(format!("{p}.world_size"), format!("{world} is outside 1 .. {MAX_WORLD_SIZE}")));
    }
    finite(&format!("{p}.samples_per_sec"), c.samples_per_sec)?;
    finite(&format!("{p}.comm_overhead_pct"), c.comm_overhead_pct)?;
    for (r, row) in c.allreduce_ms.iter().enumerate() {
        for (s, v) in row.iter().enumerate() {
            finite_opt(&format!("{p}.allreduce_ms[{r}][{s}]"), *v)?;
        }
    }
    for (i, l) in c.loss.iter().enumerate() {
        finite(&format!("{p}.loss[{i}]"), *l)?;
    }
    for (i, f) in c.faults.iter().enumerate() {
        rank(&format!("{p}.faults[{i}].rank"), f.rank as i64, Some(world))?;
        finite_opt(&format!("{p}.faults[{i}].latency_ms"), f.latency_ms)?;
    }
    for (i, d) in c.detections.iter().enumerate() {
        detection(&format!("{p}.detections[{i}]."), d, Some(world))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::*;
    use crate::tests::run_started as started;

    fn batch(s: Sample) -> AnyEvent {
        AnyEvent::SampleBatch(SampleBatch { run_id: "r".into(), seq: 0, samples: vec![s.clone(), s] })
    }

    fn good() -> Sample {
        Sample { ts_us: 1_763_900_000_000_000, metric: "cluster.allreduce_ms".into(), value: 3.5, unit: "ms".into(), rank: Some(3), step: Some(7) }
    }

    fn refused(e: AnyEvent) -> (String, String) {
        match validate(&e) {
            Err(SchemaError::Invalid { field, reason }) => (field, reason),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn good_events_pass() {
        assert!(validate(&batch(good())).is_ok());
        assert!(validate(&AnyEvent::RunStarted(started())).is_ok());
    }

    #[test]
    fn each_rule_names_the_field() {
        let cases: Vec<(Sample, &str, &str)> = vec![
            (Sample { rank: Some(-1), ..good() }, "samples[1].rank", "outside 0 .. 65535"),
            (Sample { rank: Some(2_000_000_000), ..good() }, "samples[1].rank", "outside"),
            (Sample { value: f64::NAN, ..good() }, "samples[1].value", "not a finite number"),
            (Sample { value: f64::INFINITY, ..good() }, "samples[1].value", "inf is not a finite number"),
            (Sample { metric: String::new(), ..good() }, "samples[1].metric", "is empty"),
            (Sample { metric: "a\u{0}b".into(), ..good() }, "samples[1].metric", "control characters"),
            (Sample { metric: "m".repeat(300), ..good() }, "samples[1].metric", "300 bytes"),
            (Sample { step: Some(-5), ..good() }, "samples[1].step", "outside"),
            (Sample { ts_us: i64::MAX, ..good() }, "samples[1].ts_us", "outside 1970-01-01"),
        ];
        for (s, field, reason) in cases {
            // The second sample of the batch is the bad one: the index is part of the path.
            let e = AnyEvent::SampleBatch(SampleBatch { run_id: "r".into(), seq: 0, samples: vec![good(), s] });
            let (f, r) = refused(e);
            assert_eq!(f, field);
            assert!(r.contains(reason), "{f}: {r}");
        }
        assert_eq!(refused(AnyEvent::SampleBatch(SampleBatch { run_id: "r".into(), seq: -1, samples: vec![] })).0, "seq");
        let mut r = started();
        r.labels.insert("world_size".into(), "0".into());
        assert_eq!(refused(AnyEvent::RunStarted(r)).0, "labels.world_size");
        let mut r = started();
        r.run_id = " ".into();
        assert_eq!(refused(AnyEvent::RunStarted(r)).0, "run_id");
    }

    #[test]
    fn summaries_and_verdicts_are_checked_to_the_nested_field() {
        let m = MetricSummary {
            metric: "latency_ms".into(), unit: "ms".into(), count: 2, mean: 1.0, stdev: Some(f64::NAN), min: 1.0, p50: 1.0,
            p90: 1.0, p95: 1.0, p99: 1.0, max: 1.0, histogram: Some(Histogram { edges: vec![1.0, 2.0], counts: vec![1, 1] }),
        };
        let s = RunSummary {
            run: started(), status: RunStatus::Completed, ended_at: 1, sample_count: 2, expected_sample_count: None, error: None,
            metrics: vec![m], derived: vec![], cluster: None,
        };
        assert_eq!(refused(AnyEvent::RunSummary(Box::new(s.clone()))).0, "metrics[0].stdev");
        let mut ok = s.clone();
        ok.metrics[0].stdev = Some(0.0);
        assert_eq!(refused(AnyEvent::RunSummary(Box::new(ok.clone()))).0, "metrics[0].histogram.edges", "2 edges for 2 bins");
        ok.metrics[0].histogram = None;
        let v = Verdict { run_id: "r".into(), series_id: "s".into(), evaluated_at: 3, severity: Severity::Pass, summary: s, metrics: vec![], findings: vec![] };
        assert_eq!(refused(AnyEvent::Verdict(Box::new(v))).0, "summary.metrics[0].stdev");
    }
}

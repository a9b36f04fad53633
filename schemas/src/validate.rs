//! Semantic checks of decoded events: what Avro's types cannot say. A record that decodes
//! but fails here is refused at the contract (dead-lettered with the reason), so no stage
//! ever sees a NaN, an empty metric name, or a rank that would make it allocate gigabytes.
//! Every error names the field as a path from the record's root, e.g. `samples[3].rank`,
//! `metrics[0].p99`, `run.workload.batch_size`, `summary.cluster.faults[0].rank`.

use crate::codec::AnyEvent;
use crate::error::SchemaError;
use crate::events::{
    BaselinePin, ClusterHealth, Detection, Histogram, MetricSummary, RunStarted, RunSummary, Sample, SampleBatch, TrendResult, Verdict,
};

/// Largest world size (and so rank + 1) accepted. Per-rank state downstream (the rank × step
/// matrix of cluster health, per-rank detectors) is allocated up to the highest rank seen,
/// so one record claiming rank 2·10⁹ would make the aggregator allocate gigabytes; the
/// largest training jobs run on tens of thousands of GPUs, below this.
pub const MAX_WORLD_SIZE: i64 = 65_536;
/// Largest step number accepted (a training run of a billion steps is beyond any real one).
pub const MAX_STEP: i64 = 1_000_000_000;
/// Samples in one batch at most: a batch is one Kafka record, and producers batch by the
/// hundred (`emitter::Batching`); a million is already far above a record's usual size.
pub const MAX_SAMPLES_PER_BATCH: usize = 1_000_000;
/// Longest metric, unit, run id or series id, in bytes: names become Parquet column values,
/// report headings and Prometheus-like labels; a UUID run id is 36.
pub const MAX_NAME_LEN: usize = 256;
/// Timestamps are µs since the Unix epoch, not before it. Not a later year: imports carry
/// the original tools' old timestamps, and synthetic producers (tests, replays) count µs
/// from the epoch; what this refuses is a negative time, which no clock produces.
pub const MIN_TIMESTAMP_US: i64 = 0;
/// ... and not after 2200-01-01T00:00:00Z: a value beyond is a unit mistake (ns for µs) or
/// garbage, and would put a Parquet file under a date partition centuries away.
pub const MAX_TIMESTAMP_US: i64 = 7_258_118_400_000_000;
/// Largest magnitude of a sample value. Finite is not enough: the aggregator sums a run's
/// values, squares deviations and divides the range into histogram bins, and two finite
/// samples of ±1e308 overflow those to infinity or NaN, so the run's summary would be refused
/// downstream. No measurement comes near 1e100; sums and squares of values below it stay finite.
pub const MAX_SAMPLE_MAGNITUDE: f64 = 1e100;
/// Histogram bins at most (the aggregator writes tens; the report draws each one).
pub const MAX_HISTOGRAM_BINS: usize = 10_000;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SchemaError {
    SchemaError::Invalid { field: field.into(), reason: reason.into() }
}

/// `prefix.key`, or `key` at the root.
fn at(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
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
    bounded(field, s)?;
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

/// A count: never negative.
fn count(field: &str, v: i64) -> Result<(), SchemaError> {
    if v >= 0 { Ok(()) } else { Err(invalid(field, format!("{v} is negative"))) }
}

/// `0 <= rank < world` where the world size is known, else `< MAX_WORLD_SIZE`.
fn rank(field: &str, rank: i64, world: Option<i64>) -> Result<(), SchemaError> {
    let limit = world.unwrap_or(MAX_WORLD_SIZE).min(MAX_WORLD_SIZE);
    if (0..limit).contains(&rank) {
        Ok(())
    } else {
        let of = if world.is_some() { "the world size" } else { "the world size limit" };
        Err(invalid(field, format!("{rank} is outside 0 .. {} ({of})", limit - 1)))
    }
}

fn step(field: &str, step: i64) -> Result<(), SchemaError> {
    if (0..=MAX_STEP).contains(&step) { Ok(()) } else { Err(invalid(field, format!("{step} is outside 0 .. {MAX_STEP}"))) }
}

/// Checks an event's meaning after decoding. The first failing field is reported.
pub fn validate(event: &AnyEvent) -> Result<(), SchemaError> {
    match event {
        AnyEvent::RunStarted(r) => run_started("", r),
        AnyEvent::SampleBatch(b) => sample_batch(b),
        AnyEvent::RunFinished(f) => {
            name("run_id", &f.run_id)?;
            timestamp("ended_at", f.ended_at)?;
            count("sample_count", f.sample_count)
        }
        AnyEvent::RunSummary(s) => run_summary("", s),
        AnyEvent::Verdict(v) => verdict(v),
        // A dead letter carries what failed elsewhere, names and bytes included: refusing it
        // for those would lose the record for good, so only its own time is checked.
        AnyEvent::DeadLetter(d) => timestamp("failed_at", d.failed_at),
        AnyEvent::TrendResult(t) => trend(t),
        AnyEvent::BaselinePin(p) => baseline_pin(p),
        AnyEvent::Detection(d) => detection("", d, None),
        AnyEvent::Alert(a) => alert(a),
        AnyEvent::AlertAction(a) => alert_action(a),
        AnyEvent::Notification(n) => notification(n),
        AnyEvent::ReleaseDecision(d) => release_decision(d),
    }
}

fn release_decision(d: &crate::ReleaseDecision) -> Result<(), SchemaError> {
    name("decision_id", &d.decision_id)?;
    name("candidate", &d.candidate)?;
    timestamp("at", d.at)?;
    if d.reason.trim().is_empty() {
        return Err(invalid("reason", "a release decision needs its reason"));
    }
    for (k, v) in [("series", d.series), ("blocking", d.blocking), ("warning", d.warning), ("open_alerts", d.open_alerts)] {
        count(k, v.into())?;
    }
    if d.blocking + d.warning > d.series {
        return Err(invalid("blocking", format!("{} blocking and {} warning series of {} judged", d.blocking, d.warning, d.series)));
    }
    Ok(())
}

fn alert(a: &crate::Alert) -> Result<(), SchemaError> {
    for (k, v) in [("alert_id", &a.alert_id), ("series_id", &a.series_id), ("subject", &a.subject), ("run_id", &a.run_id), ("group_key", &a.group_key)] {
        name(k, v)?;
    }
    for (k, v) in [("value", a.value), ("baseline", a.baseline), ("change_pct", a.change_pct), ("change_ci_low", a.change_ci_low), ("change_ci_high", a.change_ci_high), ("pvalue", a.pvalue)] {
        finite_opt(k, v)?;
    }
    timestamp("fired_at", a.fired_at)?;
    timestamp("updated_at", a.updated_at)?;
    if let Some(t) = a.notified_at {
        timestamp("notified_at", t)?;
    }
    count("ok_runs", a.ok_runs.into())?;
    count("series_firing", a.series_firing.into())?;
    if a.group_size < 1 || !(0..a.group_size).contains(&a.group_index) {
        return Err(invalid("group_index", format!("{} is not a position in a group of {}", a.group_index, a.group_size)));
    }
    Ok(())
}

fn alert_action(a: &crate::AlertAction) -> Result<(), SchemaError> {
    name("id", &a.id)?;
    name("series_id", &a.series_id)?;
    timestamp("at", a.at)?;
    if let Some(t) = a.until {
        timestamp("until", t)?;
    }
    if a.action == crate::AlertActionKind::Silence && a.until.is_none() {
        return Err(invalid("until", "a silence needs an end"));
    }
    if matches!(a.action, crate::AlertActionKind::Note | crate::AlertActionKind::Downgrade) && a.reason.trim().is_empty() {
        return Err(invalid("reason", format!("a {} needs its text", a.action.as_str())));
    }
    Ok(())
}

fn notification(n: &crate::Notification) -> Result<(), SchemaError> {
    for (k, v) in [("notification_id", &n.notification_id), ("group_key", &n.group_key), ("channel", &n.channel), ("run_id", &n.run_id)] {
        name(k, v)?;
    }
    timestamp("at", n.at)?;
    count("attempts", n.attempts.into())
}

fn run_started(p: &str, r: &RunStarted) -> Result<(), SchemaError> {
    name(&at(p, "run_id"), &r.run_id)?;
    name(&at(p, "series_id"), &r.series_id)?;
    timestamp(&at(p, "timestamp"), r.timestamp)?;
    for (k, v) in [("batch_size", r.workload.batch_size), ("sequence_length", r.workload.sequence_length), ("steps", r.workload.steps)] {
        if let Some(v) = v {
            count(&at(p, &format!("workload.{k}")), v)?;
        }
    }
    // The cluster producer states its world size here; the health code trusts it.
    if let Some(w) = r.labels.get("world_size") {
        match w.parse::<i64>() {
            Ok(n) if (1..=MAX_WORLD_SIZE).contains(&n) => {}
            _ => return Err(invalid(at(p, "labels.world_size"), format!("`{w}` is not a world size in 1 .. {MAX_WORLD_SIZE}"))),
        }
    }
    Ok(())
}

fn sample_batch(b: &SampleBatch) -> Result<(), SchemaError> {
    name("run_id", &b.run_id)?;
    count("seq", b.seq)?;
    if b.samples.len() > MAX_SAMPLES_PER_BATCH {
        return Err(invalid("samples", format!("{} samples in one batch (at most {MAX_SAMPLES_PER_BATCH})", b.samples.len())));
    }
    // Hot path (every sample of every record, in every stage): the same checks without a
    // field path, names checked once per run of equal names; only a sample that fails is
    // checked again with its path, for the error.
    let mut last_names: Option<(&str, &str)> = None;
    for (i, s) in b.samples.iter().enumerate() {
        let names = (s.metric.as_str(), s.unit.as_str());
        let names_ok = last_names == Some(names) || (name("", &s.metric).is_ok() && bounded("", &s.unit).is_ok());
        if !names_ok || !sample_numbers_ok(s) {
            sample(&format!("samples[{i}]"), s)?;
        }
        last_names = Some(names);
    }
    Ok(())
}

/// The numeric checks of [`sample`], without building field paths.
fn sample_numbers_ok(s: &Sample) -> bool {
    s.value.is_finite()
        && s.value.abs() <= MAX_SAMPLE_MAGNITUDE
        && timestamp("", s.ts_us).is_ok()
        && s.rank.is_none_or(|r| rank("", r.into(), None).is_ok())
        && s.step.is_none_or(|st| step("", st).is_ok())
}

fn sample(p: &str, s: &Sample) -> Result<(), SchemaError> {
    name(&at(p, "metric"), &s.metric)?;
    bounded(&at(p, "unit"), &s.unit)?;
    finite(&at(p, "value"), s.value)?;
    if s.value.abs() > MAX_SAMPLE_MAGNITUDE {
        return Err(invalid(at(p, "value"), format!("{:e} is beyond ±{MAX_SAMPLE_MAGNITUDE:e}", s.value)));
    }
    timestamp(&at(p, "ts_us"), s.ts_us)?;
    if let Some(r) = s.rank {
        rank(&at(p, "rank"), r.into(), None)?;
    }
    s.step.map_or(Ok(()), |st| step(&at(p, "step"), st))
}

fn run_summary(p: &str, s: &RunSummary) -> Result<(), SchemaError> {
    run_started(&at(p, "run"), &s.run)?;
    timestamp(&at(p, "ended_at"), s.ended_at)?;
    count(&at(p, "sample_count"), s.sample_count)?;
    if let Some(n) = s.expected_sample_count {
        count(&at(p, "expected_sample_count"), n)?;
    }
    for (i, m) in s.metrics.iter().enumerate() {
        metric_summary(&at(p, &format!("metrics[{i}]")), m)?;
    }
    for (i, d) in s.derived.iter().enumerate() {
        let f = |k: &str| at(p, &format!("derived[{i}].{k}"));
        name(&f("name"), &d.name)?;
        finite(&f("value"), d.value)?;
        bounded(&f("unit"), &d.unit)?;
    }
    s.cluster.as_ref().map_or(Ok(()), |c| cluster(&at(p, "cluster"), c))
}

fn metric_summary(p: &str, m: &MetricSummary) -> Result<(), SchemaError> {
    name(&at(p, "metric"), &m.metric)?;
    bounded(&at(p, "unit"), &m.unit)?;
    count(&at(p, "count"), m.count)?;
    for (k, v) in [("mean", m.mean), ("min", m.min), ("p50", m.p50), ("p90", m.p90), ("p95", m.p95), ("p99", m.p99), ("max", m.max)] {
        finite(&at(p, k), v)?;
    }
    finite_opt(&at(p, "stdev"), m.stdev)?;
    finite_opt(&at(p, "percentile_error"), m.percentile_error)?;
    m.histogram.as_ref().map_or(Ok(()), |h| histogram(&at(p, "histogram"), h))
}

fn histogram(p: &str, h: &Histogram) -> Result<(), SchemaError> {
    if h.counts.len() > MAX_HISTOGRAM_BINS {
        return Err(invalid(at(p, "counts"), format!("{} bins (at most {MAX_HISTOGRAM_BINS})", h.counts.len())));
    }
    if h.edges.len() != h.counts.len() + 1 {
        return Err(invalid(at(p, "edges"), format!("{} edges for {} bins (needs bins + 1)", h.edges.len(), h.counts.len())));
    }
    for (i, e) in h.edges.iter().enumerate() {
        finite(&at(p, &format!("edges[{i}]")), *e)?;
    }
    // Bins are drawn left to right from the edges; equal edges are one value's histogram.
    if let Some(i) = h.edges.windows(2).position(|w| w[1] < w[0]) {
        return Err(invalid(at(p, &format!("edges[{}]", i + 1)), format!("{} is below the edge before it, {}", h.edges[i + 1], h.edges[i])));
    }
    for (i, c) in h.counts.iter().enumerate() {
        count(&at(p, &format!("counts[{i}]")), *c)?;
    }
    Ok(())
}

fn cluster(p: &str, c: &ClusterHealth) -> Result<(), SchemaError> {
    let world = i64::from(c.world_size);
    if !(1..=MAX_WORLD_SIZE).contains(&world) {
        return Err(invalid(at(p, "world_size"), format!("{world} is outside 1 .. {MAX_WORLD_SIZE}")));
    }
    count(&at(p, "steps"), c.steps)?;
    finite(&at(p, "samples_per_sec"), c.samples_per_sec)?;
    finite(&at(p, "comm_overhead_pct"), c.comm_overhead_pct)?;
    // The report draws a heatmap column per `steps_per_column` steps: zero would divide by it.
    if !(1..=MAX_STEP).contains(&i64::from(c.steps_per_column)) {
        return Err(invalid(at(p, "steps_per_column"), format!("{} is outside 1 .. {MAX_STEP}", c.steps_per_column)));
    }
    // One row per rank.
    if c.allreduce_ms.len() as i64 > world {
        return Err(invalid(at(p, "allreduce_ms"), format!("{} rows for a world of {world} ranks", c.allreduce_ms.len())));
    }
    for (r, row) in c.allreduce_ms.iter().enumerate() {
        for (s, v) in row.iter().enumerate() {
            finite_opt(&at(p, &format!("allreduce_ms[{r}][{s}]")), *v)?;
        }
    }
    for (i, l) in c.loss.iter().enumerate() {
        finite(&at(p, &format!("loss[{i}]")), *l)?;
    }
    for (i, f) in c.faults.iter().enumerate() {
        let k = |key: &str| at(p, &format!("faults[{i}].{key}"));
        rank(&k("rank"), f.rank.into(), Some(world))?;
        step(&k("step"), f.step)?;
        timestamp(&k("injected_at"), f.injected_at)?;
        if let Some(t) = f.detected_at {
            timestamp(&k("detected_at"), t)?;
        }
        finite_opt(&k("latency_ms"), f.latency_ms)?;
    }
    for (i, d) in c.detections.iter().enumerate() {
        detection(&at(p, &format!("detections[{i}]")), d, Some(world))?;
    }
    count(&at(p, "false_alarms"), c.false_alarms.into())
}

fn detection(p: &str, d: &Detection, world: Option<i64>) -> Result<(), SchemaError> {
    name(&at(p, "run_id"), &d.run_id)?;
    name(&at(p, "detector"), &d.detector)?;
    if let Some(r) = d.rank {
        rank(&at(p, "rank"), r.into(), world)?;
    }
    if let Some(s) = d.step {
        step(&at(p, "step"), s)?;
    }
    timestamp(&at(p, "event_ts"), d.event_ts)?;
    timestamp(&at(p, "detected_at"), d.detected_at)?;
    finite(&at(p, "value"), d.value)?;
    finite(&at(p, "threshold"), d.threshold)
}

fn verdict(v: &Verdict) -> Result<(), SchemaError> {
    name("run_id", &v.run_id)?;
    name("series_id", &v.series_id)?;
    timestamp("evaluated_at", v.evaluated_at)?;
    for (i, m) in v.metrics.iter().enumerate() {
        let f = |k: &str| format!("metrics[{i}].{k}");
        name(&f("metric"), &m.metric)?;
        finite(&f("value"), m.value)?;
        finite_opt(&f("baseline"), m.baseline)?;
        count(&f("baseline_count"), m.baseline_count.into())?;
        bounded(&f("model"), &m.model)?;
        finite_opt(&f("lower_limit"), m.lower_limit)?;
        finite_opt(&f("upper_limit"), m.upper_limit)?;
        finite_opt(&f("change_pct"), m.change_pct)?;
        finite_opt(&f("pvalue"), m.pvalue)?;
    }
    for (i, f) in v.findings.iter().enumerate() {
        bounded(&format!("findings[{i}].rule"), &f.rule)?;
        bounded(&format!("findings[{i}].metric"), &f.metric)?;
        finite_opt(&format!("findings[{i}].value"), f.value)?;
    }
    run_summary("summary", &v.summary)
}

fn trend(t: &TrendResult) -> Result<(), SchemaError> {
    name("series_id", &t.series_id)?;
    name("metric", &t.metric)?;
    name("run_id", &t.run_id)?;
    timestamp("computed_at", t.computed_at)?;
    count("points", t.points.into())?;
    for (k, v) in [
        ("slope", t.slope),
        ("r_squared", t.r_squared),
        ("theil_sen_slope", t.theil_sen_slope),
        ("total_change_pct", t.total_change_pct),
        ("cv", t.cv),
        ("confidence", t.confidence),
    ] {
        finite(k, v)?;
    }
    finite_opt("mann_kendall_p", t.mann_kendall_p)?;
    for (i, c) in t.change_points.iter().enumerate() {
        let f = |k: &str| format!("change_points[{i}].{k}");
        name(&f("run_id"), &c.run_id)?;
        count(&f("index"), c.index.into())?;
        for (k, v) in [("mean_before", c.mean_before), ("mean_after", c.mean_after), ("change_pct", c.change_pct), ("pvalue", c.pvalue)] {
            finite(&f(k), v)?;
        }
    }
    Ok(())
}

fn baseline_pin(p: &BaselinePin) -> Result<(), SchemaError> {
    name("series_id", &p.series_id)?;
    timestamp("set_at", p.set_at)?;
    for (i, r) in p.runs.iter().enumerate() {
        name(&format!("runs[{i}].run_id"), &r.run_id)?;
        for (m, v) in &r.values {
            name(&format!("runs[{i}].values"), m)?;
            finite(&format!("runs[{i}].values[{m}]"), *v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

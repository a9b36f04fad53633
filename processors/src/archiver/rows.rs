//! Events to Arrow record batches, one function per table, in the column order of
//! `trackiq_schemas::arrow`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use trackiq_schemas::{AnyEvent, RunStarted};

/// An event with the Kafka coordinates it was read at.
pub struct Located<'a> {
    pub partition: i32,
    pub offset: i64,
    pub event: &'a AnyEvent,
}

fn utf8(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn i64s(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}
fn i32s(v: Vec<Option<i32>>) -> ArrayRef {
    Arc::new(Int32Array::from(v))
}
fn bools(v: Vec<Option<bool>>) -> ArrayRef {
    Arc::new(datafusion::arrow::array::BooleanArray::from(v))
}
fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}
fn ts(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

/// Identity columns shared by runs, summaries and verdicts.
#[derive(Default)]
struct Identity {
    run_id: Vec<Option<String>>,
    series_id: Vec<Option<String>>,
    tool: Vec<Option<String>>,
    started_at: Vec<Option<i64>>,
    hardware_name: Vec<Option<String>>,
    workload: Vec<Option<String>>,
    workload_type: Vec<Option<String>>,
    batch_size: Vec<Option<i64>>,
    precision: Vec<Option<String>>,
    git_commit: Vec<Option<String>>,
    version_tag: Vec<Option<String>>,
    run_group: Vec<Option<String>>,
    env_hash: Vec<Option<String>>,
}

impl Identity {
    fn push(&mut self, run_id: &str, r: Option<&RunStarted>) {
        self.run_id.push(Some(run_id.to_string()));
        self.series_id.push(r.map(|r| r.series_id.clone()));
        self.tool.push(r.map(|r| r.tool.clone()));
        self.started_at.push(r.map(|r| r.timestamp));
        self.hardware_name.push(r.map(|r| r.platform.hardware_name.clone()));
        self.workload.push(r.map(|r| r.workload.name.clone()));
        self.workload_type.push(r.map(|r| r.workload.kind.clone()));
        self.batch_size.push(r.and_then(|r| r.workload.batch_size));
        self.precision.push(r.and_then(|r| r.workload.precision.clone()));
        self.git_commit.push(r.and_then(|r| r.version.git_commit.clone()));
        self.version_tag.push(r.and_then(|r| r.version.version_tag.clone()));
        self.run_group.push(r.and_then(|r| r.version.run_group.clone()));
        self.env_hash.push(r.map(|r| r.version.env_hash.clone()));
    }

    fn finish(self) -> Vec<ArrayRef> {
        vec![
            utf8(self.run_id),
            utf8(self.series_id),
            utf8(self.tool),
            ts(self.started_at),
            utf8(self.hardware_name),
            utf8(self.workload),
            utf8(self.workload_type),
            i64s(self.batch_size),
            utf8(self.precision),
            utf8(self.git_commit),
            utf8(self.version_tag),
            utf8(self.run_group),
            utf8(self.env_hash),
        ]
    }
}

#[derive(Default)]
struct Kafka {
    partition: Vec<Option<i32>>,
    offset: Vec<Option<i64>>,
}

impl Kafka {
    fn push(&mut self, l: &Located<'_>) {
        self.partition.push(Some(l.partition));
        self.offset.push(Some(l.offset));
    }
    fn finish(self, mut cols: Vec<ArrayRef>) -> Vec<ArrayRef> {
        cols.push(i32s(self.partition));
        cols.push(i64s(self.offset));
        cols
    }
}

fn batch(table: &str, cols: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(trackiq_schemas::arrow::table_schema(table).expect("known table"), cols)
}

/// Rows of the `runs` table: one per RunStarted or RunFinished.
pub fn runs(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let mut event = Vec::new();
    let mut id = Identity::default();
    let (mut tool_version, mut os, mut kernel, mut cpu, mut gpus, mut driver, mut framework, mut framework_version) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut seq_len, mut backend, mut steps) = (vec![], vec![], vec![]);
    let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let (mut status, mut ended_at, mut sample_count, mut error) = (vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let (s, f) = match l.event {
            AnyEvent::RunStarted(s) => (Some(s), None),
            AnyEvent::RunFinished(f) => (None, Some(f)),
            _ => continue,
        };
        event.push(Some(if s.is_some() { "started" } else { "finished" }.to_string()));
        id.push(s.map(|s| s.run_id.as_str()).or(f.map(|f| f.run_id.as_str())).unwrap_or_default(), s);
        tool_version.push(s.map(|s| s.tool_version.clone()));
        os.push(s.map(|s| s.platform.os.clone()));
        kernel.push(s.and_then(|s| s.platform.kernel.clone()));
        cpu.push(s.map(|s| s.platform.cpu.clone()));
        gpus.push(s.map(|s| s.platform.gpus.join(", ")));
        driver.push(s.and_then(|s| s.platform.driver.clone()));
        framework.push(s.and_then(|s| s.platform.framework.clone()));
        framework_version.push(s.and_then(|s| s.platform.framework_version.clone()));
        seq_len.push(s.and_then(|s| s.workload.sequence_length));
        backend.push(s.and_then(|s| s.workload.backend.clone()));
        steps.push(s.and_then(|s| s.workload.steps));
        if let Some(s) = s {
            for (k, v) in &s.labels {
                labels.keys().append_value(k);
                labels.values().append_value(v);
            }
        }
        labels.append(s.is_some())?;
        status.push(f.map(|f| f.status.as_str().to_string()));
        ended_at.push(f.map(|f| f.ended_at));
        sample_count.push(f.map(|f| f.sample_count));
        error.push(f.and_then(|f| f.error.clone()));
        kafka.push(l);
    }
    let mut cols = vec![utf8(event)];
    cols.extend(id.finish());
    cols.extend([
        utf8(tool_version),
        utf8(os),
        utf8(kernel),
        utf8(cpu),
        utf8(gpus),
        utf8(driver),
        utf8(framework),
        utf8(framework_version),
        i64s(seq_len),
        utf8(backend),
        i64s(steps),
        Arc::new(labels.finish()) as ArrayRef,
        utf8(status),
        ts(ended_at),
        i64s(sample_count),
        utf8(error),
    ]);
    batch("runs", kafka.finish(cols))
}

/// Rows of the `samples` table: one per sample. The text columns are built in place from
/// the samples' names (no string per row is allocated: this is the hottest table).
pub fn samples(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let rows: usize = events.iter().map(|l| if let AnyEvent::SampleBatch(b) = l.event { b.samples.len() } else { 0 }).sum();
    let text = || StringBuilder::with_capacity(rows, rows * 16);
    let (mut run_id, mut metric, mut unit) = (text(), text(), text());
    let (mut seq, mut ts_us, mut value, mut rank, mut step) =
        (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::SampleBatch(b) = l.event else { continue };
        for s in &b.samples {
            run_id.append_value(&b.run_id);
            seq.push(Some(b.seq));
            ts_us.push(Some(s.ts_us));
            metric.append_value(&s.metric);
            value.push(Some(s.value));
            unit.append_value(&s.unit);
            rank.push(s.rank);
            step.push(s.step);
            kafka.push(l);
        }
    }
    let text = |mut b: StringBuilder| Arc::new(b.finish()) as ArrayRef;
    let cols = vec![text(run_id), i64s(seq), ts(ts_us), text(metric), f64s(value), text(unit), i32s(rank), i64s(step)];
    batch("samples", kafka.finish(cols))
}

/// Rows of the `summaries` table: one per metric and one per derived figure of each run.
pub fn summaries(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let mut id = Identity::default();
    let (mut status, mut ended_at, mut kind, mut metric, mut unit, mut count) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut mean, mut stdev, mut min, mut p50, mut p90, mut p95, mut p99, mut max) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::RunSummary(s) = l.event else { continue };
        for m in &s.metrics {
            id.push(&s.run.run_id, Some(&s.run));
            status.push(Some(s.status.as_str().to_string()));
            ended_at.push(Some(s.ended_at));
            kind.push(Some("samples".to_string()));
            metric.push(Some(m.metric.clone()));
            unit.push(Some(m.unit.clone()));
            count.push(Some(m.count));
            mean.push(Some(m.mean));
            stdev.push(m.stdev);
            min.push(Some(m.min));
            p50.push(Some(m.p50));
            p90.push(Some(m.p90));
            p95.push(Some(m.p95));
            p99.push(Some(m.p99));
            max.push(Some(m.max));
            kafka.push(l);
        }
        for d in &s.derived {
            id.push(&s.run.run_id, Some(&s.run));
            status.push(Some(s.status.as_str().to_string()));
            ended_at.push(Some(s.ended_at));
            kind.push(Some("derived".to_string()));
            metric.push(Some(d.name.clone()));
            unit.push(Some(d.unit.clone()));
            mean.push(Some(d.value));
            for col in [&mut stdev, &mut min, &mut p50, &mut p90, &mut p95, &mut p99, &mut max] {
                col.push(None);
            }
            count.push(None);
            kafka.push(l);
        }
    }
    let mut cols = id.finish();
    cols.extend([
        utf8(status),
        ts(ended_at),
        utf8(kind),
        utf8(metric),
        utf8(unit),
        i64s(count),
        f64s(mean),
        f64s(stdev),
        f64s(min),
        f64s(p50),
        f64s(p90),
        f64s(p95),
        f64s(p99),
        f64s(max),
    ]);
    batch("summaries", kafka.finish(cols))
}

/// Rows of the `verdicts` table: one per metric verdict and one per finding.
pub fn verdicts(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let mut id = Identity::default();
    let (mut evaluated_at, mut run_severity, mut metric, mut direction, mut value, mut baseline) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut baseline_count, mut model, mut lower, mut upper, mut change, mut severity) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut pvalue, mut kind, mut message) = (vec![], vec![], vec![]);
    let (mut metric_kind, mut gates, mut guessed, mut ci_low, mut ci_high, mut p_adj) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::Verdict(v) = l.event else { continue };
        for m in &v.metrics {
            id.push(&v.run_id, Some(&v.summary.run));
            evaluated_at.push(Some(v.evaluated_at));
            run_severity.push(Some(v.severity.as_str().to_string()));
            metric.push(Some(m.metric.clone()));
            direction.push(Some(m.direction.as_str().to_string()));
            value.push(Some(m.value));
            baseline.push(m.baseline);
            baseline_count.push(Some(m.baseline_count));
            model.push(Some(m.model.clone()));
            lower.push(m.lower_limit);
            upper.push(m.upper_limit);
            change.push(m.change_pct);
            severity.push(Some(m.severity.as_str().to_string()));
            pvalue.push(m.pvalue);
            kind.push(Some("metric".to_string()));
            message.push(None);
            metric_kind.push(m.kind.map(|k| k.as_str().to_string()));
            gates.push(Some(m.gates));
            guessed.push(Some(m.direction_guessed));
            ci_low.push(m.change_ci_low);
            ci_high.push(m.change_ci_high);
            p_adj.push(m.pvalue_adjusted);
            kafka.push(l);
        }
        for f in &v.findings {
            id.push(&v.run_id, Some(&v.summary.run));
            evaluated_at.push(Some(v.evaluated_at));
            run_severity.push(Some(v.severity.as_str().to_string()));
            metric.push(Some(f.metric.clone()));
            direction.push(Some(trackiq_schemas::metrics::direction_of(&f.metric).as_str().to_string()));
            value.push(Some(f.value.unwrap_or(f64::NAN)));
            baseline.push(None);
            baseline_count.push(Some(0));
            model.push(Some(format!("finding:{}", f.rule)));
            lower.push(None);
            upper.push(None);
            change.push(None);
            severity.push(Some(f.severity.as_str().to_string()));
            pvalue.push(None);
            kind.push(Some("finding".to_string()));
            message.push(Some(f.message.clone()));
            metric_kind.push(None);
            gates.push(None);
            guessed.push(None);
            ci_low.push(None);
            ci_high.push(None);
            p_adj.push(None);
            kafka.push(l);
        }
    }
    let mut cols = id.finish();
    cols.extend([
        ts(evaluated_at),
        utf8(run_severity),
        utf8(metric),
        utf8(direction),
        f64s(value),
        f64s(baseline),
        i32s(baseline_count),
        utf8(model),
        f64s(lower),
        f64s(upper),
        f64s(change),
        utf8(severity),
        f64s(pvalue),
        utf8(kind),
        utf8(message),
        utf8(metric_kind),
        bools(gates),
        bools(guessed),
        f64s(ci_low),
        f64s(ci_high),
        f64s(p_adj),
    ]);
    batch("verdicts", kafka.finish(cols))
}

/// Rows of the `trends` table: one per trend result.
pub fn trends(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let (mut series, mut metric, mut run_id, mut at, mut points, mut class) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut slope, mut r2, mut ts_slope, mut mk, mut total, mut cv, mut conf) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut cps, mut last_cp_run, mut last_cp_pct) = (vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::TrendResult(t) = l.event else { continue };
        series.push(Some(t.series_id.clone()));
        metric.push(Some(t.metric.clone()));
        run_id.push(Some(t.run_id.clone()));
        at.push(Some(t.computed_at));
        points.push(Some(t.points));
        class.push(Some(t.class.as_str().to_string()));
        slope.push(Some(t.slope));
        r2.push(Some(t.r_squared));
        ts_slope.push(Some(t.theil_sen_slope));
        mk.push(t.mann_kendall_p);
        total.push(Some(t.total_change_pct));
        cv.push(Some(t.cv));
        conf.push(Some(t.confidence));
        cps.push(Some(t.change_points.len() as i32));
        last_cp_run.push(t.change_points.last().map(|c| c.run_id.clone()));
        last_cp_pct.push(t.change_points.last().map(|c| c.change_pct));
        kafka.push(l);
    }
    let cols = vec![
        utf8(series),
        utf8(metric),
        utf8(run_id),
        ts(at),
        i32s(points),
        utf8(class),
        f64s(slope),
        f64s(r2),
        f64s(ts_slope),
        f64s(mk),
        f64s(total),
        f64s(cv),
        f64s(conf),
        i32s(cps),
        utf8(last_cp_run),
        f64s(last_cp_pct),
    ];
    batch("trends", kafka.finish(cols))
}

/// Rows of the `baselines` table: one per pinned (run, metric); a reset is one row of nulls.
pub fn baselines(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let (mut series, mut at, mut run_id, mut metric, mut value, mut reason) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::BaselinePin(p) = l.event else { continue };
        let mut push = |run: Option<&str>, m: Option<&str>, v: Option<f64>| {
            series.push(Some(p.series_id.clone()));
            at.push(Some(p.set_at));
            run_id.push(run.map(str::to_string));
            metric.push(m.map(str::to_string));
            value.push(v);
            reason.push(p.reason.clone());
            kafka.push(l);
        };
        if p.runs.is_empty() {
            push(None, None, None);
        }
        for r in &p.runs {
            for (m, v) in &r.values {
                push(Some(&r.run_id), Some(m), Some(*v));
            }
        }
    }
    let cols = vec![utf8(series), ts(at), utf8(run_id), utf8(metric), f64s(value), utf8(reason)];
    batch("baselines", kafka.finish(cols))
}

/// Rows of the `dlq` table: one per dead letter.
pub fn dead_letters(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let (mut topic, mut partition, mut offset, mut stage, mut reason, mut failed_at, mut payload) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::DeadLetter(d) = l.event else { continue };
        topic.push(Some(d.topic.clone()));
        partition.push(Some(d.partition));
        offset.push(Some(d.offset));
        stage.push(Some(d.stage.clone()));
        reason.push(Some(d.reason.clone()));
        failed_at.push(Some(d.failed_at));
        payload.push(Some(d.payload.as_slice()));
        kafka.push(l);
    }
    let cols = vec![
        utf8(topic),
        i32s(partition),
        i64s(offset),
        utf8(stage),
        utf8(reason),
        ts(failed_at),
        Arc::new(BinaryArray::from(payload)) as ArrayRef,
    ];
    batch("dlq", kafka.finish(cols))
}

/// Rows of the `detections` table: one per cluster-health detection.
pub fn detections(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let (mut run_id, mut detector, mut rank, mut step, mut event_ts, mut detected_at, mut value, mut threshold, mut message) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::Detection(d) = l.event else { continue };
        run_id.push(Some(d.run_id.clone()));
        detector.push(Some(d.detector.clone()));
        rank.push(d.rank);
        step.push(d.step);
        event_ts.push(Some(d.event_ts));
        detected_at.push(Some(d.detected_at));
        value.push(Some(d.value));
        threshold.push(Some(d.threshold));
        message.push(Some(d.message.clone()));
        kafka.push(l);
    }
    let cols = vec![
        utf8(run_id),
        utf8(detector),
        i32s(rank),
        i64s(step),
        ts(event_ts),
        ts(detected_at),
        f64s(value),
        f64s(threshold),
        utf8(message),
    ];
    batch("detections", kafka.finish(cols))
}

/// Rows of `table` from events.
pub fn table_batch(table: &str, events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    match table {
        "runs" => runs(events),
        "samples" => samples(events),
        "summaries" => summaries(events),
        "verdicts" => verdicts(events),
        "trends" => trends(events),
        "baselines" => baselines(events),
        "dlq" => dead_letters(events),
        "detections" => detections(events),
        "alerts" | "alert_actions" | "notifications" | "approvals" => super::alert_rows::alerting_batch(table, events),
        other => Err(ArrowError::InvalidArgumentError(format!("unknown table {other}"))),
    }
}

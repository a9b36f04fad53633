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

/// Rows of the `samples` table: one per sample.
pub fn samples(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let (mut run_id, mut seq, mut ts_us, mut metric, mut value, mut unit, mut rank, mut step) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut kafka = Kafka::default();
    for l in events {
        let AnyEvent::SampleBatch(b) = l.event else { continue };
        for s in &b.samples {
            run_id.push(Some(b.run_id.clone()));
            seq.push(Some(b.seq));
            ts_us.push(Some(s.ts_us));
            metric.push(Some(s.metric.clone()));
            value.push(Some(s.value));
            unit.push(Some(s.unit.clone()));
            rank.push(s.rank);
            step.push(s.step);
            kafka.push(l);
        }
    }
    let cols = vec![utf8(run_id), i64s(seq), ts(ts_us), utf8(metric), f64s(value), utf8(unit), i32s(rank), i64s(step)];
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

/// Rows of the `verdicts` table: one per metric verdict.
pub fn verdicts(events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    let mut id = Identity::default();
    let (mut evaluated_at, mut run_severity, mut metric, mut direction, mut value, mut baseline) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut baseline_count, mut model, mut lower, mut upper, mut change, mut severity) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
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
    ]);
    batch("verdicts", kafka.finish(cols))
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

/// Rows of `table` from events.
pub fn table_batch(table: &str, events: &[Located<'_>]) -> Result<RecordBatch, ArrowError> {
    match table {
        "runs" => runs(events),
        "samples" => samples(events),
        "summaries" => summaries(events),
        "verdicts" => verdicts(events),
        "dlq" => dead_letters(events),
        other => Err(ArrowError::InvalidArgumentError(format!("unknown table {other}"))),
    }
}

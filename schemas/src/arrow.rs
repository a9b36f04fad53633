//! Arrow schemas of the Parquet tables. One row per event for `runs`, one per sample for
//! `samples`, one per (run, metric) for `summaries` and `verdicts` (findings too, `kind = 'finding'`),
//! one per trend result for `trends`, one per pinned (run, metric) for `baselines`, one per
//! dead letter for `dlq`, one per cluster-health detection for `detections`, one per alert change
//! for `alerts`, one per ack or silence for `alert_actions`, one per channel outcome for `notifications`,
//! one per release decision for `approvals`. Every table ends with the Kafka coordinates of the record it came from; the hive
//! partition column `date` is added by the reader from the object path.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Tables kept in the object store, by name.
pub const TABLES: [&str; 12] = ["runs", "samples", "summaries", "verdicts", "trends", "baselines", "dlq", "detections", "alerts", "alert_actions", "notifications", "approvals"];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

fn kafka_fields() -> [Field; 2] {
    [f("kafka_partition", DataType::Int32, false), f("kafka_offset", DataType::Int64, false)]
}

fn labels() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(vec![f("keys", DataType::Utf8, false), f("values", DataType::Utf8, true)].into()),
            false,
        )),
        false,
    )
}

/// Identity columns shared by `runs`, `summaries` and `verdicts`.
fn identity_fields() -> Vec<Field> {
    vec![
        f("run_id", DataType::Utf8, false),
        f("series_id", DataType::Utf8, true),
        f("tool", DataType::Utf8, true),
        f("started_at", ts(), true),
        f("hardware_name", DataType::Utf8, true),
        f("workload", DataType::Utf8, true),
        f("workload_type", DataType::Utf8, true),
        f("batch_size", DataType::Int64, true),
        f("precision", DataType::Utf8, true),
        f("git_commit", DataType::Utf8, true),
        f("version_tag", DataType::Utf8, true),
        f("run_group", DataType::Utf8, true),
        f("env_hash", DataType::Utf8, true),
    ]
}

fn with_kafka(mut fields: Vec<Field>) -> SchemaRef {
    fields.extend(kafka_fields());
    Arc::new(Schema::new(fields))
}

static RUNS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut v = vec![f("event", DataType::Utf8, false)];
    v.extend(identity_fields());
    v.extend([
        f("tool_version", DataType::Utf8, true),
        f("os", DataType::Utf8, true),
        f("kernel", DataType::Utf8, true),
        f("cpu", DataType::Utf8, true),
        f("gpus", DataType::Utf8, true),
        f("driver", DataType::Utf8, true),
        f("framework", DataType::Utf8, true),
        f("framework_version", DataType::Utf8, true),
        f("sequence_length", DataType::Int64, true),
        f("backend", DataType::Utf8, true),
        f("steps", DataType::Int64, true),
        f("labels", labels(), true),
        f("status", DataType::Utf8, true),
        f("ended_at", ts(), true),
        f("sample_count", DataType::Int64, true),
        f("error", DataType::Utf8, true),
    ]);
    with_kafka(v)
});

static SAMPLES: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("run_id", DataType::Utf8, false),
        f("batch_seq", DataType::Int64, false),
        f("ts", ts(), false),
        f("metric", DataType::Utf8, false),
        f("value", DataType::Float64, false),
        f("unit", DataType::Utf8, false),
        f("rank", DataType::Int32, true),
        f("step", DataType::Int64, true),
    ])
});

static SUMMARIES: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut v = identity_fields();
    v.extend([
        f("status", DataType::Utf8, false),
        f("ended_at", ts(), false),
        f("kind", DataType::Utf8, false),
        f("metric", DataType::Utf8, false),
        f("unit", DataType::Utf8, false),
        f("count", DataType::Int64, true),
        f("mean", DataType::Float64, false),
        f("stdev", DataType::Float64, true),
        f("min", DataType::Float64, true),
        f("p50", DataType::Float64, true),
        f("p90", DataType::Float64, true),
        f("p95", DataType::Float64, true),
        f("p99", DataType::Float64, true),
        f("max", DataType::Float64, true),
    ]);
    with_kafka(v)
});

static VERDICTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut v = identity_fields();
    v.extend([
        f("evaluated_at", ts(), false),
        f("run_severity", DataType::Utf8, false),
        f("metric", DataType::Utf8, false),
        f("direction", DataType::Utf8, false),
        f("value", DataType::Float64, false),
        f("baseline", DataType::Float64, true),
        f("baseline_count", DataType::Int32, false),
        f("model", DataType::Utf8, false),
        f("lower_limit", DataType::Float64, true),
        f("upper_limit", DataType::Float64, true),
        f("change_pct", DataType::Float64, true),
        f("severity", DataType::Utf8, false),
        // Added with Verdict v2: older files read these as null.
        f("pvalue", DataType::Float64, true),
        f("kind", DataType::Utf8, true),
        f("message", DataType::Utf8, true),
        // Added with Verdict v5 (null in older files and on finding rows): the metric's
        // catalog kind, whether it gated the run, whether its direction was guessed, the 95 %
        // interval of change_pct and the Holm-adjusted p-value.
        f("metric_kind", DataType::Utf8, true),
        f("gates", DataType::Boolean, true),
        f("direction_guessed", DataType::Boolean, true),
        f("change_ci_low", DataType::Float64, true),
        f("change_ci_high", DataType::Float64, true),
        f("pvalue_adjusted", DataType::Float64, true),
    ]);
    with_kafka(v)
});

static TRENDS: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("series_id", DataType::Utf8, false),
        f("metric", DataType::Utf8, false),
        f("run_id", DataType::Utf8, false),
        f("computed_at", ts(), false),
        f("points", DataType::Int32, false),
        f("class", DataType::Utf8, false),
        f("slope", DataType::Float64, false),
        f("r_squared", DataType::Float64, false),
        f("theil_sen_slope", DataType::Float64, false),
        f("mann_kendall_p", DataType::Float64, true),
        f("total_change_pct", DataType::Float64, false),
        f("cv", DataType::Float64, false),
        f("confidence", DataType::Float64, false),
        f("change_points", DataType::Int32, false),
        f("last_change_run_id", DataType::Utf8, true),
        f("last_change_pct", DataType::Float64, true),
    ])
});

static BASELINES: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("series_id", DataType::Utf8, false),
        f("set_at", ts(), false),
        f("run_id", DataType::Utf8, true),
        f("metric", DataType::Utf8, true),
        f("value", DataType::Float64, true),
        f("reason", DataType::Utf8, true),
    ])
});

static DLQ: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("source_topic", DataType::Utf8, false),
        f("source_partition", DataType::Int32, false),
        f("source_offset", DataType::Int64, false),
        f("stage", DataType::Utf8, false),
        f("reason", DataType::Utf8, false),
        f("failed_at", ts(), false),
        f("payload", DataType::Binary, false),
    ])
});

static DETECTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("run_id", DataType::Utf8, false),
        f("detector", DataType::Utf8, false),
        f("rank", DataType::Int32, true),
        f("step", DataType::Int64, true),
        f("event_ts", ts(), false),
        f("detected_at", ts(), false),
        f("value", DataType::Float64, false),
        f("threshold", DataType::Float64, false),
        f("message", DataType::Utf8, false),
    ])
});

static ALERTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |n: &str| f(n, DataType::Utf8, false);
    let o = |n: &str, dt: DataType| f(n, dt, true);
    let i = |n: &str| f(n, DataType::Int32, false);
    with_kafka(vec![
        s("alert_id"), s("series_id"), s("subject"), s("kind"), s("state"), s("severity"), s("run_id"),
        o("value", DataType::Float64), o("baseline", DataType::Float64), o("change_pct", DataType::Float64),
        o("change_ci_low", DataType::Float64), o("change_ci_high", DataType::Float64), o("pvalue", DataType::Float64),
        s("message"), s("workload"), s("hardware"), o("version_tag", DataType::Utf8), o("git_commit", DataType::Utf8),
        f("labels", labels(), true), f("fired_at", ts(), false), f("updated_at", ts(), false), o("notified_at", ts()), o("notified_change_pct", DataType::Float64),
        s("notify"), o("silenced_by", DataType::Utf8), o("acked_by", DataType::Utf8),
        i("ok_runs"), i("series_firing"), s("group_key"), i("group_size"), i("group_index"),
    ])
});

static ALERT_ACTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_kafka(vec![
        f("action", DataType::Utf8, false),
        f("id", DataType::Utf8, false),
        f("series_id", DataType::Utf8, false),
        f("subject", DataType::Utf8, true),
        f("until", ts(), true),
        f("reason", DataType::Utf8, false),
        f("by", DataType::Utf8, false),
        f("at", ts(), false),
    ])
});

static APPROVALS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |n: &str| f(n, DataType::Utf8, false);
    let n = |n: &str| f(n, DataType::Int32, false);
    with_kafka(vec![s("decision_id"), s("candidate_kind"), s("candidate"), s("decision"), s("reason"), s("by"), f("at", ts(), false), n("series"), n("blocking"), n("warning"), n("open_alerts")])
});

static NOTIFICATIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |n: &str| f(n, DataType::Utf8, false);
    with_kafka(vec![
        s("notification_id"), s("group_key"), s("channel"), s("channel_kind"), s("series_id"), s("run_id"),
        f("alert_ids", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        s("reason"), s("severity"), s("status"), f("attempts", DataType::Int32, false), f("error", DataType::Utf8, true),
        f("at", ts(), false), f("external_ref", DataType::Utf8, true), s("title"),
    ])
});

/// Arrow schema of a table, or `None` for an unknown name.
pub fn table_schema(table: &str) -> Option<SchemaRef> {
    Some(match table {
        "runs" => RUNS.clone(),
        "samples" => SAMPLES.clone(),
        "summaries" => SUMMARIES.clone(),
        "verdicts" => VERDICTS.clone(),
        "trends" => TRENDS.clone(),
        "baselines" => BASELINES.clone(),
        "dlq" => DLQ.clone(),
        "detections" => DETECTIONS.clone(),
        "alerts" => ALERTS.clone(),
        "alert_actions" => ALERT_ACTIONS.clone(),
        "notifications" => NOTIFICATIONS.clone(),
        "approvals" => APPROVALS.clone(),
        _ => return None,
    })
}

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::*;

/// Rows in runs of one key (as the history holds them), some keys and values NULL, a long
/// key (not inlined in its view), keys spread over three partitions.
fn batch(schema: &SchemaRef, part: usize) -> RecordBatch {
    let keys: Vec<Option<String>> = (0..500)
        .map(|i| match (i / 37 + part) % 5 {
            0 => None,
            1 => Some("latency_ms".to_string()),
            2 => Some("01a249af-4bcc-76b4-89de-241c25dd0329".to_string()),
            3 => Some(format!("k{}", i % 3)),
            _ => Some("gpu_power_watts".to_string()),
        })
        .collect();
    let values: Float64Array = (0..500).map(|i| (i % 11 != 0).then_some((i * (part + 1)) as f64 / 7.0)).collect();
    let view: StringViewArray = keys.iter().map(|k| k.as_deref()).collect();
    let plain: StringArray = keys.iter().map(|k| k.as_deref()).collect();
    let times = TimestampMicrosecondArray::from((0..500).map(|i| (i % 13 != 0).then_some(1_000_000 * ((i * 7919 + part * 31) % 1000) as i64)).collect::<Vec<_>>()).with_timezone("UTC");
    RecordBatch::try_new(schema.clone(), vec![Arc::new(view) as ArrayRef, Arc::new(plain), Arc::new(values), Arc::new(times)]).unwrap()
}

fn context(with_rule: bool) -> SessionContext {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8View, true), Field::new("p", DataType::Utf8, true), Field::new("v", DataType::Float64, true), Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true)]));
    let partitions: Vec<Vec<RecordBatch>> = (0..3).map(|p| vec![batch(&schema, p), batch(&schema, p + 1)]).collect();
    let mut builder = SessionStateBuilder::new().with_config(SessionConfig::new().with_target_partitions(3)).with_default_features();
    if with_rule {
        builder = builder.with_physical_optimizer_rule(Arc::new(FastStringGroups));
    }
    let ctx = SessionContext::new_with_state(builder.build());
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap())).unwrap();
    ctx
}


#[tokio::test]
async fn string_groups_give_datafusions_answers() {
    let fast = [
        "SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY k",
        "SELECT p, count(*) AS n, count(v) AS c, round(sum(v), 6) AS s, round(avg(v), 6) AS a FROM t GROUP BY p ORDER BY p",
        "SELECT k, round(avg(v), 6) AS a FROM t WHERE k <> 'latency_ms' GROUP BY k ORDER BY a DESC, k LIMIT 2",
        "SELECT k, count(*) AS n FROM t WHERE v IS NULL GROUP BY k ORDER BY k",
        // Filters taken in as a row mask, through the filter's projection; a NULL predicate
        // (v > 20 where v is NULL) keeps no row.
        "SELECT k, count(*) AS n, round(sum(v), 6) AS s FROM t WHERE v > 20 GROUP BY k ORDER BY k",
        "SELECT p, min(ts) AS first, max(ts) AS last, median(v) AS m, count(v) AS c FROM t WHERE k IS NOT NULL AND ts IS NOT NULL GROUP BY p ORDER BY p",
        "SELECT k, min(ts) AS first, median(v) AS m FROM t GROUP BY k ORDER BY k",
    ];
    let planned = ["SELECT k, min(v) AS m FROM t GROUP BY k ORDER BY k", "SELECT k, count(*) FILTER (WHERE v > 10) AS n FROM t GROUP BY k ORDER BY k", "SELECT k, p, count(*) AS n FROM t GROUP BY k, p ORDER BY k, p"];
    let (with, without) = (context(true), context(false));
    for sql in fast.iter().chain(&planned) {
        let ((got, plan), (want, _)) = (crate::test_support::answer_and_plan(&with, sql).await, crate::test_support::answer_and_plan(&without, sql).await);
        assert_eq!(got, want, "{sql}");
        assert_eq!(plan.contains("StringGroupPartial"), fast.contains(sql), "{sql}:\n{plan}");
    }
    let (counts, _) = crate::test_support::answer_and_plan(&with, fast[0]).await;
    let rows = counts.lines().filter(|l| l.starts_with("| ")).count() - 1;
    assert!(rows == 7 && counts.contains("latency_ms") && counts.contains("01a249af-4bcc-76b4-89de-241c25dd0329"), "six named groups and the NULL one: {counts}");
}

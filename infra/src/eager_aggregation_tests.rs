use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::*;

/// Samples: runs of rows per run id over several partitions, some run ids and values NULL,
/// some run ids with no run row.
fn samples(schema: &SchemaRef, part: usize) -> RecordBatch {
    let runs: StringViewArray = (0..600).map(|i| match (i / 23 + part) % 9 {
        0 => None,
        k => Some(format!("run-{k}")),
    }).collect();
    let days: StringViewArray = (0..600).map(|i| Some(format!("2026-12-0{}", 1 + (i + part) % 3))).collect();
    let values: Float64Array = (0..600).map(|i| (i % 17 != 0).then_some(((i * 31 + part * 7) % 101) as f64 / 3.0)).collect();
    RecordBatch::try_new(schema.clone(), vec![Arc::new(runs) as ArrayRef, Arc::new(days), Arc::new(values)]).unwrap()
}

/// Runs: a started row per run id 1..6 (none for 7 and 8), a second row for run 2 (a key the
/// join meets twice), a NULL run id, workloads shared by several runs.
fn runs(schema: &SchemaRef) -> RecordBatch {
    let rows = [(Some("run-1"), "a", 1.0), (Some("run-2"), "a", 2.0), (Some("run-2"), "b", 3.0), (Some("run-3"), "b", 4.0), (Some("run-4"), "c", 5.0), (Some("run-5"), "a", 6.0), (Some("run-6"), "c", 7.0), (None, "a", 8.0)];
    let ids: StringViewArray = rows.iter().map(|r| r.0).collect();
    let workloads: StringViewArray = rows.iter().map(|r| Some(r.1)).collect();
    let weights: Float64Array = rows.iter().map(|r| Some(r.2)).collect();
    RecordBatch::try_new(schema.clone(), vec![Arc::new(ids) as ArrayRef, Arc::new(workloads), Arc::new(weights)]).unwrap()
}

fn context(with_rule: bool, partitions: usize) -> SessionContext {
    let s: SchemaRef = Arc::new(Schema::new(vec![Field::new("run_id", DataType::Utf8View, true), Field::new("date", DataType::Utf8View, false), Field::new("value", DataType::Float64, true)]));
    let r: SchemaRef = Arc::new(Schema::new(vec![Field::new("run_id", DataType::Utf8View, true), Field::new("workload", DataType::Utf8View, false), Field::new("weight", DataType::Float64, false)]));
    let mut builder = SessionStateBuilder::new().with_config(SessionConfig::new().with_target_partitions(partitions)).with_default_features();
    if with_rule {
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        let last_pushdown = rules.iter().rposition(|rule| rule.name().starts_with("FilterPushdown")).unwrap();
        rules.insert(last_pushdown, Arc::new(EagerAggregation));
        builder = builder.with_physical_optimizer_rules(rules);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    crate::sql_functions::register(&ctx);
    let parts: Vec<Vec<RecordBatch>> = (0..3).map(|p| vec![samples(&s, p), samples(&s, p + 4)]).collect();
    ctx.register_table("samples", Arc::new(MemTable::try_new(s, parts).unwrap())).unwrap();
    ctx.register_table("runs", Arc::new(MemTable::try_new(r.clone(), vec![vec![runs(&r)]]).unwrap())).unwrap();
    ctx
}


/// The plan aggregates below its join: a partial or single aggregate after the join's line.
fn aggregates_before_joining(plan: &str) -> bool {
    let physical = &plan[plan.find("physical_plan").unwrap()..];
    let join = physical.find("HashJoinExec").unwrap();
    physical[join..].contains("AggregateExec: mode=Partial")
}

#[tokio::test]
async fn eager_aggregation_gives_datafusions_answers() {
    let eager = [
        "SELECT r.workload, count(*) AS n, round(avg(s.value), 9) AS mean FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
        "SELECT s.date, r.workload, count(s.value) AS c, round(sum(s.value), 9) AS total, min(s.value) AS lo, max(s.value) AS hi, median(s.value) AS m FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY s.date, r.workload ORDER BY s.date, r.workload",
        "SELECT s.date, r.workload, approx_quantile(s.value, 0.99) AS p99 FROM samples s JOIN runs r ON s.run_id = r.run_id WHERE s.value > 3 GROUP BY s.date, r.workload ORDER BY s.date, r.workload",
        "SELECT s.run_id, r.workload, count(*) AS n FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY s.run_id, r.workload ORDER BY s.run_id, r.workload",
        "SELECT count(*) AS n, round(avg(s.value), 9) AS mean FROM samples s JOIN runs r ON s.run_id = r.run_id WHERE r.workload = 'a'",
    ];
    let planned = [
        // An aggregate reading the build side, one reading both, a residual join filter, an
        // outer join, a filtered aggregate, an ordered one.
        "SELECT r.workload, round(sum(r.weight), 9) AS w FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
        "SELECT r.workload, round(sum(s.value * r.weight), 9) AS w FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
        "SELECT r.workload, count(*) AS n FROM samples s JOIN runs r ON s.run_id = r.run_id AND s.value > r.weight GROUP BY r.workload ORDER BY r.workload",
        "SELECT r.workload, count(*) AS n FROM samples s LEFT JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
        "SELECT r.workload, count(*) FILTER (WHERE s.value > 10) AS n FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
        "SELECT r.workload, first_value(s.value ORDER BY s.value DESC) AS top FROM samples s JOIN runs r ON s.run_id = r.run_id GROUP BY r.workload ORDER BY r.workload",
    ];
    for partitions in [3, 1] {
        let (with, without) = (context(true, partitions), context(false, partitions));
        for sql in eager.iter().chain(&planned) {
            let ((got, plan), (want, _)) = (crate::test_support::answer_and_plan(&with, sql).await, crate::test_support::answer_and_plan(&without, sql).await);
            assert_eq!(got, want, "{partitions} partitions: {sql}");
            assert_eq!(aggregates_before_joining(&plan), eager.contains(sql), "{partitions} partitions: {sql}:\n{plan}");
        }
    }
    // Run 2's samples meet two run rows (workloads a and b): counted under both, as the join does.
    let (counts, _) = crate::test_support::answer_and_plan(&context(true, 3), eager[0]).await;
    assert!(counts.lines().filter(|l| l.starts_with("| a") || l.starts_with("| b") || l.starts_with("| c")).count() == 3, "{counts}");
}

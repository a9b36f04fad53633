//! Column names and types are stable across versions: history written by an earlier layout
//! reads with today's tables (columns it lacks are NULL), and no column of the golden list
//! (`tables_columns.golden`, one `table.column type` per line) is renamed, retyped or dropped.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::Schema;
use datafusion::scalar::ScalarValue;

use super::*;

const GOLDEN: &str = include_str!("tables_columns.golden");

/// The columns of `verdicts` that Verdict v5 added (commit 1055e26): the layout before it,
/// what histories written by earlier releases hold.
const ADDED_BY_VERDICT_V5: [&str; 6] = ["metric_kind", "gates", "direction_guessed", "change_ci_low", "change_ci_high", "pvalue_adjusted"];

fn golden_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for table in trackiq_schemas::arrow::TABLES {
        for f in trackiq_schemas::arrow::table_schema(table).unwrap().fields() {
            lines.push(format!("{table}.{} {}", f.name(), f.data_type()));
        }
    }
    lines
}

#[test]
fn no_column_is_renamed_retyped_or_dropped() {
    let now = golden_lines();
    if std::env::var_os("TRACKIQ_UPDATE_GOLDEN").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/tables_columns.golden"), now.join("\n") + "\n").unwrap();
        return;
    }
    let golden: Vec<&str> = GOLDEN.lines().filter(|l| !l.is_empty()).collect();
    let gone: Vec<&&str> = golden.iter().filter(|l| !now.iter().any(|n| n == **l)).collect();
    assert!(gone.is_empty(), "columns renamed, retyped or dropped (history already written holds them): {gone:?}");
    let new: Vec<&String> = now.iter().filter(|n| !golden.contains(&n.as_str())).collect();
    assert!(new.is_empty(), "new columns {new:?}: add them to infra/src/tables_columns.golden (TRACKIQ_UPDATE_GOLDEN=1 cargo test -p trackiq-infra no_column_is_renamed)");
}

/// A verdicts object in the layout before Verdict v5, one row of `run`.
fn old_verdict_object(run: &str) -> Vec<u8> {
    let now = trackiq_schemas::arrow::table_schema("verdicts").unwrap();
    let old = Arc::new(Schema::new(now.fields().iter().filter(|f| !ADDED_BY_VERDICT_V5.contains(&f.name().as_str())).cloned().collect::<Vec<_>>()));
    assert_eq!(old.fields().len() + ADDED_BY_VERDICT_V5.len(), now.fields().len(), "every v5 column is in today's schema");
    let columns: Vec<ArrayRef> = old
        .fields()
        .iter()
        .map(|f| {
            let value = match f.name().as_str() {
                "run_id" => ScalarValue::Utf8(Some(run.into())),
                "metric" => ScalarValue::Utf8(Some("latency_ms".into())),
                _ if f.is_nullable() => ScalarValue::try_from(f.data_type()).unwrap(),
                _ => ScalarValue::new_default(f.data_type()).unwrap(),
            };
            let array = value.to_array_of_size(1).unwrap();
            datafusion::arrow::compute::cast(&array, f.data_type()).unwrap()
        })
        .collect();
    crate::test_support::parquet_object(old, columns)
}

#[tokio::test]
async fn history_in_the_layout_before_verdict_v5_reads_with_todays_tables() {
    let dir = std::env::temp_dir().join(format!("trackiq-evolution-{}", uuid::Uuid::new_v4().simple()));
    let store = DataStore::open(&format!("file://{}", dir.display())).unwrap();
    store.put("verdicts/date=2026-10-01/trackiq.verdicts-0-0-0-i1.parquet", old_verdict_object("old-run")).await.unwrap();
    let rows = query_rows(&store, "SELECT run_id, metric, metric_kind, gates, change_ci_low, pvalue_adjusted, date FROM verdicts").await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["run_id"].as_str(), rows[0]["metric"].as_str(), rows[0]["date"].as_str()), (Some("old-run"), Some("latency_ms"), Some("2026-10-01")));
    for added in ["metric_kind", "gates", "change_ci_low", "pvalue_adjusted"] {
        assert!(rows[0].get(added).is_none_or(|v| v.is_null()), "{added} reads as NULL in old history: {rows:?}");
    }
    // Every column of today's table is selectable over the old object.
    assert_eq!(query_rows(&store, "SELECT * FROM verdicts").await.unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

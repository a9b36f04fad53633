use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field};

use super::*;
use crate::store::DataStore;

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trackiq-{what}-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn meta(location: &str, size: u64) -> ObjectMeta {
    ObjectMeta { location: Path::from(location), last_modified: chrono::DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(), size, e_tag: None, version: None }
}

fn key(location: &str) -> TableScopedPath {
    TableScopedPath { table: None, path: Path::from(location) }
}

#[test]
fn counts_outlive_the_process_and_only_for_the_same_object() {
    let dir = temp_dir("row-count-cache");
    let file = dir.join("row-counts").join("runs.tsv");
    let schema = Schema::new(vec![Field::new("run_id", DataType::Utf8View, true)]);
    let first = RowCountCache::open(Some(file.clone()), &schema);
    assert!(first.get(&key("runs/a.parquet")).is_none());
    let mut run_ids = ColumnStatistics::new_unknown();
    run_ids.null_count = Precision::Exact(2);
    run_ids.min_value = Precision::Exact(ScalarValue::Utf8View(Some("run-0\ttab".into())));
    run_ids.max_value = Precision::Inexact(ScalarValue::Utf8View(Some("run-9".into())));
    let stats = Statistics { num_rows: Precision::Exact(42), total_byte_size: Precision::Inexact(900), column_statistics: vec![run_ids.clone()] };
    let value = CachedFileMetadata::new(meta("runs/a.parquet", 1234), first.fingerprint.clone(), Arc::new(stats), None);
    first.put(&key("runs/a.parquet"), value);
    // An estimate is not recorded; a torn line (a process killed mid-write) is skipped.
    let estimate = Statistics { num_rows: Precision::Inexact(7), total_byte_size: Precision::Absent, column_statistics: vec![ColumnStatistics::new_unknown()] };
    first.put(&key("runs/b.parquet"), CachedFileMetadata::new(meta("runs/b.parquet", 99), first.fingerprint.clone(), Arc::new(estimate), None));
    std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"runs/c.parquet\t12").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);

    let second = RowCountCache::open(Some(file.clone()), &schema);
    assert_eq!(second.len(), 1);
    let cached = second.get(&key("runs/a.parquet")).expect("recorded by the first process");
    assert_eq!(cached.statistics.num_rows, Precision::Exact(42));
    assert_eq!(cached.statistics.column_statistics, [run_ids], "null count and bounds, exact or not, a tab in a value kept");
    assert!(cached.is_valid_for(&meta("runs/a.parquet", 1234), &Arc::new(SchemaFingerprint::from_schema(&schema))));
    assert!(!cached.is_valid_for(&meta("runs/a.parquet", 1235), &second.fingerprint), "another size: another object");
    let wider = Schema::new(vec![Field::new("run_id", DataType::Utf8View, true), Field::new("x", DataType::Int64, true)]);
    assert!(!cached.is_valid_for(&meta("runs/a.parquet", 1234), &Arc::new(SchemaFingerprint::from_schema(&wider))), "another table schema");

    // A file grown past its bound is started again.
    std::fs::write(&file, vec![b'\n'; MAX_FILE_BYTES as usize + 1]).unwrap();
    assert_eq!(RowCountCache::open(Some(file.clone()), &schema).len(), 0);
    assert!(!file.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `runs` object with `n` rows (run ids; every other column null, or its type's default
/// where it may not be null).
fn runs_object(n: usize) -> Vec<u8> {
    let schema = trackiq_schemas::arrow::table_schema("runs").unwrap();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "run_id" => Arc::new(StringArray::from((0..n).map(|i| format!("run-{i}")).collect::<Vec<_>>())) as ArrayRef,
            _ if f.is_nullable() => new_null_array(f.data_type(), n),
            _ => datafusion::scalar::ScalarValue::new_default(f.data_type()).unwrap().to_array_of_size(n).unwrap(),
        })
        .collect();
    crate::test_support::parquet_object(schema, columns)
}

#[tokio::test]
async fn queries_plan_from_the_recorded_counts_of_unchanged_objects() {
    let dir = temp_dir("row-count-planning");
    let store = DataStore::open(&format!("file://{}", dir.display())).unwrap();
    let (a, b) = ("runs/date=2026-12-05/trackiq.runs-0-0-2-i1.parquet", "runs/date=2026-12-06/trackiq.runs-0-3-7-i1.parquet");
    store.put(a, runs_object(3)).await.unwrap();
    store.put(b, runs_object(5)).await.unwrap();
    let count = || async { crate::tables::query_rows(&store, "SELECT count(*) AS n FROM runs").await.unwrap()[0]["n"].as_i64().unwrap() };
    assert_eq!(count().await, 8);
    let file = dir.join(".trackiq-cache/row-counts/runs.tsv");
    let text = std::fs::read_to_string(&file).expect("the first query records each object's rows");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(count().await, 8, "a second process agrees");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "and records nothing new");
    // The recorded bounds of run_id skip the object without run-4 before it is opened.
    let plan = crate::tables::query_rows(&store, "EXPLAIN ANALYZE SELECT count(*) AS n FROM runs WHERE run_id = 'run-4'").await.unwrap();
    let plan = serde_json::to_string(&plan).unwrap();
    assert!(plan.contains("files_ranges_pruned_statistics=2 total → 1 matched"), "{plan}");

    // Proof that planning takes the recorded count instead of the footer: a record altered
    // by hand (same object, size and time) is believed...
    std::fs::write(&file, text.replace("\t3\t", "\t30\t")).unwrap();
    assert_eq!(count().await, 35);
    // ...until the object is another one (written again, another size): its footer is read.
    store.put(a, runs_object(4)).await.unwrap();
    assert_eq!(count().await, 9);
    std::fs::remove_dir_all(dir).unwrap();
}

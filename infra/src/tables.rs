//! DataFusion over the Parquet history: every table of [`trackiq_schemas::arrow::TABLES`]
//! registered as a listing table over `<data>/<table>/date=YYYY-MM-DD/*.parquet`, as
//! [`crate::visible_store`] shows them.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::SessionContext;

use crate::error::InfraError;
use crate::store::DataStore;

/// A DataFusion session with the object store and the trackiq tables registered.
pub async fn session(store: &DataStore) -> Result<SessionContext, InfraError> {
    // File statistics on: the join planner needs row counts to build its hash table on the
    // small side (without them `samples JOIN runs` hashed 61M sample rows: 9 s, 6.5 GB). But
    // no answers from them: Parquet's min/max leave NaN out, so a `max(value)` answered from
    // statistics would skip a NaN that history written before validation may hold; the rule
    // that answers aggregates from statistics is left out; counts come from footers' row
    // counts (`row_counts`), which are exact.
    let mut config = datafusion::prelude::SessionConfig::new().with_collect_statistics(true).with_information_schema(true);
    // Compacted objects are sorted by run, metric and time with page statistics: the page
    // index alone skips the pages a `WHERE run_id = …` excludes (one run's values: 0.07 s on
    // the 56.8M-sample history either way). Evaluating the filters row by row inside the scan
    // as well (`pushdown_filters`) only cost time: a filter that keeps most rows, and the join's
    // dynamic `run_id IN (...)` filter, were evaluated twice — samples joined with runs took
    // 4.4 s with it and 3.0 s without (uncompacted), 2.6 s and 1.8 s (compacted).
    config.options_mut().execution.parquet.pushdown_filters = false;
    config.options_mut().execution.parquet.metadata_size_hint = Some(FOOTER_READ_HINT);
    // trackiq writes no bloom filters (a run id's bounds and the page index already skip
    // objects and pages), yet the reader looked for one in every row group of a filtered
    // scan: 134 ms of `bloom_filter_eval_time` for `WHERE metric = …` over 1,874 archived objects.
    config.options_mut().execution.parquet.bloom_filter_on_read = false;
    apply_datafusion_env(&mut config)?;
    let mut rules: Vec<_> = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules.into_iter().filter(|rule| rule.name() != "aggregate_statistics").collect();
    // Eager aggregation before the last filter push-down, which makes the join's dynamic
    // filter for the plan as it will run.
    let last_pushdown = rules.iter().rposition(|rule| rule.name().starts_with("FilterPushdown")).unwrap_or(rules.len());
    rules.insert(last_pushdown, Arc::new(crate::eager_aggregation::EagerAggregation));
    rules.extend([
        Arc::new(crate::row_counts::CountFromRowCounts) as Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>,
        Arc::new(crate::string_groups::FastStringGroups),
    ]);
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    crate::sql_functions::register(&ctx);
    // Readers see the history through its compaction records (no duplicates mid-compaction).
    ctx.register_object_store(store.root_url(), Arc::new(crate::visible_store::VisibleStore::new(store.object_store())));
    for table in trackiq_schemas::arrow::TABLES {
        let schema = trackiq_schemas::arrow::table_schema(table).expect("known table");
        let schema = read_strings_as_views(&schema);
        let url = ListingTableUrl::parse(store.dir_url(table))?;
        // The format takes the session's Parquet options: `ParquetFormat::default()` carries
        // its own defaults, whose 512 KiB footer read hint made every query of the archived
        // layout read 580 MB (1,133 objects of ~690 KB, footers of ~2.3 KB) and page-zero it.
        let format = ParquetFormat::default().with_options(ctx.state().default_table_options().parquet.clone());
        let options = ListingOptions::new(Arc::new(format))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
        let cache = crate::row_count_cache::RowCountCache::open(crate::row_count_cache::cache_file(store, table), &schema);
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        let listing = Arc::new(ListingTable::try_new(config)?.with_cache(Some(Arc::new(cache))));
        match ONE_RECORD_PER_RUN.contains(&table) {
            true => register_first_record_per_run(&ctx, table, listing).await?,
            false => drop(ctx.register_table(table, listing)?),
        }
    }
    for (name, sql) in VIEWS {
        let plan = ctx.sql(sql).await?.into_unoptimized_plan();
        ctx.register_table(name, Arc::new(datafusion::catalog::view::ViewTable::new(plan, Some(sql.to_string()))))?;
    }
    Ok(ctx)
}

/// Bytes read from an object's end to reach its footer in one read: an archived object's
/// footer is ~2.3 KB and a compacted one's ~11 KB; a larger footer costs one more read.
const FOOTER_READ_HINT: usize = 16 * 1024;

/// Views over the tables, the way analysts think of the history.
///
/// `run_overview`: one row per run (`runs` holds a `started` and a `finished` event per run,
/// each with half the columns), with its identity, times, status (`running` until the
/// finished event arrives), sample count, and the run's severity from its latest verdict.
pub const VIEWS: [(&str, &str); 1] = [(
    "run_overview",
    "SELECT s.run_id, s.series_id, s.tool, s.workload, s.workload_type, s.hardware_name, s.batch_size, s.precision, \
     s.git_commit, s.version_tag, s.run_group, s.started_at, f.ended_at, coalesce(f.status, 'running') AS status, \
     f.sample_count, f.error, v.severity, s.date \
     FROM (SELECT * FROM runs WHERE event = 'started') s \
     LEFT JOIN (SELECT run_id, status, ended_at, sample_count, error FROM runs WHERE event = 'finished') f ON s.run_id = f.run_id \
     LEFT JOIN (SELECT run_id, first_value(run_severity ORDER BY evaluated_at DESC) AS severity FROM verdicts GROUP BY run_id) v ON s.run_id = v.run_id",
)];

/// DataFusion's own environment convention on top of trackiq's settings: every option of
/// `datafusion.*` may be given as its upper-cased name with `_` for `.` (e.g.
/// `DATAFUSION_EXECUTION_TARGET_PARTITIONS=1`), for analysts who tune a query and for
/// measuring a setting without a rebuild.
fn apply_datafusion_env(config: &mut datafusion::prelude::SessionConfig) -> Result<(), InfraError> {
    let keys: Vec<String> = datafusion::config::ConfigOptions::default().entries().into_iter().map(|e| e.key).collect();
    for key in keys {
        if let Ok(value) = std::env::var(key.to_uppercase().replace('.', "_")) {
            config.options_mut().set(&key, &value)?;
        }
    }
    Ok(())
}

/// String columns read as `Utf8View`: Parquet's dictionary pages decode to views of the
/// dictionary without copying each value, and a short value (a metric or unit name fits in
/// 12 bytes) is grouped and compared inline. `count per metric` over 56.8M samples: 0.82 s
/// as `Utf8`, 0.60 s as views.
fn read_strings_as_views(schema: &datafusion::arrow::datatypes::SchemaRef) -> datafusion::arrow::datatypes::SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => f.clone(),
        })
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Tables written from one record per run, whose rows readers see from that record only.
/// A stage that crashes after publishing its output and before storing its input offset
/// publishes it again on restart: the log then holds the run's summary at two offsets. The
/// archiver drops such a repeat when it follows its original closely (see the processors'
/// `archiver::repeats`); a replay from long ago (a long run held the aggregator's offset back)
/// is written, and the reader keeps the first record so that no query sees it twice.
pub const ONE_RECORD_PER_RUN: [&str; 1] = ["summaries"];

/// Registers `table` as a view of `listing` keeping the rows of each run's first record (by
/// Kafka partition and offset; a run's records share its key and so a partition).
async fn register_first_record_per_run(ctx: &SessionContext, table: &str, listing: Arc<ListingTable>) -> Result<(), InfraError> {
    use datafusion::datasource::TableProvider;
    let columns: Vec<String> = listing.schema().fields().iter().map(|f| format!("\"{}\"", f.name())).collect();
    let records = format!("{table}_records");
    ctx.register_table(&records, listing)?;
    let record = "kafka_partition * 1000000000000 + kafka_offset";
    let sql = format!(
        "SELECT {cols} FROM (SELECT *, {record} AS record, min({record}) OVER (PARTITION BY run_id) AS first_record FROM {records}) WHERE record = first_record",
        cols = columns.join(", ")
    );
    let plan = ctx.sql(&sql).await?.into_unoptimized_plan();
    // The view holds the listing table itself: the helper name is not left behind.
    ctx.deregister_table(&records)?;
    ctx.register_table(table, Arc::new(datafusion::catalog::view::ViewTable::new(plan, Some(sql))))?;
    Ok(())
}

/// A result row as a JSON object (column name -> value; nulls left out).
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Runs a query over the history and returns its rows as JSON objects.
pub async fn query_rows(store: &DataStore, sql: &str) -> Result<Vec<Row>, InfraError> {
    let ctx = session(store).await?;
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
        for b in &batches {
            w.write(b).map_err(|e| InfraError::DataFusion(e.into()))?;
        }
        w.finish().map_err(|e| InfraError::DataFusion(e.into()))?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&buf).map_err(|e| InfraError::DataFusion(datafusion::error::DataFusionError::External(Box::new(e))))?;
    Ok(rows.into_iter().filter_map(|r| match r {
        serde_json::Value::Object(o) => Some(o),
        _ => None,
    }).collect())
}

/// Runs a query over the history and reads each row as a `T` (columns named as its fields;
/// cast timestamps to BIGINT: they come back as text otherwise). A row that does not fit is
/// an error naming the row.
pub async fn query_as<T: serde::de::DeserializeOwned>(store: &DataStore, sql: &str) -> Result<Vec<T>, InfraError> {
    query_rows(store, sql)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::from_value(serde_json::Value::Object(r)).map_err(|e| {
                InfraError::DataFusion(datafusion::error::DataFusionError::Execution(format!("row {i} of `{sql}` does not fit: {e}")))
            })
        })
        .collect()
}

/// A query's answer as text cells, in the query's column order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TextTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// More rows matched than the cap: only the first `cap` are here.
    pub truncated: bool,
}

/// Runs one read-only query over the history (DDL, DML and statements refused by DataFusion's
/// own plan check, before anything runs), stopped after `timeout`, at most `cap` rows.
pub async fn query_readonly(store: &DataStore, sql: &str, cap: usize, timeout: std::time::Duration) -> Result<TextTable, InfraError> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion::execution::context::SQLOptions;
    let ctx = session(store).await?;
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("not supported") && (text.contains("DDL") || text.contains("DML") || text.contains("Statement")) {
            InfraError::NotAQuery(text)
        } else {
            InfraError::DataFusion(e)
        }
    })?;
    let df = df.limit(0, Some(cap + 1))?;
    let batches = tokio::time::timeout(timeout, df.collect()).await.map_err(|_| InfraError::QueryTimedOut(timeout))??;
    let columns = batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let mut rows = Vec::new();
    let options = FormatOptions::default().with_null("");
    for b in &batches {
        let formatters = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<Vec<_>, _>>().map_err(|e| InfraError::DataFusion(e.into()))?;
        for i in 0..b.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    let truncated = rows.len() > cap;
    rows.truncate(cap);
    Ok(TextTable { columns, rows, truncated })
}

#[cfg(test)]
mod readonly_tests {
    use std::time::Duration;

    use super::*;

    fn store() -> DataStore {
        let dir = std::env::temp_dir().join(format!("trackiq-readonly-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        DataStore::open(&format!("file://{}", dir.display())).unwrap()
    }

    #[tokio::test]
    async fn the_console_runs_queries_and_refuses_everything_else() {
        let s = store();
        let t = query_readonly(&s, "SELECT 1 AS one, 'a' AS letter UNION ALL SELECT 2, NULL", 10, Duration::from_secs(10)).await.unwrap();
        assert_eq!((t.columns.clone(), t.rows.len(), t.truncated), (vec!["one".to_string(), "letter".to_string()], 2, false));
        let capped = query_readonly(&s, "SELECT * FROM generate_series(1, 100)", 10, Duration::from_secs(10)).await.unwrap();
        assert_eq!((capped.rows.len(), capped.truncated), (10, true));
        for sql in [
            "COPY (SELECT 1) TO '/tmp/trackiq-copy-test.csv'",
            "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE TABLE t AS SELECT 1",
            "INSERT INTO runs SELECT * FROM runs",
            "DROP TABLE runs",
            "SET datafusion.execution.batch_size = 1",
        ] {
            let err = query_readonly(&s, sql, 10, Duration::from_secs(10)).await.unwrap_err();
            assert!(matches!(err, InfraError::NotAQuery(_)), "{sql}: {err}");
        }
        assert!(!std::path::Path::new("/tmp/trackiq-copy-test.csv").exists());
    }
}

#[cfg(test)]
mod first_record_tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray, new_null_array};

    use super::*;

    /// A summaries object holding `run`'s summary (two metric rows) as the record at `offset`.
    fn summary_object(run: &str, offset: i64, mean: f64) -> Vec<u8> {
        let schema = trackiq_schemas::arrow::table_schema("summaries").unwrap();
        let n = 2;
        let text = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "run_id" => text(run),
                "status" => text("completed"),
                "kind" => text("samples"),
                "unit" => text("ms"),
                "metric" => Arc::new(StringArray::from(vec!["latency_ms", "cpu_ms"])) as ArrayRef,
                "mean" => Arc::new(Float64Array::from(vec![mean; n])),
                "ended_at" => Arc::new(TimestampMicrosecondArray::from(vec![1_000_000; n]).with_timezone("UTC")),
                "kafka_partition" => Arc::new(Int32Array::from(vec![0; n])),
                "kafka_offset" => Arc::new(Int64Array::from(vec![offset; n])),
                _ => new_null_array(f.data_type(), n),
            })
            .collect();
        crate::test_support::parquet_object(schema, columns)
    }

    #[tokio::test]
    async fn a_summary_the_log_holds_twice_is_read_once_from_its_first_record() {
        let dir = tempfile_dir();
        let store = DataStore::open(&format!("file://{}", dir.display())).unwrap();
        // Run a's summary at offset 3, published again at offset 40 (a replay after a crash,
        // written to a later object); run b once.
        store.put("summaries/date=2026-12-05/trackiq.summaries-0-3-3-i1.parquet", summary_object("a", 3, 10.0)).await.unwrap();
        store.put("summaries/date=2026-12-05/trackiq.summaries-0-40-41-i1.parquet", summary_object("a", 40, 10.0)).await.unwrap();
        store.put("summaries/date=2026-12-06/trackiq.summaries-0-41-41-i1.parquet", summary_object("b", 41, 12.0)).await.unwrap();
        let rows = query_rows(&store, "SELECT run_id, count(*) AS n, min(kafka_offset) AS first, max(date) AS date FROM summaries GROUP BY run_id ORDER BY run_id").await.unwrap();
        let got: Vec<(String, i64, i64)> = rows.iter().map(|r| (r["run_id"].as_str().unwrap().into(), r["n"].as_i64().unwrap(), r["first"].as_i64().unwrap())).collect();
        assert_eq!(got, [("a".into(), 2, 3), ("b".into(), 2, 41)], "one metric row each of latency_ms and cpu_ms per run");
        // Filters, the partition column and every column of the table still read as before.
        let one = query_rows(&store, "SELECT * FROM summaries WHERE run_id = 'b' AND date = '2026-12-06' AND metric = 'cpu_ms'").await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["mean"], 12.0);
        // The records themselves are no table of their own.
        assert!(query_rows(&store, "SELECT * FROM summaries_records").await.is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("trackiq-first-record-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

#[cfg(test)]
#[path = "tables_evolution_tests.rs"]
mod evolution_tests;

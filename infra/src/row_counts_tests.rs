use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionStateBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::*;

/// Objects per date: (date, rows of `v`, of which null). 2026-01-03 holds an empty object.
const OBJECTS: &[(&str, usize, usize)] = &[("2026-01-01", 1000, 10), ("2026-01-01", 250, 0), ("2026-01-02", 4000, 400), ("2026-01-03", 0, 0)];

fn write(dir: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
    for (i, (date, rows, nulls)) in OBJECTS.iter().enumerate() {
        let path = dir.join("t").join(format!("date={date}"));
        std::fs::create_dir_all(&path).unwrap();
        let values = Int64Array::from_iter((0..*rows).map(|r| (r >= *nulls).then_some(r as i64)));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path.join(format!("{i}.parquet"))).unwrap(), schema.clone(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
}

/// A session over the objects, with or without the rule; `split` reads objects as byte ranges
/// over four partitions (one object then appears in several file groups).
async fn session(dir: &std::path::Path, with_rule: bool, split: bool) -> SessionContext {
    let mut config = SessionConfig::new().with_collect_statistics(true).with_target_partitions(4);
    if split {
        config.options_mut().optimizer.repartition_file_min_size = 1;
    }
    let mut builder = SessionStateBuilder::new().with_config(config).with_default_features();
    if with_rule {
        builder = builder.with_physical_optimizer_rule(Arc::new(CountFromRowCounts));
    }
    let ctx = SessionContext::new_with_state(builder.build());
    let url = ListingTableUrl::parse(format!("file://{}/t/", dir.display())).unwrap();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet").with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
    let config = ListingTableConfig::new(url).with_listing_options(options).infer_schema(&ctx.state()).await.unwrap();
    ctx.register_table("t", Arc::new(ListingTable::try_new(config).unwrap())).unwrap();
    ctx
}

async fn answer(ctx: &SessionContext, sql: &str) -> (String, String) {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let plan = ctx.sql(&format!("EXPLAIN {sql}")).await.unwrap().collect().await.unwrap();
    (
        datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string(),
        datafusion::arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string(),
    )
}

#[tokio::test]
async fn counts_by_partition_come_from_footers_and_equal_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let answered = [
        "SELECT date, count(*) AS n FROM t GROUP BY date ORDER BY date",
        "SELECT count(*) AS n FROM t",
        "SELECT count(1) AS n, date FROM t WHERE date >= '2026-01-02' GROUP BY date ORDER BY date",
    ];
    // Not from footers: a row filter, a count of a nullable column, a group by a data column.
    let scanned = ["SELECT date, count(*) AS n FROM t WHERE v > 100 GROUP BY date ORDER BY date", "SELECT date, count(v) AS n FROM t GROUP BY date ORDER BY date", "SELECT v % 2 AS odd, count(*) AS n FROM t GROUP BY v % 2 ORDER BY odd"];
    for split in [false, true] {
        let (with, without) = (session(dir.path(), true, split).await, session(dir.path(), false, split).await);
        for sql in answered.iter().chain(&scanned) {
            let ((got, plan), (want, _)) = (answer(&with, sql).await, answer(&without, sql).await);
            assert_eq!(got, want, "{sql} (split {split})");
            let from_footers = !plan.contains("ParquetSource") && !plan.contains("file_type=parquet");
            assert_eq!(from_footers, answered.contains(sql), "{sql} (split {split}):\n{plan}");
        }
    }
    let (got, _) = answer(&session(dir.path(), true, true).await, answered[0]).await;
    assert!(got.contains("| 2026-01-01 | 1250 |") && got.contains("| 2026-01-02 | 4000 |") && !got.contains("2026-01-03"), "{got}");
    let (got, _) = answer(&session(dir.path(), true, false).await, answered[1]).await;
    assert!(got.contains("| 5250 |"), "{got}");
}

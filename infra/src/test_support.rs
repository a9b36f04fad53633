//! Helpers the crate's tests share: Parquet objects from columns, and a query's answer with
//! its plan.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;

/// A Parquet object holding one batch of `columns` under `schema`.
pub fn parquet_object(schema: SchemaRef, columns: Vec<ArrayRef>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    w.close().unwrap();
    buf
}

/// `sql`'s answer and its `EXPLAIN`, both as printed tables.
pub async fn answer_and_plan(ctx: &SessionContext, sql: &str) -> (String, String) {
    let text = |b: &[RecordBatch]| datafusion::arrow::util::pretty::pretty_format_batches(b).unwrap().to_string();
    let answer = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let plan = ctx.sql(&format!("EXPLAIN {sql}")).await.unwrap().collect().await.unwrap();
    (text(&answer), text(&plan))
}

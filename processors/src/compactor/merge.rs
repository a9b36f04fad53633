//! Reading small objects and writing one sorted object.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, UInt32Array, new_null_array};
use datafusion::arrow::compute::{SortColumn, cast, concat_batches, lexsort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use trackiq_infra::DataStore;

use crate::error::ProcessorError;

/// Columns a compacted object is sorted by, those of them its table has: a run's samples of
/// one metric end up together in time order, so a filter on a run or a metric reads a few
/// pages.
pub const SORT_COLUMNS: [&str; 3] = ["run_id", "metric", "ts"];

/// What [`sorted_object`] wrote.
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
}

/// Rows of a Parquet object of `bytes` bytes, from its footer alone: a ranged read of its
/// tail, longer only when the footer needs it.
pub async fn row_count(store: &DataStore, rel: &str, bytes: u64) -> Result<u64, ProcessorError> {
    let parquet_err = |source| ProcessorError::Parquet { object: rel.to_string(), source };
    let mut want = FOOTER_GUESS.min(bytes);
    loop {
        let tail = store.get_range(rel, bytes - want..bytes).await?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&tail, bytes) {
            Ok(()) => return Ok(reader.finish().map_err(parquet_err)?.file_metadata().num_rows().max(0) as u64),
            Err(ParquetError::NeedMoreData(needed)) if (needed as u64) > want && (needed as u64) <= bytes => want = needed as u64,
            Err(e) => return Err(parquet_err(e)),
        }
    }
}

/// Bytes read from an object's end for its footer at first: an archiver object's footer
/// is a few KiB.
const FOOTER_GUESS: u64 = 64 * 1024;

/// Reads `inputs` (objects of `table`), sorts their rows by [`SORT_COLUMNS`], and writes
/// them to `output` in row groups of `row_group_rows` with page statistics.
pub async fn sorted_object(store: &DataStore, table: &str, inputs: &[String], output: &str, row_group_rows: usize) -> Result<Written, ProcessorError> {
    let schema = trackiq_schemas::arrow::table_schema(table).ok_or_else(|| ProcessorError::Task(format!("unknown table {table}")))?;
    let mut fetched = Vec::with_capacity(inputs.len());
    for rel in inputs {
        fetched.push((rel.clone(), Bytes::from(store.get(rel).await?)));
    }
    let (table_name, object) = (table.to_string(), output.to_string());
    let (bytes, rows) = tokio::task::spawn_blocking(move || encode_sorted(&table_name, &object, schema, fetched, row_group_rows))
        .await
        .map_err(|e| ProcessorError::Task(e.to_string()))??;
    let size = bytes.len() as u64;
    store.put(output, bytes).await?;
    Ok(Written { rows, bytes: size })
}

fn encode_sorted(table: &str, output: &str, schema: SchemaRef, inputs: Vec<(String, Bytes)>, row_group_rows: usize) -> Result<(Vec<u8>, u64), ProcessorError> {
    let arrow_err = |source| ProcessorError::Arrow { table: table.to_string(), source };
    let mut batches = Vec::new();
    for (rel, bytes) in inputs {
        let parquet_err = |source| ProcessorError::Parquet { object: rel.clone(), source };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?.with_batch_size(64 * 1024).build().map_err(parquet_err)?;
        for batch in reader {
            let batch = batch.map_err(arrow_err)?;
            batches.push(conform(&batch, &schema).map_err(|e| ProcessorError::Arrow { table: format!("{table} ({rel})"), source: e })?);
        }
    }
    // One batch of every row (the small inputs are dropped as it is built), then the sorted
    // order, written a row group at a time.
    let all = concat_batches(&schema, &batches).map_err(arrow_err)?;
    drop(batches);
    let sort_idx: Vec<usize> = SORT_COLUMNS.iter().filter_map(|c| schema.index_of(c).ok()).collect();
    let order = if sort_idx.is_empty() || all.num_rows() == 0 {
        UInt32Array::from_iter_values(0..all.num_rows() as u32)
    } else {
        let keys: Vec<SortColumn> = sort_idx.iter().map(|&i| SortColumn { values: all.column(i).clone(), options: None }).collect();
        lexsort_to_indices(&keys, None).map_err(arrow_err)?
    };
    let sorting: Vec<SortingColumn> = sort_idx.iter().map(|&i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: true }).collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns((!sorting.is_empty()).then_some(sorting))
        .build();
    let parquet_err = |source| ProcessorError::Parquet { object: output.to_string(), source };
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).map_err(parquet_err)?;
    for chunk in order.values().chunks(row_group_rows.max(1)) {
        let part = take_record_batch(&all, &UInt32Array::from(chunk.to_vec())).map_err(arrow_err)?;
        writer.write(&part).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    Ok((buf, all.num_rows() as u64))
}

/// `batch` in the table's current schema: columns in its order, types cast, columns that
/// older objects lack filled with nulls where the table allows them.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match batch.schema().index_of(field.name()) {
            Ok(i) if batch.column(i).data_type() == field.data_type() => Ok(batch.column(i).clone()),
            Ok(i) => cast(batch.column(i), field.data_type()),
            Err(_) if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            Err(_) => Err(ArrowError::SchemaError(format!("column {} is missing and may not be null", field.name()))),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

//! Reading small objects and writing one sorted object.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
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

/// Memory the sort of one merge may hold before it spills sorted runs to a temporary file
/// (then merges them as streams): a compaction's memory stays flat however many rows it
/// merges (measured: 1.1 GB peak RSS for 61.6M samples when every row was held at once).
pub const SORT_MEMORY: usize = 128 * 1024 * 1024;

/// Reads `inputs` (objects of `table`), sorts their rows by [`SORT_COLUMNS`], and writes
/// them to `output` in row groups of `row_group_rows` with page statistics. DataFusion reads
/// the inputs as the table's current schema (older objects' missing nullable columns come
/// back as nulls, types cast), sorts within [`SORT_MEMORY`] spilling to disk, and streams
/// the sorted batches into the Parquet writer.
pub async fn sorted_object(store: &DataStore, table: &str, inputs: &[String], output: &str, row_group_rows: usize) -> Result<Written, ProcessorError> {
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};
    use futures::StreamExt;
    let schema = trackiq_schemas::arrow::table_schema(table).ok_or_else(|| ProcessorError::Task(format!("unknown table {table}")))?;
    let df_err = |e: datafusion::error::DataFusionError| ProcessorError::Task(format!("merging {} objects of {table} into {output}: {e}", inputs.len()));
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(SORT_MEMORY, 1.0).build_arc().map_err(df_err)?;
    // One stream: the inputs are read one after another, not all at once.
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(1), runtime);
    ctx.register_object_store(store.root_url(), store.object_store());
    let urls: Vec<String> = inputs.iter().map(|rel| format!("{}{}", store.root_url(), store.path(rel))).collect();
    let options = ParquetReadOptions::default().schema(&schema).file_extension(".parquet");
    let mut df = ctx.read_parquet(urls, options).await.map_err(df_err)?;
    let sort_idx: Vec<usize> = SORT_COLUMNS.iter().filter_map(|c| schema.index_of(c).ok()).collect();
    if !sort_idx.is_empty() {
        df = df.sort(SORT_COLUMNS.iter().filter(|c| schema.index_of(c).is_ok()).map(|c| col(*c).sort(true, true)).collect()).map_err(df_err)?;
    }
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
    let mut stream = df.execute_stream().await.map_err(df_err)?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
        rows += batch.num_rows() as u64;
        writer.write(&conform(&batch, &schema).map_err(|source| ProcessorError::Arrow { table: table.to_string(), source })?).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    let size = buf.len() as u64;
    store.put(output, buf).await?;
    Ok(Written { rows, bytes: size })
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

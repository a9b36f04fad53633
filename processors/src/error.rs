use thiserror::Error;

/// What failed in a processor.
#[derive(Debug, Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Infra(#[from] trackiq_infra::InfraError),
    #[error(transparent)]
    Schema(#[from] trackiq_schemas::SchemaError),
    #[error("could not build Arrow batch for table {table}: {source}")]
    Arrow { table: String, source: datafusion::arrow::error::ArrowError },
    #[error("could not write Parquet for {object}: {source}")]
    Parquet { object: String, source: parquet::errors::ParquetError },
    #[error("a blocking task failed: {0}")]
    Task(String),
    #[error("baseline query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

use thiserror::Error;

/// What failed while measuring or emitting.
#[derive(Debug, Error)]
pub enum ProducerError {
    #[error(transparent)]
    Infra(#[from] trackiq_infra::InfraError),
    #[error(transparent)]
    Schema(#[from] trackiq_schemas::SchemaError),
    #[error("invalid sample: {0}")]
    InvalidSample(String),
    #[error("invalid --metric `{arg}`: {reason} (expected name=value[unit], e.g. latency_ms=8.2 or throughput=125.7items/s)")]
    MetricArg { arg: String, reason: String },
    #[error("invalid --label `{arg}`: expected key=value")]
    LabelArg { arg: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{0}")]
    Usage(String),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("telemetry in: {0}")]
    Telemetry(String),
    #[error("the machine-speed probe failed: {0}")]
    Probe(String),
    #[error("profiling: {0}")]
    Profile(String),
}

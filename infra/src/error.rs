use thiserror::Error;

/// What failed in the local stack.
#[derive(Debug, Error)]
pub enum InfraError {
    #[error(transparent)]
    KafkaSecurity(#[from] crate::kafka_security::SecurityError),
    #[error("embedded broker failed to start on {addr}: {reason}")]
    BrokerStart { addr: String, reason: String },
    #[error("no Kafka broker answers at {brokers}: start `trackiq up` in another terminal, or pass --brokers host:port")]
    BrokerUnreachable { brokers: String },
    #[error("Kafka client error while {action}: {source}")]
    Kafka { action: String, source: rdkafka::error::KafkaError },
    #[error("could not encode a dead letter for {topic}: {reason}")]
    EncodeDeadLetter { topic: String, reason: String },
    #[error("could not create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("invalid data URL `{url}`: {reason}")]
    DataUrl { url: String, reason: String },
    #[error("object store error at {path}: {source}")]
    ObjectStore { path: String, source: object_store::Error },
    #[error("compaction record {object} is damaged ({reason}); trackiq writes a record whole in one put, so it was changed from outside: restore it from a backup, or move it away together with the objects named c-<its id>-*.parquet if the inputs it lists are still in the partition")]
    CompactionRecord { object: String, reason: String },
    #[error("DataFusion error: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// The read-only console got DDL, DML (`COPY`, `INSERT`), `CREATE EXTERNAL TABLE`, `SET`...
    #[error("only queries of the history can run here: {0}")]
    NotAQuery(String),
    #[error("the query ran longer than {0:?} and was stopped")]
    QueryTimedOut(std::time::Duration),
    #[error("a blocking task failed: {0}")]
    Task(String),
    #[error("I/O error at {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// Reading the embedded broker's log in this process failed.
    #[error("reading the embedded log for {group} while {action}: {reason}")]
    EmbeddedLog { group: String, action: String, reason: String },
}

impl InfraError {
    pub fn kafka(action: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> InfraError {
        let action = action.into();
        move |source| InfraError::Kafka { action, source }
    }
}

use thiserror::Error;

/// What failed in a sink.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error(transparent)]
    Infra(#[from] trackiq_infra::InfraError),
    #[error(transparent)]
    Schema(#[from] trackiq_schemas::SchemaError),
    #[error("report template failed: {0}")]
    Template(String),
    #[error("invalid webhook URL `{url}`: {reason}")]
    WebhookUrl { url: String, reason: String },
}

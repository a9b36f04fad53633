use thiserror::Error;

/// What failed in a sink.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error(transparent)]
    Infra(#[from] trackiq_infra::InfraError),
    #[error(transparent)]
    Schema(#[from] trackiq_schemas::SchemaError),
    #[error("template failed: {0}")]
    Template(String),
    #[error("notification channel `{channel}`: {what}: {reason}")]
    Secret {
        channel: String,
        what: String,
        reason: String,
    },
    #[error("{0}")]
    Compare(String),
    #[error("dashboard: {0}")]
    Dashboard(String),
    #[error("[ingest] {0}")]
    Ingest(String),
    #[error("notification settings: {0}")]
    NotifyConfig(String),
    #[error("invalid webhook URL `{url}`: {reason}")]
    WebhookUrl { url: String, reason: String },
}

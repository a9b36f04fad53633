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
    #[error("notification channel `{}`: {}: {}", .0.owner, .0.what, .0.reason)]
    Secret(#[from] trackiq_infra::secret::SecretError),
    #[error("{0}")]
    Compare(String),
    #[error("dashboard: {0}")]
    Dashboard(String),
    #[error("SQL endpoint: {0}")]
    SqlServer(String),
    #[error("[ingest] {0}")]
    Ingest(String),
    #[error("notification settings: {0}")]
    NotifyConfig(String),
    #[error("invalid webhook URL `{url}`: {reason}")]
    WebhookUrl { url: String, reason: String },
}

//! trackiq's sinks: where verdicts leave the pipeline.
//!
//! Each sink is a [`trackiq_infra::runtime::Stage`] reading the verdicts topic in its own
//! consumer group; the runtime stores offsets after the report is written or the webhook
//! answered, and retries an unreachable store or endpoint with backoff.
//!
//! # Layout
//! - [`dashboard`] — the web dashboard over the history (`trackiq ui`)
//! - [`report`] — HTML report per run (tera + plotters SVG charts)
//! - [`fleet`] — fleet report over a period of the history: Markdown or HTML with SVG history charts
//! - [`webhook`] — JSON POST, retried while the endpoint is down; refusals go to the dead-letter topic
//! - [`sql_server`] — the history over the PostgreSQL wire protocol (psql, Grafana, pandas)
//! - [`notify`] — alert changes → log, Slack, email, GitHub issues; outcomes → `notifications`

pub mod dashboard;
pub mod error;
pub mod fleet;
pub mod notify;
pub mod report;
pub mod sql_server;
pub mod webhook;

pub use error::SinkError;

//! The local stack every trackiq service stands on.
//!
//! Entry points: [`EmbeddedBroker::start`] runs a Kafka-API broker in-process; [`Bus`] makes
//! rdkafka clients and creates topics; [`DataStore::open`] opens the object store named by a
//! URL; [`tables::session`] gives a DataFusion session over the Parquet history.
//!
//! # Layout
//! - [`broker`] — embedded tansu broker (SQLite engine)
//! - [`bus`] — Kafka configuration, producers, consumers, topic creation; [`kafka_security`] — its TLS and SASL; [`kafka_context`] — every client's context; [`kafka_oauth`] — OAUTHBEARER tokens; [`kafka_tls`] — why a certificate was refused
//! - [`store`] — object store by URL (`file://`, `s3://`)
//! - [`tables`] — DataFusion table registration (and views); [`table_docs`] — what each table and column means
//! - [`compaction`] — compaction commit records; [`visible_store`] — the history readers see
//! - [`row_counts`] — `count(*)` by partition from Parquet row counts; [`row_count_cache`] — objects' row counts kept across processes; [`string_groups`] — grouping by a string column without a lookup per row; [`eager_aggregation`] — aggregating before a join
//! - [`sql_functions`] — SQL functions added to DataFusion (`approx_quantile`)
//! - [`shutdown`] — the shutdown signal services take
//! - [`metrics`] — the pipeline's own Prometheus metrics, `/metrics` and `/healthz`
//! - [`runtime`] — the stage runtime every processor and sink runs on
//! - [`replay`] — re-reading a topic's log to rebuild state at start-up
//! - [`secret`] — secrets read from the environment or a file, never shown

pub mod broker;
pub mod bus;
pub mod compaction;
pub mod error;
pub mod kafka_context;
pub mod kafka_oauth;
pub mod kafka_security;
pub mod kafka_tls;
pub mod metrics;
pub mod replay;
pub mod row_count_cache;
pub mod row_counts;
pub mod runtime;
pub mod secret;
pub mod shutdown;
pub mod sql_functions;
pub mod store;
pub mod eager_aggregation;
pub mod string_groups;
#[cfg(test)]
mod test_support;
mod string_group_states;
pub mod table_docs;
pub mod tables;
pub mod visible_store;

pub use broker::EmbeddedBroker;
pub use bus::{Bus, BusConfig, Record};
pub use error::InfraError;
pub use metrics::PipelineMetrics;
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use store::DataStore;

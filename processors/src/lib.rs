//! trackiq's streaming processors ; statistics come from the pure `trackiq-stats` crate.
//!
//! Each processor is a service `run(config, bus, [store,] shutdown)` reading Kafka in its own
//! consumer group and storing offsets only after its effect is durable.
//!
//! # Layout
//! - [`aggregator`] — runs + samples → `RunSummary` (percentiles, throughput, histogram)
//! - [`health`] — cluster-health detectors (straggler, failed/stalled worker, ...) and summary
//! - [`archiver`] — every topic → hive-partitioned Parquet in the object store
//! - [`verdict`] — `RunSummary` → `Verdict` against the series baseline

pub mod aggregator;
pub mod archiver;
pub mod error;
pub mod health;
pub mod verdict;

pub use error::ProcessorError;

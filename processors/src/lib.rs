//! trackiq's streaming processors ; statistics come from the pure `trackiq-stats` crate.
//!
//! Each processor is a [`trackiq_infra::runtime::Stage`]: its logic and state only. The stage
//! runtime consumes Kafka for it (one consumer group per stage), validates records, applies
//! its effects and stores offsets only after they are durable.
//!
//! # Layout
//! - [`aggregator`] — a run's events → `RunSummary` (percentiles, throughput, histogram; sketches for long runs)
//! - [`health`] — cluster-health detectors (straggler, failed/stalled worker, ...) and summary
//! - [`archiver`] — every topic → hive-partitioned Parquet in the object store
//! - [`compactor`] — small archiver objects → large sorted objects, committed atomically
//! - [`verdict`] — `RunSummary` → `Verdict` against the series baseline
//! - [`alerts`] — verdicts, detections, pins and on-call actions → alert changes (fire, repeat, worse, resolve)

pub mod aggregator;
pub mod alerts;
pub mod archiver;
pub mod compactor;
pub mod error;
pub mod health;
pub mod verdict;

pub use error::ProcessorError;

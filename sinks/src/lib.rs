//! trackiq's sinks: where verdicts leave the pipeline.
//!
//! Each sink is a service `run(config, bus, ..., shutdown)` reading the verdicts topic in its
//! own consumer group; offsets are stored after the report is written or the webhook answered.
//!
//! # Layout
//! - [`report`] — HTML report per run (tera + plotters SVG charts)
//! - [`webhook`] — JSON POST with retries and backoff; give-ups go to the dead-letter topic

pub mod error;
pub mod report;
pub mod webhook;

pub use error::SinkError;

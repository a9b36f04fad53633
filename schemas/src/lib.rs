//! The trackiq event contract.
//!
//! Producers, processors and sinks agree on nothing but this crate: the Avro schemas of the
//! events (`avro/*.avsc`), their Rust types, the single-object codec that frames every Kafka
//! record, the Arrow schemas of the Parquet tables, topic names and identity hashes.
//!
//! Entry point: [`registry()`] encodes and decodes events:
//! `registry().encode(&run_started)?` / `registry().decode::<RunStarted>(&bytes)?`.
//!
//! # Layout
//! - `avro/` — the `.avsc` files (current) and `avro/history/` (older versions still decoded)
//! - [`events`] — Rust types mirroring the schemas
//! - [`codec`] — Avro single-object encoding with a fingerprint registry
//! - [`columns`] — the columnar wire form of samples (`SampleColumns`) and its conversion
//! - [`arrow`] — Arrow schemas of the Parquet tables
//! - [`topics`] — topic names and which table each is archived to
//! - [`identity`] — `series_id` and `env_hash`
//! - [`catalog`] — every metric declared once: unit, direction, kind, dimensions
//! - [`metrics`] — metric directions and value validation
//! - [`validate`] — semantic checks of decoded events (finite values, names, ranks, times)

pub mod alerting;
pub mod arrow;
pub mod catalog;
pub mod codec;
pub mod columns;
pub mod error;
pub mod events;
pub mod identity;
pub mod metrics;
pub mod topics;
pub mod validate;

pub use alerting::{INVESTIGATION_LABEL, Alert, AlertAction, AlertActionKind, AlertKind, AlertState, CandidateKind, ChannelKind, Notification, NotificationStatus, NotifyReason, ReleaseDecision, ReleaseVerdict};
pub use codec::{AnyEvent, Event, Registry, registry};
pub use error::SchemaError;
pub use events::*;
pub use topics::Topics;

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

//! The stage runtime: the one place that consumes Kafka, decodes and validates records,
//! hands typed events to a [`Stage`], applies the stage's [`Effects`], stores offsets only
//! after effects are durable, retries transient failures with exponential backoff and
//! jitter, dead-letters permanent ones (and panics) with the reason and the original bytes,
//! and restarts a failed stage without stopping the others.
//!
//! A stage is only its logic: [`Stage::handle`] one event, [`Stage::tick`] for periodic work
//! (flushes, timeouts), [`Stage::flush`] at shutdown. No rdkafka type appears in a stage, so
//! stages are tested by calling these methods directly.
//!
//! Entry point: [`supervise`] runs a stage (built by a factory, rebuilt after a failure)
//! until shutdown.
//!
//! # Layout
//! - [`acks`] — per-partition watermarks: which offsets may be stored
//! - [`context`] — consumer statistics into the lag metrics
//! - [`driver`] — one stage incarnation's consume → handle → effect → ack loop
//! - [`source`] — where records come from: a Kafka consumer, or [`log_source`], the
//!   embedded broker's log read in-process
//! - [`publisher`] — where effects go: a Kafka producer, or the embedded log in-process
//! - [`rebalance`] — partition assignment changes handed to the stage between calls
//! - [`supervisor`] — restart with backoff; stage health

pub mod acks;
pub mod context;
pub mod driver;
pub mod log_source;
pub mod publisher;
pub mod rebalance;
pub mod source;
pub mod supervisor;

use std::future::Future;
use std::time::{Duration, Instant};

use trackiq_schemas::{AnyEvent, Event, Topics, registry};

pub use supervisor::{StageContext, supervise};

/// Where a record was read: topic, partition, offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A decoded, validated record handed to a stage.
#[derive(Debug, Clone)]
pub struct Input {
    pub position: Position,
    /// Broker timestamp of the record, ms since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    pub event: AnyEvent,
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What the runtime must do after a stage call.
#[derive(Debug, Default)]
pub struct Effects {
    /// Records to publish; all are acknowledged by the broker before anything in
    /// `release` (or the input itself) counts as done.
    pub publish: Vec<Outgoing>,
    /// The input's effect is not durable yet: the stage will name it in `release` later
    /// (a buffered Parquet row, a sample of a run still open).
    pub hold_input: bool,
    /// Earlier held records whose effects are now durable.
    pub release: Vec<Position>,
}

impl Effects {
    /// Nothing to do: the input is done.
    pub fn done() -> Self {
        Effects::default()
    }

    /// The input is held until a later `release`.
    pub fn held() -> Self {
        Effects { hold_input: true, ..Default::default() }
    }

    /// Adds an event to publish on `topic` under `key`.
    pub fn publish<E: Event>(&mut self, topic: &str, key: &[u8], event: &E) -> Result<(), StageError> {
        let payload = registry().encode(event).map_err(|e| StageError::Permanent(format!("encoding {}: {e}", E::NAME)))?;
        self.publish.push(Outgoing { topic: topic.to_string(), key: key.to_vec(), payload });
        Ok(())
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Effects) {
        self.publish.extend(other.publish);
        self.release.extend(other.release);
        self.hold_input |= other.hold_input;
    }
}

/// Exponential backoff with full jitter between two bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// From 100 ms, doubling, up to 30 s.
    fn default() -> Self {
        RetryPolicy { min_delay: Duration::from_millis(100), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The delays, without end; jitter keeps many retrying clients out of step.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay.max(self.min_delay))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// How a stage call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    /// Worth retrying the same call later (a store or endpoint unreachable).
    #[error("transient: {0}")]
    Transient(String),
    /// This record can never be processed: dead-letter it with this reason.
    #[error("{0}")]
    Permanent(String),
    /// The stage cannot go on (lost state, broken configuration): the supervisor restarts it.
    #[error("stage failed: {0}")]
    Fatal(String),
}

/// A processor or sink: logic and state, no Kafka.
///
/// Every call may be repeated after a crash (delivery is at-least-once), so effects must be
/// idempotent or deduplicated by the stage.
pub trait Stage: Send + 'static {
    /// Name in logs, metrics and dead letters, e.g. `aggregator`.
    fn name(&self) -> &'static str;

    /// Topics the stage consumes.
    fn topics(&self, topics: &Topics) -> Vec<String>;

    /// Handles one valid event.
    fn handle(&mut self, input: Input, now: Instant) -> impl Future<Output = Result<Effects, StageError>> + Send;

    /// Periodic work: flushes by age, timeouts. A transient error is retried at the next tick.
    fn tick(&mut self, _now: Instant) -> impl Future<Output = Result<Effects, StageError>> + Send {
        async { Ok(Effects::done()) }
    }

    /// At shutdown: make everything held durable, if possible.
    fn flush(&mut self) -> impl Future<Output = Result<Effects, StageError>> + Send {
        async { Ok(Effects::done()) }
    }

    /// How often [`Stage::tick`] runs while the stage is idle or busy.
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Delays between retries of a record that failed transiently.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// The consumer group moved partitions (another instance joined or left). Called before
    /// the next `handle` or `tick`, revocations to be applied first: the stage drops state
    /// of `revoked` partitions without effects (their unfinished records are replayed by the
    /// new owner from the committed offset, which never passes an unfinished record), and
    /// reloads what it must know about `assigned` ones (work another instance did). The
    /// runtime has already forgotten the ack state of revoked partitions. An error restarts
    /// the stage (transient ones are retried first).
    fn partitions_changed(&mut self, _assigned: &[(String, i32)], _revoked: &[(String, i32)]) -> impl Future<Output = Result<(), StageError>> + Send {
        async { Ok(()) }
    }

    /// Whether the stage wants no more input for now (its buffers are full while a store is
    /// down): the runtime then only ticks until it does.
    fn backpressure(&self) -> bool {
        false
    }
}

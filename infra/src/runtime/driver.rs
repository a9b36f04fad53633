//! One incarnation of a stage: consume → decode and validate → handle (panics caught) →
//! publish effects → acknowledge → store offsets; ticks in between; a final flush and commit
//! at shutdown. A failure the driver cannot absorb ends the incarnation with
//! [`StageError::Fatal`]; the supervisor builds a new one.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tracing::{debug, info, warn};
use trackiq_schemas::registry;

use super::acks::Acks;
use super::publisher::Publisher;
use super::rebalance::{RebalanceLog, hand_over};
use super::source::{ReceiveError, Source};
use super::{Effects, Input, Outgoing, Position, RetryPolicy, Stage, StageContext, StageError};
use crate::bus::Record;
use crate::Shutdown;

/// Pause after a consumer error (broker unreachable) before the next receive.
const CONSUME_ERROR_PAUSE: Duration = Duration::from_millis(500);
/// Longest wait for the broker to acknowledge what the final flush publishes.
const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Retry delays for the runtime's own work (publishing, dead letters, ticks, restarts).
pub fn retry_delays() -> impl Iterator<Item = Duration> {
    RetryPolicy::default().delays()
}

/// Whether the broker refused a record for a reason that retrying cannot change.
fn refused_for_good(e: &crate::InfraError) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
    matches!(
        e,
        crate::InfraError::Kafka { source: KafkaError::MessageProduction(
            C::MessageSizeTooLarge | C::InvalidMessageSize | C::InvalidMessage | C::InvalidRecord | C::TopicAuthorizationFailed
        ), .. }
    )
}

/// The text of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

/// What one stage call came to, with panics turned into values.
enum Outcome {
    Effects(Effects),
    Failed(StageError),
    Panicked(String),
}

async fn call<F: std::future::Future<Output = Result<Effects, StageError>>>(f: F) -> Outcome {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(Ok(e)) => Outcome::Effects(e),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(p) => Outcome::Panicked(panic_message(p.as_ref())),
    }
}

struct Driver<'a> {
    ctx: &'a StageContext,
    stage: &'static str,
    source: Source,
    publisher: Publisher,
    acks: Acks,
    dlq: String,
    rebalances: RebalanceLog,
}

/// Runs `stage` until shutdown (Ok) or a failure it cannot absorb (Err, to be restarted).
pub async fn drive<S: Stage>(stage: &mut S, ctx: &StageContext, shutdown: &mut Shutdown) -> Result<(), StageError> {
    let name = stage.name();
    let topics = stage.topics(ctx.bus.topics());
    let fatal = |e: crate::InfraError| StageError::Fatal(e.to_string());
    let rebalances = RebalanceLog::default();
    let source = Source::open(ctx, name, &topics, &rebalances).await.map_err(fatal)?;
    if source.assigned() {
        ctx.bus.note_assigned(&ctx.group);
    }
    let publisher = Publisher::open(&ctx.bus).map_err(fatal)?;
    let mut d = Driver { ctx, stage: name, source, publisher, acks: Acks::default(), dlq: ctx.bus.topics().dlq.clone(), rebalances };
    let mut ticker = tokio::time::interval(stage.tick_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick_failures = retry_delays();
    let mut tick_paused_until: Option<tokio::time::Instant> = None;
    info!(stage = name, group = %ctx.group, ?topics, "stage started");
    loop {
        let accepting = !stage.backpressure();
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            _ = ticker.tick() => {
                if d.source.assigned() {
                    d.ctx.bus.note_assigned(&d.ctx.group);
                }
                d.rebalanced(stage).await?;
                if tick_paused_until.is_some_and(|t| tokio::time::Instant::now() < t) {
                    continue;
                }
                match call(stage.tick(Instant::now())).await {
                    Outcome::Effects(e) => {
                        tick_failures = retry_delays();
                        tick_paused_until = None;
                        d.apply(e, None, shutdown).await?;
                    }
                    Outcome::Failed(StageError::Transient(reason)) => {
                        let wait = tick_failures.next().unwrap_or(Duration::from_secs(30));
                        warn!(stage = name, %reason, retry_in = ?wait, "periodic work failed; retrying");
                        d.ctx.metrics.error(name, "transient");
                        d.ctx.metrics.retry(name);
                        tick_paused_until = Some(tokio::time::Instant::now() + wait);
                    }
                    Outcome::Failed(StageError::Permanent(reason)) => {
                        warn!(stage = name, %reason, "periodic work failed");
                        d.ctx.metrics.error(name, "permanent");
                    }
                    Outcome::Failed(e @ StageError::Fatal(_)) => return Err(e),
                    Outcome::Panicked(msg) => {
                        d.ctx.metrics.error(name, "panic");
                        return Err(StageError::Fatal(format!("panic in periodic work: {msg}")));
                    }
                }
            }
            received = d.source.recv(), if accepting => match received {
                Ok(record) => {
                    // A rebalance is reported inside recv(): apply it before this record.
                    d.rebalanced(stage).await?;
                    if d.rebalances.owns(&record.topic, record.partition) {
                        d.record(stage, record, shutdown).await?;
                    } else {
                        debug!(stage = name, topic = %record.topic, partition = record.partition, offset = record.offset, "record of a revoked partition skipped");
                    }
                }
                // A fatal error (e.g. fenced by another member with the same static instance id)
                // never clears: a fresh incarnation, with backoff, is the way on.
                Err(ReceiveError::Fatal(reason)) => return Err(StageError::Fatal(reason)),
                Err(ReceiveError::Transient(e)) => {
                    warn!(stage = name, error = %e, "consume error");
                    d.rebalanced(stage).await?;
                    tokio::time::sleep(CONSUME_ERROR_PAUSE).await;
                }
            },
        }
        d.store_offsets();
    }
    // Shutdown: make held effects durable, store and commit what is done (never for a
    // partition revoked during the last receive).
    d.rebalanced(stage).await?;
    match call(stage.flush()).await {
        Outcome::Effects(e) => {
            // The broker may be gone too: publishing gets a bounded time, then it is replayed.
            let (limit, mut final_shutdown) = Shutdown::new();
            let timer = tokio::spawn(async move {
                tokio::time::sleep(FINAL_FLUSH_LIMIT).await;
                limit.trigger();
            });
            d.apply(e, None, &mut final_shutdown).await?;
            timer.abort();
        }
        Outcome::Failed(e) => warn!(stage = name, error = %e, "final flush failed; unflushed records will be read again"),
        Outcome::Panicked(msg) => warn!(stage = name, %msg, "final flush panicked; unflushed records will be read again"),
    }
    d.store_offsets();
    d.source.commit(name).await;
    info!(stage = name, "stage stopped");
    Ok(())
}

impl Driver<'_> {
    /// Applies partition moves reported since the last call (see [`super::rebalance`]).
    async fn rebalanced<S: Stage>(&mut self, stage: &mut S) -> Result<(), StageError> {
        let change = self.rebalances.take();
        hand_over(stage, &mut self.acks, &change, stage.retry_policy()).await
    }

    /// One record: validate, hand to the stage (retrying transient failures), apply effects.
    async fn record<S: Stage>(&mut self, stage: &mut S, record: Record, shutdown: &mut Shutdown) -> Result<(), StageError> {
        let name = self.stage;
        self.ctx.metrics.records_in(name, 1);
        self.acks.read(&record.topic, record.partition, record.offset);
        let position = Position { topic: record.topic.clone(), partition: record.partition, offset: record.offset };
        // A decoder bug must cost one record, not the stage: decoding is inside the panic catch.
        let decoded = std::panic::catch_unwind(|| registry().decode_valid(&record.payload))
            .unwrap_or_else(|p| Err(trackiq_schemas::SchemaError::Invalid { field: "record".into(), reason: format!("the decoder panicked: {}", panic_message(p.as_ref())) }));
        let event = match decoded {
            Ok(e) => e,
            Err(e) if record.topic == self.dlq => {
                // Dead-lettering a broken dead letter again would loop: log it and move on.
                warn!(stage = name, offset = record.offset, error = %e, "undecodable record on the dead-letter topic");
                self.acks.ack(&record.topic, record.partition, record.offset);
                return Ok(());
            }
            Err(e) => return self.dead_letter(&record, &e.to_string(), "permanent", shutdown).await,
        };
        let input = Input { position: position.clone(), timestamp_ms: record.timestamp_ms, event };
        let mut delays = stage.retry_policy().delays();
        loop {
            match call(stage.handle(input.clone(), Instant::now())).await {
                Outcome::Effects(e) => return self.apply(e, Some(&position), shutdown).await,
                Outcome::Failed(StageError::Transient(reason)) => {
                    let wait = delays.next().unwrap_or(Duration::from_secs(30));
                    warn!(stage = name, topic = %record.topic, partition = record.partition, offset = record.offset, %reason, retry_in = ?wait, "transient failure; retrying");
                    self.ctx.metrics.error(name, "transient");
                    self.ctx.metrics.retry(name);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        // Unfinished: the record stays outstanding and is read again after a restart.
                        _ = shutdown.wait() => return Ok(()),
                    }
                }
                Outcome::Failed(StageError::Permanent(reason)) => return self.dead_letter(&record, &reason, "permanent", shutdown).await,
                Outcome::Failed(e @ StageError::Fatal(_)) => return Err(e),
                Outcome::Panicked(msg) => {
                    let reason = format!("{name} panicked on this record: {msg}");
                    return self.dead_letter(&record, &reason, "panic", shutdown).await;
                }
            }
        }
    }

    /// Publishes a dead letter (retrying until the broker takes it), then acknowledges the record.
    async fn dead_letter(&mut self, record: &Record, reason: &str, kind: &str, shutdown: &mut Shutdown) -> Result<(), StageError> {
        self.ctx.metrics.error(self.stage, kind);
        let mut delays = retry_delays();
        loop {
            match self.ctx.bus.dead_letter(&self.publisher, record, self.stage, reason).await {
                Ok(()) => break,
                Err(e) => {
                    let wait = delays.next().unwrap_or(Duration::from_secs(30));
                    warn!(stage = self.stage, error = %e, retry_in = ?wait, "could not publish a dead letter; retrying");
                    self.ctx.metrics.retry(self.stage);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait() => return Ok(()),
                    }
                }
            }
        }
        self.ctx.metrics.dead_letter(self.stage);
        self.acks.ack(&record.topic, record.partition, record.offset);
        Ok(())
    }

    /// Publishes (retrying until acknowledged), then acknowledges what became durable.
    async fn apply(&mut self, effects: Effects, input: Option<&Position>, shutdown: &mut Shutdown) -> Result<(), StageError> {
        let published = effects.publish.len();
        if published > 0 && !self.publish_all(effects.publish, shutdown).await {
            // Shut down before the broker took them: nothing is acknowledged, all is replayed.
            return Ok(());
        }
        for p in &effects.release {
            self.acks.ack(&p.topic, p.partition, p.offset);
        }
        if let Some(p) = input.filter(|_| !effects.hold_input) {
            self.acks.ack(&p.topic, p.partition, p.offset);
        }
        if published > 0 {
            self.ctx.metrics.records_out(self.stage, published as u64);
        }
        if published > 0 || !effects.release.is_empty() || input.is_some_and(|_| !effects.hold_input) {
            self.ctx.metrics.effect_done(self.stage);
        }
        Ok(())
    }

    /// Sends every record, retrying those the broker did not acknowledge; false when
    /// shutdown came first.
    async fn publish_all(&mut self, mut pending: Vec<Outgoing>, shutdown: &mut Shutdown) -> bool {
        let mut delays = retry_delays();
        loop {
            let results = self.publisher.send_all(&pending).await;
            let mut failed = Vec::new();
            let mut last_error = None;
            for (o, r) in pending.into_iter().zip(results) {
                match r {
                    Ok(_) => {}
                    // The broker will never take this record (too large, refused): record why in
                    // the dead-letter topic, without the payload that caused it, and go on.
                    Err(e) if refused_for_good(&e) => {
                        let reason = format!("{} could not publish a {}-byte record to {}: {e}", self.stage, o.payload.len(), o.topic);
                        let letter = Record { topic: o.topic.clone(), partition: -1, offset: -1, timestamp_ms: None, key: Some(o.key.clone()), payload: Vec::new() };
                        self.dead_letter(&letter, &reason, "permanent", shutdown).await.ok();
                    }
                    Err(e) => {
                        last_error = Some(e.to_string());
                        failed.push(o);
                    }
                }
            }
            if failed.is_empty() {
                return true;
            }
            let wait = delays.next().unwrap_or(Duration::from_secs(30));
            warn!(stage = self.stage, failed = failed.len(), error = ?last_error, retry_in = ?wait, "publishing failed; retrying");
            self.ctx.metrics.retry(self.stage);
            pending = failed;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return false,
            }
        }
    }

    fn store_offsets(&mut self) {
        for (topic, partition, offset) in self.acks.storable() {
            match self.source.store_offset(&topic, partition, offset) {
                Ok(()) => self.acks.stored(&topic, partition, offset),
                // A partition taken away by a rebalance cannot be stored: its new owner replays it.
                Err(e) => debug!(stage = self.stage, %topic, partition, offset, error = %e, "offset not stored"),
            }
        }
    }
}

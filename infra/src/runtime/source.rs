//! Where a stage's records come from: the driver's one view of its input.
//!
//! - [`Source::Kafka`]: a member of the stage's consumer group through rdkafka — every stage
//!   on a Kafka cluster, and every process beside the embedded broker's own;
//! - [`Source::Log`]: the embedded broker's log read in this process ([`LogSource`]), for
//!   the stages of the process that runs the broker: no consumer group to join (ready at
//!   once after a restart), no fetch round trips, and nothing to poll while idle.
//!
//! Both store an offset only when the driver says its record's effect is durable, and
//! report partition assignments through the [`RebalanceLog`].

use rdkafka::consumer::{Consumer, StreamConsumer};
use tracing::warn;

use super::context::{STATISTICS_INTERVAL_MS, StageConsumerContext};
use super::log_source::LogSource;
use super::rebalance::RebalanceLog;
use super::StageContext;
use crate::bus::Record;
use crate::error::InfraError;

/// A failed receive.
#[derive(Debug)]
pub enum ReceiveError {
    /// Worth trying again after a pause (the broker is away).
    Transient(String),
    /// Never clears: a new incarnation of the stage is the way on.
    Fatal(String),
}

pub enum Source {
    Kafka(StreamConsumer<StageConsumerContext>),
    Log(LogSource),
}

impl Source {
    /// The source of `stage`'s `topics` for its context: in-process when the context's bus
    /// holds the embedded log, else a consumer of the stage's group.
    pub async fn open(ctx: &StageContext, stage: &'static str, topics: &[String], rebalances: &RebalanceLog) -> Result<Source, InfraError> {
        if let Some(log) = ctx.bus.embedded_log() {
            return Ok(Source::Log(LogSource::open(log.clone(), &ctx.group, stage, topics, ctx.metrics.clone(), rebalances.clone()).await?));
        }
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let context = StageConsumerContext { stage, metrics: ctx.metrics.clone(), rebalances: rebalances.clone(), oauth: ctx.bus.oauth() };
        Ok(Source::Kafka(ctx.bus.consumer_with(&ctx.group, &refs, context, STATISTICS_INTERVAL_MS)?))
    }

    /// The next record.
    pub async fn recv(&mut self) -> Result<Record, ReceiveError> {
        match self {
            Source::Kafka(consumer) => match consumer.recv().await {
                Ok(m) => Ok(Record::from_message(&m)),
                // A fatal client error (e.g. fenced by another member with the same static
                // instance id) never clears.
                Err(e) => match consumer.client().fatal_error() {
                    Some((code, reason)) => Err(ReceiveError::Fatal(format!("Kafka consumer failed for good ({code:?}): {reason}"))),
                    None => Err(ReceiveError::Transient(e.to_string())),
                },
            },
            Source::Log(log) => log.recv().await,
        }
    }

    /// Stores `offset` as done (committed in the background).
    pub fn store_offset(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), String> {
        match self {
            Source::Kafka(consumer) => consumer.store_offset(topic, partition, offset).map_err(|e| e.to_string()),
            Source::Log(log) => log.store_offset(topic, partition, offset),
        }
    }

    /// Commits what was stored, at shutdown.
    pub async fn commit(&mut self, stage: &str) {
        match self {
            Source::Kafka(consumer) => match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
                Ok(()) | Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::error::RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => warn!(stage, error = %e, "final offset commit failed; records after the last auto-commit will be read again"),
            },
            Source::Log(log) => {
                if let Err(e) = log.commit().await {
                    warn!(stage, error = %e, "final offset commit failed; records after the last commit will be read again");
                }
            }
        }
    }

    /// Whether the source has its partitions (a consumer after its group's assignment).
    pub fn assigned(&self) -> bool {
        match self {
            Source::Kafka(consumer) => consumer.assignment().is_ok_and(|a| a.count() > 0),
            Source::Log(_) => true,
        }
    }
}

//! Re-reading a topic's log directly (no consumer group, no offsets stored): how stages
//! rebuild state at start-up from the part of their history not yet in Parquet; and
//! following topics from their end for a live view ([`follow`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka_context::BusContext;
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;
use trackiq_schemas::{AnyEvent, registry};

use crate::{Bus, InfraError};

/// How long re-reading a topic may take at most.
pub const REPLAY_LIMIT: Duration = Duration::from_secs(120);

/// A consumer for re-reading logs: assigned by hand, never commits.
pub fn replay_consumer(bus: &Bus, group: &str) -> Result<BaseConsumer<BusContext>, InfraError> {
    let mut cc = bus.client_config()?;
    cc.set("group.id", group).set("enable.auto.commit", "false");
    let c: BaseConsumer<BusContext> = cc.create_with_context(bus.context()).map_err(InfraError::kafka("creating a replay consumer"))?;
    crate::kafka_oauth::set_initial_token(c.client(), bus.oauth().as_deref())?;
    Ok(c)
}

/// Reads each partition of `topic` from `from[p]` (the start of the log when absent) to its
/// end as it is now, handing every valid event to `apply` in offset order per partition.
/// Blocking: call from `spawn_blocking`. Returns how many events were applied.
pub fn read_log(
    c: &BaseConsumer<BusContext>,
    topic: &str,
    from: &BTreeMap<i32, i64>,
    mut apply: impl FnMut(AnyEvent),
) -> Result<usize, InfraError> {
    let timeout = Duration::from_secs(10);
    let md = c
        .fetch_metadata(Some(topic), timeout)
        .map_err(InfraError::kafka(format!("reading {topic} metadata")))?;
    let mut assign = TopicPartitionList::new();
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = c
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(InfraError::kafka(format!("reading {topic} watermarks")))?;
        let start = from.get(&p.id()).copied().unwrap_or(0).max(low);
        if start < high {
            assign
                .add_partition_offset(topic, p.id(), Offset::Offset(start))
                .map_err(InfraError::kafka("assigning"))?;
            open.insert(p.id(), high);
        }
    }
    if open.is_empty() {
        return Ok(0);
    }
    c.assign(&assign)
        .map_err(InfraError::kafka("assigning partitions to re-read"))?;
    let (mut read, deadline) = (0, Instant::now() + REPLAY_LIMIT);
    while !open.is_empty() && Instant::now() < deadline {
        let Some(msg) = c.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.map_err(InfraError::kafka("re-reading the log"))?;
        let Some(&to) = open.get(&msg.partition()) else {
            continue;
        };
        if msg.offset() < to
            && let Ok(e) = registry().decode_valid(msg.payload().unwrap_or_default())
        {
            apply(e);
            read += 1;
        }
        if msg.offset() + 1 >= to {
            open.remove(&msg.partition());
        }
    }
    if !open.is_empty() {
        warn!(
            topic,
            ?open,
            "re-reading did not reach the end of every partition in time"
        );
    }
    Ok(read)
}

/// Follows `topics` from their end (no consumer group offsets, nothing committed) and hands
/// every valid event to `apply` until `shutdown`: a live view for a dashboard, which wants
/// what happens from now on, not the history (that is in Parquet).
pub async fn follow(bus: &Bus, topics: &[String], mut shutdown: crate::Shutdown, mut apply: impl FnMut(AnyEvent)) -> Result<(), InfraError> {
    let mut cc = bus.client_config()?;
    cc.set("group.id", format!("trackiq-follow-{}", bus.config().instance())).set("enable.auto.commit", "false");
    let c = bus.create_consumer(&cc, bus.context(), "a follower")?;
    let mut assign = TopicPartitionList::new();
    for topic in topics {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(InfraError::kafka(format!("reading {topic} metadata")))?;
        for p in md.topics().iter().flat_map(|t| t.partitions()) {
            assign.add_partition_offset(topic, p.id(), Offset::End).map_err(InfraError::kafka("assigning"))?;
        }
    }
    c.assign(&assign).map_err(InfraError::kafka("assigning partitions to follow"))?;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            msg = c.recv() => match msg {
                Ok(m) => {
                    if let Ok(e) = registry().decode_valid(m.payload().unwrap_or_default()) {
                        apply(e);
                    }
                }
                // The broker restarting or a partition moving: librdkafka reconnects.
                Err(e) => {
                    warn!(error = %e, "following the pipeline's topics");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
    }
}

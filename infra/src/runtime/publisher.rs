//! Where a stage's effects are published: a Kafka producer (rdkafka), or — for the stages of
//! the process that runs the embedded broker — the broker's log, appended to in-process.
//!
//! In-process, the records of one call that go to the same partition are appended as one
//! batch, in their order, and the broker learns of them as of any append (its watermarks,
//! its tail of recent batches, its append signal; see `broker::appends`), so readers in
//! this process and Kafka consumers elsewhere see them at once. Partitions are chosen as
//! librdkafka's default partitioner chooses them (CRC-32 of the key modulo the partition
//! count; a record without a key goes to partition 0 here), so a key's records stay in one
//! partition whoever writes them.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use crate::bus::Producer;
use tansu_sans_io::record::{Record as LogRecord, deflated, inflated};
use tansu_storage::{Storage, TopicId, Topition};

use super::Outgoing;
use crate::broker::EmbeddedLog;
use crate::bus::send;
use crate::error::InfraError;

pub enum Publisher {
    Kafka(Producer),
    Log(LogPublisher),
}

impl Publisher {
    /// Publishes through the embedded log when `bus` holds it, else a Kafka producer.
    pub fn open(bus: &crate::Bus) -> Result<Publisher, InfraError> {
        Ok(match bus.embedded_log() {
            Some(log) => Publisher::Log(LogPublisher { log: log.clone(), partitions: Mutex::default() }),
            None => Publisher::Kafka(bus.stage_producer()?),
        })
    }

    /// Sends `records`; one result per record, in their order, once each is acknowledged.
    pub async fn send_all(&self, records: &[Outgoing]) -> Vec<Result<(), InfraError>> {
        match self {
            Publisher::Kafka(p) => futures::future::join_all(records.iter().map(|o| send(p, &o.topic, &o.key, &o.payload))).await.into_iter().map(|r| r.map(|_| ())).collect(),
            Publisher::Log(l) => l.send_all(records).await,
        }
    }
}

/// The partition librdkafka's default partitioner (`consistent_random`) gives `key`.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    if key.is_empty() || partitions <= 0 {
        return 0;
    }
    (crc32fast::hash(key) % partitions as u32) as i32
}

pub struct LogPublisher {
    log: EmbeddedLog,
    /// Partition count by topic (topics never shrink).
    partitions: Mutex<HashMap<String, i32>>,
}

fn failed(topic: &str, reason: impl std::fmt::Display) -> InfraError {
    InfraError::EmbeddedLog { group: "(publisher)".into(), action: format!("appending to {topic}"), reason: reason.to_string() }
}

impl LogPublisher {
    async fn partition_count(&self, topic: &str) -> Result<i32, InfraError> {
        if let Some(&n) = self.partitions.lock().expect("partition counts").get(topic) {
            return Ok(n);
        }
        let (storage, name) = (self.log.storage.clone(), topic.to_string());
        // A task of its own: tansu's storage stops for good when a requester goes away.
        let metadata = tokio::spawn(async move { storage.metadata(Some(&[TopicId::Name(name)])).await }).await.map_err(|e| failed(topic, e))?.map_err(|e| failed(topic, e))?;
        let n = metadata.topics().first().and_then(|t| t.partitions.as_ref()).map_or(0, |p| p.len() as i32);
        if n == 0 {
            return Err(failed(topic, "the topic does not exist"));
        }
        self.partitions.lock().expect("partition counts").insert(topic.to_string(), n);
        Ok(n)
    }

    async fn send_all(&self, records: &[Outgoing]) -> Vec<Result<(), InfraError>> {
        // Records of one partition, in their order, as one batch.
        let mut groups: Vec<(Topition, Vec<usize>)> = Vec::new();
        let mut results: Vec<Option<Result<(), InfraError>>> = records.iter().map(|_| None).collect();
        for (i, o) in records.iter().enumerate() {
            match self.partition_count(&o.topic).await {
                Ok(n) => {
                    let tp = Topition::new(o.topic.as_str(), partition_of(&o.key, n));
                    match groups.iter_mut().find(|(t, _)| *t == tp) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((tp, vec![i])),
                    }
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (tp, members) in groups {
            let outcome = self.append(&tp, members.iter().map(|&i| &records[i])).await;
            for &i in &members {
                results[i] = Some(outcome.as_ref().map(|_| ()).map_err(|e| failed(tp.topic(), e)));
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(failed("?", "not sent")))).collect()
    }

    /// Appends `records` to `tp` as one batch; returns its base offset.
    async fn append<'a>(&self, tp: &Topition, records: impl Iterator<Item = &'a Outgoing>) -> Result<i64, String> {
        let now_ms = trackiq_schemas::now_us() / 1000;
        let mut builder = inflated::Batch::builder().magic(2).base_timestamp(now_ms).max_timestamp(now_ms).producer_id(-1).producer_epoch(-1).base_sequence(-1);
        let mut n = 0i32;
        for o in records {
            builder = builder.record(LogRecord::builder().offset_delta(n).timestamp_delta(0).key(Some(Bytes::from(o.key.clone()))).value(Some(Bytes::from(o.payload.clone()))));
            n += 1;
        }
        let batch = deflated::Batch::try_from(builder.last_offset_delta(n - 1).build().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let (storage, at, kept) = (self.log.storage.clone(), tp.clone(), batch.clone());
        let base = tokio::spawn(async move { storage.produce(None, &at, batch).await }).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        self.log.appends.published(tp, base, kept);
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_where_librdkafkas_default_partitioner_puts_them() {
        // rd_crc32 is the zlib CRC-32: crc32("123456789") = 0xCBF43926 (the standard check value).
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(partition_of(b"123456789", 6), (0xCBF4_3926u32 % 6) as i32);
        assert_eq!(partition_of(b"", 6), 0);
        let spread: std::collections::BTreeSet<i32> = (0..100).map(|i| partition_of(format!("series-{i}").as_bytes(), 6)).collect();
        assert_eq!(spread.len(), 6, "every partition gets keys");
    }
}

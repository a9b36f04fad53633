//! The embedded broker's log, read in this process by a stage of the `trackiq up` that runs
//! the broker: what a consumer group member would fetch over TCP, without the group.
//!
//! The process owns every partition of the stage's topics (the claim on the group keeps Kafka
//! clients of other processes out, see `broker::serve`), so there is no join to wait for: a
//! stage is ready the moment it starts, and a `kill -9` costs no rebalance. Records are read
//! from the broker's tail of recent batches, or behind it from its database (see
//! `broker::records`), partition by partition (round robin, up to [`FETCH_BYTES`] a time)
//! only where the broker's high watermark says there are new ones; with none anywhere it
//! waits for the broker's append signal, so an idle stage does nothing at all.
//!
//! Every storage call runs as a task of its own: tansu's storage serves its requests from one
//! task and stops for good when a requester goes away before its answer (the oneshot send
//! fails), and [`LogSource::recv`] is raced against ticks and shutdown by the driver. A
//! dropped `recv` therefore loses only an answer, which the next `recv` asks for again.
//!
//! Offsets go where a Kafka consumer's go: committed for the stage's group in the broker's
//! offset table (the next offset to read, as Kafka clients commit it), every
//! [`COMMIT_EVERY`] while stored offsets are pending and at shutdown. So a stage can move
//! between in-process and Kafka reading (another deployment) without losing its place.

use std::collections::VecDeque;
use std::time::Duration;

use tansu_sans_io::record::{deflated, inflated};
use tansu_storage::{OffsetCommitRequest, Storage, TopicId, Topition};
use tokio::sync::watch;
use tokio::time::Instant;

use super::rebalance::RebalanceLog;
use super::source::ReceiveError;
use crate::broker::{EmbeddedLog, LogReader};
use crate::bus::Record;
use crate::error::InfraError;
use crate::metrics::PipelineMetrics;

/// Most bytes read from one partition at a time (librdkafka's default per-partition fetch).
pub const FETCH_BYTES: u32 = 1024 * 1024;
/// How often stored offsets are committed while more are stored (librdkafka's auto-commit
/// interval in trackiq's consumers).
pub const COMMIT_EVERY: Duration = Duration::from_millis(250);

/// One partition read: where the next record is, and what was stored and committed of it.
struct Part {
    tp: Topition,
    position: i64,
    stored: Option<i64>,
    committed: Option<i64>,
}

/// Runs a storage call as a task of its own (see the module doc), its error as text.
async fn detached<T: Send + 'static>(call: impl std::future::Future<Output = tansu_storage::Result<T>> + Send + 'static) -> Result<T, String> {
    match tokio::spawn(call).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("a storage call failed: {e}")),
    }
}

pub struct LogSource {
    log: EmbeddedLog,
    group: String,
    stage: &'static str,
    metrics: PipelineMetrics,
    parts: Vec<Part>,
    /// Round-robin cursor over `parts`.
    next: usize,
    ready: VecDeque<Record>,
    /// This reader's connection to the broker's database, for records behind the tail.
    records: LogReader,
    appended: watch::Receiver<u64>,
    last_commit: Instant,
}

impl LogSource {
    /// Claims `group` and starts each partition of `topics` at the group's committed offset
    /// (the log's start where nothing is committed, as `auto.offset.reset = earliest`).
    pub async fn open(log: EmbeddedLog, group: &str, stage: &'static str, topics: &[String], metrics: PipelineMetrics, rebalances: RebalanceLog) -> Result<LogSource, InfraError> {
        let fail = |action: &str, reason: String| InfraError::EmbeddedLog { group: group.to_string(), action: action.to_string(), reason };
        let records = log.records.reader().map_err(|e| fail("opening the broker's database", e))?;
        if !log.claim(group) {
            return Err(fail("claiming the group", "another stage of this process reads it".into()));
        }
        let mut source = LogSource { appended: log.appends.subscribe(), records, log, group: group.to_string(), stage, metrics, parts: Vec::new(), next: 0, ready: VecDeque::new(), last_commit: Instant::now() };
        let mut tps = Vec::new();
        for topic in topics {
            let (storage, name) = (source.log.storage.clone(), topic.clone());
            let metadata = detached(async move { storage.metadata(Some(&[TopicId::Name(name)])).await }).await.map_err(|e| fail("reading topic metadata", e))?;
            let partitions = metadata.topics().first().and_then(|t| t.partitions.clone()).unwrap_or_default();
            if partitions.is_empty() {
                return Err(fail("reading topic metadata", format!("topic {topic} does not exist")));
            }
            tps.extend(partitions.iter().map(|p| Topition::new(topic.as_str(), p.partition_index)));
        }
        let (storage, g, all) = (source.log.storage.clone(), group.to_string(), tps.clone());
        let committed = detached(async move { storage.offset_fetch(Some(&g), &all, None).await }).await.map_err(|e| fail("reading committed offsets", e))?;
        for tp in tps {
            let position = match committed.get(&tp).copied().filter(|o| *o >= 0) {
                Some(next) => next,
                None => {
                    let stage = source.offset_stage(&tp).await.map_err(|e| fail("reading the log's offsets", e))?;
                    stage.log_start()
                }
            };
            source.parts.push(Part { tp, position, stored: None, committed: None });
        }
        rebalances.assigned(source.parts.iter().map(|p| (p.tp.topic().to_string(), p.tp.partition())));
        tracing::info!(stage, group, partitions = source.parts.len(), "reading the embedded log in-process");
        Ok(source)
    }

    /// The next record; waits for an append when every partition is read to its end.
    /// Cancel-safe: a position moves only together with the records it covers.
    pub async fn recv(&mut self) -> Result<Record, ReceiveError> {
        loop {
            if self.pending_commit() && Instant::now() >= self.last_commit + COMMIT_EVERY {
                self.commit().await.map_err(ReceiveError::Transient)?;
            }
            if let Some(r) = self.ready.pop_front() {
                return Ok(r);
            }
            // Seen now: an append while the partitions are looked at wakes the wait below.
            let _ = self.appended.borrow_and_update();
            self.fill().await.map_err(ReceiveError::Transient)?;
            if !self.ready.is_empty() {
                continue;
            }
            let commit_due = self.pending_commit().then_some(self.last_commit + COMMIT_EVERY);
            tokio::select! {
                changed = self.appended.changed() => changed.map_err(|_| ReceiveError::Fatal("the embedded broker stopped".into()))?,
                _ = tokio::time::sleep_until(commit_due.unwrap_or_else(Instant::now)), if commit_due.is_some() => {}
            }
        }
    }

    /// Reads the next partition (round robin) that has records past its position.
    async fn fill(&mut self) -> Result<(), String> {
        for _ in 0..self.parts.len() {
            let i = self.next;
            self.next = (self.next + 1) % self.parts.len();
            let high = match self.log.appends.marks(&self.parts[i].tp) {
                Some(m) => m.high_watermark,
                None => self.offset_stage(&self.parts[i].tp.clone()).await?.high_watermark(),
            };
            let part = &self.parts[i];
            self.metrics.set_lag(self.stage, part.tp.topic(), part.tp.partition(), (high - part.position).max(0));
            if part.position >= high {
                continue;
            }
            let (topic, partition, from) = (part.tp.topic().to_string(), part.tp.partition(), part.position);
            let position = match self.log.appends.recent(&part.tp, from, FETCH_BYTES) {
                Some(kept) => self.take_batches(&topic, partition, from, kept)?,
                None => {
                    let stored = self.records.read(&part.tp, from, high, FETCH_BYTES as usize).await?;
                    let mut position = from;
                    for r in stored {
                        position = r.offset + 1;
                        if r.is_control() {
                            continue;
                        }
                        self.ready.push_back(Record { topic: topic.clone(), partition, offset: r.offset, timestamp_ms: r.timestamp_ms, key: r.key, payload: r.value.unwrap_or_default() });
                    }
                    position
                }
            };
            self.parts[i].position = position;
            if !self.ready.is_empty() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Queues the records of `batches` (kept by the broker) from offset `from`; the position
    /// after them.
    fn take_batches(&mut self, topic: &str, partition: i32, from: i64, batches: Vec<deflated::Batch>) -> Result<i64, String> {
        let mut position = from;
        for batch in batches {
            let control = batch.is_control();
            let batch = inflated::Batch::try_from(batch).map_err(|e| format!("{topic}/{partition} at offset {position}: {e}"))?;
            for r in batch.records {
                let offset = batch.base_offset + i64::from(r.offset_delta);
                if offset < position {
                    continue;
                }
                position = offset + 1;
                if control {
                    continue;
                }
                self.ready.push_back(Record {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    timestamp_ms: Some(batch.base_timestamp + r.timestamp_delta),
                    key: r.key.map(|k| k.to_vec()),
                    payload: r.value.map(|v| v.to_vec()).unwrap_or_default(),
                });
            }
        }
        Ok(position)
    }

    /// The log's offsets of `tp`, learnt by the broker's [`crate::broker::Appends`] too.
    async fn offset_stage(&self, tp: &Topition) -> Result<tansu_storage::OffsetStage, String> {
        let (storage, at) = (self.log.storage.clone(), tp.clone());
        let stage = detached(async move { storage.offset_stage(&at).await }).await?;
        self.log.appends.learn(tp, stage.high_watermark(), Some(stage.log_start()));
        Ok(stage)
    }

    fn pending_commit(&self) -> bool {
        self.parts.iter().any(|p| p.stored > p.committed)
    }

    /// `offset`'s record is done.
    pub fn store_offset(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), String> {
        let part = self.parts.iter_mut().find(|p| p.tp.topic() == topic && p.tp.partition() == partition).ok_or_else(|| format!("{topic}/{partition} is not read here"))?;
        part.stored = part.stored.max(Some(offset));
        Ok(())
    }

    /// Commits every stored offset not committed yet.
    pub async fn commit(&mut self) -> Result<(), String> {
        let due: Vec<(Topition, OffsetCommitRequest)> =
            self.parts.iter().filter(|p| p.stored > p.committed).filter_map(|p| Some((p.tp.clone(), OffsetCommitRequest::default().offset(p.stored? + 1)))).collect();
        self.last_commit = Instant::now();
        if due.is_empty() {
            return Ok(());
        }
        let (storage, group) = (self.log.storage.clone(), self.group.clone());
        let answers = detached(async move { storage.offset_commit(&group, None, &due).await }).await?;
        if let Some((tp, code)) = answers.iter().find(|(_, code)| *code != tansu_sans_io::ErrorCode::None) {
            return Err(format!("committing {}/{}: {code:?}", tp.topic(), tp.partition()));
        }
        for p in &mut self.parts {
            p.committed = p.stored;
        }
        Ok(())
    }
}

impl Drop for LogSource {
    fn drop(&mut self) {
        self.log.release(&self.group);
    }
}

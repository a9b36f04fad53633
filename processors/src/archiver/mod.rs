//! Archiver: every event to Parquet (zstd) in the object store, hive-partitioned as
//! `<table>/date=YYYY-MM-DD/<topic>-<partition>-<first>-<last>-i<incarnation>.parquet`.
//! The table follows the event type (a run's samples and its start/finish share one topic).
//!
//! Idempotence: an object is named by the offsets it holds and by the incarnation of the log
//! they are offsets in (the Kafka cluster id; the embedded broker gets a new one when its
//! database is new). At start-up the archiver lists the objects of the current incarnation
//! and skips every record of a table at or below the highest offset they cover for its
//! partition, so a crash between the upload and the offset commit, or a replay of the whole
//! log, never writes a row twice; and a new broker, whose offsets start again from 0, never
//! has its records mistaken for archived ones. Objects written before incarnations were
//! named (no `-i…` part) belong to the embedded broker's original cluster id `trackiq`.
//!
//! A run event the log holds twice (a producer's retry after a lost acknowledgement; see
//! [`repeats`]) is archived once.
//!
//! Offsets: a record is held until the object holding its rows is written. Parquet encoding
//! runs on the blocking pool; a failed upload keeps the rows and is retried with backoff.

mod alert_rows;
pub mod naming;
mod repeats;
pub mod rows;
#[cfg(test)]
mod handover_tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use trackiq_infra::metrics::PipelineMetrics;
use trackiq_infra::runtime::{Effects, Input, Position, Stage, StageError};
use trackiq_infra::DataStore;
use trackiq_schemas::{AnyEvent, Topics};

use crate::error::ProcessorError;
pub use naming::{ObjectName, object_name, parse_object_name};
use rows::Located;

/// Archiver settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiverConfig {
    /// Consumer group of the archiver.
    pub group: String,
    /// Write an object once a table of a partition has buffered this many rows.
    pub flush_rows: usize,
    /// Write an object once the oldest buffered record of a partition is this old.
    pub flush_secs: u64,
    /// Stop reading while this many rows wait for an object store that fails (an outage):
    /// memory stays bounded and the backlog stays in Kafka.
    pub max_buffered_rows: usize,
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        ArchiverConfig { group: "trackiq-archiver".into(), flush_rows: 100_000, flush_secs: 5, max_buffered_rows: 1_000_000 }
    }
}

/// Table, topic and partition: the unit of buffering and of object names.
type Slot = (&'static str, String, i32);

struct Pending {
    /// Records in offset order.
    records: Vec<(i64, AnyEvent)>,
    first_timestamp_ms: Option<i64>,
    rows: usize,
    since: Instant,
}

/// The Parquet table an event's rows go to.
pub fn table_for(event: &AnyEvent) -> &'static str {
    match event {
        AnyEvent::RunStarted(_) | AnyEvent::RunFinished(_) => "runs",
        AnyEvent::SampleBatch(_) => "samples",
        AnyEvent::RunSummary(_) => "summaries",
        AnyEvent::Verdict(_) => "verdicts",
        AnyEvent::TrendResult(_) => "trends",
        AnyEvent::BaselinePin(_) => "baselines",
        AnyEvent::DeadLetter(_) => "dlq",
        AnyEvent::Detection(_) => "detections",
        AnyEvent::Alert(_) => "alerts",
        AnyEvent::AlertAction(_) => "alert_actions",
        AnyEvent::Notification(_) => "notifications",
        AnyEvent::ReleaseDecision(_) => "approvals",
    }
}

fn rows_of(event: &AnyEvent) -> usize {
    match event {
        AnyEvent::SampleBatch(b) => b.samples.len(),
        AnyEvent::RunSummary(s) => s.metrics.len() + s.derived.len(),
        AnyEvent::Verdict(v) => v.metrics.len() + v.findings.len(),
        AnyEvent::BaselinePin(p) => p.runs.iter().map(|r| r.values.len()).sum::<usize>().max(1),
        _ => 1,
    }
}

/// Buffers and writes Parquet objects; Kafka-free so it can be driven directly in tests.
pub struct Archive {
    store: DataStore,
    incarnation: String,
    /// Highest offset already in an object of this incarnation, per table and partition.
    covered: HashMap<Slot, i64>,
    pending: HashMap<Slot, Pending>,
    /// Run events already archived or buffered, by identity.
    repeats: repeats::Repeats,
}

/// What a flush wrote.
#[derive(Debug)]
pub struct Flushed {
    /// Offsets now durable.
    pub offsets: Vec<i64>,
    /// Object name and size, when rows were written.
    pub object: Option<(String, usize)>,
    /// Rows written.
    pub rows: usize,
}

impl Archive {
    /// Opens the archive of log incarnation `incarnation`, reading which offsets its existing
    /// objects already hold.
    pub async fn open(store: DataStore, incarnation: &str) -> Result<Self, ProcessorError> {
        let (covered, other) = archived_offsets(&store, incarnation).await?;
        let mut repeats = repeats::Repeats::default();
        let recent = repeats.seed(&store, incarnation, |_, _| true).await?;
        info!(incarnation, partitions = covered.len(), objects_of_other_incarnations = other, recent_objects_read = recent, "archive opened");
        Ok(Archive { store, incarnation: incarnation.to_string(), covered, pending: HashMap::new(), repeats })
    }

    /// Partitions moved between instances of the archiver group: buffered rows of a revoked
    /// partition are dropped unwritten (its new owner replays them from the committed offset,
    /// which never passes a record held here), and for an assigned one the archived offsets
    /// are read again, since another instance may have written objects for it meanwhile.
    pub async fn partitions_changed(&mut self, assigned: &[(String, i32)], revoked: &[(String, i32)]) -> Result<(), ProcessorError> {
        let moved = |slot: &Slot, list: &[(String, i32)]| list.iter().any(|(t, p)| *t == slot.1 && *p == slot.2);
        self.pending.retain(|slot, _| !moved(slot, revoked));
        self.covered.retain(|slot, _| !moved(slot, revoked));
        for (topic, partition) in revoked {
            self.repeats.forget(topic, *partition);
        }
        if assigned.is_empty() {
            return Ok(());
        }
        for (topic, partition) in assigned {
            self.repeats.forget(topic, *partition);
        }
        let is_assigned = |topic: &str, partition: i32| assigned.iter().any(|(t, p)| t == topic && *p == partition);
        self.repeats.seed(&self.store, &self.incarnation, is_assigned).await?;
        let (listed, _) = archived_offsets(&self.store, &self.incarnation).await?;
        for (slot, last) in listed.into_iter().filter(|(slot, _)| moved(slot, assigned)) {
            let e = self.covered.entry(slot).or_insert(last);
            *e = (*e).max(last);
        }
        Ok(())
    }

    /// Adds a record; false when it is already in an object (its offset is done).
    pub fn add(&mut self, position: &Position, timestamp_ms: Option<i64>, event: AnyEvent) -> bool {
        let slot: Slot = (table_for(&event), position.topic.clone(), position.partition);
        if self.covered.get(&slot).is_some_and(|&c| position.offset <= c) {
            return false;
        }
        // A replay after a rebalance can deliver an offset again: keep offsets increasing.
        if self.pending.get(&slot).and_then(|p| p.records.last()).is_some_and(|(o, _)| *o >= position.offset) {
            return true;
        }
        if let Some(identity) = repeats::identity(&event)
            && !self.repeats.first_time(&position.topic, position.partition, identity)
        {
            debug!(topic = %position.topic, partition = position.partition, offset = position.offset, "the log holds this run event twice; archived once");
            return false;
        }
        let rows = rows_of(&event);
        let p = self.pending.entry(slot).or_insert_with(|| Pending { records: Vec::new(), first_timestamp_ms: timestamp_ms, rows: 0, since: Instant::now() });
        p.records.push((position.offset, event));
        p.rows += rows;
        true
    }

    /// Rows buffered over all partitions.
    pub fn buffered_rows(&self) -> usize {
        self.pending.values().map(|p| p.rows).sum()
    }

    /// Slots due for a flush: by size, by age, or all of them when `all`.
    pub fn due(&self, flush_rows: usize, max_age: Duration, all: bool) -> Vec<Slot> {
        let mut due: Vec<Slot> =
            self.pending.iter().filter(|(_, p)| all || p.rows >= flush_rows || p.since.elapsed() >= max_age).map(|(s, _)| s.clone()).collect();
        due.sort();
        due
    }

    /// Writes the buffered records of a slot as one object. On failure the records stay
    /// buffered for the next attempt.
    pub async fn flush(&mut self, slot: &Slot) -> Result<Option<Flushed>, ProcessorError> {
        let Some(p) = self.pending.remove(slot) else { return Ok(None) };
        match self.write(slot, &p).await {
            Ok(object) => {
                let last = p.records.last().map(|(o, _)| *o);
                if let Some(last) = last {
                    self.covered.insert(slot.clone(), last);
                }
                Ok(Some(Flushed { offsets: p.records.iter().map(|(o, _)| *o).collect(), object, rows: p.rows }))
            }
            Err(e) => {
                self.pending.insert(slot.clone(), p);
                Err(e)
            }
        }
    }

    async fn write(&self, slot: &Slot, p: &Pending) -> Result<Option<(String, usize)>, ProcessorError> {
        let (Some((first, _)), Some((last, _))) = (p.records.first(), p.records.last()) else { return Ok(None) };
        let (table, topic, partition) = slot;
        let date = date_of(p.first_timestamp_ms);
        let name = format!("{table}/date={date}/{}", object_name(topic, *partition, *first, *last, &self.incarnation));
        let located: Vec<Located<'_>> = p.records.iter().map(|(offset, event)| Located { partition: *partition, offset: *offset, event }).collect();
        let batch = rows::table_batch(table, &located).map_err(|source| ProcessorError::Arrow { table: table.to_string(), source })?;
        let rows = batch.num_rows();
        // Parquet encoding is CPU-heavy: off the async workers.
        let object = name.clone();
        let bytes = tokio::task::spawn_blocking(move || write_parquet(&batch))
            .await
            .map_err(|e| ProcessorError::Task(e.to_string()))?
            .map_err(|source| ProcessorError::Parquet { object, source })?;
        let size = bytes.len();
        self.store.put(&name, bytes).await?;
        debug!(object = %name, rows, bytes = size, "archived");
        Ok(Some((name, size)))
    }
}

/// The highest offset held by an object of log incarnation `incarnation`, per table and
/// partition, and how many objects belong to other incarnations.
async fn archived_offsets(store: &DataStore, incarnation: &str) -> Result<(HashMap<Slot, i64>, usize), ProcessorError> {
    let mut covered: HashMap<Slot, i64> = HashMap::new();
    let mut other = 0usize;
    for table in trackiq_schemas::arrow::TABLES {
        let (last, others) = archived_last_offsets(store, table, incarnation).await?;
        other += others;
        covered.extend(last.into_iter().map(|((topic, partition), offset)| ((table, topic, partition), offset)));
    }
    Ok((covered, other))
}

/// The highest offset archived to `table` per topic and partition in log incarnation
/// `incarnation`, and how many objects belong to other incarnations. Objects a compaction
/// merged count by the names its commit records keep, since the objects themselves are gone.
pub async fn archived_last_offsets(store: &DataStore, table: &str, incarnation: &str) -> Result<(HashMap<(String, i32), i64>, usize), ProcessorError> {
    let records = trackiq_infra::compaction::records(store, table).await?;
    let listed = store.list(table).await?;
    let names = listed.iter().filter_map(|m| m.location.filename()).chain(records.iter().flat_map(|r| r.inputs.iter().map(String::as_str)));
    let mut last: HashMap<(String, i32), i64> = HashMap::new();
    let mut other = 0usize;
    for name in names.filter_map(parse_object_name) {
        if name.incarnation() != incarnation {
            other += 1;
            continue;
        }
        let e = last.entry((name.topic, name.partition)).or_insert(name.last);
        *e = (*e).max(name.last);
    }
    Ok((last, other))
}

fn date_of(timestamp_ms: Option<i64>) -> String {
    let ms = timestamp_ms.unwrap_or_else(|| trackiq_schemas::now_us() / 1000);
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
}

fn write_parquet(batch: &datafusion::arrow::record_batch::RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(buf)
}

/// The archiver as a stage of the runtime.
pub struct ArchiverStage {
    config: ArchiverConfig,
    archive: Archive,
    metrics: PipelineMetrics,
    /// When a flush last failed.
    last_failure: Option<Instant>,
}

/// After a failed flush, size-triggered flushes wait this long (the ticks keep retrying).
const FAILURE_QUIET: Duration = Duration::from_secs(5);

impl ArchiverStage {
    /// Opens the archive of the log incarnation `incarnation` (see [`Archive::open`]).
    pub async fn open(config: ArchiverConfig, store: DataStore, incarnation: &str, metrics: PipelineMetrics) -> Result<Self, ProcessorError> {
        Ok(ArchiverStage { archive: Archive::open(store, incarnation).await?, config, metrics, last_failure: None })
    }

    async fn flush_due(&mut self, all: bool) -> Result<Effects, StageError> {
        let mut effects = Effects::done();
        for slot in self.archive.due(self.config.flush_rows, Duration::from_secs(self.config.flush_secs), all) {
            match self.archive.flush(&slot).await {
                Ok(Some(f)) => {
                    if let Some((_, bytes)) = &f.object {
                        self.metrics.parquet_written(slot.0, *bytes as u64, f.rows as u64);
                    }
                    effects.release.extend(f.offsets.into_iter().map(|offset| Position { topic: slot.1.clone(), partition: slot.2, offset }));
                }
                Ok(None) => {}
                // What was written so far is released; the rest is retried with backoff.
                Err(e) if effects.release.is_empty() => {
                    self.last_failure = Some(Instant::now());
                    return Err(StageError::Transient(e.to_string()));
                }
                Err(e) => {
                    self.last_failure = Some(Instant::now());
                    tracing::warn!(error = %e, "archive flush failed; retrying at the next tick");
                    break;
                }
            }
        }
        Ok(effects)
    }
}

impl Stage for ArchiverStage {
    fn name(&self) -> &'static str {
        "archiver"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        topics.all().iter().map(|t| t.to_string()).collect()
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        if !self.archive.add(&input.position, input.timestamp_ms, input.event) {
            return Ok(Effects::done());
        }
        // Size-triggered flushes happen at once, unless a flush failed moments ago (the store
        // is down): then the ticks retry with backoff and backpressure bounds the buffer.
        let store_failing = self.last_failure.is_some_and(|t| t.elapsed() < FAILURE_QUIET);
        if self.archive.buffered_rows() >= self.config.flush_rows && !store_failing {
            let mut e = self.flush_due(true).await.unwrap_or_default();
            e.hold_input = true;
            return Ok(e);
        }
        Ok(Effects::held())
    }

    async fn tick(&mut self, _now: Instant) -> Result<Effects, StageError> {
        self.flush_due(false).await
    }

    async fn flush(&mut self) -> Result<Effects, StageError> {
        self.flush_due(true).await
    }

    async fn partitions_changed(&mut self, assigned: &[(String, i32)], revoked: &[(String, i32)]) -> Result<(), StageError> {
        self.archive.partitions_changed(assigned, revoked).await.map_err(|e| StageError::Transient(e.to_string()))
    }

    fn backpressure(&self) -> bool {
        self.archive.buffered_rows() >= self.config.max_buffered_rows
    }
}

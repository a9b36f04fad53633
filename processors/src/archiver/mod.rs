//! Archiver: every topic to Parquet (zstd) in the object store, hive-partitioned as
//! `<table>/date=YYYY-MM-DD/<topic>-<partition>-<first offset>-<last offset>.parquet`.
//!
//! Idempotence: an object is named by the offsets it holds, and at start-up the archiver
//! lists the objects already written and skips every record at or below the highest offset
//! they cover for its partition. A crash between the upload and the offset commit, or a
//! replay of the whole log, therefore never writes a row twice. Offsets are stored only
//! after the object holding their rows is written.

pub mod rows;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rdkafka::consumer::StreamConsumer;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use trackiq_infra::bus::{Next, OffsetStore};
use trackiq_infra::{Bus, DataStore, Record, Shutdown};
use trackiq_schemas::{AnyEvent, registry};

use crate::error::ProcessorError;
use rows::Located;

/// Archiver settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiverConfig {
    /// Consumer group of the archiver.
    pub group: String,
    /// Write an object once a partition has buffered this many rows.
    pub flush_rows: usize,
    /// Write an object once the oldest buffered record of a partition is this old.
    pub flush_secs: u64,
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        ArchiverConfig { group: "trackiq-archiver".into(), flush_rows: 100_000, flush_secs: 5 }
    }
}

type TopicPartition = (String, i32);

struct Pending {
    table: &'static str,
    /// Records in offset order; `None` for one that was dead-lettered (it has no rows).
    records: Vec<(i64, Option<AnyEvent>)>,
    first_timestamp_ms: Option<i64>,
    rows: usize,
    since: Instant,
}

/// Buffers and writes Parquet objects; Kafka-free so it can be driven directly in tests.
pub struct Archive {
    store: DataStore,
    /// Highest offset already in an object, per partition.
    covered: HashMap<TopicPartition, i64>,
    pending: HashMap<TopicPartition, Pending>,
}

/// What to do with a record after [`Archive::add`].
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Already in an object: its offset may be stored at once.
    AlreadyArchived,
    /// Buffered until the next flush of its partition.
    Buffered,
}

impl Archive {
    /// Opens the archive, reading which offsets existing objects already hold.
    pub async fn open(store: DataStore) -> Result<Self, ProcessorError> {
        let mut covered: HashMap<TopicPartition, i64> = HashMap::new();
        for table in trackiq_schemas::arrow::TABLES {
            for meta in store.list(table).await? {
                if let Some((topic, partition, _first, last)) = meta.location.filename().and_then(parse_object_name) {
                    let e = covered.entry((topic, partition)).or_insert(last);
                    *e = (*e).max(last);
                }
            }
        }
        debug!(partitions = covered.len(), "archive opened");
        Ok(Archive { store, covered, pending: HashMap::new() })
    }

    /// Adds a record; `event` is `None` when it could not be decoded (it was dead-lettered).
    pub fn add(&mut self, table: &'static str, record: &Record, event: Option<AnyEvent>) -> Added {
        let tp = (record.topic.clone(), record.partition);
        if self.covered.get(&tp).is_some_and(|&c| record.offset <= c) {
            return Added::AlreadyArchived;
        }
        let rows = match &event {
            Some(AnyEvent::SampleBatch(b)) => b.samples.len(),
            Some(AnyEvent::RunSummary(s)) => s.metrics.len() + s.derived.len(),
            Some(AnyEvent::Verdict(v)) => v.metrics.len() + v.findings.len(),
            Some(AnyEvent::BaselinePin(p)) => p.runs.iter().map(|r| r.values.len()).sum::<usize>().max(1),
            Some(_) => 1,
            None => 0,
        };
        let p = self.pending.entry(tp).or_insert_with(|| Pending {
            table,
            records: Vec::new(),
            first_timestamp_ms: record.timestamp_ms,
            rows: 0,
            since: Instant::now(),
        });
        // A replay after a rebalance can deliver an offset again: keep offsets increasing.
        if p.records.last().is_some_and(|(o, _)| *o >= record.offset) {
            return Added::Buffered;
        }
        p.records.push((record.offset, event));
        p.rows += rows;
        Added::Buffered
    }

    /// Partitions due for a flush: by size, by age, or all of them when `all`.
    pub fn due(&self, flush_rows: usize, max_age: Duration, all: bool) -> Vec<TopicPartition> {
        self.pending
            .iter()
            .filter(|(_, p)| all || p.rows >= flush_rows || p.since.elapsed() >= max_age)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Writes the buffered records of a partition as one object; returns the last offset now
    /// durable (to be stored), and the object name when rows were written.
    pub async fn flush(&mut self, tp: &TopicPartition) -> Result<Option<(i64, Option<String>)>, ProcessorError> {
        let Some(p) = self.pending.remove(tp) else { return Ok(None) };
        let (first, last) = match (p.records.first(), p.records.last()) {
            (Some((f, _)), Some((l, _))) => (*f, *l),
            _ => return Ok(None),
        };
        let located: Vec<Located<'_>> = p
            .records
            .iter()
            .filter_map(|(offset, e)| e.as_ref().map(|event| Located { partition: tp.1, offset: *offset, event }))
            .collect();
        let mut object = None;
        if !located.is_empty() {
            let batch = rows::table_batch(p.table, &located).map_err(|source| ProcessorError::Arrow { table: p.table.into(), source })?;
            let date = date_of(p.first_timestamp_ms);
            let name = format!("{}/date={date}/{}", p.table, object_name(&tp.0, tp.1, first, last));
            let bytes = write_parquet(&batch).map_err(|source| ProcessorError::Parquet { object: name.clone(), source })?;
            self.store.put(&name, bytes).await?;
            info!(object = %name, rows = batch.num_rows(), "archived");
            object = Some(name);
        }
        self.covered.insert(tp.clone(), last);
        Ok(Some((last, object)))
    }
}

/// `<topic>-<partition>-<first>-<last>.parquet`, zero-padded so names sort by offset.
pub fn object_name(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{topic}-{partition:04}-{first:020}-{last:020}.parquet")
}

fn parse_object_name(name: &str) -> Option<(String, i32, i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(4, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?.to_string();
    Some((topic, partition, first, last))
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

/// Runs the archiver until `shutdown`, then flushes what it holds.
pub async fn run(config: ArchiverConfig, bus: Bus, store: DataStore, mut shutdown: Shutdown) -> Result<(), ProcessorError> {
    let topics = bus.topics().clone();
    let mut archive = Archive::open(store).await?;
    let consumer: StreamConsumer = bus.consumer(&config.group, &topics.all())?;
    let producer = bus.producer()?;
    let mut offsets = OffsetStore::default();
    let max_age = Duration::from_secs(config.flush_secs);
    info!("archiver started");
    loop {
        let mut flush_all = false;
        match bus.next(&consumer, &config.group, &mut shutdown, Duration::from_millis(500)).await {
            Next::Stop => flush_all = true,
            Next::Idle => {}
            Next::Record(record) => {
                let Some(table) = topics.table_of(&record.topic) else { continue };
                let record: Record = record;
                let event = match registry().decode_any(&record.payload) {
                    Ok(e) => Some(e),
                    // A broken dead letter is only logged: dead-lettering it again would loop.
                    Err(e) if record.topic == topics.dlq => { warn!(offset = record.offset, error = %e, "undecodable record on the dead-letter topic"); None }
                    Err(e) => { bus.dead_letter(&producer, &record, "archiver", &e.to_string()).await?; None }
                };
                if archive.add(table, &record, event) == Added::AlreadyArchived {
                    offsets.store(&consumer, &record.topic, record.partition, record.offset)?;
                }
            }
        }
        for tp in archive.due(config.flush_rows, max_age, flush_all) {
            if let Some((last, _)) = archive.flush(&tp).await? {
                offsets.store(&consumer, &tp.0, tp.1, last)?;
            }
        }
        if flush_all {
            break;
        }
    }
    offsets.commit(&consumer);
    info!("archiver stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_round_trip_and_sort_by_offset() {
        let n = object_name("trackiq.samples", 3, 100, 199);
        assert_eq!(n, "trackiq.samples-0003-00000000000000000100-00000000000000000199.parquet");
        assert_eq!(parse_object_name(&n), Some(("trackiq.samples".into(), 3, 100, 199)));
        assert!(object_name("t", 0, 9, 9) < object_name("t", 0, 10, 10));
        assert_eq!(parse_object_name("notes.txt"), None);
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date_of(Some(0)), "1970-01-01");
        assert_eq!(date_of(Some(1_763_900_000_000)), "2025-11-23");
    }
}

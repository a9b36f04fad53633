//! Records of the embedded broker's log read straight from its SQLite database, for readers
//! in the broker's process that are behind the tail kept in memory (`appends`).
//!
//! Why not tansu's `Storage::fetch`: its query (`record_fetch.sql`) sums the sizes of every
//! record from the asked offset to the high watermark in a window function before it keeps the
//! first `max_bytes`, so SQLite reads the whole backlog for each fetch. A reader 500 MB behind
//! read ~500 MB to get 1 MiB: measured in `trackiq bench ingest` flat out, a third of the
//! pipeline's CPU went to `pread` and copies. Here the rows come in offset order along the
//! table's primary key `(topition, offset_id)` and the read stops after `max_bytes`.
//!
//! The database is tansu's (WAL mode, so this read-only connection sees every committed
//! append without blocking the writer); the columns used are those of tansu-storage 0.6's
//! `record`, `topition`, `topic` and `cluster` tables (Cargo.lock pins the version).

use std::path::Path;

use bytes::Bytes;
use libsql::Value;
use tansu_sans_io::record::deflated::Batch;
use tansu_sans_io::record::{Record as LogRecord, inflated};
use tansu_storage::Topition;

const READ_RECORDS: &str = "select r.offset_id, r.timestamp, r.k, r.v, r.attributes, r.producer_id, r.producer_epoch from record r
where r.topition = (select tp.id from topition tp join topic t on tp.topic = t.id join cluster c on t.cluster = c.id
                    where c.name = ?1 and t.name = ?2 and tp.partition = ?3)
  and r.offset_id >= ?4 and r.offset_id < ?5
order by r.offset_id";

/// A record batch's attribute bits: the compression codec (the log keeps values inflated)
/// and the control flag (transaction markers, which consumers never see as records).
const COMPRESSION_BITS: i16 = 0b111;
const CONTROL_BIT: i16 = 0b10_0000;

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Its batch's attributes, compression bits cleared.
    pub attributes: i16,
    /// Its batch's producer id and epoch (-1 when not transactional).
    pub producer: (i64, i16),
}

impl StoredRecord {
    /// A transaction marker, not a record of data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// `records` (consecutive offsets, as read) as record batches the Kafka protocol carries:
/// one per run of records with the same attributes and producer.
pub fn batches(records: Vec<StoredRecord>) -> Result<Vec<Batch>, String> {
    let mut out = Vec::new();
    let mut records = records.into_iter().peekable();
    while let Some(first) = records.next() {
        let (base, base_ts) = (first.offset, first.timestamp_ms.unwrap_or(0));
        let (attributes, (producer_id, producer_epoch)) = (first.attributes, first.producer);
        let mut builder = inflated::Batch::builder().magic(2).base_offset(base).attributes(attributes).base_timestamp(base_ts).producer_id(producer_id).producer_epoch(producer_epoch).base_sequence(-1);
        let mut max_ts = base_ts;
        let mut last_delta = 0;
        let mut next = Some(first);
        while let Some(r) = next {
            let ts = r.timestamp_ms.unwrap_or(base_ts);
            max_ts = max_ts.max(ts);
            last_delta = i32::try_from(r.offset - base).map_err(|_| format!("offsets {base} to {} in one batch", r.offset))?;
            builder = builder.record(LogRecord::builder().offset_delta(last_delta).timestamp_delta(ts - base_ts).key(r.key.map(Bytes::from)).value(r.value.map(Bytes::from)));
            next = records.next_if(|n| n.attributes == attributes && n.producer == (producer_id, producer_epoch));
        }
        let batch = builder.max_timestamp(max_ts).last_offset_delta(last_delta).build().map_err(|e| e.to_string())?;
        out.push(Batch::try_from(batch).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The broker's database, opened for reading records.
#[derive(Clone)]
pub struct LogRecords {
    db: std::sync::Arc<libsql::Database>,
    cluster: String,
}

impl std::fmt::Debug for LogRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRecords").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl LogRecords {
    /// Opens tansu's database at `path` (created by the broker already) for `cluster`.
    pub async fn open(path: &Path, cluster: &str) -> Result<LogRecords, String> {
        let db = libsql::Builder::new_local(path).build().await.map_err(|e| format!("opening {}: {e}", path.display()))?;
        Ok(LogRecords { db: std::sync::Arc::new(db), cluster: cluster.to_string() })
    }

    /// A connection of its own for one reader (SQLite connections serialize their calls).
    pub fn reader(&self) -> Result<LogReader, String> {
        let conn = self.db.connect().map_err(|e| format!("connecting to the broker's database: {e}"))?;
        Ok(LogReader { conn, cluster: self.cluster.clone() })
    }
}

pub struct LogReader {
    conn: libsql::Connection,
    cluster: String,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl LogReader {
    /// `tp`'s records from offset `from` below `below` (the high watermark the caller knows),
    /// in offset order, up to `max_bytes` of keys and values (at least one record).
    pub async fn read(&self, tp: &Topition, from: i64, below: i64, max_bytes: usize) -> Result<Vec<StoredRecord>, String> {
        let fail = |e: libsql::Error| format!("reading {}/{} from offset {from} in the broker's database: {e}", tp.topic(), tp.partition());
        let params = (self.cluster.as_str(), tp.topic(), tp.partition(), from, below);
        let mut rows = self.conn.query(READ_RECORDS, params).await.map_err(fail)?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next().await.map_err(fail)? {
            let key: Option<Vec<u8>> = row.get(2).map_err(fail)?;
            let value: Option<Vec<u8>> = row.get(3).map_err(fail)?;
            bytes += key.as_ref().map_or(0, Vec::len) + value.as_ref().map_or(0, Vec::len);
            let timestamp_ms = match row.get_value(1).map_err(fail)? {
                Value::Integer(ms) => Some(ms),
                _ => None,
            };
            let attributes = row.get::<Option<i32>>(4).map_err(fail)?.unwrap_or(0) as i16 & !COMPRESSION_BITS;
            let producer = (row.get::<Option<i64>>(5).map_err(fail)?.unwrap_or(-1), row.get::<Option<i32>>(6).map_err(fail)?.unwrap_or(-1) as i16);
            out.push(StoredRecord { offset: row.get(0).map_err(fail)?, timestamp_ms, key, value, attributes, producer });
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }
}

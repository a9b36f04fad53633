//! Row counts of Parquet objects kept across processes, so that planning a query does not read
//! every object's footer again. The history's objects never change once written (a new
//! object gets a new name; compaction writes new objects and removes old ones), so an
//! object's row count, keyed by its location, size and modification time, stays true.
//!
//! DataFusion plans with each object's statistics (the join puts its hash table on the side
//! with fewer rows; [`crate::row_counts`] answers `count(*)` from them) and, with no cache,
//! reads and decodes every footer to get them before the query starts: on the archived
//! layout (1,871 `runs` objects, 1,874 sample objects) that was a third of a query's time.
//! [`RowCountCache`] is the listing tables' statistics cache: an object seen by an earlier
//! query is planned from its recorded row count and the null counts and bounds of its string,
//! integer and time columns (so `WHERE run_id = …` still skips objects unopened), an object
//! not seen before is read as usual and its figures appended to the cache file.
//!
//! The file ([`cache_file`]: beside a local history, in the user's cache directory for a
//! remote one; one line per object: location, size, modification time in ns, rows, column bounds as JSON) is appended with one `write` per
//! line, so concurrent processes at worst record a count twice; it is started again when it
//! outgrows [`MAX_FILE_BYTES`] (objects removed by compaction leave their lines behind).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use datafusion::execution::cache::cache_manager::{CachedFileMetadata, SchemaFingerprint, TableScopedPath};
use datafusion::execution::cache::{Cache, CacheEntryInfo, CacheValue};
use object_store::ObjectMeta;
use object_store::path::Path;

/// A cache file larger than this is started again (about 40,000 objects' lines).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// See the module documentation.
pub struct RowCountCache {
    entries: Mutex<HashMap<Path, CachedFileMetadata>>,
    fingerprint: Arc<SchemaFingerprint>,
    /// The objects' column types, in order.
    types: Vec<DataType>,
    file: Option<PathBuf>,
    /// The file, opened for appending at the first new count.
    appender: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for RowCountCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowCountCache").field("file", &self.file).field("entries", &self.len()).finish()
    }
}

/// Where the cache of `table` of the history `store` lives: for a local history, beside it
/// (`<data>/.trackiq-cache/row-counts/<table>.tsv`, removed with it); for a remote one, in
/// `TRACKIQ_CACHE_DIR`, else `$XDG_CACHE_HOME/trackiq`, else `~/.cache/trackiq`, named by a hash
/// of the URL. `TRACKIQ_CACHE_DIR` set to an empty value keeps no cache.
pub fn cache_file(store: &crate::store::DataStore, table: &str) -> Option<PathBuf> {
    let chosen = std::env::var_os("TRACKIQ_CACHE_DIR");
    if chosen.as_ref().is_some_and(|d| d.is_empty()) {
        return None;
    }
    if let Some(local) = store.local_dir() {
        return Some(local.join(".trackiq-cache").join("row-counts").join(format!("{table}.tsv")));
    }
    let dir = chosen.map(PathBuf::from).or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("trackiq"))
    })?;
    Some(dir.join("row-counts").join(format!("{:016x}-{table}.tsv", stable_hash(&store.to_string()))))
}

impl RowCountCache {
    /// The cache kept in `file` (none kept without one) for objects of `file_schema` (the
    /// listing table's, partition columns left out).
    pub fn open(file: Option<PathBuf>, file_schema: &Schema) -> RowCountCache {
        let fingerprint = Arc::new(SchemaFingerprint::from_schema(file_schema));
        let cache = RowCountCache { entries: Mutex::new(HashMap::new()), fingerprint, types: file_schema.fields().iter().map(|f| f.data_type().clone()).collect(), file, appender: Mutex::new(None) };
        if let Some(path) = &cache.file {
            match std::fs::metadata(path) {
                Ok(m) if m.len() > MAX_FILE_BYTES => drop(std::fs::remove_file(path)),
                Ok(_) => cache.load(&std::fs::read_to_string(path).unwrap_or_default()),
                Err(_) => {}
            }
        }
        cache
    }

    fn load(&self, text: &str) {
        let mut entries = self.entries.lock().expect("row count cache lock");
        for line in text.lines() {
            // A torn or foreign line is skipped: the object's footer is read instead.
            let Some((location, size, modified, rows, bounds)) = parse_line(line) else { continue };
            let Ok(bounds) = serde_json::from_str::<Vec<Option<Bounds>>>(bounds) else { continue };
            if bounds.len() != self.types.len() {
                continue;
            }
            let last_modified = chrono::DateTime::from_timestamp_nanos(modified);
            let meta = ObjectMeta { location: Path::from(location), last_modified, size, e_tag: None, version: None };
            let column_statistics = bounds.iter().zip(&self.types).map(|(b, t)| b.as_ref().map_or_else(ColumnStatistics::new_unknown, |b| b.statistics(t))).collect();
            let statistics = Statistics { num_rows: Precision::Exact(rows), total_byte_size: Precision::Absent, column_statistics };
            entries.insert(meta.location.clone(), CachedFileMetadata::new(meta, self.fingerprint.clone(), Arc::new(statistics), None));
        }
    }

    fn append(&self, meta: &ObjectMeta, rows: usize, columns: &[ColumnStatistics]) {
        let Some(path) = &self.file else { return };
        let bounds: Vec<Option<Bounds>> = columns.iter().map(Bounds::of).collect();
        let bounds = serde_json::to_string(&bounds).expect("bounds serialize");
        let line = format!("{}\t{}\t{}\t{rows}\t{bounds}\n", meta.location, meta.size, meta.last_modified.timestamp_nanos_opt().unwrap_or_default());
        let mut appender = self.appender.lock().expect("row count cache lock");
        // The cache is an optimisation: a directory that cannot be written keeps none.
        let write = |appender: &mut Option<std::fs::File>| -> std::io::Result<()> {
            if appender.is_none() {
                std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
                *appender = Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
            }
            appender.as_mut().expect("opened").write_all(line.as_bytes())
        };
        if let Err(e) = write(&mut appender) {
            tracing::debug!(error = %e, file = %path.display(), "row count cache not written");
        }
    }
}

fn parse_line(line: &str) -> Option<(&str, u64, i64, usize, &str)> {
    let mut parts = line.split('\t');
    let parsed = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
    parts.next().is_none().then_some(parsed)
}

/// A column's null count and min/max as recorded: kept for strings, integers and times, whose
/// bounds prune whole objects (`WHERE run_id = …`, `WHERE ts > …`) before they are opened.
/// Doubles are left out: Parquet's min/max skip NaN.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Bounds {
    nulls: Option<usize>,
    min: Option<(bool, serde_json::Value)>,
    max: Option<(bool, serde_json::Value)>,
}

impl Bounds {
    fn of(c: &ColumnStatistics) -> Option<Bounds> {
        let value = |p: &Precision<ScalarValue>| -> Option<(bool, serde_json::Value)> {
            let (exact, v) = match p {
                Precision::Exact(v) => (true, v),
                Precision::Inexact(v) => (false, v),
                Precision::Absent => return None,
            };
            let json = match v {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => serde_json::Value::from(s.as_str()),
                ScalarValue::Int64(Some(i)) | ScalarValue::TimestampMicrosecond(Some(i), _) | ScalarValue::TimestampNanosecond(Some(i), _) | ScalarValue::TimestampMillisecond(Some(i), _) | ScalarValue::TimestampSecond(Some(i), _) => serde_json::Value::from(*i),
                ScalarValue::Int32(Some(i)) => serde_json::Value::from(*i),
                _ => return None,
            };
            Some((exact, json))
        };
        let bounds = Bounds { nulls: c.null_count.get_value().copied().filter(|_| matches!(c.null_count, Precision::Exact(_))), min: value(&c.min_value), max: value(&c.max_value) };
        (bounds.nulls.is_some() || bounds.min.is_some() || bounds.max.is_some()).then_some(bounds)
    }

    /// The statistics of a column of type `t` (a bound that does not convert is left unknown).
    fn statistics(&self, t: &DataType) -> ColumnStatistics {
        let value = |b: &Option<(bool, serde_json::Value)>| -> Precision<ScalarValue> {
            let scalar = match b.as_ref().map(|(_, v)| v) {
                Some(serde_json::Value::String(s)) => ScalarValue::Utf8(Some(s.clone())),
                Some(serde_json::Value::Number(n)) if n.is_i64() => ScalarValue::Int64(n.as_i64()),
                _ => return Precision::Absent,
            };
            match (scalar.cast_to(t), b) {
                (Ok(v), Some((true, _))) => Precision::Exact(v),
                (Ok(v), Some((false, _))) => Precision::Inexact(v),
                _ => Precision::Absent,
            }
        };
        let mut c = ColumnStatistics::new_unknown();
        c.null_count = self.nulls.map_or(Precision::Absent, Precision::Exact);
        c.min_value = value(&self.min);
        c.max_value = value(&self.max);
        c
    }
}

/// FNV-1a: the file name must be the same in every process and release (std's hasher is not
/// guaranteed to be).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl Cache<TableScopedPath, CachedFileMetadata> for RowCountCache {
    fn get(&self, key: &TableScopedPath) -> Option<CachedFileMetadata> {
        self.entries.lock().expect("row count cache lock").get(&key.path).cloned()
    }

    fn put(&self, key: &TableScopedPath, value: CachedFileMetadata) -> Option<CachedFileMetadata> {
        if let Precision::Exact(rows) = value.statistics.num_rows
            && *value.schema_fingerprint == *self.fingerprint
        {
            self.append(&value.meta, rows, &value.statistics.column_statistics);
        }
        self.entries.lock().expect("row count cache lock").insert(key.path.clone(), value)
    }

    fn remove(&self, key: &TableScopedPath) -> Option<CachedFileMetadata> {
        self.entries.lock().expect("row count cache lock").remove(&key.path)
    }

    fn contains_key(&self, key: &TableScopedPath) -> bool {
        self.entries.lock().expect("row count cache lock").contains_key(&key.path)
    }

    fn len(&self) -> usize {
        self.entries.lock().expect("row count cache lock").len()
    }

    fn clear(&self) {
        self.entries.lock().expect("row count cache lock").clear();
    }

    fn name(&self) -> String {
        "trackiq_row_counts".into()
    }

    fn cache_limit(&self) -> usize {
        usize::MAX
    }

    fn update_cache_limit(&self, _limit: usize) {}

    fn cache_ttl(&self) -> Option<Duration> {
        None
    }

    fn update_cache_ttl(&self, _ttl: Option<Duration>) {}

    fn drop_table_entries(&self, _table: &datafusion::common::TableReference) -> datafusion::common::Result<()> {
        // One cache per table: its entries are all of it.
        self.clear();
        Ok(())
    }

    fn list_entries(&self) -> datafusion::common::HashMap<TableScopedPath, CacheEntryInfo<CachedFileMetadata>> {
        let entries = self.entries.lock().expect("row count cache lock");
        entries
            .iter()
            .map(|(path, value)| {
                let key = TableScopedPath { table: None, path: path.clone() };
                (key, CacheEntryInfo { value: value.clone(), size_bytes: CacheValue::size(value), hits: 0, expires: None })
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "row_count_cache_tests.rs"]
mod tests;

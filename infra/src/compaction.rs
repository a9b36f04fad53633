//! Compaction commit records and what readers see.
//!
//! The archiver writes many small objects per date partition; a compactor merges them into
//! large sorted objects. The merge has to be atomic for readers although an object store can
//! only put single objects atomically, so a compaction commits with one object:
//!
//! 1. it writes its outputs as `<table>/date=D/c-<id>-<n>.parquet` (not yet visible);
//! 2. it creates `<table>/_compactions/<id>.json`, a [`CompactionRecord`] naming its inputs
//!    and outputs, with a create-if-absent put (the commit point);
//! 3. it deletes its inputs.
//!
//! Readers ([`crate::tables::session`] through [`crate::visible_store::VisibleStore`]) see
//! an output only when its record exists, and never an input a record names. So at any
//! point of a crash every row is visible exactly once; a restarted compactor finishes
//! (deletes inputs that a record names) or rolls back (deletes outputs without a record).
//! Records stay: the archiver reads which offsets their inputs held (see
//! `trackiq_processors::archiver`), since the inputs' names are gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use serde::{Deserialize, Serialize};

use crate::error::InfraError;
use crate::store::DataStore;

/// Directory of commit records inside a table's directory.
pub const RECORDS_DIR: &str = "_compactions";
/// File-name prefix of compaction outputs: `c-<id>-<n>.parquet`.
pub const OUTPUT_PREFIX: &str = "c-";

/// An output object of a compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactedObject {
    /// File name inside the date partition.
    pub name: String,
    /// Rows it holds.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The commit record of one compaction: `<table>/_compactions/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionRecord {
    /// Identity of the compaction: a digest of its table, date and input names.
    pub id: String,
    /// Table the objects belong to.
    pub table: String,
    /// Date partition (`YYYY-MM-DD`) the inputs and outputs are in.
    pub date: String,
    /// File names of the merged objects (in the date partition); hidden once committed.
    pub inputs: Vec<String>,
    /// The objects written; visible once committed.
    pub outputs: Vec<CompactedObject>,
    /// When it was committed, in milliseconds since the epoch.
    pub committed_at_ms: i64,
}

impl CompactionRecord {
    /// Object name of the record, relative to trackiq's data.
    pub fn object(table: &str, id: &str) -> String {
        format!("{table}/{RECORDS_DIR}/{id}.json")
    }
}

/// The id of a compaction output's name (`c-<id>-<n>.parquet`), if it is one.
pub fn output_id(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_prefix(OUTPUT_PREFIX)?.strip_suffix(".parquet")?;
    stem.rsplit_once('-').map(|(id, _)| id)
}

/// Every commit record of `table`.
pub async fn records(store: &DataStore, table: &str) -> Result<Vec<CompactionRecord>, InfraError> {
    let mut out = Vec::new();
    for meta in store.list(&format!("{table}/{RECORDS_DIR}")).await? {
        if meta.location.extension() == Some("json") {
            out.push(read_record(&store.object_store(), &meta.location).await?);
        }
    }
    Ok(out)
}

/// Records read so far in this process, by store and path. A committed record never
/// changes, so each is fetched once however many queries, passes and archiver starts list
/// the table (records accumulate: one per merge).
static READ: LazyLock<Mutex<HashMap<String, CompactionRecord>>> = LazyLock::new(Mutex::default);

/// The commit record at `location` of `store`, from the process-wide cache or the store.
pub async fn read_record(store: &Arc<dyn ObjectStore>, location: &Path) -> Result<CompactionRecord, InfraError> {
    let key = format!("{store}#{location}");
    if let Some(r) = READ.lock().expect("record cache").get(&key) {
        return Ok(r.clone());
    }
    let err = |source| InfraError::ObjectStore { path: location.to_string(), source };
    let bytes = store.get(location).await.map_err(err)?.bytes().await.map_err(err)?;
    let record = parse_record(location.as_ref(), &bytes)?;
    READ.lock().expect("record cache").insert(key, record.clone());
    Ok(record)
}

/// Parses a commit record read from `object`.
pub fn parse_record(object: &str, bytes: &[u8]) -> Result<CompactionRecord, InfraError> {
    serde_json::from_slice(bytes).map_err(|e| InfraError::CompactionRecord { object: object.to_string(), reason: e.to_string() })
}

/// Which objects of a table readers must not see, from its commit records.
#[derive(Debug, Default, Clone)]
pub struct Visibility {
    /// Ids with a commit record.
    committed: HashSet<String>,
    /// `date=D/name` of every input a record names.
    replaced: HashSet<String>,
}

impl Visibility {
    /// The visibility the given records make.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a CompactionRecord>) -> Self {
        let mut v = Visibility::default();
        for r in records {
            v.committed.insert(r.id.clone());
            v.replaced.extend(r.inputs.iter().map(|i| format!("date={}/{i}", r.date)));
        }
        v
    }

    /// The visibility the records make for one listing of the table, whose objects are
    /// `listed` (`date=D/name`). A listing taken before a compaction's outputs were written
    /// still holds all its inputs (they are deleted only after the record), while the record
    /// may be read after it was created: such a record is left out for this listing, or the
    /// reader would hide the inputs and see no outputs, and lose their rows.
    pub fn of_listing<'a>(records: impl IntoIterator<Item = &'a CompactionRecord>, listed: &HashSet<String>) -> Self {
        let seen = |r: &CompactionRecord, f: &str| listed.contains(&format!("date={}/{f}", r.date));
        let before_outputs = |r: &CompactionRecord| r.inputs.iter().any(|i| seen(r, i)) && r.outputs.iter().any(|o| !seen(r, &o.name));
        Visibility::of(records.into_iter().filter(|r| !before_outputs(r)))
    }

    /// Whether the object `file_name` in partition directory `date_dir` (`date=D`) is part
    /// of the table now.
    pub fn shows(&self, date_dir: &str, file_name: &str) -> bool {
        // An output can itself be merged again later: then a record names it as an input.
        let committed = output_id(file_name).is_none_or(|id| self.committed.contains(id));
        committed && !self.replaced.contains(&format!("{date_dir}/{file_name}"))
    }

    /// Whether a compaction with this id is committed.
    pub fn is_committed(&self, id: &str) -> bool {
        self.committed.contains(id)
    }
}

/// Records by id, for callers that need the whole set.
pub fn by_id(records: Vec<CompactionRecord>) -> HashMap<String, CompactionRecord> {
    records.into_iter().map(|r| (r.id.clone(), r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, inputs: &[&str]) -> CompactionRecord {
        CompactionRecord {
            id: id.into(),
            table: "samples".into(),
            date: "2026-12-04".into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![CompactedObject { name: format!("c-{id}-0.parquet"), rows: 10, bytes: 100 }],
            committed_at_ms: 0,
        }
    }

    #[test]
    fn committed_outputs_replace_their_inputs_and_uncommitted_ones_stay_hidden() {
        let v = Visibility::of(&[record("ab12", &["t-0000-1-2.parquet"])]);
        assert!(v.shows("date=2026-12-04", "c-ab12-0.parquet"));
        assert!(!v.shows("date=2026-12-04", "c-ffff-0.parquet"), "no record: a compaction in progress or abandoned");
        assert!(!v.shows("date=2026-12-04", "t-0000-1-2.parquet"));
        assert!(v.shows("date=2026-12-05", "t-0000-1-2.parquet"), "same name in another partition");
        assert!(v.shows("date=2026-12-04", "t-0000-3-4.parquet"));
        // The output merged again by a later compaction is replaced too.
        let v = Visibility::of(&[record("ab12", &["t-0000-1-2.parquet"]), record("cd34", &["c-ab12-0.parquet", "t-0000-3-4.parquet"])]);
        assert!(!v.shows("date=2026-12-04", "c-ab12-0.parquet"));
        assert!(v.shows("date=2026-12-04", "c-cd34-0.parquet"));
    }

    #[test]
    fn a_listing_taken_before_the_outputs_were_written_keeps_the_inputs() {
        let r = record("ab12", &["t-0000-1-2.parquet", "t-0000-3-4.parquet"]);
        let listed = |names: &[&str]| names.iter().map(|n| format!("date=2026-12-04/{n}")).collect::<HashSet<_>>();
        // Listed before the output was put, record read after it was committed: inputs stay.
        let v = Visibility::of_listing(&[r.clone()], &listed(&["t-0000-1-2.parquet", "t-0000-3-4.parquet"]));
        assert!(v.shows("date=2026-12-04", "t-0000-1-2.parquet") && v.shows("date=2026-12-04", "t-0000-3-4.parquet"));
        // Listed after the output was put: the output replaces the inputs (deleted or not yet).
        let v = Visibility::of_listing(&[r.clone()], &listed(&["t-0000-1-2.parquet", "c-ab12-0.parquet"]));
        assert!(v.shows("date=2026-12-04", "c-ab12-0.parquet") && !v.shows("date=2026-12-04", "t-0000-1-2.parquet"));
        let v = Visibility::of_listing(&[r], &listed(&["c-ab12-0.parquet"]));
        assert!(v.shows("date=2026-12-04", "c-ab12-0.parquet"));
    }

    #[test]
    fn output_names_parse_and_archiver_names_are_not_outputs() {
        assert_eq!(output_id("c-0123abcd-0.parquet"), Some("0123abcd"));
        assert_eq!(output_id("trackiq.samples-0000-00000000000000000001-00000000000000000002-iab.parquet"), None);
        assert_eq!(output_id("c-0123abcd-0.json"), None);
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_it() {
        let e = parse_record("samples/_compactions/x.json", b"{\"id\":").unwrap_err().to_string();
        assert!(e.contains("samples/_compactions/x.json"), "{e}");
    }
}

//! Compactor: merges a date partition's small archiver objects into large objects sorted by
//! run, metric and time, with row groups sized for pruning and page statistics (the column
//! and offset indexes), so that SQL over the history reads few files and skips most pages.
//!
//! Each merge commits atomically through a record (see [`trackiq_infra::compaction`]): the
//! outputs are invisible until the record exists and the inputs invisible from then on, so
//! readers see every row exactly once whenever the compactor stops. [`Compactor::pass`]
//! first [`Compactor::recover`]s what an earlier, interrupted pass left: it deletes inputs a
//! record names (finishing; after `retain_secs`, so queries planned before the commit can
//! still read them) and outputs no record names (rolling back). One compactor runs
//! per history (the `compactor` role of `trackiq up`, or `trackiq compact`).
//!
//! Memory: a merge sorts `merge::RUN_ROWS` rows at a time into compressed sorted runs, then
//! merges the runs as streams (one small batch of each), plus one row group being written and
//! the compressed output; `target_rows` sizes the objects, not the memory.

mod merge;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use trackiq_infra::DataStore;
use trackiq_infra::compaction::{self, CompactionRecord, OUTPUT_PREFIX, Visibility, output_id};

use crate::error::ProcessorError;

/// Compactor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// Seconds between the passes of the `compactor` role of `trackiq up`.
    pub interval_secs: u64,
    /// Merge a date partition once it holds at least this many small objects.
    pub min_objects: usize,
    /// Rows per compacted object; a merge reads about this many rows into memory.
    pub target_rows: usize,
    /// Rows per Parquet row group of a compacted object: the unit that min/max statistics
    /// skip (pages inside it are skipped through the page index).
    pub row_group_rows: usize,
    /// Keep merged inputs this long after the commit before deleting them (readers no longer
    /// list them), so a query planned just before a commit can still read what it listed.
    pub retain_secs: u64,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig { interval_secs: 300, min_objects: 4, target_rows: 1_000_000, row_group_rows: 128 * 1024, retain_secs: 600 }
    }
}

/// An object of a date partition, as the compactor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionObject {
    /// File name inside the date partition.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The visible objects of one table's date partitions, and what recovery must delete.
#[derive(Debug, Default)]
struct TableListing {
    /// `date -> visible objects`, names sorted.
    visible: BTreeMap<String, Vec<PartitionObject>>,
    /// Objects readers no longer see and no query needs: committed inputs past the
    /// retention, uncommitted outputs.
    leftovers: Vec<String>,
    /// Rows of committed outputs, by file name.
    output_rows: BTreeMap<String, u64>,
}

/// What a pass did, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    /// Visible objects and their bytes before the pass.
    pub objects_before: usize,
    pub bytes_before: u64,
    /// Visible objects and their bytes after the pass.
    pub objects_after: usize,
    pub bytes_after: u64,
    /// Merges committed.
    pub merges: usize,
    /// Rows rewritten.
    pub rows: u64,
    /// Objects deleted: what an interrupted pass left, and merged inputs past retention.
    pub recovered: usize,
}

/// Merges small objects of the history.
pub struct Compactor {
    store: DataStore,
    config: CompactorConfig,
}

impl Compactor {
    pub fn new(store: DataStore, config: CompactorConfig) -> Self {
        Compactor { store, config }
    }

    /// Lists `table`: the visible objects per date, and the leftovers of interrupted passes.
    async fn listing(&self, table: &str) -> Result<TableListing, ProcessorError> {
        let records = compaction::records(&self.store, table).await?;
        let visibility = Visibility::of(&records);
        let mut listing = TableListing::default();
        let expired_before = trackiq_schemas::now_us() / 1000 - (self.config.retain_secs as i64).saturating_mul(1000);
        let mut retained: HashSet<String> = HashSet::new();
        for r in &records {
            listing.output_rows.extend(r.outputs.iter().map(|o| (o.name.clone(), o.rows)));
            if r.committed_at_ms > expired_before {
                retained.extend(r.inputs.iter().map(|i| format!("{}/date={}/{i}", r.table, r.date)));
            }
        }
        for meta in self.store.list(table).await? {
            let rel = self.store.relative(&meta.location);
            let parts: Vec<&str> = rel.split('/').collect();
            let [_, date_dir, name] = parts[..] else { continue };
            let (Some(date), true) = (date_dir.strip_prefix("date="), name.ends_with(".parquet")) else { continue };
            if visibility.shows(date_dir, name) {
                listing.visible.entry(date.to_string()).or_default().push(PartitionObject { name: name.to_string(), bytes: meta.size });
            } else if !retained.contains(&rel) {
                listing.leftovers.push(rel);
            }
        }
        for objects in listing.visible.values_mut() {
            objects.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(listing)
    }

    /// Deletes what interrupted passes left in `table`, and merged inputs past their
    /// retention; returns how many objects.
    pub async fn recover(&self, table: &str) -> Result<usize, ProcessorError> {
        let listing = self.listing(table).await?;
        for rel in &listing.leftovers {
            info!(object = %rel, "compaction recovery: deleting an object readers no longer see");
            self.store.delete(rel).await?;
        }
        Ok(listing.leftovers.len())
    }

    /// The merges a pass would make in `table`: per date, groups of small objects of about
    /// `target_rows` rows (by name, so a repeated plan over the same objects is the same).
    async fn plan(&self, table: &str) -> Result<(TableListing, Vec<(String, Vec<PartitionObject>)>), ProcessorError> {
        let listing = self.listing(table).await?;
        let target = self.config.target_rows as u64;
        let mut merges = Vec::new();
        for (date, objects) in &listing.visible {
            // Outputs already near the target stay as they are.
            let small: Vec<&PartitionObject> = objects
                .iter()
                .filter(|o| output_id(&o.name).is_none() || listing.output_rows.get(&o.name).is_some_and(|&r| r < target / 2))
                .collect();
            if small.len() < self.config.min_objects.max(2) {
                continue;
            }
            let mut group: Vec<PartitionObject> = Vec::new();
            let mut rows = 0u64;
            for o in small {
                let n = match listing.output_rows.get(&o.name) {
                    Some(&r) => r,
                    None => merge::row_count(&self.store, &format!("{table}/date={date}/{}", o.name), o.bytes).await?,
                };
                if !group.is_empty() && rows + n > target {
                    merges.push((date.clone(), std::mem::take(&mut group)));
                    rows = 0;
                }
                group.push(o.clone());
                rows += n;
            }
            merges.push((date.clone(), group));
        }
        merges.retain(|(_, g)| g.len() >= 2);
        Ok((listing, merges))
    }

    /// One pass over `tables`: recovery, then every planned merge. `progress` is told each
    /// merge as it is committed.
    pub async fn pass(&self, tables: &[&str], mut progress: impl FnMut(&str, &str, usize)) -> Result<Vec<TableReport>, ProcessorError> {
        let mut reports = Vec::new();
        for &table in tables {
            let recovered = self.recover(table).await?;
            let (before, merges) = self.plan(table).await?;
            let mut report = TableReport { table: table.to_string(), recovered, ..Default::default() };
            report.objects_before = before.visible.values().map(Vec::len).sum();
            report.bytes_before = before.visible.values().flatten().map(|o| o.bytes).sum();
            for (date, inputs) in &merges {
                let record = self.merge(table, date, inputs).await?;
                report.merges += 1;
                report.rows += record.outputs.iter().map(|o| o.rows).sum::<u64>();
                progress(table, date, inputs.len());
            }
            // Inputs go now when nothing retains them (`retain_secs = 0`), else in a later pass.
            report.recovered += self.recover(table).await?;
            let after = self.listing(table).await?;
            report.objects_after = after.visible.values().map(Vec::len).sum();
            report.bytes_after = after.visible.values().flatten().map(|o| o.bytes).sum();
            if report.merges > 0 || recovered > 0 {
                info!(table, merges = report.merges, rows = report.rows, objects_before = report.objects_before, objects_after = report.objects_after, recovered, "compacted");
            }
            reports.push(report);
        }
        Ok(reports)
    }

    /// Merges `inputs` of one date partition: write the output and commit. The inputs are
    /// deleted by a later [`Compactor::recover`], once `retain_secs` have passed.
    pub async fn merge(&self, table: &str, date: &str, inputs: &[PartitionObject]) -> Result<CompactionRecord, ProcessorError> {
        let record = self.write_output(table, date, inputs).await?;
        self.commit(&record).await?;
        Ok(record)
    }

    /// Step 1: the merged, sorted output, not yet visible. Returns the record to commit.
    pub async fn write_output(&self, table: &str, date: &str, inputs: &[PartitionObject]) -> Result<CompactionRecord, ProcessorError> {
        let names: Vec<String> = inputs.iter().map(|o| o.name.clone()).collect();
        let id = merge_id(table, date, &names);
        let output = format!("{OUTPUT_PREFIX}{id}-0.parquet");
        let paths: Vec<String> = names.iter().map(|n| format!("{table}/date={date}/{n}")).collect();
        let written = merge::sorted_object(&self.store, table, &paths, &format!("{table}/date={date}/{output}"), self.config.row_group_rows).await?;
        debug!(table, date, inputs = names.len(), rows = written.rows, bytes = written.bytes, "compaction output written");
        Ok(CompactionRecord {
            id,
            table: table.to_string(),
            date: date.to_string(),
            inputs: names,
            outputs: vec![compaction::CompactedObject { name: output, rows: written.rows, bytes: written.bytes }],
            committed_at_ms: trackiq_schemas::now_us() / 1000,
        })
    }

    /// Step 2: the commit point. Committing a record that exists already is a no-op (a
    /// restarted pass made the same merge).
    pub async fn commit(&self, record: &CompactionRecord) -> Result<(), ProcessorError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a record serialises");
        self.store.put_new(&CompactionRecord::object(&record.table, &record.id), bytes).await?;
        Ok(())
    }

}

/// A merge's id: a digest of its table, date and input names, so that redoing the same merge
/// after a crash writes the same output name.
fn merge_id(table: &str, date: &str, inputs: &[String]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [table, date].into_iter().chain(inputs.iter().map(String::as_str)) {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

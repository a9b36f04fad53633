//! The object store as readers of the history see it: listings leave out what a compaction
//! replaced and what an unfinished compaction wrote (see [`crate::compaction`]). Reads,
//! writes and everything else go straight to the store.
//!
//! Visibility is worked out at every listing from the table's commit records (records are
//! immutable, so each is fetched once per process, see [`crate::compaction::read_record`]): a query planned after a compaction
//! commits sees its outputs, one planned before sees its inputs, none sees both.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

use crate::compaction::{RECORDS_DIR, Visibility, read_record};

/// An [`ObjectStore`] whose listings show only the visible objects of the history.
#[derive(Debug)]
pub struct VisibleStore {
    inner: Arc<dyn ObjectStore>,
}

impl VisibleStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        VisibleStore { inner }
    }
}

impl std::fmt::Display for VisibleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "visible history over {}", self.inner)
    }
}

/// Where an object sits in a table: its table directory, `date=D`, and its file name. None
/// for objects outside a date partition (commit records, reports).
fn placement(location: &Path) -> Option<(Path, String, String)> {
    let parts: Vec<String> = location.parts().map(|p| p.as_ref().to_string()).collect();
    let n = parts.len();
    if n < 2 || !parts[n - 2].starts_with("date=") {
        return None;
    }
    // The parts themselves, not their text: text would be escaped a second time.
    let table_dir = Path::from_iter(location.parts().take(n - 2));
    Some((table_dir, parts[n - 2].clone(), parts[n - 1].clone()))
}

/// The visibility of the table in `table_dir` for a listing holding `objects` (`date=D/name`),
/// from its commit records (read after the listing).
async fn visibility(inner: &Arc<dyn ObjectStore>, table_dir: &Path, objects: &HashSet<String>) -> Result<Visibility> {
    let dir = table_dir.clone().join(RECORDS_DIR);
    let listed: Vec<ObjectMeta> = inner.list(Some(&dir)).try_collect().await?;
    let mut records = Vec::with_capacity(listed.len());
    for meta in listed.into_iter().filter(|m| m.location.extension() == Some("json")) {
        let record = read_record(inner, &meta.location)
            .await
            .map_err(|e| object_store::Error::Generic { store: "trackiq history", source: Box::new(e) })?;
        records.push(record);
    }
    Ok(Visibility::of_listing(&records, objects))
}

/// `objects` without those the commit records of their tables hide.
async fn visible(inner: &Arc<dyn ObjectStore>, objects: Vec<ObjectMeta>) -> Result<Vec<ObjectMeta>> {
    let mut listed: HashMap<Path, HashSet<String>> = HashMap::new();
    for meta in &objects {
        if let Some((table_dir, date_dir, file)) = placement(&meta.location) {
            listed.entry(table_dir).or_default().insert(format!("{date_dir}/{file}"));
        }
    }
    let mut tables: HashMap<Path, Visibility> = HashMap::new();
    let mut out = Vec::with_capacity(objects.len());
    for meta in objects {
        let Some((table_dir, date_dir, file)) = placement(&meta.location) else {
            out.push(meta);
            continue;
        };
        if !tables.contains_key(&table_dir) {
            let v = visibility(inner, &table_dir, &listed[&table_dir]).await?;
            tables.insert(table_dir.clone(), v);
        }
        if tables[&table_dir].shows(&date_dir, &file) {
            out.push(meta);
        }
    }
    Ok(out)
}

#[async_trait]
impl ObjectStore for VisibleStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, prefix) = (self.inner.clone(), prefix.cloned());
        futures::stream::once(async move {
            let all: Vec<ObjectMeta> = inner.list(prefix.as_ref()).try_collect().await?;
            visible(&inner, all).await
        })
        .map_ok(|objects| futures::stream::iter(objects.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = visible(&self.inner, listed.objects).await?;
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The objects under `rel` (inside trackiq's data) that readers of the history see.
pub async fn visible_objects(store: &crate::DataStore, rel: &str) -> std::result::Result<Vec<ObjectMeta>, crate::InfraError> {
    let path = store.path(rel);
    VisibleStore::new(store.object_store())
        .list(Some(&path))
        .try_collect()
        .await
        .map_err(|source| crate::InfraError::ObjectStore { path: path.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_in_date_partitions_are_placed_in_their_table() {
        let (table, date, file) = placement(&Path::from("data/samples/date=2026-12-04/c-ab-0.parquet")).unwrap();
        assert_eq!((table.as_ref(), date.as_str(), file.as_str()), ("data/samples", "date=2026-12-04", "c-ab-0.parquet"));
        assert!(placement(&Path::from("data/samples/_compactions/ab.json")).is_none());
        // A directory name that object paths escape stays the same directory.
        let odd = Path::from_iter(["tmp", "a {b} c", "samples", "date=2026-12-04", "x.parquet"]);
        let (table, _, _) = placement(&odd).unwrap();
        assert_eq!(table, Path::from_iter(["tmp", "a {b} c", "samples"]));
    }
}

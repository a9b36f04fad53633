//! Compaction against a real (file) object store with objects the real archiver wrote, and
//! the history read back through DataFusion at every point a compactor can stop.

use std::time::{Duration, Instant};

use trackiq_infra::DataStore;
use trackiq_infra::runtime::Position;
use trackiq_infra::tables::query_rows;
use trackiq_schemas::{AnyEvent, Sample, SampleBatch};

use super::*;
use crate::archiver::Archive;

const INCARNATION: &str = "86f0f83576546345";
/// 2026-12-04T00:00:00Z in microseconds: every object lands in one date partition.
const DAY_US: i64 = 1_796_342_400_000_000;

fn temp_store(name: &str) -> (DataStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("trackiq-compactor-{name}-{}-{:?}", std::process::id(), Instant::now()));
    (DataStore::open(&format!("file://{}", dir.display())).unwrap(), dir)
}

/// Writes `objects` archiver objects of `per_object` records each; record `i` is a batch of
/// 3 samples of run `r{i % 5}` with two metrics, offsets in arrival order.
async fn archive(store: &DataStore, objects: i64, per_object: i64) {
    let mut archive = Archive::open(store.clone(), INCARNATION).await.unwrap();
    for offset in 0..objects * per_object {
        let samples = (0..3)
            .map(|k| Sample {
                ts_us: DAY_US + offset * 1000 + k,
                metric: if k == 2 { "tokens_per_s".into() } else { "latency_ms".into() },
                value: (offset * 3 + k) as f64,
                unit: "ms".into(),
                rank: None,
                step: Some(offset),
            })
            .collect();
        let batch = SampleBatch { run_id: format!("r{}", offset % 5), seq: offset, samples };
        let position = Position { topic: "t.runs".into(), partition: 0, offset };
        assert!(archive.add(&position, Some(DAY_US / 1000), AnyEvent::SampleBatch(batch)));
        if (offset + 1) % per_object == 0 {
            for slot in archive.due(usize::MAX, Duration::MAX, true) {
                archive.flush(&slot).await.unwrap();
            }
        }
    }
}

/// Every sample row as readers see it, in one fixed order.
async fn rows(store: &DataStore) -> Vec<String> {
    query_rows(store, "SELECT run_id, metric, ts, value, kafka_offset FROM samples ORDER BY kafka_offset, ts")
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::Value::Object(r.clone()).to_string())
        .collect()
}

/// Names of the `samples` objects readers list.
async fn visible_files(store: &DataStore) -> Vec<String> {
    let listed = trackiq_infra::visible_store::visible_objects(store, "samples").await.unwrap();
    listed.iter().filter_map(|m| m.location.filename().filter(|n| n.ends_with(".parquet")).map(str::to_string)).collect()
}

fn parquet_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("samples/date=2026-12-04")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet")).count()
}

fn config() -> CompactorConfig {
    CompactorConfig { min_objects: 2, target_rows: 1_000, row_group_rows: 60, retain_secs: 0, ..Default::default() }
}

#[tokio::test]
async fn every_row_is_seen_once_wherever_a_compaction_stops_and_a_restart_finishes_it() {
    let (store, dir) = temp_store("steps");
    archive(&store, 6, 20).await;
    let truth = rows(&store).await;
    assert_eq!((truth.len(), parquet_files(&dir)), (360, 6));
    let compactor = Compactor::new(store.clone(), config());
    let (_, merges) = compactor.plan("samples").await.unwrap();
    assert_eq!(merges.len(), 1, "360 rows fit one output of 1000");
    let (date, inputs) = &merges[0];

    // Stop 1: the output is written but not committed: readers see the inputs only.
    let record = compactor.write_output("samples", date, inputs).await.unwrap();
    assert_eq!(parquet_files(&dir), 7);
    assert_eq!(rows(&store).await, truth, "an uncommitted output is invisible");
    assert_eq!(visible_files(&store).await.len(), 6, "readers list the inputs alone");
    // Stop 2: committed, inputs not yet deleted: readers see the output only.
    compactor.commit(&record).await.unwrap();
    assert_eq!(rows(&store).await, truth, "committed inputs are invisible");
    assert_eq!(visible_files(&store).await, [record.outputs[0].name.clone()], "readers list the output alone");
    // A restart's pass finishes the work (deletes the inputs) and merges nothing again.
    let report = compactor.pass(&["samples"], |_, _, _| {}).await.unwrap();
    assert_eq!((report[0].recovered, report[0].merges, report[0].objects_after), (6, 0, 1), "{report:?}");
    assert_eq!(parquet_files(&dir), 1);
    assert_eq!(rows(&store).await, truth);

    // The archiver, reopened, still knows every merged offset through the record.
    let mut again = Archive::open(store.clone(), INCARNATION).await.unwrap();
    let batch = SampleBatch { run_id: "r0".into(), seq: 0, samples: vec![] };
    assert!(!again.add(&Position { topic: "t.runs".into(), partition: 0, offset: 119 }, None, AnyEvent::SampleBatch(batch.clone())));
    assert!(again.add(&Position { topic: "t.runs".into(), partition: 0, offset: 120 }, None, AnyEvent::SampleBatch(batch)));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_uncommitted_output_is_rolled_back_and_the_merge_redone() {
    let (store, dir) = temp_store("rollback");
    archive(&store, 4, 10).await;
    let truth = rows(&store).await;
    let compactor = Compactor::new(store.clone(), config());
    let (_, merges) = compactor.plan("samples").await.unwrap();
    let (date, inputs) = &merges[0];
    compactor.write_output("samples", date, inputs).await.unwrap();
    // More objects arrive before the restart: the new plan is another merge (another id).
    archive_more(&store).await;
    let truth_more = rows(&store).await;
    assert!(truth_more.len() > truth.len());
    let report = compactor.pass(&["samples"], |_, _, _| {}).await.unwrap();
    // Recovery deleted the abandoned output (1); the new merge's 5 inputs went at its end (retain_secs = 0).
    assert_eq!((report[0].recovered, report[0].merges, report[0].objects_after), (6, 1, 1), "{report:?}");
    assert_eq!(rows(&store).await, truth_more);
    let _ = std::fs::remove_dir_all(dir);
}

/// One more object, offsets after those of [`archive`]'s 4 × 10.
async fn archive_more(store: &DataStore) {
    let mut archive = Archive::open(store.clone(), INCARNATION).await.unwrap();
    let s = Sample { ts_us: DAY_US + 1, metric: "latency_ms".into(), value: 9.0, unit: "ms".into(), rank: None, step: None };
    let batch = SampleBatch { run_id: "r9".into(), seq: 0, samples: vec![s] };
    assert!(archive.add(&Position { topic: "t.runs".into(), partition: 0, offset: 40 }, Some(DAY_US / 1000), AnyEvent::SampleBatch(batch)));
    for slot in archive.due(usize::MAX, Duration::MAX, true) {
        archive.flush(&slot).await.unwrap();
    }
}

#[tokio::test]
async fn compacted_objects_are_sorted_and_a_run_filter_prunes_row_groups() {
    let (store, dir) = temp_store("prune");
    archive(&store, 6, 20).await;
    Compactor::new(store.clone(), config()).pass(&["samples"], |_, _, _| {}).await.unwrap();
    let sorted = query_rows(&store, "SELECT run_id, metric FROM samples").await.unwrap();
    let keys: Vec<(String, String)> = sorted.iter().map(|r| (r["run_id"].as_str().unwrap().into(), r["metric"].as_str().unwrap().into())).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "one scan of the single object returns rows in run, metric order");
    let plan = query_rows(&store, "EXPLAIN ANALYZE SELECT sum(value) AS s FROM samples WHERE run_id = 'r3'").await.unwrap();
    let text = plan.iter().filter_map(|r| r.get("plan").and_then(|p| p.as_str())).collect::<Vec<_>>().join("\n");
    // 360 rows in row groups of 60 sorted by run: the 72 rows of r3 are in 2 of the 6.
    let pruned = text.split("row_groups_pruned_statistics=").nth(1).unwrap_or_else(|| panic!("no pruning metrics in {text}"));
    eprintln!("row_groups_pruned_statistics={}", pruned.split(',').next().unwrap());
    assert!(pruned.starts_with("6 total → 2 matched"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn merged_inputs_stay_for_the_retention_but_are_not_listed() {
    let (store, dir) = temp_store("retain");
    archive(&store, 3, 10).await;
    let truth = rows(&store).await;
    let compactor = Compactor::new(store.clone(), CompactorConfig { retain_secs: 600, ..config() });
    let report = compactor.pass(&["samples"], |_, _, _| {}).await.unwrap();
    assert_eq!((report[0].merges, report[0].recovered, report[0].objects_after), (1, 0, 1), "{report:?}");
    assert_eq!(parquet_files(&dir), 4, "the 3 inputs are still there for queries planned before the commit");
    assert_eq!(visible_files(&store).await.len(), 1);
    assert_eq!(rows(&store).await, truth);
    // Past the retention (none now), the next pass deletes them.
    let report = Compactor::new(store.clone(), config()).pass(&["samples"], |_, _, _| {}).await.unwrap();
    assert_eq!((report[0].merges, report[0].recovered), (0, 3), "{report:?}");
    assert_eq!(parquet_files(&dir), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn repeated_passes_over_a_growing_partition_keep_every_row_once() {
    let (store, dir) = temp_store("growing");
    let mut archive = Archive::open(store.clone(), INCARNATION).await.unwrap();
    let retaining = Compactor::new(store.clone(), CompactorConfig { retain_secs: 600, ..config() });
    for offset in 0..8i64 {
        let s = Sample { ts_us: DAY_US + offset, metric: "latency_ms".into(), value: offset as f64, unit: "ms".into(), rank: None, step: None };
        let batch = SampleBatch { run_id: format!("r{offset}"), seq: 0, samples: vec![s] };
        assert!(archive.add(&Position { topic: "t.runs".into(), partition: 0, offset }, Some(DAY_US / 1000), AnyEvent::SampleBatch(batch)));
        for slot in archive.due(usize::MAX, Duration::MAX, true) {
            archive.flush(&slot).await.unwrap();
        }
        retaining.pass(&["samples"], |_, _, _| {}).await.unwrap();
        assert_eq!(rows(&store).await.len(), offset as usize + 1, "after the pass following offset {offset}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

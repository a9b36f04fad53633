//! Partitions moving between archiver instances, restarts and records the log holds twice,
//! against a real (file) object store.

use std::time::Instant;

use trackiq_infra::DataStore;
use trackiq_infra::runtime::Position;
use trackiq_schemas::{AnyEvent, Sample, SampleBatch};

use super::Archive;

fn batch(seq: i64) -> AnyEvent {
    let s = Sample { ts_us: 1_700_000_000_000_000 + seq, metric: "latency_ms".into(), value: 1.0, unit: "ms".into(), rank: None, step: Some(seq) };
    AnyEvent::SampleBatch(SampleBatch { run_id: "r".into(), seq, samples: vec![s] })
}

fn at(partition: i32, offset: i64) -> Position {
    Position { topic: "t.runs".into(), partition, offset }
}

fn temp_store(what: &str) -> (std::path::PathBuf, DataStore) {
    let dir = std::env::temp_dir().join(format!("trackiq-{what}-{}-{:?}", std::process::id(), Instant::now()));
    let store = DataStore::open(&format!("file://{}", dir.display())).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_batch_the_log_holds_twice_is_archived_once_also_after_a_restart() {
    let (dir, store) = temp_store("repeats");
    let mut archive = Archive::open(store.clone(), "86f0f83576546345").await.unwrap();
    assert!(archive.add(&at(0, 0), None, batch(0)));
    assert!(!archive.add(&at(0, 1), None, batch(0)), "the producer's retry, buffered original: skipped");
    assert!(archive.add(&at(0, 2), None, batch(1)));
    let slot = archive.due(1, std::time::Duration::ZERO, true).pop().unwrap();
    let flushed = archive.flush(&slot).await.unwrap().unwrap();
    assert_eq!((flushed.offsets, flushed.rows), (vec![0, 2], 2));
    // A restart: the original is in an object; its repeat at a later offset is not written.
    let mut restarted = Archive::open(store.clone(), "86f0f83576546345").await.unwrap();
    assert!(!restarted.add(&at(0, 3), None, batch(1)), "repeat of an archived batch: skipped");
    assert!(restarted.add(&at(0, 4), None, batch(2)));
    assert!(restarted.add(&at(1, 0), None, batch(0)), "another partition is another log");
    // A new broker (another incarnation) shares nothing with the old one.
    let mut renewed = Archive::open(store, "0123456789abcdef").await.unwrap();
    assert!(renewed.add(&at(0, 0), None, batch(1)));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_revoked_partition_drops_its_rows_and_an_assigned_one_learns_what_the_other_instance_wrote() {
    let (dir, store) = temp_store("handover");
    let mut mine = Archive::open(store.clone(), "86f0f83576546345").await.unwrap();
    let mut other = Archive::open(store.clone(), "86f0f83576546345").await.unwrap();
    // This instance buffers partition 0; it is revoked before the rows are written.
    assert!(mine.add(&at(0, 0), None, batch(0)));
    mine.partitions_changed(&[], &[("t.runs".into(), 0)]).await.unwrap();
    assert_eq!(mine.buffered_rows(), 0, "nothing of a revoked partition is written by its old owner");
    // The other instance owns partition 0 now and archives offsets 0..=1.
    assert!(other.add(&at(0, 0), None, batch(0)));
    assert!(other.add(&at(0, 1), None, batch(1)));
    let slot = other.due(1, std::time::Duration::ZERO, true).pop().unwrap();
    other.flush(&slot).await.unwrap().unwrap();
    // Partition 0 comes back: the offsets written meanwhile are known, later ones are new.
    mine.partitions_changed(&[("t.runs".into(), 0)], &[]).await.unwrap();
    assert!(!mine.add(&at(0, 1), None, batch(1)), "archived by the other instance: skipped");
    assert!(mine.add(&at(0, 2), None, batch(2)));
    let _ = std::fs::remove_dir_all(dir);
}

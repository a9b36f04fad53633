//! Partitions moving between archiver instances, against a real (file) object store.

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

#[tokio::test]
async fn a_revoked_partition_drops_its_rows_and_an_assigned_one_learns_what_the_other_instance_wrote() {
    let dir = std::env::temp_dir().join(format!("trackiq-handover-{}-{:?}", std::process::id(), Instant::now()));
    let store = DataStore::open(&format!("file://{}", dir.display())).unwrap();
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

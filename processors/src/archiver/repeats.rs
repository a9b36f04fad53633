//! Records a producer sent twice. When a broker goes away after appending a record and
//! before acknowledging it, the producer's client sends it again (librdkafka retries until
//! `message.timeout.ms`, 30 s here), and the log holds the same run event at two offsets.
//! Offsets cannot tell them apart; the events' own identity can: a run's start, its finish,
//! its sample batch number `seq`, and the run's one summary and one verdict (the stages'
//! own outputs are produced the same way, and the verdict stage judges a run once). The
//! aggregator counts each batch once for the same reason; the archiver writes each once.
//!
//! The identities seen are kept per partition (a revoked partition forgets them, since its
//! buffered records are dropped unwritten and come back to whoever owns it next), bounded to
//! the most recent [`REMEMBERED_PER_PARTITION`]. After a restart or a partition move they are
//! read back from the objects written in the last [`SEED_WINDOW`] before the newest one of
//! that partition: a repeat follows its original within the producer's timeout, so the
//! original, if archived, is among them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackiq_infra::DataStore;
use trackiq_schemas::AnyEvent;

use super::naming::parse_object_name;
use crate::error::ProcessorError;

/// Identities remembered per partition (~4 MB): more records than one partition receives
/// within a producer's retry timeout at the embedded broker's full rate (~24k records/s over
/// all partitions × 30 s, spread over the runs topic's partitions).
pub const REMEMBERED_PER_PARTITION: usize = 1 << 17;
/// Objects written this long before a partition's newest one are read back at start-up.
pub const SEED_WINDOW: Duration = Duration::from_secs(300);
/// At most this many objects per table and partition are read back at start-up.
pub const SEED_MAX_OBJECTS: usize = 256;

/// `seq` stand-ins for the events of a run that are not sample batches.
const STARTED: i64 = -1;
const FINISHED: i64 = -2;
const SUMMARY: i64 = -3;
const VERDICT: i64 = -4;

/// Tables whose objects are read back, and how a row's identity is formed.
const SEEDED: [(&str, RowIdentity); 4] = [
    ("runs", RowIdentity::StartedOrFinished),
    ("samples", RowIdentity::BatchSeq),
    ("summaries", RowIdentity::Fixed(SUMMARY)),
    ("verdicts", RowIdentity::Fixed(VERDICT)),
];

#[derive(Clone, Copy)]
enum RowIdentity {
    /// `event` column: `started` or `finished`.
    StartedOrFinished,
    /// `batch_seq` column.
    BatchSeq,
    /// One per run.
    Fixed(i64),
}

/// The identity of an event that exists once per run (start, finish, summary, verdict) or
/// once per run and number (sample batch); `None` for the others.
pub fn identity(event: &AnyEvent) -> Option<u64> {
    match event {
        AnyEvent::RunStarted(s) => Some(key(&s.run_id, STARTED)),
        AnyEvent::RunFinished(f) => Some(key(&f.run_id, FINISHED)),
        AnyEvent::SampleBatch(b) => Some(key(&b.run_id, b.seq)),
        AnyEvent::RunSummary(s) => Some(key(&s.run.run_id, SUMMARY)),
        AnyEvent::Verdict(v) => Some(key(&v.run_id, VERDICT)),
        _ => None,
    }
}

/// 64 bits of (run, number): a collision within a window of a million is ~1e-7 likely.
fn key(run_id: &str, seq: i64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (run_id, seq).hash(&mut h);
    h.finish()
}

/// Recent identities of one partition, oldest first out.
#[derive(Default)]
struct Recent {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

/// Identities seen per topic and partition.
#[derive(Default)]
pub struct Repeats {
    partitions: HashMap<(String, i32), Recent>,
}

impl Repeats {
    /// Notes an identity; false when the partition already had it (a repeat).
    pub fn first_time(&mut self, topic: &str, partition: i32, identity: u64) -> bool {
        let recent = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_default();
        if !recent.set.insert(identity) {
            return false;
        }
        recent.order.push_back(identity);
        if recent.order.len() > REMEMBERED_PER_PARTITION
            && let Some(old) = recent.order.pop_front()
        {
            recent.set.remove(&old);
        }
        true
    }

    /// Forgets a partition (revoked: its buffered records are dropped unwritten).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }

    /// Reads back the identities of the recent objects of the tables of run events in log
    /// incarnation `incarnation` for the partitions `wanted` accepts.
    pub async fn seed(
        &mut self,
        store: &DataStore,
        incarnation: &str,
        wanted: impl Fn(&str, i32) -> bool,
    ) -> Result<usize, ProcessorError> {
        let mut read = 0;
        for (table, row_identity) in SEEDED {
            let mut objects: HashMap<(String, i32), Vec<(chrono::DateTime<chrono::Utc>, String)>> =
                HashMap::new();
            for meta in store.list(table).await? {
                let Some(name) = meta.location.filename().and_then(parse_object_name) else {
                    continue;
                };
                if name.incarnation() == incarnation && wanted(&name.topic, name.partition) {
                    objects
                        .entry((name.topic, name.partition))
                        .or_default()
                        .push((meta.last_modified, store.relative(&meta.location)));
                }
            }
            for ((topic, partition), mut list) in objects {
                list.sort_by(|a, b| b.0.cmp(&a.0));
                let newest = list[0].0;
                let window = chrono::Duration::from_std(SEED_WINDOW).expect("a short window");
                for (_, path) in list
                    .into_iter()
                    .take_while(|(at, _)| newest - *at <= window)
                    .take(SEED_MAX_OBJECTS)
                {
                    for identity in identities_in(store, &path, row_identity).await? {
                        self.first_time(&topic, partition, identity);
                    }
                    read += 1;
                }
            }
        }
        Ok(read)
    }
}

/// The identities of the rows of one object.
async fn identities_in(
    store: &DataStore,
    path: &str,
    row_identity: RowIdentity,
) -> Result<Vec<u64>, ProcessorError> {
    let bytes = bytes::Bytes::from(store.get(path).await?);
    let bad = |source| ProcessorError::Parquet {
        object: path.to_string(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(bad)?;
    let columns: &[&str] = match row_identity {
        RowIdentity::StartedOrFinished => &["run_id", "event"],
        RowIdentity::BatchSeq => &["run_id", "batch_seq"],
        RowIdentity::Fixed(_) => &["run_id"],
    };
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let mut out = Vec::new();
    for batch in builder.with_projection(mask).build().map_err(bad)? {
        let batch = batch.map_err(|e| bad(e.into()))?;
        let column = |name: &str| batch.column_by_name(name).cloned();
        let Some(run) = column("run_id") else {
            continue;
        };
        let run = run.as_string::<i32>();
        let seq_of: Box<dyn Fn(usize) -> Option<i64>> = match row_identity {
            RowIdentity::Fixed(seq) => Box::new(move |_| Some(seq)),
            RowIdentity::StartedOrFinished => {
                let Some(event) = column("event") else {
                    continue;
                };
                Box::new(move |i| {
                    Some(if event.as_string::<i32>().value(i) == "started" {
                        STARTED
                    } else {
                        FINISHED
                    })
                })
            }
            RowIdentity::BatchSeq => {
                let Some(seq) = column("batch_seq") else {
                    continue;
                };
                Box::new(move |i| {
                    let seq = seq.as_primitive::<Int64Type>();
                    (!seq.is_null(i)).then(|| seq.value(i))
                })
            }
        };
        out.extend(
            (0..batch.num_rows()).filter_map(|i| seq_of(i).map(|seq| key(run.value(i), seq))),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_caught_per_partition_and_a_forgotten_partition_starts_over() {
        let mut r = Repeats::default();
        assert!(r.first_time("runs", 0, key("a", 1)));
        assert!(!r.first_time("runs", 0, key("a", 1)));
        assert!(
            r.first_time("runs", 1, key("a", 1)),
            "partitions are separate"
        );
        assert!(r.first_time("runs", 0, key("a", 2)));
        r.forget("runs", 0);
        assert!(r.first_time("runs", 0, key("a", 1)));
        assert_ne!(key("a", STARTED), key("a", FINISHED));
        assert_ne!(key("a", SUMMARY), key("a", VERDICT));
    }
}

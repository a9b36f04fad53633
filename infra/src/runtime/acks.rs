//! Per-partition watermarks. Every record read is outstanding until it is acknowledged
//! (its effect is durable); the offset that may be stored for a partition is the one just
//! before the oldest outstanding record, or the last record read when none is outstanding.
//! This is what makes out-of-order completion (a run summarised before an older open run,
//! a Parquet flush of one partition) safe: a crash replays from the oldest unfinished record.

use std::collections::{BTreeSet, HashMap};

type TopicPartition = (String, i32);

#[derive(Debug, Default)]
struct PartitionAcks {
    /// First offset read: nothing before it is ours to store.
    first: i64,
    /// Highest offset read.
    read: i64,
    /// Offsets read and not yet acknowledged.
    outstanding: BTreeSet<i64>,
    /// Last offset handed out as storable, so each is stored once.
    stored: Option<i64>,
}

/// Outstanding records of every partition a stage reads.
#[derive(Debug, Default)]
pub struct Acks {
    partitions: HashMap<TopicPartition, PartitionAcks>,
}

impl Acks {
    /// A record was read and is outstanding.
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partitions.entry((topic.to_string(), partition)).or_insert_with(|| PartitionAcks { first: offset, read: -1, ..Default::default() });
        p.read = p.read.max(offset);
        p.outstanding.insert(offset);
    }

    /// A record's effect is durable.
    pub fn ack(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.outstanding.remove(&offset);
        }
    }

    /// Offsets newly safe to store, per partition (the last offset whose effect, and every
    /// earlier one's, is durable). Report each one stored with [`Acks::stored`].
    pub fn storable(&self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in &self.partitions {
            let safe = p.outstanding.first().map_or(p.read, |first| first - 1);
            if safe >= p.first && p.stored.is_none_or(|s| safe > s) {
                out.push((topic.clone(), *partition, safe));
            }
        }
        out
    }

    /// The consumer took `offset` of a partition as stored (a failed store is offered again).
    pub fn stored(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.stored = Some(p.stored.map_or(offset, |s| s.max(offset)));
        }
    }

    /// Records read and not yet acknowledged, over all partitions.
    pub fn outstanding(&self) -> usize {
        self.partitions.values().map(|p| p.outstanding.len()).sum()
    }

    /// Forgets partitions no longer assigned (their outstanding records will be read again
    /// by whoever gets them).
    pub fn retain(&mut self, assigned: impl Fn(&str, i32) -> bool) {
        self.partitions.retain(|(t, p), _| assigned(t, *p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_offset_stops_before_the_oldest_outstanding_record() {
        let mut a = Acks::default();
        for o in 0..5 {
            a.read("t", 0, o);
        }
        assert!(a.storable().is_empty(), "nothing acknowledged yet");
        a.ack("t", 0, 0);
        a.ack("t", 0, 2);
        assert_eq!(a.storable(), vec![("t".to_string(), 0, 0)]);
        assert_eq!(a.storable(), vec![("t".to_string(), 0, 0)], "offered again until stored");
        a.stored("t", 0, 0);
        assert!(a.storable().is_empty(), "each offset stored once");
        a.ack("t", 0, 1);
        assert_eq!(a.storable(), vec![("t".to_string(), 0, 2)]);
        a.stored("t", 0, 2);
        a.ack("t", 0, 3);
        a.ack("t", 0, 4);
        assert_eq!(a.storable(), vec![("t".to_string(), 0, 4)]);
        assert_eq!(a.outstanding(), 0);
    }

    #[test]
    fn partitions_are_independent_and_can_be_dropped() {
        let mut a = Acks::default();
        a.read("t", 0, 10);
        a.read("t", 1, 7);
        a.ack("t", 1, 7);
        assert_eq!(a.storable(), vec![("t".to_string(), 1, 7)]);
        a.retain(|_, p| p == 1);
        assert_eq!(a.outstanding(), 0);
    }
}

//! Partition assignment changes, as the driver sees them.
//!
//! librdkafka reports a rebalance through the consumer context while the driver is inside
//! `recv()` (a `StreamConsumer` polls only there), so a change can never interleave with a
//! stage call. The context records what it was told in a [`RebalanceLog`]; before the driver
//! hands the next record to the stage, or ticks it, it takes the accumulated [`Change`], drops
//! its own ack state of revoked partitions and calls [`super::Stage::partitions_changed`].
//!
//! With the eager protocol (librdkafka's default) every rebalance revokes the whole
//! assignment and assigns the new one, so a partition that stays is revoked and assigned
//! again: the consumer resumes it from the committed offset, and state dropped for it is
//! rebuilt by the replay. Revocation first, assignment after, is therefore the order stages
//! must apply a [`Change`] in.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tracing::{info, warn};

use super::acks::Acks;
use super::driver::panic_message;
use super::{RetryPolicy, Stage, StageError};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// What changed since the driver last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    /// Partitions now owned that were assigned in this change (apply after `revoked`).
    pub assigned: Vec<TopicPartition>,
    /// Partitions revoked at any point of this change: their unfinished work is someone
    /// else's now (or will be replayed from the committed offset if assigned again).
    pub revoked: Vec<TopicPartition>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.assigned.is_empty() && self.revoked.is_empty()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Partitions owned now; None until the first assignment (then every record is ours).
    owned: Option<BTreeSet<TopicPartition>>,
    assigned: BTreeSet<TopicPartition>,
    revoked: BTreeSet<TopicPartition>,
}

/// Assignment changes recorded by the consumer context, shared with the driver.
#[derive(Debug, Default, Clone)]
pub struct RebalanceLog {
    state: Arc<Mutex<State>>,
}

impl RebalanceLog {
    /// The consumer was given `partitions` (in addition to what it owns: incremental and
    /// eager assignments both fit, since an eager one follows a full revocation).
    pub fn assigned(&self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut s = self.state.lock().expect("not poisoned");
        let owned = s.owned.get_or_insert_with(BTreeSet::new);
        let new: Vec<TopicPartition> = partitions.into_iter().collect();
        owned.extend(new.iter().cloned());
        s.assigned.extend(new);
    }

    /// The consumer lost `partitions`.
    pub fn revoked(&self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut s = self.state.lock().expect("not poisoned");
        let gone: Vec<TopicPartition> = partitions.into_iter().collect();
        if let Some(owned) = s.owned.as_mut() {
            for tp in &gone {
                owned.remove(tp);
            }
        }
        for tp in &gone {
            s.assigned.remove(tp);
        }
        s.revoked.extend(gone);
    }

    /// Takes what changed since the last call. A partition revoked and then assigned again
    /// appears in both lists; one assigned and then revoked only in `revoked`.
    pub fn take(&self) -> Change {
        let mut s = self.state.lock().expect("not poisoned");
        let assigned = std::mem::take(&mut s.assigned).into_iter().collect();
        let revoked = std::mem::take(&mut s.revoked).into_iter().collect();
        Change { assigned, revoked }
    }

    /// Whether a record of this partition may be handled: true before the first assignment
    /// is known, then only for owned partitions (a record fetched before a revocation is
    /// the new owner's to process).
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        let s = self.state.lock().expect("not poisoned");
        s.owned.as_ref().is_none_or(|o| o.contains(&(topic.to_string(), partition)))
    }
}

/// Applies a change: the runtime forgets the ack state of revoked partitions (a held record
/// of one is never acknowledged or stored by this instance again), then the stage is told,
/// transient failures retried with `policy`'s backoff. Any other failure is fatal: a fresh
/// incarnation starts from committed offsets with fresh state.
pub async fn hand_over<S: Stage>(stage: &mut S, acks: &mut Acks, change: &Change, policy: RetryPolicy) -> Result<(), StageError> {
    if change.is_empty() {
        return Ok(());
    }
    let revoked: BTreeSet<&TopicPartition> = change.revoked.iter().collect();
    acks.retain(|t, p| !revoked.contains(&(t.to_string(), p)));
    info!(stage = stage.name(), assigned = change.assigned.len(), revoked = change.revoked.len(), "partitions moved");
    let mut delays = policy.delays();
    loop {
        let call = std::panic::AssertUnwindSafe(stage.partitions_changed(&change.assigned, &change.revoked)).catch_unwind().await;
        match call {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(StageError::Transient(reason))) => {
                let wait = delays.next().unwrap_or(Duration::from_secs(30));
                warn!(stage = stage.name(), %reason, retry_in = ?wait, "taking over partitions failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Ok(Err(e)) => return Err(StageError::Fatal(format!("taking over partitions: {e}"))),
            Err(p) => return Err(StageError::Fatal(format!("panic while taking over partitions: {}", panic_message(p.as_ref())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use trackiq_schemas::Topics;

    use super::super::{Effects, Input};
    use super::*;

    /// Holds every record and remembers which partitions it was told about.
    #[derive(Default)]
    struct Recorder {
        held: Vec<TopicPartition>,
        calls: Vec<(Vec<TopicPartition>, Vec<TopicPartition>)>,
        fail_once: bool,
    }

    impl Stage for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn topics(&self, _: &Topics) -> Vec<String> {
            vec![]
        }
        async fn handle(&mut self, input: Input, _: Instant) -> Result<Effects, StageError> {
            self.held.push((input.position.topic, input.position.partition));
            Ok(Effects::held())
        }
        async fn partitions_changed(&mut self, assigned: &[TopicPartition], revoked: &[TopicPartition]) -> Result<(), StageError> {
            if std::mem::take(&mut self.fail_once) {
                return Err(StageError::Transient("store down".into()));
            }
            self.held.retain(|tp| !revoked.contains(tp));
            self.calls.push((assigned.to_vec(), revoked.to_vec()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn revoked_partitions_lose_their_ack_state_and_the_stage_is_told_once() {
        let mut acks = Acks::default();
        acks.read("t", 0, 10);
        acks.read("t", 1, 20);
        acks.read("t", 1, 21);
        acks.ack("t", 1, 20);
        let mut stage = Recorder { held: vec![tp("t", 0), tp("t", 1)], fail_once: true, ..Default::default() };
        let change = Change { assigned: vec![tp("t", 1)], revoked: vec![tp("t", 0), tp("t", 1)] };
        let fast = RetryPolicy { min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        hand_over(&mut stage, &mut acks, &change, fast).await.unwrap();
        assert_eq!(acks.outstanding(), 0, "nothing of a revoked partition stays outstanding");
        assert!(acks.storable().is_empty(), "and nothing of it is ever stored by this instance");
        assert_eq!(stage.calls, vec![(vec![tp("t", 1)], vec![tp("t", 0), tp("t", 1)])], "retried after the transient failure, told once");
        assert!(stage.held.is_empty());
        // A partition assigned again starts afresh: its first record read is the watermark's start.
        acks.read("t", 1, 15);
        acks.ack("t", 1, 15);
        assert_eq!(acks.storable(), vec![("t".to_string(), 1, 15)]);
    }

    #[tokio::test]
    async fn an_empty_change_does_not_call_the_stage() {
        let mut stage = Recorder::default();
        hand_over(&mut stage, &mut Acks::default(), &Change::default(), RetryPolicy::default()).await.unwrap();
        assert!(stage.calls.is_empty());
    }

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_string(), p)
    }

    #[test]
    fn eager_rebalance_revokes_everything_then_assigns_the_new_set() {
        let log = RebalanceLog::default();
        assert!(log.owns("t", 5), "before the first assignment every record is ours");
        log.assigned([tp("t", 0), tp("t", 1)]);
        assert_eq!(log.take(), Change { assigned: vec![tp("t", 0), tp("t", 1)], revoked: vec![] });
        assert!(log.take().is_empty());
        log.revoked([tp("t", 0), tp("t", 1)]);
        assert!(!log.owns("t", 0));
        log.assigned([tp("t", 1)]);
        assert_eq!(log.take(), Change { assigned: vec![tp("t", 1)], revoked: vec![tp("t", 0), tp("t", 1)] });
        assert!(log.owns("t", 1) && !log.owns("t", 0) && !log.owns("t", 5));
    }

    #[test]
    fn assigned_then_revoked_before_the_driver_looked_is_only_revoked() {
        let log = RebalanceLog::default();
        log.assigned([tp("t", 0)]);
        log.revoked([tp("t", 0)]);
        assert_eq!(log.take(), Change { assigned: vec![], revoked: vec![tp("t", 0)] });
        assert!(!log.owns("t", 0));
    }
}

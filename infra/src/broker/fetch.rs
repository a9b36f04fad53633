//! The embedded broker's Fetch. tansu's own re-reads every partition asked for from SQLite,
//! then sleeps — after every pass, even one that found records — until the client's
//! `max_wait_ms` is nearly spent: each hop of the pipeline waited about that long, and an idle
//! consumer cost a full storage pass per wait. This one reads the high watermarks from memory
//! ([`Appends`]), reads the log only for partitions that have records past the fetch offset
//! (up to the watermark, so no trailing empty query), answers as soon as it holds
//! `min_bytes`, and otherwise waits for the next append (or the deadline) without polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rama::{Context, Service};
use tansu_sans_io::fetch_request::FetchTopic;
use tansu_sans_io::fetch_response::{EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData, SnapshotId};
use tansu_sans_io::record::deflated::{Batch, Frame};
use tansu_sans_io::{ErrorCode, FetchRequest, FetchResponse, IsolationLevel};
use tansu_storage::{Storage, TopicId, Topition};
use tokio::time::Instant;

use super::appends::{Appends, Marks};
use super::records::{LogReader, LogRecords};

/// Most bytes one answer carries, whatever the client allows (tansu's own limit).
const MAX_RESPONSE_BYTES: u32 = 5 * 1024 * 1024;

/// A topic as the log knows it: its name and id.
#[derive(Debug, Clone)]
struct Known {
    name: String,
    id: [u8; 16],
}

/// The Fetch service (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct WaitingFetch {
    pub appends: Appends,
    /// Connections to the database for partitions read behind the tail (see `records`).
    readers: Arc<Mutex<Vec<LogReader>>>,
    records: Option<LogRecords>,
    /// Topics by the name or id a request used; topics are never renamed.
    topics: Arc<Mutex<HashMap<String, Known>>>,
}

impl WaitingFetch {
    pub fn new(appends: Appends, records: LogRecords) -> Self {
        WaitingFetch { appends, readers: Arc::default(), records: Some(records), topics: Arc::default() }
    }

    /// `tp`'s batches from `offset` below `high`, up to `max_bytes`, from the database.
    async fn stored(&self, tp: &Topition, offset: i64, high: i64, max_bytes: u32) -> Result<Option<Vec<Batch>>, tansu_storage::Error> {
        let Some(records) = &self.records else { return Ok(None) };
        let unreadable = |reason: String| tansu_storage::Error::Message(reason);
        let pooled = self.readers.lock().expect("readers").pop();
        let reader = match pooled {
            Some(r) => r,
            None => records.reader().map_err(unreadable)?,
        };
        let read = reader.read(tp, offset, high, max_bytes as usize).await;
        self.readers.lock().expect("readers").push(reader);
        super::records::batches(read.map_err(unreadable)?).map(Some).map_err(unreadable)
    }

    /// The topic a request names (by name, or by id from Fetch v13 on); `None` if unknown.
    async fn resolve<S: Storage>(&self, storage: &S, topic: &FetchTopic) -> Result<Option<Known>, tansu_storage::Error> {
        let key = match (&topic.topic, &topic.topic_id) {
            (Some(name), _) => name.clone(),
            (None, Some(id)) => uuid::Uuid::from_bytes(*id).to_string(),
            (None, None) => return Ok(None),
        };
        if let Some(k) = self.topics.lock().expect("topics").get(&key) {
            return Ok(Some(k.clone()));
        }
        let metadata = storage.metadata(Some(&[TopicId::from(topic)])).await?;
        let Some(found) = metadata.topics().first().and_then(|t| Some(Known { name: t.name.clone()?, id: t.topic_id? })) else { return Ok(None) };
        self.topics.lock().expect("topics").insert(key, found.clone());
        Ok(Some(found))
    }

    /// The marks of `tp`, asking the log the first time (and whenever its start is unknown).
    async fn marks<S: Storage>(&self, storage: &S, tp: &Topition) -> Result<Marks, tansu_storage::Error> {
        match self.appends.marks(tp) {
            Some(m) if m.log_start.is_some() => Ok(m),
            _ => {
                let stage = storage.offset_stage(tp).await?;
                self.appends.learn(tp, stage.high_watermark(), Some(stage.log_start()));
                Ok(self.appends.marks(tp).unwrap_or_default())
            }
        }
    }
}

/// One partition asked for: where the client is, and what this answer holds for it.
struct Asked {
    tp: Topition,
    offset: i64,
    batches: Vec<Batch>,
    marks: Marks,
}

impl<S: Storage> Service<S, FetchRequest> for WaitingFetch {
    type Response = FetchResponse;
    type Error = tansu_storage::Error;

    async fn serve(&self, ctx: Context<S>, req: FetchRequest) -> Result<FetchResponse, Self::Error> {
        let storage = ctx.state();
        let isolation = req.isolation_level.map_or(Ok(IsolationLevel::ReadUncommitted), IsolationLevel::try_from)?;
        let deadline = Instant::now() + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
        let min_bytes = u64::try_from(req.min_bytes).unwrap_or(0).max(1);
        let mut budget = req.max_bytes.map_or(MAX_RESPONSE_BYTES, |b| u32::try_from(b).unwrap_or(0).min(MAX_RESPONSE_BYTES));
        let requested = req.topics.unwrap_or_default();
        let mut topics: Vec<(FetchTopic, Option<Known>, Vec<Asked>)> = Vec::with_capacity(requested.len());
        for t in requested {
            let known = self.resolve(storage, &t).await?;
            let asked = match &known {
                Some(k) => t.partitions.iter().flatten().map(|p| Asked { tp: Topition::new(k.name.as_str(), p.partition), offset: p.fetch_offset, batches: Vec::new(), marks: Marks::default() }).collect(),
                None => Vec::new(),
            };
            topics.push((t, known, asked));
        }
        let mut appended = self.appends.subscribe();
        let mut bytes = 0u64;
        loop {
            // Seen now: an append during the pass below wakes the wait after it.
            appended.mark_unchanged();
            for (_, _, asked) in &mut topics {
                for a in asked.iter_mut() {
                    a.marks = self.marks(storage, &a.tp).await?;
                    while a.offset < a.marks.high_watermark && budget > 0 {
                        let fetched = match self.appends.recent(&a.tp, a.offset, budget) {
                            Some(kept) => kept,
                            None => match self.stored(&a.tp, a.offset, a.marks.high_watermark, budget).await? {
                                Some(stored) => stored,
                                None => storage.fetch(&a.tp, a.offset, 1, budget, isolation).await?,
                            },
                        };
                        let size: usize = fetched.iter().map(|b| b.record_data.len()).sum();
                        let records: i64 = fetched.iter().map(|b| i64::from(b.last_offset_delta) + 1).sum();
                        if fetched.is_empty() || records == 0 {
                            break;
                        }
                        a.offset = fetched.last().map_or(a.offset, |b| b.base_offset + i64::from(b.last_offset_delta) + 1).max(a.offset + 1);
                        budget = budget.saturating_sub(u32::try_from(size).unwrap_or(u32::MAX));
                        bytes += size as u64;
                        a.batches.extend(fetched);
                    }
                }
            }
            if bytes >= min_bytes || budget == 0 || Instant::now() >= deadline {
                break;
            }
            match tokio::time::timeout_at(deadline, appended.changed()).await {
                Ok(Ok(())) => continue,
                _ => break,
            }
        }
        let responses = topics.into_iter().map(|(t, known, asked)| match known {
            Some(k) => FetchableTopicResponse::default().topic(t.topic.clone()).topic_id(Some(k.id)).partitions(Some(asked.into_iter().map(partition_data).collect())),
            None => unknown_topic(&t),
        });
        Ok(FetchResponse::default()
            .throttle_time_ms(Some(0))
            .error_code(Some(ErrorCode::None.into()))
            .session_id(Some(0))
            .node_endpoints(Some(Vec::new()))
            .responses(Some(responses.collect())))
    }
}

fn partition_data(a: Asked) -> PartitionData {
    PartitionData::default()
        .partition_index(a.tp.partition())
        .error_code(ErrorCode::None.into())
        .high_watermark(a.marks.high_watermark)
        // No transactions: every record is stable.
        .last_stable_offset(Some(a.marks.high_watermark))
        .log_start_offset(a.marks.log_start)
        .diverging_epoch(None)
        .current_leader(None)
        .snapshot_id(None)
        .aborted_transactions(Some(Vec::new()))
        .preferred_read_replica(Some(-1))
        .records((!a.batches.is_empty()).then_some(Frame { batches: a.batches }))
}

/// The answer for a topic the log does not have, as Kafka gives it.
fn unknown_topic(t: &FetchTopic) -> FetchableTopicResponse {
    let partitions = t.partitions.iter().flatten().map(|p| {
        PartitionData::default()
            .partition_index(p.partition)
            .error_code(ErrorCode::UnknownTopicOrPartition.into())
            .high_watermark(0)
            .last_stable_offset(Some(0))
            .log_start_offset(Some(-1))
            .diverging_epoch(Some(EpochEndOffset::default().epoch(-1).end_offset(-1)))
            .current_leader(Some(LeaderIdAndEpoch::default().leader_id(0).leader_epoch(0)))
            .snapshot_id(Some(SnapshotId::default().end_offset(-1).epoch(-1)))
            .aborted_transactions(Some(Vec::new()))
            .preferred_read_replica(Some(-1))
            .records(None)
    });
    FetchableTopicResponse::default().topic(t.topic.clone()).topic_id(Some([0; 16])).partitions(Some(partitions.collect()))
}

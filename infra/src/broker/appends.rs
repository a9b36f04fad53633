//! What the embedded log holds, as the broker learns it: the high watermark of every
//! partition it has seen appended to or fetched from, a signal raised at every append, and
//! the most recent record batches of each partition ([`TAIL_BYTES`] in all). A fetch reads
//! all three from memory, so an idle consumer costs no storage query, a waiting fetch wakes
//! the moment a record it wants is appended, and a reader that keeps up is served the batch
//! as it was produced (as Kafka serves recent records from the page cache) instead of from
//! SQLite, where tansu rebuilds batches from rows with several statements each.
//!
//! Appends are learnt from the Produce requests and responses ([`WatchedProduce`]): the base
//! offset the log gave a partition's batches plus their record count is the partition's new
//! high watermark, and the batches themselves, numbered from that base, its tail.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rama::{Context, Service};
use tansu_sans_io::record::deflated::Batch;
use tansu_sans_io::{ProduceRequest, ProduceResponse};
use tansu_storage::{ProduceService, Storage, Topition};
use tokio::sync::watch;

/// What is known of a partition's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Offset the next appended record gets.
    pub high_watermark: i64,
    /// First offset still in the log; `None` until the log was asked.
    pub log_start: Option<i64>,
}

/// Bytes of recent batches kept in memory over all partitions (the oldest go first).
pub const TAIL_BYTES: usize = 32 * 1024 * 1024;

/// The recent batches of every partition: per partition contiguous and in offset order.
#[derive(Debug, Default)]
struct Tails {
    by_partition: HashMap<Topition, VecDeque<Batch>>,
    /// (partition, base offset, bytes) of every batch kept, oldest first, for eviction.
    order: VecDeque<(Topition, i64, usize)>,
    bytes: usize,
}

fn last_offset(b: &Batch) -> i64 {
    b.base_offset + i64::from(b.last_offset_delta)
}

impl Tails {
    /// Adds `batch` (numbered already) after `tp`'s kept batches. One that does not follow
    /// them (two producers' answers crossed) starts the tail anew: a read from before it goes
    /// to the log.
    fn push(&mut self, tp: &Topition, batch: Batch) {
        let size = batch.record_data.len();
        let queue = self.by_partition.entry(tp.clone()).or_default();
        if queue.back().is_some_and(|b| last_offset(b) + 1 != batch.base_offset) {
            self.bytes -= queue.drain(..).map(|b| b.record_data.len()).sum::<usize>();
        }
        self.order.push_back((tp.clone(), batch.base_offset, size));
        queue.push_back(batch);
        self.bytes += size;
        while self.bytes > TAIL_BYTES {
            let Some((tp, base, size)) = self.order.pop_front() else { break };
            if let Some(q) = self.by_partition.get_mut(&tp)
                && q.front().is_some_and(|b| b.base_offset == base)
            {
                q.pop_front();
                self.bytes -= size;
            }
        }
    }

    /// Kept batches of `tp` from the one holding `offset`, up to `max_bytes` (at least one).
    fn read(&self, tp: &Topition, offset: i64, max_bytes: u32) -> Option<Vec<Batch>> {
        let queue = self.by_partition.get(tp)?;
        let first = queue.iter().position(|b| b.base_offset <= offset && offset <= last_offset(b))?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for b in queue.iter().skip(first) {
            if !out.is_empty() && bytes + b.record_data.len() > max_bytes as usize {
                break;
            }
            bytes += b.record_data.len();
            out.push(b.clone());
        }
        Some(out)
    }
}

/// High watermarks by partition, the append signal, and the partitions' recent batches.
#[derive(Debug, Clone)]
pub struct Appends {
    watermarks: Arc<Mutex<HashMap<Topition, Marks>>>,
    tails: Arc<Mutex<Tails>>,
    /// Counts appends; a fetch waits for it to change.
    signal: Arc<watch::Sender<u64>>,
}

impl Default for Appends {
    fn default() -> Self {
        Appends { watermarks: Arc::default(), tails: Arc::default(), signal: Arc::new(watch::channel(0).0) }
    }
}

impl Appends {
    /// What is known of `tp`'s log.
    pub fn marks(&self, tp: &Topition) -> Option<Marks> {
        self.watermarks.lock().expect("watermarks").get(tp).copied()
    }

    /// Records a high watermark of `tp` (a later, lower one never moves it back) and, when
    /// given, its log start.
    pub fn learn(&self, tp: &Topition, high_watermark: i64, log_start: Option<i64>) {
        let mut w = self.watermarks.lock().expect("watermarks");
        let known = w.entry(tp.clone()).or_default();
        known.high_watermark = known.high_watermark.max(high_watermark);
        known.log_start = log_start.or(known.log_start);
    }

    /// The batches of `tp` from the one holding `offset` on (up to `max_bytes`, at least
    /// one), when they are still kept in memory; `None`: read the log.
    pub fn recent(&self, tp: &Topition, offset: i64, max_bytes: u32) -> Option<Vec<Batch>> {
        self.tails.lock().expect("tails").read(tp, offset, max_bytes)
    }

    /// Keeps `batches`, appended to `tp` from `base_offset` on, as its most recent ones.
    pub fn keep(&self, tp: &Topition, base_offset: i64, batches: impl IntoIterator<Item = Batch>) {
        let mut tails = self.tails.lock().expect("tails");
        let mut next = base_offset;
        for mut b in batches {
            b.base_offset = next;
            next = last_offset(&b) + 1;
            tails.push(tp, b);
        }
    }

    /// Forgets every watermark and kept batch (records were deleted, a topic was dropped):
    /// the next fetch asks the log again.
    pub fn forget(&self) {
        self.watermarks.lock().expect("watermarks").clear();
        *self.tails.lock().expect("tails") = Tails::default();
        self.signal.send_modify(|n| *n += 1);
    }

    /// A receiver that sees the next append (taken before looking at the watermarks, so an
    /// append in between is not missed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }

    fn appended(&self) {
        self.signal.send_modify(|n| *n += 1);
    }

    /// `batch` was appended to `tp` at `base_offset` by a writer in this process (not through
    /// Produce): learnt as any append.
    pub fn published(&self, tp: &Topition, base_offset: i64, batch: Batch) {
        self.learn(tp, base_offset + i64::from(batch.last_offset_delta) + 1, None);
        self.keep(tp, base_offset, [batch]);
        self.appended();
    }
}

/// tansu's Produce service, telling [`Appends`] what each request appended.
#[derive(Debug, Clone)]
pub struct WatchedProduce {
    pub appends: Appends,
}

impl<S: Storage> Service<S, ProduceRequest> for WatchedProduce {
    type Response = ProduceResponse;
    type Error = tansu_storage::Error;

    async fn serve(&self, ctx: Context<S>, req: ProduceRequest) -> Result<ProduceResponse, Self::Error> {
        // The batches of each (topic, partition) of the request: the response gives only base
        // offsets. Cloning a batch shares its bytes.
        let mut sent: HashMap<(String, i32), Vec<Batch>> = HashMap::new();
        for topic in req.topic_data.iter().flatten() {
            for p in topic.partition_data.iter().flatten() {
                sent.entry((topic.name.clone(), p.index)).or_default().extend(p.records.iter().flat_map(|f| f.batches.iter().cloned()));
            }
        }
        let response = ProduceService.serve(ctx, req).await?;
        let mut any = false;
        for topic in response.responses.iter().flatten() {
            for p in topic.partition_responses.iter().flatten().filter(|p| p.error_code == 0 && p.base_offset >= 0) {
                if let Some(batches) = sent.remove(&(topic.name.clone(), p.index)) {
                    let tp = Topition::new(topic.name.as_str(), p.index);
                    let n: i64 = batches.iter().map(|b| i64::from(b.last_offset_delta) + 1).sum();
                    self.appends.learn(&tp, p.base_offset + n, None);
                    self.appends.keep(&tp, p.base_offset, batches);
                    any = true;
                }
            }
        }
        if any {
            self.appends.appended();
        }
        Ok(response)
    }
}

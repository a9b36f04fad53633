//! What the embedded log holds, as the broker learns it: the high watermark of every
//! partition it has seen appended to or fetched from, and a signal raised at every append.
//! A fetch reads both from memory, so an idle consumer costs no storage query and a waiting
//! fetch wakes the moment a record it wants is appended.
//!
//! Appends are learnt from the Produce responses ([`WatchedProduce`]): the base offset the log
//! gave a partition's batches plus their record count is the partition's new high watermark.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rama::{Context, Service};
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

/// High watermarks by partition, and the append signal.
#[derive(Debug, Clone)]
pub struct Appends {
    watermarks: Arc<Mutex<HashMap<Topition, Marks>>>,
    /// Counts appends; a fetch waits for it to change.
    signal: Arc<watch::Sender<u64>>,
}

impl Default for Appends {
    fn default() -> Self {
        Appends { watermarks: Arc::default(), signal: Arc::new(watch::channel(0).0) }
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

    /// Forgets every watermark (records were deleted, a topic was dropped): the next fetch
    /// asks the log again.
    pub fn forget(&self) {
        self.watermarks.lock().expect("watermarks").clear();
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
        // Records per (topic, partition) of the request: the response gives only base offsets.
        let mut counts: HashMap<(String, i32), i64> = HashMap::new();
        for topic in req.topic_data.iter().flatten() {
            for p in topic.partition_data.iter().flatten() {
                let n: i64 = p.records.iter().flat_map(|f| f.batches.iter()).map(|b| i64::from(b.last_offset_delta) + 1).sum();
                *counts.entry((topic.name.clone(), p.index)).or_default() += n;
            }
        }
        let response = ProduceService.serve(ctx, req).await?;
        let mut any = false;
        for topic in response.responses.iter().flatten() {
            for p in topic.partition_responses.iter().flatten().filter(|p| p.error_code == 0 && p.base_offset >= 0) {
                if let Some(n) = counts.get(&(topic.name.clone(), p.index)) {
                    self.appends.learn(&Topition::new(topic.name.as_str(), p.index), p.base_offset + n, None);
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

//! Emits one run: `RunStarted`, samples batched by count or linger time, `RunFinished`, all
//! on the runs topic under the run's series id, each acknowledged before the next is sent:
//! one partition holds the run in order, so consumers see every sample before the finish,
//! and holds the series' runs in the order they ran, so their summaries (and the verdicts
//! that judge each against the runs before it) follow that order too.
//! Batching keeps the sample rate independent of the broker's record rate.

use std::time::{Duration, Instant};

use trackiq_infra::bus::Producer;
use trackiq_infra::Bus;
use trackiq_infra::bus::send;
use trackiq_schemas::metrics::validate_value;
use trackiq_schemas::{RunFinished, RunStarted, RunStatus, Sample, SampleBatch, registry};

use crate::error::ProducerError;

/// When a batch of samples is sent.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Samples per record at most.
    pub max_samples: usize,
    /// A non-empty batch is sent once it is this old.
    pub linger: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_samples: 500, linger: Duration::from_millis(200) }
    }
}

/// A run being emitted.
pub struct RunEmitter {
    bus: Bus,
    producer: Producer,
    run: RunStarted,
    batching: Batching,
    pending: Vec<Sample>,
    oldest: Option<Instant>,
    seq: i64,
    sent: i64,
}

impl RunEmitter {
    /// Announces the run. Fails at once when no broker answers.
    pub async fn start(bus: &Bus, run: RunStarted, batching: Batching) -> Result<Self, ProducerError> {
        bus.check_reachable().await?;
        let producer = bus.producer()?;
        send(&producer, &bus.topics().runs, run.series_id.as_bytes(), &registry().encode(&run)?).await?;
        Ok(RunEmitter { bus: bus.clone(), producer, run, batching, pending: Vec::new(), oldest: None, seq: 0, sent: 0 })
    }

    pub fn run(&self) -> &RunStarted {
        &self.run
    }

    /// Adds a sample after checking it (finite; durations not negative).
    pub async fn push(&mut self, sample: Sample) -> Result<(), ProducerError> {
        validate_value(&sample.metric, sample.value).map_err(ProducerError::InvalidSample)?;
        self.pending.push(sample);
        self.oldest.get_or_insert_with(Instant::now);
        if self.pending.len() >= self.batching.max_samples || self.oldest.is_some_and(|t| t.elapsed() >= self.batching.linger) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the pending samples if the oldest has waited the linger time (call it from a
    /// timer when samples arrive irregularly).
    pub async fn flush_due(&mut self) -> Result<(), ProducerError> {
        if self.oldest.is_some_and(|t| t.elapsed() >= self.batching.linger) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the pending samples as one record.
    pub async fn flush(&mut self) -> Result<(), ProducerError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = SampleBatch { run_id: self.run.run_id.clone(), seq: self.seq, samples: std::mem::take(&mut self.pending) };
        let n = batch.samples.len() as i64;
        send(&self.producer, &self.bus.topics().runs, self.run.series_id.as_bytes(), &registry().encode(&batch)?).await?;
        self.seq += 1;
        self.sent += n;
        self.oldest = None;
        Ok(())
    }

    /// Sends what is pending and the `RunFinished`, ended now.
    pub async fn finish(self, status: RunStatus, error: Option<String>) -> Result<RunFinished, ProducerError> {
        self.finish_at(status, error, trackiq_schemas::now_us()).await
    }

    /// Sends what is pending and the `RunFinished`, ended at `ended_at` (µs; a backfilled run's own time).
    pub async fn finish_at(mut self, status: RunStatus, error: Option<String>, ended_at: i64) -> Result<RunFinished, ProducerError> {
        self.flush().await?;
        let finished = RunFinished { run_id: self.run.run_id.clone(), status, ended_at, sample_count: self.sent, error };
        send(&self.producer, &self.bus.topics().runs, self.run.series_id.as_bytes(), &registry().encode(&finished)?).await?;
        Ok(finished)
    }
}

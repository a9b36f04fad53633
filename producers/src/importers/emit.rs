//! Sending imported runs: every run's `RunStarted`, its samples in batches and its
//! `RunFinished`, on the runs topic keyed by series like any producer's. Runs go in time
//! order (a backfill judges each run against the ones before it, as if it had streamed then),
//! enqueued without waiting for each acknowledgement on a producer that keeps one request in
//! flight per connection, so a series' records stay in order; the call returns once every
//! record is acknowledged.

use rdkafka::producer::FutureRecord;
use trackiq_infra::bus::Producer;
use trackiq_infra::Bus;
use trackiq_schemas::{RunFinished, SampleBatch, registry};

use super::ImportedRun;
use crate::error::ProducerError;

/// Samples per record.
const SAMPLES_PER_RECORD: usize = 5_000;
/// Records enqueued before waiting for their acknowledgements.
const WINDOW: usize = 5_000;

/// Sends `runs` (any order; sent oldest first) and waits until all are acknowledged.
/// `on_sent` is called with the number of runs acknowledged so far (for a progress bar).
pub async fn send_runs(bus: &Bus, runs: &mut [ImportedRun], on_sent: impl FnMut(usize)) -> Result<(), ProducerError> {
    if runs.is_empty() {
        return Ok(());
    }
    bus.check_reachable().await?;
    let producer = bus.ordered_producer()?;
    send_runs_on(&producer, &bus.topics().runs, runs, on_sent).await
}

/// [`send_runs`] on a producer the caller keeps (one made by [`Bus::ordered_producer`]), for
/// a sender that publishes again and again (the telemetry windows).
pub async fn send_runs_on(producer: &Producer, topic: &str, runs: &mut [ImportedRun], mut on_sent: impl FnMut(usize)) -> Result<(), ProducerError> {
    if runs.is_empty() {
        return Ok(());
    }
    runs.sort_by(|a, b| a.run.timestamp.cmp(&b.run.timestamp).then_with(|| a.run.run_id.cmp(&b.run.run_id)));
    let mut pending = Vec::with_capacity(WINDOW);
    let mut done = 0;
    for (i, r) in runs.iter().enumerate() {
        let key = r.run.series_id.as_bytes();
        let mut records = vec![registry().encode(&r.run)?];
        for (seq, chunk) in r.samples.chunks(SAMPLES_PER_RECORD).enumerate() {
            let batch = SampleBatch { run_id: r.run.run_id.clone(), seq: seq as i64, samples: chunk.to_vec() };
            records.push(registry().encode(&batch)?);
        }
        let finished = RunFinished { run_id: r.run.run_id.clone(), status: r.status, ended_at: r.ended_at, sample_count: r.samples.len() as i64, error: r.error.clone() };
        records.push(registry().encode(&finished)?);
        for payload in &records {
            pending.push(enqueue(producer, topic, key, payload).await?);
        }
        if pending.len() >= WINDOW || i + 1 == runs.len() {
            for d in pending.drain(..) {
                d.await.map_err(|_| ProducerError::Usage("the producer was closed before a record was acknowledged".into()))?.map_err(|(e, _)| {
                    ProducerError::Infra(trackiq_infra::InfraError::Kafka { action: format!("producing to {topic}"), source: e })
                })?;
            }
            done = i + 1;
            on_sent(done);
        }
    }
    debug_assert_eq!(done, runs.len());
    Ok(())
}

/// Enqueues one record, waiting for room in the producer's queue when it is full.
async fn enqueue(producer: &Producer, topic: &str, key: &[u8], payload: &[u8]) -> Result<rdkafka::producer::DeliveryFuture, ProducerError> {
    loop {
        match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
            Ok(d) => return Ok(d),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(ProducerError::Infra(trackiq_infra::InfraError::Kafka { action: format!("producing to {topic}"), source: e })),
        }
    }
}

//! The archiver is aborted mid-stream (no flush, no graceful commit) and restarted: every
//! sample is in Parquet exactly once.

use std::time::Duration;

use trackiq_infra::metrics::PipelineMetrics;
use trackiq_infra::runtime::{StageContext, StageError, supervise};
use trackiq_infra::{Bus, BusConfig, DataStore, EmbeddedBroker, Shutdown};
use trackiq_processors::archiver::naming::short_incarnation;
use trackiq_processors::archiver::{ArchiverConfig, ArchiverStage};
use trackiq_producers::emitter::{Batching, RunEmitter};
use trackiq_producers::identity::{RunIdentity, run_started};
use trackiq_schemas::{RunStatus, Sample};

const BATCHES: i64 = 20;
const PER_BATCH: usize = 100;

async fn emit_run(bus: &Bus, name: &str) {
    let id = RunIdentity { workload: name.into(), workload_type: "test".into(), ..Default::default() };
    let mut e = RunEmitter::start(bus, run_started("crash-test", &id), Batching { max_samples: PER_BATCH, linger: Duration::from_secs(60) }).await.unwrap();
    for step in 0..BATCHES * PER_BATCH as i64 {
        e.push(Sample { ts_us: 1_000 + step, metric: "latency_ms".into(), value: 1.0, unit: "ms".into(), rank: None, step: Some(step) }).await.unwrap();
    }
    e.finish(RunStatus::Completed, None).await.unwrap();
}

/// The archiver stage, supervised as `trackiq up` runs it.
async fn archiver(config: ArchiverConfig, bus: Bus, store: DataStore, shutdown: Shutdown) {
    let incarnation = short_incarnation(&bus.cluster_id().await.unwrap());
    let metrics = PipelineMetrics::new();
    let ctx = StageContext { bus, metrics: metrics.clone(), group: config.group.clone(), stage: "archiver" };
    let make = move || {
        let (c, st, inc, m) = (config.clone(), store.clone(), incarnation.clone(), metrics.clone());
        async move { ArchiverStage::open(c, st, &inc, m).await.map_err(|e| StageError::Fatal(e.to_string())) }
    };
    supervise(ctx, make, shutdown).await;
}

async fn sample_rows(store: &DataStore) -> (i64, i64) {
    let ctx = trackiq_infra::tables::session(store).await.unwrap();
    let df = ctx
        .sql("SELECT count(*) AS n, count(DISTINCT run_id || '/' || CAST(step AS VARCHAR)) AS distinct_samples FROM samples")
        .await
        .unwrap();
    let b = df.collect().await.unwrap();
    let col = |i: usize| b[0].column(i).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
    (col(0), col(1))
}

#[test]
fn archiver_aborted_mid_stream_restarts_without_loss_or_duplicates() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), &dir.path().join("broker")).await.unwrap();
        let bus = Bus::new(BusConfig { listen: broker.addr().to_string(), partitions: 3, ..Default::default() });
        bus.ensure_topics().await.unwrap();
        let store = DataStore::open(&format!("file://{}", dir.path().join("data").display())).unwrap();
        emit_run(&bus, "before-crash").await;

        // Flush every 3 records of 100 samples; no time-based flush, so a tail stays buffered.
        let config = ArchiverConfig { group: "crash-test".into(), flush_rows: 300, flush_secs: 3600, ..Default::default() };
        let (_trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(archiver(config.clone(), bus.clone(), store.clone(), shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while store.list("samples").await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "archiver wrote nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let _ = task.await;
        let (rows_at_crash, _) = sample_rows(&store).await;
        assert!(rows_at_crash < BATCHES * PER_BATCH as i64, "the crash left samples unarchived ({rows_at_crash})");

        // More data arrives while the archiver is down; then it restarts.
        emit_run(&bus, "after-crash").await;
        let expected = 2 * BATCHES * PER_BATCH as i64;
        let config = ArchiverConfig { flush_secs: 1, ..config };
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(archiver(config, bus.clone(), store.clone(), shutdown));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let (rows, distinct) = loop {
            let (rows, distinct) = sample_rows(&store).await;
            if rows >= expected || tokio::time::Instant::now() > deadline {
                break (rows, distinct);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        trigger.trigger();
        task.await.unwrap();
        assert_eq!(rows, expected, "every produced sample is archived (had {rows_at_crash} at the crash)");
        assert_eq!(distinct, expected, "no sample is archived twice");
        // A third start reads the same log again and writes nothing new.
        let (rows_after, _) = sample_rows(&store).await;
        assert_eq!(rows_after, expected);
        drop(bus);
        broker.stop();
    });
}

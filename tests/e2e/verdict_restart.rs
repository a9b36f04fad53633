//! After a restart the verdict state comes back from the Parquet history (DataFusion), so the
//! next verdict is the one continuous processing would give.

use std::time::Duration;

use trackiq::config::Config;
use trackiq::stack::Stack;
use trackiq_infra::{Bus, EmbeddedBroker};
use trackiq_processors::verdict::bootstrap::bootstrap;
use trackiq_producers::identity::RunIdentity;
use trackiq_producers::record::{MetricArg, record};
use trackiq_schemas::{RunStatus, RunSummary, Severity};

async fn archived_verdicts(store: &trackiq_infra::DataStore) -> i64 {
    let ctx = trackiq_infra::tables::session(store).await.unwrap();
    let b = ctx.sql("SELECT count(DISTINCT run_id) AS n FROM verdicts").await.unwrap().collect().await.unwrap();
    b[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0)
}

#[test]
fn verdict_state_is_rebuilt_from_parquet_after_a_restart() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data: format!("file://{}", dir.path().display()), ..Default::default() };
        config.bus.listen = format!("127.0.0.1:{}", crate::support::free_port());
        config.bus.partitions = 2;
        config.archiver.flush_secs = 1;
        config.metrics.listen = "127.0.0.1:0".into();
        let stack = Stack::start(&config).await.unwrap();
        stack.wait_ready(Duration::from_secs(60)).await.unwrap();
        let id = RunIdentity { workload: "restart".into(), workload_type: "test".into(), hardware: Some("box".into()), ..Default::default() };
        for v in [10.0, 10.2, 9.8, 10.1] {
            record(&stack.bus, &id, &[MetricArg { name: "latency_ms".into(), value: v, unit: "ms".into() }], None).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while archived_verdicts(&stack.store).await < 4 {
            assert!(tokio::time::Instant::now() < deadline, "verdicts not archived");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let store = stack.store.clone();
        stack.stop().await.unwrap();

        // Restart the broker alone and rebuild the verdict state the way the processor does.
        let broker = EmbeddedBroker::start(config.bus.listen.parse().unwrap(), &config.broker_dir()).await.unwrap();
        let bus = Bus::new(config.bus.clone());
        let incarnation = trackiq_processors::archiver::naming::short_incarnation(&bus.cluster_id().await.unwrap());
        let (mut baselines, stats) = bootstrap(&bus, &store, &config.verdict, &incarnation).await.unwrap();
        assert_eq!(stats.summaries_from_parquet, 4, "{stats:?}");
        assert_eq!(stats.from_log, 0, "every verdict was archived: {stats:?}");

        // The next run is judged against the four rebuilt ones.
        let ctx = trackiq_infra::tables::session(&store).await.unwrap();
        let b = ctx.sql("SELECT DISTINCT series_id FROM summaries").await.unwrap().collect().await.unwrap();
        // Strings are read as views (see `tables::session`); cast to read the value.
        let series = datafusion::arrow::compute::cast(b[0].column(0), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
        let series = series.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap().value(0).to_string();
        let mut run = trackiq_producers::identity::run_started("trackiq-record", &id);
        run.series_id = series;
        let summary = RunSummary {
            run,
            status: RunStatus::Completed,
            ended_at: trackiq_schemas::now_us(),
            sample_count: 1,
            expected_sample_count: Some(1),
            error: None,
            metrics: vec![trackiq_schemas::MetricSummary {
                metric: "latency_ms".into(), unit: "ms".into(), count: 1, mean: 13.0, stdev: None,
                min: 13.0, p50: 13.0, p90: 13.0, p95: 13.0, p99: 13.0, max: 13.0, histogram: None, percentile_error: None,
            }],
            derived: Vec::new(),
            cluster: None,
        };
        let (verdict, _) = baselines.judge(&summary, 0).unwrap();
        let lat = &verdict.metrics[0];
        assert_eq!((lat.severity, lat.baseline_count), (Severity::Block, 4));
        assert!((lat.baseline.unwrap() - 10.025).abs() < 1e-9, "{lat:?}");
        drop(bus);
        broker.stop();
    });
}

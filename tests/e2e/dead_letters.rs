//! Bad records and failed notifications go to the dead-letter topic with the reason and the
//! original bytes; the pipeline goes on.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use trackiq::config::Config;
use trackiq::stack::Stack;
use trackiq_producers::identity::RunIdentity;
use trackiq_producers::record::{MetricArg, record};
use trackiq_schemas::{DeadLetter, registry};

use crate::support::Receiver;

/// Reads dead letters from the start of the topic until `done` holds, or panics.
async fn dead_letters(brokers: &str, topic: &str, done: impl Fn(&[DeadLetter]) -> bool) -> Vec<DeadLetter> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("dlq-reader-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&got) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = tokio::time::timeout(left, consumer.recv()).await.expect("dead letters arrive within 60 s").unwrap();
        got.push(registry().decode::<DeadLetter>(m.payload().unwrap()).expect("dead letters are valid events"));
    }
    got
}

#[test]
fn undecodable_records_and_failed_webhooks_are_dead_lettered() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hook = Receiver::start(u32::MAX);
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data: format!("file://{}", dir.path().display()), ..Default::default() };
        config.bus.listen = "127.0.0.1:0".into();
        config.bus.partitions = 2;
        config.webhook.urls = vec![hook.url.clone()];
        config.webhook.max_attempts = 2;
        config.webhook.initial_backoff_ms = 10;
        config.verdict.min_baseline = 1;
        config.metrics.listen = "127.0.0.1:0".into();
        let stack = Stack::start(&config).await.unwrap();
        stack.wait_ready(Duration::from_secs(60)).await.unwrap();

        // A record that is not an Avro event at all.
        let garbage = b"{\"latency\": 12, \"not\": \"avro\"}".to_vec();
        let producer: FutureProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", stack.brokers()).create().unwrap();
        let topic = stack.bus.topics().runs.clone();
        producer.send(FutureRecord::to(&topic).key("k").payload(&garbage), Duration::from_secs(10)).await.unwrap();

        // Valid runs after it are still processed: a regression produces a block verdict whose
        // webhook always fails, so it is dead-lettered too.
        let id = RunIdentity { workload: "dlq".into(), workload_type: "test".into(), ..Default::default() };
        for v in [10.0, 20.0] {
            record(&stack.bus, &id, &[MetricArg { name: "latency_ms".into(), value: v, unit: "ms".into() }], None).await.unwrap();
        }

        let letters = dead_letters(&stack.brokers(), &stack.bus.topics().dlq, |l| {
            l.iter().any(|d| d.stage == "aggregator") && l.iter().any(|d| d.stage == "webhook")
        })
        .await;
        let bad = letters.iter().find(|d| d.stage == "aggregator").unwrap();
        assert_eq!(bad.topic, topic);
        assert_eq!(bad.payload, garbage, "the original bytes are kept");
        assert!(bad.reason.contains("single-object marker C3 01"), "{}", bad.reason);
        let hook_letter = letters.iter().find(|d| d.stage == "webhook").unwrap();
        assert!(hook_letter.reason.contains("failed after 2 attempts") && hook_letter.reason.contains("HTTP 500"), "{}", hook_letter.reason);
        assert!(!hook_letter.reason.contains("/hook"), "the URL path (often a secret) is not in the reason: {}", hook_letter.reason);
        assert_eq!(hook_letter.topic, stack.bus.topics().verdicts);
        assert_eq!(*hook.attempts.lock().unwrap(), 2);
        stack.stop().await.unwrap();
    });
}

//! The embedded broker with real Kafka clients (rdkafka) and the in-process reader: a waiting
//! fetch is answered by the append, not by its deadline; the log read in-process gives every
//! record once, in order, resumes from its committed offsets, and keeps Kafka members of its
//! group out.

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::bus::send;
use crate::metrics::PipelineMetrics;
use crate::runtime::log_source::LogSource;
use crate::runtime::rebalance::RebalanceLog;
use crate::{Bus, BusConfig, EmbeddedBroker};

async fn broker(dir: &std::path::Path) -> (EmbeddedBroker, Bus) {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), dir).await.unwrap();
    let bus = Bus::new(BusConfig { listen: broker.addr().to_string(), partitions: 2, ..Default::default() });
    bus.ensure_topics().await.unwrap();
    (broker, bus)
}

fn producer(bus: &Bus) -> crate::bus::Producer {
    bus.producer().unwrap()
}

/// A consumer of `topic` in `group` whose fetches may wait `wait_ms` for records.
fn consumer(bus: &Bus, group: &str, topic: &str, wait_ms: &str) -> StreamConsumer {
    let c: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bus.config().bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", wait_ms)
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_answered_by_the_append_not_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, bus) = broker(dir.path()).await;
    let topic = bus.topics().runs.clone();
    // A fetch may wait 20 s; tansu's own Fetch answered a waiting fetch only after about that long.
    let c = consumer(&bus, "waiting", &topic, "20000");
    let p = producer(&bus);
    send(&p, &topic, b"k", b"first").await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), c.recv()).await.expect("the first record").unwrap();
    // Now the consumer waits in a fetch; the next append must wake it.
    let sent = Instant::now();
    send(&p, &topic, b"k", b"second").await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(60), c.recv()).await.expect("the second record").unwrap();
    assert_eq!(rdkafka::Message::payload(&m), Some(&b"second"[..]));
    let waited = sent.elapsed();
    assert!(waited < Duration::from_secs(10), "delivered after {waited:?}: the fetch waited for its deadline, not the append");
    drop(m);
    drop((c, p));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_read_in_process_gives_each_record_once_resumes_and_keeps_kafka_members_out() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, bus) = broker(dir.path()).await;
    let topic = bus.topics().runs.clone();
    let p = producer(&bus);
    for i in 0..20 {
        send(&p, &topic, format!("key-{}", i % 3).as_bytes(), format!("{i}").as_bytes()).await.unwrap();
    }
    let topics = vec![topic.clone()];
    let open = || LogSource::open(broker.log().clone(), "in-process", "test", &topics, PipelineMetrics::new(), RebalanceLog::default());
    let mut source = open().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let r = tokio::time::timeout(Duration::from_secs(30), source.recv()).await.expect("a record").unwrap();
        seen.push((r.partition, r.offset, String::from_utf8(r.payload).unwrap().parse::<i32>().unwrap()));
    }
    // In order within each partition, each record once.
    for part in [0, 1] {
        let values: Vec<i32> = seen.iter().filter(|s| s.0 == part).map(|s| s.2).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "partition {part}: {values:?}");
    }
    let mut all: Vec<i32> = seen.iter().map(|s| s.2).collect();
    all.sort();
    assert_eq!(all, (0..20).collect::<Vec<_>>());
    // A Kafka member of the same group is refused while the log is read in-process.
    let intruder = consumer(&bus, "in-process", &topic, "100");
    let refused = tokio::time::timeout(Duration::from_secs(30), intruder.recv()).await.expect("an answer to the join");
    assert!(refused.is_err(), "a Kafka consumer joined a group read in-process");
    drop(intruder);
    // Done with the first 10 of each partition's records read: stored, committed, reopened.
    for (partition, offset, _) in seen.iter().filter(|s| s.2 < 10) {
        source.store_offset(&topic, *partition, *offset).unwrap();
    }
    source.commit().await.unwrap();
    drop(source);
    let mut again = open().await.unwrap();
    let mut rest = Vec::new();
    while rest.len() < 10 {
        let r = tokio::time::timeout(Duration::from_secs(30), again.recv()).await.expect("a record after the commit").unwrap();
        rest.push(String::from_utf8(r.payload).unwrap().parse::<i32>().unwrap());
    }
    rest.sort();
    assert_eq!(rest, (10..20).collect::<Vec<_>>(), "resumed after the committed offsets");
    drop((again, p));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_read_from_the_database_are_the_logs_and_serve_kafka_clients_behind_the_tail() {
    use tansu_storage::{Storage, Topition};
    let dir = tempfile::tempdir().unwrap();
    let (broker, bus) = broker(dir.path()).await;
    let topic = bus.topics().runs.clone();
    let p = producer(&bus);
    for i in 0..30 {
        send(&p, &topic, format!("key-{}", i % 4).as_bytes(), format!("value {i}").as_bytes()).await.unwrap();
    }
    let log = broker.log().clone();
    let reader = log.records.reader().unwrap();
    let mut total = 0;
    for partition in 0..2 {
        let tp = Topition::new(topic.as_str(), partition);
        let (storage, at) = (log.storage.clone(), tp.clone());
        let high = tokio::spawn(async move { storage.offset_stage(&at).await }).await.unwrap().unwrap().high_watermark();
        let (storage, at) = (log.storage.clone(), tp.clone());
        let fetched = tokio::spawn(async move { storage.fetch(&at, 0, 1, u32::MAX, tansu_sans_io::IsolationLevel::ReadUncommitted).await }).await.unwrap().unwrap();
        let expected: Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)> = fetched
            .into_iter()
            .flat_map(|b| {
                let b = tansu_sans_io::record::inflated::Batch::try_from(b).unwrap();
                b.records.into_iter().map(move |r| (b.base_offset + i64::from(r.offset_delta), r.key.map(|k| k.to_vec()), r.value.map(|v| v.to_vec())))
            })
            .collect();
        let read = reader.read(&tp, 0, high, usize::MAX).await.unwrap();
        assert_eq!(read.iter().map(|r| (r.offset, r.key.clone(), r.value.clone())).collect::<Vec<_>>(), expected, "{tp:?}: the same records as tansu's fetch");
        assert_eq!(read.len() as i64, high, "{tp:?}: every record below the high watermark");
        // The read stops after max_bytes (at least one record), starts where asked and ends below `below`.
        assert_eq!(reader.read(&tp, 0, high, 1).await.unwrap().len(), 1.min(high as usize));
        assert_eq!(reader.read(&tp, 2, high, usize::MAX).await.unwrap().first().map(|r| r.offset), (high > 2).then_some(2));
        assert_eq!(reader.read(&tp, 0, 3, usize::MAX).await.unwrap().len(), 3.min(high as usize));
        // As batches the protocol carries, the same records.
        let again: Vec<i64> = super::records::batches(read)
            .unwrap()
            .into_iter()
            .flat_map(|b| {
                let b = tansu_sans_io::record::inflated::Batch::try_from(b).unwrap();
                b.records.into_iter().map(move |r| b.base_offset + i64::from(r.offset_delta))
            })
            .collect();
        assert_eq!(again, (0..high).collect::<Vec<_>>());
        total += high;
    }
    assert_eq!(total, 30);
    // With the tail forgotten, a Kafka consumer reads everything from the database: each record once.
    log.appends.forget();
    let c = consumer(&bus, "behind-the-tail", &topic, "100");
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 30 {
        let m = tokio::time::timeout(Duration::from_secs(60), c.recv()).await.expect("a record").unwrap();
        let value = String::from_utf8(rdkafka::Message::payload(&m).unwrap().to_vec()).unwrap();
        assert!(seen.insert(value.clone()), "{value} delivered twice");
    }
    assert_eq!(seen, (0..30).map(|i| format!("value {i}")).collect());
    drop(c);
    drop(p);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_broker_starts_only_with_sasl_users() {
    let dir = tempfile::tempdir().unwrap();
    let open = EmbeddedBroker::start("0.0.0.0:0".parse().unwrap(), dir.path()).await.err().expect("refused without users");
    let text = open.to_string();
    assert!(text.contains("0.0.0.0:0") && text.contains("reachable from other hosts") && text.contains("[[bus.users]]"), "{text}");
    let pw = dir.path().join("password");
    std::fs::write(&pw, "a broker password\n").unwrap();
    let users = vec![("trackiq".to_string(), crate::secret::Secret::read("test", "password", &crate::secret::SecretSource::File(pw.clone())).unwrap())];
    let options = super::BrokerOptions { users, ..Default::default() };
    let secured = EmbeddedBroker::start_with("0.0.0.0:0".parse().unwrap(), &options, dir.path()).await.expect("starts with users");
    drop(secured);
    let local = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), dir.path()).await.expect("loopback needs nothing");
    drop(local);
}

//! The stage runtime on a real broker with a stage built to misbehave: a panic on one record
//! dead-letters that record (with the panic message) and the stage goes on; a panic in its
//! periodic work makes the supervisor rebuild it, and what was not done is read again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trackiq_infra::metrics::PipelineMetrics;
use trackiq_infra::runtime::{Effects, Input, Stage, StageContext, StageError, supervise};
use trackiq_infra::{Bus, BusConfig, EmbeddedBroker, Shutdown};
use trackiq_producers::identity::{RunIdentity, run_started};
use trackiq_schemas::{AnyEvent, DeadLetter, Topics, registry};

#[derive(Default)]
struct Seen {
    runs: Mutex<Vec<String>>,
    builds: AtomicUsize,
    panic_in_tick: AtomicBool,
}

struct Fragile(Arc<Seen>);

impl Stage for Fragile {
    fn name(&self) -> &'static str {
        "fragile"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.runs.clone()]
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        let AnyEvent::RunStarted(r) = input.event else { return Ok(Effects::done()) };
        if r.workload.name == "boom" {
            panic!("cannot handle workload {}", r.workload.name);
        }
        self.0.runs.lock().unwrap().push(r.workload.name);
        Ok(Effects::done())
    }

    async fn tick(&mut self, _now: Instant) -> Result<Effects, StageError> {
        if self.0.panic_in_tick.swap(false, Ordering::SeqCst) {
            panic!("periodic work broke");
        }
        Ok(Effects::done())
    }

    fn tick_interval(&self) -> Duration {
        Duration::from_millis(100)
    }
}

fn send_run(bus: &Bus, rt: &tokio::runtime::Runtime, workload: &str) {
    let started = run_started("runtime-test", &RunIdentity { workload: workload.into(), workload_type: "test".into(), ..Default::default() });
    let producer = bus.producer().unwrap();
    rt.block_on(trackiq_infra::bus::send(&producer, &bus.topics().runs, started.run_id.as_bytes(), &registry().encode(&started).unwrap())).unwrap();
}

fn wait(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_panic_dead_letters_its_record_and_a_broken_stage_is_rebuilt() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = rt.block_on(EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), dir.path())).unwrap();
    let bus = Bus::new(BusConfig { listen: broker.addr().to_string(), partitions: 1, ..Default::default() });
    rt.block_on(bus.ensure_topics()).unwrap();
    let seen = Arc::new(Seen::default());
    let metrics = PipelineMetrics::new();
    let ctx = StageContext { bus: bus.clone(), metrics: metrics.clone(), group: "fragile".into(), stage: "fragile" };
    let s = seen.clone();
    let make = move || {
        let s = s.clone();
        async move {
            s.builds.fetch_add(1, Ordering::SeqCst);
            Ok::<_, StageError>(Fragile(s))
        }
    };
    let (trigger, shutdown) = Shutdown::new();
    let task = rt.spawn(supervise(ctx, make, shutdown));

    for w in ["a", "boom", "b"] {
        send_run(&bus, &rt, w);
    }
    wait("runs a and b handled", || seen.runs.lock().unwrap().len() >= 2);
    assert_eq!(*seen.runs.lock().unwrap(), ["a", "b"], "the record after the panicking one is handled");
    wait("the dead letter", || metrics.encode().contains("trackiq_dead_letters_total{stage=\"fragile\"} 1"));

    // A panic outside any record: the stage is rebuilt and goes on.
    seen.panic_in_tick.store(true, Ordering::SeqCst);
    wait("a rebuilt stage", || seen.builds.load(Ordering::SeqCst) >= 2);
    send_run(&bus, &rt, "c");
    wait("run c handled by the new stage", || seen.runs.lock().unwrap().iter().any(|r| r == "c"));
    assert!(metrics.encode().contains("trackiq_stage_restarts_total{stage=\"fragile\"} 1"), "{}", metrics.encode());

    // The dead letter says which stage panicked and why, with the original bytes.
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.addr().to_string())
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    rdkafka::consumer::Consumer::subscribe(&consumer, &[bus.topics().dlq.as_str()]).unwrap();
    let letter = loop {
        if let Some(Ok(m)) = consumer.poll(Duration::from_secs(1)) {
            break registry().decode::<DeadLetter>(rdkafka::Message::payload(&m).unwrap()).unwrap();
        }
    };
    assert_eq!(letter.stage, "fragile");
    assert!(letter.reason.contains("fragile panicked on this record: cannot handle workload boom"), "{}", letter.reason);
    let AnyEvent::RunStarted(original) = registry().decode_any(&letter.payload).unwrap() else { panic!("not the original record") };
    assert_eq!(original.workload.name, "boom");

    trigger.trigger();
    rt.block_on(task).unwrap();
    drop((consumer, bus));
    broker.stop();
}

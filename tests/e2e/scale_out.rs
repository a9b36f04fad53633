//! Scale out: a `trackiq broker` process and two `trackiq up --brokers ...` instances sharing
//! every consumer group and one data directory. Runs of several series stream in; one
//! instance is killed with SIGKILL mid-ingest and a fresh one takes its place (a new member:
//! the groups rebalance when it joins and again when the dead member's session expires, so
//! partitions move between the survivor and the newcomer while samples stream). Then every
//! sample is archived exactly once (by count and by identity) and every run has exactly one
//! summary record and one verdict record.
//!
//! The replacement is needed with the embedded broker: tansu 0.6 expels the dead member after
//! the session timeout, but the survivor, alone in the group, is given back only its own
//! partitions (measured: 6 of 12 runs partitions), so the dead member's would wait forever;
//! and a member joining before the dead one is expelled was once left with no partitions at
//! all. So the replacement joins after the expulsion, which the survivor's log shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use trackiq_infra::{Bus, BusConfig};
use trackiq_producers::emitter::{Batching, RunEmitter};
use trackiq_producers::identity::{RunIdentity, run_started};
use trackiq_schemas::{RunStatus, Sample};

use crate::support::*;

/// Series (distinct keys, spread over the partitions and so over both instances).
const SERIES: i64 = 8;
const RUNS: i64 = 16;
const PER_RUN: i64 = 1_000;
/// Samples per record and the pause between records: a run lasts about 1.5 s.
const BATCH: i64 = 100;
const PACE: Duration = Duration::from_millis(150);

/// Streams RUNS runs, one after another, round-robin over SERIES series.
fn stream(brokers: String, pushed: Arc<AtomicI64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let bus = Bus::new(BusConfig { brokers, ..Default::default() });
            for r in 0..RUNS {
                let id = RunIdentity { workload: format!("scale-out-{}", r % SERIES), workload_type: "test".into(), ..Default::default() };
                let batching = Batching { max_samples: BATCH as usize, linger: Duration::from_secs(5) };
                let mut emitter = RunEmitter::start(&bus, run_started("scale-out", &id), batching).await.unwrap();
                for step in 0..PER_RUN {
                    let value = 10.0 + (step % 7) as f64 * 0.1;
                    let s = Sample { ts_us: trackiq_schemas::now_us(), metric: "latency_ms".into(), value, unit: "ms".into(), rank: None, step: Some(step) };
                    emitter.push(s).await.unwrap_or_else(|e| panic!("run {r} step {step}: {e}"));
                    pushed.fetch_add(1, Ordering::Relaxed);
                    if step % BATCH == 0 {
                        tokio::time::sleep(PACE).await;
                    }
                }
                emitter.finish(RunStatus::Completed, None).await.unwrap();
            }
        });
    })
}

/// The configuration of one instance: dynamic group membership (tansu never expires a dead
/// static member, so its partitions would never move), Parquet every second, metrics on a
/// free port.
fn instance_config(dir: &Path, id: &str) -> PathBuf {
    let p = dir.join(format!("{id}.toml"));
    std::fs::write(&p, "[bus]\nstatic_membership = false\n[archiver]\nflush_secs = 1\n[metrics]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    p
}

fn instance(brokers: &str, data: &str, dir: &Path, id: &str) -> Up {
    let args: Vec<String> = ["up", "--brokers", brokers, "--role", "aggregator,archiver", "--role", "verdict,sinks", "--kafka-option", "fetch.wait.max.ms=100"]
        .map(String::from)
        .to_vec();
    Up::spawn(&args, brokers, data, &instance_config(dir, id), &[], "trackiq is up")
}

#[test]
fn two_instances_share_the_work_and_one_killed_mid_ingest_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let brokers = format!("127.0.0.1:{}", free_port());
    let broker_args: Vec<String> = ["broker", "--listen", &brokers].map(String::from).to_vec();
    let broker = Up::spawn(&broker_args, &brokers, &data, &fast_config(dir.path()), &[], "trackiq broker is up");
    let a = instance(&brokers, &data, dir.path(), "a");
    let b = instance(&brokers, &data, dir.path(), "b");
    let pushed = Arc::new(AtomicI64::new(0));
    let producer = stream(brokers.clone(), pushed.clone());
    let total = RUNS * PER_RUN;
    // Mid-run, well after the previous run's summary was committed.
    let kill_at = RUNS / 2 * PER_RUN + PER_RUN * 7 / 10;
    wait_for(&format!("{kill_at} samples pushed"), Duration::from_secs(60), || (pushed.load(Ordering::Relaxed) >= kill_at).then_some(()));
    let a_log = a.log.clone();
    let assignments = || b.log.lock().unwrap().matches("partitions assigned").count();
    let before = assignments();
    a.kill9();
    let killed_after = started.elapsed();
    // The broker expels the dead member after the session timeout: the survivor's four stages
    // are assigned again. Only then does the replacement join (see the module doc).
    wait_for("the dead member expelled", Duration::from_secs(30), || (assignments() >= before + 4).then_some(()));
    let c = instance(&brokers, &data, dir.path(), "c");
    producer.join().expect("the producer streamed every sample");
    let (rows, distinct) = wait_for("every sample archived", Duration::from_secs(90), || {
        let r = sql(&b, "SELECT count(*) AS n, count(DISTINCT run_id || '/' || CAST(step AS VARCHAR)) AS d FROM samples");
        let (n, d) = (r[0]["n"].as_i64().unwrap(), r[0]["d"].as_i64().unwrap());
        (d >= total).then_some((n, d))
    });
    let verdicts = wait_for("a verdict for every run", Duration::from_secs(60), || {
        let n = sql_n(&b, "SELECT count(DISTINCT run_id) AS n FROM verdicts");
        (n >= RUNS).then_some(n)
    });
    let verdict_records = sql_n(&b, "SELECT count(*) AS n FROM (SELECT DISTINCT run_id, kafka_partition, kafka_offset FROM verdicts)");
    let summaries = sql_n(&b, "SELECT count(DISTINCT run_id) AS n FROM summaries");
    let summary_records = sql_n(&b, "SELECT count(*) AS n FROM (SELECT DISTINCT run_id, kafka_partition, kafka_offset FROM summaries)");
    let by_a = a_log.lock().unwrap().matches("run summarised").count();
    let by_b = b.log.lock().unwrap().matches("run summarised").count();
    let by_c = c.log.lock().unwrap().matches("run summarised").count();
    let moved = b.log.lock().unwrap().matches("partitions moved").count();
    eprintln!(
        "scale out (2 instances, 1 killed at {kill_at} of {total} samples pushed, {:.1}s): samples {rows} rows, {distinct} distinct of {total}; \
         summaries {summary_records} records for {summaries} runs of {RUNS}; verdicts {verdict_records} records for {verdicts} runs; \
         runs summarised by the killed instance {by_a}, the survivor {by_b}, the replacement {by_c}; partition moves seen by the survivor's stages {moved}; total {:.1}s",
        killed_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!((rows, distinct), (total, total), "every sample archived exactly once");
    assert_eq!((summaries, verdicts), (RUNS, RUNS), "every run summarised and judged");
    assert_eq!(summary_records, RUNS, "one summary record per run");
    assert_eq!(verdict_records, RUNS, "one verdict record per run");
    assert!(by_a > 0 && by_b > 0, "both instances did part of the work ({by_a}, {by_b})");
    assert!(moved >= 4 * 3, "the survivor's four stages took part in three rebalances at least: {moved} moves");
    assert!(c.stop().success());
    assert!(b.stop().success());
    assert!(broker.stop().success());
}

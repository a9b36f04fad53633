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


use crate::support::*;

/// Series (distinct keys, spread over the partitions and so over both instances).
const SERIES: i64 = 8;
const RUNS: i64 = 16;
const PER_RUN: i64 = 1_000;
/// Samples per record and the pause between records: a run lasts about 1.5 s.
const BATCH: i64 = 100;
const PACE: Duration = Duration::from_millis(150);

/// The configuration of one instance: dynamic group membership (tansu never expires a dead
/// static member, so its partitions would never move), Parquet every second, metrics on a
/// free port.
fn instance_config(dir: &Path, id: &str) -> PathBuf {
    let p = dir.join(format!("{id}.toml"));
    std::fs::write(&p, "[bus]\nstatic_membership = false\n[archiver]\nflush_secs = 1\n[metrics]\nlisten = \"127.0.0.1:0\"\n[dashboard]\nlisten = \"127.0.0.1:0\"\n[sql_server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
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
    let broker_args: Vec<String> = ["broker", "--broker-listen", &brokers].map(String::from).to_vec();
    let broker = Up::spawn(&broker_args, &brokers, &data, &fast_config(dir.path()), &[], "trackiq broker is up");
    let a = instance(&brokers, &data, dir.path(), "a");
    let b = instance(&brokers, &data, dir.path(), "b");
    let pushed = Arc::new(AtomicI64::new(0));
    let runs = PacedRuns { runs: RUNS, per_run: PER_RUN, batch: BATCH, pace: PACE, tool: "scale-out", workload: |r| format!("scale-out-{}", r % SERIES) };
    let producer = runs.stream(brokers.clone(), pushed.clone());
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
    let ArchivedOnce { rows, distinct, verdicts, verdict_records, summaries, summary_records } = wait_archived(&b, total, RUNS, Duration::from_secs(90));
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

//! `kill -9` of `trackiq up` while samples stream in, five times, and a broker whose database
//! is lost: no sample is lost or archived twice (checked by identity), every run gets one
//! verdict, each restart is ready within seconds, and a new broker's records are never
//! mistaken for archived ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};


use crate::support::*;

const RUNS: i64 = 20;
const PER_RUN: i64 = 5_000;
const KILLS: i64 = 5;
/// Samples per record, and the pause between records: the stream lasts about a minute.
const BATCH: i64 = 500;
const PACE: Duration = Duration::from_millis(250);
/// A restart must be ready (every stage has its partitions) within this.
const READY_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn kill_9_five_times_while_samples_stream_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let config = fast_config(dir.path());
    let brokers = format!("127.0.0.1:{}", free_port());
    let mut up = Up::start_at(&brokers, &data, &config, &[], &[]);
    let pushed = Arc::new(AtomicI64::new(0));
    let runs = PacedRuns { runs: RUNS, per_run: PER_RUN, batch: BATCH, pace: PACE, tool: "crash-loop", workload: |_| "kill-9".into() };
    let producer = runs.stream(brokers.clone(), pushed.clone());
    let total = RUNS * PER_RUN;
    let mut restarts = Vec::new();
    for k in 1..=KILLS {
        let at = total * k / (KILLS + 1);
        wait_for(&format!("{at} samples pushed"), Duration::from_secs(180), || (pushed.load(Ordering::Relaxed) >= at).then_some(()));
        up.kill9();
        let t = Instant::now();
        up = Up::start_at(&brokers, &data, &config, &[], &[]);
        restarts.push((pushed.load(Ordering::Relaxed), t.elapsed(), up.ready_after));
    }
    producer.join().expect("the producer streamed every sample");
    let ArchivedOnce { rows, distinct, verdicts, verdict_records, summaries, summary_records } = wait_archived(&up, total, RUNS, Duration::from_secs(180));
    eprintln!(
        "kill -9 x{KILLS}: samples {rows} rows, {distinct} distinct of {total}; summaries {summary_records} records for {summaries} runs; verdicts {verdict_records} records for {verdicts} runs; restarts (samples pushed, ready after): {:?}",
        restarts.iter().map(|(p, _, r)| (*p, format!("{:.2}s", r.as_secs_f64()))).collect::<Vec<_>>()
    );
    if rows != distinct {
        let dups = sql(&up, "SELECT run_id, batch_seq, count(*) AS n, count(DISTINCT kafka_partition * 1000000000 + kafka_offset) AS offsets, min(kafka_offset) AS first, max(kafka_offset) AS last FROM samples GROUP BY run_id, batch_seq, step HAVING count(*) > 1 LIMIT 5");
        eprintln!("duplicated samples (several offsets: the log holds the batch twice): {dups:?}");
    }
    assert_eq!((rows, distinct), (total, total), "every sample archived exactly once");
    assert_eq!((summaries, verdicts), (RUNS, RUNS));
    assert_eq!((summary_records, verdict_records), (RUNS, RUNS), "one summary and one verdict per run");
    let repeated = sql_n(&up, "SELECT count(*) - count(DISTINCT run_id || '/' || kind || '/' || metric) AS n FROM summaries");
    assert_eq!(repeated, 0, "no summary row reaches a query twice");
    for (p, _, ready) in &restarts {
        assert!(*ready < READY_WITHIN, "restart after {p} samples took {ready:?}");
    }
    assert!(up.stop().success());
}

#[test]
fn a_new_broker_over_an_existing_history_loses_nothing_and_keeps_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = format!("file://{}", data_dir.display());
    let config = fast_config(dir.path());
    let record_runs = |up: &Up, tag: &str| -> Vec<String> {
        (0..5)
            .map(|i| {
                let v = format!("latency_ms={}", 10.0 + i as f64 * 0.1);
                recorded_run_id(&ok(&up.cli(&["record", "--workload", "lost-broker", "--version-tag", tag, "--metric", &v])))
            })
            .collect()
    };
    let up = Up::start(&data, &config, &[], &[]);
    let before = record_runs(&up, "before");
    wait_for("5 verdicts archived", Duration::from_secs(60), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM verdicts") >= 5).then_some(()));
    assert!(up.stop().success());
    // The broker's database is lost; the history stays.
    std::fs::remove_dir_all(data_dir.join("broker")).unwrap();
    let up = Up::start(&data, &config, &[], &[]);
    let after = record_runs(&up, "after");
    let all: Vec<String> = before.iter().chain(&after).cloned().collect();
    for (table, what) in [("runs", "runs"), ("summaries", "summaries"), ("verdicts", "verdicts")] {
        let n = wait_for(&format!("10 {what}"), Duration::from_secs(60), || {
            let n = sql_n(&up, &format!("SELECT count(DISTINCT run_id) AS n FROM {table}"));
            (n >= 10).then_some(n)
        });
        assert_eq!(n, 10, "{table}: every run of both brokers");
    }
    // The new broker's runs are judged against the old history: the first has 5 baseline runs.
    let first_after = &after[0];
    let rows = sql(&up, &format!("SELECT baseline_count FROM verdicts WHERE run_id = '{first_after}' AND metric = 'latency_ms' AND kind = 'metric'"));
    assert_eq!(rows[0]["baseline_count"], 5, "judged against the 5 runs before the broker was lost: {rows:?}");
    assert!(all.iter().all(|id| !id.is_empty()));
    assert!(up.stop().success());
}

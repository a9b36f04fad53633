//! The `compactor` role merges the archiver's small objects while the pipeline runs; after a
//! SIGKILL and a restart over the same log, the archiver replays what it had not committed
//! and writes none of the merged rows again (it knows their offsets from the commit records).
//! DuckDB counting through `trackiq tables --duckdb` while a merge runs never sees a wrong count.

use std::time::Duration;

use crate::support::*;

/// Runs one run and waits until its verdict is in the history (so each run's rows are in
/// their own archiver objects).
fn judged_run(up: &Up, i: usize) -> String {
    let run = recorded_run_id(&ok(&up.cli(&["record", "--workload", "compact-me", "--metric", &format!("latency_ms={}", 10 + i), "--metric", "tokens_per_s=100"])));
    wait_for("the run's verdict", Duration::from_secs(60), || (sql_n(up, &format!("SELECT count(*) AS n FROM verdicts WHERE run_id = '{run}'")) > 0).then_some(()));
    run
}

/// Sample rows, and distinct samples by run, metric, time and offset.
fn sample_counts(up: &Up) -> (i64, i64) {
    let rows = sql_n(up, "SELECT count(*) AS n FROM samples");
    let distinct = sql_n(up, "SELECT count(DISTINCT run_id || '/' || metric || '/' || CAST(ts AS VARCHAR) || '/' || CAST(kafka_offset AS VARCHAR)) AS n FROM samples");
    (rows, distinct)
}

fn commit_records(data_dir: &std::path::Path, table: &str) -> usize {
    std::fs::read_dir(data_dir.join(table).join("_compactions")).map(|d| d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json")).count()).unwrap_or(0)
}

/// DuckDB (Python) counting `samples` in a loop, through the views `trackiq tables --duckdb`
/// prints at each turn, and through a glob; `None` when DuckDB is missing.
struct DuckdbCounting {
    child: std::process::Child,
    stop: std::path::PathBuf,
}

const COUNT_LOOP: &str = r#"
import duckdb, os, subprocess, sys
trackiq, data, root, stop = sys.argv[1:5]
turns = 0
while turns < 2 or not os.path.exists(stop):
    views = subprocess.run([trackiq, "--data", data, "tables", "--duckdb", "samples"], capture_output=True, text=True, check=True).stdout
    con = duckdb.connect()
    con.execute(views)
    n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    g = con.execute(f"SELECT count(*) FROM read_parquet('{root}/samples/*/*.parquet')").fetchone()[0]
    print(n, g, flush=True)
    turns += 1
"#;

fn duckdb_counting(data: &str, data_dir: &std::path::Path) -> Option<DuckdbCounting> {
    if !crate::skips::have("DuckDB counting while a merge runs", &crate::skips::DUCKDB) {
        return None;
    }
    let stop = data_dir.with_file_name("stop-counting");
    let child = std::process::Command::new("python3")
        .args(["-c", COUNT_LOOP, BIN, data, &data_dir.display().to_string(), &stop.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Some(DuckdbCounting { child, stop })
}

impl DuckdbCounting {
    /// Ends the loop after its current turn (and at least two turns) and returns every
    /// (count through the views, count through the glob).
    fn stop(self) -> Vec<(i64, i64)> {
        std::fs::write(&self.stop, "").unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "the DuckDB loop failed");
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split_once(' ').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())).unwrap()).collect()
    }
}

#[test]
fn the_compactor_merges_a_live_history_and_a_killed_pipeline_archives_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = format!("file://{}", data_dir.display());
    let config = fast_config(dir.path());
    std::fs::write(&config, format!("{}[compactor]\ninterval_secs = 1\nmin_objects = 2\n", std::fs::read_to_string(&config).unwrap())).unwrap();
    let brokers = format!("127.0.0.1:{}", free_port());
    let up = Up::start_at(&brokers, &data, &config, &[], &[]);
    for i in 0..6 {
        judged_run(&up, i);
    }
    wait_for("a committed compaction of samples", Duration::from_secs(60), || (commit_records(&data_dir, "samples") > 0).then_some(()));
    // The samples table flushes on its own schedule, apart from the verdicts table that
    // `judged_run` waited for (CI saw 5 of 6 runs' samples at this point once).
    wait_for("the six runs' samples", Duration::from_secs(60), || (sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM samples") == 6).then_some(()));
    let (rows, distinct) = sample_counts(&up);
    assert_eq!(rows, distinct, "no sample is seen twice while the compactor works");
    up.kill9();

    // Restart over the same broker log and history: uncommitted offsets are replayed.
    let up = Up::start_at(&brokers, &data, &config, &[], &[]);
    let last = judged_run(&up, 6);
    let new_rows = sql_n(&up, &format!("SELECT count(*) AS n FROM samples WHERE run_id = '{last}'"));
    let duckdb = duckdb_counting(&data, &data_dir);
    let out = ok(&up.cli(&["compact", "--table", "samples"]));
    eprintln!("{out}");
    if let Some(counting) = duckdb {
        let counts = counting.stop();
        let expected = rows + new_rows;
        assert!(counts.len() >= 2 && counts.iter().all(|(views, _)| *views == expected), "DuckDB over the listed objects always counts {expected}: {counts:?}");
        // A glob also matches the merge's inputs while they are retained: why the views exist.
        assert!(counts.last().unwrap().1 > expected, "the glob counts the retained inputs too: {counts:?}");
    }
    assert!(out.contains("samples") && out.contains("objects after"), "{out}");
    let (rows_after, distinct_after) = sample_counts(&up);
    assert_eq!((rows_after, distinct_after), (rows + new_rows, rows + new_rows), "every sample once after the kill, the replay and another pass");
    assert_eq!(sql_n(&up, "SELECT count(DISTINCT run_id) AS n FROM samples"), 7);
    let visible_objects = std::fs::read_dir(data_dir.join("samples")).unwrap().flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten()).filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("c-")).count();
    assert!(visible_objects >= 1, "compacted objects are in place");
    assert!(up.stop().success());

    // The compactor role alone needs no Kafka: with an unreachable broker it starts, passes
    // at once, and reports itself up.
    let args: Vec<String> = ["up", "--role", "compactor", "--brokers", "127.0.0.1:1"].map(String::from).to_vec();
    let alone = Up::spawn(&args, "127.0.0.1:1", &data, &config, &[], "trackiq is up");
    let metrics = wait_for("the compactor's stage metric", Duration::from_secs(30), || {
        let text = alone.metrics_text();
        text.contains("trackiq_stage_up{stage=\"compactor\"} 1").then_some(text)
    });
    assert!(!metrics.contains("stage=\"archiver\""), "only the compactor runs: {metrics}");
    assert!(alone.stop().success());
}

//! `trackiq cluster`: real worker processes, a real TCP ring all-reduce, real faults, and
//! the pipeline's streaming detectors catching them.

use std::time::Duration;

use crate::pipeline::uuid_in;
use crate::support::{Receiver, Up, fast_config, ok, sql, wait_for};

const TRAIN: [&str; 8] = ["cluster", "run", "--workers", "4", "--grad-mib", "0.25", "--failure-timeout", "2s"];
/// Detection latency bound: the detector's own window (a closed connection for a dead rank,
/// 250 ms or five steps for a hung one, three slow steps for a straggler or a slow link) plus
/// batching and Kafka hops, with room for a loaded 2-core CI machine.
const MAX_DETECTION_LATENCY_MS: f64 = 5000.0;

fn derived(up: &Up, run: &str, metric: &str) -> Option<f64> {
    let q = format!("SELECT mean FROM summaries WHERE run_id = '{run}' AND kind = 'derived' AND metric = '{metric}'");
    sql(up, &q).first().and_then(|r| r["mean"].as_f64())
}

#[test]
fn training_is_real_and_every_injected_fault_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let on_call = Receiver::start(0);
    let up = Up::start(&data, &fast_config(dir.path()), std::slice::from_ref(&on_call.url), &[]);
    let alert = |run: &str, detector: &str| {
        on_call.bodies.lock().unwrap().iter().find(|b| b["event"] == "trackiq.detection" && b["run_id"] == run && b["detector"] == detector).cloned()
    };

    // A clean run: loss falls, every step's sums agree bit for bit and with the serial sum.
    let out = ok(&up.cli(&[&TRAIN[..], &["--steps", "50"]].concat()));
    let clean = uuid_in(&out);
    assert!(out.contains("50 steps completed") && out.contains("bit-identical on every rank"), "{out}");
    let q = format!("SELECT step, avg(value) AS loss, count(*) AS ranks FROM samples WHERE run_id = '{clean}' AND metric = 'cluster.loss' GROUP BY step ORDER BY step");
    let loss = wait_for("50 steps of loss", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r.len() == 50));
    assert!(loss.iter().all(|r| r["ranks"].as_i64() == Some(4)), "every rank reports every step");
    let (first, last) = (loss[0]["loss"].as_f64().unwrap(), loss[49]["loss"].as_f64().unwrap());
    assert!(last < 0.1 * first, "loss {first} -> {last}");
    let q = format!(
        "SELECT metric, count(*) AS n, max(value) AS max FROM samples WHERE run_id = '{clean}' AND metric IN \
         ('cluster.compute_ms', 'cluster.allreduce_ms', 'cluster.step_ms', 'cluster.busbw_gbps', 'cluster.allreduce_bytes', 'cluster.allreduce_error') \
         GROUP BY metric ORDER BY metric"
    );
    let per_metric = sql(&up, &q);
    let n = |m: &str| per_metric.iter().find(|r| r["metric"] == m).and_then(|r| r["n"].as_i64());
    for m in ["cluster.compute_ms", "cluster.allreduce_ms", "cluster.step_ms", "cluster.busbw_gbps"] {
        assert_eq!(n(m), Some(200), "{m}: 4 ranks x 50 steps");
    }
    assert_eq!(n("cluster.allreduce_error"), Some(50), "one serial-sum check per step");
    let max_err = per_metric.iter().find(|r| r["metric"] == "cluster.allreduce_error").unwrap()["max"].as_f64().unwrap();
    assert!(max_err <= 1e-5, "ring sum vs serial sum: {max_err}");
    // busbw = algbw x 2(n-1)/n for every rank and step.
    let q = format!(
        "SELECT max(abs(b.value - a.value * 1.5)) AS worst FROM samples a JOIN samples b ON a.run_id = b.run_id AND a.rank = b.rank AND a.step = b.step \
         WHERE a.run_id = '{clean}' AND a.metric = 'cluster.algbw_gbps' AND b.metric = 'cluster.busbw_gbps'"
    );
    assert!(sql(&up, &q)[0]["worst"].as_f64().unwrap() < 1e-12);
    let fa = wait_for("the clean run's summary", Duration::from_secs(60), || derived(&up, &clean, "false_alarms"));
    assert_eq!(fa, 0.0, "no detection over 50 fault-free steps: {}", up.log.lock().unwrap());
    assert!(!on_call.bodies.lock().unwrap().iter().any(|b| b["event"] == "trackiq.detection"), "and no alert");
    assert!(derived(&up, &clean, "comm_overhead_pct").is_some_and(|p| p > 0.0 && p < 100.0));
    assert!(derived(&up, &clean, "cluster_samples_per_sec").is_some_and(|s| s > 0.0));

    // Each fault, really injected, is caught by its detector on the right rank.
    for (fault, kind, detector, rank, fails) in [
        ("slow-rank:2:50ms@5", "slow_rank", "straggler", Some(2), false),
        ("net-delay:1:20ms@5", "net_delay", "slow_link", Some(1), false),
        ("kill-rank:3@5", "kill_rank", "failed_worker", Some(3), true),
        ("stall:1@5", "stall", "stalled_worker", Some(1), true),
    ] {
        let out = up.cli(&[&TRAIN[..], &["--steps", "20", "--fault", fault]].concat());
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
        let run = uuid_in(&stdout);
        assert_eq!(!out.status.success(), fails, "{fault}: {stdout}\n{stderr}");
        if let (true, Some(r)) = (fails, rank) {
            // Survivors time out; the run ends failed, naming the rank and the step.
            assert!(stderr.contains(&format!("rank {r} failed at step 5")), "{fault}: {stderr}");
            assert!(stdout.contains("5 steps completed"), "{stdout}");
        }
        let q = format!("SELECT detector, rank FROM detections WHERE run_id = '{run}' AND detector = '{detector}'");
        let hit = wait_for(&format!("{detector} on {fault}"), Duration::from_secs(60), || sql(&up, &q).into_iter().next());
        if let Some(r) = rank {
            assert_eq!(hit["rank"].as_i64(), Some(r), "{fault}");
        }
        // The on-call webhook got the detection as it was raised, not only with the verdict.
        let body = wait_for(&format!("{detector} alert"), Duration::from_secs(30), || alert(&run, detector));
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        let latency = wait_for(&format!("detection latency of {fault}"), Duration::from_secs(60), || derived(&up, &run, &format!("detection_latency_ms.{kind}")));
        assert!(latency > 0.0 && latency < MAX_DETECTION_LATENCY_MS, "{fault}: detected after {latency} ms");
        assert_eq!(derived(&up, &run, "faults_missed"), Some(0.0), "{fault}");
        // The same detection through the alert path: fired once as it was raised, ended
        // quietly with the run; the run's verdict does not alert on it a second time.
        let q = format!("SELECT subject, state, notify FROM alerts WHERE series_id = '{run}' AND subject LIKE 'detection:{detector}%' ORDER BY subject, updated_at");
        let done = |r: &Vec<serde_json::Value>| !r.is_empty() && r.iter().filter(|x| x["state"] == "resolved").count() * 2 == r.len();
        let rows = wait_for(&format!("{detector} alerts and their end"), Duration::from_secs(60), || Some(sql(&up, &q)).filter(done));
        for pair in rows.chunks(2) {
            let states: Vec<(&str, &str)> = pair.iter().map(|r| (r["state"].as_str().unwrap(), r["notify"].as_str().unwrap())).collect();
            assert_eq!(states, [("firing", "firing"), ("resolved", "none")], "{fault}: {}", pair[0]["subject"]);
        }
        let q = format!("SELECT count(*) AS n FROM alerts WHERE run_id = '{run}' AND subject LIKE 'finding:cluster_detection:%'");
        assert_eq!(sql(&up, &q)[0]["n"].as_i64(), Some(0), "{fault}: the verdict repeats no detection as an alert");
        let q = format!("SELECT status FROM summaries WHERE run_id = '{run}' LIMIT 1");
        assert_eq!(sql(&up, &q)[0]["status"], if fails { "failed" } else { "completed" });
    }
    let _ = up.stop();
}

#[test]
fn collective_sweep_and_scaling_efficiency_join_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);

    let out = ok(&up.cli(&["cluster", "bench", "--workers", "3", "--sizes", "8B..256KiB", "--iterations", "5", "--warmup", "1"]));
    let run = uuid_in(&out);
    assert!(out.contains("avg bus bandwidth"), "{out}");
    // 8 B .. 256 KiB doubling: 16 sizes, out-of-place and in-place, all correct.
    let q = format!("SELECT metric, mean FROM summaries WHERE run_id = '{run}' AND (metric LIKE 'busbw_gbps.%' OR metric LIKE 'algbw_gbps.%')");
    let rows = wait_for("the sweep summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r.len() == 32));
    let get = |m: String| rows.iter().find(|r| r["metric"] == m.as_str()).and_then(|r| r["mean"].as_f64()).unwrap();
    for size in (3..=18).map(|p| 1u64 << p) {
        let (alg, bus) = (get(format!("algbw_gbps.{size}B")), get(format!("busbw_gbps.{size}B")));
        assert!(alg > 0.0 && (bus - alg * 4.0 / 3.0).abs() < 1e-9 * bus.max(1.0), "{size} B: algbw {alg} busbw {bus}");
    }

    let out = ok(&up.cli(&["cluster", "scaling", "--workers", "1,2,4", "--steps", "10", "--grad-mib", "0.25"]));
    let scaling_run = out.lines().find_map(|l| l.strip_prefix("scaling run ")).expect("the scaling run id").trim().to_string();
    let q = format!("SELECT metric, mean FROM summaries WHERE run_id = '{scaling_run}' AND kind = 'samples' ORDER BY metric");
    let rows = wait_for("the scaling summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r.len() == 6));
    let get = |m: &str| rows.iter().find(|r| r["metric"] == m).and_then(|r| r["mean"].as_f64()).unwrap();
    assert!((get("scaling_efficiency_pct.n1") - 100.0).abs() < 1e-9);
    for n in [2.0, 4.0] {
        let expect = get(&format!("samples_per_sec.n{n}")) / (n * get("samples_per_sec.n1")) * 100.0;
        let eff = get(&format!("scaling_efficiency_pct.n{n}"));
        assert!((eff - expect).abs() < 1e-9 * expect, "{n} workers: {eff} vs {expect}");
    }
    let _ = up.stop();
}

/// `trackiq bench faults` end to end: its own pipeline, real cluster runs with the matrix's
/// faults really injected, and a table whose counts are those of the runs.
#[test]
fn fault_bench_scores_real_runs_as_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .args(["bench", "faults", "--runs", "4", "--seed", "3", "--steps", "24", "--failure-timeout", "2s", "--fault-free", "0.25"])
        .arg("--out")
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = ok(&out);
    let row = |label: &str| -> Vec<String> {
        let line = text.lines().find(|l| l.split('┆').next().is_some_and(|c| c.trim_start_matches('│').trim() == label)).unwrap_or_else(|| panic!("no {label} row:\n{text}"));
        line.trim_matches(|c| c == '│' || c == ' ').split('┆').map(|c| c.trim().to_string()).collect()
    };
    let mut injected = 0;
    for kind in ["slow_rank", "net_delay", "kill_rank", "stall"] {
        let r = row(kind);
        let n: usize = r[1].parse().unwrap();
        injected += n;
        // Every fault the detectors see in these runs is caught on its rank.
        assert_eq!((r[2].as_str(), r[4].as_str()), (r[1].as_str(), if n > 0 { "100 %" } else { "-" }), "{kind}: {text}");
    }
    assert!(injected > 0, "the seeded matrix injected faults:\n{text}");
    // The table's precision line counts every detection of the runs.
    let precision = text.lines().find(|l| l.starts_with("precision ")).expect("precision line");
    assert!(precision.contains("100 %") && precision.contains("false alarms"), "{precision}\n{text}");
    assert!(!text.contains(" missed,"), "{text}");
}

//! The README's quick start, run as written: its command lines go through `sh` with the
//! binary first on `PATH`, in a fresh directory (so `./trackiq-data` is new), in order. Only
//! the addresses differ from a user's: the environment (`TRACKIQ_LISTEN`, and a config in
//! `TRACKIQ_CONFIG` with free metrics and dashboard ports) keeps tests from colliding.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{BIN, fast_config, free_port, http_get};

/// The command lines of the README's "Quick start" section, in order.
fn quick_start_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## Quick start\n").nth(1).expect("a Quick start section").split("\n## ").next().unwrap();
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in section.lines().map(str::trim) {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if in_code && !line.is_empty() {
            lines.push(line.to_string());
        }
    }
    lines
}

/// The run id of the newest benchmark, from the verdict command it printed under its table.
fn last_run_id(out: &str) -> String {
    let line = out.lines().rev().find(|l| l.starts_with("verdict: ")).unwrap_or_else(|| panic!("no `verdict:` line in:\n{out}"));
    line.split_whitespace().find(|w| w.len() == 36 && w.matches('-').count() == 4).expect("a run id in the verdict line").to_string()
}

#[test]
fn the_readme_quick_start_runs_as_written_in_a_fresh_directory() {
    let dir = tempfile::tempdir().unwrap();
    let lines = quick_start_lines();
    assert_eq!(lines.first().map(String::as_str), Some("trackiq up"), "{lines:?}");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let config = fast_config(dir.path());
    let env = [("PATH", path), ("TRACKIQ_LISTEN", format!("127.0.0.1:{}", free_port())), ("TRACKIQ_CONFIG", config.display().to_string())];
    let sh = |line: &str| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).current_dir(dir.path()).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        c
    };

    // 1. The pipeline, in the foreground of its own terminal.
    // `exec`: the signal at the end reaches trackiq, not a shell around it.
    let mut up = sh(&format!("exec {}", lines[0])).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(up.stdout.take().unwrap());
    let mut ready = String::new();
    while !ready.contains("trackiq is up") {
        ready.clear();
        assert!(stdout.read_line(&mut ready).unwrap() > 0, "`trackiq up` ended before it was up");
    }
    std::thread::spawn(move || for _ in stdout.lines() {});
    let dashboard = ready.split("dashboard ").nth(1).and_then(|r| r.split_whitespace().next()).expect("the dashboard's address").to_string();

    let mut run_id: Option<String> = None;
    let mut outputs = Vec::new();
    for line in &lines[1..] {
        let line = match &run_id {
            Some(id) => line.replace("<run_id>", id.as_str()),
            None => line.clone(),
        };
        let out = sh(&line).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let code = out.status.code();
        if line.contains("bench cmd") {
            assert_eq!(code, Some(0), "`{line}`:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(text.matches("verdict: ").count(), 4, "four runs, each with its verdict command:\n{text}");
            run_id = Some(last_run_id(&text));
        } else if line.contains(" gate ") {
            // 0 pass/warn, 1 block: either way a verdict was read (2 would be none in time).
            assert!(matches!(code, Some(0 | 1)), "`{line}` exited {code:?}:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
            assert!(text.starts_with("### trackiq gate: "), "{text}");
            assert!(text.contains("| latency_ms |"), "{text}");
        } else {
            assert_eq!(code, Some(0), "`{line}`:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        outputs.push(text);
    }
    assert!(run_id.is_some(), "the quick start benchmarks something: {lines:?}");
    // 5. The SQL step lists the four runs' latency verdicts, the first three without a baseline.
    let sql = outputs.last().unwrap();
    assert_eq!(sql.matches("insufficient_data").count(), 3, "{sql}");
    // 4. The dashboard it printed answers.
    let page = http_get(&dashboard);
    assert!(page.contains("trackiq"), "{page}");
    crate::support::wait_for("the history in ./trackiq-data", Duration::from_secs(5), || dir.path().join("trackiq-data/verdicts").is_dir().then_some(()));
    let _ = Command::new("kill").arg("-INT").arg(up.id().to_string()).status();
    let _ = up.wait();
}

//! `trackiq bisect`: a git repository made here, 16 commits of a small C program; commit 11
//! adds 25 % work and commit 6 does not compile. With `--alert`, the answer reaches the
//! alert's thread.

use std::path::Path;
use std::process::Command;

use crate::alerting::{WithChannels, baseline, record, up_with_channels, wait_or_log};
use crate::skips::{CC, have};
use crate::support::ok;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(repo).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commit `k` (1..=16) of the program: 10M steps, 12.5M from commit 11, a syntax error in 6.
fn source(k: u32) -> String {
    let steps = if k >= 11 { 12_500_000 } else { 10_000_000 };
    let broken = if k == 6 { "this does not compile" } else { "" };
    format!("#include <stdlib.h>\n/* revision {k} */\nint main(void) {{\n    volatile double x = 1.0;\n    for (long i = 0; i < {steps}L; i++) x = x * 1.0000001 + 1e-9;\n    {broken}\n    return x < 0;\n}}\n")
}

/// The repository: `main` at commit 16, and the commits' hashes in order.
fn repository(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch", "main"]);
    let mut shas = Vec::new();
    for k in 1..=16 {
        std::fs::write(dir.join("work.c"), source(k)).unwrap();
        git(dir, &["add", "work.c"]);
        git(dir, &["-c", "user.name=Ada Tester", "-c", "user.email=ada@example.com", "commit", "--quiet", "-m", &format!("commit {k}")]);
        shas.push(git(dir, &["rev-parse", "HEAD"]));
    }
    shas
}

#[test]
fn bisect_names_the_commit_that_added_work_and_skips_the_broken_one() {
    if !have("bisect (a C program)", &CC) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let shas = repository(&repo);
    // The user's checkout: on main, with an uncommitted edit that must survive.
    std::fs::write(repo.join("notes.txt"), "mine").unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    // With alert channels (real Slack and GitHub receivers) and a firing alert to answer.
    let WithChannels { up, slack, github, smtp: _mail } = up_with_channels(dir.path(), &data, 5, 0);
    baseline(&up, "step");
    record(&up, "step", 12.0);
    wait_or_log(&up, "the alert's GitHub issue", || (github.calls.lock().unwrap().len() == 1).then_some(()));
    let listed = ok(&up.cli(&["alerts", "list", "--format", "json"]));
    let alert = serde_json::from_str::<serde_json::Value>(&listed).ok().and_then(|v| v[0]["alert_id"].as_str().map(str::to_string)).expect("the firing alert");
    let bisect = |good: &str, bad: &str, extra: &[&str]| {
        let r = repo.to_str().unwrap();
        // The program's own CPU time: the other tests keep this machine busy.
        let mut args = vec!["bisect", "--measure", "cpu", "--repo", r, "--good", good, "--bad", bad, "--build", "cc -O1 -o work work.c", "--workload", "work"];
        args.extend(extra);
        args.extend(["--", "./work"]);
        ok(&up.cli(&args))
    };
    let out = bisect(&shas[0], &shas[15], &["--alert", &alert]);
    // The answer is on the alert's thread: a Slack message and a comment on its issue.
    wait_or_log(&up, "the bisection's note on Slack and GitHub", || (slack.messages.lock().unwrap().len() == 2 && github.calls.lock().unwrap().len() == 2).then_some(()));
    assert!(slack.headers()[1].starts_with(&format!("[NOTE] step on box at v1: latency_ms: trackiq bisect ")), "{:?}", slack.headers());
    let comment = github.calls.lock().unwrap()[1].2["body"].as_str().unwrap().to_string();
    assert!(comment.contains(&format!("first bad commit: {} commit 11", shas[10])) && comment.contains("(change vs good, 95 % interval)"), "{comment}");
    assert!(out.contains(&format!("first bad commit: {} commit 11", shas[10])), "{out}");
    assert!(out.contains("author: Ada Tester <ada@example.com>"), "{out}");
    let builds: u32 = out.split(" builds;").next().and_then(|s| s.rsplit('(').next()).and_then(|n| n.trim().parse().ok()).expect("the build count");
    assert!(builds <= 7, "{builds} builds:\n{out}");
    // The evidence table: commit 11's row says bad, with a change near +25 %.
    let row = out.lines().find(|l| l.contains(&shas[10][..10])).expect("commit 11's row");
    assert!(row.contains("bad"), "{row}");

    // Between commit 1 and commit 11 the search lands on commit 6 first: skipped, not fatal.
    let out = bisect(&shas[0], &shas[10], &[]);
    assert!(out.contains(&format!("first bad commit: {} commit 11", shas[10])), "{out}");
    let row = out.lines().find(|l| l.contains(&shas[5][..10])).unwrap_or_else(|| panic!("commit 6 was not tried:\n{out}"));
    assert!(row.contains("skipped: build failed"), "{row}");

    // The user's checkout is as it was: on main at commit 16, the edit still there, no worktree left.
    assert_eq!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), shas[15]);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "?? notes.txt");
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1);
    let _ = up.stop();
}

//! `trackiq bisect`: which commit made it slower? Each commit tested is checked out in a `git
//! worktree` of its own (the user's checkout and branch are never touched), built with the
//! user's build command, and timed: `--rounds` runs of `--iterations` each, each run beside a
//! run of the good commit (built once in a second worktree), so that a machine getting slower
//! or faster meanwhile moves both alike; every run is recorded in the history (run group
//! `bisect-<id>`, the commit as `git_commit`). A commit is bad when its run medians are slower
//! than those of the good commit's runs beside them as `trackiq confirm` judges (two-sample
//! t, interval wholly slower, change above `verdict.warn_pct`). First both ends, timed again
//! and pooled up to `--retries` times while the bad end is not judged bad: a range whose bad
//! end still is not says so and names no commit. Then a binary search over the
//! first-parent history between them; a commit whose build fails is skipped, as `git bisect
//! skip` does, and its nearest untested neighbour is tried instead. With `--alert ID` the
//! answer and its evidence table are posted to the alert's thread on every channel.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::bench::run_bench;
use trackiq_producers::workloads::CmdWorkload;
use trackiq_schemas::Direction;
use trackiq_stats::interleaved::interleaved_evidence;
use trackiq_stats::significance::Evidence;

use super::identity::IdentityArgs;

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The git repository (its checkout is left as it is).
    #[arg(long)]
    repo: PathBuf,
    /// A commit (or any revision) known good.
    #[arg(long)]
    good: String,
    /// A later commit known bad.
    #[arg(long)]
    bad: String,
    /// Shell command that builds a checkout, run in its worktree, e.g. 'cargo build --release'.
    #[arg(long)]
    build: String,
    /// Runs per commit tested, each beside a run of the good commit (good, commit, good, ...).
    #[command(flatten)]
    rounds: super::confirm::RoundArgs,
    /// When the bad end is not judged slower, time both ends again (their runs pooled) up to
    /// this many times before saying the range has no significant slowdown.
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// The alert this bisects: the answer (first bad commit, or none) is posted to its thread.
    #[arg(long, value_name = "ALERT_ID")]
    alert: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// The benchmark command, run in the commit's worktree (a relative path is taken from there).
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

/// One commit of the range.
#[derive(Debug, Clone)]
struct Commit {
    sha: String,
    subject: String,
    author: String,
}

/// What became of a tested commit.
enum Outcome {
    Skipped(String),
    Timed { medians: Vec<f64>, evidence: Option<Evidence>, bad: bool },
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").arg("-C").arg(repo).args(args).output().context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit(repo: &Path, rev: &str) -> anyhow::Result<Commit> {
    let line = git(repo, &["log", "-1", "--format=%H%x1f%s%x1f%an <%ae>", rev])?;
    let mut parts = line.splitn(3, '\u{1f}');
    let mut next = || parts.next().unwrap_or_default().to_string();
    Ok(Commit { sha: next(), subject: next(), author: next() })
}

/// A worktree of `repo` in a new temporary directory, removed (with git's record of it) on drop.
struct Worktree {
    repo: PathBuf,
    dir: PathBuf,
}

impl Worktree {
    fn add(repo: &Path, sha: &str, id: &str) -> anyhow::Result<Worktree> {
        let dir = std::env::temp_dir().join(format!("trackiq-bisect-{id}"));
        git(repo, &["worktree", "add", "--detach", "--force", &dir.to_string_lossy(), sha])?;
        Ok(Worktree { repo: repo.to_path_buf(), dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Checks `sha` out; untracked build outputs stay, so the build is incremental (a build
    /// system that tracks its sources rebuilds what the commit changed).
    fn checkout(&self, sha: &str) -> anyhow::Result<()> {
        git(&self.path(), &["checkout", "--quiet", "--detach", "--force", sha]).map(|_| ())
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let _ = git(&self.repo, &["worktree", "remove", "--force", &self.path().to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = git(&self.repo, &["worktree", "prune"]);
    }
}

/// Whether `e` says slower, as `trackiq confirm` would confirm it.
fn is_slower(e: &Evidence, min_pct: f64) -> bool {
    e.ci_low_pct > 0.0 && e.change_pct > min_pct
}

/// Checks `sha` out in `tree` and builds it with `command`; the reason when the build fails.
fn build(command: &str, tree: &Worktree, sha: &str) -> anyhow::Result<Option<String>> {
    tree.checkout(sha)?;
    let built = Command::new("sh").arg("-c").arg(command).current_dir(tree.path()).output().context("running the build command")?;
    if built.status.success() {
        return Ok(None);
    }
    let err = String::from_utf8_lossy(&built.stderr);
    // The first line that names an error says most; else the last line of output.
    let line = err.lines().find(|l| l.contains("error")).or_else(|| err.lines().rev().find(|l| !l.trim().is_empty())).unwrap_or("no output");
    let line: String = line.trim().chars().take(120).collect();
    Ok(Some(format!("build failed ({}): {line}", built.status)))
}

struct Bisection<'a> {
    a: &'a BisectArgs,
    bus: Bus,
    id: String,
    good: Commit,
    /// The good commit, built once, timed beside every commit tested.
    good_tree: Worktree,
    /// The commit under test.
    tree: Worktree,
    /// Every run median of the good commit, for its row.
    good_medians: Vec<f64>,
    /// The commit built in `tree` now.
    built: Option<String>,
    min_pct: f64,
    builds: u32,
    bar: indicatif::ProgressBar,
}

impl Bisection<'_> {
    /// One timed run of the benchmark in `dir` as commit `sha`: its median, or why it failed.
    async fn time(&self, dir: PathBuf, sha: &str, round: u32) -> anyhow::Result<Result<f64, String>> {
        let mut identity = self.a.identity.to_identity(&self.a.command.join(" "), "command")?;
        identity.git_commit = Some(sha.to_string());
        identity.run_group = Some(format!("bisect-{}", self.id));
        identity.labels.insert("bisect".into(), self.id.clone());
        identity.labels.insert(trackiq_schemas::INVESTIGATION_LABEL.into(), format!("bisect-{}", self.id));
        identity.labels.insert("round".into(), round.to_string());
        let mut w = super::confirm::Timed::new(CmdWorkload::new(self.a.command[0].clone(), self.a.command[1..].to_vec()).in_dir(dir));
        let opts = self.a.rounds.options()?;
        let out = run_bench(&self.bus, &identity, &mut w, &opts).await?;
        if out.failures > 0 {
            return Ok(Err(format!("the benchmark failed ({} of {} iterations: {})", out.failures, out.iterations, out.last_failure.unwrap_or_default())));
        }
        Ok(Ok(w.figure(self.a.rounds.measure, &out.latencies_ms)))
    }

    /// Builds `c` and times it interleaved with the good commit (good, c, good, c, ...), so
    /// that a machine getting slower or faster meanwhile moves both alike. Returns the
    /// medians of (c, good), or why `c` was skipped.
    async fn test(&mut self, c: &Commit) -> anyhow::Result<Result<(Vec<f64>, Vec<f64>), String>> {
        self.bar.set_message(format!("{} {}", &c.sha[..10], c.subject));
        if self.built.as_deref() != Some(c.sha.as_str()) {
            self.built = None;
            self.builds += 1;
            if let Some(why) = build(&self.a.build, &self.tree, &c.sha)? {
                return Ok(Err(why));
            }
            self.built = Some(c.sha.clone());
        }
        let (mut mine, mut good) = (Vec::new(), Vec::new());
        for round in 1..=self.a.rounds.rounds {
            match self.time(self.good_tree.path(), &self.good.sha, round).await? {
                Ok(m) => good.push(m),
                Err(why) => bail!("the good commit {} stopped working: {why}", &self.good.sha[..10]),
            }
            match self.time(self.tree.path(), &c.sha, round).await? {
                Ok(m) => mine.push(m),
                Err(why) => return Ok(Err(why)),
            }
        }
        self.good_medians.extend(&good);
        self.bar.inc(1);
        Ok(Ok((mine, good)))
    }

    /// `medians` against the good commit's timed beside them.
    fn judge(&self, medians: Vec<f64>, good: &[f64]) -> Outcome {
        let evidence = interleaved_evidence(&medians, good, Direction::LowerIsBetter);
        let bad = evidence.as_ref().is_some_and(|e| is_slower(e, self.min_pct));
        Outcome::Timed { medians, evidence, bad }
    }

    /// Tests `c` and judges it; `Skipped` when its build or benchmark fails.
    async fn outcome(&mut self, c: &Commit) -> anyhow::Result<Outcome> {
        Ok(match self.test(c).await? {
            Ok((mine, good)) => self.judge(mine, &good),
            Err(why) => Outcome::Skipped(why),
        })
    }
}

fn row(c: &Commit, o: &Outcome) -> Vec<String> {
    let short = c.sha[..10].to_string();
    match o {
        Outcome::Skipped(why) => vec![short, c.subject.clone(), "0".into(), "-".into(), "-".into(), "-".into(), format!("skipped: {why}")],
        Outcome::Timed { medians, evidence, bad } => {
            let mean = medians.iter().sum::<f64>() / medians.len().max(1) as f64;
            let (change, interval) = match evidence {
                Some(e) => (format!("{:+.1} %", e.change_pct), format!("[{:+.1}, {:+.1}]", e.ci_low_pct, e.ci_high_pct)),
                None => ("(good)".into(), "-".into()),
            };
            let verdict = if evidence.is_none() { "good (given)" } else if *bad { "bad" } else { "good" };
            vec![short, c.subject.clone(), medians.len().to_string(), format!("{mean:.3}"), change, interval, verdict.into()]
        }
    }
}

pub async fn run(config: Config, a: BisectArgs) -> anyhow::Result<ExitCode> {
    a.rounds.options()?;
    if let Some(alert) = &a.alert {
        super::alerts::find_alert(&config, alert).await?;
    }
    let repo = std::fs::canonicalize(&a.repo).with_context(|| format!("--repo {}", a.repo.display()))?;
    let (good, bad) = (commit(&repo, &a.good)?, commit(&repo, &a.bad)?);
    let range = git(&repo, &["rev-list", "--first-parent", "--reverse", &format!("{}..{}", good.sha, bad.sha)])?;
    let shas: Vec<&str> = range.lines().filter(|l| !l.is_empty()).collect();
    if shas.last() != Some(&bad.sha.as_str()) {
        bail!("--bad {} does not descend from --good {} along first parents", a.bad, a.good);
    }
    let commits: Vec<Commit> = shas.iter().map(|s| commit(&repo, s)).collect::<anyhow::Result<_>>()?;
    let steps = (commits.len() as f64).log2().ceil() as u64 + 2;
    let id = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    println!("bisect {id}: {} commits after {} up to {} · build `{}` · {} runs of {} iterations per commit", commits.len(), &good.sha[..10], &bad.sha[..10], a.build, a.rounds.rounds, a.rounds.iterations);
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/~{len} builds · {msg}").expect("valid template"));
    let good_tree = Worktree::add(&repo, &good.sha, &format!("{id}-good"))?;
    let tree = Worktree::add(&repo, &bad.sha, &id)?;
    let mut b = Bisection { a: &a, bus: Bus::new(config.bus.clone()), id, good: good.clone(), good_tree, tree, good_medians: Vec::new(), built: None, min_pct: config.verdict.warn_pct, builds: 1, bar };
    if let Some(why) = build(&a.build, &b.good_tree, &good.sha)? {
        bail!("the good commit {} cannot be built: {why}", &good.sha[..10]);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["commit", "subject", "runs", "median ms", "change vs good", "95 % interval", "judged"]);
    // (position, row): the good commit is 0, commits[i] is i + 1.
    let mut evidence: Vec<(usize, Vec<String>)> = Vec::new();
    let last = commits.len() - 1;
    let (mut pooled, mut pooled_good) = (Vec::new(), Vec::new());
    let mut retries = 0;
    let bad_end = loop {
        let (mine, good_beside) = match b.test(&commits[last]).await? {
            Ok(pair) => pair,
            Err(why) => break Outcome::Skipped(why),
        };
        pooled.extend(mine);
        pooled_good.extend(good_beside);
        let judged = b.judge(pooled.clone(), &pooled_good);
        if matches!(judged, Outcome::Timed { bad: true, .. }) || retries >= a.retries {
            break judged;
        }
        // Not significant (yet): more runs of both ends, pooled with the earlier ones.
        retries += 1;
    };
    if let Outcome::Skipped(why) = &bad_end {
        bail!("the bad commit {} cannot be timed: {why}", &bad.sha[..10]);
    }
    evidence.push((last + 1, row(&commits[last], &bad_end)));
    let confirmed = matches!(bad_end, Outcome::Timed { bad: true, .. });
    let (mut lo, mut hi) = (None::<usize>, last);
    let mut skipped = vec![false; commits.len()];
    if confirmed {
        while hi > lo.map_or(0, |l| l + 1) {
            let from = lo.map_or(0, |l| l + 1);
            let mid = (from + hi - 1) / 2;
            // The untested commit nearest the middle that did not fail to build.
            let Some(pick) = (0..=hi - from).flat_map(|d| [mid.checked_add(d), mid.checked_sub(d)]).flatten().find(|&i| i >= from && i < hi && !skipped[i]) else {
                break;
            };
            let o = b.outcome(&commits[pick]).await?;
            evidence.push((pick + 1, row(&commits[pick], &o)));
            match o {
                Outcome::Skipped(_) => skipped[pick] = true,
                Outcome::Timed { bad: true, .. } => hi = pick,
                Outcome::Timed { bad: false, .. } => lo = Some(pick),
            }
        }
    }
    b.bar.finish_and_clear();
    evidence.push((0, row(&good, &Outcome::Timed { medians: b.good_medians.clone(), evidence: None, bad: false })));
    evidence.sort_by_key(|(i, _)| *i);
    // One line per commit for the alert's thread: commit, change vs good, interval, judged.
    let lines: Vec<String> = evidence.iter().map(|(_, r)| format!("{} {} {} {}", r[0], r[4], r[5], r[6])).collect();
    for (_, r) in evidence {
        table.add_row(r);
    }
    println!("{table}");
    let builds = b.builds;
    let from = lo.map_or(0, |l| l + 1);
    let (answer, code) = if !confirmed {
        (format!("no significant slowdown between {} and {}: the bad end is not judged slower than the good one, so no commit is named ({builds} builds)", &good.sha[..10], &bad.sha[..10]), ExitCode::from(2))
    } else if (from..hi).any(|i| skipped[i]) {
        let between: Vec<&str> = (from..=hi).map(|i| &commits[i].sha[..10]).collect();
        (format!("the first bad commit is one of {} (builds failed in between; {builds} builds)", between.join(", ")), ExitCode::SUCCESS)
    } else {
        let first = &commits[hi];
        (format!("first bad commit: {} {}\n  author: {}\n  ({builds} builds; runs in the history under run group bisect-{})", first.sha, first.subject, first.author, b.id), ExitCode::SUCCESS)
    };
    println!("{answer}");
    if let Some(alert) = &a.alert {
        let note = format!("trackiq bisect {}: {} — commits tested (change vs good, 95 % interval): {}", b.id, answer.replace("\n  ", "; "), lines.join("; "));
        super::alerts::post_note(&config, alert, &note, false, None).await?;
        println!("posted to alert {alert}'s thread");
    }
    Ok(code)
}

//! `trackiq confirm`: is a regression real? The baseline and the candidate command run
//! interleaved on this machine (A B A B …, a warm-up before each), each round's median wall
//! time is one figure per side, and the two sides are judged with Student's two-sample t
//! (`trackiq_stats::interleaved`): "confirmed" when the 95 % interval of the change lies wholly
//! on the slower side and the change is above the verdicts' warn threshold (`verdict.warn_pct`:
//! what the verdicts would not flag is not confirmed either), "not reproduced" otherwise. Every round is recorded as a run (run
//! group `confirm-<id>`, labels `side` and `round`), so the evidence stays in the history.
//! `--run RUN_ID` takes the commands from the history: the run's recorded command line
//! against that of its series' latest earlier run with another line (`super::recorded`).
//! With `--alert ID` the answer is posted to the alert's thread on every channel, and a
//! blocking alert that did not reproduce is downgraded to a warning with it as the reason.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::bench::{BenchOptions, Load, Stop, run_bench};
use trackiq_producers::bench::Workload;
use trackiq_producers::workloads::{CHILD_CPU_METRIC, CmdWorkload};
use trackiq_schemas::Direction;
use trackiq_stats::interleaved::interleaved_evidence;
use trackiq_stats::significance::Evidence;

use super::identity::IdentityArgs;
use super::recorded::RecordedCommand;

/// How the two sides are timed, round by round (`confirm`, and `bisect` for a commit against
/// the good one).
#[derive(Debug, Clone, Args)]
pub struct RoundArgs {
    /// Rounds: each times the baseline (the good commit), then the candidate; at least 2.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Measured iterations of each side per round; the round's figure is their median.
    #[arg(long, default_value_t = 5)]
    pub iterations: u64,
    /// Unmeasured iterations before each side's measured ones in every round.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// A round's figure: the median wall time of its iterations, or of the program's own CPU
    /// time (steadier on a busy machine, for CPU-bound programs).
    #[arg(long, value_enum, default_value = "wall")]
    pub measure: Measure,
}

impl RoundArgs {
    /// The flags checked, and one side's run of a round as options of the benchmark loop.
    pub fn options(&self) -> anyhow::Result<BenchOptions> {
        if self.rounds < 2 {
            bail!("--rounds must be at least 2: one round per side has no spread to judge with");
        }
        if self.iterations == 0 {
            bail!("--iterations must be at least 1");
        }
        Ok(BenchOptions { warmup: self.warmup, stop: Stop::Iterations(self.iterations), load: Load::Closed { concurrency: 1 }, telemetry_interval: std::time::Duration::ZERO, progress: false })
    }
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    rounds: RoundArgs,
    /// Marks the start of the commands: `--baseline -- CMD_A... --candidate -- CMD_B...`.
    #[arg(long, required_unless_present_any = ["run", "alert"])]
    baseline: bool,
    /// Time this `bench cmd` run's recorded command line against the one of its series'
    /// latest earlier run with a different line (e.g. another build's path); with `--alert`
    /// and no commands, the alert's run.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "baseline")]
    run: Option<String>,
    /// The alert this confirms: the result is posted to its thread on every channel, and a
    /// blocking alert that does not reproduce becomes a warning, the result as the reason.
    #[arg(long, value_name = "ALERT_ID")]
    alert: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// The baseline command, then `--candidate --` and the candidate command.
    #[arg(last = true, num_args = 1..)]
    commands: Vec<String>,
}

/// The two command lines out of `CMD_A... --candidate -- CMD_B...`.
pub(super) fn split_commands(words: &[String]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let at = words.iter().position(|w| w == "--candidate").context("no `--candidate -- CMD_B...` after the baseline command")?;
    let baseline = words[..at].to_vec();
    let mut candidate = &words[at + 1..];
    if candidate.first().is_some_and(|w| w == "--") {
        candidate = &candidate[1..];
    }
    if baseline.is_empty() {
        bail!("the baseline command is empty: `--baseline -- CMD_A... --candidate -- CMD_B...`");
    }
    if candidate.is_empty() {
        bail!("the candidate command is empty: `--baseline -- CMD_A... --candidate -- CMD_B...`");
    }
    Ok((baseline, candidate.to_vec()))
}

/// What a run's figure is: the median of its iterations' wall times, or of the CPU time the
/// program itself used in them — which a busy machine's preemption does not stretch, so a
/// CPU-bound program is judged steadily beside other work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    Wall,
    Cpu,
}

/// A command whose iterations' CPU times (`child_cpu_ms`) are kept as well as sent (shared:
/// the benchmark loop drives clones of a workload).
#[derive(Clone)]
pub(super) struct Timed {
    inner: CmdWorkload,
    cpu_ms: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Timed {
    pub(super) fn new(inner: CmdWorkload) -> Self {
        Timed { inner, cpu_ms: Default::default() }
    }

    /// The run's figure by `measure`, from its iterations' wall times `latencies_ms`.
    pub(super) fn figure(&self, measure: Measure, latencies_ms: &[f64]) -> f64 {
        match measure {
            Measure::Wall => median(latencies_ms),
            Measure::Cpu => median(&self.cpu_ms.lock().expect("not poisoned")),
        }
    }
}

impl Workload for Timed {
    fn tool(&self) -> &'static str {
        self.inner.tool()
    }

    async fn iterate(&mut self) -> Result<Option<String>, trackiq_producers::ProducerError> {
        self.inner.iterate().await
    }

    fn take_samples(&mut self) -> Vec<(&'static str, f64, &'static str)> {
        let samples = self.inner.take_samples();
        self.cpu_ms.lock().expect("not poisoned").extend(samples.iter().filter(|s| s.0 == CHILD_CPU_METRIC).map(|s| s.1));
        samples
    }
}

/// This machine's name (as runs record it), for a note that says where it was measured.
pub(super) fn host() -> String {
    trackiq_producers::identity::detect_platform(None).hardware_name
}

/// The median of a run's iteration times (NaN for none).
pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    trackiq_stats::summarize(&mut v).map_or(f64::NAN, |s| s.p50)
}

/// The answer line: confirmed (the interval wholly on the slower side, the change above
/// `min_pct`) or not reproduced.
pub fn answer(e: &Evidence, min_pct: f64) -> String {
    let body = format!("{:+.1} % [{:+.1}, {:+.1}], p = {:.1e}", e.change_pct, e.ci_low_pct, e.ci_high_pct, e.pvalue_worse.unwrap_or(1.0));
    if e.ci_low_pct > 0.0 && e.change_pct > min_pct { format!("confirmed: {body}") } else { format!("not reproduced: {body}") }
}

/// The outcome of an interleaved confirmation.
pub struct Confirmation {
    /// Its id: the runs' run group is `confirm-<id>`.
    pub id: String,
    /// The answer line: "confirmed: …" or "not reproduced: …".
    pub answer: String,
    /// How it was measured, in words.
    pub how: String,
    pub reproduced: bool,
}

/// Times `base_cmd` and `cand_cmd` interleaved (`rounds`), each side's runs recorded under
/// `identity` with the confirmation's labels (an empty workload: each side's command line),
/// and judges them (see the module doc).
pub async fn interleave(config: &Config, r: &RoundArgs, identity: &trackiq_producers::identity::RunIdentity, base_cmd: &RecordedCommand, cand_cmd: &RecordedCommand) -> anyhow::Result<Confirmation> {
    let opts = r.options()?;
    let id = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
    let bus = Bus::new(config.bus.clone());
    println!("confirmation {id}: {} interleaved rounds of {} iterations (after {} warm-up) per side", r.rounds, r.iterations, r.warmup);
    let bar = indicatif::ProgressBar::new(u64::from(r.rounds) * 2);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} · {msg}").expect("valid template"));
    let (mut base, mut cand) = (Vec::new(), Vec::new());
    let mut table = Table::new();
    let what = match r.measure {
        Measure::Wall => "wall",
        Measure::Cpu => "CPU",
    };
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "round".to_string(),
        format!("baseline median {what} ms"),
        format!("candidate median {what} ms"),
        "baseline run".into(),
        "candidate run".into(),
    ]);
    for round in 1..=r.rounds {
        let mut runs = Vec::new();
        for (side, cmd) in [("baseline", base_cmd), ("candidate", cand_cmd)] {
            bar.set_message(format!("round {round}: {side}"));
            let mut identity = identity.clone();
            if identity.workload.is_empty() {
                identity.workload = cmd.line();
            }
            identity.run_group = Some(format!("confirm-{id}"));
            identity.labels.insert("confirmation".into(), id.clone());
            identity.labels.insert(trackiq_schemas::INVESTIGATION_LABEL.into(), format!("confirm-{id}"));
            identity.labels.insert("side".into(), side.into());
            identity.labels.insert("round".into(), round.to_string());
            let mut w = Timed::new(CmdWorkload::new(cmd.argv[0].clone(), cmd.argv[1..].to_vec()).in_dir(&cmd.dir));
            let out = run_bench(&bus, &identity, &mut w, &opts).await?;
            if out.failures > 0 {
                bail!("the {side} command failed in round {round} ({} of {} iterations; last: {}): a failing command cannot be timed", out.failures, out.iterations, out.last_failure.unwrap_or_default());
            }
            runs.push((w.figure(r.measure, &out.latencies_ms), out.run_id));
            bar.inc(1);
        }
        let [(b, b_run), (c, c_run)] = <[_; 2]>::try_from(runs).expect("two sides");
        table.add_row([round.to_string(), format!("{b:.3}"), format!("{c:.3}"), b_run, c_run]);
        base.push(b);
        cand.push(c);
    }
    bar.finish_and_clear();
    println!("{table}");
    let e = interleaved_evidence(&cand, &base, Direction::LowerIsBetter).context("no figures to judge (a side's medians are not finite)")?;
    let answer = answer(&e, config.verdict.warn_pct);
    let how = format!("candidate {:.3} ms vs baseline {:.3} ms, mean of {} round medians; two-sample t", e.baseline * (1.0 + e.change_pct / 100.0), e.baseline, r.rounds);
    println!("{answer} ({how})");
    Ok(Confirmation { id, reproduced: answer.starts_with("confirmed"), answer, how })
}

/// The note a confirmation posts to an alert's thread.
pub fn note(c: &Confirmation, rounds: u32, base_cmd: &RecordedCommand, cand_cmd: &RecordedCommand) -> String {
    format!(
        "{} — trackiq confirm {}: {rounds} interleaved rounds on {} ({}); baseline `{}`, candidate `{}`; runs under run group confirm-{}",
        c.answer, c.id, host(), c.how, base_cmd.line(), cand_cmd.line(), c.id
    )
}

pub async fn run(config: Config, a: ConfirmArgs) -> anyhow::Result<ExitCode> {
    a.rounds.options()?;
    let alert = match &a.alert {
        Some(id) => Some(super::alerts::find_alert(&config, id).await?),
        None => None,
    };
    let run = a.run.clone().or_else(|| alert.as_ref().filter(|_| !a.baseline).map(|x| x.run_id.clone()));
    let (base_cmd, cand_cmd) = match run {
        Some(_) if !a.commands.is_empty() => bail!("give either --run (or --alert alone) or the commands, not both"),
        Some(run) => {
            let (base_run, base, cand) = super::recorded::pair(&config, &run).await?;
            println!("run {run}: `{}` against run {base_run}'s `{}` (its series' latest earlier run with another command line)", cand.line(), base.line());
            (base, cand)
        }
        None => {
            let (base, cand) = split_commands(&a.commands)?;
            (RecordedCommand::here(base)?, RecordedCommand::here(cand)?)
        }
    };
    let identity = a.identity.to_identity("", "command")?;
    let c = interleave(&config, &a.rounds, &identity, &base_cmd, &cand_cmd).await?;
    if let Some(alert) = &a.alert {
        let before = super::alerts::post_note(&config, alert, &note(&c, a.rounds.rounds, &base_cmd, &cand_cmd), !c.reproduced, None).await?;
        let downgraded = !c.reproduced && before.severity == trackiq_schemas::Severity::Block;
        println!("posted to alert {alert}'s thread{}", if downgraded { "; its block is downgraded to warn: not reproduced" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_two_commands_split_at_candidate() {
        assert_eq!(split_commands(&words("./a 1 --candidate -- ./a 2")).unwrap(), (words("./a 1"), words("./a 2")));
        assert_eq!(split_commands(&words("./a --candidate ./b -x")).unwrap(), (words("./a"), words("./b -x")));
        assert!(split_commands(&words("./a 1")).unwrap_err().to_string().contains("--candidate"));
        assert!(split_commands(&words("--candidate -- ./b")).unwrap_err().to_string().contains("baseline command is empty"));
        assert!(split_commands(&words("./a --candidate --")).unwrap_err().to_string().contains("candidate command is empty"));
    }

    #[test]
    fn confirmed_only_when_the_interval_is_wholly_slower() {
        let e = |lo: f64, hi: f64| Evidence { baseline: 1.0, change_pct: (lo + hi) / 2.0, ci_low_pct: lo, ci_high_pct: hi, pvalue_worse: Some(0.01), pvalue_better: Some(0.99), test: "interleaved" };
        assert!(answer(&e(15.1, 20.0), 5.0).starts_with("confirmed: +17.6 % [+15.1, +20.0]"), "{}", answer(&e(15.1, 20.0), 5.0));
        assert!(answer(&e(-1.8, 2.6), 5.0).starts_with("not reproduced: +0.4 % [-1.8, +2.6]"));
        assert!(answer(&e(-9.0, -2.0), 5.0).starts_with("not reproduced"), "faster is not a regression");
        assert!(answer(&e(0.5, 1.5), 5.0).starts_with("not reproduced"), "significant but below the warn threshold");
    }
}

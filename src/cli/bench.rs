//! `trackiq bench <workload>`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::bench::{BenchOutcome, Stop, run_bench};
use trackiq_producers::workloads::CmdWorkload;

use super::identity::IdentityArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run a program repeatedly: trackiq bench cmd [flags] -- <program> [args...]
    Cmd(CmdArgs),
}

/// How long to run, shared by every workload.
#[derive(Debug, Args)]
pub struct LoopArgs {
    /// Iterations run first and not measured.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Measured iterations.
    #[arg(long, conflicts_with = "duration")]
    pub iterations: Option<u64>,
    /// Measure for this many seconds instead of a fixed number of iterations.
    #[arg(long)]
    pub duration: Option<f64>,
}

impl LoopArgs {
    pub fn stop(&self) -> anyhow::Result<Stop> {
        Ok(match (self.iterations, self.duration) {
            (Some(0), _) => anyhow::bail!("--iterations must be at least 1"),
            (Some(n), _) => Stop::Iterations(n),
            (None, Some(s)) if s.is_finite() && s > 0.0 => Stop::Duration(Duration::from_secs_f64(s)),
            (None, Some(s)) => anyhow::bail!("--duration must be a positive number of seconds, got {s}"),
            (None, None) => Stop::Iterations(10),
        })
    }
}

#[derive(Debug, Args)]
pub struct CmdArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    run: LoopArgs,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

pub async fn run(config: Config, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Cmd(a) => {
            let mut w = CmdWorkload { program: a.command[0].clone(), args: a.command[1..].to_vec() };
            let identity = a.identity.to_identity(&a.command.join(" "), "command")?;
            let bus = Bus::new(config.bus);
            let out = run_bench(&bus, &identity, &mut w, a.run.warmup, a.run.stop()?, true).await?;
            print_outcome(&out);
            Ok(if out.failures > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
    }
}

/// The end-of-run table.
pub fn print_outcome(out: &BenchOutcome) {
    let mut lat = out.latencies_ms.clone();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["run", "iterations", "failed", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "iter/s"]);
    let s = trackiq_stats::summarize(&mut lat);
    let f = |x: f64| format!("{x:.3}");
    let rate = out.iterations as f64 / out.wall.as_secs_f64().max(1e-9);
    match s {
        Some(s) => t.add_row([out.run_id.clone(), out.iterations.to_string(), out.failures.to_string(), f(s.mean), f(s.p50), f(s.p95), f(s.p99), f(s.max), format!("{rate:.2}")]),
        None => t.add_row([out.run_id.clone(), "0".into(), "0".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]),
    };
    println!("{t}");
    if out.failures > 0 {
        println!("{} of {} iterations failed (last: {})", out.failures, out.iterations, out.last_failure.clone().unwrap_or_default());
    }
}

//! `trackiq gate`: a CI gate. Exit 1 when any verdict of the run (or of every run of a
//! commit) blocks; prints a Markdown summary fit for a pull-request comment. With `--confirm
//! N -- CMD_A... --candidate -- CMD_B...`, a block is first timed again interleaved (`trackiq
//! confirm`) and fails the gate only when it reproduces.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use trackiq::config::Config;

use trackiq_schemas::Severity;

use super::history::{lit, markdown, rows};
use super::recorded::RecordedCommand;

#[derive(Debug, Args)]
#[command(after_help = "Give a run id or --commit (one of them is required).\n\
Exit status: 0 when no verdict blocks (pass, warn, insufficient_data), 1 when one blocks, 2 when no verdict could be read in time (or another error).")]
pub struct GateArgs {
    /// The run to gate (its id, as `bench` and `record` print it).
    #[arg(value_name = "RUN_ID", required_unless_present = "commit", conflicts_with = "commit")]
    run: Option<String>,
    /// Every run of this git commit (a prefix of the hash is enough).
    #[arg(long)]
    commit: Option<String>,
    /// How long to wait for the verdicts to reach the history (e.g. 90s, 5m; a plain number is seconds).
    #[arg(long, default_value = "60s", value_parser = super::spelling::seconds)]
    timeout: Duration,
    /// Before failing on a block, confirm it here: N interleaved rounds of the baseline and
    /// the candidate command given after `--` (as `trackiq confirm` runs them). A block that
    /// does not reproduce passes the gate, and its alerts are downgraded to warnings with the
    /// result as the reason; a confirmed one fails it, its alerts noted.
    #[arg(long, value_name = "ROUNDS", requires = "commands")]
    confirm: Option<u32>,
    /// What a confirmation round's figure is (see `trackiq confirm --measure`).
    #[arg(long, value_enum, default_value = "wall")]
    confirm_measure: super::confirm::Measure,
    /// With --confirm: the baseline command, then `--candidate --` and the candidate command.
    #[arg(last = true, num_args = 1..)]
    commands: Vec<String>,
}

/// Exit status when no verdict could be read: distinct from 1, which means "blocked".
const NO_VERDICT: u8 = 2;

pub async fn run(config: Config, a: GateArgs) -> anyhow::Result<ExitCode> {
    match gate(config, a).await {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(NO_VERDICT))
        }
    }
}

async fn gate(config: Config, a: GateArgs) -> anyhow::Result<ExitCode> {
    let deadline = Instant::now() + a.timeout;
    let commands = match a.confirm {
        Some(_) => {
            let (base, cand) = super::confirm::split_commands(&a.commands)?;
            Some((RecordedCommand::here(base)?, RecordedCommand::here(cand)?))
        }
        None => None,
    };
    let runs: Vec<String> = loop {
        let found = match (&a.run, &a.commit) {
            (Some(r), _) => vec![r.clone()],
            (None, Some(c)) => rows(&config, &format!("SELECT DISTINCT run_id FROM runs WHERE event = 'started' AND git_commit LIKE {}", lit(&format!("{c}%"))))
                .await?
                .into_iter()
                .filter_map(|r| r.get("run_id").and_then(|v| v.as_str()).map(str::to_string))
                .collect(),
            (None, None) => bail!("give --run or --commit"),
        };
        if !found.is_empty() {
            break found;
        }
        if Instant::now() > deadline {
            bail!("no runs of commit {} in the history {} within {:?}", a.commit.as_deref().unwrap_or(""), super::hint::absolute_data(&config.data), a.timeout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let list = runs.iter().map(|r| lit(r)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT run_id, version_tag, workload, metric, kind, value, baseline, change_pct, severity, coalesce(gates, kind = 'finding') AS gates, message, run_severity \
         FROM verdicts WHERE run_id IN ({list}) ORDER BY run_id, kind, metric"
    );
    let verdicts = loop {
        let v = rows(&config, &sql).await?;
        let judged: std::collections::HashSet<&str> = v.iter().filter_map(|r| r.get("run_id").and_then(|x| x.as_str())).collect();
        if runs.iter().all(|r| judged.contains(r.as_str())) {
            break v;
        }
        if Instant::now() > deadline {
            bail!(
                "no verdict for {} in the history {} within {:?}: is `trackiq up` running with this --data?",
                runs.iter().filter(|r| !judged.contains(r.as_str())).cloned().collect::<Vec<_>>().join(", "),
                super::hint::absolute_data(&config.data),
                a.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let s = |r: &serde_json::Map<String, serde_json::Value>, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let f = |r: &serde_json::Map<String, serde_json::Value>, k: &str| r.get(k).and_then(|v| v.as_f64()).map(trackiq_sinks::report::fmt_num).unwrap_or_else(|| "—".into());
    // The run's severity as the verdict stage decided it (`run_severity`: its gating metrics
    // and findings), the one decision the alerts, reports and dashboard show too; a metric
    // that does not gate is listed, never re-judged here.
    let worst = verdicts.iter().filter_map(|r| r.get("run_severity").and_then(|v| v.as_str()).and_then(Severity::parse)).max_by_key(|s| s.rank()).unwrap_or(Severity::InsufficientData);
    let blocked = worst == Severity::Block;
    let status = worst.as_str().to_ascii_uppercase();
    println!("### trackiq gate: {status}\n");
    let metric_rows: Vec<Vec<String>> = verdicts
        .iter()
        .filter(|r| s(r, "kind") != "finding")
        .map(|r| {
            vec![
                s(r, "run_id"),
                s(r, "metric"),
                f(r, "value"),
                f(r, "baseline"),
                r.get("change_pct").and_then(|v| v.as_f64()).map(|c| format!("{c:+.2} %")).unwrap_or_else(|| "—".into()),
                s(r, "severity"),
                if r.get("gates").and_then(|g| g.as_bool()).unwrap_or(true) { "yes" } else { "no (reported)" }.to_string(),
            ]
        })
        .collect();
    print!("{}", markdown(&["run", "metric", "value", "baseline", "change", "severity", "gates"], &metric_rows));
    let findings: Vec<String> = verdicts.iter().filter(|r| s(r, "kind") == "finding").map(|r| format!("- **{}** {}", s(r, "severity"), s(r, "message"))).collect();
    if !findings.is_empty() {
        println!("\nFindings:\n{}", findings.join("\n"));
    }
    if let (true, Some(rounds), Some((base_cmd, cand_cmd))) = (blocked, a.confirm, &commands) {
        return confirm_block(&config, &runs, rounds, a.confirm_measure, base_cmd, cand_cmd).await;
    }
    Ok(if blocked { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `--confirm`: times the block again, interleaved, and lets it fail the gate only when it
/// reproduces; the result goes to the thread of every firing block alert of `runs`.
async fn confirm_block(config: &Config, runs: &[String], rounds: u32, measure: super::confirm::Measure, base_cmd: &RecordedCommand, cand_cmd: &RecordedCommand) -> anyhow::Result<ExitCode> {
    let r = super::confirm::RoundArgs { rounds, iterations: 5, warmup: 1, measure };
    let identity = trackiq_producers::identity::RunIdentity { workload_type: "command".into(), ..Default::default() };
    println!("\nConfirming the block before failing:\n```");
    let c = super::confirm::interleave(config, &r, &identity, base_cmd, cand_cmd).await?;
    println!("```\n\n**{}** ({}; runs under run group `confirm-{}`)", c.answer, c.how, c.id);
    let note = super::confirm::note(&c, rounds, base_cmd, cand_cmd);
    for alert in super::alerts::firing_blocks(config, runs).await? {
        super::alerts::post_note(config, &alert.alert_id, &note, !c.reproduced, None).await?;
        println!("- posted to alert {} ({}){}", alert.alert_id, alert.subject, if c.reproduced { "" } else { ", downgraded to warn" });
    }
    if c.reproduced {
        println!("\n### trackiq gate: BLOCK (confirmed)");
        return Ok(ExitCode::from(1));
    }
    println!("\n### trackiq gate: PASS (the block did not reproduce here)");
    Ok(ExitCode::SUCCESS)
}

//! `trackiq up`: the pipeline until Ctrl-C or SIGTERM. A failing stage is restarted by its
//! supervisor; `up` says so and keeps every other stage running.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq::stack::{Role, Stack};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// POST warn/block verdicts to this URL (repeatable). Env: TRACKIQ_WEBHOOK_URLS (comma-separated).
    #[arg(long)]
    pub webhook: Vec<String>,
    /// Run only these parts (comma-separated or repeated; default: all). `sinks` is the
    /// report and webhook stages. Processes running the same role against one broker share
    /// its partitions in one consumer group.
    #[arg(long = "role", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
}

pub async fn run(config: Config, a: UpArgs) -> anyhow::Result<ExitCode> {
    let roles = if a.roles.is_empty() { Role::ALL.to_vec() } else { a.roles };
    let stack = Stack::start_roles(&config, &roles).await?;
    stack.wait_ready(std::time::Duration::from_secs(60)).await?;
    let metrics = stack.metrics_addr.map(|a| format!(" · metrics http://{a}/metrics")).unwrap_or_default();
    println!("trackiq is up: brokers {} · data {}{metrics} · Ctrl-C to stop", stack.brokers(), stack.store);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut down: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = check.tick() => {
                let now = stack.down_stages();
                if now != down {
                    if now.is_empty() {
                        eprintln!("all stages running again");
                    } else {
                        eprintln!("stage(s) down, restarting: {} (the others keep running; see `trackiq status`)", now.join(", "));
                    }
                    down = now;
                }
            }
        }
    }
    println!("stopping: flushing Parquet and committing offsets");
    stack.stop().await?;
    Ok(ExitCode::SUCCESS)
}

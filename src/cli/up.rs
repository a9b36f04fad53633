//! `trackiq up`: the pipeline until Ctrl-C or SIGTERM. A failing stage is restarted by its
//! supervisor; `up` says so and keeps every other stage running.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq::stack::Stack;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// POST warn/block verdicts to this URL (repeatable). Env: TRACKIQ_WEBHOOK_URLS (comma-separated).
    #[arg(long)]
    pub webhook: Vec<String>,
}

pub async fn run(config: Config, _a: UpArgs) -> anyhow::Result<ExitCode> {
    let stack = Stack::start(&config).await?;
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

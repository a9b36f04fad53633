//! `trackiq up`: the pipeline until Ctrl-C.

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
    let mut stack = Stack::start(&config).await?;
    stack.wait_ready(std::time::Duration::from_secs(60)).await?;
    println!("trackiq is up: brokers {} · data {} · Ctrl-C to stop", stack.brokers(), stack.store);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = check.tick() => if let Some(name) = stack.failed_service() {
                eprintln!("{name} stopped; shutting down");
                break;
            },
        }
    }
    println!("stopping: flushing Parquet and committing offsets");
    stack.stop().await?;
    Ok(ExitCode::SUCCESS)
}

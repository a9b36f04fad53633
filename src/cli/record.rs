//! `trackiq record`.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::importers::parse_time;
use trackiq_producers::record::{parse_metric, record};

use super::identity::IdentityArgs;

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    /// A measured figure: name=value[unit], e.g. --metric throughput_samples_per_sec=125.7 --metric latency_ms=8.2 (repeatable; `trackiq metrics` lists the known names).
    #[arg(long = "metric", required = true)]
    metrics: Vec<String>,
    /// When the figures were measured, for hand-entered history: RFC 3339, YYYY-MM-DD HH:MM:SS (UTC) or Unix seconds, as `import --at`. Default: now.
    #[arg(long)]
    at: Option<String>,
}

pub async fn run(config: Config, a: RecordArgs) -> anyhow::Result<ExitCode> {
    let metrics = a.metrics.iter().map(|m| parse_metric(m)).collect::<Result<Vec<_>, _>>()?;
    let identity = a.identity.to_identity("recorded", "recorded")?;
    let bus = Bus::new(config.bus);
    let at = a.at.as_deref().map(|s| parse_time(s).ok_or_else(|| anyhow::anyhow!("--at `{s}` is not a time (RFC 3339, YYYY-MM-DD HH:MM:SS, or Unix seconds)"))).transpose()?;
    let run_id = record(&bus, &identity, &metrics, at).await?;
    println!("recorded run {run_id} ({} metrics)", metrics.len());
    Ok(ExitCode::SUCCESS)
}

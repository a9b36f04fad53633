//! `trackiq record`.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::record::{parse_metric, record};

use super::identity::IdentityArgs;

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    /// A measured figure: name=value[unit], e.g. --metric throughput=125.7 --metric latency_ms=8.2 (repeatable).
    #[arg(long = "metric", required = true)]
    metrics: Vec<String>,
}

pub async fn run(config: Config, a: RecordArgs) -> anyhow::Result<ExitCode> {
    let metrics = a.metrics.iter().map(|m| parse_metric(m)).collect::<Result<Vec<_>, _>>()?;
    let identity = a.identity.to_identity("recorded", "recorded")?;
    let bus = Bus::new(config.bus);
    let run_id = record(&bus, &identity, &metrics).await?;
    println!("recorded run {run_id} ({} metrics)", metrics.len());
    Ok(ExitCode::SUCCESS)
}

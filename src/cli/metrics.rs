//! `trackiq metrics`: the metric catalog, with the metrics declared in the configuration.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq_schemas::catalog::{CATALOG, Dimension};

use super::history::{OutFormat, print_rows};

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

fn dimensions(d: &[Dimension]) -> String {
    d.iter().map(|d| serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()).collect::<Vec<_>>().join(", ")
}

pub fn run(config: Config, a: MetricsArgs) -> anyhow::Result<ExitCode> {
    let mut rows: Vec<Vec<String>> = CATALOG
        .iter()
        .filter(|d| !config.verdict.metrics.contains_key(d.name))
        .map(|d| {
            let info = config.verdict.info(d.name);
            let gates = if info.gates { "yes" } else { "no" };
            vec![d.name.into(), d.unit.into(), info.direction.as_str().into(), info.kind.as_str().into(), gates.into(), dimensions(d.dimensions), d.about.into(), "catalog".into()]
        })
        .collect();
    for (name, decl) in &config.verdict.metrics {
        let info = config.verdict.info(name);
        let gates = if info.gates { "yes" } else { "no" };
        rows.push(vec![name.clone(), decl.unit.clone().unwrap_or_default(), info.direction.as_str().into(), info.kind.as_str().into(), gates.into(), String::new(), String::new(), "config".into()]);
    }
    print_rows(a.format, &["metric", "unit", "direction", "kind", "gates", "dimensions", "what it measures", "declared in"], rows);
    println!("Undeclared metrics gate as KPIs with a direction guessed from their name (verdicts say direction_guessed).");
    println!("Figures the aggregator derives from a run's own samples (throughput, latency percentiles) are judged as derived: they do not gate unless declared.");
    Ok(ExitCode::SUCCESS)
}

//! `trackiq metrics`: the metric catalog, with the metrics declared in the configuration.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq_processors::aggregator::DERIVED_FROM_SAMPLES;
use trackiq_processors::verdict::VerdictConfig;
use trackiq_schemas::catalog::{CATALOG, Dimension};

use super::history::{OutFormat, print_rows};

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Output format: a table, or the same rows as JSON.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

fn dimensions(d: &[Dimension]) -> String {
    d.iter().map(|d| serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()).collect::<Vec<_>>().join(", ")
}

/// Whether verdicts block on a metric, asked of the verdict code itself: recorded by a tool,
/// and, for the figures the aggregator also derives, derived.
fn gates(verdict: &VerdictConfig, name: &str) -> &'static str {
    let recorded = verdict.info_of(name, false).gates;
    let derived = DERIVED_FROM_SAMPLES.contains(&name).then(|| verdict.info_of(name, true).gates);
    match (recorded, derived) {
        (true, Some(false)) => "if recorded",
        (true, _) => "yes",
        (false, _) => "no",
    }
}

pub fn run(config: Config, a: MetricsArgs) -> anyhow::Result<ExitCode> {
    let mut rows: Vec<Vec<String>> = CATALOG
        .iter()
        .filter(|d| !config.verdict.metrics.contains_key(d.name))
        .map(|d| {
            let info = config.verdict.info(d.name);
            let gates = gates(&config.verdict, d.name);
            vec![d.name.into(), d.unit.into(), info.direction.as_str().into(), info.kind.as_str().into(), gates.into(), dimensions(d.dimensions), d.about.into(), "catalog".into()]
        })
        .collect();
    for (name, decl) in &config.verdict.metrics {
        let info = config.verdict.info(name);
        let gates = gates(&config.verdict, name);
        rows.push(vec![name.clone(), decl.unit.clone().unwrap_or_default(), info.direction.as_str().into(), info.kind.as_str().into(), gates.into(), String::new(), String::new(), "config".into()]);
    }
    print_rows(a.format, &["metric", "unit", "direction", "kind", "gates", "dimensions", "what it measures", "declared in"], rows);
    println!("Undeclared metrics gate as KPIs with a direction guessed from their name (verdicts say direction_guessed).");
    println!("\"if recorded\": gates when a tool records it (import, record); when the aggregator derives it from a run's own samples (throughput, latency percentiles) it is reported, not gating, unless declared in [verdict.metrics].");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gates_column_is_the_verdicts_decision() {
        let mut verdict = VerdictConfig::default();
        assert_eq!(gates(&verdict, "latency_ms"), "yes");
        assert_eq!(gates(&verdict, "throughput_per_sec"), "if recorded", "derived by the aggregator from latency_ms");
        assert_eq!(gates(&verdict, "gpu_utilization_percent"), "no", "telemetry");
        assert_eq!(gates(&verdict, "energy_per_item_joules"), "no", "derived only");
        // Declared, a derived figure gates however it was computed.
        verdict.metrics = toml::from_str("throughput_per_sec = { direction = \"higher_is_better\" }").unwrap();
        assert_eq!(gates(&verdict, "throughput_per_sec"), "yes");
    }
}

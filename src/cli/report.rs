//! `trackiq report`: a fleet report over the last N days of the Parquet history, as Markdown
//! (for a wiki or a pull request) or a self-contained HTML page with charts. This verb only
//! queries the tables; `trackiq_sinks::fleet` derives the sections and renders them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::de::DeserializeOwned;
use trackiq::config::Config;
use trackiq_infra::DataStore;
use trackiq_sinks::fleet::{self, AlertRow, FleetReport, TrendRow, VerdictRow};

use super::history::lit;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Days of history covered, ending now (1 to 3650).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Markdown (tables, no charts) or HTML (one self-contained page with SVG charts).
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    format: ReportFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Only runs, alerts and trends of this workload (repeatable).
    #[arg(long = "workload")]
    workloads: Vec<String>,
    /// Charts of the HTML page: the series × metrics with most flagged verdicts, then most runs.
    #[arg(long, default_value_t = 12)]
    max_charts: usize,
    /// Rows of the top-movers table.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Output formats of `trackiq report`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Markdown,
    Html,
}

async fn query<T: DeserializeOwned>(store: &DataStore, sql: &str) -> anyhow::Result<Vec<T>> {
    trackiq_infra::tables::query_as(store, sql).await.with_context(|| format!("querying the history: {sql}"))
}

pub async fn run(config: Config, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = DataStore::open(&config.data)?;
    let now = trackiq_schemas::now_us();
    let since = now - i64::from(a.days) * 86_400_000_000;
    let period = format!("started_at >= to_timestamp_micros({since})");
    let workload = |col: &str| match a.workloads.is_empty() {
        true => String::new(),
        false => format!(" AND {col} IN ({})", a.workloads.iter().map(|w| lit(w)).collect::<Vec<_>>().join(", ")),
    };
    // At-least-once delivery can archive a record twice: count distinct runs, keep the latest
    // row of each (run, metric), alert and trend.
    #[derive(serde::Deserialize)]
    struct N {
        n: u64,
    }
    let runs = query::<N>(&store, &format!("SELECT count(DISTINCT run_id) AS n FROM runs WHERE event = 'started' AND {period}{}", workload("workload"))).await?;
    #[derive(serde::Deserialize)]
    struct Count {
        severity: String,
        n: u64,
    }
    let counts: Vec<Count> = query(
        &store,
        &format!("SELECT run_severity AS severity, count(DISTINCT run_id) AS n FROM verdicts WHERE {period}{} GROUP BY run_severity", workload("workload")),
    )
    .await?;
    let verdicts: Vec<VerdictRow> = query(
        &store,
        &format!(
            "SELECT run_id, series_id, workload, hardware_name AS hardware, metric, CAST(started_at AS BIGINT) AS started_at, value, baseline, \
             lower_limit, upper_limit, change_pct, severity FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY run_id, metric \
             ORDER BY evaluated_at DESC, kafka_partition DESC, kafka_offset DESC) AS rn FROM verdicts \
             WHERE (kind IS NULL OR kind = 'metric') AND {period}{}) WHERE rn = 1 ORDER BY started_at, run_id, metric",
            workload("workload")
        ),
    )
    .await?;
    // Open alerts are shown whatever their age: one that fired before the period still needs an owner.
    let alerts: Vec<AlertRow> = query(
        &store,
        &format!(
            "SELECT alert_id, severity, series_id, subject, workload, hardware, CASE WHEN kind = 'finding' THEN NULL ELSE value END AS value, baseline, change_pct, \
             CAST(fired_at AS BIGINT) AS fired_at, \
             acked_by, silenced_by FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY updated_at DESC, kafka_partition DESC, \
             kafka_offset DESC) AS rn FROM alerts) WHERE rn = 1 AND state = 'firing'{} ORDER BY fired_at DESC, alert_id",
            workload("workload")
        ),
    )
    .await?;
    // Trends carry no identity: workload and hardware come from the series' runs.
    let trends: Vec<TrendRow> = query(
        &store,
        &format!(
            "SELECT t.series_id, t.metric, r.workload, r.hardware, t.points, t.class, t.slope, t.total_change_pct, t.change_points, \
             t.last_change_run_id, t.last_change_pct FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id, metric ORDER BY computed_at DESC, \
             kafka_partition DESC, kafka_offset DESC) AS rn FROM trends WHERE computed_at >= to_timestamp_micros({since})) t \
             LEFT JOIN (SELECT series_id, max(workload) AS workload, max(hardware_name) AS hardware FROM runs WHERE event = 'started' GROUP BY series_id) r \
             ON t.series_id = r.series_id WHERE t.rn = 1{} ORDER BY t.series_id, t.metric",
            workload("r.workload")
        ),
    )
    .await?;
    let report = FleetReport {
        generated_at: now,
        since,
        days: a.days,
        workloads: a.workloads,
        runs: runs.first().map_or(0, |r| r.n),
        run_verdicts: counts.into_iter().map(|c| (c.severity, c.n)).collect(),
        verdicts,
        alerts,
        trends,
        top_movers: a.top,
        max_charts: a.max_charts,
    };
    // Rendering (templates, SVG charts) is CPU work: off the async workers.
    let format = a.format;
    let text = tokio::task::spawn_blocking(move || match format {
        ReportFormat::Markdown => fleet::render_markdown(&report),
        ReportFormat::Html => fleet::render_html(&report),
    })
    .await??;
    match a.output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing the report to {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

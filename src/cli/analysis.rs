//! `trackiq changepoints`, `trackiq trend`, `trackiq regression`: the statistics over the
//! Parquet history of each series.

use std::process::ExitCode;

use clap::Args;
use trackiq::config::Config;
use trackiq_processors::verdict::config::{Judging, ModelName};
use trackiq_processors::verdict::judging::judge_metric;
use trackiq_stats::changepoint::{ChangePointParams, change_points};
use trackiq_stats::trend::classify;
use trackiq_stats::ModelSpec;
use trackiq_stats::significance::{RunFigure, Samples};

use super::history::{OutFormat, num, print_rows, series_values};

#[derive(Debug, Args)]
pub struct ChangepointArgs {
    /// Metric to analyse (a sample metric's per-run mean, or a derived figure).
    #[arg(long)]
    metric: String,
    /// Only this series.
    #[arg(long)]
    series: Option<String>,
    /// Only runs of the last N days.
    #[arg(long)]
    days: Option<u32>,
    /// E-divisive window length.
    #[arg(long, default_value_t = 30)]
    window_len: usize,
    /// Significance of a change point.
    #[arg(long, default_value_t = 0.001)]
    max_pvalue: f64,
    /// Smallest relative change kept (0.05 = 5 %).
    #[arg(long, default_value_t = 0.0)]
    min_magnitude: f64,
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

pub async fn changepoints(config: Config, a: ChangepointArgs) -> anyhow::Result<ExitCode> {
    if a.window_len < 2 {
        anyhow::bail!("--window-len must be at least 2");
    }
    let params = ChangePointParams { window_len: a.window_len, max_pvalue: a.max_pvalue, min_magnitude: a.min_magnitude };
    let mut rows = Vec::new();
    for (series, points) in series_values(&config, &a.metric, a.series.as_deref(), a.days).await? {
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        for c in change_points(&values, &params) {
            let p = &points[c.index];
            rows.push(vec![
                series.clone(),
                c.index.to_string(),
                p.run_id.clone(),
                p.started_at.clone(),
                p.version_tag.clone().or(p.git_commit.clone()).unwrap_or_default(),
                num(c.stats.mean_before),
                num(c.stats.mean_after),
                format!("{:+.2}", c.stats.forward_change() * 100.0),
                format!("{:.3e}", c.stats.pvalue),
            ]);
        }
    }
    print_rows(a.format, &["series", "index", "first run after", "started", "version", "mean before", "mean after", "change %", "p-value"], rows);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TrendArgs {
    /// Metric to analyse (a sample metric's per-run mean, or a derived figure).
    #[arg(long)]
    metric: String,
    /// Only this series.
    #[arg(long)]
    series: Option<String>,
    /// Only runs of the last N days.
    #[arg(long)]
    days: Option<u32>,
    /// Series with fewer runs are left out.
    #[arg(long, default_value_t = 5)]
    min_samples: usize,
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

pub async fn trend(config: Config, a: TrendArgs) -> anyhow::Result<ExitCode> {
    let direction = config.verdict.direction_of(&a.metric);
    let mut rows = Vec::new();
    for (series, points) in series_values(&config, &a.metric, a.series.as_deref(), a.days).await? {
        if points.len() < a.min_samples.max(2) {
            continue;
        }
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        let Some(t) = classify(&values, direction) else { continue };
        rows.push(vec![
            series,
            points.len().to_string(),
            t.class.as_str().to_string(),
            format!("{:+.2}", t.total_change_pct),
            num(t.ols.slope),
            num(t.ols.r_squared),
            num(t.theil_sen_slope),
            t.mann_kendall_p.map(|p| format!("{p:.3e}")).unwrap_or_default(),
            num(t.cv),
            num(t.confidence),
        ]);
    }
    print_rows(a.format, &["series", "runs", "trend", "total change %", "OLS slope", "R²", "Theil-Sen slope", "Mann-Kendall p", "CV", "confidence"], rows);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RegressionArgs {
    /// Metric to judge (default: every metric of the series).
    #[arg(long)]
    metric: Option<String>,
    /// Only this series.
    #[arg(long)]
    series: Option<String>,
    /// Only runs of the last N days.
    #[arg(long)]
    days: Option<u32>,
    /// Threshold model (default: the configured one): significance, percentage, static, z_score, t_test,
    /// log_normal, iqr, delta_iqr.
    #[arg(long, value_parser = parse_model)]
    model: Option<ModelName>,
    /// Warn boundary of --model, in the model's own unit: percent change for significance and
    /// percentage (5 = 5 %), the metric's unit for static, standard deviations for z_score,
    /// a probability for t_test and log_normal (0.95), an IQR multiplier for iqr and delta_iqr.
    #[arg(long)]
    warn: Option<f64>,
    /// Block boundary of --model, in the same unit as --warn.
    #[arg(long)]
    block: Option<f64>,
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

/// A model name as in configuration (`t_test`; `t-test` is accepted too).
fn parse_model(s: &str) -> Result<ModelName, String> {
    serde_json::from_value(serde_json::Value::String(s.replace('-', "_")))
        .map_err(|_| format!("unknown model `{s}`: significance, percentage, static, z_score, t_test, log_normal, iqr, delta_iqr"))
}

/// Default boundaries of each model when --warn/--block are not given.
fn default_bounds(m: ModelName) -> (f64, f64) {
    match m {
        ModelName::Significance | ModelName::Percentage => (5.0, 10.0),
        ModelName::Static => (f64::INFINITY, f64::INFINITY),
        ModelName::ZScore | ModelName::TTest | ModelName::LogNormal => (0.95, 0.99),
        ModelName::Iqr | ModelName::DeltaIqr => (1.5, 3.0),
    }
}

/// Judges the newest run of each series against the runs before it.
pub async fn regression(config: Config, a: RegressionArgs) -> anyhow::Result<ExitCode> {
    let metrics: Vec<String> = match &a.metric {
        Some(m) => vec![m.clone()],
        None => super::history::rows(&config, "SELECT DISTINCT metric FROM summaries ORDER BY metric")
            .await?
            .into_iter()
            .filter_map(|r| r.get("metric").and_then(|v| v.as_str()).map(str::to_string))
            .collect(),
    };
    let mut rows = Vec::new();
    let mut blocked = false;
    for metric in metrics {
        let direction = config.verdict.direction_of(&metric);
        for (series, points) in series_values(&config, &metric, a.series.as_deref(), a.days).await? {
            let Some((latest, before)) = points.split_last() else { continue };
            let history: Vec<RunFigure> = before.iter().rev().take(config.verdict.window).rev().map(|p| RunFigure::single(p.value)).collect();
            let judging = match a.model {
                Some(m) => {
                    let (w, b) = default_bounds(m);
                    let (warn, block, min_samples) = (a.warn.unwrap_or(w), a.block.unwrap_or(b), config.verdict.min_baseline);
                    match m.bencher() {
                        Some(kind) => Judging::Bencher(ModelSpec { kind, warn, block, min_samples }),
                        None => Judging::Significance { warn_pct: warn, block_pct: block, min_samples },
                    }
                }
                None => config.verdict.judging_for(&metric, &series),
            };
            // Run figures only (no sample counts): every metric by its runs' values.
            let j = judge_metric(&RunFigure::single(latest.value), &history, direction, &judging, config.verdict.alpha, Samples::Measured).judgement;
            // As the verdicts: only a metric that gates fails the command.
            blocked |= j.severity == trackiq_schemas::Severity::Block && config.verdict.info_of(&metric, false).gates;
            rows.push(vec![
                series,
                metric.clone(),
                latest.run_id.clone(),
                num(latest.value),
                j.baseline.map(num).unwrap_or_default(),
                history.len().to_string(),
                j.change_pct.map(|c| format!("{c:+.2}")).unwrap_or_default(),
                judging.name().to_string(),
                j.pvalue.map(|p| format!("{p:.3e}")).unwrap_or_default(),
                j.severity.as_str().to_string(),
            ]);
        }
    }
    print_rows(a.format, &["series", "metric", "latest run", "value", "baseline", "runs", "change %", "model", "p-value", "severity"], rows);
    Ok(if blocked { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

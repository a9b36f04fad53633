//! `trackiq alerts list | silences | ack | silence | unsilence`: the alert lifecycle from the
//! on-call side. Lists read the `alerts` and `alert_actions` tables; actions are events on
//! the alerts topic (key: the series), applied by the alert processor in order with the
//! series' verdicts.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_infra::bus::send;
use trackiq_schemas::{AlertAction, AlertActionKind, registry};

use super::history::{OutFormat, lit, num, print_rows, rows};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts firing now (with --all: every alert's latest state).
    List(ListArgs),
    /// Silences in force.
    Silences {
        #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
    },
    /// Acknowledge a firing alert: no repeat notifications until it worsens or resolves.
    Ack {
        /// The alert id (`trackiq alerts list`).
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Who acknowledges. Default: $USER.
        #[arg(long)]
        by: Option<String>,
    },
    /// Record but do not send a series' notifications (or one metric's) for a while.
    Silence(SilenceArgs),
    /// End a silence early.
    Unsilence {
        /// The silence id (`trackiq alerts silences`).
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Resolved alerts too.
    #[arg(long)]
    all: bool,
    /// Only this series.
    #[arg(long)]
    series: Option<String>,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// The series to silence.
    #[arg(long)]
    series: String,
    /// Only this metric (or alert subject, e.g. `finding:sustained_shift:latency_ms`).
    #[arg(long)]
    metric: Option<String>,
    /// How long: `30m`, `2h`, `1d 12h`, ...
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Why (kept with the silence).
    #[arg(long)]
    reason: String,
    #[arg(long)]
    by: Option<String>,
}

fn user(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok()).filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown".into())
}

async fn publish(config: &Config, action: &AlertAction) -> anyhow::Result<()> {
    let bus = Bus::new(config.bus.clone());
    bus.check_reachable().await?;
    let producer = bus.producer()?;
    send(&producer, &bus.topics().alerts, action.series_id.as_bytes(), &registry().encode(action)?).await?;
    Ok(())
}

fn text(r: &trackiq_infra::tables::Row, k: &str) -> String {
    match r.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.as_f64().map(num).unwrap_or_default(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "—".into(),
    }
}

pub async fn run(config: Config, cmd: AlertsCommand) -> anyhow::Result<ExitCode> {
    let now = trackiq_schemas::now_us();
    match cmd {
        AlertsCommand::List(a) => {
            let mut filter = vec!["rn = 1".to_string()];
            if !a.all {
                filter.push("state = 'firing'".into());
            }
            if let Some(s) = &a.series {
                filter.push(format!("series_id = {}", lit(s)));
            }
            let sql = format!(
                "SELECT alert_id, state, severity, series_id, subject, workload, hardware, value, baseline, change_pct, \
                 CAST(fired_at AS VARCHAR) AS since, CAST(notified_at AS VARCHAR) AS notified, acked_by, silenced_by, run_id \
                 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY updated_at DESC, kafka_partition DESC, kafka_offset DESC) AS rn FROM alerts) \
                 WHERE {} ORDER BY fired_at DESC",
                filter.join(" AND ")
            );
            let header = ["id", "state", "severity", "series", "subject", "workload", "hardware", "value", "baseline", "change %", "since", "last sent", "acked by", "silenced by", "last run"];
            let cols = ["alert_id", "state", "severity", "series_id", "subject", "workload", "hardware", "value", "baseline", "change_pct", "since", "notified", "acked_by", "silenced_by", "run_id"];
            let out: Vec<Vec<String>> = rows(&config, &sql).await?.iter().map(|r| cols.iter().map(|c| text(r, c)).collect()).collect();
            if out.is_empty() && a.format == OutFormat::Table {
                println!("no {}alerts", if a.all { "" } else { "firing " });
            } else {
                print_rows(a.format, &header, out);
            }
        }
        AlertsCommand::Silences { format } => {
            let sql = format!(
                "SELECT s.id, s.series_id, s.subject, CAST(s.\"until\" AS VARCHAR) AS ends, s.reason, s.\"by\" AS who FROM alert_actions s \
                 WHERE s.action = 'silence' AND s.\"until\" > to_timestamp_micros({now}) \
                 AND s.id NOT IN (SELECT id FROM alert_actions WHERE action = 'unsilence') ORDER BY s.\"until\""
            );
            let cols = ["id", "series_id", "subject", "ends", "reason", "who"];
            let out: Vec<Vec<String>> = rows(&config, &sql).await?.iter().map(|r| cols.iter().map(|c| text(r, c)).collect()).collect();
            print_rows(format, &["id", "series", "metric", "until", "reason", "by"], out);
        }
        AlertsCommand::Ack { id, reason, by } => {
            let sql = format!("SELECT series_id, max(CASE WHEN state = 'firing' THEN 1 ELSE 0 END) AS firing FROM alerts WHERE alert_id = {} GROUP BY series_id", lit(&id));
            let found = rows(&config, &sql).await?;
            let Some(series) = found.first().and_then(|r| r.get("series_id")).and_then(|v| v.as_str()) else {
                bail!("no alert `{id}` in the history (`trackiq alerts list --all` shows the ids)");
            };
            let action = AlertAction { action: AlertActionKind::Ack, id: id.clone(), series_id: series.to_string(), subject: None, until: None, reason, by: user(by), at: now };
            publish(&config, &action).await?;
            println!("acknowledged alert {id} of series {series} as {}", action.by);
        }
        AlertsCommand::Silence(a) => {
            let until = now + i64::try_from(a.duration.as_micros()).context("the silence is too long")?;
            let id = uuid::Uuid::now_v7().simple().to_string()[..12].to_string();
            let action = AlertAction {
                action: AlertActionKind::Silence, id: id.clone(), series_id: a.series.clone(), subject: a.metric.clone(), until: Some(until),
                reason: a.reason, by: user(a.by), at: now,
            };
            publish(&config, &action).await?;
            let end = chrono::DateTime::from_timestamp_micros(until).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
            println!("silence {id}: series {}{} until {end}", a.series, a.metric.map(|m| format!(" metric {m}")).unwrap_or_default());
        }
        AlertsCommand::Unsilence { id, by } => {
            let sql = format!("SELECT series_id FROM alert_actions WHERE action = 'silence' AND id = {}", lit(&id));
            let found = rows(&config, &sql).await?;
            let Some(series) = found.first().and_then(|r| r.get("series_id")).and_then(|v| v.as_str()) else {
                bail!("no silence `{id}` in the history (`trackiq alerts silences` shows the ids)");
            };
            let action = AlertAction { action: AlertActionKind::Unsilence, id: id.clone(), series_id: series.to_string(), subject: None, until: None, reason: String::new(), by: user(by), at: now };
            publish(&config, &action).await?;
            println!("silence {id} ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

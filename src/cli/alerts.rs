//! `trackiq alerts list | silences | ack | note | silence | unsilence`: the alert lifecycle from the
//! on-call side. Every command reads the state as the alert processor rebuilds it (the
//! `alerts` and `alert_actions` tables, then the retained alerts log, so what happened a
//! second ago is there); actions are events on the alerts topic (key: the series), applied by
//! the alert processor in order with the series' verdicts.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_infra::bus::send;
use trackiq_processors::alerts::{AlertBook, add_log, book_from_tables};
use trackiq_schemas::{Alert, AlertAction, AlertActionKind, AlertState, registry};

use super::history::{OutFormat, lit, num, print_rows};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts firing now (with --all: every alert's latest state).
    List(ListArgs),
    /// Silences in force.
    Silences {
        /// Output format: a terminal table, JSON (an array of objects), or Markdown.
        #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
    },
    /// Acknowledge a firing alert: no repeat notifications until it worsens or resolves.
    Ack {
        /// The alert id (`trackiq alerts list`).
        id: String,
        /// Why (kept with the acknowledgement).
        #[arg(long, default_value = "")]
        reason: String,
        /// Who acknowledges. Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Post a note to an alert's thread on every channel (a Slack message, an email in the
    /// alert's thread, a comment on its GitHub issue).
    Note {
        /// The alert id (`trackiq alerts list`).
        id: String,
        /// The note.
        text: String,
        /// Also make a blocking alert a warning (say why in the note: the block did not reproduce).
        #[arg(long)]
        downgrade: bool,
        /// Who writes. Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Record but do not send a series' notifications (or one metric's) for a while.
    Silence(SilenceArgs),
    /// End a silence early.
    Unsilence {
        /// The silence id (`trackiq alerts silences`).
        id: String,
        /// Who ends it. Default: the login name.
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
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
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
    /// How long: `30m`, `2h`, `"1d 12h"` (quote a duration with spaces; a plain number is seconds).
    #[arg(long = "for", value_parser = super::spelling::seconds)]
    duration: Duration,
    /// Why (kept with the silence).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who silences. Default: the login name.
    #[arg(long)]
    by: Option<String>,
}

/// Who acts: `--by`, else the login name ($USER, $LOGNAME, then the OS account).
fn user(by: Option<String>) -> String {
    let os_user = || {
        // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
        let pw = unsafe { libc::getpwuid(libc::geteuid()) };
        (!pw.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) }.to_string_lossy().into_owned())
    };
    by.or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("LOGNAME").ok()).filter(|u| !u.is_empty()).or_else(os_user).unwrap_or_else(|| "unknown".into())
}

/// The alerts' state: the history tables, then the retained log of the alerts topic (what
/// was changed or decided in the last seconds is not archived yet). Without a reachable
/// broker, the tables alone, said on stderr.
async fn book(config: &Config) -> anyhow::Result<(AlertBook, Option<Bus>)> {
    let store = trackiq_infra::DataStore::open(&config.data)?;
    let book = book_from_tables(&config.alerts, &store).await?;
    let bus = Bus::new(config.bus.clone());
    if bus.check_reachable().await.is_err() {
        eprintln!("note: the broker at {} is not reachable: alerts as archived in the history (up to [archiver] flush_secs behind)", config.bus.bootstrap());
        return Ok((book, None));
    }
    let (book, _) = add_log(book, &bus, &format!("{}-cli", config.alerts.group)).await?;
    Ok((book, Some(bus)))
}

async fn publish(bus: Option<Bus>, action: &AlertAction) -> anyhow::Result<()> {
    let Some(bus) = bus else { bail!("the broker is not reachable: start `trackiq up`, or pass --brokers host:port") };
    let producer = bus.producer()?;
    send(&producer, &bus.topics().alerts, action.series_id.as_bytes(), &registry().encode(action)?).await?;
    Ok(())
}

/// Publishes a release decision (key: the candidate) on the alerts topic, beside the on-call
/// actions; the archiver keeps it in `approvals`. The answer says what was recorded.
pub async fn publish_decision(config: &Config, d: &trackiq_schemas::ReleaseDecision) -> anyhow::Result<String> {
    trackiq_schemas::validate::validate(&trackiq_schemas::AnyEvent::ReleaseDecision(d.clone()))?;
    let bus = Bus::new(config.bus.clone());
    bus.check_reachable().await?;
    let producer = bus.producer()?;
    send(&producer, &bus.topics().alerts, d.candidate.as_bytes(), &registry().encode(d)?).await?;
    Ok(format!("{} of {} {} by {}", d.decision.as_str(), d.candidate_kind.as_str(), d.candidate, d.by))
}

/// Alert `id` as the alert processor knows it now: what `confirm --alert` and `bisect
/// --alert` check before they spend minutes timing.
pub async fn find_alert(config: &Config, id: &str) -> anyhow::Result<Alert> {
    let (book, _) = book(config).await?;
    match book.get(id) {
        Some(a) => Ok(a.clone()),
        None => bail!("no alert `{id}` (`{}` shows the ids)", super::hint::like(config, &["alerts", "list", "--all"])),
    }
}

/// The firing blocking alerts last changed by one of `runs` (a gate's runs).
pub async fn firing_blocks(config: &Config, runs: &[String]) -> anyhow::Result<Vec<Alert>> {
    let (book, _) = book(config).await?;
    Ok(book.all().filter(|a| a.state == AlertState::Firing && a.severity == trackiq_schemas::Severity::Block && runs.contains(&a.run_id)).cloned().collect())
}

/// Posts `text` to alert `id`'s thread on every channel; `downgrade`: a blocking alert also
/// becomes a warning. Returns the alert as it was before.
pub async fn post_note(config: &Config, id: &str, text: &str, downgrade: bool, by: Option<String>) -> anyhow::Result<Alert> {
    if text.trim().is_empty() {
        bail!("the note is empty");
    }
    let (book, bus) = book(config).await?;
    let Some(alert) = book.get(id).cloned() else { bail!("no alert `{id}` (`{}` shows the ids)", super::hint::like(config, &["alerts", "list", "--all"])) };
    let action = AlertAction {
        action: if downgrade { AlertActionKind::Downgrade } else { AlertActionKind::Note }, id: id.to_string(), series_id: alert.series_id.clone(),
        subject: None, until: None, reason: text.to_string(), by: user(by), at: trackiq_schemas::now_us(),
    };
    publish(bus, &action).await?;
    Ok(alert)
}

fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_else(|| "—".into())
}

pub async fn run(config: Config, cmd: AlertsCommand) -> anyhow::Result<ExitCode> {
    let now = trackiq_schemas::now_us();
    match cmd {
        AlertsCommand::List(a) => {
            let (book, _) = book(&config).await?;
            let mut alerts: Vec<&Alert> = book.all().filter(|x| a.all || x.state == AlertState::Firing).filter(|x| a.series.as_ref().is_none_or(|s| *s == x.series_id)).collect();
            alerts.sort_by_key(|x| std::cmp::Reverse(x.fired_at));
            if a.format == OutFormat::Json {
                let rows: Vec<serde_json::Value> = alerts
                    .iter()
                    .map(|x| {
                        serde_json::json!({
                            "alert_id": x.alert_id, "state": x.state.as_str(), "severity": x.severity.as_str(), "series_id": x.series_id,
                            "subject": x.subject, "kind": x.kind.as_str(), "workload": x.workload, "hardware": x.hardware, "value": x.value,
                            "baseline": x.baseline, "change_pct": x.change_pct, "fired_at": time(x.fired_at), "last_notified_at": x.notified_at.map(time),
                            "acked_by": x.acked_by, "silenced_by": book.silenced_now(x, now), "last_run_id": x.run_id,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if alerts.is_empty() {
                println!("no {}alerts", if a.all { "" } else { "firing " });
            } else {
                let header = ["id", "state", "severity", "series", "subject", "workload", "hardware", "value", "baseline", "change %", "since", "last sent", "acked by", "silenced by", "last run"];
                let rows = alerts
                    .iter()
                    .map(|x| {
                        vec![
                            x.alert_id.clone(), x.state.as_str().into(), x.severity.as_str().into(), x.series_id.clone(), x.subject.clone(), x.workload.clone(),
                            x.hardware.clone(), opt(x.value), opt(x.baseline), x.change_pct.map(|c| format!("{c:+.1}")).unwrap_or_else(|| "—".into()),
                            time(x.fired_at), x.notified_at.map(time).unwrap_or_else(|| "—".into()), x.acked_by.clone().unwrap_or_else(|| "—".into()),
                            book.silenced_now(x, now).unwrap_or_else(|| "—".into()), x.run_id.clone(),
                        ]
                    })
                    .collect();
                print_rows(a.format, &header, rows);
            }
        }
        AlertsCommand::Silences { format } => {
            let (book, _) = book(&config).await?;
            let rows = book
                .active_silences(now)
                .iter()
                .map(|s| vec![s.id.clone(), s.series_id.clone(), s.subject.clone().unwrap_or_else(|| "(all)".into()), s.until.map(time).unwrap_or_default(), s.reason.clone(), s.by.clone()])
                .collect();
            print_rows(format, &["id", "series", "metric", "until", "reason", "by"], rows);
        }
        AlertsCommand::Ack { id, reason, by } => {
            let (book, bus) = book(&config).await?;
            let Some(alert) = book.get(&id) else { bail!("no alert `{id}` (`{}` shows the ids)", super::hint::like(&config, &["alerts", "list", "--all"])) };
            if alert.state != AlertState::Firing {
                bail!("alert `{id}` ({} of series {}) is resolved: only a firing alert can be acknowledged", alert.subject, alert.series_id);
            }
            if let Some(who) = &alert.acked_by {
                println!("alert {id} is already acknowledged by {who}");
                return Ok(ExitCode::SUCCESS);
            }
            let action = AlertAction { action: AlertActionKind::Ack, id: id.clone(), series_id: alert.series_id.clone(), subject: None, until: None, reason, by: user(by), at: now };
            publish(bus, &action).await?;
            println!("acknowledged alert {id} ({} of series {}) as {}", alert.subject, alert.series_id, action.by);
        }
        AlertsCommand::Note { id, text, downgrade, by } => {
            let alert = post_note(&config, &id, &text, downgrade, by).await?;
            let what = if downgrade && alert.severity == trackiq_schemas::Severity::Block { "noted and downgraded to warn" } else { "noted" };
            println!("{what}: alert {id} ({} of series {})", alert.subject, alert.series_id);
        }
        AlertsCommand::Silence(a) => {
            if a.duration.is_zero() {
                bail!("--for must be longer than 0 s");
            }
            let until = now + i64::try_from(a.duration.as_micros()).context("the silence is too long")?;
            let (book, bus) = book(&config).await?;
            let store = trackiq_infra::DataStore::open(&config.data)?;
            let known = !trackiq_infra::tables::query_rows(&store, &format!("SELECT 1 FROM runs WHERE series_id = {} LIMIT 1", lit(&a.series))).await?.is_empty()
                || book.all().any(|x| x.series_id == a.series);
            if !known {
                eprintln!("warning: no run of series {} is in the history yet; the silence applies once it has one", a.series);
            }
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let action = AlertAction {
                action: AlertActionKind::Silence, id: id.clone(), series_id: a.series.clone(), subject: a.metric.clone(), until: Some(until),
                reason: a.reason, by: user(a.by), at: now,
            };
            publish(bus, &action).await?;
            println!("silence {id}: series {}{} until {}", a.series, a.metric.map(|m| format!(" metric {m}")).unwrap_or_default(), time(until));
        }
        AlertsCommand::Unsilence { id, by } => {
            let (book, bus) = book(&config).await?;
            let silence = match book.silence(&id) {
                (Some(s), _) if s.until.is_some_and(|u| u <= now) => bail!("silence `{id}` already ended at {}", s.until.map(time).unwrap_or_default()),
                (Some(s), _) => s.clone(),
                (None, true) => bail!("silence `{id}` was already ended"),
                (None, false) => bail!("no silence `{id}` (`{}` shows the ids)", super::hint::like(&config, &["alerts", "silences"])),
            };
            let action = AlertAction { action: AlertActionKind::Unsilence, id: id.clone(), series_id: silence.series_id, subject: None, until: None, reason: String::new(), by: user(by), at: now };
            publish(bus, &action).await?;
            println!("silence {id} ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! One message per alert group: the model every channel renders, and its tera templates
//! (built in, each replaceable from `templates_dir`). Slack mrkdwn and Markdown get their
//! own escaping filters; the HTML email is autoescaped by tera.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use tera::{Context, Tera};
use trackiq_schemas::{Alert, AlertKind, AlertState, NotifyReason, Severity};

use crate::error::SinkError;
use crate::report::fmt_num;

/// The built-in templates, by name.
pub const TEMPLATES: [(&str, &str); 5] = [
    ("title.txt", include_str!("../../templates/alerts/title.txt")),
    ("slack.mrkdwn", include_str!("../../templates/alerts/slack.mrkdwn")),
    ("github.md", include_str!("../../templates/alerts/github.md")),
    ("email.txt", include_str!("../../templates/alerts/email.txt")),
    ("email.html", include_str!("../../templates/alerts/email.html")),
];

/// One alert as messages show it (numbers already formatted).
#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub id: String,
    pub subject: String,
    pub kind: &'static str,
    pub state: &'static str,
    pub notify: &'static str,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvalue: Option<String>,
    pub message: String,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
}

/// What a message says: the group's alerts that are sent (not silenced) and who they are about.
#[derive(Debug, Clone, Serialize)]
pub struct MessageModel {
    /// The rendered `title.txt` (empty while the title itself is rendered).
    pub title: String,
    pub group_key: String,
    pub reason: &'static str,
    pub severity: &'static str,
    /// Border colour of the severity (Slack attachment, email).
    pub colour: &'static str,
    pub headline: String,
    pub series_id: String,
    pub run_id: String,
    pub workload: String,
    pub hardware: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub alerts: Vec<AlertLine>,
    pub alert_ids: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Alerts of the series still firing after this message.
    pub series_firing: i32,
    /// The episode this message belongs to (series and the earliest firing start): every
    /// message of one problem shares it, so an email thread can hold them together.
    #[serde(skip)]
    pub episode: String,
    #[serde(skip)]
    pub reason_kind: NotifyReason,
    #[serde(skip)]
    pub severity_kind: Severity,
}

fn time_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

fn pvalue(p: f64) -> String {
    if p < 1e-3 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn line(a: &Alert) -> AlertLine {
    AlertLine {
        id: a.alert_id.clone(),
        subject: a.subject.clone(),
        kind: a.kind.as_str(),
        state: a.state.as_str(),
        notify: a.notify.as_str(),
        severity: a.severity.as_str(),
        // A finding's value is the rule's own figure (a change, a ratio): its message says it.
        value: a.value.filter(|_| a.kind != AlertKind::Finding).map(fmt_num),
        baseline: a.baseline.map(fmt_num),
        change: a.change_pct.map(|c| format!("{c:+.1} %")),
        interval: a.change_ci_low.zip(a.change_ci_high).map(|(l, h)| format!("[{l:+.1} %, {h:+.1} %]")),
        pvalue: a.pvalue.map(pvalue),
        message: a.message.clone(),
        since: time_us(a.fired_at),
        acked_by: a.acked_by.clone(),
    }
}

impl MessageModel {
    /// The message of `sent` (a group's alerts that notify and are not silenced; not empty).
    pub fn new(sent: &[&Alert], reports_url: &str, dashboard_url: Option<&str>) -> MessageModel {
        let first = sent[0];
        let reason = sent.iter().map(|a| a.notify).max().unwrap_or(NotifyReason::Firing);
        let firing: Vec<&&Alert> = sent.iter().filter(|a| a.state == AlertState::Firing).collect();
        let severity = firing.iter().map(|a| a.severity).max_by_key(|s| s.rank()).unwrap_or(first.severity);
        let colour = match (firing.is_empty(), severity) {
            (true, _) => "#2da44e",
            (false, Severity::Block) => "#cf222e",
            _ => "#d4a72c",
        };
        // The largest metric regression leads; findings and further metrics are counted.
        let mut lead: Vec<&&Alert> = sent.iter().collect();
        lead.sort_by(|a, b| {
            let key = |x: &Alert| (x.kind != AlertKind::Regression, -x.change_pct.unwrap_or(0.0).abs());
            key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)
        });
        let first_lead = lead[0];
        let more = if sent.len() > 1 { format!(" (+{} more)", sent.len() - 1) } else { String::new() };
        let headline = match (firing.is_empty(), first_lead.change_pct) {
            // A note's first line says what it is ("confirmed: +17.6 % [...]").
            _ if reason == NotifyReason::Note => format!("{}: {}", first_lead.subject, first_lead.message.lines().next().unwrap_or_default()),
            (true, _) if first_lead.kind == AlertKind::Regression => format!("{} back within baseline{more}", first_lead.subject),
            (true, _) => format!("{} resolved{more}", first_lead.subject),
            (false, Some(c)) if first_lead.state == AlertState::Firing => format!("{} {c:+.1} %{more}", first_lead.subject),
            _ => format!("{}{more}", first_lead.subject),
        };
        let base = reports_url.trim_end_matches('/');
        MessageModel {
            title: String::new(),
            group_key: first.group_key.clone(),
            reason: reason.as_str(),
            severity: severity.as_str(),
            colour,
            headline,
            series_id: first.series_id.clone(),
            run_id: first.run_id.clone(),
            workload: if first.workload.is_empty() { "cluster run".into() } else { first.workload.clone() },
            hardware: if first.hardware.is_empty() { "—".into() } else { first.hardware.clone() },
            version_tag: first.version_tag.clone(),
            git_commit: first.git_commit.clone(),
            alerts: sent.iter().map(|a| line(a)).collect(),
            alert_ids: sent.iter().map(|a| a.alert_id.as_str()).collect::<Vec<_>>().join(", "),
            report_url: Some(format!("{base}/{}", crate::report::report_path(&first.run_id))),
            dashboard_url: dashboard_url.map(|d| format!("{}/runs/{}", d.trim_end_matches('/'), first.run_id)),
            series_firing: sent.iter().map(|a| a.series_firing).last().unwrap_or(0),
            episode: format!("{}/{}", first.series_id, sent.iter().map(|a| a.fired_at).min().unwrap_or(0)),
            reason_kind: reason,
            severity_kind: severity,
        }
    }

    /// Whether every alert sent here is resolved.
    pub fn all_resolved(&self) -> bool {
        self.alerts.iter().all(|a| a.state == "resolved")
    }
}

/// Escapes what Slack mrkdwn treats as control characters.
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escapes what would break a Markdown table, a code span or start HTML (GitHub comments,
/// the fleet report).
pub fn escape_md(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;").replace('`', "'").replace(['\r', '\n'], " ")
}

fn string_filter(f: fn(&str) -> String) -> impl tera::Filter {
    move |v: &tera::Value, _: &HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
        Ok(tera::Value::String(f(v.as_str().unwrap_or_default())))
    }
}

/// The templates, built in or from `dir`.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// Loads the built-ins, replaced by same-named files of `dir`; a template that does not
    /// parse is an error naming it.
    pub fn load(dir: Option<&Path>) -> Result<Templates, SinkError> {
        let mut tera = Tera::default();
        tera.register_filter("mrkdwn", string_filter(escape_mrkdwn));
        tera.register_filter("md", string_filter(escape_md));
        for (name, builtin) in TEMPLATES {
            let text = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(p) => std::fs::read_to_string(&p).map_err(|e| SinkError::Template(format!("reading {}: {e}", p.display())))?,
                None => builtin.to_string(),
            };
            tera.add_raw_template(name, &text).map_err(|e| SinkError::Template(format!("{name}: {}", error_chain(&e))))?;
        }
        Ok(Templates { tera })
    }

    /// Renders template `name` over `m`.
    pub fn render(&self, name: &str, m: &MessageModel) -> Result<String, SinkError> {
        let ctx = Context::from_serialize(m).map_err(|e| SinkError::Template(e.to_string()))?;
        let mut out = self.tera.render(name, &ctx).map_err(|e| SinkError::Template(format!("{name}: {}", error_chain(&e))))?;
        if name == "title.txt" {
            out = out.trim().to_string();
        }
        Ok(out)
    }

    /// The message's title.
    pub fn title(&self, m: &MessageModel) -> Result<String, SinkError> {
        self.render("title.txt", m)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

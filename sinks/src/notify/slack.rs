//! Slack incoming webhook: a Block Kit message inside an attachment whose colour is the
//! severity's. Limits of Block Kit are kept: a header of at most 150 characters, section
//! text of at most 3,000, at most 10 fields, buttons only for http(s) links.

use serde_json::{Value, json};

use super::message::{MessageModel, escape_mrkdwn};

/// Longest header text Slack accepts.
pub const HEADER_MAX: usize = 150;
/// Longest section text Slack accepts.
pub const SECTION_MAX: usize = 3000;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": clip(&format!("*{label}*\n{}", escape_mrkdwn(value)), 2000)})
}

/// The webhook body: `text` (the notification fallback) and one attachment of blocks.
pub fn body(m: &MessageModel, title: &str, details: &str) -> Value {
    let mut fields = vec![field("Series", &m.series_id), field("Workload", &m.workload), field("Hardware", &m.hardware), field("Run", &m.run_id)];
    if let Some(v) = &m.version_tag {
        fields.push(field("Version", v));
    }
    if let Some(c) = &m.git_commit {
        fields.push(field("Commit", c));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(title, HEADER_MAX), "emoji": false}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(details.trim_end(), SECTION_MAX)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&format!("trackiq · {} · {} · alert {}", m.reason, m.severity, m.alert_ids), 2000)}]}),
    ];
    let buttons: Vec<Value> = [("Run report", &m.report_url), ("Dashboard", &m.dashboard_url)]
        .into_iter()
        .filter_map(|(label, url)| url.as_ref().filter(|u| u.starts_with("http://") || u.starts_with("https://")).map(|u| (label, u)))
        .map(|(label, url)| json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}))
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({"text": clip(title, SECTION_MAX), "attachments": [{"color": m.colour, "blocks": blocks}]})
}

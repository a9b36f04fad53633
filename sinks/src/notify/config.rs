//! Notifier settings: channels, routes, templates. Secrets (webhook URLs, tokens, SMTP
//! passwords) are named here by where they live — an environment variable or a file —
//! never written in the config itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use trackiq_schemas::{AlertKind, ChannelKind, Severity};

/// Notifier settings (`[notify]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Consumer group of the notifier.
    pub group: String,
    /// Where notifications go. Empty: the notifier does not run.
    pub channels: Vec<ChannelConfig>,
    /// Which alerts go to which channels; the first matching route wins. No routes: every
    /// channel gets every alert.
    pub routes: Vec<RouteConfig>,
    /// A directory whose `title.txt`, `slack.mrkdwn`, `github.md`, `email.txt` or
    /// `email.html` replace the built-in templates of the same name.
    pub templates_dir: Option<PathBuf>,
    /// Base URL of the dashboard, for links in messages (`<url>/runs/<run_id>`).
    pub dashboard_url: Option<String>,
    /// Base URL under which the data store's `reports/` are served, for links to a run's
    /// report. Unset: the data store URL.
    pub reports_url: Option<String>,
    /// Attempts per channel and message before it is recorded as failed and dead-lettered;
    /// 0: retry until the channel answers.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles (with jitter) after each failure.
    pub initial_backoff_ms: u64,
    /// Longest delay between retries.
    pub max_backoff_ms: u64,
    /// Timeout of one delivery (HTTP request or SMTP session).
    pub timeout_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            group: "trackiq-notify".into(),
            channels: Vec::new(),
            routes: Vec::new(),
            templates_dir: None,
            dashboard_url: None,
            reports_url: None,
            max_attempts: 10,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            timeout_secs: 15,
        }
    }
}

pub use trackiq_infra::secret::{Secret, SecretSource};

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// Upgrade with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// One channel. `name` is how routes, logs and the `notifications` table refer to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// A structured `tracing` event (target `trackiq::alert`).
    Log {
        /// The channel's name.
        name: String,
        /// Also send resolutions.
        #[serde(default = "yes")]
        send_resolved: bool,
    },
    /// A Slack incoming webhook (Block Kit message).
    Slack {
        /// The channel's name.
        name: String,
        /// The webhook URL (it holds the key): `{ env = "VAR" }` or `{ file = "path" }`.
        webhook_url: SecretSource,
        /// Messages per minute at most; more wait their turn (Slack allows about one per second).
        #[serde(default = "slack_rate")]
        rate_per_minute: u32,
        /// Also send resolutions.
        #[serde(default = "yes")]
        send_resolved: bool,
    },
    /// Email over SMTP: an HTML body with a plain-text alternative.
    Email {
        /// The channel's name.
        name: String,
        /// SMTP server host.
        host: String,
        /// SMTP port; unset: 25, 587 or 465 by `security`.
        port: Option<u16>,
        /// `none`, `starttls` or `tls`.
        security: SmtpSecurity,
        /// SMTP user, when the server wants authentication.
        username: Option<String>,
        /// SMTP password, with `username`.
        password: Option<SecretSource>,
        /// Sender, e.g. `trackiq <trackiq@example.com>`.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// Messages per minute at most (0: no limit).
        #[serde(default)]
        rate_per_minute: u32,
        /// Also send resolutions.
        #[serde(default = "yes")]
        send_resolved: bool,
    },
    /// GitHub issues (REST v3): one issue per regressed series, commented on when it repeats
    /// or worsens, closed when it resolves.
    Github {
        /// The channel's name.
        name: String,
        /// API root; `https://api.github.com`, or a GitHub Enterprise `https://host/api/v3`.
        #[serde(default = "github_api")]
        api_url: String,
        /// `owner/name` of the repository the issues are opened in.
        repo: String,
        /// A token allowed to write issues.
        token: SecretSource,
        /// Labels of opened issues.
        #[serde(default = "github_labels")]
        labels: Vec<String>,
        /// Requests per minute at most (0: no limit).
        #[serde(default = "github_rate")]
        rate_per_minute: u32,
    },
}

fn yes() -> bool {
    true
}
fn slack_rate() -> u32 {
    60
}
fn github_rate() -> u32 {
    30
}
fn github_api() -> String {
    "https://api.github.com".into()
}
fn github_labels() -> Vec<String> {
    vec!["performance-regression".into()]
}

impl ChannelConfig {
    pub fn name(&self) -> &str {
        match self {
            ChannelConfig::Log { name, .. } | ChannelConfig::Slack { name, .. } | ChannelConfig::Email { name, .. } | ChannelConfig::Github { name, .. } => name,
        }
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Log { .. } => ChannelKind::Log,
            ChannelConfig::Slack { .. } => ChannelKind::Slack,
            ChannelConfig::Email { .. } => ChannelKind::Email,
            ChannelConfig::Github { .. } => ChannelKind::Github,
        }
    }

    /// Messages per minute at most; 0: no limit.
    pub fn rate_per_minute(&self) -> u32 {
        match self {
            ChannelConfig::Log { .. } => 0,
            ChannelConfig::Slack { rate_per_minute, .. } | ChannelConfig::Email { rate_per_minute, .. } | ChannelConfig::Github { rate_per_minute, .. } => *rate_per_minute,
        }
    }

    /// Whether resolutions are sent (a GitHub issue is always closed).
    pub fn send_resolved(&self) -> bool {
        match self {
            ChannelConfig::Log { send_resolved, .. } | ChannelConfig::Slack { send_resolved, .. } | ChannelConfig::Email { send_resolved, .. } => *send_resolved,
            ChannelConfig::Github { .. } => true,
        }
    }
}

/// A routing rule: alerts that match every condition set go to `channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Names of the channels that get the matching alerts.
    pub channels: Vec<String>,
    /// Only alerts at least this severe (`warn` or `block`).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only these alert kinds (`regression`, `finding`, `detection`).
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
    /// Only these workloads.
    #[serde(default)]
    pub workloads: Vec<String>,
    /// Only these hardware names.
    #[serde(default)]
    pub hardware: Vec<String>,
    /// Only runs carrying every one of these labels with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Go on to the next routes after a match (the default stops at the first match).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

//! Events of on-call alerting: [`Alert`] changes and [`AlertAction`]s (topic `alerts`, key
//! series_id) and [`Notification`] outcomes (topic `notifications`, key group_key).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::Severity;

/// Label of the runs an investigation makes (`trackiq confirm`, `trackiq bisect`), its value
/// the investigation's id: they are judged and recorded like any run but never alerted on,
/// since they answer an alert rather than raise one (a bisection times good and bad commits
/// side by side, which the verdicts rightly find inconsistent).
pub const INVESTIGATION_LABEL: &str = "investigation";

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A metric of a series regressed against its baseline.
    Regression,
    /// A rule of the verdict (sustained shift, missed fault, ...) fired on a series.
    Finding,
    /// A cluster-health detector fired while a run streamed.
    Detection,
}

/// Where an alert's episode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// Why an alert change is sent; `None`: it is only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    None,
    /// A note posted to the alert's thread (a confirmation, a bisection); the change's
    /// `message` holds it.
    Note,
    Repeat,
    Resolved,
    Worse,
    Firing,
}

macro_rules! as_str {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
    };
}
as_str!(AlertKind { Regression => "regression", Finding => "finding", Detection => "detection" });
as_str!(AlertState { Firing => "firing", Resolved => "resolved" });
as_str!(NotifyReason { None => "none", Note => "note", Repeat => "repeat", Resolved => "resolved", Worse => "worse", Firing => "firing" });

/// A change of one alert (see `avro/Alert.avsc` for every field's meaning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub series_id: String,
    pub subject: String,
    pub kind: AlertKind,
    pub state: AlertState,
    pub severity: Severity,
    pub run_id: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub baseline: Option<f64>,
    #[serde(default)]
    pub change_pct: Option<f64>,
    #[serde(default)]
    pub change_ci_low: Option<f64>,
    #[serde(default)]
    pub change_ci_high: Option<f64>,
    #[serde(default)]
    pub pvalue: Option<f64>,
    pub message: String,
    pub workload: String,
    pub hardware: String,
    #[serde(default)]
    pub version_tag: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub fired_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub notified_at: Option<i64>,
    #[serde(default)]
    pub notified_change_pct: Option<f64>,
    pub notify: NotifyReason,
    #[serde(default)]
    pub silenced_by: Option<String>,
    #[serde(default)]
    pub acked_by: Option<String>,
    pub ok_runs: i32,
    pub series_firing: i32,
    pub group_key: String,
    pub group_size: i32,
    pub group_index: i32,
}

/// What an on-call action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertActionKind {
    /// No repeat notifications for this episode until it worsens or resolves.
    Ack,
    /// Record but do not send notifications of a series (or one subject) until `until`.
    Silence,
    /// End a silence early.
    Unsilence,
    /// Post `reason` to the alert's thread on every channel (a confirmation's or a
    /// bisection's result).
    Note,
    /// A note, and a blocking alert becomes a warning: the block did not reproduce.
    Downgrade,
}
as_str!(AlertActionKind { Ack => "ack", Silence => "silence", Unsilence => "unsilence", Note => "note", Downgrade => "downgrade" });

/// An acknowledgement, a note or a silence (see `avro/AlertAction.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertAction {
    pub action: AlertActionKind,
    pub id: String,
    pub series_id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub until: Option<i64>,
    pub reason: String,
    pub by: String,
    pub at: i64,
}

/// What a release candidate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// A version tag (`version_tag` of the runs).
    Version,
    /// A commit, or the start of one (`git_commit` of the runs).
    Commit,
}
as_str!(CandidateKind { Version => "version", Commit => "commit" });

/// A release approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseVerdict {
    Approve,
    Reject,
}
as_str!(ReleaseVerdict { Approve => "approve", Reject => "reject" });

/// A sign-off on a release candidate with what its review showed (see
/// `avro/ReleaseDecision.avsc`); the `approvals` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseDecision {
    pub decision_id: String,
    pub candidate_kind: CandidateKind,
    pub candidate: String,
    pub decision: ReleaseVerdict,
    pub reason: String,
    pub by: String,
    pub at: i64,
    pub series: i32,
    pub blocking: i32,
    pub warning: i32,
    pub open_alerts: i32,
}

/// Kinds of notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Log,
    Slack,
    Email,
    Github,
}
as_str!(ChannelKind { Log => "log", Slack => "slack", Email => "email", Github => "github" });

/// How one notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    Sent,
    /// Refused, or not delivered within the channel's attempts: also dead-lettered.
    Failed,
    /// Matched a silence: recorded, not sent.
    Silenced,
}
as_str!(NotificationStatus { Sent => "sent", Failed => "failed", Silenced => "silenced" });

/// One channel's outcome for one alert group (see `avro/Notification.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub group_key: String,
    pub channel: String,
    pub channel_kind: ChannelKind,
    pub series_id: String,
    pub run_id: String,
    pub alert_ids: Vec<String>,
    pub reason: NotifyReason,
    pub severity: Severity,
    pub status: NotificationStatus,
    pub attempts: i32,
    #[serde(default)]
    pub error: Option<String>,
    pub at: i64,
    #[serde(default)]
    pub external_ref: Option<String>,
    pub title: String,
}

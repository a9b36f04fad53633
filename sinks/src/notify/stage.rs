//! The notifier as a stage of the runtime (see the module doc of [`super`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use tracing::{info, warn};
use trackiq_infra::replay::{read_log, replay_consumer};
use trackiq_infra::runtime::{Effects, Input, Position, RetryPolicy, Stage, StageError};
use trackiq_infra::tables::query_as;
use trackiq_infra::{Bus, DataStore};
use trackiq_schemas::{Alert, AlertState, AnyEvent, ChannelKind, DeadLetter, Notification, NotificationStatus, NotifyReason, Topics, registry};

use super::config::{ChannelConfig, NotifyConfig, Secret};
use super::email::{Mailer, MailerSettings};
use super::github::Issues;
use super::message::{MessageModel, Templates};
use super::{Failure, route};
use crate::error::SinkError;
use crate::webhook::{Attempt, post_once};

/// An incomplete group is sent anyway after this long (its other records never came).
const GROUP_WAIT: Duration = Duration::from_secs(60);

enum Sender {
    Log,
    Slack { client: reqwest::Client, url: Secret },
    Email(Mailer),
    Github(Issues),
}

struct Channel {
    config: ChannelConfig,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    sender: Sender,
}

/// The records of one alert group seen so far.
struct Group {
    alerts: Vec<Alert>,
    positions: Vec<Position>,
    since: Instant,
}

/// Outcomes of the group being sent, published once every channel has one.
#[derive(Default)]
struct Outcomes {
    notifications: Vec<Notification>,
    dead_letters: Vec<DeadLetter>,
}

/// The notifier stage.
pub struct NotifyStage {
    config: NotifyConfig,
    channels: Vec<Channel>,
    templates: Templates,
    topics: Topics,
    reports_url: String,
    groups: BTreeMap<String, Group>,
    /// Notification ids with an outcome (recorded, or in the group being sent).
    done: HashSet<String>,
    /// Open GitHub issue per (channel, series).
    issues: HashMap<(String, String), u64>,
    /// Steps of a GitHub delivery already made (a comment before a failed close).
    steps: HashSet<String>,
    attempts: HashMap<String, u32>,
    outcomes: Outcomes,
}

/// Every recorded outcome, in the order they were made.
const NOTIFICATIONS_SQL: &str = "SELECT notification_id, group_key, channel, channel_kind, series_id, run_id, alert_ids, reason, severity, status, attempts, \
     error, CAST(\"at\" AS BIGINT) AS \"at\", external_ref, title FROM notifications ORDER BY \"at\", kafka_partition, kafka_offset";

fn channel(c: &ChannelConfig, timeout: Duration) -> Result<Channel, SinkError> {
    let sender = match c {
        ChannelConfig::Log { .. } => Sender::Log,
        ChannelConfig::Slack { name, webhook_url, .. } => {
            let url = Secret::read(name, "webhook_url", webhook_url)?;
            url::Url::parse(url.expose()).map_err(|e| SinkError::NotifyConfig(format!("channel `{name}`: the webhook URL does not parse: {e}")))?;
            let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| SinkError::NotifyConfig(e.to_string()))?;
            Sender::Slack { client, url }
        }
        ChannelConfig::Email { name, host, port, security, username, password, from, to, .. } => {
            let credentials = match (username, password) {
                (Some(u), Some(p)) => Some((u.clone(), Secret::read(name, "password", p)?)),
                (None, None) => None,
                _ => return Err(SinkError::NotifyConfig(format!("channel `{name}`: set both `username` and `password`, or neither"))),
            };
            Sender::Email(Mailer::new(MailerSettings { channel: name, host, port: *port, security: *security, credentials, from, to, timeout })?)
        }
        ChannelConfig::Github { name, api_url, repo, token, labels, .. } => {
            Sender::Github(Issues::new(name, api_url, repo, Secret::read(name, "token", token)?, labels.clone(), timeout)?)
        }
    };
    Ok(Channel { config: c.clone(), limiter: route::limiter(c.rate_per_minute()), sender })
}

impl NotifyStage {
    /// Checks the settings (channel names, routes, templates, secrets) and builds the stage
    /// without its recorded history (see [`NotifyStage::start`]).
    pub fn new(config: NotifyConfig, topics: Topics, store_url: &str) -> Result<Self, SinkError> {
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut names = HashSet::new();
        for c in &config.channels {
            if !names.insert(c.name()) {
                return Err(SinkError::NotifyConfig(format!("two channels are named `{}`", c.name())));
            }
        }
        for r in &config.routes {
            if let Some(n) = r.channels.iter().find(|n| !names.contains(n.as_str())) {
                return Err(SinkError::NotifyConfig(format!("a route names channel `{n}`, which is not configured (channels: {})", names.iter().copied().collect::<Vec<_>>().join(", "))));
            }
        }
        let channels = config.channels.iter().map(|c| channel(c, timeout)).collect::<Result<Vec<_>, _>>()?;
        let templates = Templates::load(config.templates_dir.as_deref())?;
        let reports_url = config.reports_url.clone().unwrap_or_else(|| store_url.to_string());
        Ok(NotifyStage {
            config, channels, templates, topics, reports_url, groups: BTreeMap::new(), done: HashSet::new(), issues: HashMap::new(),
            steps: HashSet::new(), attempts: HashMap::new(), outcomes: Outcomes::default(),
        })
    }

    /// [`NotifyStage::new`], then what was recorded: the `notifications` table and the
    /// retained log.
    pub async fn start(config: NotifyConfig, bus: &Bus, store: &DataStore) -> Result<Self, SinkError> {
        let mut stage = NotifyStage::new(config, bus.topics().clone(), &store.to_string())?;
        let rows: Vec<Notification> = query_as(store, NOTIFICATIONS_SQL).await?;
        let from_table = rows.len();
        for n in &rows {
            stage.restore(n);
        }
        let (b, group, topic) = (bus.clone(), stage.config.group.clone(), bus.topics().notifications.clone());
        let logged = tokio::task::spawn_blocking(move || {
            let c = replay_consumer(&b, &format!("{group}-bootstrap"))?;
            let mut logged = Vec::new();
            read_log(&c, &topic, &Default::default(), |e| {
                if let AnyEvent::Notification(n) = e {
                    logged.push(n);
                }
            })?;
            Ok::<_, trackiq_infra::InfraError>(logged)
        })
        .await
        .map_err(|e| SinkError::NotifyConfig(format!("re-reading notifications: {e}")))??;
        for n in &logged {
            stage.restore(n);
        }
        info!(from_table, from_log = logged.len(), open_issues = stage.issues.len(), "notification history read");
        Ok(stage)
    }

    /// Takes in a recorded outcome.
    pub fn restore(&mut self, n: &Notification) {
        self.done.insert(n.notification_id.clone());
        if n.channel_kind == ChannelKind::Github && n.status == NotificationStatus::Sent {
            let key = (n.channel.clone(), n.series_id.clone());
            match n.external_ref.as_deref().map(|r| r.trim_start_matches('#').split_once(' ').map_or((r.trim_start_matches('#'), ""), |(a, b)| (a, b))) {
                Some((_, "closed")) => {
                    self.issues.remove(&key);
                }
                Some((num, _)) => {
                    if let Ok(num) = num.parse() {
                        self.issues.insert(key, num);
                    }
                }
                None => {}
            }
        }
    }

    /// Sends group `key` on every channel that has no outcome for it yet. `Err`: some channel
    /// is to be retried (the others keep their outcomes).
    async fn send_group(&mut self, key: &str, at: &Position) -> Result<(), StageError> {
        let alerts: Vec<Alert> = self.groups[key].alerts.iter().filter(|a| a.notify != NotifyReason::None).cloned().collect();
        let mut retry = Vec::new();
        for i in 0..self.channels.len() {
            let ch = &self.channels[i];
            let nid = format!("{key}/{}", ch.config.name());
            if self.done.contains(&nid) {
                continue;
            }
            let mine: Vec<&Alert> = alerts
                .iter()
                .filter(|a| route::channels_for(&self.config.routes, &self.config.channels, a).contains(&ch.config.name()))
                .filter(|a| a.state == AlertState::Firing || ch.config.send_resolved())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let live: Vec<&Alert> = mine.iter().copied().filter(|a| a.silenced_by.is_none()).collect();
            let shown = if live.is_empty() { &mine } else { &live };
            let mut model = MessageModel::new(shown, &self.reports_url, self.config.dashboard_url.as_deref());
            let title = self.templates.title(&model).map_err(|e| StageError::Fatal(e.to_string()))?;
            model.title = title.clone();
            let (status, attempts, external_ref, error) = if live.is_empty() {
                (NotificationStatus::Silenced, 0, None, None)
            } else {
                if let Some(l) = &ch.limiter {
                    l.until_ready().await;
                }
                let attempts = {
                    let n = self.attempts.entry(nid.clone()).or_default();
                    *n += 1;
                    *n
                };
                match self.deliver(i, &nid, &model, &title).await {
                    Ok(r) => (NotificationStatus::Sent, attempts, r, None),
                    Err(Failure::Transient(e)) if self.config.max_attempts == 0 || attempts < self.config.max_attempts => {
                        warn!(channel = self.channels[i].config.name(), group = key, attempts, error = %e, "notification failed; will retry");
                        retry.push(format!("{}: {e}", self.channels[i].config.name()));
                        continue;
                    }
                    Err(f) => {
                        let reason = match &f {
                            Failure::Refused(e) => format!("channel `{}` refused the notification: {e}", self.channels[i].config.name()),
                            Failure::Transient(e) => format!("channel `{}` failed after {attempts} attempts: {e}", self.channels[i].config.name()),
                        };
                        self.dead_letter(key, at, &reason);
                        (NotificationStatus::Failed, attempts, None, Some(reason))
                    }
                }
            };
            let ch = &self.channels[i];
            match &error {
                Some(e) => warn!(channel = ch.config.name(), group = key, status = status.as_str(), attempts, error = %e, "notification"),
                None => info!(channel = ch.config.name(), group = key, status = status.as_str(), attempts, "notification"),
            }
            self.outcomes.notifications.push(Notification {
                notification_id: nid.clone(), group_key: key.to_string(), channel: ch.config.name().to_string(), channel_kind: ch.config.kind(),
                series_id: model.series_id.clone(), run_id: model.run_id.clone(), alert_ids: shown.iter().map(|a| a.alert_id.clone()).collect(),
                reason: model.reason_kind, severity: model.severity_kind, status, attempts: attempts as i32, error, at: trackiq_schemas::now_us(),
                external_ref, title,
            });
            self.done.insert(nid.clone());
            self.attempts.remove(&nid);
        }
        if retry.is_empty() { Ok(()) } else { Err(StageError::Transient(retry.join("; "))) }
    }

    fn dead_letter(&mut self, key: &str, at: &Position, reason: &str) {
        let alert = self.groups[key].alerts.iter().find(|a| a.notify != NotifyReason::None).cloned();
        let payload = alert.and_then(|a| registry().encode(&a).ok()).unwrap_or_default();
        self.outcomes.dead_letters.push(DeadLetter {
            topic: at.topic.clone(), partition: at.partition, offset: at.offset, stage: "notify".into(), reason: reason.to_string(),
            failed_at: trackiq_schemas::now_us(), key: Some(key.as_bytes().to_vec()), payload,
        });
    }

    async fn deliver(&mut self, i: usize, nid: &str, m: &MessageModel, title: &str) -> Result<Option<String>, Failure> {
        let render = |name: &str| self.templates.render(name, m).map_err(|e| Failure::Refused(e.to_string()));
        let ch = &self.channels[i];
        match &ch.sender {
            Sender::Log => {
                warn!(target: "trackiq::alert", channel = ch.config.name(), series = %m.series_id, run = %m.run_id, reason = m.reason, severity = m.severity, alerts = %m.alert_ids, "{title}");
                Ok(None)
            }
            Sender::Slack { client, url } => {
                let body = super::slack::body(m, title, &render("slack.mrkdwn")?);
                match post_once(client, url.expose(), nid, &body).await {
                    Attempt::Delivered => Ok(None),
                    Attempt::Transient(e) => Err(Failure::Transient(format!("Slack webhook: {e}"))),
                    Attempt::Refused(e) => Err(Failure::Refused(format!("Slack webhook: {e}"))),
                }
            }
            Sender::Email(mailer) => mailer.send(nid, &m.episode, title, render("email.txt")?, render("email.html")?).await.map(Some),
            Sender::Github(issues) => {
                let key = (ch.config.name().to_string(), m.series_id.clone());
                let body = render("github.md")?;
                match self.issues.get(&key).copied() {
                    // A note belongs on an open issue; with none there is no thread to add to.
                    None if m.all_resolved() || m.reason_kind == NotifyReason::Note => Ok(None),
                    None => {
                        let n = issues.open(title, &body).await?;
                        self.issues.insert(key, n);
                        Ok(Some(format!("#{n}")))
                    }
                    Some(n) => {
                        let step = format!("{nid}/comment");
                        if !self.steps.contains(&step) {
                            issues.comment(n, &body).await?;
                            self.steps.insert(step);
                        }
                        if m.series_firing > 0 {
                            return Ok(Some(format!("#{n}")));
                        }
                        issues.close(n).await?;
                        self.issues.remove(&key);
                        Ok(Some(format!("#{n} closed")))
                    }
                }
            }
        }
    }

    /// Sends group `key` and, once every channel has an outcome, publishes the outcomes and
    /// releases the group's held records (but `current`, which is the input being handled).
    async fn finish_group(&mut self, key: &str, current: Option<&Position>) -> Result<Effects, StageError> {
        let at = current.cloned().unwrap_or_else(|| self.groups[key].positions.last().cloned().expect("a group has a record"));
        self.send_group(key, &at).await?;
        let group = self.groups.remove(key).expect("the group being finished");
        let mut effects = Effects::done();
        for n in std::mem::take(&mut self.outcomes.notifications) {
            effects.publish(&self.topics.notifications, n.group_key.as_bytes(), &n)?;
        }
        for d in std::mem::take(&mut self.outcomes.dead_letters) {
            effects.publish(&self.topics.dlq, key.as_bytes(), &d)?;
        }
        effects.release = group.positions.into_iter().filter(|p| Some(p) != current).collect();
        Ok(effects)
    }
}

impl Stage for NotifyStage {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.alerts.clone()]
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { min_delay: Duration::from_millis(self.config.initial_backoff_ms), max_delay: Duration::from_millis(self.config.max_backoff_ms) }
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        let alert = match input.event {
            AnyEvent::Alert(a) => a,
            // Actions and release decisions share the topic; neither is a message to send.
            AnyEvent::AlertAction(_) | AnyEvent::ReleaseDecision(_) => return Ok(Effects::done()),
            other => return Err(StageError::Permanent(format!("unexpected {} on {}: the notifier reads alert changes", other.name(), input.position.topic))),
        };
        let key = alert.group_key.clone();
        let size = alert.group_size as usize;
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group { alerts: Vec::new(), positions: Vec::new(), since: Instant::now() });
        if !group.positions.contains(&input.position) {
            group.positions.push(input.position.clone());
            group.alerts.push(*alert);
        }
        if group.alerts.len() < size {
            return Ok(Effects::held());
        }
        self.finish_group(&key, Some(&input.position)).await
    }

    /// Groups whose other records never came are sent as they are.
    async fn tick(&mut self, _now: Instant) -> Result<Effects, StageError> {
        let stale: Vec<String> = self.groups.iter().filter(|(_, g)| g.since.elapsed() > GROUP_WAIT).map(|(k, _)| k.clone()).collect();
        let mut effects = Effects::done();
        for key in stale {
            warn!(group = %key, "alert group incomplete after {GROUP_WAIT:?}: sending what arrived");
            effects.extend(self.finish_group(&key, None).await?);
        }
        Ok(effects)
    }

    /// A revoked partition's groups are replayed by their new owner from the stored offsets.
    async fn partitions_changed(&mut self, _assigned: &[(String, i32)], revoked: &[(String, i32)]) -> Result<(), StageError> {
        self.groups.retain(|_, g| !g.positions.iter().any(|p| revoked.iter().any(|(t, part)| *t == p.topic && *part == p.partition)));
        Ok(())
    }
}

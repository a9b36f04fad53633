//! Alerts: verdicts, cluster-health detections, pinned baselines and on-call actions → alert
//! changes on the `alerts` topic (see [`book`] for the lifecycle). Sinks deliver them; this
//! stage only decides what changed and whether it is worth a message.
//!
//! The state is every alert's latest change and the silences in force. At start-up it is
//! read back from the `alerts` and `alert_actions` tables and then from the whole retained
//! alerts log (newer than any row), so a replayed verdict whose changes were published
//! before a crash is recognised and makes none again; when partitions move between instances
//! the book is rebuilt the same way. A series' verdicts and pins stay on one partition, so
//! one instance decides its alerts; a run's detections are keyed by run and may be judged by
//! another instance than its verdict, which then sees them only after a rebuild (run one
//! instance where that matters).

pub mod book;
#[cfg(test)]
mod tests;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::info;
use trackiq_infra::replay::{read_log, replay_consumer};
use trackiq_infra::runtime::{Effects, Input, Stage, StageError};
use trackiq_infra::tables::query_as;
use trackiq_infra::{Bus, DataStore};
use trackiq_schemas::{Alert, AlertAction, AnyEvent, Topics};

pub use book::{AlertBook, alert_id};

use crate::error::ProcessorError;

/// Alert lifecycle settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Consumer group of the alert processor.
    pub group: String,
    /// Consecutive runs back within threshold that resolve a firing alert.
    pub resolve_after_runs: u32,
    /// A firing alert nobody acknowledged is sent again after this many seconds (0: never).
    pub repeat_interval_secs: u64,
    /// A firing alert is sent again as worse when its change grows by this factor over the
    /// change last sent (or its severity rises from warn to block).
    pub worse_factor: f64,
    /// Alert on the verdict's rule findings (sustained shift, missed fault, ...), not only
    /// on regressed metrics.
    pub findings: bool,
    /// Alert on cluster-health detections the moment they are raised (the run's verdict
    /// then does not repeat them).
    pub detections: bool,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { group: "trackiq-alerts".into(), resolve_after_runs: 3, repeat_interval_secs: 4 * 3600, worse_factor: 1.5, findings: true, detections: true }
    }
}

/// The alert processor as a stage of the runtime.
pub struct AlertStage {
    book: AlertBook,
    topics: Topics,
    /// What a rebuild needs; None for a stage over a given book (tests).
    source: Option<(AlertsConfig, Bus, DataStore)>,
}

/// Latest row of every alert, in the event's own field names.
const ALERTS_SQL: &str = "SELECT alert_id, series_id, subject, kind, state, severity, run_id, value, baseline, change_pct, change_ci_low, change_ci_high, \
     pvalue, message, workload, hardware, version_tag, git_commit, CAST(fired_at AS BIGINT) AS fired_at, CAST(updated_at AS BIGINT) AS updated_at, \
     CAST(notified_at AS BIGINT) AS notified_at, notified_change_pct, notify, silenced_by, acked_by, ok_runs, series_firing, group_key, group_size, group_index \
     FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY updated_at DESC, kafka_partition DESC, kafka_offset DESC) AS rn FROM alerts) WHERE rn = 1";

/// Every silence and unsilence, in the order they were made.
const ACTIONS_SQL: &str = "SELECT action, id, series_id, subject, CAST(\"until\" AS BIGINT) AS \"until\", reason, \"by\", CAST(\"at\" AS BIGINT) AS \"at\" \
     FROM alert_actions WHERE action <> 'ack' ORDER BY \"at\", kafka_partition, kafka_offset";

/// The book as the history tables have it (archived changes and actions).
pub async fn book_from_tables(config: &AlertsConfig, store: &DataStore) -> Result<AlertBook, ProcessorError> {
    let mut book = AlertBook::new(config.clone());
    let alerts: Vec<Alert> = query_as(store, ALERTS_SQL).await?;
    let actions: Vec<AlertAction> = query_as(store, ACTIONS_SQL).await?;
    for a in alerts {
        book.restore(&AnyEvent::Alert(Box::new(a)));
    }
    for a in actions {
        book.restore(&AnyEvent::AlertAction(a));
    }
    Ok(book)
}

/// Adds the whole retained alerts log (newer than any archived row) to `book`; returns it and
/// how many events were read.
pub async fn add_log(mut book: AlertBook, bus: &Bus, group: &str) -> Result<(AlertBook, usize), ProcessorError> {
    let (bus, group, topic) = (bus.clone(), group.to_string(), bus.topics().alerts.clone());
    tokio::task::spawn_blocking(move || {
        let c = replay_consumer(&bus, &format!("{group}-bootstrap"))?;
        let n = read_log(&c, &topic, &Default::default(), |e| book.restore(&e))?;
        Ok::<_, ProcessorError>((book, n))
    })
    .await
    .map_err(|e| ProcessorError::Task(e.to_string()))?
}

/// Rebuilds the book: tables first, then the retained log (see the module doc).
pub async fn bootstrap(config: &AlertsConfig, bus: &Bus, store: &DataStore) -> Result<AlertBook, ProcessorError> {
    let (book, from_log) = add_log(book_from_tables(config, store).await?, bus, &config.group).await?;
    info!(from_log, firing = book.firing().count(), "alert state rebuilt");
    Ok(book)
}

impl AlertStage {
    pub async fn start(config: AlertsConfig, bus: &Bus, store: &DataStore) -> Result<Self, ProcessorError> {
        Ok(AlertStage { book: bootstrap(&config, bus, store).await?, topics: bus.topics().clone(), source: Some((config, bus.clone(), store.clone())) })
    }

    /// A stage over a given book, for tests.
    pub fn with_book(book: AlertBook, topics: Topics) -> Self {
        AlertStage { book, topics, source: None }
    }
}

impl Stage for AlertStage {
    fn name(&self) -> &'static str {
        "alerts"
    }

    /// Verdicts, detections, pins (on summaries) and actions (on alerts, beside the changes).
    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.verdicts.clone(), topics.detections.clone(), topics.summaries.clone(), topics.alerts.clone()]
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        let changes = match &input.event {
            AnyEvent::Verdict(v) => self.book.on_verdict(v),
            AnyEvent::Detection(d) => self.book.on_detection(d),
            AnyEvent::BaselinePin(p) => self.book.on_pin(p),
            AnyEvent::AlertAction(a) => self.book.on_action(a),
            // The stage's own output, the summaries it does not judge, and release decisions
            // (which share the alerts topic with the on-call actions).
            AnyEvent::Alert(_) | AnyEvent::RunSummary(_) | AnyEvent::ReleaseDecision(_) => Vec::new(),
            other => {
                return Err(StageError::Permanent(format!("unexpected {} on {}: the alert processor reads verdicts, detections, pins and actions", other.name(), input.position.topic)));
            }
        };
        let mut effects = Effects::done();
        for a in &changes {
            info!(alert = %a.alert_id, series = %a.series_id, subject = %a.subject, state = a.state.as_str(), notify = a.notify.as_str(), silenced = a.silenced_by.is_some(), "alert");
            effects.publish(&self.topics.alerts, a.series_id.as_bytes(), a)?;
        }
        Ok(effects)
    }

    /// Partitions moved (another instance joined or left): what it changed is in the alerts
    /// log, so the book is rebuilt as at start-up.
    async fn partitions_changed(&mut self, assigned: &[(String, i32)], _revoked: &[(String, i32)]) -> Result<(), StageError> {
        let Some((config, bus, store)) = self.source.as_ref().filter(|_| !assigned.is_empty()) else { return Ok(()) };
        self.book = bootstrap(config, bus, store).await.map_err(|e| StageError::Transient(format!("rebuilding the alert state: {e}")))?;
        Ok(())
    }
}

//! The alert lifecycle, Alertmanager-style, as a pure function of the inputs: every alert is
//! keyed by (series, subject); an input (a verdict, a detection, a pin, an on-call action)
//! gives the alert changes it causes, all in one notification group.
//!
//! Times are the inputs' own (a verdict's `evaluated_at`), never the clock: replaying the
//! log gives the same changes, and a change already made (same alert, same run) is not made
//! twice.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use trackiq_schemas::{
    Alert, AlertAction, AlertActionKind, AlertKind, AlertState, BaselinePin, Detection, NotifyReason, Severity, Verdict,
};

use super::AlertsConfig;

/// Verdict rule whose findings repeat cluster-health detections.
const CLUSTER_DETECTION_RULE: &str = "cluster_detection";

/// Stable id of the alert of `subject` in `series`: the same in every episode.
pub fn alert_id(series: &str, subject: &str) -> String {
    let digest = Sha256::digest(format!("{series}\0{subject}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What a verdict (or detection) observed about one subject.
struct Observation {
    subject: String,
    kind: AlertKind,
    severity: Severity,
    value: Option<f64>,
    baseline: Option<f64>,
    change_pct: Option<f64>,
    ci: (Option<f64>, Option<f64>),
    pvalue: Option<f64>,
    message: String,
}

/// Who the alert is about, for messages and routing.
#[derive(Default, Clone)]
struct Context {
    workload: String,
    hardware: String,
    version_tag: Option<String>,
    git_commit: Option<String>,
    labels: BTreeMap<String, String>,
}

/// Every alert's latest state and the silences in force.
#[derive(Default)]
pub struct AlertBook {
    config: AlertsConfig,
    alerts: HashMap<String, Alert>,
    silences: HashMap<String, AlertAction>,
    /// Silences ended early, so a second `unsilence` can say so.
    ended: std::collections::HashSet<String>,
}

fn bad(s: Severity) -> bool {
    matches!(s, Severity::Warn | Severity::Block)
}

impl AlertBook {
    pub fn new(config: AlertsConfig) -> Self {
        AlertBook { config, ..Default::default() }
    }

    /// The latest state of an alert.
    pub fn get(&self, alert_id: &str) -> Option<&Alert> {
        self.alerts.get(alert_id)
    }

    /// Alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().filter(|a| a.state == AlertState::Firing)
    }

    /// Takes in an event read back from the alerts log or table (start-up).
    pub fn restore(&mut self, event: &trackiq_schemas::AnyEvent) {
        match event {
            trackiq_schemas::AnyEvent::Alert(a) => {
                let newer = self.alerts.get(&a.alert_id).is_none_or(|old| old.updated_at <= a.updated_at);
                if newer {
                    self.alerts.insert(a.alert_id.clone(), a.as_ref().clone());
                }
            }
            trackiq_schemas::AnyEvent::AlertAction(a) => {
                self.act(a);
            }
            _ => {}
        }
    }

    /// The alert changes a verdict causes (see the module doc).
    pub fn on_verdict(&mut self, v: &Verdict) -> Vec<Alert> {
        let now = v.evaluated_at;
        let run = &v.summary.run;
        if run.labels.contains_key(trackiq_schemas::INVESTIGATION_LABEL) {
            return Vec::new();
        }
        let ctx = Context {
            workload: run.workload.name.clone(),
            hardware: run.platform.hardware_name.clone(),
            version_tag: run.version.version_tag.clone(),
            git_commit: run.version.git_commit.clone(),
            labels: run.labels.clone(),
        };
        let detected: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.series_id == v.run_id && a.kind == AlertKind::Detection)
            .map(|a| a.subject.split(':').nth(1).unwrap_or_default().to_string())
            .collect();
        let mut observed: Vec<Observation> = v
            .metrics
            .iter()
            .filter(|m| observed_metrics(std::slice::from_ref(m)).next().is_some())
            .map(|m| Observation {
                subject: m.metric.clone(), kind: AlertKind::Regression, severity: m.severity, value: Some(m.value), baseline: m.baseline,
                change_pct: m.change_pct, ci: (m.change_ci_low, m.change_ci_high), pvalue: m.pvalue_adjusted.or(m.pvalue),
                message: regression_message(&m.metric, m.value, m.baseline, m.change_pct),
            })
            .collect();
        if self.config.findings {
            // A cluster detection already alerted on while the run streamed is not sent again.
            let repeats = |rule: &str, metric: &str| rule == CLUSTER_DETECTION_RULE && detected.iter().any(|d| metric == format!("cluster.{d}"));
            // Inhibition, as Alertmanager's: a finding about a metric that regressed in this
            // verdict says the same thing again, and one about a metric that does not gate
            // (telemetry, derived percentiles) must not page anyone when its KPI does not.
            let regressed = |metric: &str| observed_metrics(&v.metrics).any(|m| m == metric);
            let quiet = |metric: &str| v.metrics.iter().any(|m| m.metric == metric && !m.gates);
            let wanted = |f: &&trackiq_schemas::Finding| bad(f.severity) && !repeats(&f.rule, &f.metric) && !regressed(&f.metric) && !quiet(&f.metric);
            observed.extend(v.findings.iter().filter(wanted).map(|f| Observation {
                subject: format!("finding:{}:{}", f.rule, f.metric), kind: AlertKind::Finding, severity: f.severity, value: f.value,
                baseline: None, change_pct: None, ci: (None, None), pvalue: None, message: f.message.clone(),
            }));
        }
        let mut changes = Vec::new();
        for o in &observed {
            if let Some(a) = self.observe(&v.series_id, &v.run_id, now, o, &ctx) {
                changes.push(a);
            }
        }
        // Firing alerts of the series this verdict did not see bad: one more good run each.
        let judged: Vec<&str> = v.metrics.iter().filter(|m| matches!(m.severity, Severity::Pass | Severity::Improved)).map(|m| m.metric.as_str()).collect();
        let quiet: Vec<String> = self
            .firing()
            .filter(|a| a.series_id == v.series_id && a.run_id != v.run_id && !observed.iter().any(|o| o.subject == a.subject))
            .filter(|a| a.kind == AlertKind::Finding || judged.contains(&a.subject.as_str()))
            .map(|a| a.alert_id.clone())
            .collect();
        for id in quiet {
            let mut a = self.alerts[&id].clone();
            a.ok_runs += 1;
            a.run_id = v.run_id.clone();
            a.updated_at = now;
            a.notify = NotifyReason::None;
            if a.ok_runs >= self.config.resolve_after_runs as i32 {
                // A resolution shows where the metric is back to; while it still fires, the row keeps
                // the figures its message states (a good run in between must not show -6 % beside "+176 %").
                if let Some(m) = v.metrics.iter().find(|m| m.metric == a.subject) {
                    (a.value, a.baseline, a.change_pct, a.change_ci_low, a.change_ci_high) = (Some(m.value), m.baseline, m.change_pct, m.change_ci_low, m.change_ci_high);
                    a.pvalue = m.pvalue_adjusted.or(m.pvalue);
                }
                a.state = AlertState::Resolved;
                a.notify = NotifyReason::Resolved;
                let fired_for = humanize_secs((now - a.fired_at) / 1_000_000);
                a.message = match a.value {
                    Some(value) if a.kind == AlertKind::Regression => {
                        let against = match (a.baseline, a.change_pct) {
                            (Some(b), Some(c)) => format!(" against {b:.4} ({c:+.1} %)"),
                            _ => String::new(),
                        };
                        format!("{} is back within its baseline for {} runs after firing for {fired_for}: now {value:.4}{against}", a.subject, a.ok_runs)
                    }
                    _ => format!("{} has not fired for {} runs, after firing for {fired_for}", a.subject, a.ok_runs),
                };
            }
            changes.push(a);
        }
        // The run is over: its detections have been sent; they end with it, quietly.
        let ended: Vec<String> = self.firing().filter(|a| a.series_id == v.run_id && a.kind == AlertKind::Detection).map(|a| a.alert_id.clone()).collect();
        for id in ended {
            let mut a = self.alerts[&id].clone();
            (a.state, a.notify, a.updated_at) = (AlertState::Resolved, NotifyReason::None, now);
            changes.push(a);
        }
        self.commit(changes, &v.series_id, &format!("verdict/{}", v.run_id), now)
    }

    /// A new episode, or the next state of a firing one; `None` when this run was applied already.
    fn observe(&self, series: &str, run_id: &str, now: i64, o: &Observation, ctx: &Context) -> Option<Alert> {
        let id = alert_id(series, &o.subject);
        let previous = self.alerts.get(&id).filter(|a| a.state == AlertState::Firing);
        if previous.is_some_and(|a| a.run_id == run_id) {
            return None;
        }
        let mut a = Alert {
            alert_id: id, series_id: series.to_string(), subject: o.subject.clone(), kind: o.kind, state: AlertState::Firing,
            severity: o.severity, run_id: run_id.to_string(), value: o.value, baseline: o.baseline, change_pct: o.change_pct,
            change_ci_low: o.ci.0, change_ci_high: o.ci.1, pvalue: o.pvalue, message: o.message.clone(), workload: ctx.workload.clone(),
            hardware: ctx.hardware.clone(), version_tag: ctx.version_tag.clone(), git_commit: ctx.git_commit.clone(), labels: ctx.labels.clone(),
            fired_at: now, updated_at: now, notified_at: Some(now), notified_change_pct: o.change_pct, notify: NotifyReason::Firing,
            silenced_by: None, acked_by: None, ok_runs: 0, series_firing: 0, group_key: String::new(), group_size: 1, group_index: 0,
        };
        let Some(p) = previous else { return Some(a) };
        a.fired_at = p.fired_at;
        let grown = match (o.change_pct, p.notified_change_pct) {
            (Some(now), Some(then)) => now.abs() >= self.config.worse_factor * then.abs() && now.abs() > then.abs(),
            _ => false,
        };
        let due = |at: Option<i64>| self.config.repeat_interval_secs > 0 && at.is_none_or(|t| now - t >= self.config.repeat_interval_secs as i64 * 1_000_000);
        if o.severity.rank() > p.severity.rank() || grown {
            a.notify = NotifyReason::Worse;
        } else if p.acked_by.is_none() && due(p.notified_at) {
            a.notify = NotifyReason::Repeat;
        } else {
            (a.notify, a.notified_at, a.notified_change_pct, a.acked_by) = (NotifyReason::None, p.notified_at, p.notified_change_pct, p.acked_by.clone());
            a.severity = o.severity.max_by_rank(p.severity);
        }
        Some(a)
    }

    /// A cluster-health detection: fires at once (a failed worker blocks, the rest warn).
    pub fn on_detection(&mut self, d: &Detection) -> Vec<Alert> {
        if !self.config.detections {
            return Vec::new();
        }
        let subject = match d.rank {
            Some(r) => format!("detection:{}:rank {r}", d.detector),
            None => format!("detection:{}", d.detector),
        };
        let severity = if d.detector == "failed_worker" { Severity::Block } else { Severity::Warn };
        let o = Observation {
            subject, kind: AlertKind::Detection, severity, value: Some(d.value), baseline: Some(d.threshold), change_pct: None,
            ci: (None, None), pvalue: None, message: d.message.clone(),
        };
        if self.alerts.get(&alert_id(&d.run_id, &o.subject)).is_some_and(|a| a.state == AlertState::Firing) {
            return Vec::new();
        }
        let changes = self.observe(&d.run_id, &d.run_id, d.detected_at, &o, &Context::default()).into_iter().collect();
        let key = format!("detection/{}/{}/{}", d.run_id, o.subject, d.event_ts);
        self.commit(changes, &d.run_id, &key, d.detected_at)
    }

    /// A pinned baseline resolves the series' firing regressions: they are judged anew.
    pub fn on_pin(&mut self, pin: &BaselinePin) -> Vec<Alert> {
        let ids: Vec<String> = self.firing().filter(|a| a.series_id == pin.series_id && a.kind == AlertKind::Regression).map(|a| a.alert_id.clone()).collect();
        let changes = ids
            .into_iter()
            .map(|id| {
                let mut a = self.alerts[&id].clone();
                (a.state, a.notify, a.updated_at) = (AlertState::Resolved, NotifyReason::Resolved, pin.set_at);
                a.message = format!("a new baseline was pinned{}", pin.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default());
                a
            })
            .collect();
        self.commit(changes, &pin.series_id, &format!("pin/{}/{}", pin.series_id, pin.set_at), pin.set_at)
    }

    /// An acknowledgement or a note (an alert change) or a silence (state only). `None`:
    /// nothing to change.
    pub fn on_action(&mut self, action: &AlertAction) -> Vec<Alert> {
        if matches!(action.action, AlertActionKind::Note | AlertActionKind::Downgrade) {
            return self.on_note(action);
        }
        if action.action != AlertActionKind::Ack {
            self.act(action);
            return Vec::new();
        }
        let Some(mut a) = self.alerts.get(&action.id).filter(|a| a.state == AlertState::Firing && a.acked_by.is_none()).cloned() else {
            return Vec::new();
        };
        (a.acked_by, a.notify, a.updated_at) = (Some(action.by.clone()), NotifyReason::None, action.at.max(a.updated_at));
        self.commit(vec![a], &action.series_id, &format!("ack/{}/{}", action.id, action.at), action.at)
    }

    /// A note goes to the alert's thread as a change of the alert whose message is the note
    /// (its state and figures unchanged); a downgrade also makes a blocking alert a warning.
    /// A note on an alert this book does not know, or a second delivery of one, changes nothing.
    fn on_note(&mut self, action: &AlertAction) -> Vec<Alert> {
        let Some(mut a) = self.alerts.get(&action.id).cloned() else { return Vec::new() };
        let key = format!("note/{}/{}", action.id, action.at);
        if a.group_key == key {
            return Vec::new();
        }
        if action.action == AlertActionKind::Downgrade && a.severity == Severity::Block {
            a.severity = Severity::Warn;
        }
        (a.notify, a.updated_at) = (NotifyReason::Note, action.at.max(a.updated_at));
        a.message = format!("{} (by {})", action.reason, action.by);
        self.commit(vec![a], &action.series_id, &key, action.at)
    }

    fn act(&mut self, action: &AlertAction) {
        match action.action {
            AlertActionKind::Silence => {
                self.silences.insert(action.id.clone(), action.clone());
            }
            AlertActionKind::Unsilence => {
                self.silences.remove(&action.id);
                self.ended.insert(action.id.clone());
            }
            AlertActionKind::Ack | AlertActionKind::Note | AlertActionKind::Downgrade => {}
        }
    }

    /// The silence in force over `a` at `now`, if any.
    fn silence_of(&self, a: &Alert, now: i64) -> Option<String> {
        self.silences
            .values()
            .filter(|s| s.series_id == a.series_id && s.subject.as_ref().is_none_or(|m| *m == a.subject) && s.at <= now && s.until.is_some_and(|u| now < u))
            .map(|s| s.id.clone())
            .min()
    }

    /// Stamps silences, the series' firing count and the group on `changes`, and keeps them.
    /// A silenced message does not count as sent: when the silence ends, the next change is
    /// compared with what people last heard, so a worsening it hid is sent then.
    fn commit(&mut self, mut changes: Vec<Alert>, series: &str, group: &str, now: i64) -> Vec<Alert> {
        for a in changes.iter_mut() {
            a.silenced_by = if a.notify == NotifyReason::None { None } else { self.silence_of(a, now) };
            if a.silenced_by.is_some() && a.state == AlertState::Firing {
                let before = self.alerts.get(&a.alert_id).filter(|p| p.fired_at == a.fired_at);
                (a.notified_at, a.notified_change_pct) = (before.and_then(|p| p.notified_at), before.and_then(|p| p.notified_change_pct));
            }
            self.alerts.insert(a.alert_id.clone(), a.clone());
        }
        let firing = self.firing().filter(|a| a.series_id == series).count() as i32;
        let size = changes.len() as i32;
        for (i, a) in changes.iter_mut().enumerate() {
            (a.series_firing, a.group_key, a.group_size, a.group_index) = (firing, group.to_string(), size, i as i32);
            self.alerts.insert(a.alert_id.clone(), a.clone());
        }
        changes
    }

    /// Silences in force at `now` (not ended, not unsilenced), soonest end first.
    pub fn active_silences(&self, now: i64) -> Vec<&AlertAction> {
        let mut v: Vec<&AlertAction> = self.silences.values().filter(|s| s.until.is_some_and(|u| now < u)).collect();
        v.sort_by_key(|s| s.until);
        v
    }

    /// The silence in force over `a` at `now`, if any (for listings).
    pub fn silenced_now(&self, a: &Alert, now: i64) -> Option<String> {
        self.silence_of(a, now)
    }

    /// A silence by id (ended or not, unless ended early) and whether it was ended early.
    pub fn silence(&self, id: &str) -> (Option<&AlertAction>, bool) {
        (self.silences.get(id), self.ended.contains(id))
    }

    /// Every alert's latest state.
    pub fn all(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

}

/// Metrics of a verdict that regressed and gate: the ones that alert.
fn observed_metrics(metrics: &[trackiq_schemas::MetricVerdict]) -> impl Iterator<Item = &str> {
    metrics.iter().filter(|m| m.gates && bad(m.severity)).map(|m| m.metric.as_str())
}

fn regression_message(metric: &str, value: f64, baseline: Option<f64>, change: Option<f64>) -> String {
    match (baseline, change) {
        (Some(b), Some(c)) => format!("{metric} is {value:.4} against a baseline of {b:.4} ({c:+.1} %)"),
        _ => format!("{metric} is {value:.4}"),
    }
}

/// "3 h 12 min", "45 s": how long an alert fired.
fn humanize_secs(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

trait MaxByRank {
    fn max_by_rank(self, other: Self) -> Self;
}

impl MaxByRank for Severity {
    fn max_by_rank(self, other: Severity) -> Severity {
        if other.rank() > self.rank() { other } else { self }
    }
}

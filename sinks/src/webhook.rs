//! Webhook notifications: a verdict at or above `min_severity`, and every cluster-health
//! detection as soon as the aggregator raises it, is POSTed as JSON to every configured URL.
//! An endpoint that is down is retried by the runtime with exponential backoff and jitter
//! until it answers (each URL gets a record once, even when another URL needed retries); a
//! refusal goes to the dead-letter topic with the reason. The offset is stored only after
//! every URL answered 2xx. URLs are shown as scheme://host only: webhook paths often hold
//! secrets.

use std::time::Duration;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::info;
use trackiq_infra::runtime::{Effects, Input, Position, RetryPolicy, Stage, StageError};
use trackiq_schemas::{AnyEvent, Detection, Severity, Topics, Verdict};

use crate::error::SinkError;

/// Webhook sink settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Consumer group of the webhook sink.
    pub group: String,
    /// URLs to POST verdicts to. Empty: the sink does not run.
    pub urls: Vec<String>,
    /// Notify for this severity and worse: `warn` or `block`.
    pub min_severity: Severity,
    /// Attempts per record before giving up to the dead-letter topic; 0 (the default):
    /// retry until the endpoints answer, so an outage delays notifications but loses none.
    /// A refusal (HTTP 4xx other than 408 and 429) is dead-lettered at once.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles (with jitter) after each failure.
    pub initial_backoff_ms: u64,
    /// Longest delay between retries.
    pub max_backoff_ms: u64,
    /// Timeout of one HTTP request.
    pub timeout_secs: u64,
    /// Also POST each cluster-health detection (straggler, failed worker, ...) the moment it
    /// is raised, rather than only in the run's verdict when the run ends.
    pub detections: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            group: "trackiq-webhook".into(),
            urls: Vec::new(),
            min_severity: Severity::Warn,
            max_attempts: 0,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
            timeout_secs: 10,
            detections: true,
        }
    }
}

/// Whether a verdict of `severity` is sent when the threshold is `min`.
pub fn notifies(severity: Severity, min: Severity) -> bool {
    matches!(severity, Severity::Warn | Severity::Block) && severity.rank() >= min.rank()
}

/// A URL with its path and query removed, for logs and dead letters.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}{}/…", u.scheme(), u.host_str().unwrap_or("?"), u.port().map(|p| format!(":{p}")).unwrap_or_default()),
        Err(_) => "<invalid url>".into(),
    }
}

/// The JSON body sent for a verdict.
pub fn payload(v: &Verdict, report: &str) -> serde_json::Value {
    let run = &v.summary.run;
    serde_json::json!({
        "event": "trackiq.verdict",
        "run_id": v.run_id,
        "series_id": v.series_id,
        "severity": v.severity.as_str(),
        "status": v.summary.status.as_str(),
        "workload": run.workload.name,
        "hardware": run.platform.hardware_name,
        "git_commit": run.version.git_commit,
        "version_tag": run.version.version_tag,
        "report": report,
        "metrics": v.metrics.iter().map(|m| serde_json::json!({
            "metric": m.metric, "value": m.value, "baseline": m.baseline, "baseline_count": m.baseline_count,
            "change_pct": m.change_pct, "lower_limit": m.lower_limit, "upper_limit": m.upper_limit,
            "direction": m.direction.as_str(), "model": m.model, "severity": m.severity.as_str(),
            "pvalue": m.pvalue, "pvalue_adjusted": m.pvalue_adjusted, "change_ci_low": m.change_ci_low, "change_ci_high": m.change_ci_high,
            "kind": m.kind.map(|k| k.as_str()), "gates": m.gates, "direction_guessed": m.direction_guessed,
        })).collect::<Vec<_>>(),
        "findings": v.findings.iter().map(|f| serde_json::json!({
            "rule": f.rule, "metric": f.metric, "severity": f.severity.as_str(), "value": f.value, "message": f.message,
        })).collect::<Vec<_>>(),
    })
}

/// The JSON body sent for a cluster-health detection.
pub fn detection_payload(d: &Detection) -> serde_json::Value {
    serde_json::json!({
        "event": "trackiq.detection",
        "run_id": d.run_id,
        "detector": d.detector,
        "rank": d.rank,
        "step": d.step,
        "value": d.value,
        "threshold": d.threshold,
        "message": d.message,
        "event_ts_us": d.event_ts,
        "detected_at_us": d.detected_at,
    })
}

/// How one POST went.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Worth retrying: the endpoint is down, overloaded or timed out (5xx, 408, 429).
    Transient(String),
    /// The endpoint refuses this request (other 4xx): retrying will not help.
    Refused(String),
}

/// POSTs `body` to `url` once. The `Idempotency-Key` header lets a receiver drop a repeat
/// after a crash between its 2xx and our offset commit.
pub async fn post_once(client: &reqwest::Client, url: &str, key: &str, body: &serde_json::Value) -> Attempt {
    match client.post(url).header("Idempotency-Key", key).json(body).send().await {
        Ok(r) if r.status().is_success() => Attempt::Delivered,
        Ok(r) if r.status().is_server_error() || matches!(r.status().as_u16(), 408 | 429) => Attempt::Transient(format!("HTTP {}", r.status())),
        Ok(r) => Attempt::Refused(format!("HTTP {}", r.status())),
        Err(e) => {
            // The causes (refused, timed out, TLS) without the URL, which may hold a key.
            let e = e.without_url();
            let mut why = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                why.push_str(&format!(": {c}"));
                cause = c.source();
            }
            Attempt::Transient(format!("request failed: {why}"))
        }
    }
}

/// Delivery of the record in progress: which URLs already have it.
struct InProgress {
    position: Position,
    delivered: Vec<bool>,
    attempts: u32,
}

/// The webhook sink as a stage of the runtime.
pub struct WebhookStage {
    config: WebhookConfig,
    client: reqwest::Client,
    report_base: String,
    in_progress: Option<InProgress>,
}

impl WebhookStage {
    /// Checks the URLs and builds the HTTP client. `report_base` is where reports are, for the link.
    pub fn new(config: WebhookConfig, report_base: String) -> Result<Self, SinkError> {
        for u in &config.urls {
            url::Url::parse(u).map_err(|e| SinkError::WebhookUrl { url: redact(u), reason: e.to_string() })?;
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| SinkError::WebhookUrl { url: String::new(), reason: e.to_string() })?;
        Ok(WebhookStage { config, client, report_base, in_progress: None })
    }

    fn body(&self, event: &AnyEvent) -> Option<(String, serde_json::Value)> {
        match event {
            AnyEvent::Verdict(v) if notifies(v.severity, self.config.min_severity) => {
                Some((format!("verdict/{}", v.run_id), payload(v, &format!("{}/{}", self.report_base, crate::report::report_path(&v.run_id)))))
            }
            AnyEvent::Detection(d) => {
                Some((format!("detection/{}/{}/{:?}/{}", d.run_id, d.detector, d.rank, d.event_ts), detection_payload(d)))
            }
            _ => None,
        }
    }
}

impl Stage for WebhookStage {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        let mut t = vec![topics.verdicts.clone()];
        if self.config.detections {
            t.push(topics.detections.clone());
        }
        t
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { min_delay: Duration::from_millis(self.config.initial_backoff_ms), max_delay: Duration::from_millis(self.config.max_backoff_ms) }
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        if !matches!(input.event, AnyEvent::Verdict(_) | AnyEvent::Detection(_)) {
            return Err(StageError::Permanent(format!("unexpected {} on {}: the webhook sink reads verdicts and detections", input.event.name(), input.position.topic)));
        }
        let Some((key, body)) = self.body(&input.event) else { return Ok(Effects::done()) };
        // A retry of the same record resumes where it stopped: no URL gets it twice.
        let mut p = match self.in_progress.take() {
            Some(p) if p.position == input.position => p,
            _ => InProgress { position: input.position.clone(), delivered: vec![false; self.config.urls.len()], attempts: 0 },
        };
        p.attempts += 1;
        let mut transient = Vec::new();
        let mut refused = Vec::new();
        for (i, url) in self.config.urls.iter().enumerate() {
            if p.delivered[i] {
                continue;
            }
            match post_once(&self.client, url, &key, &body).await {
                Attempt::Delivered => {
                    p.delivered[i] = true;
                    info!(key, event = %body["event"], url = %redact(url), attempts = p.attempts, "webhook delivered");
                }
                Attempt::Transient(e) => transient.push(format!("{}: {e}", redact(url))),
                Attempt::Refused(e) => refused.push(format!("{}: {e}", redact(url))),
            }
        }
        if !refused.is_empty() {
            return Err(StageError::Permanent(format!("webhook refused the request: {}", refused.join("; "))));
        }
        if transient.is_empty() {
            return Ok(Effects::done());
        }
        let attempts = p.attempts;
        self.in_progress = Some(p);
        if self.config.max_attempts > 0 && attempts >= self.config.max_attempts {
            self.in_progress = None;
            return Err(StageError::Permanent(format!("webhook failed after {attempts} attempts: {}", transient.join("; "))));
        }
        Err(StageError::Transient(transient.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_warn_and_block_notify() {
        assert!(notifies(Severity::Block, Severity::Warn));
        assert!(notifies(Severity::Warn, Severity::Warn));
        assert!(!notifies(Severity::Warn, Severity::Block));
        assert!(!notifies(Severity::Pass, Severity::Warn));
        assert!(!notifies(Severity::Improved, Severity::Warn));
        assert!(!notifies(Severity::InsufficientData, Severity::Warn));
    }

    #[test]
    fn redaction_hides_paths_and_queries() {
        assert_eq!(redact("https://hooks.slack.com/services/T000/B000/SECRET?x=1"), "https://hooks.slack.com/…");
        assert_eq!(redact("http://127.0.0.1:8080/hook"), "http://127.0.0.1:8080/…");
    }
}

//! Webhook notifications: a verdict at or above `min_severity`, and every cluster-health
//! detection as soon as the aggregator raises it, is POSTed as JSON to every configured URL,
//! retried with exponential backoff. The offset is stored only after every
//! URL answered 2xx, or after a URL that kept failing was reported to the dead-letter topic
//! with the reason. URLs are shown as scheme://host only: webhook paths often hold secrets.

use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use trackiq_infra::bus::{Next, OffsetStore};
use trackiq_infra::{Bus, Shutdown};
use trackiq_schemas::{AnyEvent, Detection, Severity, Verdict, registry};

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
    /// Attempts per URL before giving up to the dead-letter topic.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles after each failure.
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
            max_attempts: 5,
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

/// POSTs `body` to `url` until a 2xx, at most `max_attempts` times; the error says why the
/// last attempt failed.
pub async fn deliver(client: &reqwest::Client, config: &WebhookConfig, url: &str, body: &serde_json::Value) -> Result<u32, String> {
    let mut backoff = Duration::from_millis(config.initial_backoff_ms);
    let mut last = String::new();
    for attempt in 1..=config.max_attempts.max(1) {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(attempt),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = format!("request failed: {}", e.without_url()),
        }
        warn!(url = %redact(url), attempt, error = %last, "webhook delivery failed");
        if attempt < config.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(config.max_backoff_ms));
        }
    }
    Err(format!("webhook {} failed after {} attempts: {last}", redact(url), config.max_attempts.max(1)))
}

/// Runs the webhook sink until `shutdown`. `report_base` is where reports are, for the link.
pub async fn run(config: WebhookConfig, bus: Bus, report_base: String, mut shutdown: Shutdown) -> Result<(), SinkError> {
    for u in &config.urls {
        url::Url::parse(u).map_err(|e| SinkError::WebhookUrl { url: redact(u), reason: e.to_string() })?;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .build()
        .map_err(|e| SinkError::WebhookUrl { url: String::new(), reason: e.to_string() })?;
    let topics = if config.detections { vec![bus.topics().verdicts.as_str(), bus.topics().detections.as_str()] } else { vec![bus.topics().verdicts.as_str()] };
    let consumer: StreamConsumer = bus.consumer(&config.group, &topics)?;
    let producer = bus.producer()?;
    let mut offsets = OffsetStore::default();
    info!(urls = config.urls.len(), "webhook sink started");
    loop {
        let record = match bus.next(&consumer, &config.group, &mut shutdown, std::time::Duration::from_secs(1)).await {
            Next::Stop => break,
            Next::Idle => continue,
            Next::Record(r) => r,
        };
        let body = match registry().decode_any(&record.payload) {
            Ok(AnyEvent::Verdict(v)) if notifies(v.severity, config.min_severity) => {
                Some((v.run_id.clone(), payload(&v, &format!("{report_base}/{}", crate::report::report_path(&v.run_id)))))
            }
            Ok(AnyEvent::Detection(d)) => Some((d.run_id.clone(), detection_payload(&d))),
            Ok(AnyEvent::Verdict(_)) => None,
            Ok(other) => {
                let reason = format!("unexpected {} on {}", other.name(), record.topic);
                bus.dead_letter(&producer, &record, "webhook", &reason).await?;
                None
            }
            Err(e) => {
                bus.dead_letter(&producer, &record, "webhook", &e.to_string()).await?;
                None
            }
        };
        if let Some((run_id, body)) = body {
            for url in &config.urls {
                match deliver(&client, &config, url, &body).await {
                    Ok(attempts) => info!(%run_id, event = %body["event"], url = %redact(url), attempts, "webhook delivered"),
                    Err(reason) => bus.dead_letter(&producer, &record, "webhook", &reason).await?,
                }
            }
        }
        offsets.store(&consumer, &record.topic, record.partition, record.offset)?;
    }
    offsets.commit(&consumer);
    Ok(())
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

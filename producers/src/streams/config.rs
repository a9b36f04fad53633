//! `[[scrape]]` jobs and `[otlp]`: where continuous telemetry comes from. Defaults live in the
//! `Default` impls; `infra/trackiq.example.toml` shows every field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use trackiq_infra::secret::SecretSource;

use crate::error::ProducerError;

/// One Prometheus scrape job (`[[scrape]]`): every target is read each `interval_secs`, and
/// each target's `window_secs` of readings is one run of its series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeJob {
    /// The job's name: the workload of its runs (`llm-serving`, `dcgm`, `node`).
    pub job: String,
    /// Targets: `host:port` (read at `http://host:port/metrics`) or a full `http(s)://` URL.
    /// Each is a series: its `host:port` (and path, when not `/metrics`) is the runs' hardware name.
    pub targets: Vec<String>,
    /// Seconds between two scrapes of a target.
    pub interval_secs: f64,
    /// Seconds a scrape may take before it counts as failed (at most the interval).
    pub timeout_secs: f64,
    /// Seconds of readings that make one run (windows are aligned to the clock).
    pub window_secs: f64,
    /// Labels added to every run of the job (part of their series), e.g. `{ team = "inference" }`.
    pub labels: BTreeMap<String, String>,
    /// Labels that carry the software version (the first one found on any series of a scrape;
    /// relabel here when your exporter calls it otherwise). A new value is a deploy.
    pub version_labels: Vec<String>,
    /// Failed scrapes in a row after which the target is down (`scrape_failed` is raised).
    pub down_after: u32,
    /// Largest response read, in bytes; a larger one is a failed scrape.
    pub max_body_bytes: usize,
    /// Samples after which a target's window closes early (bounds memory).
    pub max_window_samples: usize,
}

impl Default for ScrapeJob {
    fn default() -> Self {
        ScrapeJob {
            job: String::new(),
            targets: Vec::new(),
            interval_secs: 15.0,
            timeout_secs: 10.0,
            window_secs: 300.0,
            labels: BTreeMap::new(),
            version_labels: vec!["version".into(), "service_version".into(), "image_tag".into()],
            down_after: 3,
            max_body_bytes: 16 << 20,
            max_window_samples: 100_000,
        }
    }
}

impl ScrapeJob {
    /// Checks what serde cannot: a name, targets, positive durations.
    pub fn validate(&self) -> Result<(), ProducerError> {
        let bad = |what: String| Err(ProducerError::Usage(format!("[[scrape]] {}: {what}", if self.job.is_empty() { "(no job)" } else { &self.job })));
        if self.job.trim().is_empty() {
            return bad("`job` is required: it names the workload of the runs".into());
        }
        if self.targets.is_empty() {
            return bad("`targets` is empty: give `host:port` or URLs".into());
        }
        for (name, v) in [("interval_secs", self.interval_secs), ("timeout_secs", self.timeout_secs), ("window_secs", self.window_secs)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("`{name}` must be a positive number of seconds, got {v}"));
            }
        }
        if self.window_secs < self.interval_secs {
            return bad(format!("`window_secs` ({}) is shorter than `interval_secs` ({}): a window needs readings", self.window_secs, self.interval_secs));
        }
        for t in &self.targets {
            target_url(t).map_err(|e| ProducerError::Usage(format!("[[scrape]] {}: {e}", self.job)))?;
        }
        Ok(())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs.min(self.interval_secs))
    }
}

/// The URL a target is read at, and its instance: `host:port`, and the path when it is not
/// `/metrics`.
pub fn target_url(target: &str) -> Result<(String, String), String> {
    let url = if target.contains("://") { target.to_string() } else { format!("http://{target}/metrics") };
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("target `{target}` is not host:port or a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("target `{target}`: only http and https are scraped"));
    }
    let host = parsed.host_str().ok_or_else(|| format!("target `{target}` has no host"))?;
    let mut instance = match parsed.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    // Two targets on one host:port at other paths are other series.
    if parsed.path() != "/metrics" {
        instance.push_str(parsed.path());
    }
    Ok((url, instance))
}

/// The OTLP/HTTP metrics receiver (`[otlp]`): `POST /v1/metrics`, protobuf or JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Receive OTLP metrics in `trackiq up`.
    pub enabled: bool,
    /// Address to listen on (OTLP/HTTP's port is 4318; port 0 picks a free one).
    pub listen: String,
    /// Bearer token senders present (`{ env = "VAR" }` or `{ file = "/path" }`); required
    /// when `listen` is not a loopback address.
    pub token: Option<SecretSource>,
    /// Largest request body, in bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Seconds of one resource's readings that make one run.
    pub window_secs: f64,
    /// Resource attributes that carry the software version (first found). A new value is a deploy.
    pub version_attributes: Vec<String>,
    /// Resource attributes kept as labels of the runs (part of the series). Others
    /// (`process.pid`, SDK versions) change on every restart and are left out.
    pub label_attributes: Vec<String>,
    /// Samples after which a resource's window closes early.
    pub max_window_samples: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: false,
            listen: "127.0.0.1:4318".into(),
            token: None,
            max_body_bytes: 4 << 20,
            window_secs: 300.0,
            version_attributes: vec!["service.version".into()],
            label_attributes: vec!["service.namespace".into(), "deployment.environment".into(), "deployment.environment.name".into()],
            max_window_samples: 100_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_their_instance() {
        assert_eq!(target_url("gpu-1:8000").unwrap(), ("http://gpu-1:8000/metrics".into(), "gpu-1:8000".into()));
        assert_eq!(target_url("https://dcgm.internal/metrics").unwrap().1, "dcgm.internal:443");
        assert_eq!(target_url("http://127.0.0.1:9000/t/3/metrics").unwrap().1, "127.0.0.1:9000/t/3/metrics", "paths keep targets apart");
        assert!(target_url("not a target").is_err());
    }
}

//! Prometheus scrape jobs: every target read on its own timer (spread over the interval, so
//! 1,000 targets do not all fire at once), its text turned into one [`Observation`].
//!
//! A target that does not answer, answers an error status, times out, sends more than the
//! body limit or text that does not parse is a failed scrape ([`Reading`] of nothing); it
//! never holds up another target (each has its own task; the client pools connections).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::config::{ScrapeJob, target_url};
use super::exposition::{self, Kind};
use super::histogram::Buckets;
use super::mapping;
use super::reading::{Observation, Point, Reading, Target};
use super::service::{Input, Source};

/// What the scrape asks for: the classic text format (every exporter serves it). Not
/// OpenMetrics first: Python's prometheus_client answers OpenMetrics whenever the header names
/// it, and there writes `vllm:x` samples as `vllm_x` under a `# TYPE vllm:x` line. An exporter
/// that serves only OpenMetrics still answers `*/*`.
const ACCEPT: &str = "text/plain;version=0.0.4,*/*;q=0.1";

/// The readings of one exposition; `version_labels` are taken off every series (a version is
/// not a dimension) and the observation's version is the one on a series the catalog knows,
/// else on a `*build_info` series, else the first found.
pub fn observe(text: &str, target: Target, at_us: i64, version_labels: &[String]) -> Result<Observation, exposition::ExpositionError> {
    let mut expo = exposition::parse(text)?;
    let mut version = None;
    let mut points = Vec::new();
    // Histogram buckets by (family, labels without `le`).
    let mut buckets: BTreeMap<(String, BTreeMap<String, String>), Vec<(f64, f64)>> = BTreeMap::new();
    for mut s in std::mem::take(&mut expo.samples) {
        let (family, kind, suffix) = expo.family(&s.name);
        for l in version_labels {
            if let Some(v) = s.labels.remove(l) {
                // A runtime's own `version` (`python_info{version="3.11.7"}`) is not the
                // service's: a label on a series the catalog knows wins, then a `*build_info`.
                let rank = if mapping::histogram(family).is_some() || mapping::gauge(family).is_some() { 0 } else if family.ends_with("build_info") { 1 } else { 2 };
                if version.as_ref().is_none_or(|(r, _)| rank < *r) {
                    version = Some((rank, v));
                }
            }
        }
        let reading = match (kind, suffix) {
            (Kind::Histogram, "_bucket") => {
                let Some(le) = s.labels.remove("le").and_then(|v| exposition::number(&v)) else { continue };
                buckets.entry((family.to_string(), s.labels)).or_default().push((le, s.value));
                continue;
            }
            // A histogram's count and sum, a counter's creation time, a summary: nothing the
            // windows use (the buckets hold the count; quantiles of a summary cannot be summed).
            (Kind::Histogram | Kind::Summary, _) | (_, "_created") => continue,
            (Kind::Counter, _) => Reading::Cumulative(s.value),
            // OpenMetrics counters without a `# TYPE` still end in `_total`.
            (Kind::Untyped, _) if s.name.ends_with("_total") => Reading::Cumulative(s.value),
            _ => Reading::Gauge(s.value),
        };
        points.push(Point { name: s.name, labels: s.labels, reading });
    }
    for ((family, labels), le) in buckets {
        points.push(Point { name: family, labels, reading: Reading::CumulativeHistogram(Buckets::from_cumulative(le)) });
    }
    Ok(Observation { target, at_us, version: version.map(|(_, v)| v), points })
}

/// Scrapes every target of `job` until `stop`, sending readings and failures to `out`.
pub fn spawn_job(source: Source, job: &ScrapeJob, client: reqwest::Client, out: mpsc::Sender<Input>, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let job = Arc::new(job.clone());
    let n = job.targets.len().max(1);
    job.targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| target_url(t).ok().map(|(url, instance)| (i, url, instance)))
        .map(|(i, url, instance)| {
            let target = Target { job: job.job.clone(), instance, labels: job.labels.clone() };
            // Spread the targets' first scrapes over one interval.
            let offset = job.interval().mul_f64(i as f64 / n as f64);
            tokio::spawn(scrape_target(source, job.clone(), client.clone(), url, target, offset, out.clone(), stop.clone()))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn scrape_target(source: Source, job: Arc<ScrapeJob>, client: reqwest::Client, url: String, target: Target, offset: std::time::Duration, out: mpsc::Sender<Input>, stop: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, job.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let at_us = trackiq_schemas::now_us();
        let started = std::time::Instant::now();
        let input = match fetch(&client, &url, &job).await {
            Ok(text) => match observe(&text, target.clone(), at_us, &job.version_labels) {
                Ok(obs) => Input::Observed { source, obs },
                Err(e) => Input::Failed { source, target: target.clone(), at_us, reason: format!("{url}: the text does not parse: {e}"), down_after: job.down_after },
            },
            Err(reason) => Input::Failed { source, target: target.clone(), at_us, reason: format!("{url}: {reason}"), down_after: job.down_after },
        };
        debug!(url, took_ms = started.elapsed().as_millis() as u64, "scraped");
        if out.send(input).await.is_err() {
            return;
        }
    }
}

/// One scrape's body, or why there is none.
async fn fetch(client: &reqwest::Client, url: &str, job: &ScrapeJob) -> Result<String, String> {
    let res = client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", job.timeout().as_secs_f64()))
        .timeout(job.timeout())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    if res.content_length().is_some_and(|l| l as usize > job.max_body_bytes) {
        return Err(format!("the body is larger than max_body_bytes ({})", job.max_body_bytes));
    }
    let mut body = Vec::new();
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(|e| describe(&e))?);
        if body.len() > job.max_body_bytes {
            return Err(format!("the body is larger than max_body_bytes ({})", job.max_body_bytes));
        }
    }
    String::from_utf8(body).map_err(|e| format!("the body is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
}

/// A transport error in words (reqwest's own message hides the cause in its source chain).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposition_becomes_readings_and_a_version() {
        let text = "python_info{implementation=\"CPython\",version=\"3.11.7\"} 1\n# TYPE vllm:time_to_first_token_seconds histogram\n\
            vllm:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"m\",version=\"v2.4.1\"} 2\n\
            vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\",version=\"v2.4.1\"} 3\n\
            vllm:time_to_first_token_seconds_count{model_name=\"m\",version=\"v2.4.1\"} 3\n\
            vllm:time_to_first_token_seconds_sum{model_name=\"m\",version=\"v2.4.1\"} 0.4\n\
            # TYPE requests counter\nrequests_total 12\nrequests_created 1.7e9\n# TYPE load gauge\nload 0.5\nuntyped_total 3\n";
        let t = Target { job: "j".into(), instance: "h:1".into(), labels: BTreeMap::new() };
        let o = observe(text, t, 5, &["version".into()]).unwrap();
        assert_eq!(o.version.as_deref(), Some("v2.4.1"));
        let names: Vec<(&str, &Reading)> = o.points.iter().skip(1).map(|p| (p.name.as_str(), &p.reading)).collect();
        assert_eq!(names[0], ("requests_total", &Reading::Cumulative(12.0)));
        assert_eq!(names[1], ("load", &Reading::Gauge(0.5)));
        assert_eq!(names[2], ("untyped_total", &Reading::Cumulative(3.0)));
        let Reading::CumulativeHistogram(h) = names[3].1 else { panic!("{names:?}") };
        assert_eq!((h.bounds.clone(), h.counts.clone()), (vec![0.1, f64::INFINITY], vec![2.0, 1.0]));
        assert_eq!(o.points[4].labels, BTreeMap::from([("model_name".to_string(), "m".to_string())]), "le and version are not labels");
    }
}

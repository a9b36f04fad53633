//! The pipeline's own metrics: records in and out, errors, dead letters, retries, restarts,
//! health and consumer lag per stage, and Parquet written per table.
//!
//! [`PipelineMetrics`] is a cheap clone that every stage records into; [`serve`] exposes it
//! as OpenMetrics text at `GET /metrics` (what Prometheus scrapes and `trackiq status`
//! reads) and answers `GET /healthz` for liveness probes.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tracing::info;

use crate::error::InfraError;
use crate::shutdown::Shutdown;

/// Content type of what [`PipelineMetrics::encode`] writes: the OpenMetrics text format
/// (it ends with `# EOF`, which the classic Prometheus `text/plain` type does not have).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The kinds of [`PipelineMetrics::error`]; each starts at 0 for a stage once it is up.
pub const ERROR_KINDS: [&str; 3] = ["transient", "permanent", "panic"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    stage: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    stage: String,
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    job: String,
    instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type PerStage = Family<StageLabels, Counter>;

#[derive(Debug)]
struct Inner {
    registry: Registry,
    records_in: PerStage,
    records_out: PerStage,
    errors: Family<ErrorLabels, Counter>,
    dead_letters: PerStage,
    retries: PerStage,
    restarts: PerStage,
    up: Family<StageLabels, Gauge>,
    lag: Family<LagLabels, Gauge>,
    parquet_files: Family<TableLabels, Counter>,
    parquet_bytes: Family<TableLabels, Counter>,
    parquet_rows: Family<TableLabels, Counter>,
    last_effect: Family<StageLabels, Gauge<f64, AtomicU64>>,
    target_up: Family<TargetLabels, Gauge>,
    target_failures: Family<TargetLabels, Counter>,
    readings: Family<SourceLabels, Counter>,
    windows: Family<SourceLabels, Counter>,
    /// Up or down per stage, for `/healthz`: a `Family` cannot list its label sets.
    health: Mutex<BTreeMap<String, bool>>,
}

/// The metrics of one `trackiq up` process. Clones share the same counters.
#[derive(Debug, Clone)]
pub struct PipelineMetrics(Arc<Inner>);

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn stage(stage: &str) -> StageLabels {
    StageLabels { stage: stage.to_string() }
}

impl PipelineMetrics {
    /// Registers every family under the `trackiq_` prefix; all start empty.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("trackiq");
        let records_in = PerStage::default();
        let records_out = PerStage::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let dead_letters = PerStage::default();
        let retries = PerStage::default();
        let restarts = PerStage::default();
        let up = Family::<StageLabels, Gauge>::default();
        let lag = Family::<LagLabels, Gauge>::default();
        let parquet_files = Family::<TableLabels, Counter>::default();
        let parquet_bytes = Family::<TableLabels, Counter>::default();
        let parquet_rows = Family::<TableLabels, Counter>::default();
        let last_effect = Family::<StageLabels, Gauge<f64, AtomicU64>>::default();
        let target_up = Family::<TargetLabels, Gauge>::default();
        let target_failures = Family::<TargetLabels, Counter>::default();
        let readings = Family::<SourceLabels, Counter>::default();
        let windows = Family::<SourceLabels, Counter>::default();
        // Counter names get `_total` and units their suffix from the encoder.
        r.register("stage_records_in", "Records a stage consumed", records_in.clone());
        r.register("stage_records_out", "Records a stage published", records_out.clone());
        r.register("stage_errors", "Failed stage calls by kind: transient, permanent, panic", errors.clone());
        r.register("dead_letters", "Records sent to the dead-letter topic", dead_letters.clone());
        r.register("stage_retries", "Retries of transient failures", retries.clone());
        r.register("stage_restarts", "Restarts of a failed stage by its supervisor", restarts.clone());
        r.register("stage_up", "1 while the stage runs, 0 while it is down or restarting", up.clone());
        r.register("consumer_lag", "Records between a partition's committed offset and its end", lag.clone());
        r.register("parquet_files", "Parquet files written", parquet_files.clone());
        r.register_with_unit("parquet", "Parquet bytes written", Unit::Bytes, parquet_bytes.clone());
        r.register("parquet_rows", "Rows written to Parquet: what SQL over the history sees", parquet_rows.clone());
        r.register_with_unit("stage_last_effect", "Unix time of the stage's last durable effect", Unit::Seconds, last_effect.clone());
        r.register("scrape_target_up", "1 when the target's last scrape succeeded, 0 when it failed", target_up.clone());
        r.register("scrape_failures", "Failed scrapes of a target (no answer, error status, timeout, bad text)", target_failures.clone());
        r.register("telemetry_readings", "Scrapes and OTLP resources read, by source", readings.clone());
        r.register("telemetry_windows", "Windows of telemetry published as runs, by source", windows.clone());
        PipelineMetrics(Arc::new(Inner {
            registry: r,
            records_in,
            records_out,
            errors,
            dead_letters,
            retries,
            restarts,
            up,
            lag,
            parquet_files,
            parquet_bytes,
            parquet_rows,
            last_effect,
            target_up,
            target_failures,
            readings,
            windows,
            health: Mutex::new(BTreeMap::new()),
        }))
    }

    /// `n` records consumed by `stage`.
    pub fn records_in(&self, stage_name: &str, n: u64) {
        self.0.records_in.get_or_create(&stage(stage_name)).inc_by(n);
    }

    /// `n` records published by `stage`.
    pub fn records_out(&self, stage_name: &str, n: u64) {
        self.0.records_out.get_or_create(&stage(stage_name)).inc_by(n);
    }

    /// A failed call of `stage`; `kind` is one of [`ERROR_KINDS`].
    pub fn error(&self, stage_name: &str, kind: &str) {
        self.0.errors.get_or_create(&ErrorLabels { stage: stage_name.to_string(), kind: kind.to_string() }).inc();
    }

    /// A record of `stage` dead-lettered.
    pub fn dead_letter(&self, stage_name: &str) {
        self.0.dead_letters.get_or_create(&stage(stage_name)).inc();
    }

    /// A transient failure of `stage` retried.
    pub fn retry(&self, stage_name: &str) {
        self.0.retries.get_or_create(&stage(stage_name)).inc();
    }

    /// `stage` restarted by its supervisor.
    pub fn restart(&self, stage_name: &str) {
        self.0.restarts.get_or_create(&stage(stage_name)).inc();
    }

    /// `stage` is running (or not). The first call registers the stage with `/healthz` and
    /// creates its counters at 0, so the first increment is a visible rate.
    pub fn set_up(&self, stage_name: &str, up: bool) {
        let labels = stage(stage_name);
        self.0.up.get_or_create(&labels).set(i64::from(up));
        if self.health().insert(stage_name.to_string(), up).is_none() {
            // Creating the series is the point; the returned read guard is not needed.
            for family in [&self.0.records_in, &self.0.records_out, &self.0.dead_letters, &self.0.retries, &self.0.restarts] {
                let _ = family.get_or_create(&labels);
            }
            for kind in ERROR_KINDS {
                let _ = self.0.errors.get_or_create(&ErrorLabels { stage: stage_name.to_string(), kind: kind.to_string() });
            }
        }
    }

    /// Consumer lag of `stage` on one partition of `topic`.
    pub fn set_lag(&self, stage_name: &str, topic: &str, partition: i32, lag: i64) {
        self.0.lag.get_or_create(&LagLabels { stage: stage_name.to_string(), topic: topic.to_string(), partition }).set(lag);
    }

    /// One Parquet file of `bytes` bytes and `rows` rows written for `table`.
    pub fn parquet_written(&self, table: &str, bytes: u64, rows: u64) {
        let labels = TableLabels { table: table.to_string() };
        self.0.parquet_files.get_or_create(&labels).inc();
        self.0.parquet_bytes.get_or_create(&labels).inc_by(bytes);
        self.0.parquet_rows.get_or_create(&labels).inc_by(rows);
    }

    /// `stage` made an effect durable now (published, written, committed).
    pub fn effect_done(&self, stage_name: &str) {
        // A clock before 1970 is a broken host; 0 then reads as "never".
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
        self.0.last_effect.get_or_create(&stage(stage_name)).set(now);
    }

    /// A scrape of `instance` (job `job`) succeeded or failed.
    pub fn scraped(&self, job: &str, instance: &str, ok: bool) {
        let labels = TargetLabels { job: job.to_string(), instance: instance.to_string() };
        self.0.target_up.get_or_create(&labels).set(i64::from(ok));
        let failures = self.0.target_failures.get_or_create(&labels);
        if !ok {
            failures.inc();
        }
    }

    /// One reading (a scrape, an OTLP resource) taken from `source`.
    pub fn reading(&self, source: &str) {
        self.0.readings.get_or_create(&SourceLabels { source: source.to_string() }).inc();
    }

    /// `n` windows of `source` published as runs.
    pub fn windows_published(&self, source: &str, n: u64) {
        self.0.windows.get_or_create(&SourceLabels { source: source.to_string() }).inc_by(n);
    }

    /// Registered stages that are down, by name.
    pub fn down_stages(&self) -> Vec<String> {
        self.health().iter().filter(|(_, up)| !**up).map(|(name, _)| name.clone()).collect()
    }

    /// Everything in the OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Only the writer can fail, and writing to a String does not.
        prometheus_client::encoding::text::encode(&mut out, &self.0.registry).expect("encoding metrics into a String");
        out
    }

    fn health(&self) -> MutexGuard<'_, BTreeMap<String, bool>> {
        // The map is valid after any panic of a holder: each update is a single insert.
        self.0.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until `shutdown`. `/healthz`
/// answers 200 `ok` while every stage registered by [`PipelineMetrics::set_up`] is up, 503
/// with the names of those down otherwise. The listener comes bound so that callers choose
/// the address (tests bind port 0) and report a bind error themselves.
pub async fn serve(metrics: PipelineMetrics, listener: TcpListener, mut shutdown: Shutdown) -> Result<(), InfraError> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "the metrics listener".into());
    let app = Router::new().route("/metrics", get(scrape)).route("/healthz", get(healthz)).with_state(metrics);
    info!("metrics at http://{addr}/metrics");
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await.map_err(|source| InfraError::Io { path: addr, source })
}

async fn scrape(State(metrics): State<PipelineMetrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
}

async fn healthz(State(metrics): State<PipelineMetrics>) -> (StatusCode, String) {
    let down = metrics.down_stages();
    if down.is_empty() { (StatusCode::OK, "ok".into()) } else { (StatusCode::SERVICE_UNAVAILABLE, format!("down: {}", down.join(", "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_encoded_with_their_labels() {
        let m = PipelineMetrics::new();
        m.set_up("aggregator", true);
        m.records_in("aggregator", 5);
        m.records_out("aggregator", 2);
        m.error("aggregator", "transient");
        m.dead_letter("aggregator");
        m.set_lag("aggregator", "trackiq.samples", 3, 42);
        m.parquet_written("samples", 1000, 10);
        m.parquet_written("samples", 24, 5);
        m.effect_done("aggregator");
        let text = m.encode();
        for line in [
            "trackiq_stage_records_in_total{stage=\"aggregator\"} 5",
            "trackiq_stage_records_out_total{stage=\"aggregator\"} 2",
            "trackiq_stage_errors_total{stage=\"aggregator\",kind=\"transient\"} 1",
            "trackiq_stage_errors_total{stage=\"aggregator\",kind=\"panic\"} 0",
            "trackiq_dead_letters_total{stage=\"aggregator\"} 1",
            "trackiq_stage_retries_total{stage=\"aggregator\"} 0",
            "trackiq_stage_up{stage=\"aggregator\"} 1",
            "trackiq_consumer_lag{stage=\"aggregator\",topic=\"trackiq.samples\",partition=\"3\"} 42",
            "trackiq_parquet_files_total{table=\"samples\"} 2",
            "trackiq_parquet_bytes_total{table=\"samples\"} 1024",
            "trackiq_parquet_rows_total{table=\"samples\"} 15",
            "# UNIT trackiq_stage_last_effect_seconds seconds",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        assert!(text.contains("trackiq_stage_last_effect_seconds{stage=\"aggregator\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn down_stages_are_listed() {
        let m = PipelineMetrics::new();
        assert!(m.down_stages().is_empty());
        m.set_up("archiver", true);
        m.set_up("verdict", false);
        assert_eq!(m.down_stages(), ["verdict"]);
        m.set_up("verdict", true);
        assert!(m.down_stages().is_empty());
    }

    #[tokio::test]
    async fn serves_metrics_and_health_until_shutdown() {
        let m = PipelineMetrics::new();
        m.set_up("report", false);
        m.records_in("report", 7);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (trigger, shutdown) = Shutdown::new();
        let server = tokio::spawn(serve(m.clone(), listener, shutdown));
        let client = reqwest::Client::new();

        let r = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = r.text().await.unwrap();
        assert!(body.lines().any(|l| l == "trackiq_stage_records_in_total{stage=\"report\"} 7"), "{body}");

        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (503, "down: report".to_string()));
        m.set_up("report", true);
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "ok".to_string()));

        trigger.trigger();
        // The client's idle keep-alive connection must not hold the server open.
        tokio::time::timeout(std::time::Duration::from_secs(5), server).await.expect("server stops on shutdown").unwrap().unwrap();
    }
}

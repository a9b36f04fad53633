//! HTML report per run: identity, version, verdict, summary table and latency histograms,
//! written to `<data>/reports/<run_id>.html`. Every user-supplied string is escaped by
//! tera's HTML autoescaping; charts are SVG from plotters.

pub mod chart;

use std::sync::LazyLock;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tera::{Context, Tera};
use tracing::{info, warn};
use trackiq_infra::DataStore;
use trackiq_infra::runtime::{Effects, Input, Stage, StageError};
use trackiq_schemas::{AnyEvent, Topics, Verdict};

use crate::error::SinkError;

/// Report sink settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Consumer group of the report sink.
    pub group: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig { group: "trackiq-report".into() }
    }
}

static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_template("report.html", include_str!("../../templates/report.html")).expect("report template parses");
    t
});

/// Object name of a run's report inside the data store.
pub fn report_path(run_id: &str) -> String {
    format!("reports/{run_id}.html")
}

/// A number for people: up to 4 decimals, trailing zeros dropped.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn opt(x: Option<f64>) -> String {
    x.map(fmt_num).unwrap_or_else(|| "—".into())
}

fn time_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

/// Renders the HTML report of a verdict.
pub fn render(v: &Verdict) -> Result<String, SinkError> {
    let s = &v.summary;
    let mut ctx = Context::new();
    ctx.insert("run", &s.run);
    ctx.insert("severity", v.severity.as_str());
    ctx.insert("status", s.status.as_str());
    ctx.insert("error", &s.error);
    ctx.insert("started", &time_us(s.run.timestamp));
    ctx.insert("gpus", &s.run.platform.gpus.join(", "));
    ctx.insert("generated", &time_us(trackiq_schemas::now_us()));
    let verdicts: Vec<_> = v
        .metrics
        .iter()
        .map(|m| {
            serde_json::json!({
                "metric": m.metric, "value": fmt_num(m.value), "baseline": opt(m.baseline),
                "baseline_count": m.baseline_count,
                "change": m.change_pct.map(|c| format!("{:+.2} %", c)).unwrap_or_else(|| "—".into()),
                "limits": match (m.lower_limit, m.upper_limit) { (Some(l), Some(u)) => format!("{} … {}", fmt_num(l), fmt_num(u)), _ => "—".into() },
                "direction": format!("{}{}", m.direction.as_str().replace('_', " "), if m.direction_guessed { " (guessed)" } else { "" }),
                "severity": m.severity.as_str(),
                "model": m.model, "pvalue": m.pvalue.map(|p| format!("{p:.2e}")).unwrap_or_else(|| "—".into()),
                "pvalue_adjusted": m.pvalue_adjusted.map(|p| format!("{p:.2e}")).unwrap_or_else(|| "—".into()),
                "interval": match (m.change_ci_low, m.change_ci_high) { (Some(l), Some(h)) => format!("{l:+.1} … {h:+.1} %"), _ => "—".into() },
                "kind": m.kind.map(|k| k.as_str()).unwrap_or("—"), "gates": m.gates,
                "about": trackiq_schemas::catalog::lookup(&m.metric).map(|d| d.about).unwrap_or(""),
            })
        })
        .collect();
    ctx.insert("verdicts", &verdicts);
    let findings: Vec<_> = v.findings.iter().map(|f| serde_json::json!({"rule": f.rule, "message": f.message, "severity": f.severity.as_str()})).collect();
    ctx.insert("findings", &findings);
    let metrics: Vec<_> = s
        .metrics
        .iter()
        .map(|m| {
            // Percentiles from a quantile sketch say so: "≈12.3 (±1 %)".
            let pct = |v: f64| match m.percentile_error {
                Some(e) => format!("≈{} (±{} %)", fmt_num(v), fmt_num(e * 100.0)),
                None => fmt_num(v),
            };
            serde_json::json!({
                "metric": m.metric, "unit": m.unit, "count": m.count, "mean": fmt_num(m.mean), "stdev": opt(m.stdev),
                "min": fmt_num(m.min), "p50": pct(m.p50), "p90": pct(m.p90), "p95": pct(m.p95),
                "p99": pct(m.p99), "max": fmt_num(m.max),
            })
        })
        .collect();
    ctx.insert("metrics", &metrics);
    let derived: Vec<_> = s.derived.iter().map(|d| serde_json::json!({"name": d.name, "unit": d.unit, "value": fmt_num(d.value)})).collect();
    ctx.insert("derived", &derived);
    let mut charts = Vec::new();
    for m in &s.metrics {
        let Some(h) = &m.histogram else { continue };
        if !trackiq_schemas::metrics::is_duration(&m.metric) {
            continue;
        }
        let title = format!("{} distribution ({} samples)", m.metric, m.count);
        match chart::histogram_svg(&title, &m.unit, h) {
            Ok(svg) => charts.push(serde_json::json!({"title": title, "svg": svg})),
            Err(e) => warn!(metric = %m.metric, error = %e, "could not draw histogram"),
        }
    }
    if let Some(c) = &s.cluster {
        let title = format!("all-reduce time per rank and step ({} ranks)", c.world_size);
        match chart::heatmap_svg(&title, "ms", &c.allreduce_ms, c.steps_per_column.max(1) as usize) {
            Ok(svg) => charts.push(serde_json::json!({"title": title, "svg": svg})),
            Err(e) => warn!(error = %e, "could not draw the rank heatmap"),
        }
        match chart::line_svg("training loss (mean over ranks)", "loss", &c.loss) {
            Ok(svg) => charts.push(serde_json::json!({"title": "loss curve", "svg": svg})),
            Err(e) => warn!(error = %e, "could not draw the loss curve"),
        }
        let faults: Vec<_> = c
            .faults
            .iter()
            .map(|f| {
                serde_json::json!({
                    "kind": f.kind, "rank": f.rank, "step": f.step, "injected": time_us(f.injected_at),
                    "detector": f.detector.clone().unwrap_or_else(|| "—".into()),
                    "latency": f.latency_ms.map_or_else(|| "missed".to_string(), |l| format!("{l:.0} ms")),
                })
            })
            .collect();
        let detections: Vec<_> = c.detections.iter().map(|d| serde_json::json!({"detector": d.detector, "at": time_us(d.detected_at), "message": d.message})).collect();
        ctx.insert(
            "cluster",
            &serde_json::json!({
                "world": c.world_size, "steps": c.steps, "samples_per_sec": fmt_num(c.samples_per_sec),
                "comm_overhead_pct": fmt_num(c.comm_overhead_pct), "false_alarms": c.false_alarms,
                "faults": faults, "detections": detections,
            }),
        );
    }
    ctx.insert("charts", &charts);
    TEMPLATES.render("report.html", &ctx).map_err(|e| SinkError::Template(format!("{e:?}")))
}

/// The report sink as a stage of the runtime.
pub struct ReportStage {
    store: DataStore,
}

impl ReportStage {
    pub fn new(store: DataStore) -> Self {
        ReportStage { store }
    }
}

impl Stage for ReportStage {
    fn name(&self) -> &'static str {
        "report"
    }

    fn topics(&self, topics: &Topics) -> Vec<String> {
        vec![topics.verdicts.clone()]
    }

    async fn handle(&mut self, input: Input, _now: Instant) -> Result<Effects, StageError> {
        let AnyEvent::Verdict(v) = input.event else {
            return Err(StageError::Permanent(format!("unexpected {} on {}: the report sink reads verdicts", input.event.name(), input.position.topic)));
        };
        // Rendering (templates, SVG charts) is CPU work: off the async workers.
        let run_id = v.run_id.clone();
        let html = tokio::task::spawn_blocking(move || render(&v))
            .await
            .map_err(|e| StageError::Permanent(format!("rendering the report panicked: {e}")))?
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        let path = report_path(&run_id);
        self.store.put(&path, html.into_bytes()).await.map_err(|e| StageError::Transient(e.to_string()))?;
        info!(report = %format!("{}/{path}", self.store), "wrote report");
        Ok(Effects::done())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trackiq_schemas::*;

    use super::*;

    #[test]
    fn report_escapes_user_strings_and_shows_findings_and_charts() {
        let mut labels = BTreeMap::new();
        labels.insert("owner".to_string(), "<img src=x onerror=alert(1)>".to_string());
        let run = RunStarted {
            run_id: "r1".into(),
            tool: "t".into(),
            tool_version: "0".into(),
            timestamp: 0,
            platform: Platform { hardware_name: "h&w".into(), ..Default::default() },
            workload: Workload { name: "<b>w</b>".into(), kind: "k".into(), ..Default::default() },
            version: VersionInfo::default(),
            labels,
            series_id: "s".into(),
        };
        let m = MetricSummary {
            metric: "latency_ms".into(), unit: "ms".into(), count: 4, mean: 2.5, stdev: Some(1.29), min: 1.0, p50: 2.5, p90: 3.7,
            p95: 3.85, p99: 3.97, max: 4.0, histogram: Some(Histogram { edges: vec![1.0, 2.5, 4.0], counts: vec![2, 2] }), percentile_error: None,
        };
        let summary = RunSummary { run, status: RunStatus::Completed, ended_at: 1, sample_count: 4, expected_sample_count: Some(4), error: None, metrics: vec![m], derived: vec![], cluster: None };
        let v = Verdict {
            run_id: "r1".into(), series_id: "s".into(), evaluated_at: 2, severity: Severity::Warn, summary, metrics: vec![],
            findings: vec![Finding { rule: "step_change".into(), metric: "latency_ms".into(), severity: Severity::Warn, value: Some(5.0), message: "latency <up>".into() }],
        };
        let html = render(&v).unwrap();
        assert!(!html.contains("<img src=x") && html.contains("&lt;img src=x"), "label escaped");
        assert!(!html.contains("<b>w</b>") && html.contains("&lt;b&gt;w&lt;&#x2F;b&gt;"), "workload escaped");
        assert!(html.contains("step_change") && html.contains("latency &lt;up&gt;"), "findings shown, escaped");
        assert!(html.contains("<svg") && html.contains("latency_ms distribution (4 samples)"), "histogram chart");
        assert!(!html.contains("Cluster health"), "no cluster section for a plain run");

        let mut v = v;
        v.summary.cluster = Some(trackiq_schemas::ClusterHealth {
            world_size: 2,
            steps: 3,
            samples_per_sec: 120.0,
            comm_overhead_pct: 40.0,
            steps_per_column: 1,
            allreduce_ms: vec![vec![Some(1.0), Some(1.2), None], vec![Some(1.1), Some(9.0), Some(1.0)]],
            loss: vec![0.5, 0.3, 0.2],
            faults: vec![trackiq_schemas::FaultOutcome { kind: "kill_rank".into(), rank: 1, step: 2, injected_at: 1, detector: None, detected_at: None, latency_ms: None }],
            detections: vec![],
            false_alarms: 0,
        });
        let html = render(&v).unwrap();
        assert!(html.contains("Cluster health") && html.contains("kill_rank") && html.contains("missed"), "faults table, a missed one said so");
        assert!(html.contains("all-reduce time per rank and step (2 ranks)") && html.contains("loss curve"), "heatmap and loss charts");
        assert_eq!(html.matches("<svg").count(), 3);
    }
}

//! HTML report per run, written to `<data>/reports/<run_id>.html` (its verdict beside it as
//! `<run_id>.json`): summary cards, identity
//! tables, the verdict, one section per metric family (with interpretation notes and
//! distribution charts), and cluster health with its fault timeline. [`compare`] renders a
//! two-run comparison in the same style. Every user-supplied string is escaped by tera's
//! HTML autoescaping; charts are SVG from plotters, which escapes the text it draws.

pub mod cards;
pub mod chart;
pub mod compare;
pub mod compare_data;
pub mod flame;
#[cfg(test)]
mod samples;
pub mod sections;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tera::{Context, Tera};
use tracing::{info, warn};
use trackiq_infra::DataStore;
use trackiq_infra::runtime::{Effects, Input, Stage, StageError};
use trackiq_schemas::{AnyEvent, ClusterHealth, FaultOutcome, RunSummary, Topics, Verdict};

use crate::error::SinkError;
use sections::{Family, Figures, family_of};

/// Report sink settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Consumer group of the report sink.
    pub group: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            group: "trackiq-report".into(),
        }
    }
}

static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    // The style is one template both reports include, so they look alike.
    t.add_raw_templates([
        (
            "report_style.html",
            include_str!("../../templates/report_style.html"),
        ),
        ("report_body.html", include_str!("../../templates/report_body.html")),
        ("report.html", include_str!("../../templates/report.html")),
        ("compare_body.html", include_str!("../../templates/compare_body.html")),
        ("compare.html", include_str!("../../templates/compare.html")),
    ])
    .expect("report templates parse");
    t
});

/// Object name of a run's report inside the data store.
pub fn report_path(run_id: &str) -> String {
    format!("reports/{run_id}.html")
}

/// Object name of a run's verdict as JSON (the report's input; the dashboard's run page
/// renders from it and offers it as the run's JSON export).
pub fn verdict_path(run_id: &str) -> String {
    format!("reports/{run_id}.json")
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
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Rows of a metadata table: (field, value); empty values are left out.
fn table(title: &str, rows: Vec<(&str, Option<String>)>) -> serde_json::Value {
    let rows: Vec<_> = rows
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| [k.to_string(), v]))
        .collect();
    serde_json::json!({"title": title, "rows": rows})
}

/// GPU names with runs of the same model counted: `4 × H100, 1 × L4`.
fn gpu_list(gpus: &[String]) -> String {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for g in gpus {
        match groups.last_mut() {
            Some((name, n)) if *name == g.as_str() => *n += 1,
            _ => groups.push((g, 1)),
        }
    }
    groups
        .iter()
        .map(|(g, n)| {
            if *n > 1 {
                format!("{n} × {g}")
            } else {
                g.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The run's identity as tables: run, platform, workload, version, labels.
fn metadata(s: &RunSummary) -> Vec<serde_json::Value> {
    let (r, p, w, ver) = (&s.run, &s.run.platform, &s.run.workload, &s.run.version);
    let int = |x: Option<i64>| x.map(|x| x.to_string());
    let mut out = vec![
        table(
            "Run",
            vec![
                ("run id", Some(r.run_id.clone())),
                ("series", Some(r.series_id.clone())),
                ("tool", Some(format!("{} {}", r.tool, r.tool_version))),
                ("started", Some(time_us(r.timestamp))),
                ("ended", Some(time_us(s.ended_at))),
                ("status", Some(s.status.as_str().into())),
                ("error", s.error.clone()),
            ],
        ),
        table(
            "Platform",
            vec![
                ("hardware", Some(p.hardware_name.clone())),
                ("CPU", Some(p.cpu.clone())),
                ("GPUs", Some(gpu_list(&p.gpus))),
                ("OS", Some(p.os.clone())),
                ("kernel", p.kernel.clone()),
                ("driver", p.driver.clone()),
                (
                    "framework",
                    p.framework.as_ref().map(|f| {
                        format!("{f} {}", p.framework_version.as_deref().unwrap_or(""))
                            .trim_end()
                            .to_string()
                    }),
                ),
            ],
        ),
        table(
            "Workload",
            vec![
                ("name", Some(w.name.clone())),
                ("type", Some(w.kind.clone())),
                ("batch size", int(w.batch_size)),
                ("precision", w.precision.clone()),
                ("sequence length", int(w.sequence_length)),
                ("backend", w.backend.clone()),
                ("steps", int(w.steps)),
            ],
        ),
        table(
            "Version",
            vec![
                ("version tag", ver.version_tag.clone()),
                ("git commit", ver.git_commit.clone()),
                ("environment hash", Some(ver.env_hash.clone())),
                ("run group", ver.run_group.clone()),
            ],
        ),
    ];
    if !r.labels.is_empty() {
        out.push(table(
            "Labels",
            r.labels
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.clone())))
                .collect(),
        ));
    }
    out
}

fn change_of(v: &Verdict, metric: &str) -> (String, &'static str) {
    match v.metrics.iter().find(|m| m.metric == metric) {
        Some(m) => (
            m.change_pct
                .map(|c| format!("{c:+.1} %"))
                .unwrap_or_else(|| "—".into()),
            m.severity.as_str(),
        ),
        None => ("—".into(), ""),
    }
}

/// The derived figures of a family, with their change vs baseline.
fn derived_rows(v: &Verdict, fam: Family) -> Vec<serde_json::Value> {
    v.summary
        .derived
        .iter()
        .filter(|d| family_of(&d.name, &d.unit) == fam)
        .map(|d| {
            let (change, severity) = change_of(v, &d.name);
            serde_json::json!({"name": d.name, "value": cards::with_unit(d.value, &d.unit), "change": change, "severity": severity,
                "about": trackiq_schemas::catalog::lookup(&d.name).map(|d| d.about).unwrap_or("")})
        })
        .collect()
}

/// The sections by metric family, each with its metrics, derived figures, notes and charts.
fn sections(v: &Verdict) -> Vec<serde_json::Value> {
    let s = &v.summary;
    let figures = Figures::of(s);
    let mut out = Vec::new();
    for fam in Family::ALL {
        let metrics: Vec<_> = s
            .metrics
            .iter()
            .filter(|m| family_of(&m.metric, &m.unit) == fam)
            .collect();
        let derived = derived_rows(v, fam);
        if metrics.is_empty() && derived.is_empty() {
            continue;
        }
        let rows: Vec<_> = metrics
            .iter()
            .map(|m| {
                // Percentiles from a quantile sketch say so: "≈12.3 (±1 %)".
                let pct = |v: f64| match m.percentile_error {
                    Some(e) => format!("≈{} (±{} %)", fmt_num(v), fmt_num(e * 100.0)),
                    None => fmt_num(v),
                };
                let (change, severity) = change_of(v, &m.metric);
                serde_json::json!({
                    "metric": m.metric, "unit": m.unit, "count": m.count, "mean": fmt_num(m.mean), "stdev": opt(m.stdev),
                    "min": fmt_num(m.min), "p50": pct(m.p50), "p90": pct(m.p90), "p95": pct(m.p95),
                    "p99": pct(m.p99), "max": fmt_num(m.max), "change": change, "severity": severity,
                    "about": trackiq_schemas::catalog::lookup(&m.metric).map(|d| d.about).unwrap_or(""),
                })
            })
            .collect();
        let mut charts = Vec::new();
        for m in &metrics {
            let Some(h) = &m.histogram else { continue };
            if !trackiq_schemas::metrics::is_duration(&m.metric) {
                continue;
            }
            // plotters escapes the text it writes, so a user's metric name is safe in the title.
            let title = format!("{} distribution ({} samples)", m.metric, m.count);
            match chart::histogram_svg(&title, &m.unit, h) {
                Ok(svg) => charts.push(serde_json::json!({"title": title, "svg": svg})),
                Err(e) => warn!(metric = %m.metric, error = %e, "could not draw histogram"),
            }
        }
        out.push(serde_json::json!({
            "title": fam.title(), "notes": sections::notes(fam, &figures), "metrics": rows, "derived": derived, "charts": charts,
        }));
    }
    out
}

/// The cluster-health section: figures, faults table, detections and charts.
fn cluster(v: &Verdict, c: &ClusterHealth) -> serde_json::Value {
    let mut charts = Vec::new();
    let mut add = |title: String, svg: Result<String, String>| match svg {
        Ok(svg) => charts.push(serde_json::json!({"title": title, "svg": svg})),
        Err(e) => warn!(chart = %title, error = %e, "could not draw a cluster chart"),
    };
    add(
        format!("all-reduce time per rank and step ({} ranks)", c.world_size),
        chart::heatmap_svg(
            "all-reduce time per rank and step",
            "ms",
            &c.allreduce_ms,
            c.steps_per_column.max(1) as usize,
        ),
    );
    let cells: Vec<f64> = c.allreduce_ms.iter().flatten().flatten().copied().collect();
    if let Some(h) = chart::histogram_of(&cells, ALLREDUCE_BINS.min(cells.len())) {
        // Cells of a downsampled matrix are means of several steps: the title says so.
        let what = if c.steps_per_column > 1 {
            format!("means of {} steps", c.steps_per_column)
        } else {
            "one per rank and step".into()
        };
        add(
            format!(
                "all-reduce time distribution ({} cells, {what})",
                cells.len()
            ),
            chart::histogram_svg("all-reduce time", "ms", &h),
        );
    }
    add(
        "loss curve".into(),
        chart::line_svg("training loss (mean over ranks)", "loss", &c.loss),
    );
    // A fault's detection is the one of the same detector raised at the same instant.
    let matched = |f: &FaultOutcome| {
        c.detections.iter().find(|d| {
            Some(&d.detector) == f.detector.as_ref() && Some(d.detected_at) == f.detected_at
        })
    };
    let marks: Vec<_> = c
        .faults
        .iter()
        .map(|f| chart::FaultMark {
            rank: f.rank,
            step: f.step,
            detected_step: matched(f).and_then(|d| d.step),
            latency_ms: f.latency_ms,
        })
        .collect();
    // The other detections split as the health summary counts them (processors' health
    // `match_faults`): after the first fault a knock-on effect, before it a false alarm.
    let first_fault = c.faults.iter().map(|f| f.injected_at).min();
    let (mut knock_on, mut alarms) = (Vec::new(), Vec::new());
    for d in c.detections.iter().filter(|d| {
        !c.faults
            .iter()
            .any(|f| matched(f).is_some_and(|m| std::ptr::eq(m, *d)))
    }) {
        let (Some(rank), Some(step)) = (d.rank, d.step) else {
            continue;
        };
        if first_fault.is_some_and(|t| d.event_ts >= t) {
            knock_on.push((rank, step))
        } else {
            alarms.push((rank, step))
        }
    }
    if !marks.is_empty() || !alarms.is_empty() {
        // The axis spans every step that ran, not only those every rank completed.
        let ran = c.allreduce_ms.iter().map(Vec::len).max().unwrap_or(0) as i64
            * i64::from(c.steps_per_column.max(1));
        add(
            "fault timeline".into(),
            chart::fault_timeline_svg(c.world_size, c.steps.max(ran), &marks, &knock_on, &alarms),
        );
    }
    let faults: Vec<_> = c
        .faults
        .iter()
        .map(|f| {
            serde_json::json!({
                "kind": f.kind, "rank": f.rank, "step": f.step, "injected": time_us(f.injected_at),
                "detector": f.detector.clone().unwrap_or_else(|| "—".into()),
                "latency": f.latency_ms.map_or_else(|| "missed".to_string(), |l| format!("{l:.0} ms")), "missed": f.latency_ms.is_none(),
            })
        })
        .collect();
    let detections: Vec<_> = c.detections.iter().map(|d| serde_json::json!({"detector": d.detector, "at": time_us(d.detected_at), "message": d.message})).collect();
    let missed = c.faults.iter().filter(|f| f.latency_ms.is_none()).count();
    serde_json::json!({
        "world": c.world_size, "steps": c.steps, "samples_per_sec": fmt_num(c.samples_per_sec),
        "comm_overhead_pct": fmt_num(c.comm_overhead_pct), "false_alarms": c.false_alarms, "missed": missed,
        "faults": faults, "detections": detections, "charts": charts, "figures": derived_rows(v, Family::Cluster),
    })
}

/// Bins of the all-reduce time histogram (fewer when there are fewer cells).
const ALLREDUCE_BINS: usize = 24;

/// Renders the HTML report of a verdict.
pub fn render(v: &Verdict) -> Result<String, SinkError> {
    render_with_profile(v, None)
}

/// Renders the HTML report of a verdict with the run's call-stack profile (flame graphs
/// embedded, see [`flame::section`]).
pub fn render_with_profile(v: &Verdict, profile: Option<&flame::ProfileSection>) -> Result<String, SinkError> {
    let mut ctx = context(v);
    ctx.insert("profile", &profile);
    TEMPLATES.render("report.html", &ctx).map_err(|e| SinkError::Template(format!("{e:?}")))
}

/// Writes run `v`'s report (with its profile where `bench cmd --profile` stored one) to the
/// data store. The report stage writes it when the verdict arrives; `bench cmd --profile`
/// again once the profile is stored, if the verdict came first.
pub async fn write_report(store: &DataStore, v: Verdict) -> Result<String, SinkError> {
    let profile = flame::section(store, &v.run_id, true).await?;
    let path = report_path(&v.run_id);
    let html = tokio::task::spawn_blocking(move || render_with_profile(&v, profile.as_ref()))
        .await
        .map_err(|e| SinkError::Template(format!("rendering the report panicked: {e}")))??;
    store.put(&path, html.into_bytes()).await?;
    Ok(path)
}

/// The report's content without the document around it (and without its style, which
/// [`STYLE`] holds), for a page that frames it: the dashboard's run page.
pub fn render_body(v: &Verdict) -> Result<String, SinkError> {
    TEMPLATES.render("report_body.html", &context(v)).map_err(|e| SinkError::Template(format!("{e:?}")))
}

/// The `<style>` element of the reports.
pub const STYLE: &str = include_str!("../../templates/report_style.html");

fn context(v: &Verdict) -> Context {
    let s = &v.summary;
    let mut ctx = Context::new();
    ctx.insert("run", &s.run);
    ctx.insert("severity", v.severity.as_str());
    ctx.insert("status", s.status.as_str());
    ctx.insert("error", &s.error);
    ctx.insert("generated", &time_us(trackiq_schemas::now_us()));
    ctx.insert("cards", &cards::cards(v));
    ctx.insert("meta", &metadata(s));
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
    ctx.insert("sections", &sections(v));
    if let Some(c) = &s.cluster {
        ctx.insert("cluster", &cluster(v, c));
    }
    ctx
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
            return Err(StageError::Permanent(format!(
                "unexpected {} on {}: the report sink reads verdicts",
                input.event.name(),
                input.position.topic
            )));
        };
        let json = serde_json::to_vec_pretty(&v).map_err(|e| StageError::Permanent(format!("the verdict as JSON: {e}")))?;
        self.store.put(&verdict_path(&v.run_id), json).await.map_err(|e| StageError::Transient(e.to_string()))?;
        let path = write_report(&self.store, *v).await.map_err(|e| match e {
            SinkError::Template(_) => StageError::Permanent(e.to_string()),
            _ => StageError::Transient(e.to_string()),
        })?;
        info!(report = %format!("{}/{path}", self.store), "wrote report");
        Ok(Effects::done())
    }
}

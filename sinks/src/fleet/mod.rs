//! Fleet report over a period of the Parquet history: headline counts, regressions and
//! improvements, open alerts, trends with change points, top movers and history charts.
//!
//! Pure: the caller queries the tables into a [`FleetReport`]; this module derives the
//! sections and renders them. HTML (`fleet.html`) is escaped by tera's autoescaping and its
//! charts carry no user strings, so they go in with `| safe`. tera does not escape Markdown
//! (`fleet.md`), so every user string passes [`escape_md`](crate::notify::message::escape_md) before it reaches that template.

pub mod chart;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tera::{Context, Tera};

pub use chart::{HistoryPoint, SeriesHistory, history_svg};

use crate::error::SinkError;
use crate::report::fmt_num;

/// Verdict severities in the order the headline shows them.
pub const SEVERITIES: [&str; 5] = ["pass", "warn", "block", "improved", "insufficient_data"];

static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_templates([("fleet.html", include_str!("../../templates/fleet.html")), ("fleet.md", include_str!("../../templates/fleet.md"))])
        .expect("fleet templates parse");
    t
});

fn nan() -> f64 {
    f64::NAN
}

/// One judged metric of one run: a `verdicts` row with kind = 'metric', one per (run, metric).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRow {
    pub run_id: String,
    #[serde(default)]
    pub series_id: String,
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub hardware: String,
    pub metric: String,
    /// Start of the run, µs since the epoch (UTC).
    #[serde(default)]
    pub started_at: i64,
    /// The judged value; NaN where the history holds none (the query gives null).
    #[serde(default = "nan")]
    pub value: f64,
    pub baseline: Option<f64>,
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    pub change_pct: Option<f64>,
    pub severity: String,
}

/// The latest state of a firing alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub alert_id: String,
    pub severity: String,
    pub series_id: String,
    pub subject: String,
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub hardware: String,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub change_pct: Option<f64>,
    /// When it fired, µs since the epoch (UTC).
    pub fired_at: i64,
    pub acked_by: Option<String>,
    pub silenced_by: Option<String>,
}

/// The latest `trends` row of a series × metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendRow {
    pub series_id: String,
    pub metric: String,
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub hardware: String,
    /// Runs the trend saw.
    pub points: i64,
    pub class: String,
    pub slope: f64,
    pub total_change_pct: f64,
    pub change_points: i64,
    /// The first run after the latest change point.
    pub last_change_run_id: Option<String>,
    pub last_change_pct: Option<f64>,
}

/// Everything a fleet report shows, as read from the history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FleetReport {
    /// When the report was made and where its period starts, µs since the epoch (UTC).
    pub generated_at: i64,
    pub since: i64,
    pub days: u32,
    /// The workloads the report is limited to (empty: all).
    pub workloads: Vec<String>,
    /// Runs started in the period.
    pub runs: u64,
    /// Judged runs per run severity.
    pub run_verdicts: BTreeMap<String, u64>,
    /// Metric verdicts of the period's runs, deduplicated.
    pub verdicts: Vec<VerdictRow>,
    pub alerts: Vec<AlertRow>,
    pub trends: Vec<TrendRow>,
    /// Rows of the top-movers table.
    pub top_movers: usize,
    /// Charts of the HTML page.
    pub max_charts: usize,
}

fn abs_change(r: &VerdictRow) -> f64 {
    r.change_pct.filter(|c| c.is_finite()).map_or(0.0, f64::abs)
}

impl FleetReport {
    /// Metric verdicts that warn, block or improved, newest first.
    pub fn changes(&self) -> Vec<&VerdictRow> {
        let mut v: Vec<_> = self.verdicts.iter().filter(|r| matches!(r.severity.as_str(), "warn" | "block" | "improved")).collect();
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| (&a.run_id, &a.metric).cmp(&(&b.run_id, &b.metric))));
        v
    }

    /// Per series × metric the verdict with the largest |change|, largest first.
    pub fn movers(&self) -> Vec<&VerdictRow> {
        let mut best: BTreeMap<(&str, &str), &VerdictRow> = BTreeMap::new();
        for r in self.verdicts.iter().filter(|r| r.change_pct.is_some_and(f64::is_finite)) {
            let e = best.entry((&r.series_id, &r.metric)).or_insert(r);
            if abs_change(r) > abs_change(e) {
                *e = r;
            }
        }
        let mut v: Vec<_> = best.into_values().collect();
        v.sort_by(|a, b| abs_change(b).total_cmp(&abs_change(a)));
        v.truncate(self.top_movers);
        v
    }

    /// Histories to chart: the series × metrics with most flagged verdicts, then most runs.
    pub fn histories(&self) -> Vec<SeriesHistory> {
        let mut groups: BTreeMap<(&str, &str), Vec<&VerdictRow>> = BTreeMap::new();
        for r in self.verdicts.iter().filter(|r| r.value.is_finite()) {
            groups.entry((&r.series_id, &r.metric)).or_default().push(r);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(k, rows)| (Reverse(rows.iter().filter(|r| r.severity != "pass").count()), Reverse(rows.len()), *k));
        groups.truncate(self.max_charts);
        groups
            .into_iter()
            .map(|((series, metric), mut rows)| {
                rows.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
                let last = rows[rows.len() - 1];
                let change_runs = self.trends.iter().filter(|t| t.series_id == series && t.metric == metric).filter_map(|t| t.last_change_run_id.clone()).collect();
                let points = rows
                    .iter()
                    .map(|r| HistoryPoint {
                        run_id: r.run_id.clone(), started_at: r.started_at, value: r.value, baseline: r.baseline,
                        lower_limit: r.lower_limit, upper_limit: r.upper_limit, severity: r.severity.clone(),
                    })
                    .collect();
                SeriesHistory { series_id: series.into(), metric: metric.into(), workload: last.workload.clone(), hardware: last.hardware.clone(), points, change_runs }
            })
            .collect()
    }
}

fn when(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

fn opt(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(fmt_num).unwrap_or_else(|| "—".into())
}

fn pct(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|c| format!("{c:+.2} %")).unwrap_or_else(|| "—".into())
}

fn verdict_json(r: &VerdictRow, esc: &dyn Fn(&str) -> String) -> Value {
    json!({
        "when": when(r.started_at), "workload": esc(&r.workload), "hardware": esc(&r.hardware), "series": esc(&r.series_id),
        "metric": esc(&r.metric), "value": opt(Some(r.value)), "baseline": opt(r.baseline), "change": pct(r.change_pct),
        "severity": esc(&r.severity), "run": esc(&r.run_id),
    })
}

/// The template context; `esc` is applied to every string that came from the history.
fn context(r: &FleetReport, esc: &dyn Fn(&str) -> String) -> Context {
    let mut ctx = Context::new();
    ctx.insert("days", &r.days);
    ctx.insert("since", &when(r.since));
    ctx.insert("generated", &when(r.generated_at));
    ctx.insert("workloads", &r.workloads.iter().map(|w| esc(w)).collect::<Vec<_>>().join(", "));
    ctx.insert("runs", &r.runs);
    // The five known severities always, in order; anything else the history holds after them.
    let mut counts: Vec<Value> = SEVERITIES.iter().map(|s| json!({"severity": s, "n": r.run_verdicts.get(*s).copied().unwrap_or(0)})).collect();
    counts.extend(r.run_verdicts.iter().filter(|(s, _)| !SEVERITIES.contains(&s.as_str())).map(|(s, n)| json!({"severity": esc(s), "n": n})));
    ctx.insert("judged", &r.run_verdicts.values().sum::<u64>());
    ctx.insert("counts", &counts);
    ctx.insert("changes", &r.changes().into_iter().map(|v| verdict_json(v, esc)).collect::<Vec<_>>());
    ctx.insert("movers", &r.movers().into_iter().map(|v| verdict_json(v, esc)).collect::<Vec<_>>());
    let alerts: Vec<Value> = r
        .alerts
        .iter()
        .map(|a| {
            json!({
                "id": esc(&a.alert_id), "severity": esc(&a.severity), "series": esc(&a.series_id), "subject": esc(&a.subject),
                "workload": esc(&a.workload), "hardware": esc(&a.hardware), "value": opt(a.value), "baseline": opt(a.baseline),
                "change": pct(a.change_pct), "since": when(a.fired_at),
                "acked_by": a.acked_by.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                "silenced_by": a.silenced_by.as_deref().map(esc).unwrap_or_else(|| "—".into()),
            })
        })
        .collect();
    ctx.insert("alerts", &alerts);
    let trends: Vec<Value> = r
        .trends
        .iter()
        .map(|t| {
            json!({
                "series": esc(&t.series_id), "workload": esc(&t.workload), "hardware": esc(&t.hardware), "metric": esc(&t.metric),
                "points": t.points, "class": esc(&t.class), "slope": opt(Some(t.slope)), "total": pct(Some(t.total_change_pct)),
                "change_points": t.change_points, "last_change": t.last_change_run_id.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                "last_change_pct": pct(t.last_change_pct),
            })
        })
        .collect();
    ctx.insert("trends", &trends);
    ctx
}

fn render(name: &str, ctx: &Context) -> Result<String, SinkError> {
    TEMPLATES.render(name, ctx).map_err(|e| SinkError::Template(format!("{name}: {e:?}")))
}

/// The report as GitHub-flavoured Markdown (tables; charts only in the HTML format).
pub fn render_markdown(r: &FleetReport) -> Result<String, SinkError> {
    let mut ctx = context(r, &crate::notify::message::escape_md);
    ctx.insert("chart_count", &r.histories().len());
    render("fleet.md", &ctx)
}

/// The report as a self-contained HTML page: inline CSS, inline SVG charts, no scripts.
pub fn render_html(r: &FleetReport) -> Result<String, SinkError> {
    let mut ctx = context(r, &|s: &str| s.to_string());
    let charts = r
        .histories()
        .iter()
        .map(|h| {
            Ok(json!({
                "series": h.series_id, "metric": h.metric, "workload": h.workload, "hardware": h.hardware,
                "runs": h.points.len(), "changes": h.change_runs.len(), "svg": history_svg(h)?,
            }))
        })
        .collect::<Result<Vec<_>, SinkError>>()?;
    ctx.insert("charts", &charts);
    render("fleet.html", &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>a|b";

    fn verdict(run: &str, t: i64, value: f64, severity: &str) -> VerdictRow {
        VerdictRow {
            run_id: run.into(), series_id: "s1".into(), workload: HOSTILE.into(), hardware: "box".into(), metric: "latency_ms".into(),
            started_at: 1_700_000_000_000_000 + t * 3_600_000_000, value, baseline: Some(10.0), lower_limit: Some(9.5), upper_limit: Some(10.5),
            change_pct: Some((value - 10.0) * 10.0), severity: severity.into(),
        }
    }

    fn report() -> FleetReport {
        let mut verdicts: Vec<_> = (0..6).map(|i| verdict(&format!("r{i}"), i, 10.0 + i as f64 * 0.01, "pass")).collect();
        verdicts.push(verdict("r6", 6, 12.0, "block"));
        // A second series without limits: its baseline is a line, not a band.
        verdicts.push(VerdictRow { series_id: "s2".into(), workload: "plain".into(), lower_limit: None, upper_limit: None, ..verdict("r7", 7, 8.0, "improved") });
        FleetReport {
            generated_at: 1_700_100_000_000_000, since: 1_697_500_000_000_000, days: 30, workloads: vec![], runs: 8,
            run_verdicts: [("pass".to_string(), 6), ("block".to_string(), 1), ("improved".to_string(), 1)].into(),
            verdicts,
            alerts: vec![AlertRow {
                alert_id: "al1".into(), severity: "block".into(), series_id: "s1".into(), subject: "latency_ms".into(), workload: HOSTILE.into(),
                hardware: "box".into(), value: Some(12.0), baseline: Some(10.0), change_pct: Some(20.0), fired_at: 1_700_021_600_000_000,
                acked_by: None, silenced_by: Some("ops|team".into()),
            }],
            trends: vec![TrendRow {
                series_id: "s1".into(), metric: "latency_ms".into(), workload: HOSTILE.into(), hardware: "box".into(), points: 7, class: "degrading".into(),
                slope: 0.2, total_change_pct: 20.0, change_points: 1, last_change_run_id: Some("r6".into()), last_change_pct: Some(19.5),
            }],
            top_movers: 10,
            max_charts: 12,
        }
    }

    #[test]
    fn sections_derive_changes_movers_and_histories() {
        let r = report();
        let changes: Vec<_> = r.changes().iter().map(|v| v.run_id.as_str()).collect();
        assert_eq!(changes, ["r7", "r6"], "flagged verdicts only, newest first");
        let movers: Vec<_> = r.movers().iter().map(|v| (v.series_id.as_str(), v.run_id.as_str())).collect();
        assert_eq!(movers, [("s1", "r6"), ("s2", "r7")], "largest |change| per series, largest first");
        let h = r.histories();
        assert_eq!((h.len(), h[0].points.len(), h[0].change_runs.clone()), (2, 7, vec!["r6".to_string()]));
        assert_eq!(FleetReport { max_charts: 1, ..r }.histories().len(), 1, "--max-charts caps the charts");
    }

    #[test]
    fn html_escapes_user_strings_and_draws_one_chart_per_history() {
        let html = render_html(&report()).unwrap();
        assert!(!html.contains("<script>"), "no live script tag");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;a|b"), "workload escaped");
        assert!(html.contains("ops|team") && html.contains("+20.00 %"), "alert row");
        assert_eq!(html.matches("<svg").count(), 2, "one chart per series × metric");
        let hex = |c: plotters::style::RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        assert_eq!(html.matches(&hex(chart::BAND)).count(), 7, "a band step per run with limits");
        assert!(html.contains(&hex(chart::severity_color("block"))) && html.contains(&hex(chart::severity_color("improved"))), "verdict marks");
        assert!(html.contains("stroke=\"#6A1B9A\""), "the change point is drawn");
        assert!(!html.contains("<link") && !html.contains("<script") && !html.contains("src=\"http"), "self-contained");
    }

    #[test]
    fn markdown_escapes_pipes_and_points_to_html_for_charts() {
        let md = render_markdown(&report()).unwrap();
        assert!(md.contains("| &lt;script&gt;alert(1)&lt;/script&gt;a\\|b | box | s1 | latency_ms | 12 | 10 | +20.00 % | block | r6 |"), "{md}");
        assert!(md.contains("| ops\\|team |"), "{md}");
        assert!(md.contains("| 8 | 8 | 6 | 0 | 1 | 1 | 0 |"), "headline counts in order: {md}");
        assert!(md.contains("| s1 | &lt;script&gt;alert(1)&lt;/script&gt;a\\|b | box | latency_ms | 7 | degrading | 0.2 | +20.00 % | 1 | r6 | +19.50 % |"), "{md}");
        assert!(!md.contains("<svg") && md.contains("history charts (2 series × metrics:") && md.contains("--format html"), "{md}");
        // Every table row has the same number of unescaped pipes as its header.
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let cells = |l: &str| l.replace("\\|", "").matches('|').count();
            let lines: Vec<_> = table.lines().collect();
            assert!(lines.iter().all(|l| cells(l) == cells(lines[0])), "{table}");
        }
    }

    #[test]
    fn an_empty_period_says_so() {
        let r = FleetReport { days: 7, top_movers: 10, max_charts: 12, ..Default::default() };
        let md = render_markdown(&r).unwrap();
        assert!(md.contains("No runs in this period.") && md.contains("No alerts firing.") && md.contains("No judged values to chart"), "{md}");
        let html = render_html(&r).unwrap();
        assert!(html.contains("No runs in this period.") && !html.contains("<svg"), "{html}");
    }
}

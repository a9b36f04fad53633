//! The data behind the interactive charts (`assets/charts.js`, drawn with uPlot): JSON a chart
//! fetches from this server. A page keeps its SVG chart as the fallback; the script replaces
//! it with the interactive one when it loads.
//!
//! - `GET /charts/series.json?metric=M&series=A&series=B`: each series' judged value per run
//!   (x: the run's start), with the baseline's limits, and per point the run, version, commit
//!   and verdict (the series page; more than one series overlays them).
//! - `GET /charts/samples.json?metric=M&run=A&run=B`: each run's samples of one metric over the
//!   seconds since its first (the run page; the compare page overlays its runs).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trackiq_infra::tables::{Row, query_rows};

use super::pages::{Shared, lit, text};

/// Series (or runs) one chart overlays at most.
pub const MAX_OVERLAY: usize = 8;
/// Points drawn per run of a samples chart at most (every n-th sample beyond it; the CSV
/// export has them all).
pub const MAX_SAMPLE_POINTS: usize = 5_000;

/// A chart: lines sharing an x axis, each point tied to a run.
#[derive(Debug, Serialize, PartialEq)]
pub struct Chart {
    /// The x axis' title; `x_time`: x is seconds since the epoch (a date axis), else plain seconds.
    pub x_label: String,
    pub x_time: bool,
    /// The metric (the y axis' title, with `unit`).
    pub metric: String,
    pub unit: String,
    pub lines: Vec<Line>,
    /// The runs the points refer to (by index).
    pub runs: Vec<RunInfo>,
}

/// One line of a chart: parallel arrays, `run[i]` indexing [`Chart::runs`].
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct Line {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<Option<f64>>,
    pub run: Vec<usize>,
    /// The baseline's limits at each point (series charts), drawn as a band.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lower: Vec<Option<f64>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upper: Vec<Option<f64>>,
}

/// What a tooltip says about a point's run.
#[derive(Debug, Serialize, PartialEq, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub version: String,
    pub commit: String,
    pub verdict: String,
}

/// The query's values of `key`, and its `metric`; a bad request names what is wrong.
fn params(query: Option<String>, key: &str) -> Result<(String, Vec<String>), Response> {
    let (mut metric, mut ids) = (String::new(), Vec::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "metric" => metric = v.into_owned(),
            k if k == key => ids.push(v.into_owned()),
            other => return Err(bad(format!("unknown query parameter `{other}`; known: metric, {key}"))),
        }
    }
    if metric.is_empty() || ids.is_empty() {
        return Err(bad(format!("give a metric and at least one {key}: ?metric=latency_ms&{key}=ID")));
    }
    if ids.len() > MAX_OVERLAY {
        return Err(bad(format!("{} {key}s given; a chart overlays at most {MAX_OVERLAY}", ids.len())));
    }
    Ok((metric, ids))
}

fn bad(error: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

fn answer(chart: Result<Chart, trackiq_infra::InfraError>) -> Response {
    match chart {
        Ok(c) => axum::Json(c).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({ "error": e.to_string() }))).into_response(),
    }
}

/// The unit the history records for `metric` (the catalog's where the history has none).
async fn unit_of(d: &Shared, metric: &str) -> Result<String, trackiq_infra::InfraError> {
    let rows = query_rows(&d.store, &format!("SELECT max(unit) AS unit FROM summaries WHERE metric = {}", lit(metric))).await?;
    let recorded = rows.first().map(|r| text(r, "unit")).unwrap_or_default();
    Ok(if recorded.is_empty() { trackiq_schemas::catalog::lookup(metric).map(|m| m.unit.to_string()).unwrap_or_default() } else { recorded })
}

/// Interns runs so each is sent once.
#[derive(Default)]
struct Runs {
    index: BTreeMap<String, usize>,
    list: Vec<RunInfo>,
}

impl Runs {
    fn add(&mut self, r: &Row) -> usize {
        let id = text(r, "run_id");
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        self.list.push(RunInfo { run_id: id.clone(), version: text(r, "version_tag"), commit: text(r, "git_commit").chars().take(12).collect(), verdict: text(r, "severity") });
        self.index.insert(id, self.list.len() - 1);
        self.list.len() - 1
    }
}

fn num(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(|v| v.as_f64()).filter(|v| v.is_finite())
}

/// `GET /charts/series.json`.
pub async fn series(State(d): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (metric, ids) = match params(query, "series") {
        Ok(p) => p,
        Err(r) => return r,
    };
    answer(series_chart(&d, &metric, &ids).await)
}

async fn series_chart(d: &Shared, metric: &str, ids: &[String]) -> Result<Chart, trackiq_infra::InfraError> {
    let mut runs = Runs::default();
    let mut lines = Vec::new();
    for id in ids {
        let mut rows = query_rows(&d.store, &super::series::history_sql(id, metric)).await?;
        rows.reverse();
        let label = rows.first().map_or_else(|| id.clone(), |r| format!("{} on {}", text(r, "workload"), text(r, "hardware_name")));
        let mut line = Line { label, ..Line::default() };
        for r in &rows {
            line.x.push(r.get("started_at").and_then(|v| v.as_i64()).unwrap_or(0) as f64 / 1e6);
            line.y.push(num(r, "value"));
            line.lower.push(num(r, "lower_limit"));
            line.upper.push(num(r, "upper_limit"));
            line.run.push(runs.add(r));
        }
        lines.push(line);
    }
    disambiguate(&mut lines, ids);
    Ok(Chart { x_label: "run started (UTC)".into(), x_time: true, metric: metric.to_string(), unit: unit_of(d, metric).await?, lines, runs: runs.list })
}

/// Lines with the same label (one workload on one machine type, two label sets) get their
/// id's first characters appended.
fn disambiguate(lines: &mut [Line], ids: &[String]) {
    let labels: Vec<String> = lines.iter().map(|l| l.label.clone()).collect();
    for (line, id) in lines.iter_mut().zip(ids) {
        if labels.iter().filter(|l| **l == line.label).count() > 1 {
            line.label = format!("{} ({})", line.label, id.chars().take(8).collect::<String>());
        }
    }
}

/// `GET /charts/samples.json`.
pub async fn samples(State(d): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (metric, ids) = match params(query, "run") {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(id) = ids.iter().find(|id| super::run::checked(id).is_err()) {
        return bad(format!("`{id}` is not a run id (letters, digits, dashes and underscores)"));
    }
    answer(samples_chart(&d, &metric, &ids).await)
}

async fn samples_chart(d: &Shared, metric: &str, ids: &[String]) -> Result<Chart, trackiq_infra::InfraError> {
    let mut runs = Runs::default();
    let mut lines = Vec::new();
    for id in ids {
        let about = format!(
            "SELECT s.run_id, s.workload, s.hardware_name, s.version_tag, s.git_commit, v.severity FROM (SELECT * FROM runs WHERE event = 'started' AND run_id = {id}) s \
             LEFT JOIN (SELECT run_id, first_value(run_severity ORDER BY evaluated_at DESC) AS severity FROM verdicts WHERE run_id = {id} GROUP BY run_id) v ON s.run_id = v.run_id",
            id = lit(id)
        );
        let Some(run) = query_rows(&d.store, &about).await?.into_iter().next() else { continue };
        // One scan: every n-th sample, n from the run's count, so at most MAX_SAMPLE_POINTS.
        let sql = format!(
            "SELECT t, value FROM (SELECT CAST(ts AS BIGINT) - min(CAST(ts AS BIGINT)) OVER () AS t, value, CAST(ROW_NUMBER() OVER (ORDER BY ts, batch_seq) AS BIGINT) - 1 AS i, \
             count(*) OVER () AS n FROM samples WHERE run_id = {} AND metric = {}) WHERE i % ((n + {max} - 1) / {max}) = 0 ORDER BY t",
            lit(id),
            lit(metric),
            max = MAX_SAMPLE_POINTS
        );
        let rows = query_rows(&d.store, &sql).await?;
        let r = runs.add(&run);
        // A run id's first characters are its time (UUID v7): the last ones tell runs apart.
        let short: String = id.chars().skip(id.chars().count().saturating_sub(8)).collect();
        let mut line = Line { label: format!("{} on {} · run …{short}", text(&run, "workload"), text(&run, "hardware_name")), ..Line::default() };
        for row in &rows {
            line.x.push(row.get("t").and_then(|v| v.as_i64()).unwrap_or(0) as f64 / 1e6);
            line.y.push(num(row, "value"));
            line.run.push(r);
        }
        lines.push(line);
    }
    Ok(Chart { x_label: "seconds since the run's first sample".into(), x_time: false, metric: metric.to_string(), unit: unit_of(d, metric).await?, lines, runs: runs.list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_and_named() {
        let err = |q: &str| params(Some(q.to_string()), "series").unwrap_err().status();
        assert_eq!(err("series=a"), StatusCode::BAD_REQUEST);
        assert_eq!(err("metric=m"), StatusCode::BAD_REQUEST);
        assert_eq!(err("metric=m&series=a&seris=b"), StatusCode::BAD_REQUEST);
        let many: String = (0..=MAX_OVERLAY).map(|i| format!("&series={i}")).collect();
        assert_eq!(err(&format!("metric=m{many}")), StatusCode::BAD_REQUEST);
        let (metric, ids) = params(Some("metric=latency_ms&series=a&series=b%20c".into()), "series").unwrap();
        assert_eq!((metric.as_str(), ids), ("latency_ms", vec!["a".to_string(), "b c".to_string()]));
    }

    #[test]
    fn lines_with_one_label_are_told_apart_by_id() {
        let line = |l: &str| Line { label: l.into(), ..Line::default() };
        let mut lines = vec![line("w on h"), line("w on h"), line("w on g")];
        disambiguate(&mut lines, &["0123456789".into(), "abcdefghij".into(), "zz".into()]);
        let labels: Vec<&str> = lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["w on h (01234567)", "w on h (abcdefgh)", "w on g"]);
    }
}

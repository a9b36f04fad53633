//! A run's page: the report's summary cards and sections as tabs (overview, verdict, one per
//! metric family, cluster health), rendered from the verdict the report sink keeps beside
//! the report, with the run's exports: the verdict as JSON and the raw samples as CSV.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tera::Context;
use trackiq_infra::tables::query_readonly;
use trackiq_schemas::Verdict;

use super::pages::{Shared, csv, message, render};
use crate::report::{STYLE, render_body, report_path, verdict_path};

/// Rows of the samples export at most (a run's samples; more are cut with a note).
pub const MAX_EXPORT_SAMPLES: usize = 1_000_000;

pub(super) fn checked(id: &str) -> Result<(), Response> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(message(StatusCode::BAD_REQUEST, "Not a run id", "A run id has letters, digits, dashes and underscores only."));
    }
    Ok(())
}

async fn verdict(d: &Shared, id: &str) -> Option<Verdict> {
    let bytes = d.store.get(&verdict_path(id)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Query of a run's page: the metric of its interactive samples chart.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunQuery {
    pub metric: String,
}

/// The metrics sampled by `runs` (sorted), and the one to chart: `wanted` if it is among them,
/// else `latency_ms`, else the first; `None` when they have no samples.
pub(super) async fn sampled_metrics(d: &Shared, runs: &[String], wanted: &str) -> Result<(Vec<String>, Option<String>), trackiq_infra::InfraError> {
    let list = runs.iter().map(|r| super::pages::lit(r)).collect::<Vec<_>>().join(", ");
    let rows = trackiq_infra::tables::query_rows(&d.store, &format!("SELECT DISTINCT metric FROM samples WHERE run_id IN ({list}) ORDER BY metric")).await?;
    let metrics: Vec<String> = rows.iter().map(|r| super::pages::text(r, "metric")).collect();
    let chosen = pick_metric(&metrics, wanted);
    Ok((metrics, chosen))
}

/// `wanted` if it is among `metrics`, else `latency_ms`, else the first.
fn pick_metric(metrics: &[String], wanted: &str) -> Option<String> {
    [wanted, "latency_ms"].into_iter().find(|m| metrics.iter().any(|x| x == m)).map(str::to_string).or_else(|| metrics.first().cloned())
}

/// The samples chart's data address for `runs` and `metric`.
pub(super) fn samples_chart_url(runs: &[String], metric: &str) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    u.append_pair("metric", metric);
    for r in runs.iter().take(super::charts::MAX_OVERLAY) {
        u.append_pair("run", r);
    }
    format!("/charts/samples.json?{}", u.finish())
}

/// `GET /runs/{id}`.
pub async fn page(State(d): State<Shared>, Path(id): Path<String>, Query(q): Query<RunQuery>) -> Response {
    if let Err(r) = checked(&id) {
        return r;
    }
    let Some(v) = verdict(&d, &id).await else {
        // Reports written before verdicts were kept beside them are served as they are.
        return match d.store.get(&report_path(&id)).await {
            Ok(bytes) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response(),
            Err(_) => message(StatusCode::NOT_FOUND, "No report for this run", &format!("Run {id} has no report: it is not in the history, or its verdict has not been made yet (the report is written with the verdict; see /runs).")),
        };
    };
    // The sampled metrics are in the run's summary (no query of the samples for the page).
    let mut metrics: Vec<String> = v.summary.metrics.iter().map(|m| m.metric.clone()).collect();
    metrics.sort();
    metrics.dedup();
    let body = match tokio::task::spawn_blocking(move || render_body(&v)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return message(StatusCode::INTERNAL_SERVER_ERROR, "The report could not be rendered", &e.to_string()),
        Err(e) => return message(StatusCode::INTERNAL_SERVER_ERROR, "The report could not be rendered", &e.to_string()),
    };
    let metric = pick_metric(&metrics, &q.metric);
    let runs = [id.clone()];
    let mut ctx = Context::new();
    ctx.insert("metrics", &metrics);
    if let Some(m) = &metric {
        ctx.insert("metric", m);
        ctx.insert("chart_data", &samples_chart_url(&runs, m));
    }
    ctx.insert("run_id", &id);
    ctx.insert("report", &body);
    ctx.insert("report_style", STYLE);
    ctx.insert("profile", &super::profile::section(&d.store, &id).await);
    render("dashboard/run.html", "runs", ctx)
}

/// `GET /runs/{id}/verdict.json`: the verdict with the run's summary, as the pipeline made it.
pub async fn verdict_json(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    if let Err(r) = checked(&id) {
        return r;
    }
    match d.store.get(&verdict_path(&id)).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}.json\""))],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, format!("run {id} has no verdict yet\n")).into_response(),
    }
}

/// `GET /runs/{id}/samples.csv`: the run's raw samples.
pub async fn samples_csv(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    if let Err(r) = checked(&id) {
        return r;
    }
    let sql = format!(
        "SELECT DISTINCT metric, unit, rank, step, batch_seq, CAST(ts AS VARCHAR) AS ts, value FROM samples WHERE run_id = '{id}' ORDER BY metric, ts, rank, step"
    );
    match query_readonly(&d.store, &sql, MAX_EXPORT_SAMPLES, d.query_timeout()).await {
        Ok(t) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{id}-samples.csv\""))], csv(&t))
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

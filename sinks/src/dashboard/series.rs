//! A series' history: each run's judged value of one metric with the baseline band, change
//! points, the trend line and verdict marks (the fleet report's chart), its latest trend,
//! and a form that pins the baseline to chosen runs with a reason. Without a series, the
//! list of series with their trends.

use std::collections::HashMap;

use axum::extract::{RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tera::Context;
use trackiq_infra::tables::query_rows;

use super::PinRequest;
use super::auth::same_origin;
use super::pages::{Shared, failed, lit, message, render, text};
use crate::fleet::chart::{HistoryPoint, SeriesHistory, history_svg};

/// Runs shown on a series' page (the newest).
pub const HISTORY_RUNS: usize = 200;

/// Other series offered for overlay on a series' page at most.
pub const OVERLAY_CHOICES: usize = 50;

/// Query of the page.
#[derive(Debug, Default)]
pub struct SeriesQuery {
    pub series: String,
    pub metric: String,
    /// Set after a pin: what was pinned.
    pub pinned: String,
    /// Series drawn over this one on the interactive chart (`overlay` may repeat).
    pub overlay: Vec<String>,
}

impl SeriesQuery {
    /// Parses a query string; an unknown parameter is named.
    fn parse(query: &str) -> Result<SeriesQuery, String> {
        let mut q = SeriesQuery::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "series" => q.series = v.into_owned(),
                "metric" => q.metric = v.into_owned(),
                "pinned" => q.pinned = v.into_owned(),
                "overlay" if !v.is_empty() && !q.overlay.contains(&v.to_string()) => q.overlay.push(v.into_owned()),
                "overlay" => {}
                other => return Err(format!("unknown query parameter `{other}`; a series page takes series, metric, overlay (repeatable) and pinned")),
            }
        }
        if q.overlay.len() >= super::charts::MAX_OVERLAY {
            return Err(format!("{} series to overlay; a chart draws at most {} in all", q.overlay.len(), super::charts::MAX_OVERLAY));
        }
        Ok(q)
    }

    /// The interactive chart's data address: this series, then the overlaid ones.
    fn chart_url(&self, metric: &str) -> String {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        u.append_pair("metric", metric).append_pair("series", &self.series);
        for o in self.overlay.iter().filter(|o| **o != self.series) {
            u.append_pair("series", o);
        }
        format!("/charts/series.json?{}", u.finish())
    }
}

#[derive(Serialize)]
struct RunRow {
    run_id: String,
    started: String,
    value: String,
    baseline: String,
    change: String,
    severity: String,
}

fn num(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(crate::report::fmt_num).unwrap_or_else(|| "—".into())
}

/// The newest [`HISTORY_RUNS`] runs of a series' metric, each with its latest verdict, newest
/// first: the page's table and SVG, and the interactive chart's data.
pub(super) fn history_sql(series: &str, metric: &str) -> String {
    format!(
        "SELECT run_id, workload, hardware_name, version_tag, git_commit, CAST(started_at AS BIGINT) AS started_at, value, baseline, lower_limit, upper_limit, change_pct, severity FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY evaluated_at DESC) AS rn FROM verdicts WHERE series_id = {} AND metric = {} AND kind = 'metric') \
         WHERE rn = 1 ORDER BY started_at DESC LIMIT {HISTORY_RUNS}",
        lit(series),
        lit(metric)
    )
}

/// `GET /series`.
pub async fn page(State(d): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let q = match SeriesQuery::parse(&query.unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    if q.series.is_empty() {
        return list(&d).await;
    }
    let metrics = match query_rows(&d.store, &format!("SELECT DISTINCT metric FROM verdicts WHERE series_id = {} AND kind = 'metric' ORDER BY metric", lit(&q.series))).await {
        Ok(r) => r.iter().map(|r| text(r, "metric")).collect::<Vec<_>>(),
        Err(e) => return failed(e),
    };
    if metrics.is_empty() {
        return message(StatusCode::NOT_FOUND, "No such series", &format!("Series {} has no judged runs in the history.", q.series));
    }
    if !q.metric.is_empty() && !metrics.contains(&q.metric) {
        return message(StatusCode::NOT_FOUND, "No such metric in this series", &format!("Series {} has no judged metric `{}`; it has: {}.", q.series, q.metric, metrics.join(", ")));
    }
    let metric = if q.metric.is_empty() { metrics.iter().find(|m| *m == "latency_ms").unwrap_or(&metrics[0]).clone() } else { q.metric.clone() };
    let sql = history_sql(&q.series, &metric);
    let trend_sql = format!(
        "SELECT class, slope, total_change_pct, change_points, last_change_run_id, last_change_pct, points FROM trends WHERE series_id = {} AND metric = {} ORDER BY computed_at DESC LIMIT 1",
        lit(&q.series),
        lit(&metric)
    );
    // Other series of the metric, offered for overlay. Without a run count per candidate:
    // `count(DISTINCT run_id)` over every series cost the page 0.19 s over 100,000 runs
    // (`trackiq bench dashboard`); the three queries run at once.
    let others = format!(
        "SELECT series_id, max(workload) AS workload, max(hardware_name) AS hardware FROM verdicts \
         WHERE metric = {} AND kind = 'metric' AND series_id <> {} GROUP BY series_id ORDER BY workload, hardware, series_id LIMIT {OVERLAY_CHOICES}",
        lit(&metric),
        lit(&q.series)
    );
    let (rows, trend, others) = match tokio::join!(query_rows(&d.store, &sql), query_rows(&d.store, &trend_sql), query_rows(&d.store, &others)) {
        (Ok(r), Ok(t), Ok(o)) => (r, t, o),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failed(e),
    };
    let f = |r: &trackiq_infra::tables::Row, k: &str| r.get(k).and_then(|v| v.as_f64());
    let mut points: Vec<HistoryPoint> = rows
        .iter()
        .map(|r| HistoryPoint {
            run_id: text(r, "run_id"),
            started_at: r.get("started_at").and_then(|v| v.as_i64()).unwrap_or(0),
            value: f(r, "value").unwrap_or(f64::NAN),
            baseline: f(r, "baseline"),
            lower_limit: f(r, "lower_limit"),
            upper_limit: f(r, "upper_limit"),
            severity: text(r, "severity"),
        })
        .collect();
    points.reverse();
    let first = rows.first();
    let history = SeriesHistory {
        series_id: q.series.clone(),
        metric: metric.clone(),
        workload: first.map(|r| text(r, "workload")).unwrap_or_default(),
        hardware: first.map(|r| text(r, "hardware_name")).unwrap_or_default(),
        change_runs: trend.first().map(|t| text(t, "last_change_run_id")).filter(|s| !s.is_empty()).into_iter().collect(),
        points,
    };
    let chart = history_svg(&history).ok();
    // The same workload on other machines first.
    let mut overlay_choices: Vec<(bool, serde_json::Value)> = others
        .iter()
        .map(|r| {
            let id = text(r, "series_id");
            let choice = serde_json::json!({"series": id, "label": format!("{} on {}", text(r, "workload"), text(r, "hardware")), "on": q.overlay.contains(&id)});
            (text(r, "workload") != history.workload, choice)
        })
        .collect();
    overlay_choices.sort_by_key(|(other_workload, _)| *other_workload);
    let overlay_choices: Vec<serde_json::Value> = overlay_choices.into_iter().map(|(_, c)| c).collect();

    let runs: Vec<RunRow> = rows
        .iter()
        .map(|r| RunRow {
            run_id: text(r, "run_id"),
            started: chrono::DateTime::from_timestamp_micros(r.get("started_at").and_then(|v| v.as_i64()).unwrap_or(0)).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
            value: num(f(r, "value")),
            baseline: num(f(r, "baseline")),
            change: f(r, "change_pct").filter(|c| c.is_finite()).map(|c| format!("{c:+.2} %")).unwrap_or_else(|| "—".into()),
            severity: text(r, "severity"),
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("series", &q.series);
    ctx.insert("metric", &metric);
    ctx.insert("metrics", &metrics);
    ctx.insert("workload", &history.workload);
    ctx.insert("hardware", &history.hardware);
    ctx.insert("chart", &chart);
    ctx.insert("chart_data", &q.chart_url(&metric));
    ctx.insert("overlay_choices", &overlay_choices);
    ctx.insert("runs", &runs);
    ctx.insert("pinned", &q.pinned);
    ctx.insert("can_pin", &d.pin.is_some());
    if let Some(t) = trend.first() {
        ctx.insert(
            "trend",
            &serde_json::json!({
                "class": text(t, "class"), "slope": num(f(t, "slope")), "total": f(t, "total_change_pct").map(|c| format!("{c:+.2} %")).unwrap_or_default(),
                "change_points": text(t, "change_points"), "last_change": text(t, "last_change_run_id"), "points": text(t, "points"),
            }),
        );
    }
    render("dashboard/series.html", "series", ctx)
}

async fn list(d: &Shared) -> Response {
    // Every judged series and metric, with its latest trend where one has been computed
    // (a trend needs a few runs; a new series is listed from its first verdict).
    let sql = "SELECT v.series_id, v.metric, max(v.workload) AS workload, max(v.hardware_name) AS hardware, count(DISTINCT v.run_id) AS points, \
        max(t.class) AS class, max(t.total_change_pct) AS total_change_pct, max(t.change_points) AS change_points FROM verdicts v \
        LEFT JOIN (SELECT series_id, metric, class, total_change_pct, change_points, ROW_NUMBER() OVER (PARTITION BY series_id, metric ORDER BY computed_at DESC) AS rn FROM trends) t \
        ON v.series_id = t.series_id AND v.metric = t.metric AND t.rn = 1 WHERE v.kind = 'metric' \
        GROUP BY v.series_id, v.metric ORDER BY workload, v.series_id, v.metric LIMIT 1000";
    let rows = match query_rows(&d.store, sql).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let series: Vec<HashMap<&str, String>> = rows
        .iter()
        .map(|r| {
            HashMap::from([
                ("series", text(r, "series_id")), ("metric", text(r, "metric")), ("workload", text(r, "workload")), ("hardware", text(r, "hardware")),
                ("points", text(r, "points")), ("class", Some(text(r, "class")).filter(|c| !c.is_empty()).unwrap_or_else(|| "not enough runs yet".into())), ("change_points", text(r, "change_points")),
                ("total", r.get("total_change_pct").and_then(|v| v.as_f64()).map(|c| format!("{c:+.2} %")).unwrap_or_default()),
            ])
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("series", &series);
    render("dashboard/series_list.html", "series", ctx)
}

/// `POST /series/pin` (form: series, metric, run…, reason).
pub async fn pin(State(d): State<Shared>, headers: HeaderMap, RawForm(body): RawForm) -> Response {
    if !same_origin(&headers) {
        return message(StatusCode::FORBIDDEN, "Refused", "A pin is only accepted from this dashboard's own pages.");
    }
    let Some(pin) = &d.pin else {
        return message(StatusCode::CONFLICT, "This dashboard cannot pin", "It reads a history without a pipeline (trackiq ui); pin with `trackiq baseline set RUN_ID --reason ...`, or from the dashboard of `trackiq up`.");
    };
    let (mut series, mut metric, mut runs, mut reason) = (String::new(), String::new(), Vec::new(), String::new());
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "series" => series = v.into_owned(),
            "metric" => metric = v.into_owned(),
            "run" => runs.push(v.into_owned()),
            "reason" => reason = v.trim().to_string(),
            _ => {}
        }
    }
    if series.is_empty() || runs.is_empty() || reason.is_empty() {
        return message(StatusCode::BAD_REQUEST, "Nothing pinned", "Choose the runs to pin the baseline to and say why (the reason is kept with the pin).");
    }
    match pin(PinRequest { series_id: series.clone(), run_ids: runs, reason }).await {
        Ok(done) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("series", &series).append_pair("metric", &metric).append_pair("pinned", &done);
            Redirect::to(&format!("/series?{}", q.finish())).into_response()
        }
        Err(e) => message(StatusCode::BAD_GATEWAY, "The pin could not be published", &e),
    }
}

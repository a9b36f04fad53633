//! Two runs, or two groups of runs, side by side: the comparison report (deltas with their
//! significance, the winner per metric family, confidence matrix, consistency findings),
//! with a picker of recent runs. `?run=A&run=B` (the runs list's checkboxes) or
//! `?a=A1,A2&b=B1` (groups: comma-separated).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use tera::Context;
use trackiq_infra::tables::query_rows;

use super::pages::{Shared, failed, message, render, text};
use crate::report::compare::render_compare_body;
use crate::report::compare_data::{compare, load_side};

/// Significance level of the page's tests.
pub const ALPHA: f64 = 0.05;
/// Recent runs offered by the picker.
pub const PICKER_RUNS: usize = 200;

fn ids(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `GET /compare`.
pub async fn page(State(d): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (mut a, mut b, mut picked, mut metric) = (String::new(), String::new(), Vec::new(), String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "a" => a = v.into_owned(),
            "b" => b = v.into_owned(),
            "run" => picked.push(v.into_owned()),
            "metric" => metric = v.into_owned(),
            other => return message(StatusCode::BAD_REQUEST, "Bad request", &format!("unknown query parameter `{other}`; the compare page takes a and b (run ids, comma-separated), run (twice) and metric")),
        }
    }
    if !picked.is_empty() {
        if picked.len() != 2 {
            return message(StatusCode::BAD_REQUEST, "Pick two runs", &format!("{} runs were picked; a comparison needs two (or two groups: a=ID,ID&b=ID).", picked.len()));
        }
        (a, b) = (picked[0].clone(), picked[1].clone());
    }
    let recent = format!(
        "SELECT run_id, workload, hardware_name, CAST(started_at AS VARCHAR) AS started FROM runs WHERE event = 'started' ORDER BY started_at DESC LIMIT {PICKER_RUNS}"
    );
    let recent = match query_rows(&d.store, &recent).await {
        Ok(r) => r
            .iter()
            .map(|r| serde_json::json!({"run_id": text(r, "run_id"), "label": format!("{} · {} · {} · {}", text(r, "workload"), text(r, "hardware_name"), text(r, "started").chars().take(19).collect::<String>(), text(r, "run_id").chars().take(13).collect::<String>())}))
            .collect::<Vec<_>>(),
        Err(e) => return failed(e),
    };
    let mut ctx = Context::new();
    ctx.insert("a", &a);
    ctx.insert("b", &b);
    ctx.insert("recent", &recent);
    let mut status = StatusCode::OK;
    if !a.is_empty() && !b.is_empty() {
        let sides = async { Ok::<_, crate::error::SinkError>((load_side(&d.store, &ids(&a)).await?, load_side(&d.store, &ids(&b)).await?)) };
        // The compared runs' samples overlaid (A's first) on the interactive chart: which
        // metrics they sampled, found while the sides load.
        let runs: Vec<String> = ids(&a).into_iter().chain(ids(&b)).take(super::charts::MAX_OVERLAY).collect();
        let (sides, sampled) = tokio::join!(sides, super::run::sampled_metrics(&d, &runs, &metric));
        // Different workloads are compared with a warning: the page is for looking.
        match sides.and_then(|(x, y)| compare(x, y, ALPHA, true, &*d.direction_of)).and_then(|c| render_compare_body(&c)) {
            Ok(body) => {
                ctx.insert("report", &body);
                ctx.insert("report_style", crate::report::STYLE);
                match sampled {
                    Ok((metrics, Some(m))) => {
                        let link = |m: &str| format!("/compare?{}", url::form_urlencoded::Serializer::new(String::new()).append_pair("a", &a).append_pair("b", &b).append_pair("metric", m).finish());
                        ctx.insert("metric_links", &metrics.iter().map(|x| serde_json::json!({"metric": x, "href": link(x)})).collect::<Vec<_>>());
                        ctx.insert("chart_data", &super::run::samples_chart_url(&runs, &m));
                        ctx.insert("metric", &m);
                    }
                    Ok((_, None)) => {}
                    Err(e) => return failed(e),
                }
            }
            Err(e) => {
                status = StatusCode::NOT_FOUND;
                ctx.insert("error", &e.to_string());
            }
        }
    }
    let mut res = render("dashboard/compare.html", "compare", ctx);
    *res.status_mut() = status;
    res
}

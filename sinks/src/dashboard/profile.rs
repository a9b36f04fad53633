//! A run's call-stack profile on its page (`bench cmd --profile` stores it beside the report):
//! the flame graph, and against the series' latest earlier run with a profile, the
//! differential flame graph and the functions whose share changed most.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trackiq_infra::DataStore;
use trackiq_infra::tables::query_rows;
use trackiq_stats::profiles::{Folded, biggest_changes, parse};

use super::pages::Shared;
use crate::report::flame::{differential_svg, flame_svg, profile_path};

/// Earlier runs of the series looked at for a baseline profile.
const BASELINE_CANDIDATES: usize = 20;
/// Rows of the table of changed functions.
const CHANGED_ROWS: usize = 10;

async fn load(store: &DataStore, run_id: &str) -> Option<Folded> {
    let bytes = store.get(&profile_path(run_id)).await.ok()?;
    Some(parse(&String::from_utf8_lossy(&bytes)))
}

/// The latest run of `run_id`'s series before it that has a profile. Run ids are UUIDv7:
/// ordered by their start. `run_id` has been checked to be a plain id.
async fn baseline(store: &DataStore, run_id: &str) -> Option<(String, Folded)> {
    let sql = format!(
        "SELECT b.run_id FROM runs r JOIN runs b ON b.series_id = r.series_id AND b.event = 'started' AND b.run_id < r.run_id \
         WHERE r.run_id = '{run_id}' AND r.event = 'started' ORDER BY b.run_id DESC LIMIT {BASELINE_CANDIDATES}"
    );
    for row in query_rows(store, &sql).await.ok()? {
        if let Some(id) = row.get("run_id").and_then(|v| v.as_str())
            && let Some(f) = load(store, id).await
        {
            return Some((id.to_string(), f));
        }
    }
    None
}

/// One row of the changed-functions table.
#[derive(Serialize)]
pub struct ChangedRow {
    function: String,
    self_share: String,
    total_share: String,
}

/// What the run page shows of a run's profile.
#[derive(Serialize)]
pub struct ProfileSection {
    baseline: Option<String>,
    changed: Vec<ChangedRow>,
}

/// The profile section of `run_id`'s page; `None` without a profile.
pub async fn section(store: &DataStore, run_id: &str) -> Option<ProfileSection> {
    let after = load(store, run_id).await?;
    let Some((base, before)) = baseline(store, run_id).await else {
        return Some(ProfileSection { baseline: None, changed: Vec::new() });
    };
    let changed = biggest_changes(&before, &after, CHANGED_ROWS)
        .into_iter()
        .map(|c| ChangedRow {
            function: c.function,
            self_share: format!("{:.1} % → {:.1} %", c.self_before, c.self_after),
            total_share: format!("{:.1} % → {:.1} %", c.total_before, c.total_after),
        })
        .collect();
    Some(ProfileSection { baseline: Some(base), changed })
}

fn svg(result: Result<String, crate::error::SinkError>) -> Response {
    match result {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /runs/{id}/profile.svg`.
pub async fn flame(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    if let Err(r) = super::run::checked(&id) {
        return r;
    }
    match load(&d.store, &id).await {
        Some(f) => svg(flame_svg(&f, &format!("run {id}"))),
        None => (StatusCode::NOT_FOUND, format!("run {id} has no profile (`bench cmd --profile N` records one)\n")).into_response(),
    }
}

/// `GET /runs/{id}/profile-diff.svg`: against the series' latest earlier run with a profile.
pub async fn differential(State(d): State<Shared>, Path(id): Path<String>) -> Response {
    if let Err(r) = super::run::checked(&id) {
        return r;
    }
    let (Some(after), Some((base, before))) = (load(&d.store, &id).await, baseline(&d.store, &id).await) else {
        return (StatusCode::NOT_FOUND, format!("run {id} and no earlier run of its series both have a profile\n")).into_response();
    };
    svg(differential_svg(&before, &after, &format!("{} vs {}: red a bigger share, blue smaller", &id[..id.len().min(13)], &base[..base.len().min(13)])))
}

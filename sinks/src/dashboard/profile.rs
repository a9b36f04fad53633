//! A run's call-stack profile on its page (`bench cmd --profile` stores it beside the report):
//! the flame graph, and against the series' latest earlier run with a profile, the
//! differential flame graph and the functions whose share changed most.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::Shared;
use crate::report::flame::{baseline, differential_svg, differential_title, flame_svg, load};

/// The profile section of `run_id`'s page (the graphs served by the routes below); `None`
/// without a profile or where it cannot be read.
pub async fn section(store: &trackiq_infra::DataStore, run_id: &str) -> Option<crate::report::flame::ProfileSection> {
    crate::report::flame::section(store, run_id, false).await.ok().flatten()
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
    svg(differential_svg(&before, &after, &differential_title(&id, &base)))
}

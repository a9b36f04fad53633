//! Result files dropped on the runs page (or chosen with its file input): the page's script
//! posts each file's bytes to `POST /runs/upload?format=auto`, which goes through the run API's
//! own reading and publishing ([`super::ingest`]): the same formats, the same validation and
//! errors (naming the line or JSON path), the same answer as `POST /api/v1/runs`. The new runs
//! then stream onto the page like any other.
//!
//! Behind the dashboard's own access check (its token or loopback) and a same-origin check,
//! not the API's bearer token: a person on the page is already let in; another site's page
//! is not let post on their behalf.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Dashboard;
use super::auth::same_origin;
use super::ingest::{refuse, take};
use super::pages::Shared;

/// The body limit of the route: the run API's (`[ingest] max_body_bytes`); 0 without a pipeline.
pub fn body_limit(d: &Dashboard) -> usize {
    d.ingest.as_ref().map_or(0, |i| i.max_body_bytes())
}

/// `POST /runs/upload`: a result file as the body; the run API's query parameters.
pub async fn upload(State(d): State<Shared>, req: Request) -> Response {
    if !same_origin(req.headers()) {
        return refuse(StatusCode::FORBIDDEN, "an upload is only accepted from this dashboard's own pages");
    }
    let Some(ingest) = &d.ingest else {
        return refuse(StatusCode::NOT_FOUND, "this dashboard reads a history without a pipeline (trackiq ui): upload on the dashboard of `trackiq up`, or use `trackiq import FILE`");
    };
    take(ingest, req).await
}

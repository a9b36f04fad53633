//! The launch pages: `GET /launch` (a form per configured entry), `POST /launch/{name}` (checks
//! the values and starts it), `GET /launch/{name}` (its output, streamed from
//! `/launch/{name}/events`, and the run it recorded), `POST /launch/{name}/cancel`. Posts are
//! accepted from this dashboard's own pages only (the same-origin check of pins), behind its
//! token check like every page.

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use tera::Context;

use super::auth::same_origin;
use super::launch_runner::Refusal;
use super::pages::{Shared, message, render};

const NOT_CONFIGURED: &str = "Launching needs the dashboard of `trackiq up` with benchmarks configured as [[dashboard.launch]] entries (see infra/trackiq.example.toml): each names a `trackiq bench` command and the parameters a person may set.";

/// `GET /launch`.
pub async fn list(State(d): State<Shared>) -> Response {
    let entries: Vec<serde_json::Value> = d
        .launcher
        .iter()
        .flat_map(|l| l.entries.iter().map(move |e| (l, e)))
        .map(|(l, e)| {
            let job = l.job(&e.name);
            let last = job.as_ref().map(|j| j.view().outcome.map_or("running".to_string(), |o| o.status.to_string()));
            serde_json::json!({ "entry": e, "command": e.args.join(" "), "last": last })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("entries", &entries);
    ctx.insert("not_configured", NOT_CONFIGURED);
    render("dashboard/launch.html", "launch", ctx)
}

/// `POST /launch/{name}` (form: the entry's parameters).
pub async fn start(State(d): State<Shared>, Path(name): Path<String>, headers: HeaderMap, RawForm(body): RawForm) -> Response {
    if !same_origin(&headers) {
        return message(StatusCode::FORBIDDEN, "Refused", "A launch is only accepted from this dashboard's own pages.");
    }
    let Some(launcher) = &d.launcher else {
        return message(StatusCode::NOT_FOUND, "Nothing to launch", NOT_CONFIGURED);
    };
    let given: Vec<(String, String)> = url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    match launcher.start(&name, &given) {
        Ok(_) => Redirect::to(&format!("/launch/{name}")).into_response(),
        Err(Refusal::Unknown) => message(StatusCode::NOT_FOUND, "No such launch", &format!("No [[dashboard.launch]] entry is named `{name}`.")),
        Err(Refusal::Invalid(why)) => message(StatusCode::BAD_REQUEST, "Not launched", &why),
        Err(Refusal::Busy) => message(StatusCode::CONFLICT, "Already running", &format!("`{name}` is running; one launch of an entry at a time (cancel it on /launch/{name}).")),
        Err(Refusal::Failed(why)) => message(StatusCode::INTERNAL_SERVER_ERROR, "Not launched", &why),
    }
}

/// `GET /launch/{name}`.
pub async fn job(State(d): State<Shared>, Path(name): Path<String>) -> Response {
    let Some(job) = d.launcher.as_ref().and_then(|l| l.job(&name)) else {
        return message(StatusCode::NOT_FOUND, "Not launched", &format!("`{name}` has not been launched since this server started; see /launch."));
    };
    let v = job.view();
    let mut ctx = Context::new();
    ctx.insert("name", &name);
    ctx.insert("command", &v.args.join(" "));
    ctx.insert("output", &v.lines.join("\n"));
    ctx.insert("from", &(v.dropped + v.lines.len()));
    ctx.insert("dropped", &v.dropped);
    ctx.insert("outcome", &v.outcome);
    render("dashboard/launch_job.html", "launch", ctx)
}

/// Where a page's stream starts: the lines it was rendered with.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct From {
    pub from: usize,
}

/// `GET /launch/{name}/events?from=N`.
pub async fn events(State(d): State<Shared>, Path(name): Path<String>, Query(q): Query<From>) -> Response {
    match d.launcher.as_ref().and_then(|l| l.job(&name)) {
        Some(job) => Sse::new(job.stream(q.from)).keep_alive(KeepAlive::default()).into_response(),
        None => (StatusCode::NOT_FOUND, "not launched").into_response(),
    }
}

/// `POST /launch/{name}/cancel`.
pub async fn cancel(State(d): State<Shared>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return message(StatusCode::FORBIDDEN, "Refused", "A cancel is only accepted from this dashboard's own pages.");
    }
    match d.launcher.as_ref().and_then(|l| l.job(&name)) {
        Some(job) => {
            job.cancel();
            Redirect::to(&format!("/launch/{name}")).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "Not launched", &format!("`{name}` has not been launched since this server started.")),
    }
}

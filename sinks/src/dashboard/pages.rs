//! The pages: each runs its queries over the history with DataFusion and renders a template.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tera::{Context, Tera};
use trackiq_infra::InfraError;
use trackiq_infra::tables::{Row, TextTable, query_readonly, query_rows};

use super::{Dashboard, auth};

static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    // tera's own `urlencode` is behind its `builtins` feature (and its dependencies).
    t.register_filter(
        "urlencode",
        |v: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            Ok(tera::Value::String(
                url::form_urlencoded::byte_serialize(s.as_bytes()).collect(),
            ))
        },
    );
    t.add_raw_templates([
        (
            "dashboard/base.html",
            include_str!("../../templates/dashboard/base.html"),
        ),
        (
            "dashboard/overview.html",
            include_str!("../../templates/dashboard/overview.html"),
        ),
        (
            "dashboard/runs.html",
            include_str!("../../templates/dashboard/runs.html"),
        ),
        (
            "dashboard/sql.html",
            include_str!("../../templates/dashboard/sql.html"),
        ),
        ("dashboard/run.html", include_str!("../../templates/dashboard/run.html")),
        ("dashboard/series.html", include_str!("../../templates/dashboard/series.html")),
        ("dashboard/series_list.html", include_str!("../../templates/dashboard/series_list.html")),
        ("dashboard/compare.html", include_str!("../../templates/dashboard/compare.html")),
        ("dashboard/chart_head.html", include_str!("../../templates/dashboard/chart_head.html")),
        ("dashboard/launch.html", include_str!("../../templates/dashboard/launch.html")),
        ("dashboard/release.html", include_str!("../../templates/dashboard/release.html")),
        ("dashboard/releases.html", include_str!("../../templates/dashboard/releases.html")),
        ("dashboard/launch_job.html", include_str!("../../templates/dashboard/launch_job.html")),
        (
            "dashboard/message.html",
            include_str!("../../templates/dashboard/message.html"),
        ),
    ])
    .expect("dashboard templates parse");
    t
});

/// Severities a verdict can have, for the filter.
const SEVERITIES: [&str; 5] = ["block", "warn", "pass", "improved", "insufficient_data"];

pub(super) type Shared = Arc<Dashboard>;

/// Every page behind the token check and security headers; the ingest API beside them with
/// its own token.
pub fn router(d: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(super::run::page))
        .route("/runs/{id}/verdict.json", get(super::run::verdict_json))
        .route("/runs/{id}/samples.csv", get(super::run::samples_csv))
        .route("/runs/{id}/profile.svg", get(super::profile::flame))
        .route("/runs/{id}/profile-diff.svg", get(super::profile::differential))
        .route("/series", get(super::series::page))
        .route("/series/pin", axum::routing::post(super::series::pin))
        .route("/compare", get(super::compare::page))
        .route("/sql", get(sql))
        .route("/sql.csv", get(sql_csv))
        .route("/events", get(super::live::events))
        .route("/charts/series.json", get(super::charts::series))
        .route("/charts/samples.json", get(super::charts::samples))
        .route("/runs/upload", axum::routing::post(super::upload::upload).layer(axum::extract::DefaultBodyLimit::max(super::upload::body_limit(&d))))
        .route("/releases", get(super::release::list))
        .route("/release", get(super::release::page))
        .route("/release/decide", axum::routing::post(super::release::decide))
        .route("/release/{file}", get(super::release::export))
        .route("/launch", get(super::launch_pages::list))
        .route("/launch/{name}", get(super::launch_pages::job).post(super::launch_pages::start))
        .route("/launch/{name}/events", get(super::launch_pages::events))
        .route("/launch/{name}/cancel", axum::routing::post(super::launch_pages::cancel))
        .route("/assets/{name}", get(asset))
        .fallback(not_found)
        .layer(axum::middleware::map_response(styled_errors))
        .layer(axum::middleware::from_fn_with_state(d.clone(), auth::guard))
        .merge(super::ingest::router(&d))
        .with_state(d)
}

pub(super) fn render(name: &str, page: &str, mut ctx: Context) -> Response {
    ctx.insert("page", page);
    match TEMPLATES.render(name, &ctx) {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering {name}: {e:?}"),
        )
            .into_response(),
    }
}

pub(super) fn message(status: StatusCode, heading: &str, text: &str) -> Response {
    let mut ctx = Context::new();
    ctx.insert("heading", heading);
    ctx.insert("message", text);
    (status, render("dashboard/message.html", "", ctx)).into_response()
}

pub(super) fn failed(e: InfraError) -> Response {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The history could not be read",
        &e.to_string(),
    )
}

/// A SQL string literal.
pub(super) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(super) fn text(r: &Row, k: &str) -> String {
    match r.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

async fn overview(State(d): State<Shared>) -> Response {
    let counts = "SELECT count(DISTINCT CASE WHEN started_at > now() - INTERVAL '1 day' THEN run_id END) AS d1, \
        count(DISTINCT CASE WHEN started_at > now() - INTERVAL '7 days' THEN run_id END) AS d7, count(DISTINCT run_id) AS total FROM runs WHERE event = 'started'";
    let verdicts = "SELECT run_severity AS severity, count(DISTINCT run_id) AS n FROM verdicts WHERE evaluated_at > now() - INTERVAL '7 days' GROUP BY run_severity ORDER BY n DESC";
    let alerts = "SELECT alert_id, severity, workload, hardware, subject, change_pct, CAST(fired_at AS VARCHAR) AS since, run_id FROM \
        (SELECT *, ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY updated_at DESC, kafka_partition DESC, kafka_offset DESC) AS rn FROM alerts) \
        WHERE rn = 1 AND state = 'firing' ORDER BY fired_at DESC LIMIT 100";
    let (c, v, a) = match (
        query_rows(&d.store, counts).await,
        query_rows(&d.store, verdicts).await,
        query_rows(&d.store, alerts).await,
    ) {
        (Ok(c), Ok(v), Ok(a)) => (c, v, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failed(e),
    };
    let mut ctx = Context::new();
    let n = |k: &str| {
        c.first()
            .and_then(|r| r.get(k))
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    };
    ctx.insert("runs_24h", &n("d1"));
    ctx.insert("runs_7d", &n("d7"));
    ctx.insert("runs_total", &n("total"));
    ctx.insert(
        "verdicts",
        &v.iter()
            .map(|r| BTreeMap::from([("severity", text(r, "severity")), ("n", text(r, "n"))]))
            .collect::<Vec<_>>(),
    );
    let alerts: Vec<BTreeMap<&str, String>> = a
        .iter()
        .map(|r| {
            let change = r
                .get("change_pct")
                .and_then(|v| v.as_f64())
                .map(|c| format!("{c:+.1} %"))
                .unwrap_or_default();
            BTreeMap::from([
                ("alert_id", text(r, "alert_id")),
                ("severity", text(r, "severity")),
                ("workload", text(r, "workload")),
                ("hardware", text(r, "hardware")),
                ("subject", text(r, "subject")),
                ("change", change),
                ("since", text(r, "since")),
                ("run_id", text(r, "run_id")),
            ])
        })
        .collect();
    ctx.insert("alerts", &alerts);
    if let Some(h) = &d.health {
        ctx.insert("health_columns", &super::HEALTH_COLUMNS);
        ctx.insert("health", &h());
    }
    match run_rows(&d, &RunFilter::default(), "event = 'started'", LATEST_RUNS).await {
        Ok(mut latest) => {
            latest.truncate(LATEST_RUNS);
            ctx.insert("latest", &latest);
        }
        Err(e) => return failed(e),
    }
    render("dashboard/overview.html", "overview", ctx)
}

/// Filters of the runs list (query parameters).
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct RunFilter {
    pub workload: String,
    pub hardware: String,
    pub version: String,
    pub commit: String,
    pub severity: String,
    /// `key=value`: runs with this label.
    pub label: String,
    /// Runs started on or after this day (`YYYY-MM-DD`, UTC).
    pub since: String,
    /// Runs started on or before this day (`YYYY-MM-DD`, UTC).
    pub until: String,
    pub page: usize,
}

fn day(field: &str, v: &str) -> Result<Option<chrono::NaiveDate>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(Some).map_err(|e| format!("{field} `{v}` is not a day written YYYY-MM-DD ({e})"))
}

impl RunFilter {
    /// The filter as SQL, or what is wrong with it.
    fn sql_where(&self) -> Result<String, String> {
        if !self.severity.is_empty() && !SEVERITIES.contains(&self.severity.as_str()) {
            return Err(format!("severity `{}` is not one of {}", self.severity, SEVERITIES.join(", ")));
        }
        let mut w = vec!["event = 'started'".to_string()];
        for (col, v) in [
            ("workload", &self.workload),
            ("hardware_name", &self.hardware),
            ("version_tag", &self.version),
        ] {
            if !v.is_empty() {
                w.push(format!("{col} = {}", lit(v)));
            }
        }
        if !self.commit.is_empty() {
            w.push(format!("starts_with(git_commit, {})", lit(&self.commit)));
        }
        if !self.label.is_empty() {
            let (k, v) = self.label.split_once('=').ok_or_else(|| format!("label `{}` is not key=value", self.label))?;
            w.push(format!("labels[{}] = {}", lit(k.trim()), lit(v.trim())));
        }
        if let Some(d) = day("since", &self.since)? {
            w.push(format!("started_at >= TIMESTAMP '{d}T00:00:00Z'"));
        }
        if let Some(d) = day("until", &self.until)? {
            w.push(format!("started_at < TIMESTAMP '{}T00:00:00Z'", d + chrono::Days::new(1)));
        }
        Ok(w.join(" AND "))
    }

    fn link(&self, page: usize) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("workload", &self.workload),
            ("hardware", &self.hardware),
            ("version", &self.version),
            ("commit", &self.commit),
            ("severity", &self.severity),
            ("label", &self.label),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("page", &page.to_string());
        format!("/runs?{}", q.finish())
    }
}

/// A page of runs matching `f`, newest first, with their verdicts; one more than `size` when
/// there is a next page.
/// `filter` is `f`'s checked [`RunFilter::sql_where`].
async fn run_rows(d: &Dashboard, f: &RunFilter, filter: &str, size: usize) -> Result<Vec<BTreeMap<&'static str, String>>, InfraError> {
    let severity = if f.severity.is_empty() { String::new() } else { format!("WHERE v.severity = {}", lit(&f.severity)) };
    let sql = format!(
        "SELECT r.run_id, r.workload, r.hardware_name, r.version_tag, r.git_commit, CAST(r.started_at AS VARCHAR) AS started, v.severity FROM \
         (SELECT DISTINCT run_id, workload, hardware_name, version_tag, git_commit, started_at FROM runs WHERE {}) r \
         LEFT JOIN (SELECT run_id, max(run_severity) AS severity FROM verdicts GROUP BY run_id) v ON r.run_id = v.run_id {severity} \
         ORDER BY r.started_at DESC, r.run_id LIMIT {} OFFSET {}",
        filter,
        size + 1,
        f.page * size
    );
    let rows = query_rows(&d.store, &sql).await?;
    Ok(rows
        .iter()
        .map(|r| {
            BTreeMap::from([
                ("run_id", text(r, "run_id")), ("workload", text(r, "workload")), ("hardware", text(r, "hardware_name")), ("version", text(r, "version_tag")),
                ("commit", text(r, "git_commit").chars().take(12).collect()), ("started", text(r, "started").chars().take(19).collect()), ("severity", text(r, "severity")),
            ])
        })
        .collect())
}

/// Runs on the overview.
const LATEST_RUNS: usize = 10;

async fn runs(State(d): State<Shared>, Query(f): Query<RunFilter>) -> Response {
    let size = d.config.page_size.max(1);
    let filter = match f.sql_where() {
        Ok(w) => w,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Bad filter", &e),
    };
    let mut runs = match run_rows(&d, &f, &filter, size).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let more = runs.len() > size;
    runs.truncate(size);
    let mut ctx = Context::new();
    ctx.insert("runs", &runs);
    ctx.insert("f", &f);
    ctx.insert("severities", &SEVERITIES);
    ctx.insert("page_no", &(f.page + 1));
    ctx.insert("prev", &(f.page > 0).then(|| f.link(f.page - 1)));
    ctx.insert("next", &more.then(|| f.link(f.page + 1)));
    ctx.insert("can_upload", &d.ingest.is_some());
    render("dashboard/runs.html", "runs", ctx)
}

/// The uPlot release vendored under `assets/vendor/uplot` (its README says how to update it).
pub const UPLOT_VERSION: &str = "1.6.32";

/// Files under `/assets/`: (name, content type, body). The scripts are the dashboard's own
/// (tabs, live updates, the compare picker, uploads; the interactive charts) and uPlot's,
/// served with its licence.
const ASSETS: [(&str, &str, &str); 5] = [
    ("dashboard.js", "text/javascript; charset=utf-8", include_str!("../../assets/dashboard.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../../assets/charts.js")),
    ("uplot.js", "text/javascript; charset=utf-8", include_str!("../../assets/vendor/uplot/uPlot.iife.min.js")),
    ("uplot.css", "text/css; charset=utf-8", include_str!("../../assets/vendor/uplot/uPlot.min.css")),
    ("uplot-LICENSE.txt", "text/plain; charset=utf-8", include_str!("../../assets/vendor/uplot/LICENSE")),
];

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *body).into_response(),
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "Nothing is served at this address: start from the overview, the runs list or the series list.")
}

/// Longest plain-text refusal turned into a page.
const REFUSAL_BYTES: usize = 16 << 10;

/// A refusal made by axum itself (a query string that does not parse, a wrong method) is
/// plain text: it becomes the dashboard's page saying the same. JSON answers stay JSON.
async fn styled_errors(res: Response) -> Response {
    let plain = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let status = res.status();
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, REFUSAL_BYTES).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let heading = match status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Not allowed",
        _ => status.canonical_reason().unwrap_or("Refused"),
    };
    let mut page = message(status, heading, &text);
    for name in [header::WWW_AUTHENTICATE, header::ALLOW, header::SET_COOKIE] {
        if let Some(v) = parts.headers.get(&name) {
            page.headers_mut().insert(name, v.clone());
        }
    }
    page
}

/// Query text of the console.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SqlQuery {
    pub q: String,
}

async fn sql(State(d): State<Shared>, Query(SqlQuery { q }): Query<SqlQuery>) -> Response {
    let mut ctx = Context::new();
    ctx.insert("q", &q);
    ctx.insert("tables", &trackiq_schemas::arrow::TABLES.join(", "));
    ctx.insert("timeout", &d.config.query_timeout_secs);
    ctx.insert("max_rows", &d.config.max_rows);
    let mut status = StatusCode::OK;
    if !q.trim().is_empty() {
        match query_readonly(&d.store, &q, d.config.max_rows, d.query_timeout()).await {
            Ok(t) => ctx.insert("table", &t),
            Err(e) => {
                status = if matches!(e, InfraError::NotAQuery(_)) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::BAD_REQUEST
                };
                ctx.insert("error", &e.to_string());
            }
        }
    }
    (status, render("dashboard/sql.html", "sql", ctx)).into_response()
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A table as CSV with a header line.
pub(super) fn csv(t: &TextTable) -> String {
    let mut out = t.columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\r\n";
    for r in &t.rows {
        out.push_str(&(r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\r\n"));
    }
    out
}

async fn sql_csv(State(d): State<Shared>, Query(SqlQuery { q }): Query<SqlQuery>) -> Response {
    match query_readonly(&d.store, &q, d.config.max_rows, d.query_timeout()).await {
        Ok(t) => {
            let mut out = t
                .columns
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(",")
                + "\r\n";
            for r in &t.rows {
                out.push_str(
                    &(r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\r\n"),
                );
            }
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"trackiq.csv\"",
                    ),
                ],
                out,
            )
                .into_response()
        }
        Err(e @ InfraError::NotAQuery(_)) => (StatusCode::FORBIDDEN, e.to_string()).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

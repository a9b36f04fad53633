//! Release review: a page per release candidate — a version tag (`/release?version=V`) or a
//! commit (`/release?commit=C`, a prefix) — with every series judged for it across tools
//! (bench runs, imports, cluster runs) and its latest severity, the regressions behind them,
//! the alerts still firing on those series, the confirmations and notes on them, and the
//! decisions taken so far. An approver approves or rejects with a reason: the decision goes
//! through the pipeline as a `ReleaseDecision` (the `approvals` table), with the counts the
//! page showed. `/releases` lists the candidates; the page exports itself as HTML and its
//! verdicts as JSON and CSV.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tera::Context;
use trackiq_infra::tables::{Row, query_readonly, query_rows};
use trackiq_schemas::{CandidateKind, ReleaseDecision, ReleaseVerdict};

use super::auth::same_origin;
use super::pages::{Shared, csv, failed, lit, message, render, text};

/// Publishes a release decision; the answer says what was recorded.
pub type DecideFn = Arc<dyn Fn(ReleaseDecision) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// Candidates listed on `/releases` at most (the newest).
pub const LISTED_CANDIDATES: usize = 200;

/// A release candidate from a query string: `version=V` or `commit=C`.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: CandidateKind,
    pub name: String,
}

impl Candidate {
    /// The candidate of a query string (other keys are left to the caller: `decided`).
    pub fn parse(query: &str) -> Result<Candidate, String> {
        let mut found = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "version" => found.push(Candidate { kind: CandidateKind::Version, name: v.trim().to_string() }),
                "commit" => found.push(Candidate { kind: CandidateKind::Commit, name: v.trim().to_string() }),
                "decided" => {}
                other => return Err(format!("unknown query parameter `{other}`; a release page takes version=TAG or commit=SHA")),
            }
        }
        match found.as_slice() {
            [c] if !c.name.is_empty() && c.name.len() <= 128 => Ok(c.clone()),
            [_] => Err("the candidate is empty or longer than 128 characters".into()),
            _ => Err("name one release candidate: version=TAG or commit=SHA (or its start)".into()),
        }
    }

    /// The SQL condition on a verdict's columns.
    fn condition(&self) -> String {
        match self.kind {
            CandidateKind::Version => format!("version_tag = {}", lit(&self.name)),
            CandidateKind::Commit => format!("starts_with(git_commit, {})", lit(&self.name)),
        }
    }

    fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new()).append_pair(self.kind.as_str(), &self.name).finish()
    }
}

/// What the review shows, as queried.
struct Review {
    series: Vec<Row>,
    regressions: Vec<Row>,
    alerts: Vec<Row>,
    notes: Vec<Row>,
    decisions: Vec<Row>,
}

impl Review {
    fn count(&self, severity: &str) -> i32 {
        self.series.iter().filter(|r| text(r, "severity") == severity).count() as i32
    }
}

async fn review(d: &Shared, c: &Candidate) -> Result<Review, trackiq_infra::InfraError> {
    let cond = c.condition();
    let series_of = format!("SELECT DISTINCT series_id FROM verdicts WHERE {cond}");
    let series = format!(
        "SELECT series_id, max(tool) AS tool, max(workload) AS workload, max(hardware_name) AS hardware, count(DISTINCT run_id) AS runs, \
         first_value(run_id ORDER BY evaluated_at DESC) AS latest_run, first_value(run_severity ORDER BY evaluated_at DESC) AS severity \
         FROM verdicts WHERE kind = 'metric' AND {cond} GROUP BY series_id \
         ORDER BY CASE severity WHEN 'block' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END, tool, workload, hardware, series_id"
    );
    let regressions = format!(
        "SELECT series_id, workload, hardware_name AS hardware, metric, severity, value, baseline, change_pct, run_id FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id, metric ORDER BY evaluated_at DESC) AS rn FROM verdicts WHERE kind = 'metric' AND {cond}) \
         WHERE rn = 1 AND severity IN ('block', 'warn') ORDER BY CASE severity WHEN 'block' THEN 0 ELSE 1 END, workload, metric"
    );
    let alerts = format!(
        "SELECT alert_id, severity, workload, hardware, subject, change_pct, run_id, CAST(fired_at AS VARCHAR) AS since FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY updated_at DESC, kafka_partition DESC, kafka_offset DESC) AS rn FROM alerts) \
         WHERE rn = 1 AND state = 'firing' AND series_id IN ({series_of}) ORDER BY fired_at DESC"
    );
    let notes = format!(
        "SELECT id, action, reason, by, CAST(\"at\" AS VARCHAR) AS at FROM alert_actions WHERE action IN ('note', 'downgrade') AND series_id IN ({series_of}) ORDER BY \"at\" DESC LIMIT 50"
    );
    let decisions = format!(
        "SELECT decision, reason, by, CAST(\"at\" AS VARCHAR) AS at, series, blocking, warning, open_alerts FROM approvals \
         WHERE candidate_kind = {} AND candidate = {} ORDER BY \"at\" DESC",
        lit(c.kind.as_str()),
        lit(&c.name)
    );
    Ok(Review {
        series: query_rows(&d.store, &series).await?,
        regressions: query_rows(&d.store, &regressions).await?,
        alerts: query_rows(&d.store, &alerts).await?,
        notes: query_rows(&d.store, &notes).await?,
        decisions: query_rows(&d.store, &decisions).await?,
    })
}

fn context(c: &Candidate, r: &Review) -> Context {
    let mut ctx = Context::new();
    ctx.insert("kind", c.kind.as_str());
    ctx.insert("candidate", &c.name);
    ctx.insert("query", &c.query());
    ctx.insert("series", &r.series);
    ctx.insert("regressions", &r.regressions);
    ctx.insert("alerts", &r.alerts);
    ctx.insert("notes", &r.notes);
    ctx.insert("decisions", &r.decisions);
    ctx.insert("blocking", &r.count("block"));
    ctx.insert("warning", &r.count("warn"));
    ctx
}

/// `GET /release?version=V` (or `commit=C`).
pub async fn page(State(d): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let c = match Candidate::parse(&query) {
        Ok(c) => c,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    let r = match review(&d, &c).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if r.series.is_empty() {
        return message(StatusCode::NOT_FOUND, "Nothing judged for this candidate", &format!("No verdict in the history names {} `{}`; see /releases.", c.kind.as_str(), c.name));
    }
    let mut ctx = context(&c, &r);
    ctx.insert("can_decide", &d.decide.is_some());
    ctx.insert("decided", &url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "decided").map(|(_, v)| v.into_owned()));
    ctx.insert("export", &false);
    render("dashboard/release.html", "releases", ctx)
}

/// `GET /releases`: candidates, newest first, with their latest decision.
pub async fn list(State(d): State<Shared>) -> Response {
    let sql = format!(
        "SELECT v.version_tag AS version, count(DISTINCT v.series_id) AS series, count(DISTINCT v.run_id) AS runs, CAST(max(v.started_at) AS VARCHAR) AS latest, \
         max(a.decision) AS decision FROM verdicts v LEFT JOIN \
         (SELECT candidate, first_value(decision ORDER BY \"at\" DESC) AS decision FROM approvals WHERE candidate_kind = 'version' GROUP BY candidate) a ON v.version_tag = a.candidate \
         WHERE v.kind = 'metric' AND v.version_tag IS NOT NULL AND v.version_tag <> '' GROUP BY v.version_tag ORDER BY max(v.started_at) DESC LIMIT {LISTED_CANDIDATES}"
    );
    match query_rows(&d.store, &sql).await {
        Ok(rows) => {
            let mut ctx = Context::new();
            ctx.insert("candidates", &rows);
            render("dashboard/releases.html", "releases", ctx)
        }
        Err(e) => failed(e),
    }
}

/// `POST /release/decide` (form: version or commit, decision, reason, by).
pub async fn decide(State(d): State<Shared>, headers: HeaderMap, RawForm(body): RawForm) -> Response {
    if !same_origin(&headers) {
        return message(StatusCode::FORBIDDEN, "Refused", "A decision is only accepted from this dashboard's own pages.");
    }
    let Some(publish) = &d.decide else {
        return message(StatusCode::CONFLICT, "This dashboard cannot record decisions", "It reads a history without a pipeline (trackiq ui): decide on the dashboard of `trackiq up`.");
    };
    let (mut candidate, mut decision, mut reason, mut by) = (Vec::new(), None, String::new(), String::new());
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "version" | "commit" => candidate.push(format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())),
            "decision" => decision = Some(v.into_owned()),
            "reason" => reason = v.trim().to_string(),
            "by" => by = v.trim().to_string(),
            other => return message(StatusCode::BAD_REQUEST, "Not recorded", &format!("unknown field `{other}`")),
        }
    }
    let c = match Candidate::parse(&candidate.join("&")) {
        Ok(c) => c,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Not recorded", &e),
    };
    let decision = match decision.as_deref() {
        Some("approve") => ReleaseVerdict::Approve,
        Some("reject") => ReleaseVerdict::Reject,
        other => return message(StatusCode::BAD_REQUEST, "Not recorded", &format!("decision {other:?} is not approve or reject")),
    };
    if reason.is_empty() || by.is_empty() || by.len() > 128 {
        return message(StatusCode::BAD_REQUEST, "Not recorded", "Say who decides and why: both are kept with the decision.");
    }
    // The counts are taken now, from the history, not from what the form says.
    let r = match review(&d, &c).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let made = ReleaseDecision {
        decision_id: uuid::Uuid::now_v7().to_string(),
        candidate_kind: c.kind,
        candidate: c.name.clone(),
        decision,
        reason,
        by,
        at: trackiq_schemas::now_us(),
        series: r.series.len() as i32,
        blocking: r.count("block"),
        warning: r.count("warn"),
        open_alerts: r.alerts.len() as i32,
    };
    match publish(made).await {
        Ok(done) => Redirect::to(&format!("/release?{}&decided={}", c.query(), url::form_urlencoded::byte_serialize(done.as_bytes()).collect::<String>())).into_response(),
        Err(e) => message(StatusCode::BAD_GATEWAY, "The decision could not be published", &e),
    }
}

/// `GET /release/export.html|json|csv?version=V`: the page standalone (no script), or its
/// series' latest verdicts.
pub async fn export(State(d): State<Shared>, axum::extract::Path(file): axum::extract::Path<String>, RawQuery(query): RawQuery) -> Response {
    let c = match Candidate::parse(&query.unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => return message(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    let stem: String = format!("release-{}-{}", c.kind.as_str(), c.name).chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '.' { ch } else { '_' }).collect();
    let attach = |ext: &str, kind: &'static str, body: String| ([(header::CONTENT_TYPE, kind.to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{stem}.{ext}\""))], body).into_response();
    let verdicts = format!(
        "SELECT series_id, tool, workload, hardware_name, metric, severity, value, baseline, change_pct, run_id, version_tag, git_commit, CAST(evaluated_at AS VARCHAR) AS evaluated_at FROM \
         (SELECT *, ROW_NUMBER() OVER (PARTITION BY series_id, metric ORDER BY evaluated_at DESC) AS rn FROM verdicts WHERE kind = 'metric' AND {}) WHERE rn = 1 ORDER BY workload, series_id, metric",
        c.condition()
    );
    match file.as_str() {
        "export.html" => match review(&d, &c).await {
            Ok(r) => {
                let mut ctx = context(&c, &r);
                ctx.insert("export", &true);
                let mut res = render("dashboard/release.html", "releases", ctx);
                res.headers_mut().insert(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{stem}.html\"").parse().expect("a header value"));
                res
            }
            Err(e) => failed(e),
        },
        "export.json" => match query_rows(&d.store, &verdicts).await {
            Ok(rows) => attach("json", "application/json", serde_json::json!({ "candidate": { "kind": c.kind.as_str(), "name": c.name }, "verdicts": rows }).to_string()),
            Err(e) => failed(e),
        },
        "export.csv" => match query_readonly(&d.store, &verdicts, super::run::MAX_EXPORT_SAMPLES, d.query_timeout()).await {
            Ok(t) => attach("csv", "text/csv; charset=utf-8", csv(&t)),
            Err(e) => failed(e),
        },
        _ => message(StatusCode::NOT_FOUND, "Not found", "A release exports as export.html, export.json or export.csv."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_candidate_is_named() {
        assert_eq!(Candidate::parse("version=v1.3").unwrap(), Candidate { kind: CandidateKind::Version, name: "v1.3".into() });
        assert_eq!(Candidate::parse("commit=c0ffee&decided=x").unwrap().kind, CandidateKind::Commit);
        assert!(Candidate::parse("").unwrap_err().contains("name one release candidate"));
        assert!(Candidate::parse("version=a&commit=b").unwrap_err().contains("name one release candidate"));
        assert!(Candidate::parse("tag=v1").unwrap_err().contains("unknown query parameter `tag`"));
        assert!(Candidate::parse("version=").unwrap_err().contains("empty"));
        assert_eq!(Candidate::parse("commit=ab'c").unwrap().condition(), "starts_with(git_commit, 'ab''c')");
    }
}

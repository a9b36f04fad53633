//! The HTTP ingest API of `trackiq up`: CI systems push benchmark results without a Kafka
//! client. `POST /api/v1/runs` takes a result file as the body — Bencher Metric Format, a
//! TrackiqResult, or any format `trackiq import` reads (`?format=`, default `auto`) — and
//! answers 202 with the runs it published; `GET /api/v1/openapi.json` describes the API
//! (`assets/openapi.json`).
//!
//! Served on the dashboard's address but outside its token check: the API has its own bearer
//! token (`[ingest] token`, compared in constant time; never a cookie or a query parameter,
//! which end up in logs), and without one it refuses every post. A body above
//! `[ingest] max_body_bytes` is refused (413) from its `Content-Length` or while it is read,
//! and only after the token was checked. Parsing and publishing are the binary's
//! ([`IngestFn`]): this crate does not depend on the producers.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::pages::Shared;
use crate::error::SinkError;
use crate::notify::{Secret, SecretSource};

/// Where results are posted.
pub const RUNS: &str = "/api/v1/runs";
/// Where the API's OpenAPI document is served.
pub const OPENAPI: &str = "/api/v1/openapi.json";
/// Every route of the API as (method, path): the OpenAPI document lists exactly these.
pub const ROUTES: [(&str, &str); 2] = [("post", RUNS), ("get", OPENAPI)];
/// The OpenAPI 3.1 document.
pub const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");
/// Query parameters of `POST /api/v1/runs` (`label` may repeat).
pub const PARAMS: [&str; 7] = ["format", "at", "hardware", "workload", "version_tag", "git_commit", "label"];

/// HTTP ingest settings (`[ingest]`), served on `[dashboard] listen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// The bearer token of `POST /api/v1/runs`: `{ env = "VAR" }` or `{ file = "/path" }`.
    /// Unset: the API refuses every post (403) and the dashboard is served as before.
    pub token: Option<SecretSource>,
    /// Largest request body accepted, in bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { token: None, max_body_bytes: 16 << 20 }
    }
}

impl IngestConfig {
    /// The token's value, if one is configured; the error names the variable or file, never a value.
    pub fn read_token(&self) -> Result<Option<Secret>, SinkError> {
        let Some(source) = &self.token else { return Ok(None) };
        Secret::read("ingest", "token", source).map(Some).map_err(|e| SinkError::Ingest(format!("token: {}", e.reason)))
    }
}

/// The query parameters of a post: what `trackiq import`'s flags say on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestParams {
    /// A format name as `trackiq import` takes it; `auto` when not given.
    pub format: String,
    /// The runs' time (RFC 3339 or Unix seconds), overriding the tool's.
    pub at: Option<String>,
    /// The machine that ran the benchmarks (overrides the tool's; needed where it wrote none).
    pub hardware: Option<String>,
    pub workload: Option<String>,
    pub version_tag: Option<String>,
    pub git_commit: Option<String>,
    /// `label=key=value`, repeatable: added to every run (labels are part of a run's series).
    pub labels: BTreeMap<String, String>,
}

impl IngestParams {
    /// Parses a query string; the error names the parameter and what is wrong with it.
    pub fn parse(query: &str) -> Result<IngestParams, String> {
        let mut p = IngestParams { format: "auto".into(), at: None, hardware: None, workload: None, version_tag: None, git_commit: None, labels: BTreeMap::new() };
        let mut seen = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k != "label" && !seen.insert(k.to_string()) {
                return Err(format!("query parameter `{k}` is given twice"));
            }
            let v = v.trim().to_string();
            let slot = match k.as_ref() {
                "format" => {
                    p.format = v;
                    continue;
                }
                "label" => {
                    let (key, value) = v.split_once('=').filter(|(key, _)| !key.trim().is_empty()).ok_or_else(|| format!("label `{v}` is not key=value"))?;
                    p.labels.insert(key.trim().to_string(), value.trim().to_string());
                    continue;
                }
                "at" => &mut p.at,
                "hardware" => &mut p.hardware,
                "workload" => &mut p.workload,
                "version_tag" => &mut p.version_tag,
                "git_commit" => &mut p.git_commit,
                other => return Err(format!("unknown query parameter `{other}`; known: {}", PARAMS.join(", "))),
            };
            *slot = Some(v).filter(|v| !v.is_empty());
        }
        Ok(p)
    }
}

/// One run of a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedRun {
    pub run_id: String,
    pub series_id: String,
    pub workload: String,
    /// Samples the run carries.
    pub samples: usize,
    /// The history holds this run already (the same input posted before): not published again.
    pub already_in_history: bool,
}

/// The answer to a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingested {
    /// The format the body was read as (the detected one for `auto`).
    pub format: String,
    pub runs: Vec<IngestedRun>,
}

/// Why a post was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestFailure {
    /// The request is wrong: an unknown format or parameter, or an input its format cannot
    /// read (the message names the line or JSON path). 400.
    BadRequest(String),
    /// The pipeline cannot take it now: the broker is unreachable. 503, worth retrying.
    Unavailable(String),
    /// Anything else. 500.
    Internal(String),
}

/// Parses a body and publishes its runs (the binary's importers and producer).
pub type IngestFn = Arc<dyn Fn(IngestParams, Bytes) -> Pin<Box<dyn Future<Output = Result<Ingested, IngestFailure>> + Send>> + Send + Sync>;

/// The API's settings and its publisher, set where the dashboard runs inside `trackiq up`.
pub struct Ingest {
    token: Option<Secret>,
    max_body_bytes: usize,
    publish: IngestFn,
}

impl Ingest {
    /// Reads the token (an unset variable or unreadable file is an error naming it).
    pub fn new(config: &IngestConfig, publish: IngestFn) -> Result<Ingest, SinkError> {
        Ok(Ingest { token: config.read_token()?, max_body_bytes: config.max_body_bytes, publish })
    }

    /// Whether posts are accepted (a token is configured).
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Largest body accepted, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

/// The API's routes (state: the dashboard), outside the dashboard's token check.
pub fn router(d: &Shared) -> Router<Shared> {
    let limit = d.ingest.as_ref().map_or(0, |i| i.max_body_bytes);
    Router::new()
        .route(RUNS, post(runs).layer(DefaultBodyLimit::max(limit)))
        .route(OPENAPI, get(openapi))
        .layer(axum::middleware::map_response(headers))
}

/// No content sniffing, no framing, nothing cached.
async fn headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `{"error": ...}` with `status`.
pub(super) fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "error": error.into() }))).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// The bearer token of a request (the scheme is case-insensitive, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(error: &str, challenge: &'static str) -> Response {
    let mut res = refuse(StatusCode::UNAUTHORIZED, error);
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res
}

/// `POST /api/v1/runs`.
async fn runs(State(d): State<Shared>, req: Request) -> Response {
    let Some(ingest) = &d.ingest else {
        return refuse(StatusCode::NOT_FOUND, "this server reads a history without a pipeline (`trackiq ui`): post results to the dashboard address of `trackiq up`");
    };
    let Some(token) = &ingest.token else {
        return refuse(StatusCode::FORBIDDEN, "HTTP ingest is off on this server: set [ingest] token = { env = \"VAR\" } (or { file = \"/path\" }) in the configuration of `trackiq up`");
    };
    match bearer(req.headers()) {
        None => return unauthorized("a token is needed: `Authorization: Bearer <the [ingest] token>`", "Bearer"),
        Some(given) if !super::auth::equal(given, token.expose()) => return unauthorized("the bearer token is not the [ingest] token", "Bearer error=\"invalid_token\""),
        Some(_) => {}
    }
    take(ingest, req).await
}

/// A post let in (by the API's token, or the dashboard's own check for an upload): its query
/// parameters, its body, then [`publish`].
pub(super) async fn take(ingest: &Ingest, req: Request) -> Response {
    let params = match IngestParams::parse(req.uri().query().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    match read_body(ingest, req).await {
        Ok(body) => publish(ingest, params, body).await,
        Err(refused) => refused,
    }
}

/// The body of a post, refused (413) beyond `max_body_bytes` and when empty (400).
async fn read_body(ingest: &Ingest, req: Request) -> Result<Bytes, Response> {
    let too_large = || refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than [ingest] max_body_bytes = {} bytes", ingest.max_body_bytes));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > ingest.max_body_bytes as u64) {
        return Err(too_large());
    }
    let body = match Bytes::from_request(req, &()).await {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
        Err(e) => return Err(refuse(StatusCode::BAD_REQUEST, format!("reading the body: {}", e.body_text()))),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse(StatusCode::BAD_REQUEST, "the body is empty: post a result file (e.g. `curl --data-binary @results.json`)"));
    }
    Ok(body)
}

/// Parses and publishes a body: 202 with the runs published, 200 when the history held them
/// all already, else the failure's status with `{"error": ...}`.
async fn publish(ingest: &Ingest, params: IngestParams, body: Bytes) -> Response {
    let (format, size) = (params.format.clone(), body.len());
    match (ingest.publish)(params, body).await {
        Ok(done) => {
            let new = done.runs.iter().filter(|r| !r.already_in_history).count();
            info!(format = %done.format, bytes = size, runs = done.runs.len(), new, "results posted over HTTP");
            // Nothing new to publish: the history already holds every run of this input.
            let status = if new == 0 { StatusCode::OK } else { StatusCode::ACCEPTED };
            (status, axum::Json(done)).into_response()
        }
        Err(IngestFailure::BadRequest(e)) => refuse(StatusCode::BAD_REQUEST, e),
        Err(IngestFailure::Unavailable(e)) => {
            warn!(format = %format, error = %e, "posted results could not be published");
            let mut res = refuse(StatusCode::SERVICE_UNAVAILABLE, e);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            res
        }
        Err(IngestFailure::Internal(e)) => {
            warn!(format = %format, error = %e, "posted results failed");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("assets/openapi.json is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "OpenAPI 3.1: {}", doc["openapi"]);
        let mut listed: Vec<(String, String)> = Vec::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys().filter(|k| *k != "parameters") {
                listed.push((method.clone(), path.clone()));
            }
        }
        listed.sort();
        let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        served.sort();
        assert_eq!(listed, served);
        // The post: bearer security, every query parameter, a JSON body with a BMF example, every answer.
        let post = &doc["paths"][RUNS]["post"];
        let scheme = post["security"][0].as_object().and_then(|s| s.keys().next()).expect("the post names a security scheme");
        let scheme = &doc["components"]["securitySchemes"][scheme];
        assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")));
        let params: Vec<&str> = post["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(params, PARAMS);
        let example = &post["requestBody"]["content"]["application/json"]["examples"]["bmf"]["value"];
        assert!(example.as_object().is_some_and(|o| o.values().all(|m| m.as_object().is_some_and(|m| m.values().all(|x| x["value"].is_number())))), "a BMF example: {example}");
        for status in ["200", "202", "400", "401", "403", "404", "413", "500", "503"] {
            assert!(post["responses"][status]["description"].is_string(), "answer {status} is documented");
        }
        assert!(doc["paths"][OPENAPI]["get"]["security"].as_array().is_some_and(|s| s.iter().any(|s| s.as_object().is_some_and(|o| o.is_empty()))), "the document itself needs no token");
    }

    #[test]
    fn query_parameters_parse_or_say_what_is_wrong() {
        let p = IngestParams::parse("format=bmf&git_commit=abc123&hardware=ci%20box&label=pr%3D42&label=team=perf&version_tag=").unwrap();
        assert_eq!((p.format.as_str(), p.git_commit.as_deref(), p.hardware.as_deref(), p.version_tag), ("bmf", Some("abc123"), Some("ci box"), None));
        assert_eq!(p.labels, BTreeMap::from([("pr".to_string(), "42".to_string()), ("team".to_string(), "perf".to_string())]));
        assert_eq!(IngestParams::parse("").unwrap().format, "auto");
        let e = IngestParams::parse("commit=abc").unwrap_err();
        assert!(e.contains("unknown query parameter `commit`") && e.contains("git_commit"), "{e}");
        assert!(IngestParams::parse("label=nokey").unwrap_err().contains("label `nokey` is not key=value"));
        assert!(IngestParams::parse("format=bmf&format=auto").unwrap_err().contains("`format` is given twice"));
    }

    #[test]
    fn an_unset_token_variable_is_named_and_no_token_is_off() {
        let config = IngestConfig { token: Some(SecretSource::Env("TRACKIQ_TEST_UNSET_INGEST_TOKEN".into())), ..IngestConfig::default() };
        let err = config.read_token().unwrap_err().to_string();
        assert_eq!(err, "[ingest] token: environment variable TRACKIQ_TEST_UNSET_INGEST_TOKEN is not set");
        assert!(IngestConfig::default().read_token().unwrap().is_none());
        assert_eq!(IngestConfig::default().max_body_bytes, 16 << 20);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_nothing_else_is_a_token() {
        let h = |v: &str| HeaderMap::from_iter([(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap())]);
        assert_eq!(bearer(&h("Bearer t0k")), Some("t0k"));
        assert_eq!(bearer(&h("bearer t0k")), Some("t0k"));
        assert_eq!(bearer(&h("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}

//! The OTLP/HTTP metrics receiver: `POST /v1/metrics` with an `ExportMetricsServiceRequest`
//! as protobuf (`application/x-protobuf`, what the SDKs' `otlp-proto-http` exporters send) or
//! JSON (`application/json`). Each resource of a request is one [`Observation`] of the target
//! it names (`service.name` is the workload, `host.name` or `service.instance.id` the
//! hardware), windowed like scrapes. gRPC (4317) is not served: tonic's server would add a
//! second HTTP/2 stack to the build for what the HTTP exporters already carry.
//!
//! Gauges and non-monotonic sums are values; monotonic sums are rates (cumulative: between two
//! requests; delta: over their own interval); histograms and exponential histograms are
//! buckets (negative buckets of an exponential histogram are left out: latencies are not
//! negative). Summaries are left out (quantiles cannot be combined).
//!
//! A malformed body is answered 400 naming what was wrong (the protobuf field, the JSON
//! position, or the metric and point); a body over `max_body_bytes` 413; without the bearer
//! token (when one is configured) 401. A non-loopback `listen` needs a token to start.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trackiq_infra::secret::Secret;

use super::config::OtlpConfig;
use super::otlp_decode;
use super::service::{Input, Source};
use crate::error::ProducerError;

/// Where metrics are posted (OTLP/HTTP's path).
pub const METRICS_PATH: &str = "/v1/metrics";

/// The receiver's settings and where it sends what it reads.
#[derive(Clone)]
pub struct Receiver {
    config: Arc<OtlpConfig>,
    token: Option<Arc<Secret>>,
    out: mpsc::Sender<Input>,
}

impl Receiver {
    /// Reads the token; refuses a non-loopback address without one.
    pub fn new(config: &OtlpConfig, out: mpsc::Sender<Input>) -> Result<Self, ProducerError> {
        let token = match &config.token {
            Some(source) => Some(Arc::new(Secret::read("otlp", "token", source).map_err(|e| ProducerError::Telemetry(e.to_string()))?)),
            None => None,
        };
        check_listen(config, token.is_some())?;
        Ok(Receiver { config: Arc::new(config.clone()), token, out })
    }
}

/// A receiver reachable from other machines must authenticate its senders.
pub fn check_listen(config: &OtlpConfig, has_token: bool) -> Result<(), ProducerError> {
    let addr: SocketAddr = config.listen.parse().map_err(|_| ProducerError::Usage(format!("[otlp] listen `{}` is not host:port", config.listen)))?;
    if !addr.ip().is_loopback() && !has_token {
        return Err(ProducerError::Usage(format!(
            "[otlp] listen {addr} is reachable from other machines: set [otlp] token = {{ env = \"VAR\" }} (senders present it as a bearer token), or listen on 127.0.0.1"
        )));
    }
    Ok(())
}

/// Serves the receiver on `listener` until `stop`.
pub async fn serve(receiver: Receiver, listener: tokio::net::TcpListener, stop: CancellationToken) -> Result<(), ProducerError> {
    let limit = receiver.config.max_body_bytes;
    let app = Router::new().route(METRICS_PATH, post(metrics)).layer(DefaultBodyLimit::max(limit)).with_state(receiver);
    axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await.map_err(|e| ProducerError::Telemetry(format!("the OTLP receiver: {e}")))
}

fn refuse(status: StatusCode, error: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

async fn metrics(State(r): State<Receiver>, headers: HeaderMap, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    if let Some(token) = &r.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.split_once(' ')).filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim());
        if !given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.expose().as_bytes()))) {
            return refuse(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer ...; OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20...)".into());
        }
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return refuse(e.status(), format!("the body: {} (at most {} bytes)", e.body_text(), r.config.max_body_bytes)),
    };
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    let request = match otlp_decode::decode(&body, json) {
        Ok(req) => req,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let attributes = otlp_decode::Attributes { version: &r.config.version_attributes, labels: &r.config.label_attributes };
    let observations = match otlp_decode::observations(&request, &attributes, trackiq_schemas::now_us()) {
        Ok(o) => o,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    for obs in observations {
        if r.out.send(Input::Observed { source: Source::Otlp, obs }).await.is_err() {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "the pipeline is stopping; retry later".into());
        }
    }
    let answer = ExportMetricsServiceResponse { partial_success: None };
    if json {
        (StatusCode::OK, axum::Json(answer)).into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], answer.encode_to_vec()).into_response()
    }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;

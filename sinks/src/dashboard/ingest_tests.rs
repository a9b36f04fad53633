//! The ingest API's answers over real HTTP, with a stand-in publisher: which status each
//! refusal gets, and that the API's token and the dashboard's are separate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use trackiq_infra::{DataStore, Shutdown};

use super::ingest::{Ingest, IngestConfig, IngestFailure, IngestFn, IngestParams, Ingested, IngestedRun, RUNS};
use super::{Dashboard, DashboardConfig, serve};
use crate::notify::SecretSource;

const TOKEN: &str = "ingest-7d1e";
const UI_TOKEN: &str = "ui-0b5c";

/// Answers by `format`: `bmf` published, `again` already in the history, `down` 503, else 400.
fn stand_in() -> IngestFn {
    Arc::new(|p: IngestParams, body: Bytes| {
        Box::pin(async move {
            let run = |again| IngestedRun { run_id: "r1".into(), series_id: "s1".into(), workload: "w".into(), samples: body.len(), already_in_history: again };
            match p.format.as_str() {
                "bmf" => Ok(Ingested { format: "bmf".into(), runs: vec![run(false)] }),
                "again" => Ok(Ingested { format: "bmf".into(), runs: vec![run(true)] }),
                "down" => Err(IngestFailure::Unavailable("the broker at 127.0.0.1:1 is unreachable".into())),
                other => Err(IngestFailure::BadRequest(format!("unknown format `{other}`"))),
            }
        })
    })
}

/// Serves a dashboard on a free loopback port; `ingest`: the API's token (a file) if any.
async fn start(dir: &std::path::Path, name: &str, ingest: Option<Option<&str>>, ui_token: bool) -> (String, trackiq_infra::ShutdownTrigger) {
    let store = DataStore::open(&format!("file://{}", dir.join("data").display())).unwrap();
    let secret = |value: &str, file: &str| {
        let path = dir.join(file);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        SecretSource::File(path)
    };
    let config = DashboardConfig { token: ui_token.then(|| secret(UI_TOKEN, &format!("{name}-ui"))), ..DashboardConfig::default() };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut d = Dashboard::new(store, config, addr).unwrap();
    if let Some(token) = ingest {
        let config = IngestConfig { token: token.map(|t| secret(t, &format!("{name}-ingest"))), max_body_bytes: 64 };
        d.ingest = Some(Ingest::new(&config, stand_in()).unwrap());
    }
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let at = format!("http://{}", listener.local_addr().unwrap());
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(serve(d, listener, shutdown));
    (at, trigger)
}

async fn post(url: &str, bearer: Option<&str>, body: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_string());
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_refusal_has_its_status_and_the_two_tokens_are_separate() {
    let dir = tempfile_dir();
    // `trackiq ui`: no pipeline.
    let (ui, _stop_ui) = start(&dir, "ui", None, false).await;
    let (status, _, body) = post(&format!("{ui}{RUNS}"), Some(TOKEN), "{}").await;
    assert!(status == 404 && body["error"].as_str().unwrap().contains("trackiq ui"), "{status} {body}");
    // `trackiq up` without [ingest] token.
    let (off, _stop_off) = start(&dir, "off", Some(None), false).await;
    let (status, _, body) = post(&format!("{off}{RUNS}?format=bmf"), Some(TOKEN), "{}").await;
    assert!(status == 403 && body["error"].as_str().unwrap().contains("[ingest] token"), "{status} {body}");

    // With both tokens: each opens only its own door.
    let (at, _stop) = start(&dir, "on", Some(Some(TOKEN)), true).await;
    let runs = format!("{at}{RUNS}?format=bmf");
    let (status, headers, body) = post(&runs, None, "{}").await;
    assert!(status == 401 && headers["www-authenticate"] == "Bearer" && body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{status} {body}");
    let (status, headers, _) = post(&runs, Some(UI_TOKEN), "{}").await;
    assert!(status == 401 && headers["www-authenticate"].to_str().unwrap().contains("invalid_token"), "the dashboard's token does not post: {status}");
    let (status, headers, body) = post(&runs, Some(TOKEN), "{}").await;
    assert_eq!((status, body["runs"][0]["run_id"].as_str(), body["runs"][0]["samples"].as_u64()), (202, Some("r1"), Some(2)), "{body}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = reqwest::Client::new().get(format!("{at}/runs")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 401, "the ingest token does not read the dashboard");
    let doc = reqwest::get(format!("{at}/api/v1/openapi.json")).await.unwrap();
    assert_eq!(doc.status().as_u16(), 200, "the OpenAPI document needs no token");
    assert_eq!(doc.json::<serde_json::Value>().await.unwrap()["openapi"], "3.1.0");

    let (status, _, body) = post(&format!("{at}{RUNS}?format=again"), Some(TOKEN), "{}").await;
    assert!(status == 200 && body["runs"][0]["already_in_history"] == true, "{status} {body}");
    let (status, headers, body) = post(&format!("{at}{RUNS}?format=down"), Some(TOKEN), "{}").await;
    assert!(status == 503 && headers["retry-after"] == "10" && body["error"].as_str().unwrap().contains("unreachable"), "{status} {body}");
    let (status, _, body) = post(&format!("{at}{RUNS}?format=nope"), Some(TOKEN), "{}").await;
    assert!(status == 400 && body["error"] == "unknown format `nope`", "{status} {body}");
    let (status, _, body) = post(&format!("{at}{RUNS}?commit=abc"), Some(TOKEN), "{}").await;
    assert!(status == 400 && body["error"].as_str().unwrap().contains("unknown query parameter `commit`"), "{status} {body}");
    let (status, _, body) = post(&runs, Some(TOKEN), " \n").await;
    assert!(status == 400 && body["error"].as_str().unwrap().contains("the body is empty"), "{status} {body}");
    let (status, _, body) = post(&runs, Some(TOKEN), &"x".repeat(65)).await;
    assert!(status == 413 && body["error"].as_str().unwrap().contains("max_body_bytes = 64"), "{status} {body}");
    let (status, _, _) = post(&runs, Some(TOKEN), &"x".repeat(64)).await;
    assert_eq!(status, 202, "the limit itself is accepted");
    // Without a Content-Length (chunked), the limit holds while the body is read.
    let answer = chunked(&at, &[&"y".repeat(40), &"y".repeat(40)]).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("max_body_bytes = 64"), "{answer}");
    assert!(chunked(&at, &[&"y".repeat(40), &"y".repeat(20)]).await.starts_with("HTTP/1.1 202"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The raw answer to a chunked post of `chunks` (no Content-Length).
async fn chunked(at: &str, chunks: &[&str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(at.trim_start_matches("http://")).await.unwrap();
    let mut req = format!("POST {RUNS}?format=bmf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for c in chunks {
        req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    req.push_str("0\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer).await;
    answer
}

/// A fresh directory under the system's temporary one.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trackiq-ingest-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! Real local endpoints for the notification channels: a Slack incoming-webhook receiver
//! that checks the Block Kit contract, a GitHub REST receiver that checks paths, headers,
//! payloads and the issue sequence, and real SMTP servers (the one built with the tests,
//! [`SmtpServer`], and Python's aiosmtpd where installed) whose delivered messages the test
//! reads back.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub use crate::smtp_server::SmtpServer;


/// Why a body breaks Slack's Block Kit rules, if it does.
pub fn block_kit_error(body: &Value) -> Option<String> {
    let text = body["text"].as_str()?;
    if text.is_empty() {
        return Some("`text` (the notification fallback) is empty".into());
    }
    let attachment = &body["attachments"][0];
    let colour = attachment["color"].as_str().unwrap_or_default();
    if !(colour.len() == 7 && colour.starts_with('#') && colour[1..].chars().all(|c| c.is_ascii_hexdigit())) {
        return Some(format!("attachment colour `{colour}` is not #rrggbb"));
    }
    let blocks = attachment["blocks"].as_array()?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Some(format!("{} blocks (1 to 50 allowed)", blocks.len()));
    }
    for b in blocks {
        let kind = b["type"].as_str().unwrap_or_default();
        let check_text = |t: &Value, max: usize| -> Option<String> {
            let ty = t["type"].as_str().unwrap_or_default();
            let s = t["text"].as_str().unwrap_or_default();
            if !matches!(ty, "plain_text" | "mrkdwn") || s.is_empty() || s.chars().count() > max {
                return Some(format!("{kind} block: text object of type `{ty}` with {} characters (1 to {max})", s.chars().count()));
            }
            None
        };
        let err = match kind {
            "header" if b["text"]["type"] != "plain_text" => Some("header text must be plain_text".into()),
            "header" => check_text(&b["text"], 150),
            "section" => {
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                if b.get("text").is_none() && fields.is_empty() {
                    Some("a section needs text or fields".into())
                } else if fields.len() > 10 {
                    Some(format!("{} section fields (at most 10)", fields.len()))
                } else {
                    b.get("text").and_then(|t| check_text(t, 3000)).or_else(|| fields.iter().find_map(|f| check_text(f, 2000)))
                }
            }
            "context" => b["elements"].as_array().filter(|e| !e.is_empty() && e.len() <= 10).map_or(Some("context needs 1 to 10 elements".into()), |e| e.iter().find_map(|x| check_text(x, 3000))),
            "actions" => b["elements"].as_array().and_then(|e| {
                e.iter().find_map(|x| {
                    let url = x["url"].as_str().unwrap_or_default();
                    (x["type"] != "button" || !(url.starts_with("http://") || url.starts_with("https://")) || x["text"]["type"] != "plain_text")
                        .then(|| format!("bad button {x}"))
                })
            }),
            "divider" => None,
            other => Some(format!("unknown block type `{other}`")),
        };
        if err.is_some() {
            return err;
        }
    }
    None
}

/// A Slack incoming webhook at `/services/T000/B000/<key>`: bodies that pass the Block Kit
/// checks are kept (200 `ok`), others get 400 `invalid_blocks`; while down, 503.
pub struct SlackReceiver {
    pub url: String,
    pub messages: Arc<Mutex<Vec<Value>>>,
    pub attempts: Arc<AtomicU32>,
    pub rejected: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

impl SlackReceiver {
    pub fn start(key: &str) -> SlackReceiver {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (messages, attempts, rejected, down): (Arc<Mutex<Vec<Value>>>, Arc<AtomicU32>, Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) = Default::default();
        let (m, a, r, d) = (messages.clone(), attempts.clone(), rejected.clone(), down.clone());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let path = format!("/services/T000/B000/{key}");
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            &path,
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let (m, a, r, d) = (m.clone(), a.clone(), r.clone(), d.clone());
                async move {
                    a.fetch_add(1, Ordering::SeqCst);
                    if d.load(Ordering::SeqCst) {
                        return (StatusCode::SERVICE_UNAVAILABLE, "down".to_string());
                    }
                    if let Some(e) = block_kit_error(&body).or_else(|| body.get("text").is_none().then(|| "no `text`".to_string())) {
                        r.lock().unwrap().push(e);
                        return (StatusCode::BAD_REQUEST, "invalid_blocks".to_string());
                    }
                    m.lock().unwrap().push(body);
                    (StatusCode::OK, "ok".to_string())
                }
            }),
        );
        rt.spawn(async move { axum::serve(listener, app).await });
        SlackReceiver { url, messages, attempts, rejected, down, _rt: rt }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Header texts of the messages received, in order.
    pub fn headers(&self) -> Vec<String> {
        self.messages.lock().unwrap().iter().map(|m| m["attachments"][0]["blocks"][0]["text"]["text"].as_str().unwrap_or_default().to_string()).collect()
    }
}

/// One request the GitHub receiver accepted: method, path, JSON body.
pub type GithubCall = (String, String, Value);

/// GitHub's REST API for one repository's issues. Requests without the token, the API
/// version header, the JSON media type or a user agent get 401/400 as GitHub answers;
/// the first `fail_first` requests get 502.
pub struct GithubReceiver {
    pub api: String,
    pub calls: Arc<Mutex<Vec<GithubCall>>>,
    pub refused: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl GithubReceiver {
    pub fn start(repo: &str, token: &str, fail_first: u32) -> GithubReceiver {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (calls, refused): (Arc<Mutex<Vec<GithubCall>>>, Arc<Mutex<Vec<String>>>) = Default::default();
        let seen = Arc::new(AtomicU32::new(0));
        let (c, r, token, repo) = (calls.clone(), refused.clone(), token.to_string(), repo.to_string());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let handler = move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (c, r, token, repo, seen) = (c.clone(), r.clone(), token.clone(), repo.clone(), seen.clone());
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let refuse = |status: StatusCode, why: String| {
                    r.lock().unwrap().push(why.clone());
                    (status, axum::Json(json!({"message": why})))
                };
                if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return (StatusCode::BAD_GATEWAY, axum::Json(json!({"message": "Server Error"})));
                }
                if h("authorization") != format!("Bearer {token}") {
                    return refuse(StatusCode::UNAUTHORIZED, "Bad credentials".into());
                }
                if h("x-github-api-version") != "2022-11-28" || h("accept") != "application/vnd.github+json" || !h("user-agent").starts_with("trackiq/") {
                    return refuse(StatusCode::BAD_REQUEST, format!("headers: api version `{}`, accept `{}`, user agent `{}`", h("x-github-api-version"), h("accept"), h("user-agent")));
                }
                let Ok(body) = serde_json::from_slice::<Value>(&body) else { return refuse(StatusCode::BAD_REQUEST, "Problems parsing JSON".into()) };
                let path = uri.path().to_string();
                let rest = path.strip_prefix(&format!("/repos/{repo}/issues")).map(str::to_string);
                let parts: Vec<String> = rest.clone().unwrap_or_default().split('/').filter(|p| !p.is_empty()).map(str::to_string).collect();
                let mut calls = c.lock().unwrap();
                let opened = calls.iter().filter(|(m, p, _)| m == "POST" && p.ends_with("/issues")).count() as u64;
                let known = |n: &str| n.parse::<u64>().is_ok_and(|n| n >= 1 && n <= opened);
                let ok = match (method.as_str(), rest.is_some(), parts.as_slice()) {
                    ("POST", true, []) => body["title"].as_str().is_some_and(|t| !t.is_empty()) && body["body"].is_string() && body["labels"].is_array(),
                    ("POST", true, [n, c]) if c == "comments" => known(n) && body["body"].as_str().is_some_and(|b| !b.is_empty()),
                    ("PATCH", true, [n]) => known(n) && body["state"] == "closed",
                    _ => return refuse(StatusCode::NOT_FOUND, format!("Not Found: {method} {path}")),
                };
                if !ok {
                    drop(calls);
                    return refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("Validation Failed: {method} {path} {body}"));
                }
                calls.push((method.to_string(), path, body));
                let number = if parts.is_empty() { opened + 1 } else { parts[0].parse().unwrap_or(0) };
                (if parts.is_empty() { StatusCode::CREATED } else { StatusCode::OK }, axum::Json(json!({"number": number, "id": number * 1000})))
            }
        };
        let app = axum::Router::new().fallback(handler);
        rt.spawn(async move { axum::serve(listener, app).await });
        GithubReceiver { api, calls, refused, _rt: rt }
    }

    /// `METHOD path` of every accepted call, in order.
    pub fn sequence(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(m, p, _)| format!("{m} {p}")).collect()
    }
}

/// Python's aiosmtpd on loopback, where installed: a second SMTP implementation for the email
/// channel, that requires AUTH LOGIN/PLAIN with `user`/`password` and writes each delivered
/// message to `<dir>/NNNN.eml` like [`SmtpServer`].
pub struct AiosmtpdServer {
    pub dir: PathBuf,
    child: Child,
}

const SMTP_SERVER_PY: &str = r#"
import os, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
out, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
class Save:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith(".eml")])
        tmp = os.path.join(out, ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(out, "%04d.eml" % n))
        return "250 Message accepted for delivery"
def check(server, session, envelope, mechanism, data):
    return AuthResult(success=(data.login == user and data.password == password))
c = Controller(Save(), hostname="127.0.0.1", port=port, authenticator=check, auth_required=True, auth_require_tls=False)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl AiosmtpdServer {
    /// Starts the server on `port` (aiosmtpd must be installed: ask `skips::have` first).
    pub fn start(dir: &Path, port: u16, user: &str, password: &str) -> AiosmtpdServer {
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new("python3")
            .args(["-W", "ignore", "-c", SMTP_SERVER_PY, dir.to_str().unwrap(), &port.to_string(), user, password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // aiosmtpd warns at every session that AUTH runs without TLS (as asked).
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "Python's aiosmtpd did not start");
        AiosmtpdServer { dir: dir.to_path_buf(), child }
    }
}

impl Drop for AiosmtpdServer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SMTP server a test delivers to: the one built with the tests, or aiosmtpd.
pub enum MailServer {
    Builtin(SmtpServer),
    Aiosmtpd(AiosmtpdServer),
}

impl MailServer {
    /// aiosmtpd where `skips::have` finds it (counted as a skipped part where it does not),
    /// else the built-in server: the test runs either way.
    pub fn aiosmtpd_or_builtin(part: &str, dir: &Path, port: u16, user: &str, password: &str) -> MailServer {
        if crate::skips::have(part, &crate::skips::AIOSMTPD) {
            MailServer::Aiosmtpd(AiosmtpdServer::start(dir, port, user, password))
        } else {
            MailServer::Builtin(SmtpServer::start(dir, port, user, password))
        }
    }

    /// The delivered messages, raw (RFC 5322), in order.
    pub fn messages(&self) -> Vec<String> {
        match self {
            MailServer::Builtin(s) => s.messages(),
            MailServer::Aiosmtpd(s) => crate::smtp_server::read_messages(&s.dir),
        }
    }
}

//! The few W3C WebDriver commands the browser test uses, over reqwest (JSON over HTTP to
//! chromedriver). Not fantoccini or thirtyfour: both depend on the `webdriver` crate, whose
//! ICU 1.x stack turns on syn features the normal build does not use, so `cargo test` would
//! rebuild every proc-macro crate after `cargo run` (see `build_sharing.rs`).

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// W3C name of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver error: the command, and the driver's `error` and `message`.
#[derive(Debug)]
pub struct WdError(pub String);

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One browser session.
pub struct Session {
    http: reqwest::Client,
    base: String,
}

/// An element of the current page.
pub struct Element<'s> {
    session: &'s Session,
    id: String,
}

impl Session {
    /// Starts a session at the driver `driver` (e.g. `http://127.0.0.1:9515`) with `capabilities`.
    pub async fn start(driver: &str, capabilities: Value) -> Result<Session, WdError> {
        let http = reqwest::Client::new();
        let probe = Session { http: http.clone(), base: driver.trim_end_matches('/').to_string() };
        let v = probe.send(reqwest::Method::POST, "/session", Some(json!({ "capabilities": { "alwaysMatch": capabilities } }))).await?;
        let id = v["sessionId"].as_str().ok_or_else(|| WdError(format!("no session id in {v}")))?;
        Ok(Session { http, base: format!("{}/session/{id}", probe.base) })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let what = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| WdError(format!("{what}: {e}")))?;
        let ok = r.status().is_success();
        let v: Value = r.json().await.map_err(|e| WdError(format!("{what}: {e}")))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if !ok {
            return Err(WdError(format!("{what}: {} ({})", value["error"].as_str().unwrap_or("error"), value["message"].as_str().unwrap_or(""))));
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> Result<Value, WdError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WdError> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) -> Result<(), WdError> {
        self.post("/url", json!({ "url": url })).await.map(|_| ())
    }

    pub async fn current_url(&self) -> Result<String, WdError> {
        Ok(self.get("/url").await?.as_str().unwrap_or_default().to_string())
    }

    pub async fn source(&self) -> Result<String, WdError> {
        Ok(self.get("/source").await?.as_str().unwrap_or_default().to_string())
    }

    fn element(&self, v: &Value) -> Result<Element<'_>, WdError> {
        let id = v[ELEMENT_KEY].as_str().ok_or_else(|| WdError(format!("not an element: {v}")))?;
        Ok(Element { session: self, id: id.to_string() })
    }

    /// The first element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element<'_>, WdError> {
        let v = self.post("/element", json!({ "using": "css selector", "value": css })).await?;
        self.element(&v)
    }

    /// Every element matching the CSS selector.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, WdError> {
        let v = self.post("/elements", json!({ "using": "css selector", "value": css })).await?;
        v.as_array().into_iter().flatten().map(|e| self.element(e)).collect()
    }

    /// The first element matching `css` once there is one, polling like WebDriver's own waits.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>, WdError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if Instant::now() >= deadline => return Err(WdError(format!("`{css}` did not appear within {timeout:?}: {e}"))),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The page as PNG.
    pub async fn screenshot(&self) -> Result<Vec<u8>, WdError> {
        let b64 = self.get("/screenshot").await?;
        base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).map_err(|e| WdError(format!("screenshot: {e}")))
    }

    /// The browser console since the last call (chromedriver, with `goog:loggingPrefs`).
    pub async fn browser_log(&self) -> Result<Vec<Value>, WdError> {
        Ok(self.post("/se/log", json!({ "type": "browser" })).await?.as_array().cloned().unwrap_or_default())
    }

    /// The value of `script` (a function body; `return` gives the value) run in the page.
    pub async fn execute(&self, script: &str) -> Result<Value, WdError> {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Real pointer input (W3C actions): `steps` are a mouse's actions, e.g.
    /// `{"type": "pointerMove", "x": 10, "y": 0, "origin": "viewport"}`, `pointerDown`, `pause`.
    pub async fn pointer(&self, steps: Vec<Value>) -> Result<(), WdError> {
        let actions = json!({ "actions": [{ "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": steps }] });
        self.post("/actions", actions).await?;
        self.send(reqwest::Method::DELETE, "/actions", None).await.map(|_| ())
    }

    /// The text of an open alert; an error when none is open.
    pub async fn alert_text(&self) -> Result<String, WdError> {
        Ok(self.get("/alert/text").await?.as_str().unwrap_or_default().to_string())
    }

    pub async fn close(self) -> Result<(), WdError> {
        self.send(reqwest::Method::DELETE, "", None).await.map(|_| ())
    }
}

impl Element<'_> {
    async fn get(&self, what: &str) -> Result<Value, WdError> {
        self.session.get(&format!("/element/{}/{what}", self.id)).await
    }

    pub async fn text(&self) -> Result<String, WdError> {
        Ok(self.get("text").await?.as_str().unwrap_or_default().to_string())
    }

    pub async fn attr(&self, name: &str) -> Result<Option<String>, WdError> {
        Ok(self.get(&format!("attribute/{name}")).await?.as_str().map(str::to_string))
    }

    pub async fn is_enabled(&self) -> Result<bool, WdError> {
        Ok(self.get("enabled").await?.as_bool().unwrap_or(false))
    }

    pub async fn is_displayed(&self) -> Result<bool, WdError> {
        Ok(self.get("displayed").await?.as_bool().unwrap_or(false))
    }

    pub async fn click(&self) -> Result<(), WdError> {
        self.session.post(&format!("/element/{}/click", self.id), json!({})).await.map(|_| ())
    }

    pub async fn send_keys(&self, text: &str) -> Result<(), WdError> {
        self.session.post(&format!("/element/{}/value", self.id), json!({ "text": text })).await.map(|_| ())
    }
}

//! GitHub issues over REST v3: open an issue for a series that starts regressing, comment
//! when it repeats or worsens, close it with a comment when every alert of the series is
//! resolved. Requests carry the token, the API version and a user agent, as GitHub asks.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::Failure;
use super::config::Secret;
use crate::error::SinkError;

/// The REST API version requested.
pub const API_VERSION: &str = "2022-11-28";

/// One repository's issues.
pub struct Issues {
    client: reqwest::Client,
    api: String,
    repo: String,
    token: Secret,
    labels: Vec<String>,
}

impl Issues {
    pub fn new(channel: &str, api: &str, repo: &str, token: Secret, labels: Vec<String>, timeout: Duration) -> Result<Issues, SinkError> {
        if repo.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return Err(SinkError::NotifyConfig(format!("channel `{channel}`: repo `{repo}` is not `owner/name`")));
        }
        url::Url::parse(api).map_err(|e| SinkError::NotifyConfig(format!("channel `{channel}`: api_url `{api}`: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("trackiq/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::NotifyConfig(e.to_string()))?;
        Ok(Issues { client, api: api.trim_end_matches('/').to_string(), repo: repo.to_string(), token, labels })
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value, Failure> {
        let url = format!("{}/repos/{}{path}", self.api, self.repo);
        let what = format!("{method} /repos/{}{path}", self.repo);
        let r = self
            .client
            .request(method, &url)
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("{what}: {}", e.without_url())))?;
        let status = r.status();
        if status.is_success() {
            return r.json().await.map_err(|e| Failure::Transient(format!("{what}: reading the answer: {}", e.without_url())));
        }
        let limited = status.as_u16() == 403 && r.headers().get("x-ratelimit-remaining").is_some_and(|v| v == "0");
        let message = r.json::<Value>().await.ok().and_then(|v| v["message"].as_str().map(str::to_string)).unwrap_or_default();
        let reason = format!("{what}: HTTP {status} {message}");
        if status.is_server_error() || limited || status.as_u16() == 429 { Err(Failure::Transient(reason)) } else { Err(Failure::Refused(reason)) }
    }

    /// Opens an issue; returns its number.
    pub async fn open(&self, title: &str, body: &str) -> Result<u64, Failure> {
        let v = self.call(Method::POST, "/issues", json!({"title": title, "body": body, "labels": self.labels})).await?;
        v["number"].as_u64().ok_or_else(|| Failure::Refused("POST /issues: the answer has no issue number".into()))
    }

    /// Comments on issue `n`.
    pub async fn comment(&self, n: u64, body: &str) -> Result<(), Failure> {
        self.call(Method::POST, &format!("/issues/{n}/comments"), json!({"body": body})).await.map(|_| ())
    }

    /// Closes issue `n` as completed.
    pub async fn close(&self, n: u64) -> Result<(), Failure> {
        self.call(Method::PATCH, &format!("/issues/{n}"), json!({"state": "closed", "state_reason": "completed"})).await.map(|_| ())
    }
}

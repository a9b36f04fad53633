//! `trackiq bench http`: one HTTP request per iteration. A non-2xx status, a timeout or a
//! connection error is a failed iteration, counted by reason; the latency is measured
//! either way (time to the full response body, or to the error). The server is usually
//! elsewhere: this machine's power is attributed to it only with `--server-local`.

use std::sync::Arc;
use std::time::Duration;

use crate::bench::Workload;
use crate::error::ProducerError;

/// The request to send.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: String,
    pub method: String,
    /// `Name: value` headers.
    pub headers: Vec<String>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct HttpWorkload {
    client: reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: Option<Arc<Vec<u8>>>,
    /// The server runs on this machine, so this machine's power is the work's.
    server_local: bool,
}

impl HttpWorkload {
    /// Checks the request (URL, method, headers) and builds a client.
    pub fn new(r: &HttpRequest) -> Result<Self, ProducerError> {
        let bad = |what: &str| ProducerError::Usage(what.to_string());
        let url = reqwest::Url::parse(&r.url).map_err(|e| bad(&format!("invalid --url `{}`: {e}", r.url)))?;
        let method = reqwest::Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).map_err(|_| bad(&format!("invalid --method `{}`", r.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for h in &r.headers {
            let (k, v) = h.split_once(':').ok_or_else(|| bad(&format!("invalid --header `{h}`: expected `Name: value`")))?;
            let name = reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| bad(&format!("invalid header name in `{h}`")))?;
            let value = reqwest::header::HeaderValue::from_str(v.trim()).map_err(|_| bad(&format!("invalid header value in `{h}`")))?;
            headers.append(name, value);
        }
        let client = reqwest::Client::builder().timeout(r.timeout).build().map_err(|e| bad(&e.to_string()))?;
        Ok(HttpWorkload { client, method, url, headers, body: r.body.clone().map(Arc::new), server_local: false })
    }

    /// Declares that the server runs on this machine (`--server-local`): its runs then carry
    /// this machine's power and energy. By default they do not, the server being elsewhere.
    pub fn server_local(mut self, local: bool) -> Self {
        self.server_local = local;
        self
    }
}

impl Workload for HttpWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-http"
    }

    fn power_is_local(&self) -> bool {
        self.server_local
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        let mut req = self.client.request(self.method.clone(), self.url.clone()).headers(self.headers.clone());
        if let Some(b) = &self.body {
            req = req.body(b.as_ref().clone());
        }
        Ok(match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(_) if status.is_success() => None,
                    Ok(_) => Some(format!("HTTP {}", status.as_u16())),
                    Err(e) if e.is_timeout() => Some("timeout".into()),
                    Err(_) => Some("body read error".into()),
                }
            }
            Err(e) if e.is_timeout() => Some("timeout".into()),
            Err(e) if e.is_connect() => Some("connection error".into()),
            Err(_) => Some("request error".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_the_servers_only_when_it_is_local() {
        let r = HttpRequest { url: "http://127.0.0.1:1/".into(), method: "get".into(), headers: vec![], body: None, timeout: Duration::from_secs(1) };
        let w = HttpWorkload::new(&r).unwrap();
        assert!(!w.power_is_local(), "a remote server by default");
        assert!(w.server_local(true).power_is_local());
    }
}

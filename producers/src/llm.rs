//! `trackiq bench llm`: OpenAI-compatible `/v1/completions` and `/v1/chat/completions` with
//! `stream: true`, measured as vLLM's `bench serve` defines it. Per request:
//! - TTFT: time to the first chunk with non-empty content;
//! - ITL: every gap between successive content chunks;
//! - E2EL: time to the end of the stream;
//! - output tokens: `usage.completion_tokens` when the server sends it, else content chunks;
//! - TPOT = (E2EL − TTFT) / (output tokens − 1);
//! - `slo_met` 1 when every configured SLO holds (goodput counts those).
//!
//! The server is usually elsewhere: this machine's power is attributed to it only with
//! `--server-local`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::Workload;
use crate::error::ProducerError;

/// Which OpenAI endpoint shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Completions,
    Chat,
}

/// Service-level objectives a request must all meet to count for goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
}

impl Slo {
    /// Parses `ttft=200ms,tpot=50ms,e2el=2s`.
    pub fn parse(s: &str) -> Result<Slo, ProducerError> {
        let bad = |why: String| ProducerError::Usage(format!("invalid --slo `{s}`: {why}"));
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("`{part}` is not name=duration")))?;
            let ms = crate::units::parse_duration_ms(v).ok_or_else(|| bad(format!("`{v}` is not a duration: it needs a unit, e.g. 200ms or 2s")))?;
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2el" => slo.e2el_ms = Some(ms),
                other => return Err(bad(format!("unknown SLO `{other}` (ttft, tpot, e2el)"))),
            }
        }
        Ok(slo)
    }

    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2el_ms.is_some()
    }

    fn met(&self, ttft: f64, tpot: Option<f64>, e2el: f64) -> bool {
        self.ttft_ms.is_none_or(|l| ttft <= l) && self.tpot_ms.is_none_or(|l| tpot.is_none_or(|t| t <= l)) && self.e2el_ms.is_none_or(|l| e2el <= l)
    }
}

/// What one streamed request measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTiming {
    pub ttft_ms: f64,
    pub itl_ms: Vec<f64>,
    pub e2el_ms: f64,
    pub output_tokens: u64,
}

impl StreamTiming {
    pub fn tpot_ms(&self) -> Option<f64> {
        (self.output_tokens > 1).then(|| (self.e2el_ms - self.ttft_ms) / (self.output_tokens - 1) as f64)
    }
}

/// Content of one SSE `data:` JSON chunk, and `usage.completion_tokens` if present.
fn chunk_content(api: Api, v: &serde_json::Value) -> (Option<String>, Option<u64>) {
    let choice = &v["choices"][0];
    let text = match api {
        Api::Completions => choice["text"].as_str(),
        Api::Chat => choice["delta"]["content"].as_str(),
    };
    (text.map(str::to_string), v["usage"]["completion_tokens"].as_u64())
}

#[derive(Clone)]
pub struct LlmWorkload {
    client: reqwest::Client,
    url: reqwest::Url,
    api: Api,
    model: String,
    prompts: Arc<Vec<String>>,
    next: usize,
    max_tokens: u64,
    api_key: Option<String>,
    slo: Slo,
    last: Vec<(&'static str, f64, &'static str)>,
    /// The server runs on this machine, so this machine's power is the work's.
    server_local: bool,
}

impl LlmWorkload {
    pub fn new(url: &str, model: &str, prompts: Vec<String>, max_tokens: u64, api_key: Option<String>, slo: Slo, timeout: Duration) -> Result<Self, ProducerError> {
        let url = reqwest::Url::parse(url).map_err(|e| ProducerError::Usage(format!("invalid --url `{url}`: {e}")))?;
        let api = if url.path().ends_with("/chat/completions") { Api::Chat } else { Api::Completions };
        if prompts.is_empty() {
            return Err(ProducerError::Usage("no prompts: give --prompts FILE or --input-len N".into()));
        }
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| ProducerError::Usage(e.to_string()))?;
        Ok(LlmWorkload { client, url, api, model: model.into(), prompts: Arc::new(prompts), next: 0, max_tokens, api_key, slo, last: Vec::new(), server_local: false })
    }

    /// Declares that the server runs on this machine (`--server-local`): its runs then carry
    /// this machine's power and energy. By default they do not, the server being elsewhere.
    pub fn server_local(mut self, local: bool) -> Self {
        self.server_local = local;
        self
    }

    fn body(&self, prompt: &str) -> serde_json::Value {
        let mut b = match self.api {
            Api::Completions => serde_json::json!({"prompt": prompt}),
            Api::Chat => serde_json::json!({"messages": [{"role": "user", "content": prompt}]}),
        };
        b["model"] = self.model.clone().into();
        b["max_tokens"] = self.max_tokens.into();
        b["stream"] = true.into();
        b["stream_options"] = serde_json::json!({"include_usage": true});
        b
    }

    /// Sends one streamed request; the error is the failure reason.
    pub async fn stream_once(&self, prompt: &str) -> Result<StreamTiming, String> {
        let t0 = Instant::now();
        let mut req = self.client.post(self.url.clone()).json(&self.body(prompt));
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let mut resp = req.send().await.map_err(|e| if e.is_timeout() { "timeout".to_string() } else { "connection error".to_string() })?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let (mut buf, mut first, mut last_chunk, mut itl, mut chunks, mut usage) = (String::new(), None::<Instant>, None::<Instant>, Vec::new(), 0u64, None);
        'read: loop {
            let bytes = match resp.chunk().await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => return Err(if e.is_timeout() { "timeout".into() } else { "stream error".into() }),
            };
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                let Some(data) = line.trim().strip_prefix("data:") else { continue };
                let data = data.trim();
                if data == "[DONE]" {
                    break 'read;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else { return Err("malformed stream chunk".into()) };
                let (text, u) = chunk_content(self.api, &v);
                usage = u.or(usage);
                if text.is_some_and(|t| !t.is_empty()) {
                    let now = Instant::now();
                    if let Some(prev) = last_chunk {
                        itl.push(now.duration_since(prev).as_secs_f64() * 1000.0);
                    }
                    first.get_or_insert(now);
                    last_chunk = Some(now);
                    chunks += 1;
                }
            }
        }
        let e2el_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let first = first.ok_or_else(|| "no content in the stream".to_string())?;
        Ok(StreamTiming { ttft_ms: first.duration_since(t0).as_secs_f64() * 1000.0, itl_ms: itl, e2el_ms, output_tokens: usage.unwrap_or(chunks) })
    }
}

impl Workload for LlmWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-llm"
    }

    fn power_is_local(&self) -> bool {
        self.server_local
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        let prompt = self.prompts[self.next % self.prompts.len()].clone();
        self.next += 1;
        self.last.clear();
        match self.stream_once(&prompt).await {
            Ok(t) => {
                self.last.push(("ttft_ms", t.ttft_ms, "ms"));
                self.last.push(("e2el_ms", t.e2el_ms, "ms"));
                self.last.push(("output_tokens", t.output_tokens as f64, "tokens"));
                if let Some(tpot) = t.tpot_ms() {
                    self.last.push(("tpot_ms", tpot, "ms"));
                }
                self.last.extend(t.itl_ms.iter().map(|&g| ("itl_ms", g, "ms")));
                if self.slo.is_set() {
                    self.last.push(("slo_met", f64::from(u8::from(self.slo.met(t.ttft_ms, t.tpot_ms(), t.e2el_ms))), "bool"));
                }
                Ok(None)
            }
            Err(reason) => {
                if self.slo.is_set() {
                    self.last.push(("slo_met", 0.0, "bool"));
                }
                Ok(Some(reason))
            }
        }
    }

    fn take_samples(&mut self) -> Vec<(&'static str, f64, &'static str)> {
        std::mem::take(&mut self.last)
    }
}

/// `n` synthetic prompts of `words` words each.
pub fn synthetic_prompts(n: usize, words: usize) -> Vec<String> {
    (0..n.max(1)).map(|i| (0..words).map(|w| ["the", "quick", "brown", "fox", "jumps"][(i + w) % 5]).collect::<Vec<_>>().join(" ")).collect()
}

/// Prompts from a JSONL file: `{"prompt": "..."}` or `{"messages": [{"content": "..."}]}` per line.
pub fn prompts_from_jsonl(text: &str) -> Result<Vec<String>, ProducerError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).map_err(|e| ProducerError::Usage(format!("prompts line {}: {e}", i + 1)))?;
            v["prompt"]
                .as_str()
                .or_else(|| v["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()))
                .map(str::to_string)
                .ok_or_else(|| ProducerError::Usage(format!("prompts line {}: no \"prompt\" or \"messages\"", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_parsing_and_checks() {
        let s = Slo::parse("ttft=200ms,tpot=50ms,e2el=2s").unwrap();
        assert_eq!((s.ttft_ms, s.tpot_ms, s.e2el_ms), (Some(200.0), Some(50.0), Some(2000.0)));
        assert!(s.met(150.0, Some(40.0), 1900.0));
        assert!(!s.met(250.0, Some(40.0), 1900.0));
        assert!(Slo::parse("ttft=200").unwrap_err().to_string().contains("needs a unit"));
        assert!(Slo::parse("p99=2s").unwrap_err().to_string().contains("unknown SLO"));
    }

    #[test]
    fn tpot_follows_the_vllm_definition() {
        let t = StreamTiming { ttft_ms: 100.0, itl_ms: vec![], e2el_ms: 1045.0, output_tokens: 64 };
        assert_eq!(t.tpot_ms(), Some(15.0));
        assert_eq!(StreamTiming { output_tokens: 1, ..t }.tpot_ms(), None);
    }

    #[test]
    fn prompt_files() {
        let p = prompts_from_jsonl("{\"prompt\": \"a\"}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"b\"}]}\n").unwrap();
        assert_eq!(p, ["a", "b"]);
        assert!(prompts_from_jsonl("{\"x\": 1}").unwrap_err().to_string().contains("line 1"));
        assert_eq!(synthetic_prompts(2, 3)[0].split(' ').count(), 3);
    }

    #[test]
    fn power_is_the_servers_only_when_it_is_local() {
        let w = LlmWorkload::new("http://127.0.0.1:1/v1/completions", "m", synthetic_prompts(1, 3), 8, None, Slo::default(), Duration::from_secs(1)).unwrap();
        assert!(!w.power_is_local(), "a remote server by default");
        assert!(w.server_local(true).power_is_local());
    }
}

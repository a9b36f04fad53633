//! Webhook delivery against a real local HTTP server: retries with backoff until a 2xx, and
//! a clear, redacted reason when it gives up.

use trackiq_sinks::webhook::{WebhookConfig, deliver};

use crate::support::Receiver;

fn config(max_attempts: u32) -> WebhookConfig {
    WebhookConfig { max_attempts, initial_backoff_ms: 10, ..Default::default() }
}

#[test]
fn retries_until_the_endpoint_accepts() {
    let hook = Receiver::start(2);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"run_id": "r1", "severity": "block"});
    let attempts = rt.block_on(deliver(&client, &config(5), &hook.url, &body)).unwrap();
    assert_eq!(attempts, 3, "two HTTP 500 answers, then 200");
    assert_eq!(*hook.attempts.lock().unwrap(), 3);
    assert_eq!(hook.bodies.lock().unwrap().as_slice(), &[body]);
}

#[test]
fn gives_up_after_the_bound_with_a_redacted_reason() {
    let hook = Receiver::start(u32::MAX);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(deliver(&reqwest::Client::new(), &config(3), &hook.url, &serde_json::json!({}))).unwrap_err();
    assert!(err.contains("failed after 3 attempts: HTTP 500"), "{err}");
    assert!(!err.contains("/hook"), "the URL path (often a secret) is not in the reason: {err}");
    assert_eq!(*hook.attempts.lock().unwrap(), 3);
}

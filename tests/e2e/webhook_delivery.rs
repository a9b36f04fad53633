//! The webhook stage against a real local HTTP server, without Kafka: an endpoint that is
//! down is retried (each URL gets a record once, even when another needed retries), a
//! refusal is a permanent error with a redacted reason, and an idempotency key goes along.

use std::time::Instant;

use trackiq_infra::runtime::{Input, Position, Stage, StageError};
use trackiq_schemas::{AnyEvent, Detection};
use trackiq_sinks::webhook::{WebhookConfig, WebhookStage};

use crate::support::Receiver;

fn detection_input(offset: i64) -> Input {
    let d = Detection {
        run_id: "r1".into(), detector: "straggler".into(), rank: Some(1), step: Some(3), event_ts: 1, detected_at: 2,
        value: 30.0, threshold: 10.0, message: "rank 1 is slow".into(),
    };
    Input { position: Position { topic: "trackiq.detections".into(), partition: 0, offset }, timestamp_ms: None, event: AnyEvent::Detection(d) }
}

#[test]
fn a_failing_endpoint_is_retried_without_sending_twice_to_the_healthy_one() {
    let (healthy, flaky) = (Receiver::start(0), Receiver::start(2));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = WebhookConfig { urls: vec![healthy.url.clone(), flaky.url.clone()], ..Default::default() };
    let mut stage = WebhookStage::new(config, "file:///data".into()).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(rt.block_on(stage.handle(detection_input(7), Instant::now())).map(|_| ()));
    }
    assert!(matches!(&outcomes[0], Err(StageError::Transient(e)) if e.contains("HTTP 500")), "{outcomes:?}");
    assert!(matches!(&outcomes[1], Err(StageError::Transient(_))), "{outcomes:?}");
    assert!(outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(*healthy.attempts.lock().unwrap(), 1, "the healthy endpoint got the detection once");
    assert_eq!(*flaky.attempts.lock().unwrap(), 3, "two HTTP 500 answers, then 200");
    assert_eq!(flaky.bodies.lock().unwrap()[0]["detector"], "straggler");
}

#[test]
fn a_bounded_number_of_attempts_ends_in_a_redacted_permanent_error() {
    let hook = Receiver::start(u32::MAX);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = WebhookConfig { urls: vec![hook.url.clone()], max_attempts: 3, ..Default::default() };
    let mut stage = WebhookStage::new(config, "file:///data".into()).unwrap();
    let mut last = None;
    for _ in 0..3 {
        last = Some(rt.block_on(stage.handle(detection_input(9), Instant::now())).map(|_| ()));
    }
    let Some(Err(StageError::Permanent(reason))) = last else { panic!("{last:?}") };
    assert!(reason.contains("failed after 3 attempts") && reason.contains("HTTP 500"), "{reason}");
    assert!(!reason.contains("/hook"), "the URL path (often a secret) is not in the reason: {reason}");
    assert_eq!(*hook.attempts.lock().unwrap(), 3);
}

//! `bench llm` against a local OpenAI-compatible streaming server with scripted timing:
//! 64 tokens, the first after 120 ms (even requests) or 400 ms (odd ones), then one every
//! 15 ms. Measured TTFT, ITL, TPOT and E2EL must match the script; goodput with
//! `--slo ttft=200ms` must count exactly the fast half.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

const TOKENS: usize = 64;
const GAP_MS: u64 = 15;
const FAST_TTFT_MS: u64 = 120;
const SLOW_TTFT_MS: u64 = 400;
/// Timer and scheduling slack allowed on a loaded 2-core machine, per figure.
const TOL_MS: f64 = 25.0;

fn server(rt: &tokio::runtime::Runtime) -> String {
    let count = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/v1/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                assert_eq!(body["stream"], true);
                let ttft = if n % 2 == 0 { FAST_TTFT_MS } else { SLOW_TTFT_MS };
                let start = tokio::time::Instant::now();
                let chunks = futures::stream::unfold(0usize, move |i| async move {
                    if i > TOKENS + 1 {
                        return None;
                    }
                    let line = if i < TOKENS {
                        tokio::time::sleep_until(start + Duration::from_millis(ttft + GAP_MS * i as u64)).await;
                        format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "text": format!("t{i} ")}]}))
                    } else if i == TOKENS {
                        format!("data: {}\n\n", serde_json::json!({"choices": [], "usage": {"completion_tokens": TOKENS}}))
                    } else {
                        "data: [DONE]\n\n".to_string()
                    };
                    Some((Ok::<_, std::convert::Infallible>(line), i + 1))
                });
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(chunks))
                    .unwrap()
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/v1/completions", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    url
}

fn values(up: &Up, run: &str, metric: &str) -> Vec<f64> {
    let q = format!("SELECT value FROM samples WHERE run_id = '{run}' AND metric = '{metric}' ORDER BY value");
    sql(up, &q).iter().map(|r| r["value"].as_f64().unwrap()).collect()
}

#[test]
fn streaming_timings_and_goodput_match_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = server(&rt);
    let out = ok(&up.cli(&[
        "bench", "llm", "--url", &url, "--input-len", "16", "--max-tokens", "64", "--iterations", "8", "--concurrency", "4",
        "--warmup", "0", "--telemetry-interval", "0", "--slo", "ttft=200ms",
    ]));
    let run = crate::pipeline::uuid_in(&out);
    let q = format!("SELECT count(*) AS n FROM summaries WHERE run_id = '{run}'");
    wait_for("the LLM run's summary", Duration::from_secs(60), || Some(sql(&up, &q)).filter(|r| r[0]["n"].as_i64() > Some(0)));

    let ttft = values(&up, &run, "ttft_ms");
    assert_eq!(ttft.len(), 8);
    for (i, t) in ttft.iter().enumerate() {
        let expect = if i < 4 { FAST_TTFT_MS } else { SLOW_TTFT_MS } as f64;
        assert!((t - expect).abs() < TOL_MS, "TTFT {t:.1} ms, scripted {expect} ms: {ttft:?}");
    }
    let itl = values(&up, &run, "itl_ms");
    assert_eq!(itl.len(), 8 * (TOKENS - 1), "one gap between each pair of tokens");
    let itl_mean = itl.iter().sum::<f64>() / itl.len() as f64;
    assert!((itl_mean - GAP_MS as f64).abs() < 2.0, "mean ITL {itl_mean:.2} ms");
    for tpot in values(&up, &run, "tpot_ms") {
        assert!((tpot - GAP_MS as f64).abs() < 2.0, "TPOT {tpot:.2} ms");
    }
    for (i, e) in values(&up, &run, "e2el_ms").iter().enumerate() {
        let expect = (if i < 4 { FAST_TTFT_MS } else { SLOW_TTFT_MS } + GAP_MS * (TOKENS as u64 - 1)) as f64;
        assert!((e - expect).abs() < 2.0 * TOL_MS, "E2EL {e:.1} ms, scripted {expect} ms");
    }
    assert_eq!(values(&up, &run, "output_tokens"), vec![TOKENS as f64; 8], "usage.completion_tokens");
    let q = format!("SELECT metric, mean FROM summaries WHERE run_id = '{run}' AND kind = 'derived'");
    let derived = sql(&up, &q);
    let get = |m: &str| derived.iter().find(|r| r["metric"] == m).and_then(|r| r["mean"].as_f64()).unwrap_or_else(|| panic!("{m}: {derived:?}"));
    // Both figures divide by the same span: their ratio is exact up to rounding.
    let ratio = |a: &str, b: &str| get(a) / get(b);
    assert!((ratio("goodput_requests_per_sec", "request_throughput_per_sec") - 0.5).abs() < 1e-12, "half the requests meet ttft=200ms");
    assert!((ratio("tokens_per_sec", "request_throughput_per_sec") - TOKENS as f64).abs() < 1e-9);
    let _ = up.stop();
}

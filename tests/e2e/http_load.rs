//! `bench http` against a real local server: the open-loop rate is what was asked, the
//! closed loop keeps exactly N requests in flight, and failures are counted by reason.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

#[derive(Default)]
struct Seen {
    arrivals: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Every 10th request gets HTTP 500; each takes `delay`.
fn server(rt: &tokio::runtime::Runtime, delay: Duration) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let s = s.clone();
            async move {
                let n = {
                    let mut a = s.arrivals.lock().unwrap();
                    a.push(Instant::now());
                    a.len()
                };
                let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                s.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                s.in_flight.fetch_sub(1, Ordering::SeqCst);
                if n % 10 == 0 { axum::http::StatusCode::INTERNAL_SERVER_ERROR } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The arrival schedule `--rate R --seed S` draws (same generator as the producer).
fn scheduled_rate(rate: f64, seed: u64, n: usize) -> f64 {
    let mut noise = trackiq_stats::synthetic::Noise::new(seed);
    let span: f64 = (0..n - 1).map(|_| -noise.uniform().ln() / rate).sum();
    (n - 1) as f64 / span
}

#[test]
fn open_loop_rate_closed_loop_concurrency_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Open loop: 400 Poisson arrivals at 200/s.
    const RATE: f64 = 200.0;
    const N: usize = 400;
    const SEED: u64 = 7;
    let planned = scheduled_rate(RATE, SEED, N);
    assert!((planned / RATE - 1.0).abs() < 0.05, "the seeded schedule itself is near the rate: {planned}");
    let (url, seen) = server(&rt, Duration::from_millis(2));
    let out = up.cli(&[
        "bench", "http", "--url", &url, "--rate", "200", "--seed", "7", "--iterations", "400", "--warmup", "0", "--telemetry-interval", "0",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "failures give exit code 2: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("40 of 400 iterations failed (40 × HTTP 500)"), "{stdout}");
    let arrivals = seen.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), N);
    let measured = (N - 1) as f64 / arrivals[N - 1].duration_since(arrivals[0]).as_secs_f64();
    println!("open loop: requested {RATE}/s, scheduled {planned:.1}/s, measured {measured:.1}/s");
    assert!((measured / RATE - 1.0).abs() <= 0.10, "measured rate {measured:.1}/s is not within ±10 % of {RATE}/s");

    // Closed loop: 4 in flight against a 50 ms server.
    let (url, seen) = server(&rt, Duration::from_millis(50));
    let t0 = Instant::now();
    let out = up.cli(&["bench", "http", "--url", &url, "--concurrency", "4", "--iterations", "40", "--warmup", "0", "--telemetry-interval", "0"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 4, "exactly 4 requests in flight");
    assert!(took < Duration::from_millis(40 * 50), "concurrent requests overlap ({took:?})");
    let _ = up.stop();
}

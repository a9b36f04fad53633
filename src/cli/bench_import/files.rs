//! Result files as the tools write them, for the backfill benchmark: hyperfine, pytest-benchmark,
//! Google Benchmark, vLLM bench serve and BMF, in the layouts of the checked-in fixtures
//! (tests/fixtures/import), each with its tool's time (or, for tools that write none, the
//! file's modification time) spread over the backfilled period and values drawn around a
//! per-series level.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde_json::{Value, json};

/// What one generated file holds.
pub struct Made {
    pub runs: usize,
    pub samples: usize,
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn draws(rng: &mut SmallRng, median: f64, n: usize) -> Vec<f64> {
    let d = LogNormal::new(median.ln(), 0.05).expect("valid parameters");
    (0..n).map(|_| d.sample(rng)).collect()
}

/// Writes file `i` of a backfill of `series` series ending now, one run every `step`.
pub fn write(dir: &Path, i: usize, series: usize, step: Duration, total: usize) -> std::io::Result<Made> {
    let mut rng = SmallRng::seed_from_u64(i as u64);
    let s = i % series;
    let at = SystemTime::now() - step * (total - i) as u32;
    let level = 1.0 + s as f64 * 0.1;
    let (name, doc, made, file_time) = match i % 5 {
        0 => {
            let times = draws(&mut rng, 0.01 * level, 50);
            let doc = json!({"results": [{"command": format!("./tool --case {s}"), "mean": times.iter().sum::<f64>() / 50.0, "stddev": 0.0, "median": times[25],
                "user": 0.001, "system": 0.0005, "min": 0.0, "max": 0.0, "times": times, "exit_codes": vec![0; 50]}]});
            ("hyperfine", doc, Made { runs: 1, samples: 101 }, Some(at))
        }
        1 => {
            let data = draws(&mut rng, 2e-6 * level, 100);
            let doc = json!({"machine_info": {"node": format!("ci-{}", s % 4), "cpu": {"brand_raw": "Xeon"}, "system": "Linux", "release": "6.1", "python_implementation": "CPython", "python_version": "3.11.7"},
                "commit_info": {"id": format!("{:040x}", i), "branch": "main"}, "datetime": iso(at), "version": "5.3.1",
                "benchmarks": [{"group": null, "name": format!("test_case_{s}"), "fullname": format!("tests/test_perf.py::test_case_{s}"), "params": null,
                    "stats": {"min": 0.0, "max": 0.0, "mean": 0.0, "stddev": 0.0, "rounds": 100, "median": data[50], "ops": 1.0 / data[50], "iterations": 10, "data": data}}]});
            ("pytest-benchmark", doc, Made { runs: 1, samples: 100 }, None)
        }
        2 => {
            let rows: Vec<Value> = draws(&mut rng, 150.0 * level, 5)
                .into_iter()
                .enumerate()
                .map(|(r, t)| json!({"name": format!("BM_Case/{s}"), "run_name": format!("BM_Case/{s}"), "run_type": "iteration", "repetitions": 5, "repetition_index": r,
                    "threads": 1, "iterations": 100000, "real_time": t, "cpu_time": t, "time_unit": "ns", "items_per_second": 1e9 / t}))
                .collect();
            let doc = json!({"context": {"date": iso(at), "host_name": format!("ci-{}", s % 4), "executable": "./bench", "num_cpus": 2, "mhz_per_cpu": 2600}, "benchmarks": rows});
            ("google-benchmark", doc, Made { runs: 1, samples: 15 }, None)
        }
        3 => {
            let n = 16;
            let ttfts = draws(&mut rng, 0.1 * level, n);
            let itls: Vec<Vec<f64>> = (0..n).map(|_| draws(&mut rng, 0.02 * level, 8)).collect();
            let date = chrono::DateTime::<chrono::Utc>::from(at).format("%Y%m%d-%H%M%S").to_string();
            let doc = json!({"date": date, "backend": "vllm", "model_id": format!("org/model-{s}"), "num_prompts": n, "request_rate": "inf", "max_concurrency": 4,
                "duration": 3.0, "completed": n, "output_throughput": rng.random_range(20.0..30.0), "request_throughput": 5.0, "request_goodput": null,
                "ttfts": ttfts, "itls": itls, "output_lens": vec![9; n], "errors": vec![""; n]});
            ("vllm", doc, Made { runs: 1, samples: n * 11 + 2 }, None)
        }
        _ => {
            let doc = json!({format!("bench_case_{s}"): {"latency": {"value": 1000.0 * level * rng.random_range(0.95..1.05)}, "throughput": {"value": rng.random_range(900.0..1100.0)}}});
            ("bmf", doc, Made { runs: 1, samples: 2 }, Some(at))
        }
    };
    let path = dir.join(format!("{i:05}-{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&doc)?)?;
    if let Some(t) = file_time.or(Some(at)) {
        std::fs::File::options().write(true).open(&path)?.set_modified(t.max(UNIX_EPOCH))?;
    }
    Ok(made)
}

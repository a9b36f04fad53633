//! Every format against a checked-in file its tool wrote (tests/fixtures/import/README.md says
//! how each was made): detection, runs and samples, values equal to the tool's own numbers
//! (times converted to ms: relative tolerance 1e-12 for the one multiplication), errors that
//! name the file and JSON path or line, and run ids that repeat on re-import.

use serde_json::Value;

use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/import/");
/// One multiplication by a power of ten: a relative error of a few ulps.
const REL: f64 = 1e-12;

fn ctx(file: &str) -> ImportContext {
    ImportContext { file: file.into(), file_time_us: Some(1_700_000_000_000_000), ..Default::default() }
}

fn read(file: &str) -> (Vec<u8>, ImportContext) {
    (std::fs::read(format!("{DIR}{file}")).unwrap(), ctx(file))
}

fn values(run: &ImportedRun, metric: &str) -> Vec<f64> {
    run.samples.iter().filter(|s| s.metric == metric).map(|s| s.value).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= REL * y.abs().max(1e-300), "{x} vs {y}");
    }
}

fn json(file: &str) -> Value {
    serde_json::from_slice(&read(file).0).unwrap()
}

#[test]
fn auto_detects_every_fixture() {
    for (file, format) in [
        ("pytest-benchmark.json", Format::PytestBenchmark),
        ("hyperfine.json", Format::Hyperfine),
        ("google-benchmark.json", Format::GoogleBenchmark),
        ("vllm_bench_serve.json", Format::Vllm),
        ("bmf.json", Format::Bmf),
        ("autoperfpy_bench_inference.json", Format::Autoperfpy),
        ("autoperfpy_collector_report.json", Format::Autoperfpy),
        ("autoperfpy_collector_report.csv", Format::Autoperfpy),
        ("tracker.csv", Format::TrackerCsv),
        ("../trackiq/autoperfpy_real_output.json", Format::TrackiqJson),
        ("../nccl/all_reduce_perf_8gpu.json", Format::NcclTests),
        ("../nccl/all_reduce_perf_8gpu.txt", Format::NcclTests),
    ] {
        let (content, c) = read(file);
        assert_eq!(detect::detect(&content, &c).unwrap(), format, "{file}");
        assert!(!parse(Format::Auto, &content, &c).unwrap().is_empty(), "{file}");
    }
    let err = detect::detect(br#"{"hello": 1}"#, &ctx("x.json")).unwrap_err().to_string();
    assert!(err.starts_with("x.json: $: a JSON document with keys [\"hello\"]") && err.contains("name its format instead of auto"), "{err}");
}

#[test]
fn pytest_benchmark_rounds_are_samples_at_the_tools_time_and_commit() {
    let (content, c) = read("pytest-benchmark.json");
    let doc = json("pytest-benchmark.json");
    let runs = parse(Format::PytestBenchmark, &content, &c).unwrap();
    assert_eq!(runs.len(), doc["benchmarks"].as_array().unwrap().len());
    for (run, b) in runs.iter().zip(doc["benchmarks"].as_array().unwrap()) {
        assert_eq!(run.run.workload.name, b["fullname"].as_str().unwrap());
        let data: Vec<f64> = b["stats"]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() * 1e3).collect();
        close(&values(run, "latency_ms"), &data);
        assert_eq!(run.run.timestamp, parse_time(doc["datetime"].as_str().unwrap()).unwrap());
        assert_eq!(run.run.tool_version, doc["version"].as_str().unwrap());
        assert_eq!(run.run.platform.hardware_name, doc["machine_info"]["node"].as_str().unwrap());
        assert_eq!(run.run.labels["imported_from"], "pytest-benchmark");
    }
    assert_eq!(runs[1].run.labels.get("group").map(String::as_str), Some("sorting"));
}

#[test]
fn hyperfine_times_exit_codes_and_cpu() {
    let (content, c) = read("hyperfine.json");
    let doc = json("hyperfine.json");
    let runs = parse(Format::Hyperfine, &content, &c).unwrap();
    assert_eq!(runs.len(), 2);
    for (run, r) in runs.iter().zip(doc["results"].as_array().unwrap()) {
        let times: Vec<f64> = r["times"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() * 1e3).collect();
        close(&values(run, "latency_ms"), &times);
        assert_eq!(values(run, "iteration_failed"), vec![0.0; times.len()]);
        close(&values(run, "child_cpu_ms"), &[(r["user"].as_f64().unwrap() + r["system"].as_f64().unwrap()) * 1e3]);
        assert_eq!(run.ended_at, 1_700_000_000_000_000, "hyperfine writes no time: it ended when it wrote the file");
    }
}

#[test]
fn google_benchmark_repetitions_are_samples_and_aggregates_are_not() {
    let (content, c) = read("google-benchmark.json");
    let doc = json("google-benchmark.json");
    let runs = parse(Format::GoogleBenchmark, &content, &c).unwrap();
    let rows = doc["benchmarks"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r.run.workload.name.as_str()).collect();
    assert_eq!(names, ["BM_Sort/64", "BM_Sort/512"]);
    for run in &runs {
        let reps: Vec<f64> = rows
            .iter()
            .filter(|r| r["run_name"] == run.run.workload.name.as_str() && r["run_type"] == "iteration")
            .map(|r| r["real_time"].as_f64().unwrap() * 1e-6)
            .collect();
        assert_eq!(reps.len(), 3);
        close(&values(run, "latency_ms"), &reps);
        assert!(values(run, "latency_p50_ms").is_empty(), "the median aggregate is not a sample when repetitions are there");
        assert_eq!(values(run, "throughput_samples_per_sec").len(), 3);
        assert_eq!(run.run.timestamp, parse_time(doc["context"]["date"].as_str().unwrap()).unwrap());
    }
    // Aggregates only (--benchmark_report_aggregates_only): the median stands in.
    let mut only = doc.clone();
    only["benchmarks"] = Value::Array(rows.iter().filter(|r| r["run_type"] == "aggregate").cloned().collect());
    let runs = parse(Format::GoogleBenchmark, &serde_json::to_vec(&only).unwrap(), &c).unwrap();
    let median = rows.iter().find(|r| r["name"] == "BM_Sort/64_median").unwrap()["real_time"].as_f64().unwrap() * 1e-6;
    close(&values(&runs[0], "latency_p50_ms"), &[median]);
    assert!(values(&runs[0], "latency_ms").is_empty());
}

#[test]
fn vllm_requests_are_samples_and_a_failed_one_counts_as_failed() {
    let (content, c) = read("vllm_bench_serve.json");
    let runs = parse(Format::Vllm, &content, &c).unwrap();
    let run = &runs[0];
    close(&values(run, "ttft_ms"), &[102.1, 118.7, 95.4]);
    assert_eq!(values(run, "itl_ms").len(), 9);
    assert_eq!(values(run, "iteration_failed"), [0.0, 0.0, 0.0, 1.0]);
    assert_eq!(values(run, "tokens_per_sec"), [27.335]);
    assert!(values(run, "median_ttft_ms").is_empty(), "per-request data: the tool's percentiles are not figures");
    assert_eq!(run.run.timestamp, parse_time("2026-11-20T14:30:15").unwrap());
    assert_eq!((run.run.labels["request_rate"].as_str(), run.run.labels["max_concurrency"].as_str()), ("inf", "2"));
    assert_eq!(run.run.workload.backend.as_deref(), Some("vllm"));
}

#[test]
fn bmf_autoperfpy_and_tracker_rows() {
    let (content, c) = read("bmf.json");
    let runs = parse(Format::Bmf, &content, &c).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((values(&runs[0], "latency"), runs[0].samples[0].unit.as_str()), (vec![3247.5], "ns"));
    assert_eq!(values(&runs[1], "throughput"), [11322.1]);

    let (content, c) = read("autoperfpy_collector_report.json");
    let run = &parse(Format::Autoperfpy, &content, &c).unwrap()[0];
    assert_eq!(values(run, "latency_ms"), [24.2, 27.4, 28.9, 30.3, 42.1]);
    assert_eq!(values(run, "gpu_power_watts"), [17.9, 18.1, 18.9, 19.4, 24.3]);
    assert_eq!(run.run.version.version_tag.as_deref(), Some("baseline_run"));
    let (content, c) = read("autoperfpy_collector_report.csv");
    let csv = &parse(Format::Autoperfpy, &content, &c).unwrap()[0];
    assert_eq!(values(csv, "latency_ms"), [24.2, 27.4, 28.9, 30.3, 42.1]);
    assert_eq!(csv.samples.iter().map(|s| s.ts_us - csv.run.timestamp).max(), Some(2_400_000));
    let (content, c) = read("autoperfpy_bench_inference.json");
    let bench = &parse(Format::Autoperfpy, &content, &c).unwrap()[0];
    assert_eq!(values(bench, "mean_ttft_ms"), [126.82216453650322]);
    assert_eq!(values(bench, "tokens_per_sec"), [21.335454264410235]);

    let (content, c) = read("tracker.csv");
    let rows = parse(Format::TrackerCsv, &content, &c).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[0].run.workload.batch_size, rows[0].run.version.git_commit.as_deref(), rows[0].run.version.env_hash.as_str()), (Some(32), Some("3f2a9c1"), "e1d2c3b4"));
    assert_eq!(values(&rows[1], "throughput_samples_per_sec"), [2850.2]);
    assert_eq!(rows[2].run.timestamp, parse_time("2026-10-02T08:05:00Z").unwrap());
    assert_eq!(rows[0].run.series_id, rows[1].run.series_id, "one model on one machine: one series across versions");
    // A file that grew keeps the ids of its old rows.
    let grown = [content.as_slice(), b"resnet50,a100,32,2860.0,11.1,6100,286.0,v1.4.2,9c0d1e2,e1d2c3b4,2026-10-03T08:00:00Z\n"].concat();
    let again = parse(Format::TrackerCsv, &grown, &c).unwrap();
    assert_eq!(again[..3].iter().map(|r| &r.run.run_id).collect::<Vec<_>>(), rows.iter().map(|r| &r.run.run_id).collect::<Vec<_>>());
}

#[test]
fn the_same_content_gives_the_same_run_ids_and_other_content_others() {
    let (content, c) = read("hyperfine.json");
    let a = parse(Format::Auto, &content, &c).unwrap();
    let b = parse(Format::Auto, &content, &ctx("elsewhere/copy.json")).unwrap();
    assert_eq!(a.iter().map(|r| &r.run.run_id).collect::<Vec<_>>(), b.iter().map(|r| &r.run.run_id).collect::<Vec<_>>());
    assert_ne!(a[0].run.run_id, a[1].run.run_id);
    // Another machine or label said on the command line: other runs (of another series).
    let elsewhere = ImportContext { hardware: Some("ci-7".into()), ..c.clone() };
    let moved = parse(Format::Auto, &content, &elsewhere).unwrap();
    assert!(moved[0].run.run_id != a[0].run.run_id && moved[0].run.series_id != a[0].run.series_id);
    let changed = String::from_utf8(content.clone()).unwrap().replacen("0.011", "0.012", 1);
    assert_ne!(parse(Format::Auto, changed.as_bytes(), &c).unwrap()[0].run.run_id, a[0].run.run_id);
    // hyperfine writes no time: the id does not depend on the file's (a copy is the same run).
    let later = ImportContext { file_time_us: Some(1_800_000_000_000_000), ..c.clone() };
    assert_eq!(parse(Format::Auto, &content, &later).unwrap()[0].run.run_id, a[0].run.run_id);
    assert_eq!(uuid::Uuid::parse_str(&a[0].run.run_id).unwrap().get_version_num(), 8);
    // With the tool's time: UUID v7 layout, the id's time is the run's (ids sort by time).
    let (content, c) = read("google-benchmark.json");
    let run = &parse(Format::Auto, &content, &c).unwrap()[0].run;
    let id = uuid::Uuid::parse_str(&run.run_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(id.get_timestamp().unwrap().to_unix().0 as i64, run.timestamp / 1_000_000);
}

#[test]
fn errors_name_the_file_the_place_and_what_was_expected() {
    let c = ctx("results/hf.json");
    let e = |format: Format, text: &str| parse(format, text.as_bytes(), &c).unwrap_err().to_string();
    assert_eq!(e(Format::Hyperfine, "{\"results\": [\n  {\"command\": \"x\", \"times\": [0.1,]}]}"), "results/hf.json: line 2 column 34: not valid JSON: trailing comma");
    assert_eq!(
        e(Format::Hyperfine, r#"{"results": [{"command": "a", "times": [0.1]}, {"command": "b", "times": [0.1, "slow"]}]}"#),
        "results/hf.json: $.results[1].times[1]: expected a number, found a string"
    );
    assert_eq!(e(Format::Hyperfine, r#"{"results": [{"command": "a", "times": [-0.1]}]}"#), "results/hf.json: $.results[0].times[0]: expected a number ≥ 0, found -0.1");
    assert_eq!(e(Format::PytestBenchmark, r#"{"benchmarks": [{"name": "x"}]}"#), "results/hf.json: $.benchmarks[0].fullname: missing");
    assert_eq!(e(Format::Bmf, r#"{"b": {"latency": {"value": 5, "lower_value": 7}}}"#), "results/hf.json: $.b.latency: expected lower_value ≤ value ≤ upper_value, found Some(7.0) ≤ 5 ≤ None");
    assert!(e(Format::GoogleBenchmark, r#"{"context": {}, "benchmarks": [{"name": "a", "run_type": "iteration", "real_time": 1, "time_unit": "weeks"}]}"#).ends_with("$.benchmarks[0].time_unit: `weeks` is not a time unit (ns, us, ms, s)"));
    assert_eq!(
        e(Format::TrackerCsv, "model,hardware,latency,timestamp\nr,a100,fast,2026-10-01T08:00:00Z\n"),
        "results/hf.json: line 2, column `latency`: expected a number ≥ 0, found `fast`"
    );
    assert_eq!(e(Format::Vllm, r#"{"model_id": "m", "ttfts": [0.1, 0.2], "itls": [[0.01]]}"#), "results/hf.json: $: `itls` has 1 entries but `ttfts` has 2");
    // All of a file or none: one bad benchmark fails the whole file.
    let mut doc = json("pytest-benchmark.json");
    doc["benchmarks"][2]["stats"]["data"][1] = Value::from("x");
    let err = parse(Format::PytestBenchmark, &serde_json::to_vec(&doc).unwrap(), &c).unwrap_err();
    assert_eq!(err.at, "$.benchmarks[2].stats.data[1]");
}

#[test]
fn at_and_overrides_apply_to_every_run() {
    let (content, mut c) = read("google-benchmark.json");
    c.at_us = parse_time("2025-01-02T03:04:05Z");
    c.hardware = Some("ci-runner-7".into());
    c.labels.insert("suite".into(), "nightly".into());
    for run in parse(Format::GoogleBenchmark, &content, &c).unwrap() {
        assert_eq!(run.run.timestamp, parse_time("2025-01-02T03:04:05Z").unwrap());
        assert_eq!(run.run.platform.hardware_name, "ci-runner-7");
        assert_eq!(run.run.labels["suite"], "nightly");
        assert!(run.samples.iter().all(|s| s.ts_us >= run.run.timestamp));
    }
}

#[test]
fn criterion_directory_every_benchmark_with_its_sample_times() {
    let dir = std::path::Path::new(DIR).join("criterion");
    let runs = parse_path(Format::Auto, &dir, &ctx("criterion")).unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r.run.workload.name.as_str()).collect();
    assert_eq!(names, ["fib 15", "sum/100", "sum/1000"]);
    for run in &runs {
        let sample: Value = serde_json::from_slice(&std::fs::read(dir.join(&run.run.workload.name).join("new/sample.json")).unwrap()).unwrap();
        let per_iter: Vec<f64> = sample["iters"].as_array().unwrap().iter().zip(sample["times"].as_array().unwrap()).map(|(n, t)| t.as_f64().unwrap() / n.as_f64().unwrap() / 1e6).collect();
        assert_eq!(per_iter.len(), 10);
        close(&values(run, "latency_ms"), &per_iter);
    }
    assert_eq!(runs[1].run.labels["group"], "sum");
    let err = parse_path(Format::Auto, &std::path::Path::new(DIR).join("../nccl"), &ctx("nccl")).unwrap_err().to_string();
    assert_eq!(err, "nccl: (directory): no criterion benchmark here (expected <benchmark>/new/benchmark.json, as in target/criterion)");
}

#[test]
fn a_command_that_failed_every_time_is_a_failed_run_and_pytest_rounds_span_their_time() {
    let c = ctx("hf.json");
    let doc = br#"{"results": [{"command": "false", "times": [0.001, 0.002], "exit_codes": [1, 1]}, {"command": "flaky", "times": [0.001, 0.002], "exit_codes": [0, 1]}]}"#;
    let runs = parse(Format::Hyperfine, doc, &c).unwrap();
    assert_eq!((runs[0].status, runs[0].error.as_deref()), (RunStatus::Failed, Some("every timed run failed (exit codes [1, 1])")));
    assert_eq!(runs[1].status, RunStatus::Completed);
    assert_eq!(values(&runs[1], "iteration_failed"), [0.0, 1.0]);
    // pytest-benchmark: the rounds span the sum of their times per iteration, so the pipeline's
    // throughput (samples over their span) is the tool's `ops`, 1 / mean.
    let (content, c) = read("pytest-benchmark.json");
    let doc = json("pytest-benchmark.json");
    for (run, b) in parse(Format::PytestBenchmark, &content, &c).unwrap().iter().zip(doc["benchmarks"].as_array().unwrap()) {
        let sum: f64 = b["stats"]["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
        assert_eq!(run.ended_at - run.run.timestamp, (sum * 1e6) as i64);
    }
}

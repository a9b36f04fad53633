//! Examples at the end of every command's `--help`, in one table so that a test parses each
//! one with the real parser: an example that stops working fails the build's tests.

use clap::Command;

/// Command path → example command lines (without the leading `trackiq`).
pub const EXAMPLES: &[(&[&str], &[&str])] = &[
    (&["up"], &["up", "up --webhook https://ci.example/hooks/perf", "--data s3://perf-history/trackiq up --role archiver,compactor"]),
    (&["broker"], &["broker --broker-listen 0.0.0.0:9092"]),
    (&["status"], &["status", "status --format json"]),
    (&["demo"], &["demo", "demo --out ./demo-data --baseline-runs 12 --duration 1s"]),
    (&["record"], &[
        "record --workload resnet50 --hardware a100 --batch-size 8 --metric throughput_samples_per_sec=125.7 --metric latency_ms=8.2",
        "record --workload resnet50 --at 2026-03-01T12:00:00Z --metric latency_ms=8.4",
    ]),
    (&["profile"], &["profile <run_id> --svg flame.svg", "profile <run_id> --against <baseline_run_id> --svg diff.svg"]),
    (&["bisect"], &["bisect --repo . --good v1.4.0 --bad HEAD --build 'cargo build --release' -- ./target/release/mybench --size 1000", "bisect --alert 7d1f0c2a9b --repo . --good v1.4.0 --bad HEAD --build make -- ./mybench"]),
    (&["confirm"], &["confirm --baseline -- ./bench-v1 --size 1000 --candidate -- ./bench-v2 --size 1000", "confirm --rounds 7 --iterations 10 --workload parse --baseline -- ./old --candidate -- ./new", "confirm --alert 7d1f0c2a9b --measure cpu --baseline -- ./old --candidate -- ./new", "confirm --run 01a24820-54ec-73ba-8e87-e712c9989101", "confirm --alert 7d1f0c2a9b"]),
    (&["bench"], &["bench cmd --iterations 50 --workload build -- make -s", "bench http --url http://localhost:8000/health --duration 30s"]),
    (&["bench", "cmd"], &["bench cmd --iterations 20 --workload sleep -- sleep 0.01", "bench cmd --warmup 2 --duration 1m --concurrency 4 --workload build -- make -s"]),
    (&["bench", "compute"], &["bench compute --batch-size 64 --precision f32 --threads 2 --duration 10s"]),
    (&["bench", "http"], &["bench http --url http://svc:8080/infer --method POST --body-file req.json --rate 50 --duration 60s --timeout 2s"]),
    (&["bench", "llm"], &["bench llm --url http://vllm:8000/v1/chat/completions --model m --input-len 512 --max-tokens 128 --rate 4 --iterations 200 --slo ttft=200ms,tpot=50ms,e2el=2s"]),
    (&["bench", "changepoints"], &["bench changepoints --points 10000"]),
    (&["bench", "verdicts"], &["bench verdicts", "bench verdicts --a-runs 30 --b-runs 15 --out ./verdicts-bench"]),
    (&["bench", "faults"], &["bench faults --runs 60 --seed 1", "bench faults --runs 60 --seed 1 --hog 2 --out ./faults-bench"]),
    (&["bench", "ingest"], &["bench ingest --duration 60s --out ./ingest-bench", "bench ingest --duration 30s --samples-per-run 1000 --samples-per-record 1000 --rate 100000 --regress-every 4 --hog 2"]),
    (&["bench", "idle"], &["bench idle --duration 60s"]),
    (&["bench", "scrape"], &["bench scrape --targets 1000 --interval 15s --window 60s --duration 120s", "bench scrape --targets 0 --otlp-senders 8 --duration 30s"]),
    (&["bench", "sql"], &["--data file:///tmp/ingest-bench/data bench sql --runs 5"]),
    (&["bench", "dashboard"], &["bench dashboard --runs 100000"]),
    (&["bench", "import"], &["bench import --files 10000"]),
    (&["cluster"], &["cluster run --workers 4 --steps 50"]),
    (&["cluster", "run"], &[
        "cluster run --workers 4 --steps 50 --grad-mib 1 --batch-size 32 --seed 1",
        "cluster run --workers 4 --fault slow-rank:2:50ms@10 --fault net-delay:1:20ms@30",
        "cluster run --workers 8 --remote-workers --coordinator-listen 0.0.0.0:7070 --secret-env RUN_SECRET",
    ]),
    (&["cluster", "worker"], &["cluster worker --rank 3 --world 8 --coordinator coordinator-host:7070 --run-id 01a24bec-16e3-7127-a85f-d734c15c655d --secret-env RUN_SECRET"]),
    (&["cluster", "bench"], &["cluster bench --workers 4 --sizes 8B..64MiB --iterations 20 --warmup 5"]),
    (&["cluster", "scaling"], &["cluster scaling --world-sizes 1,2,4 --steps 30"]),
    (&["sql"], &[
        "sql \"SELECT metric, count(*), avg(value) FROM samples GROUP BY metric\" --format csv",
        "--data file:///srv/trackiq-data sql \"SELECT run_id, metric, value, baseline, severity FROM verdicts ORDER BY evaluated_at DESC LIMIT 10\"",
    ]),
    (&["tables"], &["tables", "tables run_overview", "tables --duckdb samples"]),
    (&["compact"], &["compact", "compact --table samples"]),
    (&["baseline"], &["baseline show"]),
    (&["baseline", "set"], &["baseline set 01a24820-54ec-73ba-8e87-e712c9989101 --reason \"new allocator accepted\"", "baseline set --all --days 14"]),
    (&["baseline", "reset"], &["baseline reset --series 5f3c9a0d1e2b4c6a"]),
    (&["baseline", "show"], &["baseline show", "baseline show --series 5f3c9a0d1e2b4c6a --format json"]),
    (&["ui"], &["--data file:///srv/trackiq-data ui", "ui --dashboard-listen 0.0.0.0:8080 --token-env TRACKIQ_UI_TOKEN"]),
    (&["serve-sql"], &["--data file:///srv/trackiq-data serve-sql", "serve-sql --sql-listen 0.0.0.0:5433 --password-env TRACKIQ_SQL_PASSWORD"]),
    (&["alerts"], &["alerts list"]),
    (&["alerts", "list"], &["alerts list", "alerts list --all --format json"]),
    (&["alerts", "silences"], &["alerts silences"]),
    (&["alerts", "ack"], &["alerts ack 7d1f0c2a9b --reason bisecting"]),
    (&["alerts", "note"], &["alerts note 7d1f0c2a9b 'rolled back in #123'", "alerts note 7d1f0c2a9b 'not reproduced on the release runners' --downgrade"]),
    (&["alerts", "silence"], &["alerts silence --series 5f3c9a0d1e2b4c6a --metric latency_ms --for 2h --reason maintenance"]),
    (&["alerts", "unsilence"], &["alerts unsilence 3b9e1d44"]),
    (&["regression"], &["regression", "regression --model t-test --warn 0.95 --block 0.99 --metric latency_ms"]),
    (&["trend"], &["trend --metric latency_ms --days 30"]),
    (&["changepoints"], &["changepoints --metric latency_ms", "changepoints --metric latency_ms --series 5f3c9a0d1e2b4c6a --max-pvalue 0.01"]),
    (&["compare"], &["compare 01a24820-54ec-73ba-8e87-e712c9989101 01a24820-606c-721b-ae28-79c4ab920b90 --format markdown --html compare.html"]),
    (&["gate"], &["gate 01a24820-54ec-73ba-8e87-e712c9989101", "--data s3://perf-history/trackiq gate --commit 4f2a9c1 --timeout 5m", "gate 01a24820-54ec-73ba-8e87-e712c9989101 --confirm 5 -- ./bench-main --candidate -- ./bench-pr"]),
    (&["report"], &["report --days 30 --format html --output fleet.html"]),
    (&["export"], &["export 01a24820-54ec-73ba-8e87-e712c9989101 --format csv --output run.csv"]),
    (&["import"], &["import auto results/ 'ci-artifacts/**/*.json'", "import nccl-tests all_reduce_perf.txt --hardware h100-node"]),
    (&["metrics"], &["metrics", "metrics --format json"]),
];

/// `command` with each command's examples appended to its help (after any text it has).
pub fn attach(mut command: Command) -> Command {
    for (path, lines) in EXAMPLES {
        command = at(command, path, &|c: Command| {
            let examples = lines.iter().map(|l| format!("  trackiq {l}")).collect::<Vec<_>>().join("\n");
            let text = match c.get_after_help() {
                Some(before) => format!("{before}\n\nExamples:\n{examples}"),
                None => format!("Examples:\n{examples}"),
            };
            c.after_help(text)
        });
    }
    command
}

fn at(command: Command, path: &[&str], f: &dyn Fn(Command) -> Command) -> Command {
    match path.split_first() {
        None => f(command),
        Some((first, rest)) => command.mut_subcommand(*first, |sub| at(sub, rest, f)),
    }
}

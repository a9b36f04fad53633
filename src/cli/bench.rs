//! `trackiq bench <workload>`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::bench::{BenchOptions, BenchOutcome, Load, Stop, run_bench};
use trackiq_producers::workloads::CmdWorkload;

use super::identity::IdentityArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run a program repeatedly: trackiq bench cmd [flags] -- <program> [args...]
    Cmd(CmdArgs),
    /// A CPU inference-like workload: an MLP forward pass over a batch (f32/f64, threads).
    Compute(ComputeArgs),
    /// HTTP requests, closed loop (--concurrency) or open loop (--rate, Poisson arrivals).
    Http(HttpArgs),
    /// Streamed OpenAI-compatible completions: TTFT, ITL, TPOT, E2EL, tokens/s, goodput.
    Llm(LlmArgs),
    /// trackiq's own benchmark: change-point detection timed against Apache Otava on one synthetic series.
    Changepoints(ChangepointBenchArgs),
    /// trackiq's own benchmark: A/A and A/B of the verdicts on the live pipeline: false alarms under a CPU hog, detection of +10 % work.
    Verdicts(super::bench_verdicts::VerdictsBenchArgs),
    /// trackiq's own benchmark: the cluster-health detectors as a classifier: N real cluster runs with seeded, really injected faults; recall, localization, precision, false alarms, latency.
    Faults(super::bench_faults::FaultsBenchArgs),
    /// trackiq's own benchmark: fleet-scale ingest through the real pipeline (`trackiq up` as its own process):
    /// samples/s produced and end to end, run end → verdict latency, lag, RSS and CPU.
    Ingest(super::bench_ingest::IngestBenchArgs),
    /// trackiq's own benchmark: continuous telemetry in: 1,000 scrape targets every 15 s (and OTLP senders) into `trackiq up`: schedule kept, failures, CPU and memory.
    Scrape(super::bench_scrape::ScrapeBenchArgs),
    /// trackiq's own benchmark: what an idle `trackiq up` costs: its CPU and memory, and the CPU a benchmark beside it sees taken.
    Idle(super::bench_idle::IdleBenchArgs),
    /// trackiq's own benchmark: analyst queries over ≥ 10M archived samples, each as a whole process, against DuckDB's shell.
    Sql(super::bench_sql::SqlBenchArgs),
    /// trackiq's own benchmark: dashboard page load times over a large synthetic history (100,000 runs by default).
    Dashboard(super::bench_dashboard::DashboardBenchArgs),
    /// trackiq's own benchmark: a backfill of result files (10,000 by default) through `trackiq import` into `trackiq up`: runs/s and samples/s.
    Import(super::bench_import::ImportBenchArgs),
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    run: LoopArgs,
    /// Target URL.
    #[arg(long)]
    url: String,
    /// HTTP method of every request.
    #[arg(long, default_value = "GET")]
    method: String,
    /// `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body read from a file.
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = super::spelling::seconds)]
    timeout: Duration,
    /// The server runs on this machine: attribute this machine's power (RAPL, NVML) to it, so
    /// the run gets power, energy and performance per watt. Without it the server is taken to
    /// be elsewhere and the run carries no power readings.
    #[arg(long)]
    server_local: bool,
}

#[derive(Debug, Args)]
pub struct LlmArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    run: LoopArgs,
    /// Endpoint: .../v1/completions or .../v1/chat/completions.
    #[arg(long)]
    url: String,
    /// Model name sent in the request.
    #[arg(long, default_value = "default")]
    model: String,
    /// Prompts, one JSON object per line: {"prompt": ...} or {"messages": [...]}.
    #[arg(long, conflicts_with = "input_len")]
    prompts: Option<std::path::PathBuf>,
    /// Synthetic prompts of this many words.
    #[arg(long)]
    input_len: Option<usize>,
    /// Output tokens asked for.
    #[arg(long, default_value_t = 128)]
    max_tokens: u64,
    /// Goodput SLOs, e.g. ttft=200ms,tpot=50ms,e2el=2s (a request counts only if it meets all).
    #[arg(long)]
    slo: Option<String>,
    /// Environment variable holding the API key (sent as a bearer token; never logged).
    #[arg(long)]
    api_key_env: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "300s", value_parser = super::spelling::seconds)]
    timeout: Duration,
    /// The server runs on this machine: attribute this machine's power (RAPL, NVML) to it, so
    /// the run gets power, energy and performance per watt. Without it the server is taken to
    /// be elsewhere and the run carries no power readings.
    #[arg(long)]
    server_local: bool,
}


#[derive(Debug, Args)]
pub struct ComputeArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    run: LoopArgs,
    /// Threads the batch is split across.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Input features.
    #[arg(long, default_value_t = 256)]
    d_in: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 512)]
    hidden: usize,
    /// Outputs.
    #[arg(long, default_value_t = 10)]
    d_out: usize,
}

/// How long to run, shared by every workload.
#[derive(Debug, Args)]
pub struct LoopArgs {
    /// Iterations run first and not measured.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Measured iterations.
    #[arg(long, conflicts_with = "duration")]
    pub iterations: Option<u64>,
    /// Measure for this long instead of a fixed number of iterations (e.g. 30s; a plain number is seconds).
    #[arg(long, value_parser = super::spelling::seconds)]
    pub duration: Option<Duration>,
    /// Hardware telemetry period (0: none; a plain number is milliseconds).
    #[arg(long, default_value = "100ms", value_parser = super::spelling::millis)]
    pub telemetry_interval: Duration,
    /// Closed loop: this many iterations in flight at once.
    #[arg(long, default_value_t = 1, conflicts_with = "rate")]
    pub concurrency: usize,
    /// Open loop: start iterations at Poisson arrivals, this many per second on average.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the open-loop arrival schedule (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl LoopArgs {
    pub fn options(&self) -> anyhow::Result<BenchOptions> {
        if self.concurrency == 0 {
            anyhow::bail!("--concurrency must be at least 1");
        }
        let load = match self.rate {
            Some(rate) => Load::Open { rate, seed: self.seed.unwrap_or_else(|| trackiq_schemas::now_us() as u64) },
            None => Load::Closed { concurrency: self.concurrency },
        };
        Ok(BenchOptions { warmup: self.warmup, stop: self.stop()?, load, telemetry_interval: self.telemetry_interval, progress: true })
    }

    pub fn stop(&self) -> anyhow::Result<Stop> {
        Ok(match (self.iterations, self.duration) {
            (Some(0), _) => anyhow::bail!("--iterations must be at least 1"),
            (Some(n), _) => Stop::Iterations(n),
            (None, Some(d)) if !d.is_zero() => Stop::Duration(d),
            (None, Some(_)) => anyhow::bail!("--duration must be longer than 0"),
            (None, None) => Stop::Iterations(10),
        })
    }
}

#[derive(Debug, Args)]
pub struct CmdArgs {
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    run: LoopArgs,
    /// After the timed iterations, run the program this many more times under `perf record
    /// -g` and store its call-stack profile with the run (`trackiq profile RUN`); 0: none.
    #[arg(long, default_value_t = 0)]
    profile: u32,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

pub async fn run(config: Config, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Cmd(a) => {
            let mut w = CmdWorkload::new(a.command[0].clone(), a.command[1..].to_vec());
            let identity = a.identity.to_identity(&a.command.join(" "), "command")?;
            let bus = Bus::new(config.bus.clone());
            let out = run_bench(&bus, &identity, &mut w, &a.run.options()?).await?;
            print_outcome(&out);
            // Kept so that `confirm --run` can time this command line again.
            super::recorded::keep(&config, &out.run_id, &a.command).await;
            if a.profile > 0 {
                // Where perf cannot sample the run still stands; it just carries no profile.
                match trackiq_producers::profile::perf() {
                    Ok(perf) => {
                        let (program, args) = (a.command[0].clone(), a.command[1..].to_vec());
                        let folded = tokio::task::spawn_blocking(move || trackiq_producers::profile::record(&perf, &program, &args, None, a.profile)).await??;
                        super::profile::store(&config, &out.run_id, &folded).await?;
                        println!("profile: {:.0} ms of CPU sampled over {} runs under perf (`trackiq profile {}`)", folded.values().sum::<u64>() as f64 / 1e6, a.profile, out.run_id);
                    }
                    Err(why) => println!("no profile: {why}"),
                }
            }
            print_next(&config, &out.run_id);
            Ok(if out.failures > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        BenchCommand::Changepoints(a) => changepoint_bench(a),
        BenchCommand::Verdicts(a) => super::bench_verdicts::run(config, a).await,
        BenchCommand::Faults(a) => super::bench_faults::run(config, a).await,
        BenchCommand::Ingest(a) => super::bench_ingest::run(config, a).await,
        BenchCommand::Idle(a) => super::bench_idle::run(config, a).await,
        BenchCommand::Scrape(a) => super::bench_scrape::run(config, a).await,
        BenchCommand::Sql(a) => super::bench_sql::run(config, a).await,
        BenchCommand::Dashboard(a) => super::bench_dashboard::run(config, a).await,
        BenchCommand::Import(a) => super::bench_import::run(config, a).await,
        BenchCommand::Llm(a) => {
            use trackiq_producers::llm::{LlmWorkload, Slo, prompts_from_jsonl, synthetic_prompts};
            let prompts = match (&a.prompts, a.input_len) {
                (Some(f), _) => prompts_from_jsonl(&std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading --prompts {}: {e}", f.display()))?)?,
                (None, Some(n)) => synthetic_prompts(64, n),
                (None, None) => anyhow::bail!("give --prompts FILE or --input-len N"),
            };
            let slo = a.slo.as_deref().map(Slo::parse).transpose()?.unwrap_or_default();
            let key = match &a.api_key_env {
                Some(v) => Some(std::env::var(v).map_err(|_| anyhow::anyhow!("--api-key-env {v}: variable not set"))?),
                None => None,
            };
            let mut w = LlmWorkload::new(&a.url, &a.model, prompts, a.max_tokens, key, slo, a.timeout)?.server_local(a.server_local);
            let mut identity = a.identity.to_identity(&a.model, "serving")?;
            // The endpoint without its path: a path or query may carry a secret.
            identity.backend.get_or_insert_with(|| trackiq_sinks::webhook::redact(&a.url));
            let bus = Bus::new(config.bus.clone());
            let out = run_bench(&bus, &identity, &mut w, &a.run.options()?).await?;
            print_outcome(&out);
            print_next(&config, &out.run_id);
            Ok(if out.failures > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        BenchCommand::Http(a) => {
            use trackiq_producers::http::{HttpRequest, HttpWorkload};
            let body = match (&a.body, &a.body_file) {
                (Some(b), _) => Some(b.clone().into_bytes()),
                (None, Some(f)) => Some(std::fs::read(f).map_err(|e| anyhow::anyhow!("reading --body-file {}: {e}", f.display()))?),
                (None, None) => None,
            };
            let req = HttpRequest { url: a.url.clone(), method: a.method.clone(), headers: a.headers.clone(), body, timeout: a.timeout };
            let mut w = HttpWorkload::new(&req)?.server_local(a.server_local);
            let identity = a.identity.to_identity(&format!("{} {}", a.method.to_ascii_uppercase(), a.url), "http")?;
            let bus = Bus::new(config.bus.clone());
            let out = run_bench(&bus, &identity, &mut w, &a.run.options()?).await?;
            print_outcome(&out);
            print_next(&config, &out.run_id);
            Ok(if out.failures > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        BenchCommand::Compute(a) => {
            use trackiq_producers::compute::{ComputeWorkload, MlpShape, Precision};
            let precision = match a.identity.precision.as_deref().unwrap_or("f32") {
                "f32" | "fp32" => Precision::F32,
                "f64" | "fp64" => Precision::F64,
                other => anyhow::bail!("bench compute runs f32 or f64, not --precision {other}"),
            };
            let batch = a.identity.batch_or(32)?;
            let shape = MlpShape { batch, d_in: a.d_in, hidden: a.hidden, d_out: a.d_out, threads: a.threads };
            let mut w = ComputeWorkload::new(shape, precision)?;
            let mut identity = a.identity.to_identity(&format!("mlp-{}x{}x{}", a.d_in, a.hidden, a.d_out), "inference")?;
            identity.batch_size.get_or_insert(batch as i64);
            identity.precision.get_or_insert_with(|| precision.as_str().to_string());
            identity.backend.get_or_insert_with(|| format!("cpu-matrixmultiply-{}t", a.threads));
            let bus = Bus::new(config.bus.clone());
            let out = run_bench(&bus, &identity, &mut w, &a.run.options()?).await?;
            print_outcome(&out);
            print_next(&config, &out.run_id);
            let items = out.iterations as f64 * batch as f64 / out.wall.as_secs_f64().max(1e-9);
            println!("throughput: {items:.1} items/s ({batch} items per iteration)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where the run's verdict will be: printed after every benchmark, so the run id need not be
/// copied out of the table.
fn print_next(config: &Config, run_id: &str) {
    let min = config.verdict.min_baseline;
    println!("verdict: {}   (a series' first {min} runs are insufficient_data: no baseline yet)", super::hint::like(config, &["gate", run_id]));
}

/// The end-of-run table.
pub fn print_outcome(out: &BenchOutcome) {
    let mut lat = out.latencies_ms.clone();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["run", "iterations", "failed", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "iter/s"]);
    let s = trackiq_stats::summarize(&mut lat);
    let f = |x: f64| format!("{x:.3}");
    let rate = out.iterations as f64 / out.wall.as_secs_f64().max(1e-9);
    match s {
        Some(s) => t.add_row([out.run_id.clone(), out.iterations.to_string(), out.failures.to_string(), f(s.mean), f(s.p50), f(s.p95), f(s.p99), f(s.max), format!("{rate:.2}")]),
        None => t.add_row([out.run_id.clone(), "0".into(), "0".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]),
    };
    println!("{t}");
    if out.failures > 0 {
        let reasons: Vec<String> = out.failure_reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
        println!("{} of {} iterations failed ({})", out.failures, out.iterations, reasons.join(", "));
    }
}

/// `trackiq bench changepoints`: E-divisive change points on one synthetic series, timed
/// for trackiq and for Apache Otava (`pip install apache-otava`) in the same run.
#[derive(Debug, Args)]
pub struct ChangepointBenchArgs {
    /// Length of the series.
    #[arg(long, default_value_t = 10_000)]
    points: usize,
    /// A level shift every this many points.
    #[arg(long, default_value_t = 500)]
    segment: usize,
    /// E-divisive window length (Otava's window_len), the same for both.
    #[arg(long, default_value_t = 30)]
    window_len: usize,
    /// Significance of a change point (Otava's max_pvalue).
    #[arg(long, default_value_t = 0.001)]
    max_pvalue: f64,
    /// Smallest relative change kept, 0.05 = 5 % (Otava's min_magnitude).
    #[arg(long, default_value_t = 0.0)]
    min_magnitude: f64,
    /// Seed of the synthetic series.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Python interpreter with apache-otava installed.
    #[arg(long, default_value = "python3")]
    python: String,
}

const OTAVA_TIMER: &str = r#"
import json, sys, time
from otava.analysis import compute_change_points
args = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
cps, _ = compute_change_points(args["series"], window_len=args["window_len"], max_pvalue=args["max_pvalue"], min_magnitude=args["min_magnitude"])
print(json.dumps({"seconds": time.perf_counter() - t0, "indexes": [int(c.index) for c in cps]}))
"#;

pub fn changepoint_bench(a: ChangepointBenchArgs) -> anyhow::Result<ExitCode> {
    use trackiq_stats::changepoint::{ChangePointParams, change_points};
    let series = trackiq_stats::synthetic::noisy_steps(a.points, a.segment, a.seed);
    let params = ChangePointParams { window_len: a.window_len, max_pvalue: a.max_pvalue, min_magnitude: a.min_magnitude };
    let t0 = std::time::Instant::now();
    let ours: Vec<usize> = change_points(&series, &params).iter().map(|c| c.index).collect();
    let ours_s = t0.elapsed().as_secs_f64();

    let input = std::env::temp_dir().join(format!("trackiq-cp-bench-{}.json", std::process::id()));
    let payload = serde_json::json!({"series": series, "window_len": a.window_len, "max_pvalue": a.max_pvalue, "min_magnitude": a.min_magnitude});
    std::fs::write(&input, payload.to_string())?;
    let out = std::process::Command::new(&a.python).args(["-c", OTAVA_TIMER]).arg(&input).output();
    let _ = std::fs::remove_file(&input);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["implementation", "points", "seconds", "change points"]);
    t.add_row(["trackiq (Rust)".to_string(), a.points.to_string(), format!("{ours_s:.4}"), ours.len().to_string()]);
    let otava = match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            let idx: Vec<usize> = v["indexes"].as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as usize).collect()).unwrap_or_default();
            Some((v["seconds"].as_f64().unwrap_or(f64::NAN), idx))
        }
        Ok(o) => {
            eprintln!("Otava did not run ({}): {}", a.python, String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default());
            None
        }
        Err(e) => {
            eprintln!("could not start {}: {e}", a.python);
            None
        }
    };
    if let Some((secs, idx)) = &otava {
        t.add_row(["Apache Otava (Python)".to_string(), a.points.to_string(), format!("{secs:.4}"), idx.len().to_string()]);
    }
    println!("{t}");
    match otava {
        Some((secs, idx)) => {
            println!("speed-up: Otava time / trackiq time = {:.1}×", secs / ours_s);
            if idx == ours {
                println!("answers: identical ({} change points)", ours.len());
                Ok(ExitCode::SUCCESS)
            } else {
                let only_ours: Vec<_> = ours.iter().filter(|i| !idx.contains(i)).collect();
                let only_otava: Vec<_> = idx.iter().filter(|i| !ours.contains(i)).collect();
                println!("answers: DIFFER; only trackiq: {only_ours:?}; only Otava: {only_otava:?}");
                Ok(ExitCode::from(1))
            }
        }
        None => Ok(ExitCode::from(2)),
    }
}

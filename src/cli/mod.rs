//! Command-line parsing and dispatch. Subcommands stay thin: they map flags onto the
//! library crates and print results.

mod alerts;
mod analysis;
mod baseline;
mod bench;
mod bisect;
mod bench_faults;
mod bench_import;
mod bench_ingest;
mod bench_dashboard;
mod bench_idle;
mod bench_scrape;
mod bench_sql;
mod bench_verdicts;
mod broker;
mod cluster;
mod compact;
mod compare;
mod confirm;
mod demo;
mod examples;
mod gate;
mod hint;
mod history;
mod metrics;
mod identity;
mod import;
mod ingest;
mod profile;
mod recorded;
mod record;
mod report;
mod serve_sql;
mod spelling;
mod sql;
mod duckdb_views;
mod tables;
mod status;
mod transfer;
mod ui;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use trackiq::config::{Config, Overrides};

/// Event-sourced performance telemetry: benchmarks → Kafka → summaries, Parquet history,
/// regression verdicts, reports and alerts.
#[derive(Debug, Parser)]
#[command(name = "trackiq", version, about)]
pub struct Cli {
    /// TOML configuration file (see infra/trackiq.example.toml). Env: TRACKIQ_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data URL: file://dir or s3://bucket/prefix. Env: TRACKIQ_DATA. Default: file://./trackiq-data.
    #[arg(long, global = true)]
    data: Option<String>,
    /// Bootstrap servers host:port,... of a Kafka cluster to use instead of the embedded broker. Env: TRACKIQ_BROKERS.
    #[arg(long, global = true)]
    brokers: Option<String>,
    /// Address of the embedded broker: where `up` and `broker` serve it, and where producers find it. Env: TRACKIQ_LISTEN. Default: 127.0.0.1:9092.
    #[arg(long = "broker-listen", global = true)]
    broker_listen: Option<String>,
    /// Prefix of topic names. Env: TRACKIQ_TOPIC_PREFIX. Default: trackiq.
    #[arg(long, global = true)]
    topic_prefix: Option<String>,
    /// librdkafka option key=value passed through, e.g. security.protocol=SASL_SSL (repeatable).
    #[arg(long = "kafka-option", global = true)]
    kafka_options: Vec<String>,
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline: embedded broker (unless --brokers), processors and sinks, until Ctrl-C.
    Up(up::UpArgs),
    /// Run the embedded Kafka-API broker alone (for `trackiq up --brokers ... --role ...`), until Ctrl-C.
    Broker(broker::BrokerArgs),
    /// What a running `trackiq up` reports: stages, consumer lag, Parquet written (from its metrics).
    Status(status::StatusArgs),
    /// A self-contained tour: baseline runs, a slower run, its block verdict, report and webhook.
    Demo(demo::DemoArgs),
    /// Record a run from figures measured elsewhere.
    Record(record::RecordArgs),
    /// Benchmark a workload, one sample per iteration.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Distributed-training health: real ring all-reduce between worker processes, faults, sweeps.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Query the Parquet history with SQL (tables: runs, samples, summaries, verdicts, trends, baselines, dlq, detections, alerts, alert_actions, notifications, approvals).
    Sql(sql::SqlArgs),
    /// The history's tables and views; with a name, its columns, types and meaning; --duckdb: views for DuckDB.
    Tables(tables::TablesArgs),
    /// Merge the history's small Parquet objects into large sorted ones (atomic; safe to interrupt).
    Compact(compact::CompactArgs),
    /// Pin, reset or show series baselines.
    #[command(subcommand)]
    Baseline(baseline::BaselineCommand),
    /// The web dashboard over a history (read-only; no pipeline needed).
    Ui(ui::UiArgs),
    /// The history over the PostgreSQL wire protocol, read-only, for psql, Grafana, pandas and DBeaver (no pipeline needed).
    ServeSql(serve_sql::ServeSqlArgs),
    /// On-call: list, acknowledge and silence alerts.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Judge the newest run of each series against the runs before it, with any model.
    Regression(analysis::RegressionArgs),
    /// Trend of a metric per series: OLS, Theil-Sen, Mann-Kendall, class.
    Trend(analysis::TrendArgs),
    /// Change points of a metric per series (E-divisive means, as Apache Otava).
    Changepoints(analysis::ChangepointArgs),
    /// Compare two runs metric by metric, with significance from their raw samples.
    Compare(compare::CompareArgs),
    /// CI gate: exit 1 when a verdict of the run (or commit) blocks; prints Markdown.
    Gate(gate::GateArgs),
    /// Is a regression real? Baseline and candidate commands run interleaved (A B A B ...), judged by two-sample t.
    Confirm(confirm::ConfirmArgs),
    /// Which commit made it slower? Builds and times commits in a git worktree, binary-searching from a good to a bad one.
    Bisect(bisect::BisectArgs),
    /// A run's call-stack profile (from `bench cmd --profile`): top functions, flame graph SVG; --against RUN: what changed.
    Profile(profile::ProfileArgs),
    /// Fleet report over the last N days: counts, regressions, open alerts, trends, movers, charts (Markdown or HTML).
    Report(report::ReportArgs),
    /// Export a run as a TrackiqResult JSON (for the original TrackIQ tools) or CSV of samples.
    Export(transfer::ExportArgs),
    /// Import results of other tools as runs: pytest-benchmark, criterion, google-benchmark, hyperfine, vllm, bmf, autoperfpy, tracker-csv, trackiq-json, nccl-tests, or auto.
    Import(import::ImportArgs),
    /// The metric catalog: unit, direction, kind and dimensions of every metric, and yours.
    Metrics(metrics::MetricsArgs),
}

fn init_logs(verbose: u8, default: &str) {
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    // librdkafka and tansu are noisy at info; keep them at warn unless RUST_LOG says otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,trackiq={level},trackiq_infra={level},trackiq_processors={level},trackiq_sinks={level},trackiq_producers={level}")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// Commands that never talk to Kafka: the broker flags are hidden from their help (they are
/// still accepted, so one environment or alias serves every command).
const WITHOUT_KAFKA: &[&str] = &["status", "sql", "tables", "compact", "ui", "serve-sql", "regression", "trend", "changepoints", "compare", "report", "export", "metrics"];
const KAFKA_FLAGS: &[&str] = &["brokers", "broker_listen", "topic_prefix", "kafka_options"];

/// The parser for `args` (program name first): the derived one with every command's examples
/// ([`examples`]); for a command that never talks to Kafka, the broker flags hidden from its
/// help. They are hidden on the root before clap builds the parser, from the command word of
/// `args`: changing a propagated global flag on a subcommand after `build()` broke that
/// command's `--help` and its `--kafka-option` ("a value is required").
fn command_for(args: &[std::ffi::OsString]) -> clap::Command {
    let mut command = examples::attach(Cli::command());
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if spelling::command_of(&words).first().is_some_and(|c| WITHOUT_KAFKA.contains(c)) {
        for flag in KAFKA_FLAGS {
            command = command.mut_arg(flag, |a| a.hide(true));
        }
    }
    command
}

/// The command line, old spellings rewritten ([`spelling`]) and parsed.
fn parse() -> Cli {
    let (args, warnings) = spelling::modernize(std::env::args_os().collect());
    for w in warnings {
        eprintln!("{w}");
    }
    let matches = command_for(&args).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

pub fn main() -> ExitCode {
    let cli = parse();
    let default_level = if matches!(cli.command, Command::Up(_) | Command::Broker(_)) { "info" } else { "warn" };
    init_logs(cli.verbose, default_level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let webhooks = match &cli.command {
        Command::Up(a) => a.webhook.clone(),
        _ => Vec::new(),
    };
    let overrides = Overrides {
        config: cli.config,
        data: cli.data,
        brokers: cli.brokers,
        listen: cli.broker_listen,
        topic_prefix: cli.topic_prefix,
        webhooks,
        kafka_options: cli.kafka_options,
    };
    let config = Config::load(&overrides, |k| std::env::var(k).ok())?;
    // Commands that read the history once and answer: an empty answer because the history is
    // elsewhere says so (`gate` waits for the pipeline, and names the history if it times out).
    if matches!(
        cli.command,
        Command::Sql(_) | Command::Regression(_) | Command::Trend(_) | Command::Changepoints(_) | Command::Compare(_) | Command::Report(_) | Command::Export(_)
    ) {
        hint::note_missing_history(&config.data);
    }
    match cli.command {
        Command::Up(a) => up::run(config, a).await,
        Command::Broker(a) => broker::run(config, a).await,
        Command::Status(a) => status::run(config, a).await,
        Command::Demo(a) => demo::run(config, a).await,
        Command::Record(a) => record::run(config, a).await,
        Command::Bench(b) => bench::run(config, b).await,
        Command::Cluster(c) => cluster::run(config, c).await,
        Command::Sql(a) => sql::run(config, a).await,
        Command::Tables(a) => tables::run(config, a).await,
        Command::Compact(a) => compact::run(config, a).await,
        Command::Baseline(c) => baseline::run(config, c).await,
        Command::Alerts(c) => alerts::run(config, c).await,
        Command::Ui(a) => ui::run(config, a).await,
        Command::ServeSql(a) => serve_sql::run(config, a).await,
        Command::Regression(a) => analysis::regression(config, a).await,
        Command::Trend(a) => analysis::trend(config, a).await,
        Command::Changepoints(a) => analysis::changepoints(config, a).await,
        Command::Compare(a) => compare::run(config, a).await,
        Command::Gate(a) => gate::run(config, a).await,
        Command::Confirm(a) => confirm::run(config, a).await,
        Command::Bisect(a) => bisect::run(config, a).await,
        Command::Profile(a) => profile::run(config, a).await,
        Command::Report(a) => report::run(config, a).await,
        Command::Export(a) => transfer::export(config, a).await,
        Command::Import(a) => import::run(config, a).await,
        Command::Metrics(a) => metrics::run(config, a),
    }
}

#[cfg(test)]
mod tests;

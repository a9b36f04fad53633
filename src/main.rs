//! `trackiq`: benchmark and telemetry events to Kafka, summaries, Parquet history, verdicts,
//! reports and alerts. Each subcommand lives in its own module under `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

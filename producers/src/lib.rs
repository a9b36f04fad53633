//! trackiq producers: measure, then emit Avro events to Kafka.
//!
//! Entry points: [`record::record`] for figures measured elsewhere, [`bench::run_bench`]
//! to benchmark a [`bench::Workload`] (a program, or the built-in matrix multiply). Both build a run identity ([`identity::run_started`]) and emit
//! through a [`emitter::RunEmitter`].
//!
//! # Layout
//! - [`http`] — `http`: one request per iteration, failures counted by reason
//! - [`importers`] — `trackiq import <format>` and the HTTP ingest: other tools' results as runs
//! - [`load`] — `bench ingest`: synthetic fleet load (hosts × series streaming runs)
//! - [`llm`] — `llm`: streamed OpenAI-compatible requests: TTFT, ITL, TPOT, E2EL, goodput
//! - [`identity`] — identity flags, platform and git detection
//! - [`emitter`] — RunStarted / batched SampleBatch / RunFinished
//! - [`record`] — `trackiq record`
//! - [`profile`] — `bench cmd --profile`: call stacks sampled with perf, folded; shares and their differences
//! - [`bench`] — the benchmark loop shared by every workload
//! - [`cluster`] — ring all-reduce over TCP, nccl-tests definitions and parser (cluster producer, in progress)
//! - [`compute`] — `compute`: an MLP forward pass (f32/f64, batched, threaded)
//! - [`telemetry`] — host (procfs, RAPL) and GPU (NVML at run time) sampled during runs
//! - [`streams`] — continuous telemetry in: Prometheus scrape jobs and OTLP, windows as runs
//! - [`units`] — durations on the command line (`50ms`, `1.5s`)
//! - [`workloads`] — `cmd` (a child process per iteration) and `matmul` (CPU)

pub mod bench;
pub mod cluster;
pub mod compute;
pub mod emitter;
pub mod error;
pub mod http;
pub mod identity;
pub mod importers;
pub mod llm;
pub mod load;
pub mod profile;
pub mod record;
pub mod streams;
pub mod telemetry;
pub mod units;
pub mod workloads;

pub use error::ProducerError;

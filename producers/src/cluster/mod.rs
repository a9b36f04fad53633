//! Distributed-training health: real collectives between real processes.
//!
//! Entry point: [`coordinator::run_cluster`] (`trackiq cluster run` / `cluster bench`), which
//! launches or awaits [`worker::run_worker`] processes (`trackiq cluster worker`).
//!
//! # Layout
//! - [`coordinator`] — rendezvous, heartbeats, failure decisions, samples to Kafka
//! - [`worker`] — one rank: training steps or a collective sweep, faults performed for real
//! - [`ring`] — ring all-reduce (reduce-scatter + all-gather) over TCP
//! - [`delayed_link`] — the `net-delay` fault: a link with latency
//! - [`model`] — the linear model trained by SGD, checksums and probes
//! - [`faults`] — `--fault` specifications
//! - [`fault_matrix`] — the seeded faults of `trackiq bench faults`
//! - [`admission`] — who may join a run: handshake and hello per connection, refusals logged
//! - [`auth`] — the shared-secret challenge-response every cluster connection starts with
//! - [`protocol`] — coordinator ⇄ worker control messages (JSON lines)
//! - [`nccl`] — nccl-tests bandwidth definitions, text and JSON output parsers

pub mod admission;
pub mod auth;
pub mod coordinator;
pub mod delayed_link;
pub mod fault_matrix;
pub mod faults;
pub mod model;
pub mod nccl;
pub mod protocol;
pub mod ring;
pub mod worker;

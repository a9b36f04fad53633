//! The `trackiq` command: one binary whose subcommands wire the crates together.
//!
//! # Layout
//! - [`config`] — the configuration and its layering (defaults → file → env → flags)
//! - [`stack`] — the running pipeline: embedded broker + processors + sinks
//! - `cli/` (binary) — one small module per subcommand

pub mod config;
pub mod stack;

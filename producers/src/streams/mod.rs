//! Continuous telemetry in: Prometheus scrape jobs (`[[scrape]]`) and an OTLP/HTTP receiver
//! (`[otlp]`) in `trackiq up`. Fleet telemetry is a stream, not runs: a **window** of one
//! target's readings is a run of its series, and a **deploy** (a new value of the version
//! label or attribute) starts new windows under the new `version_tag`, so a release's windows
//! are judged against the previous release's with the same significance rules and alerts as
//! any run ([`window`] says exactly how).
//!
//! Entry point: [`service::start`].
//!
//! # Layout
//! - [`config`] — `[[scrape]]` and `[otlp]`
//! - [`exposition`] — the Prometheus / OpenMetrics text format
//! - [`scrape`] — scrape loops: one timer per target, an exposition → an [`reading::Observation`]
//! - [`otlp`] — `POST /v1/metrics`: OTLP protobuf or JSON → observations
//! - [`otlp_decode`] — OTLP/HTTP bodies (protobuf, JSON) → observations, pure (fuzzed)
//! - [`reading`] — what both sources produce: targets, points, readings
//! - [`mapping`] — exporters' names (DCGM, vLLM, OpenTelemetry GenAI, node_exporter) → the catalog
//! - [`histogram`] — percentiles from bucket differences, with their error bound
//! - [`window`] — readings → windows → runs (rates, percentiles, deploys)
//! - [`service`] — the task that owns the windows, publishes runs and `scrape_failed`

pub mod config;
pub mod exposition;
pub mod histogram;
pub mod mapping;
pub mod otlp;
pub mod otlp_decode;
pub mod reading;
pub mod scrape;
pub mod service;
pub mod window;

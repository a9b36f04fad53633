//! Statistics as pure functions over slices: no I/O, no async, no allocation beyond results.
//! Used by the processors (summaries, verdicts) and by producers' terminal tables.
//!
//! Definitions follow numpy/scipy so results can be checked against them: percentiles use
//! numpy's default "linear" method, standard deviation is the sample one (n-1, `ddof=1`).
//!
//! # Layout
//! - [`accumulator`] — [`ValueAccumulator`]: exact values up to a limit, then a DDSketch
//!   (bounded memory, relative error α on percentiles), mergeable
//! - [`summary`] — mean/stdev (Welford), percentiles, histogram, [`summarize`]
//! - [`changepoint`] — E-divisive means change points, as Apache Otava computes them
//! - [`hypothesis`] — Mann-Whitney U, Welch's t, F-test, Brown-Forsythe
//! - [`interleaved`] — interleaved baseline/candidate rounds judged by two-sample t (`trackiq confirm`)
//! - [`models`] — Bencher's seven threshold models (static … delta-IQR)
//! - [`profiles`] — folded call stacks: functions' self/total shares and what moved between two profiles
//! - [`numpy`] — numpy's pairwise summation and moments, for decisions at thresholds
//! - [`significance`] — magnitude-and-significance judging (runs and samples t-tests,
//!   effect interval) and Holm's adjustment across a run's metrics
//! - [`scaling`] — scaling efficiency from throughput at several worker counts
//! - [`synthetic`] — seeded noise and stepped series for simulations and benchmarks
//! - [`threshold`] — the seed's percentage model giving a severity from a baseline window
//! - [`trend`] — OLS, Theil-Sen, Mann-Kendall and the seed's trend classes

pub mod accumulator;
pub mod changepoint;
pub mod hypothesis;
pub mod interleaved;
pub mod models;
pub mod numpy;
pub mod profiles;
pub mod scaling;
pub mod significance;
pub mod summary;
pub mod synthetic;
pub mod threshold;
pub mod trend;

pub use accumulator::{AccumulatedSummary, Precision, ValueAccumulator};
pub use summary::{Summary, cv, histogram, mean_stdev, percentile_sorted, summarize};
pub use threshold::{Judgement, ModelKind, ModelSpec, PercentageModel, judge, judge_percentage};

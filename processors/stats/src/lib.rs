//! Statistics as pure functions over slices: no I/O, no async, no allocation beyond results.
//! Used by the processors (summaries, verdicts) and by producers' terminal tables.
//!
//! Definitions follow numpy/scipy so results can be checked against them: percentiles use
//! numpy's default "linear" method, standard deviation is the sample one (n-1, `ddof=1`).
//!
//! # Layout
//! - [`summary`] — mean/stdev (Welford), percentiles, histogram, [`summarize`]
//! - [`changepoint`] — E-divisive means change points, as Apache Otava computes them
//! - [`numpy`] — numpy's pairwise summation and moments, for decisions at thresholds
//! - [`threshold`] — threshold models giving limits and a severity from a baseline window

pub mod changepoint;
pub mod numpy;
pub mod summary;
pub mod threshold;

pub use summary::{Summary, histogram, mean_stdev, percentile_sorted, summarize};
pub use threshold::{Judgement, PercentageModel, judge_percentage};

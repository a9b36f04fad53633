//! Statistics as pure functions over slices: no I/O, no async, no allocation beyond results.
//!
//! Definitions follow numpy/scipy so results can be checked against them: percentiles use
//! numpy's default "linear" method, standard deviation is the sample one (n-1, `ddof=1`).

pub mod summary;
pub mod threshold;

pub use summary::{Summary, histogram, mean_stdev, percentile_sorted, summarize};
pub use threshold::{PercentageModel, Judgement, judge_percentage};

//! Bounded-memory accumulation of one metric's values, for its summary at the end of a run
//! (issue #9): memory stops growing with the length of the run.
//!
//! A [`ValueAccumulator`] keeps the values themselves up to `exact_limit` of them, so a short
//! run gets exactly what [`summarize`] and [`histogram`] give. Past the limit it moves them
//! into a DDSketch and keeps only that.
//!
//! # What stays exact
//! Count, min and max always. Mean and sample standard deviation are kept by Welford's
//! streaming update (Chan et al.'s pairwise update on merge); in sketch mode they differ from
//! `summarize`'s Welford over the sorted values only by rounding in the last bits.
//!
//! # Error bound of sketch mode
//! DDSketch (Masson, Rim & Lee, VLDB 2019) counts |x| in bucket ⌊log_γ |x|⌋ with
//! γ = (1+α)/(1−α) and answers for bucket k with 2γ^(k+1)/(γ+1), which is within α of every
//! value x in the bucket relative to x. So the value it gives for the r-th smallest value x₍r₎
//! is within α·|x₍r₎| of it; α is [`SKETCH_RELATIVE_ACCURACY`], 1 %. Percentiles interpolate between the ranks
//! ⌊h⌋ and ⌈h⌉ around h = (n−1)·q/100 as numpy's default linear method does, so against
//! `numpy.percentile(x, q)` = p each reported p̂ has
//! |p̂ − p| ≤ α · max(|x₍⌊h⌋₎|, |x₍⌈h⌉₎|): relative error α whenever the two neighbours
//! have the same sign, as durations always do. It holds while, for each sign, the largest
//! magnitude is under γ^(bins−1) ≈ 6·10¹⁷ times the smallest (17 decades, see
//! [`SKETCH_MAX_BINS`]); past that the sketch merges its smallest magnitudes into one bucket,
//! overstating them, rather than grow.
//!
//! The histogram has `histogram`'s edges, computed from the exact min and max; its counts are
//! numpy's over the sketch's value for every rank (clamped to [min, max]), i.e. each value is
//! counted in the bin of a value within α·|x| of it. Only values that close to an inner edge
//! can land in the neighbouring bin; counts always add up to the count.
//!
//! # Memory bound
//! Heap bytes per accumulator, besides its 72 inline bytes. Exact mode: at most
//! `exact_limit` × 8 (the buffer never grows past the limit). Sketch mode: at most
//! [`SKETCH_HEAP_BOUND_BYTES`] = 65,712 bytes whatever the number of values: two stores
//! (positive and negative values) of at most [`SKETCH_MAX_BINS`] u64 counts, whose `Vec`s may
//! hold up to twice that after growing, plus the boxed sketch. Only the one push that switches
//! holds both for a moment. Ten million values of both signs over 30 decades, the worst case,
//! take 37,040 bytes (`tests/accumulator_memory.rs`); latencies from 1 µs to 100 s fill
//! about 920 buckets of one store, some 8 KiB.
//!
//! # Why `sketches-ddsketch`
//! - Relative error on values: latency tails span decades, and 1 % of p99 means as much at
//!   1 ms as at 10 s. t-digest and KLL bound the error in rank, not in value, and in a heavy
//!   tail a small rank error is a large value error; t-digest has no hard bound at all.
//! - Exact merges: bucket counts add, so merging the sketches of a partition gives the sketch
//!   of the union, in any order. t-digest re-clusters on merge and drifts with merge order.
//! - Bounded: its collapsing dense store never exceeds the bin limit.
//! - No dependencies; a port of DataDog's Go implementation kept aligned with the Java one,
//!   used by Tantivy, Vortex and Daft.
//!
//! # Input contract
//! Values must be finite: the caller validates them (`trackiq_schemas::metrics::validate_value`,
//! as producers do) and `push` only checks in debug builds. A NaN would poison the mean and an
//! infinity would break the sketch's bucket arithmetic.

use sketches_ddsketch::{Config, DDSketch};

use crate::summary::{Summary, histogram, histogram_edges, lerp, summarize};

/// α: relative accuracy of sketch-mode percentiles (the crate's default): a fifth of the
/// smallest change the percentage verdict flags (5 %); halving α would double the buckets.
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;
/// Buckets per sign before the lowest magnitudes collapse: with α = 1 % they span a ratio of
/// γ^2047 ≈ 6·10¹⁷ (DDSketch's default).
pub const SKETCH_MAX_BINS: u32 = 2048;
/// Magnitudes at or below this count as zero. The smallest normal float, not the crate's
/// default 1e-9: metrics such as a loss may be that small, and the relative bound must hold
/// for them too. Buckets are allocated only between the magnitudes present, so it costs nothing.
const SKETCH_MIN_MAGNITUDE: f64 = f64::MIN_POSITIVE;
/// Heap bytes of an accumulator in sketch mode, at most: the boxed sketch plus two stores of
/// `SKETCH_MAX_BINS` u64 counts, doubled because a `Vec` grows to up to twice what it holds.
pub const SKETCH_HEAP_BOUND_BYTES: usize = size_of::<DDSketch>() + 2 * 2 * SKETCH_MAX_BINS as usize * size_of::<u64>();
/// Smallest growth of the exact-mode buffer, so that the first pushes don't reallocate each time.
const MIN_GROWTH: usize = 16;

/// Whether a summary's percentiles and histogram counts are exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Precision {
    /// Everything is what `summarize` and `histogram` give.
    Exact,
    /// Percentiles and histogram counts come from the sketch, within `relative_error` (α) as
    /// the module documentation states; count, mean, stdev, min and max are exact.
    Sketched { relative_error: f64 },
}

impl Precision {
    pub fn is_exact(self) -> bool {
        self == Precision::Exact
    }
}

/// A summary from a [`ValueAccumulator`]: `summarize`'s statistics and `histogram`'s edges and
/// counts (empty for zero bins), and how exact they are.
#[derive(Debug, Clone, PartialEq)]
pub struct AccumulatedSummary {
    pub summary: Summary,
    pub edges: Vec<f64>,
    pub counts: Vec<i64>,
    pub precision: Precision,
}

/// One metric's values: exact up to a limit, a DDSketch beyond. Mergeable.
#[derive(Clone)]
pub struct ValueAccumulator {
    exact_limit: usize,
    moments: Moments,
    store: Store,
}

impl std::fmt::Debug for ValueAccumulator {
    // By hand: the sketch has no Debug, and its thousands of counts would say little.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueAccumulator")
            .field("exact_limit", &self.exact_limit)
            .field("count", &self.moments.count)
            .field("exact", &self.is_exact())
            .finish()
    }
}

#[derive(Clone)]
enum Store {
    Exact(Vec<f64>),
    // Boxed so that an accumulator still in exact mode, the common case, stays small.
    Sketch(Box<DDSketch>),
}

impl ValueAccumulator {
    /// An empty accumulator that keeps up to `exact_limit` values exactly (0: sketch at once).
    pub fn new(exact_limit: usize) -> Self {
        ValueAccumulator { exact_limit, moments: Moments::default(), store: Store::Exact(Vec::new()) }
    }

    /// Adds a finite value (see the input contract in the module documentation).
    pub fn push(&mut self, x: f64) {
        debug_assert!(x.is_finite(), "ValueAccumulator::push({x}): callers validate values");
        self.moments.push(x);
        match &mut self.store {
            Store::Exact(values) if values.len() < self.exact_limit => {
                if values.len() == values.capacity() {
                    // Grow geometrically but never past the limit: exact mode's memory bound.
                    values.reserve_exact(values.len().max(MIN_GROWTH).min(self.exact_limit - values.len()));
                }
                values.push(x);
            }
            Store::Exact(_) => {
                self.sketch_mut().add(x);
            }
            Store::Sketch(sketch) => sketch.add(x),
        }
    }

    /// Adds every value of `other`, as if they had been pushed here. Stays exact while both are
    /// exact and the values together fit this accumulator's limit, which the result keeps.
    pub fn merge(&mut self, other: &ValueAccumulator) {
        self.moments.merge(&other.moments);
        match (&mut self.store, &other.store) {
            (Store::Exact(mine), Store::Exact(theirs)) if mine.len() + theirs.len() <= self.exact_limit => {
                mine.extend_from_slice(theirs);
            }
            (_, Store::Exact(theirs)) => {
                let sketch = self.sketch_mut();
                theirs.iter().for_each(|&x| sketch.add(x));
            }
            (_, Store::Sketch(theirs)) => {
                // Both sketches are built from the same constants, the only thing merge checks.
                self.sketch_mut().merge(theirs).expect("sketches share one configuration");
            }
        }
    }

    /// Number of values pushed or merged in.
    pub fn count(&self) -> usize {
        self.moments.count
    }

    /// Whether values are still kept exactly.
    pub fn is_exact(&self) -> bool {
        matches!(self.store, Store::Exact(_))
    }

    /// Summary and histogram with `bins` bins of every value so far; `None` when there are none.
    /// While exact, identical to `summarize` and `histogram` (on a copy of the values).
    pub fn summary(&self, bins: usize) -> Option<AccumulatedSummary> {
        if self.moments.count == 0 {
            return None;
        }
        match &self.store {
            Store::Exact(values) => {
                let mut sorted = values.clone();
                let summary = summarize(&mut sorted)?;
                let (edges, counts) = histogram(&sorted, bins);
                Some(AccumulatedSummary { summary, edges, counts, precision: Precision::Exact })
            }
            Store::Sketch(sketch) => {
                let ranks = Ranks { sketch, m: &self.moments };
                let summary = Summary {
                    count: self.moments.count,
                    mean: self.moments.mean,
                    stdev: self.moments.stdev(),
                    min: self.moments.min,
                    p50: ranks.percentile(50.0),
                    p90: ranks.percentile(90.0),
                    p95: ranks.percentile(95.0),
                    p99: ranks.percentile(99.0),
                    max: self.moments.max,
                };
                let (edges, counts) = ranks.histogram(bins);
                let precision = Precision::Sketched { relative_error: SKETCH_RELATIVE_ACCURACY };
                Some(AccumulatedSummary { summary, edges, counts, precision })
            }
        }
    }

    /// The sketch, moving the exact values into it first if needed.
    fn sketch_mut(&mut self) -> &mut DDSketch {
        if let Store::Exact(values) = &self.store {
            let config = Config::new(SKETCH_RELATIVE_ACCURACY, SKETCH_MAX_BINS, SKETCH_MIN_MAGNITUDE);
            let mut sketch = Box::new(DDSketch::new(config));
            values.iter().for_each(|&x| sketch.add(x));
            // Replacing the store frees the values: the point of switching.
            self.store = Store::Sketch(sketch);
        }
        match &mut self.store {
            Store::Sketch(sketch) => sketch,
            Store::Exact(_) => unreachable!("switched to a sketch above"),
        }
    }
}

/// Count, mean, M2 (sum of squared deviations), min and max, updated one value at a time.
#[derive(Clone)]
struct Moments {
    count: usize,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments { count: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Moments {
    /// Welford's update, as `mean_stdev` does it.
    fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Chan, Golub & LeVeque's pairwise combination of two sets' moments.
    fn merge(&mut self, o: &Moments) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = o.clone();
            return;
        }
        let n = (self.count + o.count) as f64;
        let delta = o.mean - self.mean;
        self.mean += delta * (o.count as f64 / n);
        self.m2 += o.m2 + delta * delta * (self.count as f64 * o.count as f64 / n);
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Sample standard deviation (n-1); `None` below two values.
    fn stdev(&self) -> Option<f64> {
        (self.count >= 2).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

/// The sketch read as sorted values: rank r (0-based) stands for the r-th smallest value.
struct Ranks<'a> {
    sketch: &'a DDSketch,
    m: &'a Moments,
}

impl Ranks<'_> {
    /// The sketch's value for rank r, clamped to the exact [min, max] (never further from the
    /// true value, which lies in it); the ends are the exact min and max.
    fn value(&self, r: usize) -> f64 {
        let n = self.m.count;
        if r == 0 {
            return self.m.min;
        }
        if r + 1 >= n {
            return self.m.max;
        }
        // The crate maps q to rank ⌊q·(n−1)⌋; aiming at the middle of [r, r+1) keeps rounding
        // in q·(n−1) from landing on r−1.
        let q = (r as f64 + 0.5) / (n - 1) as f64;
        let v = self.sketch.quantile(q).expect("0 < q < 1").expect("the sketch holds n > 2 values");
        v.clamp(self.m.min, self.m.max)
    }

    /// Percentile q in [0, 100] by numpy's linear method over the ranks' values.
    fn percentile(&self, q: f64) -> f64 {
        let h = (self.m.count - 1) as f64 * (q / 100.0);
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(self.m.count - 1);
        lerp(self.value(lo), self.value(hi), h - lo as f64)
    }

    /// `histogram` of the ranks' values: each inner edge's count of values below it found by
    /// bisection over the ranks (the values rise with rank), O(bins · log n) sketch queries.
    fn histogram(&self, bins: usize) -> (Vec<f64>, Vec<i64>) {
        if bins == 0 {
            return (Vec::new(), Vec::new());
        }
        let n = self.m.count;
        let edges = histogram_edges(self.m.min, self.m.max, bins);
        let mut below = Vec::with_capacity(bins + 1);
        below.push(0); // Every value is at least min, the first edge or above it.
        for &edge in &edges[1..bins] {
            let (mut lo, mut hi) = (*below.last().expect("starts with one"), n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.value(mid) < edge { lo = mid + 1 } else { hi = mid }
            }
            below.push(lo);
        }
        below.push(n); // The last bin includes max.
        let counts = below.windows(2).map(|w| (w[1] - w[0]) as i64).collect();
        (edges, counts)
    }
}

#[cfg(test)]
mod tests;

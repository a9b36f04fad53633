//! Percentiles of a bucketed histogram: what a scrape interval's observations were, from the
//! difference of two cumulative histograms (or a delta one as OTLP sends it).
//!
//! Inside the bucket that holds the rank, the value is interpolated linearly, as Prometheus'
//! `histogram_quantile` does. **Error bound:** the true percentile of the observations lies in
//! that bucket, so the estimate is off by at most the bucket's width ([`Estimate::low`],
//! [`Estimate::high`]); in the last, open bucket (`+Inf`) the estimate is its lower bound, a
//! floor. vLLM's TTFT buckets (1 ms … 80 s, about 1.5–2.5× apart) bound a p99 within a bucket.

/// Buckets as their upper bounds (ascending; the last may be `+Inf`) and the observations in
/// each (not cumulative).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Buckets {
    pub bounds: Vec<f64>,
    pub counts: Vec<f64>,
}

/// A percentile and the bucket it lies in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Buckets {
    /// From cumulative counts (`le` buckets of the Prometheus format), sorted by bound.
    pub fn from_cumulative(mut le: Vec<(f64, f64)>) -> Buckets {
        le.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut before = 0.0;
        let (bounds, counts) = le
            .into_iter()
            .map(|(b, c)| {
                let n = (c - before).max(0.0);
                before = c;
                (b, n)
            })
            .unzip();
        Buckets { bounds, counts }
    }

    /// Observations in all buckets.
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// What was observed between `earlier` and this one (same bounds), or `None` when the
    /// bounds differ or a bucket went down (the series was reset: the new counts are all new).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        let comparable = earlier.bounds == self.bounds && self.counts.iter().zip(&earlier.counts).all(|(now, then)| now >= then);
        if !comparable {
            return self.clone();
        }
        Buckets { bounds: self.bounds.clone(), counts: self.counts.iter().zip(&earlier.counts).map(|(now, then)| now - then).collect() }
    }

    /// Adds another histogram of the same bounds (another label set of one family).
    pub fn add(&mut self, other: &Buckets) {
        if self.bounds.is_empty() {
            *self = other.clone();
        } else if self.bounds == other.bounds {
            self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        }
    }

    /// The `q`-quantile (0 < q < 1) of the observations; `None` when there are none.
    pub fn quantile(&self, q: f64) -> Option<Estimate> {
        let total = self.total();
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let mut seen = 0.0;
        for (i, (&upper, &n)) in self.bounds.iter().zip(&self.counts).enumerate() {
            if n > 0.0 && seen + n >= rank {
                // The first bucket starts at 0 (latencies) unless its bound is negative.
                let lower = if i == 0 { upper.min(0.0) } else { self.bounds[i - 1] };
                if upper.is_infinite() {
                    return Some(Estimate { value: lower, low: lower, high: f64::INFINITY });
                }
                let value = lower + (upper - lower) * ((rank - seen) / n);
                return Some(Estimate { value, low: lower, high: upper });
            }
            seen += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_bucket_like_histogram_quantile() {
        // Cumulative le=0.1:10, 0.2:30, 0.5:80, 1:95, +Inf:100. The median (rank 50) is in
        // (0.2, 0.5] with 30 below and 50 inside: 0.2 + 0.3 * 20/50 = 0.32.
        let h = Buckets::from_cumulative(vec![(0.5, 80.0), (0.1, 10.0), (f64::INFINITY, 100.0), (0.2, 30.0), (1.0, 95.0)]);
        let m = h.quantile(0.5).unwrap();
        assert!((m.value - 0.32).abs() < 1e-12 && (m.low, m.high) == (0.2, 0.5), "{m:?}");
        // p99 (rank 99) is in the open bucket: its floor, 1.0.
        let p99 = h.quantile(0.99).unwrap();
        assert_eq!((p99.value, p99.high), (1.0, f64::INFINITY));
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn the_true_percentile_lies_in_the_estimates_bucket() {
        // 10,000 log-normal observations (seeded), bucketed like vLLM's TTFT histogram.
        use rand::SeedableRng;
        use rand_distr::{Distribution, LogNormal};
        let bounds = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, f64::INFINITY];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let d = LogNormal::new((0.08f64).ln(), 0.6).unwrap();
        let mut xs: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let cumulative = bounds.iter().map(|&b| (b, xs.iter().filter(|&&x| x <= b).count() as f64)).collect();
        let h = Buckets::from_cumulative(cumulative);
        for q in [0.5, 0.9, 0.99] {
            let truth = xs[(q * xs.len() as f64) as usize - 1];
            let e = h.quantile(q).unwrap();
            assert!(e.low <= truth && truth <= e.high, "q {q}: {truth} outside {e:?}");
        }
    }

    #[test]
    fn an_interval_is_the_difference_and_a_reset_starts_again() {
        let a = Buckets { bounds: vec![1.0, f64::INFINITY], counts: vec![5.0, 1.0] };
        let b = Buckets { bounds: vec![1.0, f64::INFINITY], counts: vec![9.0, 1.0] };
        assert_eq!(b.since(&a).counts, vec![4.0, 0.0]);
        let reset = Buckets { bounds: vec![1.0, f64::INFINITY], counts: vec![2.0, 0.0] };
        assert_eq!(reset.since(&b), reset);
    }
}

//! Summary statistics of one metric's samples.

/// Statistics of a non-empty set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (n-1); `None` for fewer than two values.
    pub stdev: Option<f64>,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Percentile `q` in [0, 100] of sorted values, numpy's default linear interpolation:
/// position h = (n-1)·q/100, value = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1]-x[⌊h⌋]).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of an empty slice");
    let h = (sorted.len() - 1) as f64 * (q / 100.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    lerp(sorted[lo], sorted[hi], h - lo as f64)
}

/// numpy's `_lerp`: a + (b-a)·t, switching to b - (b-a)·(1-t) for t >= 0.5 for accuracy.
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// Mean and sample standard deviation by Welford's method (stable for large offsets).
pub fn mean_stdev(values: &[f64]) -> (f64, Option<f64>) {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    for (i, &x) in values.iter().enumerate() {
        let delta = x - mean;
        mean += delta / (i + 1) as f64;
        m2 += delta * (x - mean);
    }
    let stdev = (values.len() >= 2).then(|| (m2 / (values.len() - 1) as f64).sqrt());
    (mean, stdev)
}

/// Coefficient of variation: sample standard deviation over |mean|; `None` below two values
/// or for a zero mean.
pub fn cv(values: &[f64]) -> Option<f64> {
    let (mean, stdev) = mean_stdev(values);
    stdev.filter(|_| mean != 0.0).map(|s| s / mean.abs())
}

/// Summary of values; `None` when there are none. Sorts `values` in place.
pub fn summarize(values: &mut [f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let (mean, stdev) = mean_stdev(values);
    Some(Summary {
        count: values.len(),
        mean,
        stdev,
        min: values[0],
        p50: percentile_sorted(values, 50.0),
        p90: percentile_sorted(values, 90.0),
        p95: percentile_sorted(values, 95.0),
        p99: percentile_sorted(values, 99.0),
        max: values[values.len() - 1],
    })
}

/// Equal-width histogram of sorted values as `numpy.histogram(x, bins)` computes it: edges
/// from min to max, every bin half-open except the last, which includes max.
pub fn histogram(sorted: &[f64], bins: usize) -> (Vec<f64>, Vec<i64>) {
    if sorted.is_empty() || bins == 0 {
        return (Vec::new(), Vec::new());
    }
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let (lo, width) = bin_grid(min, max, bins);
    let edges = histogram_edges(min, max, bins);
    let mut counts = vec![0i64; bins];
    for &x in sorted {
        let i = (((x - lo) / width) as usize).min(bins - 1);
        // Guard rounding at an edge: x belongs to the bin whose [lo, hi) holds it.
        let i = if i + 1 < bins && x >= edges[i + 1] { i + 1 } else if i > 0 && x < edges[i] { i - 1 } else { i };
        counts[i] += 1;
    }
    (edges, counts)
}

/// The `bins + 1` equal-width edges `histogram` uses for values from `min` to `max`
/// (`bins` > 0).
pub(crate) fn histogram_edges(min: f64, max: f64, bins: usize) -> Vec<f64> {
    let (lo, width) = bin_grid(min, max, bins);
    (0..=bins).map(|i| lo + width * i as f64).collect()
}

/// First edge and bin width of `histogram`'s grid.
fn bin_grid(min: f64, max: f64, bins: usize) -> (f64, f64) {
    let (mut lo, mut hi) = (min, max);
    if lo == hi {
        // numpy widens a degenerate range by 0.5 on each side.
        lo -= 0.5;
        hi += 0.5;
    }
    (lo, (hi - lo) / bins as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative tolerance: the computations are the same arithmetic as numpy's, so only
    /// rounding in the last bits may differ.
    const REL_TOL: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= REL_TOL * a.abs().max(b.abs()).max(1.0)
    }

    // Expected values from numpy 2.x:
    // python3 -c "import numpy as np; x=np.array([12.5,3.25,7.0,9.75,1.5,22.0,4.0,15.5,8.25,6.0]);
    //   print(repr(x.mean()), repr(x.std(ddof=1)), [repr(np.percentile(x,q)) for q in (50,90,95,99)])"
    const X: [f64; 10] = [12.5, 3.25, 7.0, 9.75, 1.5, 22.0, 4.0, 15.5, 8.25, 6.0];
    const X_MEAN: f64 = 8.975;
    const X_STDEV: f64 = 6.253_276_918_722_073;
    const X_P50: f64 = 7.625;
    const X_P90: f64 = 16.15;
    const X_P95: f64 = 19.074_999_999_999_992;
    const X_P99: f64 = 21.415;

    #[test]
    fn summary_matches_numpy() {
        let mut v = X.to_vec();
        let s = summarize(&mut v).unwrap();
        assert_eq!(s.count, 10);
        assert!(close(s.mean, X_MEAN), "{}", s.mean);
        assert!(close(s.stdev.unwrap(), X_STDEV), "{:?}", s.stdev);
        assert!(close(s.p50, X_P50), "{}", s.p50);
        assert!(close(s.p90, X_P90), "{}", s.p90);
        assert!(close(s.p95, X_P95), "{}", s.p95);
        assert!(close(s.p99, X_P99), "{}", s.p99);
        assert_eq!((s.min, s.max), (1.5, 22.0));
    }

    // python3 -c "import numpy as np; x=np.array([12.5,3.25,7.0,9.75,1.5,22.0,4.0,15.5,8.25,6.0]); print(repr(x.std(ddof=1)/x.mean()))"
    const X_CV: f64 = 0.696_743_946_375_718_5;

    #[test]
    fn cv_matches_numpy() {
        assert!(close(cv(&X).unwrap(), X_CV));
        assert_eq!(cv(&[1.0]), None);
        assert_eq!(cv(&[1.0, -1.0]), None);
    }

    #[test]
    fn one_value_has_no_stdev_and_empty_has_no_summary() {
        let s = summarize(&mut [4.0]).unwrap();
        assert_eq!((s.p50, s.p99, s.stdev), (4.0, 4.0, None));
        assert!(summarize(&mut []).is_none());
    }

    #[test]
    fn welford_is_stable_at_large_offsets() {
        // Naive sum-of-squares loses every digit here; the exact stdev is 1.0 (values 1e9+{0,1,2}... ).
        let v = [1e9, 1e9 + 1.0, 1e9 + 2.0];
        let (m, s) = mean_stdev(&v);
        assert_eq!(m, 1e9 + 1.0);
        assert!((s.unwrap() - 1.0).abs() < 1e-9);
    }

    // python3 -c "import numpy as np; x=np.sort(np.array([12.5,3.25,7.0,9.75,1.5,22.0,4.0,15.5,8.25,6.0]));
    //   print(np.histogram(x, 4))"  ->  counts [4 3 2 1], edges [1.5 6.625 11.75 16.875 22.]
    #[test]
    fn histogram_matches_numpy() {
        let mut v = X.to_vec();
        v.sort_by(f64::total_cmp);
        let (edges, counts) = histogram(&v, 4);
        assert_eq!(counts, vec![4, 3, 2, 1]);
        assert_eq!(edges, vec![1.5, 6.625, 11.75, 16.875, 22.0]);
    }
}

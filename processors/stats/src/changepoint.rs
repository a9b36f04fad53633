//! Change points by E-divisive means with windowing and a Student t-test, as Apache Otava
//! computes them (Fleming et al., "Hunter", ICPE 2023; Matteson & James 2014).
//!
//! 1. Split: slide a window of `window_len` over the series (step `window_len / 2`, or
//!    restart at the last point found); inside each window, repeatedly split the interval
//!    whose best split maximises the energy statistic Q̂, while the split is significant at
//!    a relaxed p-value. The union of all points found are the weak change points.
//! 2. Merge: while some change point is not significant at `max_pvalue`, or the smallest
//!    relative change is not above `min_magnitude`, drop the weakest one and re-test its
//!    neighbours.
//!
//! Floating-point steps follow Otava's numpy formulation term by term so that the same
//! points come out; `tests/` checks Otava's answers on the TigerBeetle series.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::numpy;

/// Parameters of the detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePointParams {
    pub window_len: usize,
    pub max_pvalue: f64,
    pub min_magnitude: f64,
}

impl Default for ChangePointParams {
    fn default() -> Self {
        ChangePointParams { window_len: 30, max_pvalue: 0.001, min_magnitude: 0.0 }
    }
}

/// Two-sample statistics at a change point: the segment before against the segment after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentStats {
    pub mean_before: f64,
    pub mean_after: f64,
    /// Population standard deviations (numpy's default), as Otava reports them.
    pub std_before: f64,
    pub std_after: f64,
    /// Two-sided Student t-test (pooled variance).
    pub pvalue: f64,
}

impl SegmentStats {
    /// Relative change from before to after (0 when the mean before is 0).
    pub fn forward_change(&self) -> f64 {
        if self.mean_before == 0.0 { 0.0 } else { self.mean_after / self.mean_before - 1.0 }
    }

    fn backward_change(&self) -> f64 {
        if self.mean_after == 0.0 { 0.0 } else { self.mean_before / self.mean_after - 1.0 }
    }

    /// max(|forward|, |backward|) relative change.
    pub fn magnitude(&self) -> f64 {
        self.forward_change().abs().max(self.backward_change().abs())
    }
}

/// A change point: the index of the first value after the change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    pub index: usize,
    pub qhat: f64,
    pub stats: SegmentStats,
}

/// Two-sided Student t-test from means and population standard deviations, pooled variance
/// (scipy's `ttest_ind_from_stats(..., equal_var=True)` fed with `np.std`, as Otava does).
fn compare(left: &[f64], right: &[f64]) -> SegmentStats {
    let (n1, n2) = (left.len() as f64, right.len() as f64);
    let (m1, m2) = (numpy::mean(left), numpy::mean(right));
    let s1 = if left.len() >= 2 { numpy::std(left) } else { 0.0 };
    let s2 = if right.len() >= 2 { numpy::std(right) } else { 0.0 };
    let pvalue = if left.len() + right.len() > 2 {
        let df = n1 + n2 - 2.0;
        let svar = ((n1 - 1.0) * (s1 * s1) + (n2 - 1.0) * (s2 * s2)) / df;
        let denom = (svar * (1.0 / n1 + 1.0 / n2)).sqrt();
        let t = (m1 - m2) / denom;
        if t.is_nan() {
            f64::NAN
        } else if t.is_infinite() {
            0.0
        } else {
            let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
            2.0 * dist.sf(t.abs())
        }
    } else {
        1.0
    };
    SegmentStats { mean_before: m1, mean_after: m2, std_before: s1, std_after: s2, pvalue }
}

/// Half-open intervals between sorted change points, empty ones dropped.
fn intervals(points: &[usize], len: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for &p in points.iter().chain(std::iter::once(&len)) {
        if start != p {
            out.push((start, p));
        }
        start = p;
    }
    out
}

/// Q̂ of every split of `s[start..end]` in Otava's closed form; returns the best split as
/// (index, Q̂), taking the first maximum in row-major order as `np.argmax` does.
struct PairDistances<'a> {
    s: &'a [f64],
    /// V[c] = Σ_{r<=c} |s[r] - s[c+1]|
    v: Vec<f64>,
    /// H[r][c] = Σ_{c'<=c} triu(|s[r] - s[c'+1]|), row-major (n-1)×(n-1)
    h: Vec<f64>,
}

impl<'a> PairDistances<'a> {
    fn new(s: &'a [f64]) -> Self {
        let n = s.len();
        let m = n.saturating_sub(1);
        let d = |i: usize, j: usize| (s[i] - s[j]).abs();
        let mut v = vec![0.0; m];
        let mut h = vec![0.0; m * m];
        for c in 0..m {
            let mut acc = 0.0;
            for r in 0..m {
                acc += if c + 1 > r { d(r, c + 1) } else { 0.0 };
            }
            v[c] = acc;
        }
        for r in 0..m {
            let mut acc = 0.0;
            for c in 0..m {
                acc += if c + 1 > r { d(r, c + 1) } else { 0.0 };
                h[r * m + c] = acc;
            }
        }
        PairDistances { s, v, h }
    }

    fn best_split(&self, start: usize, end: usize) -> (usize, f64) {
        let n = self.s.len();
        let big_m = n - 1;
        let m = end - 1 - start;
        let d = |i: usize, j: usize| (self.s[i] - self.s[j]).abs();
        // Vs[c] = V[start + c] - Σ_{r<start} d(r, start + 1 + c)
        let vs: Vec<f64> = (0..m)
            .map(|c| {
                let mut sub = 0.0;
                for r in 0..start {
                    sub += d(r, start + 1 + c);
                }
                self.v[start + c] - sub
            })
            .collect();
        let hs = |a: usize, b: usize| self.h[(start + a) * big_m + start + b];
        let mut cum_v = vec![0.0; m];
        let mut acc = 0.0;
        for (i, x) in vs.iter().enumerate() {
            acc += x;
            cum_v[i] = acc;
        }
        // cumHs[a][b] = Σ_{a'<=a} Hs[a'][b]
        let mut cum_h = vec![0.0; m * m];
        for b in 0..m {
            let mut acc = 0.0;
            for a in 0..m {
                acc += hs(a, b);
                cum_h[a * m + b] = acc;
            }
        }
        // R[x][y] = Σ_{x'>=x} Hs[x'+1][y+1], summed from the bottom row up.
        let mr = m.saturating_sub(1);
        let mut r_low = vec![0.0; mr * mr];
        for y in 0..mr {
            let mut acc = 0.0;
            for x in (0..mr).rev() {
                acc += hs(x + 1, y + 1);
                r_low[x * mr + y] = acc;
            }
        }
        let (mut best, mut best_q) = ((0usize, 0usize), f64::NEG_INFINITY);
        for a in 0..m {
            for b in 0..m {
                let q = if a > b {
                    0.0
                } else {
                    let a_prev = if a >= 1 { cum_v[a - 1] } else { 0.0 };
                    let av = (2.0 / (b as f64 + 2.0)) * (cum_h[a * m + b] - a_prev);
                    let bv = if a >= 1 && b >= 1 {
                        let coef = (2 * (b + 1 - a)) as f64 / ((b + 2) * a) as f64;
                        coef * cum_v[a - 1]
                    } else {
                        0.0
                    };
                    let cv = if a + 1 < m && b >= 1 && b > a {
                        let coef = (2 * (a + 1)) as f64 / ((b + 2) * (b - a)) as f64;
                        coef * r_low[a * mr + (b - 1)]
                    } else {
                        0.0
                    };
                    av - bv - cv
                };
                if q > best_q {
                    best_q = q;
                    best = (a, b);
                }
            }
        }
        (best.0 + 1 + start, best_q)
    }
}

/// E-divisive inside one window: points (indexes into `window`) significant at `max_pvalue`.
fn divisive(window: &[f64], max_pvalue: f64) -> Vec<ChangePoint> {
    let calc = PairDistances::new(window);
    let mut points: Vec<ChangePoint> = Vec::new();
    loop {
        let idx: Vec<usize> = points.iter().map(|p| p.index).collect();
        let ivs = intervals(&idx, window.len());
        // The candidate with the largest Q̂ over all intervals (first one on ties).
        let mut candidate: Option<(usize, f64, (usize, usize))> = None;
        for &(a, b) in ivs.iter().filter(|(a, b)| b - a > 1) {
            let (i, q) = calc.best_split(a, b);
            if candidate.is_none_or(|(_, bq, _)| q > bq) {
                candidate = Some((i, q, (a, b)));
            }
        }
        let Some((index, qhat, (a, b))) = candidate else { break };
        let stats = compare(&window[a..index], &window[index..b]);
        if stats.pvalue <= max_pvalue {
            points.push(ChangePoint { index, qhat, stats });
            points.sort_by_key(|p| p.index);
        } else {
            break;
        }
    }
    points
}

/// Re-tests a change point against its neighbours: the interval ending at it and the next.
fn retest(series: &[f64], points: &[usize], k: usize) -> SegmentStats {
    let before = if k == 0 { 0 } else { points[k - 1] };
    let after = points.get(k + 1).copied().unwrap_or(series.len());
    compare(&series[before..points[k]], &series[points[k]..after])
}

/// The weak change points of the split step.
pub fn split(series: &[f64], window_len: usize, max_pvalue: f64) -> Vec<ChangePoint> {
    assert!(window_len >= 2, "window length must be at least 2");
    let step = window_len / 2;
    let mut found: Vec<ChangePoint> = Vec::new();
    let mut start = 0;
    while start < series.len() {
        let end = (start + window_len).min(series.len());
        let mut new_points = divisive(&series[start..end], max_pvalue);
        for p in &mut new_points {
            p.index += start;
        }
        let last = new_points.last().map_or(0, |p| p.index);
        start = last.max(start + step);
        for p in new_points {
            if !found.iter().any(|f| f.index == p.index) {
                found.push(p);
            }
        }
    }
    found.sort_by_key(|p| p.index);
    let idx: Vec<usize> = found.iter().map(|p| p.index).collect();
    for (k, p) in found.iter_mut().enumerate() {
        p.stats = retest(series, &idx, k);
    }
    found
}

/// The merge step: drops weak points until all are significant and large enough.
pub fn merge(mut points: Vec<ChangePoint>, series: &[f64], max_pvalue: f64, min_magnitude: f64) -> Vec<ChangePoint> {
    while !points.is_empty() {
        // The weakest: the largest p-value (first on ties); if every p-value passes, the
        // smallest change, which stays only if it is above min_magnitude.
        let mut weakest = 0;
        for (i, p) in points.iter().enumerate() {
            if p.stats.pvalue > points[weakest].stats.pvalue {
                weakest = i;
            }
        }
        if points[weakest].stats.pvalue < max_pvalue {
            weakest = 0;
            for (i, p) in points.iter().enumerate() {
                if p.stats.magnitude() < points[weakest].stats.magnitude() {
                    weakest = i;
                }
            }
            if points[weakest].stats.magnitude() > min_magnitude {
                return points;
            }
        }
        points.remove(weakest);
        let idx: Vec<usize> = points.iter().map(|p| p.index).collect();
        for k in [weakest, weakest + 1] {
            if k < points.len() {
                points[k].stats = retest(series, &idx, k);
            }
        }
    }
    points
}

/// Change points of `series` as Otava's `compute_change_points` returns them.
pub fn change_points(series: &[f64], params: &ChangePointParams) -> Vec<ChangePoint> {
    let p = params.max_pvalue;
    let first_pass = if p < 0.05 { p * 10.0 } else if p < 0.5 { p * 2.0 } else { p };
    merge(split(series, params.window_len, first_pass), series, p, params.min_magnitude)
}

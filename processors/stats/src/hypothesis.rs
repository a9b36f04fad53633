//! Two-sample tests on the raw samples of two runs: location (Mann-Whitney U, Welch's t),
//! spread (F-test, Brown-Forsythe), and the share of ones of 0/1 samples (Fisher's exact
//! test). Definitions follow scipy.stats so that p-values can be checked against it:
//! `mannwhitneyu(x, y)` (two-sided, continuity correction, tie correction, exact distribution
//! for small samples without ties), `ttest_ind(x, y, equal_var=False)`, the two-sided
//! variance-ratio F-test, `levene(x, y, center='median')`, and one-sided `fisher_exact`.

use statrs::distribution::{ContinuousCDF, DiscreteCDF, FisherSnedecor, Hypergeometric, Normal, StudentsT};

use crate::summary::{mean_stdev, percentile_sorted};

/// A test statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub pvalue: f64,
}

/// Average ranks (1-based) of `values`, ties sharing the mean of their ranks; also returns
/// Σ(t³ − t) over tie groups.
fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    (ranks, ties)
}

/// Number of arrangements giving each U for sample sizes m, n (no ties).
fn u_counts(m: usize, n: usize) -> Vec<f64> {
    // f[i][j][u] = f[i-1][j][u-j] + f[i][j-1][u]; keep one row of j per i.
    let mut prev: Vec<Vec<f64>> = (0..=n).map(|_| vec![1.0]).collect();
    for i in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![1.0]];
        for j in 1..=n {
            let mut v = vec![0.0; i * j + 1];
            for (u, c) in prev[j].iter().enumerate() {
                v[u + j] += c;
            }
            for (u, c) in cur[j - 1].iter().enumerate() {
                v[u] += c;
            }
            cur.push(v);
        }
        prev = cur;
    }
    prev.pop().unwrap_or_else(|| vec![1.0])
}

/// Mann-Whitney U test, two-sided. The statistic is U of `x`.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<TestResult> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    let u = u1.max(u2);
    let exact = (n1 <= 8 || n2 <= 8) && ties == 0.0;
    let p = if exact {
        let counts = u_counts(n1, n2);
        let total: f64 = counts.iter().sum();
        let k = u.round() as usize;
        let sf: f64 = counts[k.min(counts.len())..].iter().sum::<f64>() / total;
        2.0 * sf
    } else {
        let n = (n1 + n2) as f64;
        let mu = (n1 * n2) as f64 / 2.0;
        let s = ((n1 * n2) as f64 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
        let z = (u - mu - 0.5) / s;
        // Every value tied: no evidence of a difference.
        if !z.is_finite() {
            return Some(TestResult { statistic: u1, pvalue: 1.0 });
        }
        2.0 * Normal::standard().sf(z)
    };
    Some(TestResult { statistic: u1, pvalue: p.clamp(0.0, 1.0) })
}

/// Welch's t-test (unequal variances), two-sided.
pub fn welch_t(x: &[f64], y: &[f64]) -> Option<TestResult> {
    let ((m1, Some(s1)), (m2, Some(s2))) = (mean_stdev(x), mean_stdev(y)) else { return None };
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (a, b) = (s1 * s1 / n1, s2 * s2 / n2);
    let t = (m1 - m2) / (a + b).sqrt();
    let df = (a + b).powi(2) / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    if !t.is_finite() || !df.is_finite() {
        return None;
    }
    let p = 2.0 * StudentsT::new(0.0, 1.0, df).ok()?.sf(t.abs());
    Some(TestResult { statistic: t, pvalue: p.min(1.0) })
}

/// F-test of equal variances: F = s²(x) / s²(y), two-sided.
pub fn f_test(x: &[f64], y: &[f64]) -> Option<TestResult> {
    let ((_, Some(s1)), (_, Some(s2))) = (mean_stdev(x), mean_stdev(y)) else { return None };
    let f = (s1 * s1) / (s2 * s2);
    if !f.is_finite() {
        return None;
    }
    let d = FisherSnedecor::new(x.len() as f64 - 1.0, y.len() as f64 - 1.0).ok()?;
    let p = 2.0 * d.cdf(f).min(d.sf(f));
    Some(TestResult { statistic: f, pvalue: p.min(1.0) })
}

/// One-sided F-test that a variance rose: P(F ≥ s² / s_base²) with (n − 1, dof_base)
/// degrees of freedom, from summary statistics alone.
pub fn variance_increase_pvalue(stdev: f64, count: i64, base_stdev: f64, base_dof: f64) -> Option<f64> {
    if count < 2 || base_stdev <= 0.0 || base_dof < 1.0 {
        return None;
    }
    let ratio = (stdev * stdev) / (base_stdev * base_stdev);
    if !ratio.is_finite() {
        return None;
    }
    Some(FisherSnedecor::new((count - 1) as f64, base_dof).ok()?.sf(ratio))
}

/// One-sided Fisher's exact tests that `k` ones in `n` trials are a larger share (`.0`) or
/// a smaller one (`.1`) than `k0` ones in `n0` trials: with X the ones among `n` trials drawn
/// from all `n + n0` trials holding `k + k0` ones (hypergeometric), (P(X ≥ k), P(X ≤ k)) —
/// scipy's `fisher_exact([[k, n-k], [k0, n0-k0]], alternative='greater' | 'less')`. Exact
/// for any counts, so a rise from no failed iteration in a baseline is judged by how many
/// baseline iterations there were, which a t-test of zero spread cannot say. `None` when
/// the counts do not make a table (`k > n`, no trial on one side).
pub fn fisher_exact(k: u64, n: u64, k0: u64, n0: u64) -> Option<(f64, f64)> {
    if k > n || k0 > n0 || n == 0 || n0 == 0 {
        return None;
    }
    let x = Hypergeometric::new(n + n0, k + k0, n).ok()?;
    let greater = if k == 0 { 1.0 } else { x.sf(k - 1) };
    Some((greater.clamp(0.0, 1.0), x.cdf(k).clamp(0.0, 1.0)))
}

/// Brown-Forsythe test of equal variances (Levene's test centred on the median).
pub fn brown_forsythe(x: &[f64], y: &[f64]) -> Option<TestResult> {
    if x.len() < 2 || y.len() < 2 {
        return None;
    }
    let dev = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let med = percentile_sorted(&s, 50.0);
        v.iter().map(|a| (a - med).abs()).collect::<Vec<f64>>()
    };
    let (zx, zy) = (dev(x), dev(y));
    let n = (x.len() + y.len()) as f64;
    let (mx, my) = (zx.iter().sum::<f64>() / zx.len() as f64, zy.iter().sum::<f64>() / zy.len() as f64);
    let grand = (zx.iter().sum::<f64>() + zy.iter().sum::<f64>()) / n;
    let between = zx.len() as f64 * (mx - grand).powi(2) + zy.len() as f64 * (my - grand).powi(2);
    let within: f64 = zx.iter().map(|z| (z - mx).powi(2)).sum::<f64>() + zy.iter().map(|z| (z - my).powi(2)).sum::<f64>();
    let w = (n - 2.0) * between / within;
    if !w.is_finite() {
        return None;
    }
    let p = FisherSnedecor::new(1.0, n - 2.0).ok()?.sf(w);
    Some(TestResult { statistic: w, pvalue: p })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p-values through statrs' distribution functions; scipy's agree to ~1e-12 relative.
    const REL_TOL: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= REL_TOL * b.abs().max(1e-300)
    }

    const A: [f64; 12] = [12.1, 11.8, 12.4, 12.0, 11.9, 12.6, 12.2, 12.0, 11.7, 12.3, 12.5, 12.1];
    const B: [f64; 10] = [12.9, 13.1, 12.7, 13.4, 12.8, 13.0, 13.6, 12.6, 13.2, 12.9];
    const SMALL_X: [f64; 5] = [1.1, 2.3, 3.7, 4.2, 5.9];
    const SMALL_Y: [f64; 6] = [3.3, 4.8, 6.1, 7.4, 8.6, 9.0];

    // python3 -c "
    // import scipy.stats as st
    // A=[12.1,11.8,12.4,12.0,11.9,12.6,12.2,12.0,11.7,12.3,12.5,12.1]; B=[12.9,13.1,12.7,13.4,12.8,13.0,13.6,12.6,13.2,12.9]
    // X=[1.1,2.3,3.7,4.2,5.9]; Y=[3.3,4.8,6.1,7.4,8.6,9.0]
    // r=st.mannwhitneyu(A,B); print(repr(r.statistic), repr(r.pvalue))
    // r=st.mannwhitneyu(X,Y); print(repr(r.statistic), repr(r.pvalue))
    // r=st.ttest_ind(A,B,equal_var=False); print(repr(r.statistic), repr(r.pvalue))
    // import numpy as np; f=np.var(A,ddof=1)/np.var(B,ddof=1); d=st.f(11,9); print(repr(f), repr(2*min(d.cdf(f),d.sf(f))))
    // r=st.levene(A,B,center='median'); print(repr(r.statistic), repr(r.pvalue))"
    const MWU_AB: (f64, f64) = (0.5, 9.830_183_079_746_277e-5);
    const MWU_SMALL: (f64, f64) = (4.0, 0.051_948_051_948_051_95);
    const WELCH_AB: (f64, f64) = (-6.977_632_222_502_377, 1.489_556_421_066_031e-6);
    const F_AB: (f64, f64) = (0.790_784_557_907_845_6, 0.702_016_393_838_381_8);
    const BF_AB: (f64, f64) = (0.091_988_548_364_386_05, 0.764_796_609_943_064_3);

    #[test]
    fn mann_whitney_matches_scipy_with_ties_and_exact() {
        let r = mann_whitney_u(&A, &B).unwrap();
        assert_eq!(r.statistic, MWU_AB.0);
        assert!(close(r.pvalue, MWU_AB.1), "{r:?}");
        let r = mann_whitney_u(&SMALL_X, &SMALL_Y).unwrap();
        assert_eq!(r.statistic, MWU_SMALL.0);
        assert!(close(r.pvalue, MWU_SMALL.1), "{r:?}");
    }

    #[test]
    fn welch_f_and_brown_forsythe_match_scipy() {
        let r = welch_t(&A, &B).unwrap();
        assert!(close(r.statistic, WELCH_AB.0) && close(r.pvalue, WELCH_AB.1), "{r:?}");
        let r = f_test(&A, &B).unwrap();
        assert!(close(r.statistic, F_AB.0) && close(r.pvalue, F_AB.1), "{r:?}");
        let r = brown_forsythe(&A, &B).unwrap();
        assert!(close(r.statistic, BF_AB.0) && close(r.pvalue, BF_AB.1), "{r:?}");
    }

    // python3 -c "
    // import scipy.stats as st
    // for k,n,k0,n0 in [(5,50,0,500),(1,50,0,500),(10,50,3,500),(50,50,0,300),(0,50,2,500),(3,40,12,400)]:
    //     t=[[k,n-k],[k0,n0-k0]]; print(repr(st.fisher_exact(t,alternative='greater').pvalue), repr(st.fisher_exact(t,alternative='less').pvalue))"
    // (scipy 1.17.1)
    const FISHER: [((u64, u64, u64, u64), (f64, f64)); 6] = [
        ((5, 50, 0, 500), (5.144_787_600_638_577_5e-6, 1.0)),
        ((1, 50, 0, 500), (0.090_909_090_909_090_91, 1.0)),
        ((10, 50, 3, 500), (3.706_605_882_485_646_4e-9, 0.999_999_999_919_525_9)),
        ((50, 50, 0, 300), (7.531_885_340_080_277e-62, 1.0)),
        ((0, 50, 2, 500), (1.0, 0.826_295_744_328_531_3)),
        ((3, 40, 12, 400), (0.147_090_495_574_137_64, 0.961_624_642_013_791)),
    ];

    #[test]
    fn fisher_exact_matches_scipy() {
        for ((k, n, k0, n0), (greater, less)) in FISHER {
            let (g, l) = fisher_exact(k, n, k0, n0).unwrap();
            assert!(close(g, greater) && close(l, less), "{k}/{n} vs {k0}/{n0}: ({g}, {l}) against scipy's ({greater}, {less})");
        }
        assert_eq!(fisher_exact(3, 2, 0, 10), None);
        assert_eq!(fisher_exact(0, 0, 0, 10), None);
    }

    #[test]
    fn too_few_samples_give_no_result() {
        assert!(mann_whitney_u(&[], &[1.0]).is_none());
        assert!(welch_t(&[1.0], &[1.0, 2.0]).is_none());
        assert!(brown_forsythe(&[1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn constant_samples_do_not_panic() {
        let z = [0.0; 6];
        assert!(brown_forsythe(&z, &z).is_none());
        assert!(f_test(&z, &z).is_none());
        assert!(welch_t(&z, &z).is_none());
        assert_eq!(mann_whitney_u(&z, &[0.0; 9]).unwrap().pvalue, 1.0);
    }
}

//! Trends over a series of run values: OLS slope and R², Theil-Sen slope, the Mann-Kendall
//! test, and the seed's classification.
//!
//! Classification (TrackIQ's rules, in order): coefficient of variation below 0.01 →
//! stable; |total change| ≤ 1 % → stable; R² below 0.5 → volatile; otherwise improving or
//! degrading by the slope's sign and the metric's direction. Confidence = min(1, R²).
//! The total change is the OLS line's change over the series relative to its first value.

use statrs::distribution::{ContinuousCDF, Normal};
pub use trackiq_schemas::TrendClass;
use trackiq_schemas::Direction;

use crate::summary::{mean_stdev, percentile_sorted};

/// Ordinary least squares fit of values against their index 0..n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ols {
    pub slope: f64,
    pub intercept: f64,
    pub r_squared: f64,
}

/// OLS of `y` on 0..n; `None` below two points.
pub fn ols(y: &[f64]) -> Option<Ols> {
    let n = y.len();
    if n < 2 {
        return None;
    }
    let xm = (n - 1) as f64 / 2.0;
    let (ym, _) = mean_stdev(y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let dx = i as f64 - xm;
        let dy = v - ym;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let slope = sxy / sxx;
    // A constant series is explained perfectly by a flat line.
    let r_squared = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Some(Ols { slope, intercept: ym - slope * xm, r_squared })
}

/// Theil-Sen slope: the median of the slopes between every pair of points.
pub fn theil_sen(y: &[f64]) -> Option<f64> {
    if y.len() < 2 {
        return None;
    }
    let mut slopes = Vec::with_capacity(y.len() * (y.len() - 1) / 2);
    for i in 0..y.len() {
        for j in i + 1..y.len() {
            slopes.push((y[j] - y[i]) / (j - i) as f64);
        }
    }
    slopes.sort_by(f64::total_cmp);
    Some(percentile_sorted(&slopes, 50.0))
}

/// Mann-Kendall trend test: S, and the two-sided p-value of the normal approximation with
/// the tie-corrected variance and a continuity correction.
pub fn mann_kendall(y: &[f64]) -> Option<(f64, f64)> {
    let n = y.len();
    if n < 3 {
        return None;
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += (y[j] - y[i]).signum() * f64::from(u8::from(y[j] != y[i]));
        }
    }
    let mut sorted = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j + 1;
    }
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term) / 18.0;
    let z = if s > 0.0 { (s - 1.0) / var.sqrt() } else if s < 0.0 { (s + 1.0) / var.sqrt() } else { 0.0 };
    Some((s, (2.0 * Normal::standard().sf(z.abs())).min(1.0)))
}

/// A classified trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub class: TrendClass,
    pub ols: Ols,
    pub theil_sen_slope: f64,
    pub mann_kendall_p: Option<f64>,
    pub total_change_pct: f64,
    pub cv: f64,
    pub confidence: f64,
}

/// Classifies the trend of `y` (oldest first) for a metric with `direction`.
pub fn classify(y: &[f64], direction: Direction) -> Option<Trend> {
    let fit = ols(y)?;
    let cv = crate::summary::cv(y).unwrap_or(0.0);
    let first = fit.intercept;
    let last = fit.intercept + fit.slope * (y.len() - 1) as f64;
    let total_change_pct = if first != 0.0 { (last - first) / first.abs() * 100.0 } else { 0.0 };
    let class = if cv < 0.01 || total_change_pct.abs() <= 1.0 {
        TrendClass::Stable
    } else if fit.r_squared < 0.5 {
        TrendClass::Volatile
    } else {
        match (direction, fit.slope > 0.0) {
            (Direction::LowerIsBetter, true) | (Direction::HigherIsBetter, false) => TrendClass::Degrading,
            _ => TrendClass::Improving,
        }
    };
    Some(Trend {
        class,
        ols: fit,
        theil_sen_slope: theil_sen(y)?,
        mann_kendall_p: mann_kendall(y).map(|(_, p)| p),
        total_change_pct,
        cv,
        confidence: fit.r_squared.min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REL_TOL: f64 = 1e-9;
    const Y: [f64; 10] = [10.0, 10.4, 10.3, 10.9, 11.2, 11.0, 11.8, 12.1, 11.9, 12.6];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= REL_TOL * b.abs().max(1e-300)
    }

    // python3 -c "
    // import numpy as np, scipy.stats as st
    // y=np.array([10.0,10.4,10.3,10.9,11.2,11.0,11.8,12.1,11.9,12.6]); x=np.arange(len(y))
    // r=st.linregress(x,y); print(repr(r.slope), repr(r.intercept), repr(r.rvalue**2))
    // print(repr(st.theilslopes(y,x).slope))
    // s=sum(np.sign(y[j]-y[i]) for i in range(10) for j in range(i+1,10)); n=10
    // v=n*(n-1)*(2*n+5)/18; z=(s-1)/np.sqrt(v); print(s, repr(2*st.norm.sf(abs(z))))"
    const SLOPE: f64 = 0.275_151_515_151_515_15;
    const INTERCEPT: f64 = 9.981_818_181_818_18;
    const R2: f64 = 0.941_220_523_499_004_6;
    const THEIL_SEN: f64 = 0.283_333_333_333_333_2;
    const MK_S: f64 = 39.0;
    const MK_P: f64 = 0.000_676_764_180_121_045_7;

    #[test]
    fn fits_match_scipy() {
        let f = ols(&Y).unwrap();
        assert!(close(f.slope, SLOPE) && close(f.intercept, INTERCEPT) && close(f.r_squared, R2), "{f:?}");
        assert!(close(theil_sen(&Y).unwrap(), THEIL_SEN));
        let (s, p) = mann_kendall(&Y).unwrap();
        assert_eq!(s, MK_S);
        assert!(close(p, MK_P), "{p}");
    }

    #[test]
    fn classification_follows_the_seed_rules() {
        assert_eq!(classify(&Y, Direction::LowerIsBetter).unwrap().class, TrendClass::Degrading);
        assert_eq!(classify(&Y, Direction::HigherIsBetter).unwrap().class, TrendClass::Improving);
        let flat = [100.0, 100.2, 99.9, 100.1, 100.0];
        assert_eq!(classify(&flat, Direction::LowerIsBetter).unwrap().class, TrendClass::Stable);
        let noisy = [10.0, 14.0, 9.0, 15.0, 8.0, 16.0, 9.5, 13.0];
        assert_eq!(classify(&noisy, Direction::LowerIsBetter).unwrap().class, TrendClass::Volatile);
        let t = classify(&Y, Direction::LowerIsBetter).unwrap();
        assert!(close(t.confidence, R2));
    }
}

//! Threshold models, as Bencher defines them: each turns a history window into a baseline
//! and lower/upper limits; a new value outside a limit is an outlier.
//!
//! | model | boundary means | limits |
//! |---|---|---|
//! | static | the limit itself | lower, upper as given |
//! | percentage | fraction (0.05 = 5 %) | mean × (1 ∓ b) |
//! | z-score | cumulative probability (0.977 ≈ 2σ) | Normal(mean, σ) quantile |
//! | t-test | cumulative probability | Student t(n−1; mean, σ) quantile |
//! | log-normal | cumulative probability | LogNormal(μ, σ of ln x) quantile |
//! | IQR | multiplier | median ∓ b × (Q3 − Q1) |
//! | delta-IQR | multiplier | median ∓ median × b × IQR of the adjacent relative changes |
//!
//! σ is the population standard deviation (divisor n) and quartiles are linear
//! interpolations, as in Bencher. A lower limit from a distribution is the upper quantile
//! mirrored about the baseline.

use statrs::distribution::{ContinuousCDF, LogNormal, Normal, StudentsT};

use crate::summary::percentile_sorted;

/// A threshold model with its boundaries; `None` leaves that side unchecked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    Static { lower: Option<f64>, upper: Option<f64> },
    Percentage { lower: Option<f64>, upper: Option<f64> },
    ZScore { lower: Option<f64>, upper: Option<f64> },
    TTest { lower: Option<f64>, upper: Option<f64> },
    LogNormal { lower: Option<f64>, upper: Option<f64> },
    Iqr { lower: Option<f64>, upper: Option<f64> },
    DeltaIqr { lower: Option<f64>, upper: Option<f64> },
}

/// Baseline and limits from a history window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub baseline: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// Why no limits could be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum NoLimits {
    /// Fewer history values than the model needs.
    InsufficientData { have: usize, need: usize },
    /// The history does not fit the model (zero spread, non-positive values for log-normal).
    Degenerate(&'static str),
}

/// Which side a value fell out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Lower,
    Upper,
}

impl Model {
    /// Name as used in configuration and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Static { .. } => "static",
            Model::Percentage { .. } => "percentage",
            Model::ZScore { .. } => "z_score",
            Model::TTest { .. } => "t_test",
            Model::LogNormal { .. } => "log_normal",
            Model::Iqr { .. } => "iqr",
            Model::DeltaIqr { .. } => "delta_iqr",
        }
    }

    fn boundaries(&self) -> (Option<f64>, Option<f64>) {
        match *self {
            Model::Static { lower, upper }
            | Model::Percentage { lower, upper }
            | Model::ZScore { lower, upper }
            | Model::TTest { lower, upper }
            | Model::LogNormal { lower, upper }
            | Model::Iqr { lower, upper }
            | Model::DeltaIqr { lower, upper } => (lower, upper),
        }
    }

    /// The fewest history values the model can work with.
    pub fn min_history(&self) -> usize {
        match self {
            Model::Static { .. } => 0,
            Model::Percentage { .. } | Model::Iqr { .. } => 1,
            Model::ZScore { .. } | Model::TTest { .. } | Model::LogNormal { .. } | Model::DeltaIqr { .. } => 2,
        }
    }

    /// Limits from `history`; at least `min_samples` values (and the model's own minimum).
    pub fn limits(&self, history: &[f64], min_samples: usize) -> Result<Limits, NoLimits> {
        let need = self.min_history().max(min_samples);
        if history.len() < need {
            return Err(NoLimits::InsufficientData { have: history.len(), need });
        }
        let (lo, up) = self.boundaries();
        let mirrored = |baseline: f64, quantile: &dyn Fn(f64) -> f64| Limits {
            baseline: Some(baseline),
            lower: lo.map(|b| 2.0 * baseline - quantile(b)),
            upper: up.map(quantile),
        };
        Ok(match self {
            Model::Static { lower, upper } => Limits { baseline: None, lower: *lower, upper: *upper },
            Model::Percentage { .. } => {
                let m = mean(history);
                Limits { baseline: Some(m), lower: lo.map(|b| m - m * b), upper: up.map(|b| m + m * b) }
            }
            Model::ZScore { .. } => {
                let (m, sd) = mean_pstdev(history).ok_or(NoLimits::Degenerate("zero spread"))?;
                let n = Normal::new(m, sd).map_err(|_| NoLimits::Degenerate("zero spread"))?;
                mirrored(m, &|p| n.inverse_cdf(p))
            }
            Model::TTest { .. } => {
                let (m, sd) = mean_pstdev(history).ok_or(NoLimits::Degenerate("zero spread"))?;
                let t = StudentsT::new(m, sd, (history.len() - 1) as f64).map_err(|_| NoLimits::Degenerate("zero spread"))?;
                mirrored(m, &|p| t.inverse_cdf(p))
            }
            Model::LogNormal { .. } => {
                if history.iter().any(|&x| x <= 0.0) {
                    return Err(NoLimits::Degenerate("log-normal needs positive values"));
                }
                let logs: Vec<f64> = history.iter().map(|x| x.ln()).collect();
                let (mu, sigma) = mean_pstdev(&logs).ok_or(NoLimits::Degenerate("zero spread"))?;
                let d = LogNormal::new(mu, sigma).map_err(|_| NoLimits::Degenerate("zero spread"))?;
                mirrored(mu.exp(), &|p| d.inverse_cdf(p))
            }
            Model::Iqr { .. } => {
                let (q1, q2, q3) = quartiles(history);
                Limits { baseline: Some(q2), lower: lo.map(|b| q2 - (q3 - q1) * b), upper: up.map(|b| q2 + (q3 - q1) * b) }
            }
            Model::DeltaIqr { .. } => {
                let (_, median, _) = quartiles(history);
                let changes: Vec<f64> = history.windows(2).map(|w| ((w[1] - w[0]) / w[0]).abs()).collect();
                let (d1, _, d3) = quartiles(&changes);
                let spread = |b: f64| median * ((d3 - d1) * b);
                Limits { baseline: Some(median), lower: lo.map(|b| median - spread(b)), upper: up.map(|b| median + spread(b)) }
            }
        })
    }
}

impl Limits {
    /// The side `value` is beyond, if any (strictly beyond: a value on a limit passes).
    pub fn outlier(&self, value: f64) -> Option<Side> {
        if self.lower.is_some_and(|l| value < l) {
            Some(Side::Lower)
        } else if self.upper.is_some_and(|u| value > u) {
            Some(Side::Upper)
        } else {
            None
        }
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Mean and population standard deviation; `None` when the spread is zero.
fn mean_pstdev(x: &[f64]) -> Option<(f64, f64)> {
    let m = mean(x);
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64;
    (var > 0.0 && var.is_finite()).then(|| (m, var.sqrt()))
}

fn quartiles(x: &[f64]) -> (f64, f64, f64) {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    (percentile_sorted(&s, 25.0), percentile_sorted(&s, 50.0), percentile_sorted(&s, 75.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distribution quantiles come from statrs' inverse CDFs; scipy's agree to ~1e-12.
    const REL_TOL: f64 = 1e-9;
    const HISTORY: [f64; 8] = [10.2, 9.8, 10.5, 10.1, 9.9, 10.4, 10.0, 10.3];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= REL_TOL * b.abs().max(1.0)
    }

    // Expected limits from scipy 1.16 / numpy 2.4:
    // python3 -c "
    // import numpy as np, scipy.stats as st
    // x=np.array([10.2,9.8,10.5,10.1,9.9,10.4,10.0,10.3]); m=x.mean(); s=x.std()
    // print(repr(st.norm.ppf(0.977,m,s)), repr(st.t.ppf(0.977,len(x)-1,m,s)))
    // l=np.log(x); print(repr(st.lognorm.ppf(0.977,l.std(),scale=np.exp(l.mean()))), repr(np.exp(l.mean())))
    // q1,q2,q3=np.percentile(x,[25,50,75]); print(repr(q2+1.5*(q3-q1)))
    // d=np.abs(np.diff(x)/x[:-1]); d1,d3=np.percentile(d,[25,75]); print(repr(q2+q2*(d3-d1)*1.5))"
    const Z_UPPER: f64 = 10.607_202_044_252_627;
    const T_UPPER: f64 = 10.704_804_075_926_205;
    const LN_UPPER: f64 = 10.615_115_828_954_437;
    const LN_BASELINE: f64 = 10.147_412_961_013_508;
    const IQR_UPPER: f64 = 10.675;
    const DIQR_UPPER: f64 = 10.314_624_108_734_4;

    #[test]
    fn limits_match_scipy() {
        let h = &HISTORY;
        let up = |m: Model| m.limits(h, 2).unwrap().upper.unwrap();
        assert!(close(up(Model::ZScore { lower: None, upper: Some(0.977) }), Z_UPPER));
        assert!(close(up(Model::TTest { lower: None, upper: Some(0.977) }), T_UPPER));
        let ln = Model::LogNormal { lower: None, upper: Some(0.977) }.limits(h, 2).unwrap();
        assert!(close(ln.upper.unwrap(), LN_UPPER) && close(ln.baseline.unwrap(), LN_BASELINE), "{ln:?}");
        assert!(close(up(Model::Iqr { lower: None, upper: Some(1.5) }), IQR_UPPER));
        assert!(close(up(Model::DeltaIqr { lower: None, upper: Some(1.5) }), DIQR_UPPER));
    }

    #[test]
    fn lower_limits_mirror_the_upper_quantile() {
        let z = Model::ZScore { lower: Some(0.977), upper: Some(0.977) }.limits(&HISTORY, 2).unwrap();
        let m = z.baseline.unwrap();
        assert!(close(m - z.lower.unwrap(), z.upper.unwrap() - m));
        assert_eq!(z.outlier(11.0), Some(Side::Upper));
        assert_eq!(z.outlier(9.0), Some(Side::Lower));
        assert_eq!(z.outlier(10.2), None);
    }

    #[test]
    fn percentage_and_static() {
        let p = Model::Percentage { lower: Some(0.1), upper: Some(0.1) }.limits(&[1.0], 1).unwrap();
        assert_eq!((p.lower, p.upper), (Some(0.9), Some(1.1)));
        let s = Model::Static { lower: None, upper: Some(5.0) }.limits(&[], 0).unwrap();
        assert_eq!(s.outlier(5.0), None);
        assert_eq!(s.outlier(5.1), Some(Side::Upper));
    }

    #[test]
    fn too_little_or_degenerate_history_gives_no_limits() {
        let z = Model::ZScore { lower: None, upper: Some(0.99) };
        assert_eq!(z.limits(&[1.0], 1), Err(NoLimits::InsufficientData { have: 1, need: 2 }));
        assert_eq!(z.limits(&[1.0; 5], 3), Err(NoLimits::Degenerate("zero spread")));
        let ln = Model::LogNormal { lower: None, upper: Some(0.99) };
        assert!(matches!(ln.limits(&[1.0, -2.0, 3.0], 2), Err(NoLimits::Degenerate(_))));
        assert_eq!(Model::Iqr { lower: None, upper: Some(1.5) }.limits(&[1.0; 4], 10), Err(NoLimits::InsufficientData { have: 4, need: 10 }));
    }
}

//! Threshold models: limits from a baseline window, and the severity of a new value.

use trackiq_schemas::{Direction, Severity};

use crate::models::{Limits, Model, Side};
use crate::summary::mean_stdev;

/// The seed's percentage model: compare with the baseline mean; beyond `warn_pct` in the bad
/// direction warns, beyond `block_pct` blocks, beyond `warn_pct` in the good direction is an
/// improvement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentageModel {
    pub warn_pct: f64,
    pub block_pct: f64,
    /// Fewer baseline values than this give `insufficient_data`.
    pub min_samples: usize,
}

impl Default for PercentageModel {
    fn default() -> Self {
        PercentageModel { warn_pct: 5.0, block_pct: 10.0, min_samples: 3 }
    }
}

/// A value judged against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub severity: Severity,
    /// Mean of the baseline window, when it has values.
    pub baseline: Option<f64>,
    /// Warn limits around the baseline.
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    /// (value - baseline) / |baseline| × 100.
    pub change_pct: Option<f64>,
    /// Probability of a value at least this bad under the model, for distribution models.
    pub pvalue: Option<f64>,
}

/// Judges `value` against the `baseline` window with the percentage model.
pub fn judge_percentage(value: f64, baseline: &[f64], direction: Direction, model: &PercentageModel) -> Judgement {
    if baseline.is_empty() {
        return Judgement { severity: Severity::InsufficientData, baseline: None, lower_limit: None, upper_limit: None, change_pct: None, pvalue: None };
    }
    let (mean, _) = mean_stdev(baseline);
    let band = mean.abs() * model.warn_pct / 100.0;
    let (lower, upper) = (Some(mean - band), Some(mean + band));
    let change = if mean != 0.0 {
        (value - mean) / mean.abs() * 100.0
    } else if value == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(value)
    };
    if baseline.len() < model.min_samples {
        return Judgement { severity: Severity::InsufficientData, baseline: Some(mean), lower_limit: lower, upper_limit: upper, change_pct: Some(change), pvalue: None };
    }
    // Positive `worse` means the value moved in the bad direction.
    let worse = match direction {
        Direction::LowerIsBetter => change,
        Direction::HigherIsBetter => -change,
    };
    let severity = if worse > model.block_pct {
        Severity::Block
    } else if worse > model.warn_pct {
        Severity::Warn
    } else if worse < -model.warn_pct {
        Severity::Improved
    } else {
        Severity::Pass
    };
    Judgement { severity, baseline: Some(mean), lower_limit: lower, upper_limit: upper, change_pct: change.is_finite().then_some(change), pvalue: None }
}

/// Which threshold model judges a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// `warn`/`block` are percentages of the baseline mean (the seed's model).
    Percentage,
    /// `warn`/`block` are absolute limits on the bad side.
    Static,
    /// `warn`/`block` are cumulative probabilities of a normal fit (0.977 ≈ 2σ).
    ZScore,
    /// Cumulative probabilities of a Student t fit with n−1 degrees of freedom.
    TTest,
    /// Cumulative probabilities of a log-normal fit.
    LogNormal,
    /// Multipliers of the interquartile range around the median.
    Iqr,
    /// Multipliers of the IQR of adjacent relative changes, scaled by the median.
    DeltaIqr,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Percentage => "percentage",
            ModelKind::Static => "static",
            ModelKind::ZScore => "z_score",
            ModelKind::TTest => "t_test",
            ModelKind::LogNormal => "log_normal",
            ModelKind::Iqr => "iqr",
            ModelKind::DeltaIqr => "delta_iqr",
        }
    }
}

/// A model with its warn and block boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub warn: f64,
    pub block: f64,
    /// Fewer baseline values give `insufficient_data`.
    pub min_samples: usize,
}

impl ModelSpec {
    fn model(&self, boundary: f64, direction: Direction) -> Model {
        let (b, n) = (Some(boundary), None);
        match self.kind {
            // Static limits only exist on the bad side.
            ModelKind::Static => match direction {
                Direction::LowerIsBetter => Model::Static { lower: n, upper: b },
                Direction::HigherIsBetter => Model::Static { lower: b, upper: n },
            },
            ModelKind::Percentage => Model::Percentage { lower: b.map(|p| p / 100.0), upper: b.map(|p| p / 100.0) },
            ModelKind::ZScore => Model::ZScore { lower: b, upper: b },
            ModelKind::TTest => Model::TTest { lower: b, upper: b },
            ModelKind::LogNormal => Model::LogNormal { lower: b, upper: b },
            ModelKind::Iqr => Model::Iqr { lower: b, upper: b },
            ModelKind::DeltaIqr => Model::DeltaIqr { lower: b, upper: b },
        }
    }
}

/// Judges `value` against `history` with any model: beyond the block limit on the bad side
/// blocks, beyond the warn limit warns, beyond the warn limit on the good side improves.
/// Reports the warn limits, the change against the model's baseline, and for distribution
/// models the probability of a value at least this bad.
pub fn judge(value: f64, history: &[f64], direction: Direction, spec: &ModelSpec) -> Judgement {
    if spec.kind == ModelKind::Percentage {
        let model = PercentageModel { warn_pct: spec.warn, block_pct: spec.block, min_samples: spec.min_samples };
        return Judgement { pvalue: None, ..judge_percentage(value, history, direction, &model) };
    }
    let mean = (!history.is_empty()).then(|| mean_stdev(history).0);
    let insufficient = |baseline: Option<f64>| Judgement {
        severity: Severity::InsufficientData,
        baseline,
        lower_limit: None,
        upper_limit: None,
        change_pct: baseline.and_then(|b| change(value, b)),
        pvalue: None,
    };
    let (warn, block) = match (spec.model(spec.warn, direction).limits(history, spec.min_samples), spec.model(spec.block, direction).limits(history, spec.min_samples)) {
        (Ok(w), Ok(b)) => (w, b),
        _ => return insufficient(mean),
    };
    let bad = |l: &Limits| match direction {
        Direction::LowerIsBetter => l.outlier(value) == Some(Side::Upper),
        Direction::HigherIsBetter => l.outlier(value) == Some(Side::Lower),
    };
    let good = match direction {
        Direction::LowerIsBetter => warn.outlier(value) == Some(Side::Lower),
        Direction::HigherIsBetter => warn.outlier(value) == Some(Side::Upper),
    };
    let severity = if bad(&block) {
        Severity::Block
    } else if bad(&warn) {
        Severity::Warn
    } else if good && spec.kind != ModelKind::Static {
        Severity::Improved
    } else {
        Severity::Pass
    };
    let baseline = warn.baseline.or(mean);
    Judgement {
        severity,
        baseline,
        lower_limit: warn.lower,
        upper_limit: warn.upper,
        change_pct: baseline.and_then(|b| change(value, b)),
        pvalue: tail_probability(value, history, direction, spec.kind),
    }
}

fn change(value: f64, baseline: f64) -> Option<f64> {
    (baseline != 0.0).then(|| (value - baseline) / baseline.abs() * 100.0)
}

/// P(X at least as bad as `value`) under the model's fit of `history`.
fn tail_probability(value: f64, history: &[f64], direction: Direction, kind: ModelKind) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, LogNormal, Normal, StudentsT};
    let n = history.len() as f64;
    let pstd = |x: &[f64]| {
        let (m, _) = mean_stdev(x);
        (m, (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt())
    };
    let (cdf, sf) = match kind {
        ModelKind::ZScore => {
            let (m, s) = pstd(history);
            let d = Normal::new(m, s).ok()?;
            (d.cdf(value), d.sf(value))
        }
        ModelKind::TTest => {
            let (m, s) = pstd(history);
            let d = StudentsT::new(m, s, n - 1.0).ok()?;
            (d.cdf(value), d.sf(value))
        }
        ModelKind::LogNormal => {
            if value <= 0.0 || history.iter().any(|&x| x <= 0.0) {
                return None;
            }
            let logs: Vec<f64> = history.iter().map(|x| x.ln()).collect();
            let (m, s) = pstd(&logs);
            let d = LogNormal::new(m, s).ok()?;
            (d.cdf(value), d.sf(value))
        }
        _ => return None,
    };
    Some(match direction {
        Direction::LowerIsBetter => sf,
        Direction::HigherIsBetter => cdf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [f64; 4] = [100.0, 102.0, 98.0, 100.0]; // mean 100

    fn sev(v: f64, d: Direction) -> Severity {
        judge_percentage(v, &BASE, d, &PercentageModel::default()).severity
    }

    #[test]
    fn seed_defaults_warn_above_5_block_above_10() {
        use Direction::*;
        assert_eq!(sev(104.9, LowerIsBetter), Severity::Pass);
        assert_eq!(sev(105.1, LowerIsBetter), Severity::Warn);
        assert_eq!(sev(110.1, LowerIsBetter), Severity::Block);
        assert_eq!(sev(94.0, LowerIsBetter), Severity::Improved);
        assert_eq!(sev(89.0, HigherIsBetter), Severity::Block);
        assert_eq!(sev(106.0, HigherIsBetter), Severity::Improved);
    }

    #[test]
    fn too_few_baseline_values_is_insufficient() {
        let j = judge_percentage(200.0, &[100.0, 100.0], Direction::LowerIsBetter, &PercentageModel::default());
        assert_eq!(j.severity, Severity::InsufficientData);
        assert_eq!(j.change_pct, Some(100.0));
        let j = judge_percentage(1.0, &[], Direction::LowerIsBetter, &PercentageModel::default());
        assert_eq!((j.severity, j.baseline), (Severity::InsufficientData, None));
    }

    #[test]
    fn limits_and_change_are_reported() {
        let j = judge_percentage(112.0, &BASE, Direction::LowerIsBetter, &PercentageModel::default());
        assert_eq!(j.baseline, Some(100.0));
        assert_eq!((j.lower_limit, j.upper_limit), (Some(95.0), Some(105.0)));
        assert!((j.change_pct.unwrap() - 12.0).abs() < 1e-12);
    }

    #[test]
    fn zero_baseline_does_not_divide_by_zero() {
        let j = judge_percentage(1.0, &[0.0, 0.0, 0.0], Direction::LowerIsBetter, &PercentageModel::default());
        assert_eq!(j.severity, Severity::Block);
        assert_eq!(j.change_pct, None);
        let j = judge_percentage(0.0, &[0.0, 0.0, 0.0], Direction::LowerIsBetter, &PercentageModel::default());
        assert_eq!(j.severity, Severity::Pass);
    }

    #[test]
    fn distribution_models_warn_block_and_report_a_tail_probability() {
        let h = [10.2, 9.8, 10.5, 10.1, 9.9, 10.4, 10.0, 10.3];
        let spec = ModelSpec { kind: ModelKind::TTest, warn: 0.95, block: 0.99, min_samples: 3 };
        assert_eq!(judge(10.2, &h, Direction::LowerIsBetter, &spec).severity, Severity::Pass);
        let j = judge(11.5, &h, Direction::LowerIsBetter, &spec);
        assert_eq!(j.severity, Severity::Block);
        assert!(j.pvalue.unwrap() < 0.01, "{j:?}");
        assert_eq!(judge(9.0, &h, Direction::LowerIsBetter, &spec).severity, Severity::Improved);
        assert_eq!(judge(9.0, &h, Direction::HigherIsBetter, &spec).severity, Severity::Block);
        let iqr = ModelSpec { kind: ModelKind::Iqr, warn: 1.5, block: 3.0, min_samples: 3 };
        assert_eq!(judge(10.8, &h, Direction::LowerIsBetter, &iqr).severity, Severity::Warn);
        let st = ModelSpec { kind: ModelKind::Static, warn: 12.0, block: 15.0, min_samples: 0 };
        assert_eq!(judge(13.0, &[], Direction::LowerIsBetter, &st).severity, Severity::Warn);
        assert_eq!(judge(1.0, &[], Direction::LowerIsBetter, &st).severity, Severity::Pass);
        assert_eq!(judge(10.0, &h[..2], Direction::LowerIsBetter, &spec).severity, Severity::InsufficientData);
    }
}

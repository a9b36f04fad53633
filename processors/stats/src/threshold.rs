//! Threshold models: limits from a baseline window, and the severity of a new value.

use trackiq_schemas::{Direction, Severity};

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
}

/// Judges `value` against the `baseline` window with the percentage model.
pub fn judge_percentage(value: f64, baseline: &[f64], direction: Direction, model: &PercentageModel) -> Judgement {
    if baseline.is_empty() {
        return Judgement { severity: Severity::InsufficientData, baseline: None, lower_limit: None, upper_limit: None, change_pct: None };
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
        return Judgement { severity: Severity::InsufficientData, baseline: Some(mean), lower_limit: lower, upper_limit: upper, change_pct: Some(change) };
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
    Judgement { severity, baseline: Some(mean), lower_limit: lower, upper_limit: upper, change_pct: change.is_finite().then_some(change) }
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
}

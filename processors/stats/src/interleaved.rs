//! Judging interleaved rounds (`trackiq confirm`): baseline and candidate each run once per
//! round, alternating on the same machine, so slow drifts of the machine fall on both alike.
//! Each side gives one figure per round (the round's median); the change is the difference
//! of their means against the baseline's mean, with Student's two-sample t (pooled variance,
//! n + k − 2 degrees of freedom): the one-sided p-value in the bad direction and the
//! `CONFIDENCE` interval of the difference. The spread floor is the verdicts' (a baseline of
//! identical figures is not infinitely precise).

use statrs::distribution::{ContinuousCDF, StudentsT};
use trackiq_schemas::Direction;

use crate::significance::{CONFIDENCE, Evidence, MIN_RELATIVE_SPREAD};

/// The evidence that `candidate`'s round figures differ from `baseline`'s; `None` with fewer
/// than two rounds on a side or a zero baseline mean.
pub fn interleaved_evidence(candidate: &[f64], baseline: &[f64], direction: Direction) -> Option<Evidence> {
    let (n, k) = (candidate.len(), baseline.len());
    if n < 2 || k < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mc, mb) = (mean(candidate), mean(baseline));
    if mb == 0.0 || !mb.is_finite() || !mc.is_finite() {
        return None;
    }
    let ss = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
    let df = (n + k - 2) as f64;
    let pooled = ((ss(candidate, mc) + ss(baseline, mb)) / df).sqrt().max(MIN_RELATIVE_SPREAD * mb.abs());
    let se = pooled * (1.0 / n as f64 + 1.0 / k as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let diff = mc - mb;
    let (upper, lower) = (t.sf(diff / se), t.cdf(diff / se));
    let half = t.inverse_cdf(0.5 + CONFIDENCE / 2.0) * se;
    let pct = |d: f64| d / mb.abs() * 100.0;
    let (worse, better) = match direction {
        Direction::LowerIsBetter => (upper, lower),
        Direction::HigherIsBetter => (lower, upper),
    };
    Some(Evidence {
        baseline: mb,
        change_pct: pct(diff),
        ci_low_pct: pct(diff - half),
        ci_high_pct: pct(diff + half),
        pvalue_worse: Some(worse),
        pvalue_better: Some(better),
        test: "interleaved",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [f64; 5] = [50.1, 50.9, 49.8, 50.4, 50.6];

    /// Expected values from scipy 1.17.1:
    /// ```python
    /// r = stats.ttest_ind(c, base, equal_var=True); ci = r.confidence_interval(0.95)
    /// p = stats.ttest_ind(c, base, equal_var=True, alternative='greater').pvalue
    /// (p, ci.low / mean(base) * 100, ci.high / mean(base) * 100)
    /// ```
    #[test]
    fn agrees_with_scipy_ttest_ind() {
        let slower = [57.9, 58.3, 57.2, 58.8, 57.6];
        let e = interleaved_evidence(&slower, &BASE, Direction::LowerIsBetter).unwrap();
        assert!((e.change_pct - 15.091342335186658).abs() < 1e-9, "{e:?}");
        assert!((e.ci_low_pct - 13.550715090434926).abs() < 1e-9 && (e.ci_high_pct - 16.631969579938392).abs() < 1e-9, "{e:?}");
        assert!((e.pvalue_worse.unwrap() - 7.811582816403073e-09).abs() < 1e-15, "{e:?}");
        let same = [50.3, 50.0, 50.7, 49.9, 50.5];
        let e = interleaved_evidence(&same, &BASE, Direction::LowerIsBetter).unwrap();
        assert!((e.change_pct + 0.15885623510722457).abs() < 1e-9, "{e:?}");
        assert!((e.ci_low_pct + 1.271100989361342).abs() < 1e-9 && (e.ci_high_pct - 0.9533885191468928).abs() < 1e-9, "{e:?}");
        assert!((e.pvalue_worse.unwrap() - 0.6248275393296503).abs() < 1e-12, "{e:?}");
        // Higher is better: the same slowdown is an improvement, its worse-side p the other tail.
        let e = interleaved_evidence(&slower, &BASE, Direction::HigherIsBetter).unwrap();
        assert!(e.pvalue_worse.unwrap() > 0.999_999 && e.pvalue_better.unwrap() < 1e-8);
    }

    #[test]
    fn too_few_rounds_or_a_zero_baseline_say_nothing() {
        assert!(interleaved_evidence(&[1.0], &BASE, Direction::LowerIsBetter).is_none());
        assert!(interleaved_evidence(&[1.0, 2.0], &[0.0, 0.0], Direction::LowerIsBetter).is_none());
        // Identical figures: the spread floor keeps the test finite.
        let e = interleaved_evidence(&[10.0, 10.0], &[10.0, 10.0], Direction::LowerIsBetter).unwrap();
        assert_eq!(e.change_pct, 0.0);
        assert!(e.ci_low_pct < 0.0 && e.ci_high_pct > 0.0);
    }
}

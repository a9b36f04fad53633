//! Judging a run by magnitude **and** significance: a change warns or blocks only when it is
//! larger than the threshold and unlikely under the baseline's own run-to-run variation.
//!
//! Two tests, both one-sided in the bad direction; the larger p-value decides (an
//! intersection–union test: each must reject, so neither can raise the false-alarm rate):
//! - **runs**: is the candidate's value a plausible new draw from the baseline runs? With
//!   the baseline run values' mean m and sample standard deviation s over n runs,
//!   t = (x − m) / (s·√(1 + 1/n)) with n − 1 degrees of freedom — the Student-t
//!   prediction interval. This is the test that knows a noisy machine is noisy.
//! - **samples** (where both sides have raw-sample spread): Welch's t of the candidate's
//!   samples against the baseline runs' samples pooled (their total variance). For a rate
//!   (0/1 samples such as failed iterations: [`Samples::Rate`]) Fisher's exact test of the
//!   candidate's ones against the baseline runs' ones pooled instead: a baseline that never
//!   failed has no spread for a t-test, but how many iterations it ran says how surprising a
//!   failure is.
//!
//! Effect: change of x against m in percent, with the 95 % interval of the binding test.
//! A run has many metrics: [`holm`] adjusts their p-values so the probability of any false
//! alarm in the run stays at α (family-wise, which is what a per-run block rate is).

use statrs::distribution::{ContinuousCDF, StudentsT};
use trackiq_schemas::{Direction, Severity};

/// Confidence of the reported interval of the change.
pub const CONFIDENCE: f64 = 0.95;

/// A baseline with no spread at all (identical recorded values) would make any difference
/// infinitely significant; its standard deviation is taken as at least this fraction of
/// the mean (0.1 %), below what any timing on a real machine repeats to.
pub const MIN_RELATIVE_SPREAD: f64 = 1e-3;

/// One run's figure of a metric: its value (the mean of its samples) and their spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunFigure {
    pub value: f64,
    /// Sample standard deviation of the run's samples (ddof 1), when it had two or more.
    pub stdev: Option<f64>,
    pub count: i64,
}

impl RunFigure {
    /// A figure with no sample spread (a recorded value, a derived figure).
    pub fn single(value: f64) -> Self {
        RunFigure { value, stdev: None, count: 1 }
    }
}

/// The effect of a candidate against its baseline and how sure it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub baseline: f64,
    /// (x − m) / |m| × 100.
    pub change_pct: f64,
    /// The `CONFIDENCE` interval of `change_pct`.
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    /// One-sided p-value of a change this bad or worse; `None` when no test applies (one
    /// baseline run and no sample spread): then the magnitude alone decides.
    pub pvalue_worse: Option<f64>,
    /// One-sided p-value of a change this good or better.
    pub pvalue_better: Option<f64>,
    /// Which test bound the decision: `runs`, `samples` or `magnitude`.
    pub test: &'static str,
}

/// A t statistic, its degrees of freedom and standard error.
struct TTest {
    diff: f64,
    se: f64,
    df: f64,
}

impl TTest {
    fn student(&self) -> Option<StudentsT> {
        StudentsT::new(0.0, 1.0, self.df).ok()
    }

    /// (p of x − m this large or larger, p this small or smaller).
    fn tails(&self) -> Option<(f64, f64)> {
        let t = self.diff / self.se;
        let d = self.student()?;
        t.is_finite().then(|| (d.sf(t), d.cdf(t)))
    }

    fn half_width(&self) -> Option<f64> {
        Some(self.student()?.inverse_cdf(0.5 + CONFIDENCE / 2.0) * self.se)
    }
}

/// The runs test: the candidate against the spread of the baseline runs' values.
fn runs_test(x: f64, values: &[f64]) -> Option<TTest> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let s = var.sqrt().max(MIN_RELATIVE_SPREAD * m.abs());
    (s > 0.0).then(|| TTest { diff: x - m, se: s * (1.0 + 1.0 / n as f64).sqrt(), df: (n - 1) as f64 })
}

/// The samples test: Welch's t from the candidate's (mean, sd, count) and the baseline runs'
/// samples pooled: total count N, grand mean M and variance Σ((nᵢ−1)sᵢ² + nᵢ(xᵢ−M)²)/(N−1).
fn samples_test(x: &RunFigure, baseline: &[RunFigure]) -> Option<TTest> {
    let sx = x.stdev.filter(|_| x.count >= 2)?;
    if baseline.iter().any(|b| b.count < 2 || b.stdev.is_none()) || baseline.is_empty() {
        return None;
    }
    let total: f64 = baseline.iter().map(|b| b.count as f64).sum();
    let grand = baseline.iter().map(|b| b.count as f64 * b.value).sum::<f64>() / total;
    let ss: f64 = baseline.iter().map(|b| (b.count as f64 - 1.0) * b.stdev.unwrap_or(0.0).powi(2) + b.count as f64 * (b.value - grand).powi(2)).sum();
    let var_b = ss / (total - 1.0);
    let (a, b) = (sx * sx / x.count as f64, var_b / total);
    let se = (a + b).sqrt();
    let df = (a + b).powi(2) / (a * a / (x.count as f64 - 1.0) + b * b / (total - 1.0));
    (se > 0.0 && df.is_finite()).then_some(TTest { diff: x.value - grand, se, df })
}

/// What a run's samples are, which decides the samples test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Samples {
    /// Measurements: Welch's t.
    #[default]
    Measured,
    /// 0/1 indicators whose mean is a rate (failed iterations): Fisher's exact test.
    Rate,
}

/// Normal quantile of the `CONFIDENCE` interval of a rate difference (Wald).
const Z_CONFIDENCE: f64 = 1.959_963_984_540_054;

/// The samples test of a rate: Fisher's exact test of the candidate's ones (value × count)
/// against the baseline runs' ones pooled, as (worse p, better p, half-width of the Wald
/// interval of the difference). `None` without counts on both sides.
fn rate_test(x: &RunFigure, baseline: &[RunFigure], direction: Direction) -> Option<(f64, f64, f64)> {
    let ones = |f: &RunFigure| (f.value * f.count as f64).round().max(0.0) as u64;
    let (k, n) = (ones(x), u64::try_from(x.count).ok()?);
    let (k0, n0) = baseline.iter().try_fold((0u64, 0u64), |(k0, n0), b| Some((k0 + ones(b), n0 + u64::try_from(b.count).ok()?)))?;
    // No event on either side: the smallest p-value the test could reach is 1, so it tests
    // nothing, and counting it in Holm's family would only raise the other metrics' p-values
    // (Tarone, 1990: a discrete test that cannot reach significance is left out of the family).
    if k + k0 == 0 {
        return None;
    }
    let (greater, less) = crate::hypothesis::fisher_exact(k, n, k0, n0)?;
    let (p, p0) = (k as f64 / n as f64, k0 as f64 / n0 as f64);
    let half = Z_CONFIDENCE * (p * (1.0 - p) / n as f64 + p0 * (1.0 - p0) / n0 as f64).sqrt();
    Some(match direction {
        Direction::LowerIsBetter => (greater, less, half),
        Direction::HigherIsBetter => (less, greater, half),
    })
}

/// The evidence of `candidate` against the `baseline` runs; `None` with no baseline.
pub fn evidence(candidate: &RunFigure, baseline: &[RunFigure], direction: Direction) -> Option<Evidence> {
    evidence_of(candidate, baseline, direction, Samples::Measured)
}

/// [`evidence`] of samples of the given kind.
pub fn evidence_of(candidate: &RunFigure, baseline: &[RunFigure], direction: Direction, samples: Samples) -> Option<Evidence> {
    if baseline.is_empty() {
        return None;
    }
    let values: Vec<f64> = baseline.iter().map(|b| b.value).collect();
    let m = values.iter().sum::<f64>() / values.len() as f64;
    // Against a zero baseline only "no change" (0 %) or an unbounded one can be said.
    let pct = |d: f64| if m != 0.0 { d / m.abs() * 100.0 } else if d == 0.0 { 0.0 } else { f64::INFINITY.copysign(d) };
    let x = candidate.value;
    // (test name, worse p, better p, interval half-width)
    let mut bound: Option<(&'static str, f64, f64, f64)> = None;
    let t_tests = [("runs", runs_test(x, &values)), ("samples", if samples == Samples::Measured { samples_test(candidate, baseline) } else { None })];
    let by_t = t_tests.into_iter().filter_map(|(name, test)| {
        let t = test?;
        let ((upper, lower), half) = (t.tails()?, t.half_width()?);
        Some(match direction {
            Direction::LowerIsBetter => (name, upper, lower, half),
            Direction::HigherIsBetter => (name, lower, upper, half),
        })
    });
    let by_rate = (samples == Samples::Rate).then(|| rate_test(candidate, baseline, direction)).flatten().map(|(w, b, h)| ("samples", w, b, h));
    for (name, worse, better, half) in by_t.chain(by_rate) {
        if bound.is_none_or(|(_, w, _, _)| worse > w) {
            bound = Some((name, worse, better, half));
        }
    }
    let change = pct(x - m);
    Some(match bound {
        Some((test, worse, better, half)) => Evidence {
            baseline: m,
            change_pct: change,
            ci_low_pct: pct(x - m - half),
            ci_high_pct: pct(x - m + half),
            pvalue_worse: Some(worse),
            pvalue_better: Some(better),
            test,
        },
        None => Evidence { baseline: m, change_pct: change, ci_low_pct: change, ci_high_pct: change, pvalue_worse: None, pvalue_better: None, test: "magnitude" },
    })
}

/// One-sided p-value that the mean of `recent` runs is worse than the mean of `baseline`
/// runs: Student's two-sample t with pooled variance (n + k − 2 degrees of freedom), the
/// same spread floor as the runs test. `None` with fewer than 2 baseline runs.
pub fn shift_pvalue(recent: &[f64], baseline: &[f64], direction: Direction) -> Option<f64> {
    let (k, n) = (recent.len(), baseline.len());
    if k == 0 || n < 2 {
        return None;
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (mr, mb) = (mean(recent), mean(baseline));
    let ss = |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>();
    let pooled = ((ss(recent, mr) + ss(baseline, mb)) / (k + n - 2) as f64).sqrt().max(MIN_RELATIVE_SPREAD * mb.abs());
    let se = pooled * (1.0 / k as f64 + 1.0 / n as f64).sqrt();
    let t = TTest { diff: mr - mb, se, df: (k + n - 2) as f64 };
    let (upper, lower) = t.tails()?;
    Some(match direction {
        Direction::LowerIsBetter => upper,
        Direction::HigherIsBetter => lower,
    })
}

/// Thresholds of the significance model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignificanceSpec {
    /// A change in the bad direction beyond this percentage (and significant) warns.
    pub warn_pct: f64,
    /// ... beyond this percentage blocks.
    pub block_pct: f64,
    /// Family-wise significance level of a run's gating metrics.
    pub alpha: f64,
}

/// The severity of evidence whose worse-side p-value, adjusted for the run's other metrics,
/// is `adjusted_worse` (`None`: no test applied, magnitude decides).
pub fn severity(e: &Evidence, adjusted_worse: Option<f64>, direction: Direction, spec: &SignificanceSpec) -> Severity {
    let worse_pct = match direction {
        Direction::LowerIsBetter => e.change_pct,
        Direction::HigherIsBetter => -e.change_pct,
    };
    let significant = adjusted_worse.is_none_or(|p| p < spec.alpha);
    if worse_pct > spec.block_pct && significant {
        Severity::Block
    } else if worse_pct > spec.warn_pct && significant {
        Severity::Warn
    } else if worse_pct < -spec.warn_pct && e.pvalue_better.is_none_or(|p| p < spec.alpha) {
        Severity::Improved
    } else {
        Severity::Pass
    }
}

/// Holm's step-down adjustment: the i-th smallest of m p-values becomes
/// max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎), in the input order. Rejecting adjusted p < α
/// keeps the family-wise error rate at α under any dependence between the metrics (a
/// run's latency, throughput and CPU time move together), which Benjamini–Hochberg's false
/// discovery rate does not promise per run.
pub fn holm(pvalues: &[f64]) -> Vec<f64> {
    let m = pvalues.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| pvalues[a].total_cmp(&pvalues[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * pvalues[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= TOL * b.abs().max(1e-300)
    }

    // Expected values from scipy 1.17.1 / numpy 2.4.6:
    // python3 -c "
    // import numpy as np, scipy.stats as st
    // b=np.array([10.2,9.8,10.5,10.1,9.9,10.4,10.0,10.3]); x=10.9; n=len(b)
    // m=b.mean(); s=b.std(ddof=1); se=s*np.sqrt(1+1/n); t=(x-m)/se
    // print(repr(st.t.sf(t,n-1)), repr(st.t.ppf(0.975,n-1)*se/m*100), repr((x-m)/m*100))"
    const BASE: [f64; 8] = [10.2, 9.8, 10.5, 10.1, 9.9, 10.4, 10.0, 10.3];
    const P_RUNS: f64 = 0.011_712_318_027_218_714;
    const HALF_PCT: f64 = 6.052_683_760_445_662;
    const CHANGE_PCT: f64 = 7.389_162_561_576_354;

    #[test]
    fn the_runs_test_is_the_student_t_prediction_interval() {
        let base: Vec<RunFigure> = BASE.iter().map(|&v| RunFigure::single(v)).collect();
        let e = evidence(&RunFigure::single(10.9), &base, Direction::LowerIsBetter).unwrap();
        assert_eq!(e.test, "runs");
        assert!(close(e.pvalue_worse.unwrap(), P_RUNS), "{e:?}");
        assert!(close(e.change_pct, CHANGE_PCT));
        assert!(close(e.ci_high_pct - e.change_pct, HALF_PCT) && close(e.change_pct - e.ci_low_pct, HALF_PCT), "{e:?}");
        // Higher is better: the same value is an improvement, its worse-side p the other tail.
        let h = evidence(&RunFigure::single(10.9), &base, Direction::HigherIsBetter).unwrap();
        assert!(close(h.pvalue_better.unwrap(), P_RUNS));
    }

    #[test]
    fn the_larger_p_value_of_the_two_tests_binds() {
        // Tight baseline runs but a candidate with few, very noisy samples: not significant.
        let base: Vec<RunFigure> = BASE.iter().map(|&v| RunFigure { value: v, stdev: Some(0.5), count: 1000 }).collect();
        let noisy = RunFigure { value: 11.5, stdev: Some(5.0), count: 3 };
        let e = evidence(&noisy, &base, Direction::LowerIsBetter).unwrap();
        assert_eq!(e.test, "samples");
        assert!(e.pvalue_worse.unwrap() > 0.1, "{e:?}");
        let spec = SignificanceSpec { warn_pct: 5.0, block_pct: 10.0, alpha: 0.01 };
        assert_eq!(severity(&e, e.pvalue_worse, Direction::LowerIsBetter, &spec), Severity::Pass);
    }

    #[test]
    fn magnitude_and_significance_are_both_needed() {
        let spec = SignificanceSpec { warn_pct: 5.0, block_pct: 10.0, alpha: 0.01 };
        let judge = |x: f64, base: &[f64]| {
            let b: Vec<RunFigure> = base.iter().map(|&v| RunFigure::single(v)).collect();
            let e = evidence(&RunFigure::single(x), &b, Direction::LowerIsBetter).unwrap();
            severity(&e, e.pvalue_worse, Direction::LowerIsBetter, &spec)
        };
        let quiet = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0];
        let noisy = [100.0, 130.0, 80.0, 115.0, 90.0, 105.0];
        assert_eq!(judge(115.0, &quiet), Severity::Block);
        assert_eq!(judge(107.0, &quiet), Severity::Warn);
        assert_eq!(judge(103.0, &quiet), Severity::Pass, "significant but below the threshold");
        assert_eq!(judge(125.0, &noisy), Severity::Pass, "above the threshold but within the noise");
        assert_eq!(judge(90.0, &quiet), Severity::Improved);
        // Identical recorded baselines still judge (a spread floor, not a division by zero).
        assert_eq!(judge(12.0, &[10.0, 10.0, 10.0]).rank(), Severity::Block.rank());
        // A metric that stays at zero (no failed iteration) has not changed.
        assert_eq!(judge(0.0, &[0.0, 0.0, 0.0]), Severity::Pass);
        // One pinned run and no sample spread: magnitude alone.
        let e = evidence(&RunFigure::single(12.0), &[RunFigure::single(10.0)], Direction::LowerIsBetter).unwrap();
        assert_eq!((e.test, e.pvalue_worse), ("magnitude", None));
        assert_eq!(severity(&e, None, Direction::LowerIsBetter, &spec), Severity::Block);
    }

    // python3 -c "import scipy.stats as st; print(repr(st.ttest_ind([10.6,10.8,10.7],[10.2,9.8,10.5,10.1,9.9,10.4,10.0,10.3],alternative='greater').pvalue))"
    const P_SHIFT: f64 = 0.002_560_536_382_136_389_8;

    #[test]
    fn a_shift_of_several_runs_is_a_pooled_two_sample_t_test() {
        let p = shift_pvalue(&[10.6, 10.8, 10.7], &BASE, Direction::LowerIsBetter).unwrap();
        assert!(close(p, P_SHIFT), "{p}");
        assert!(shift_pvalue(&[10.6, 10.8, 10.7], &BASE, Direction::HigherIsBetter).unwrap() > 0.99);
        assert_eq!(shift_pvalue(&[1.0], &[1.0], Direction::LowerIsBetter), None);
    }

    #[test]
    fn a_rate_is_judged_by_fishers_exact_test_against_the_baseline_iterations() {
        // Baseline: 10 runs of 50 iterations, none failed. Rates have no spread there.
        let base = vec![RunFigure { value: 0.0, stdev: Some(0.0), count: 50 }; 10];
        let spec = SignificanceSpec { warn_pct: 5.0, block_pct: 10.0, alpha: 0.005 };
        let judge = |failed: i64| {
            let x = RunFigure { value: failed as f64 / 50.0, stdev: Some(0.3), count: 50 };
            let e = evidence_of(&x, &base, Direction::LowerIsBetter, Samples::Rate).unwrap();
            (e.test, e.pvalue_worse, severity(&e, e.pvalue_worse, Direction::LowerIsBetter, &spec))
        };
        // 1 of 50 against 0 of 500: p = 50/550 (scipy's fisher_exact, as in hypothesis.rs).
        let (test, p, sev) = judge(1);
        assert_eq!((test, sev), ("samples", Severity::Pass));
        assert!(close(p.unwrap(), 1.0 / 11.0), "{p:?}");
        // 5 of 50 against 0 of 500: p = 5.14e-6, a block (the change from 0 is unbounded).
        let (_, p, sev) = judge(5);
        assert!(close(p.unwrap(), 5.144_787_600_638_577_5e-6) && sev == Severity::Block, "{p:?} {sev:?}");
        // Every iteration failed: a block.
        assert_eq!(judge(50).2, Severity::Block);
        // None failed: no change, and no test (its smallest reachable p is 1), so it does not
        // join the run's Holm family and raise the other metrics' p-values.
        assert_eq!(judge(0), ("magnitude", None, Severity::Pass));
        // Welch's t with the zero-spread baseline would not have seen the 5 of 50.
        let x = RunFigure { value: 0.1, stdev: Some((0.1f64 * 0.9 * 50.0 / 49.0).sqrt()), count: 50 };
        let welch = evidence(&x, &base, Direction::LowerIsBetter).unwrap();
        assert!(welch.pvalue_worse.unwrap() > spec.alpha, "{welch:?}");
    }

    // Holm-adjusted values from statsmodels 0.15:
    // python3 -c "from statsmodels.stats.multitest import multipletests as m; print(m([0.01,0.04,0.03,0.005],method='holm')[1])"
    // → [0.03 0.06 0.06 0.02]
    #[test]
    fn holm_matches_statsmodels() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (a, b) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((a - b).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }
}

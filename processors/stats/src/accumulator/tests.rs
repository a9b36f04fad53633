use super::*;
use crate::summary::percentile_sorted;
use crate::synthetic::Noise;

/// α, the bound every sketched percentile is checked against.
const ALPHA: f64 = SKETCH_RELATIVE_ACCURACY;
/// Mean and stdev in sketch mode: the same quantities summed in another order (streaming,
/// pairwise on merge, numpy's pairwise), so only rounding may differ.
const MOMENT_REL_TOL: f64 = 1e-10;
/// Exact-mode limit of the sketch-mode tests: small, so that the data sets overflow it.
const SMALL_LIMIT: usize = 1000;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

fn accumulate(values: &[f64], limit: usize) -> ValueAccumulator {
    let mut acc = ValueAccumulator::new(limit);
    values.iter().for_each(|&x| acc.push(x));
    acc
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Latency-like values: 5 to about 1000 with a heavy tail, 4 + 1/(1 − 0.999·u) for u uniform
/// from `Noise` (splitmix64), so that Python reproduces them bit for bit.
fn heavy_tail(n: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n).map(|_| 4.0 + 1.0 / (1.0 - 0.999 * noise.uniform())).collect()
}

/// Values of both signs around zero.
fn mixed_sign(n: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n).map(|_| 3.0 + 10.0 * noise.normal()).collect()
}

/// Checks a sketched percentile against the exact order statistics around its position:
/// |p̂ − p| ≤ α·max(|x₍⌊h⌋₎|, |x₍⌈h⌉₎|), the module's bound.
fn assert_within_bound(got: f64, sorted: &[f64], q: f64) {
    let h = (sorted.len() - 1) as f64 * (q / 100.0);
    let (lo, hi) = (sorted[h.floor() as usize], sorted[h.ceil() as usize]);
    let want = percentile_sorted(sorted, q);
    let bound = ALPHA * lo.abs().max(hi.abs());
    assert!((got - want).abs() <= bound, "p{q}: {got} vs exact {want}, bound {bound}");
}

#[test]
fn exact_mode_is_summarize_and_histogram() {
    let values = mixed_sign(SMALL_LIMIT, 1);
    let acc = accumulate(&values, SMALL_LIMIT);
    assert!(acc.is_exact());
    let got = acc.summary(20).unwrap();
    let mut v = values.clone();
    let want = summarize(&mut v).unwrap();
    let (edges, counts) = histogram(&v, 20);
    assert_eq!(got, AccumulatedSummary { summary: want, edges, counts, precision: Precision::Exact });
}

#[test]
fn exact_merge_within_the_limit_is_still_summarize() {
    let values = heavy_tail(600, 2);
    let (mut a, b) = (accumulate(&values[..250], SMALL_LIMIT), accumulate(&values[250..], SMALL_LIMIT));
    a.merge(&b);
    assert!(a.is_exact());
    let mut v = values.clone();
    assert_eq!(a.summary(0).unwrap().summary, summarize(&mut v).unwrap());
}

#[test]
fn switches_to_the_sketch_past_the_limit_and_says_so() {
    let mut acc = accumulate(&[1.0, 2.0, 3.0], 3);
    assert!(acc.is_exact());
    acc.push(4.0);
    assert!(!acc.is_exact());
    assert_eq!(format!("{acc:?}"), "ValueAccumulator { exact_limit: 3, count: 4, exact: false }");
    let s = acc.summary(2).unwrap();
    assert_eq!(s.precision, Precision::Sketched { relative_error: ALPHA });
    assert!(!s.precision.is_exact());
    // Count, mean, stdev, min and max stay exact: 1..4 has mean 2.5 and stdev √(5/3).
    assert_eq!((s.summary.count, s.summary.mean, s.summary.min, s.summary.max), (4, 2.5, 1.0, 4.0));
    assert!(close(s.summary.stdev.unwrap(), (5.0f64 / 3.0).sqrt(), 1e-15));
    assert_eq!(s.counts, vec![2, 2]);
}

// Recorded truth, numpy 2.4.6: heavy_tail(100_000, seed 9) rebuilt in Python.
// python3 - <<'EOF'
// import numpy as np
// M = 2**64 - 1
// s, x = 9, []
// for _ in range(100_000):
//     s = (s + 0x9E3779B97F4A7C15) & M; z = s
//     z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//     z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//     z ^= z >> 31
//     x.append(4.0 + 1.0 / (1.0 - 0.999 * (((z >> 11) + 0.5) / 2**53)))
// x = np.array(x)
// print([float(v) for v in (x.mean(), x.std(ddof=1), x.min(), x.max(), *np.percentile(x, [50, 90, 95, 99]))])
// print(np.histogram(x, 20)[0].tolist())
// EOF
const TAIL_N: usize = 100_000;
const TAIL_SEED: u64 = 9;
const TAIL_MEAN: f64 = 11.009_063_846_464_764;
const TAIL_STDEV: f64 = 31.541_553_283_507_15;
const TAIL_MIN: f64 = 5.000_010_992_785_699;
const TAIL_MAX: f64 = 995.388_038_174_223_2;
const TAIL_PERCENTILES: [(f64, f64); 4] =
    [(50.0, 5.998_976_696_817_232), (90.0, 13.961_305_236_378_541), (95.0, 23.652_158_624_916_066), (99.0, 96.928_200_757_434_06)];
const TAIL_BINS: usize = 20;
const TAIL_COUNTS: [i64; TAIL_BINS] =
    [98018, 1064, 331, 179, 107, 64, 41, 32, 35, 23, 20, 16, 15, 9, 8, 7, 7, 8, 9, 7];

#[test]
fn sketch_mode_matches_numpy_within_alpha() {
    let values = heavy_tail(TAIL_N, TAIL_SEED);
    let got = accumulate(&values, SMALL_LIMIT).summary(TAIL_BINS).unwrap();
    let s = &got.summary;
    assert_eq!((s.count, s.min, s.max), (TAIL_N, TAIL_MIN, TAIL_MAX));
    assert!(close(s.mean, TAIL_MEAN, MOMENT_REL_TOL), "mean {}", s.mean);
    assert!(close(s.stdev.unwrap(), TAIL_STDEV, MOMENT_REL_TOL), "stdev {:?}", s.stdev);
    for ((q, want), got) in TAIL_PERCENTILES.into_iter().zip([s.p50, s.p90, s.p95, s.p99]) {
        // All values are positive, so the bound is plain relative error α.
        assert!(close(got, want, ALPHA), "p{q}: {got} vs numpy {want}");
    }

    // Edges are exact; a count may differ from numpy's only by the values within α·|x| of
    // the bin's edges, which the sketch may have placed on the other side.
    let sorted = sorted(&values);
    let (edges, _) = histogram(&sorted, TAIL_BINS);
    assert_eq!(got.edges, edges);
    let near = |e: f64| sorted.iter().filter(|&&x| (x - e).abs() <= ALPHA * x.abs()).count() as i64;
    for (i, (&c, want)) in got.counts.iter().zip(TAIL_COUNTS).enumerate() {
        let slack = near(edges[i]) + near(edges[i + 1]);
        assert!((c - want).abs() <= slack, "bin {i}: {c} vs numpy {want}, slack {slack}");
    }
    assert_eq!(got.counts.iter().sum::<i64>(), TAIL_N as i64);
}

#[test]
fn sketch_mode_bound_holds_across_zero() {
    let values = mixed_sign(50_000, 3);
    let sorted = sorted(&values);
    let s = accumulate(&values, SMALL_LIMIT).summary(0).unwrap().summary;
    for (q, got) in [(50.0, s.p50), (90.0, s.p90), (95.0, s.p95), (99.0, s.p99)] {
        assert_within_bound(got, &sorted, q);
    }
    let mut v = values.clone();
    let exact = summarize(&mut v).unwrap();
    assert_eq!((s.count, s.min, s.max), (exact.count, exact.min, exact.max));
    assert!(close(s.mean, exact.mean, MOMENT_REL_TOL) && close(s.stdev.unwrap(), exact.stdev.unwrap(), MOMENT_REL_TOL));
}

#[test]
fn sketch_mode_keeps_relative_error_for_tiny_magnitudes() {
    // A loss near 1e-20 would all be "zero" with the crate's default 1e-9 floor.
    let values: Vec<f64> = heavy_tail(5_000, 4).iter().map(|x| x * 1e-21).collect();
    let sorted = sorted(&values);
    let s = accumulate(&values, 0).summary(0).unwrap().summary;
    for (q, got) in [(50.0, s.p50), (90.0, s.p90), (95.0, s.p95), (99.0, s.p99)] {
        assert_within_bound(got, &sorted, q);
    }
}

#[test]
fn constant_values_in_sketch_mode_are_exact() {
    let mut all_five = vec![5.0; 3_000];
    let got = accumulate(&all_five, 10).summary(4).unwrap();
    let want = summarize(&mut all_five).unwrap();
    assert_eq!(got.summary, want, "clamping to [min, max] pins every percentile");
    assert_eq!((got.edges, got.counts), histogram(&all_five, 4));
}

/// Merging the pieces of a partition, whatever mode each piece is in, gives the accumulator
/// of all the values: the same sketch buckets, hence the same percentiles and histogram.
#[test]
fn merge_equals_accumulating_everything() {
    let values = heavy_tail(20_000, 5);
    let whole = accumulate(&values, SMALL_LIMIT).summary(TAIL_BINS).unwrap();
    // (cut, limit of the first piece, limit of the second): sketch+sketch, exact+sketch,
    // sketch+exact, exact+exact overflowing the limit.
    let cases = [(10_000, SMALL_LIMIT, SMALL_LIMIT), (500, SMALL_LIMIT, SMALL_LIMIT), (19_500, SMALL_LIMIT, SMALL_LIMIT), (700, SMALL_LIMIT, 20_000)];
    for (cut, limit_a, limit_b) in cases {
        let mut a = accumulate(&values[..cut], limit_a);
        let b = accumulate(&values[cut..], limit_b);
        a.merge(&b);
        let got = a.summary(TAIL_BINS).unwrap();
        let (g, w) = (&got.summary, &whole.summary);
        assert_eq!((g.count, g.min, g.max), (w.count, w.min, w.max), "cut {cut}");
        assert_eq!([g.p50, g.p90, g.p95, g.p99], [w.p50, w.p90, w.p95, w.p99], "cut {cut}");
        assert_eq!((&got.edges, &got.counts, got.precision), (&whole.edges, &whole.counts, whole.precision), "cut {cut}");
        assert!(close(g.mean, w.mean, MOMENT_REL_TOL) && close(g.stdev.unwrap(), w.stdev.unwrap(), MOMENT_REL_TOL), "cut {cut}");
    }
}

#[test]
fn merging_empty_accumulators_changes_nothing() {
    let values = heavy_tail(2_000, 6);
    let want = accumulate(&values, SMALL_LIMIT).summary(TAIL_BINS);
    let mut a = accumulate(&values, SMALL_LIMIT);
    a.merge(&ValueAccumulator::new(SMALL_LIMIT));
    assert_eq!(a.summary(TAIL_BINS), want);
    let mut e = ValueAccumulator::new(SMALL_LIMIT);
    e.merge(&accumulate(&values, SMALL_LIMIT));
    assert_eq!(e.summary(TAIL_BINS).unwrap().summary, want.unwrap().summary);
}

#[test]
fn empty_has_no_summary_and_one_value_has_no_stdev() {
    assert!(ValueAccumulator::new(SMALL_LIMIT).summary(TAIL_BINS).is_none());
    for limit in [0, 1] {
        let s = accumulate(&[4.0], limit).summary(1).unwrap();
        assert_eq!((s.summary.p50, s.summary.p99, s.summary.stdev, s.counts), (4.0, 4.0, None, vec![1]));
    }
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "callers validate values")]
fn non_finite_values_are_the_callers_bug() {
    ValueAccumulator::new(SMALL_LIMIT).push(f64::NAN);
}

#[test]
fn the_documented_range_is_what_the_constants_give() {
    let gamma = (1.0 + ALPHA) / (1.0 - ALPHA);
    let span = gamma.powi(SKETCH_MAX_BINS as i32 - 1);
    assert!((5e17..7e17).contains(&span), "{span:e}");
}

/// The module documentation quotes these; a new crate version may change the sketch's size.
#[test]
fn sizes_are_the_documented_ones() {
    assert_eq!(size_of::<ValueAccumulator>(), 72);
    assert_eq!(SKETCH_HEAP_BOUND_BYTES, 65_712);
}

//! numpy's summation and moments, reproduced operation for operation, so that decisions
//! taken at a threshold (a p-value against `max_pvalue`) come out as numpy's do.

/// numpy's pairwise summation of a contiguous float64 array (`np.add.reduce`):
/// plain loop below 8 values, 8 interleaved accumulators up to 128, halving above.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean(x)`.
pub fn mean(x: &[f64]) -> f64 {
    pairwise_sum(x) / x.len() as f64
}

/// `np.std(x)` (population standard deviation, ddof=0).
pub fn std(x: &[f64]) -> f64 {
    let m = mean(x);
    let sq: Vec<f64> = x.iter().map(|v| (v - m).abs() * (v - m).abs()).collect();
    (pairwise_sum(&sq) / x.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    // python3 -c "import numpy as np; x=np.arange(1,301)*0.1; print(repr(np.sum(x)), repr(np.std(x)))"
    // -> 4515.0 8.660205925188308 (numpy 2.4.6)
    #[test]
    fn matches_numpy_on_a_long_array() {
        let x: Vec<f64> = (1..=300).map(|i| i as f64 * 0.1).collect();
        assert_eq!(pairwise_sum(&x), 4515.0);
        assert_eq!(std(&x), 8.660_205_925_188_308);
    }
}

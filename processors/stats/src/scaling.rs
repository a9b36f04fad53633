//! Scaling efficiency: how much of the ideal N-fold throughput N workers deliver,
//! `eff(N) = thr(N) / (N · thr(1)) × 100`.

/// Efficiency in percent for each (workers, throughput) measurement, relative to the
/// single-worker throughput. `None` when no single-worker run is among them.
pub fn scaling_efficiency(points: &[(usize, f64)]) -> Option<Vec<(usize, f64)>> {
    let (_, base) = points.iter().find(|(n, t)| *n == 1 && *t > 0.0)?;
    let mut out: Vec<(usize, f64)> = points.iter().filter(|(n, _)| *n >= 1).map(|&(n, t)| (n, t / (n as f64 * base) * 100.0)).collect();
    out.sort_by_key(|(n, _)| *n);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_by_hand() {
        // 1 worker: 100 samples/s; 2: 180 (90 % of 200); 4: 300 (75 % of 400).
        let eff = scaling_efficiency(&[(4, 300.0), (1, 100.0), (2, 180.0)]).unwrap();
        assert_eq!(eff.len(), 3);
        for ((n, e), (wn, we)) in eff.iter().zip([(1, 100.0), (2, 90.0), (4, 75.0)]) {
            assert_eq!(*n, wn);
            assert!((e - we).abs() < 1e-12, "{n}: {e} vs {we}");
        }
        assert!(scaling_efficiency(&[(2, 180.0), (4, 300.0)]).is_none(), "needs the 1-worker baseline");
    }
}

//! The seeded fault matrix of `trackiq bench faults`: for each run, none, one or two faults
//! of random kinds on random ranks at random steps. A second fault is always injected while
//! the first is still acting (faults last to the end of the run), on another rank, so the pair
//! overlaps; the first of two is never a kill or a stall, which end the run before a second
//! could be injected.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::faults::{FaultKind, FaultSpec};

/// Every kind the matrix draws from.
pub const KINDS: [FaultKind; 4] = [FaultKind::SlowRank, FaultKind::NetDelay, FaultKind::KillRank, FaultKind::Stall];

/// Shape of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixShape {
    pub seed: u64,
    pub runs: usize,
    pub world: usize,
    pub steps: u64,
    /// Share of runs without a fault (the rest are split evenly between one and two faults).
    pub fault_free: f64,
    /// Steps before the first fault: the detectors' reference windows fill first.
    pub first_step: u64,
    /// Steps a fault has to show itself before the run ends.
    pub tail_steps: u64,
    /// The slow rank's extra compute time, ms.
    pub slow_ms: f64,
    /// The delay before every send of the slow link, ms.
    pub delay_ms: f64,
}

fn draw(rng: &mut SmallRng, kinds: &[FaultKind], rank: usize, step: u64, shape: &MatrixShape) -> FaultSpec {
    let kind = kinds[rng.random_range(0..kinds.len())];
    let delay_ms = match kind {
        FaultKind::SlowRank => shape.slow_ms,
        FaultKind::NetDelay => shape.delay_ms,
        FaultKind::KillRank | FaultKind::Stall => 0.0,
    };
    FaultSpec { kind, rank, step, delay_ms }
}

/// The faults of each run, in run order; the same seed gives the same matrix.
pub fn fault_matrix(shape: &MatrixShape) -> Vec<Vec<FaultSpec>> {
    let mut rng = SmallRng::seed_from_u64(shape.seed);
    let last = shape.steps.saturating_sub(shape.tail_steps).max(shape.first_step + 1);
    (0..shape.runs)
        .map(|_| {
            let u: f64 = rng.random();
            let count = if u < shape.fault_free {
                0
            } else if u < shape.fault_free + (1.0 - shape.fault_free) / 2.0 || shape.world < 2 {
                1
            } else {
                2
            };
            let first_rank = rng.random_range(0..shape.world);
            if count == 1 {
                let step = rng.random_range(shape.first_step..last);
                return vec![draw(&mut rng, &KINDS, first_rank, step, shape)];
            }
            if count == 0 {
                return Vec::new();
            }
            // Two: the first early enough that the second fits before the tail, at least
            // `first_step` steps later (the first's effect has settled), on another rank.
            let gap = shape.first_step.max(1);
            let first_last = last.saturating_sub(gap).max(shape.first_step + 1);
            let s1 = rng.random_range(shape.first_step..first_last);
            let s2 = rng.random_range((s1 + gap).min(last - 1)..last);
            let second_rank = (first_rank + rng.random_range(1..shape.world)) % shape.world;
            let first = draw(&mut rng, &[FaultKind::SlowRank, FaultKind::NetDelay], first_rank, s1, shape);
            vec![first, draw(&mut rng, &KINDS, second_rank, s2, shape)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(seed: u64) -> MatrixShape {
        MatrixShape { seed, runs: 400, world: 4, steps: 40, fault_free: 0.25, first_step: 8, tail_steps: 8, slow_ms: 40.0, delay_ms: 20.0 }
    }

    #[test]
    fn the_matrix_is_seeded_and_keeps_its_promises() {
        let m = fault_matrix(&shape(7));
        assert_eq!(m, fault_matrix(&shape(7)));
        assert_ne!(m, fault_matrix(&shape(8)));
        let count = |n: usize| m.iter().filter(|f| f.len() == n).count();
        // 25 % fault-free, the rest half one, half two: within 4 binomial σ of 400 runs.
        for (n, expect) in [(0, 100.0), (1, 150.0), (2, 150.0)] {
            assert!((count(n) as f64 - expect).abs() < 4.0 * (400.0f64 * 0.375 * 0.625).sqrt(), "{n} faults: {} runs", count(n));
        }
        for faults in &m {
            for f in faults {
                assert!(f.rank < 4 && (8..32).contains(&f.step), "{f}");
            }
            if let [a, b] = &faults[..] {
                assert!(b.step >= a.step + 8 && a.rank != b.rank, "{a} then {b}");
                assert!(matches!(a.kind, FaultKind::SlowRank | FaultKind::NetDelay), "{a} would end the run before {b}");
            }
        }
        for kind in KINDS {
            assert!(m.iter().flatten().any(|f| f.kind == kind), "{kind:?} never drawn");
        }
    }
}

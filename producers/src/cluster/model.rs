//! The model each worker trains: a linear layer `y = W·x` (W is `d_out × d_in`) fitted by SGD
//! to a fixed random teacher on synthetic data. Every rank draws its own batches (seeded by
//! seed, rank and step), so the ranks' gradients differ and the all-reduce sum matters; all
//! ranks start from the same weights and apply the same averaged gradient, so they stay in
//! lockstep. All arithmetic is real: three GEMMs per step through `matrixmultiply`.

use trackiq_stats::synthetic::Noise;

/// Input width; the gradient size sets the output width.
pub const D_IN: usize = 256;
/// Standard deviation of the label noise: the loss cannot fall below about NOISE²/2.
const NOISE: f32 = 0.1;

/// Shape of the model and of one rank's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub d_in: usize,
    pub d_out: usize,
    pub batch: usize,
}

impl Shape {
    /// The shape whose f32 gradient is as close to `grad_bytes` as whole rows allow (at least one row).
    pub fn for_gradient(grad_bytes: u64, batch: usize) -> Shape {
        let d_out = ((grad_bytes / 4) as usize / D_IN).max(1);
        Shape { d_in: D_IN, d_out, batch: batch.max(1) }
    }

    /// Number of parameters (and gradient elements).
    pub fn params(&self) -> usize {
        self.d_in * self.d_out
    }
}

/// C (m×n) = A·B with explicit row/column strides, through matrixmultiply's SGEMM.
#[allow(clippy::too_many_arguments)]
fn gemm(m: usize, k: usize, n: usize, a: &[f32], (rsa, csa): (usize, usize), b: &[f32], (rsb, csb): (usize, usize), c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above and the strides given keep every access inside the slices:
    // A is m×k with (rsa, csa), B is k×n with (rsb, csb), C is m×n row-major.
    unsafe {
        matrixmultiply::sgemm(
            m, k, n, 1.0,
            a.as_ptr(), rsa as isize, csa as isize,
            b.as_ptr(), rsb as isize, csb as isize,
            0.0, c.as_mut_ptr(), n as isize, 1,
        )
    }
}

/// One rank's copy of the model.
pub struct Replica {
    pub shape: Shape,
    seed: u64,
    teacher: Vec<f32>,
    pub weights: Vec<f32>,
    /// Gradient of the last `compute`, `d_out × d_in`.
    pub grad: Vec<f32>,
}

impl Replica {
    /// Zero weights and the teacher drawn from `seed` (identical on every rank).
    pub fn new(shape: Shape, seed: u64) -> Replica {
        let mut noise = Noise::new(seed ^ 0x7EAC_4E12_0000_0001);
        let scale = 1.0 / (shape.d_in as f64).sqrt();
        let teacher = (0..shape.params()).map(|_| (noise.normal() * scale) as f32).collect();
        Replica { shape, seed, teacher, weights: vec![0.0; shape.params()], grad: vec![0.0; shape.params()] }
    }

    /// Draws this rank's batch for `step`, computes the loss (half the mean squared error)
    /// and leaves the gradient of the per-sample squared error, averaged over the batch, in `grad`.
    pub fn compute(&mut self, rank: usize, step: u64) -> f64 {
        let Shape { d_in, d_out, batch } = self.shape;
        let mut noise = Noise::new(self.seed ^ ((rank as u64 + 1) << 40) ^ step.wrapping_mul(0x9E37_79B9));
        let x: Vec<f32> = (0..batch * d_in).map(|_| noise.normal() as f32).collect();
        // Labels: teacher · x plus noise. Weights and teacher are d_out × d_in row-major, so
        // their transposes have strides (1, d_in).
        let mut y = vec![0.0f32; batch * d_out];
        gemm(batch, d_in, d_out, &x, (d_in, 1), &self.teacher, (1, d_in), &mut y);
        for v in y.iter_mut() {
            *v += NOISE * noise.normal() as f32;
        }
        let mut err = vec![0.0f32; batch * d_out];
        gemm(batch, d_in, d_out, &x, (d_in, 1), &self.weights, (1, d_in), &mut err);
        let mut sq = 0.0f64;
        for (e, t) in err.iter_mut().zip(&y) {
            *e -= t;
            sq += (*e as f64) * (*e as f64);
        }
        // grad = errᵀ · x / batch  (d_out × d_in); errᵀ has strides (1, d_out).
        gemm(d_out, batch, d_in, &err, (1, d_out), &x, (d_in, 1), &mut self.grad);
        let inv = 1.0 / batch as f32;
        self.grad.iter_mut().for_each(|g| *g *= inv);
        0.5 * sq / (batch * d_out) as f64
    }

    /// SGD with the all-reduced gradient sum of `world` ranks: w -= lr · sum / world.
    pub fn apply(&mut self, grad_sum: &[f32], world: usize, lr: f32) {
        let k = lr / world as f32;
        for (w, g) in self.weights.iter_mut().zip(grad_sum) {
            *w -= k * g;
        }
    }
}

/// FNV-1a over the bit patterns: equal only for bit-identical vectors (in practice).
pub fn checksum(v: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in v {
        h ^= x.to_bits() as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Indices sampled to check the all-reduce against the serial sum.
pub fn probe_indices(len: usize, count: usize) -> Vec<usize> {
    let count = count.min(len);
    (0..count).map(|i| (i * len) / count.max(1) + (len / count.max(1)) / 2).map(|i| i.min(len.saturating_sub(1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_on_one_replica_lowers_the_loss() {
        let shape = Shape::for_gradient(64 * 1024, 16);
        assert_eq!((shape.d_in, shape.d_out, shape.params()), (256, 64, 16384));
        let mut r = Replica::new(shape, 7);
        let first = r.compute(0, 0);
        for step in 0..60 {
            r.compute(0, step);
            let g = r.grad.clone();
            r.apply(&g, 1, 0.05);
        }
        let last = r.compute(0, 99);
        // Teacher rows have unit norm: the starting loss is about 0.5 (+ noise).
        assert!((0.3..0.8).contains(&first), "{first}");
        assert!(last < first * 0.2, "loss {first} -> {last}");
    }

    #[test]
    fn gradient_matches_a_finite_difference() {
        let shape = Shape { d_in: D_IN, d_out: 2, batch: 4 };
        let mut r = Replica::new(shape, 3);
        r.weights.iter_mut().enumerate().for_each(|(i, w)| *w = (i % 7) as f32 * 0.01);
        r.compute(1, 5);
        let g = r.grad.clone();
        // loss = sum(e²) / (2·batch·d_out); grad holds d(sum e²/2)/dw / batch = d_out · dloss/dw.
        for idx in [0, 100, 300, 511] {
            let h = 1e-2f32;
            r.weights[idx] += h;
            let up = r.compute(1, 5);
            r.weights[idx] -= 2.0 * h;
            let down = r.compute(1, 5);
            r.weights[idx] += h;
            let numeric = (up - down) / (2.0 * h as f64) * shape.d_out as f64;
            assert!((numeric - g[idx] as f64).abs() < 1e-2 * (1.0 + g[idx].abs() as f64), "w[{idx}]: {numeric} vs {}", g[idx]);
        }
    }

    #[test]
    fn checksum_sees_one_flipped_bit() {
        let a = vec![1.0f32, 2.0, 3.0];
        let mut b = a.clone();
        assert_eq!(checksum(&a), checksum(&b));
        b[1] = f32::from_bits(b[1].to_bits() ^ 1);
        assert_ne!(checksum(&a), checksum(&b));
        assert_eq!(probe_indices(100, 4), vec![12, 37, 62, 87]);
    }
}

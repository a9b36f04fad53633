//! `trackiq bench compute`: a CPU inference-like workload. Each iteration is the forward pass
//! of a two-layer MLP (input · W1 → ReLU → · W2) over a batch, through `matrixmultiply`'s
//! GEMM, in f32 or f64, with the batch split across threads. One iteration processes
//! `batch` items, so throughput is items per second.

use crate::bench::Workload;
use crate::error::ProducerError;

/// Numeric precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "fp32",
            Precision::F64 => "fp64",
        }
    }
}

/// Shape of the model and how it runs.
#[derive(Debug, Clone, Copy)]
pub struct MlpShape {
    pub batch: usize,
    pub d_in: usize,
    pub hidden: usize,
    pub d_out: usize,
    pub threads: usize,
}

trait Gemm: Copy + Default + Send + Sync + PartialOrd {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// C (m×n) = A (m×k) · B (k×n), all row-major.
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

impl Gemm for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        // SAFETY: the slices hold m×k, k×n and m×n elements with the row-major strides given.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1) }
    }
}

impl Gemm for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
        // SAFETY: as for f32.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1) }
    }
}

#[derive(Clone)]
struct Model<T> {
    s: MlpShape,
    x: Vec<T>,
    w1: Vec<T>,
    w2: Vec<T>,
    h: Vec<T>,
    y: Vec<T>,
}

fn fill<T: Gemm>(n: usize, salt: usize) -> Vec<T> {
    (0..n).map(|i| T::from_f64((((i * 31 + salt * 17) % 97) as f64 - 48.0) / 97.0)).collect()
}

impl<T: Gemm> Model<T> {
    fn new(s: MlpShape) -> Self {
        Model {
            s,
            x: fill(s.batch * s.d_in, 1),
            w1: fill(s.d_in * s.hidden, 2),
            w2: fill(s.hidden * s.d_out, 3),
            h: vec![T::default(); s.batch * s.hidden],
            y: vec![T::default(); s.batch * s.d_out],
        }
    }

    /// Forward pass; rows of the batch are split across threads.
    fn forward(&mut self) -> f64 {
        let s = self.s;
        let threads = s.threads.clamp(1, s.batch.max(1));
        let rows = s.batch.div_ceil(threads);
        let (w1, w2) = (&self.w1, &self.w2);
        std::thread::scope(|scope| {
            let parts = self.x.chunks(rows * s.d_in).zip(self.h.chunks_mut(rows * s.hidden)).zip(self.y.chunks_mut(rows * s.d_out));
            for ((x, h), y) in parts {
                scope.spawn(move || {
                    let m = x.len() / s.d_in;
                    T::gemm(m, s.d_in, s.hidden, x, w1, h);
                    for v in h.iter_mut() {
                        if *v < T::default() {
                            *v = T::default();
                        }
                    }
                    T::gemm(m, s.hidden, s.d_out, h, w2, y);
                });
            }
        });
        self.y.iter().map(|v| v.to_f64()).sum()
    }
}

#[derive(Clone)]
enum Any {
    F32(Model<f32>),
    F64(Model<f64>),
}

/// The MLP workload.
#[derive(Clone)]
pub struct ComputeWorkload {
    model: Any,
    pub precision: Precision,
    pub shape: MlpShape,
    /// Sum of the last output, so the work cannot be optimised away.
    pub checksum: f64,
}

impl ComputeWorkload {
    pub fn new(shape: MlpShape, precision: Precision) -> Result<Self, ProducerError> {
        if shape.batch == 0 || shape.d_in == 0 || shape.hidden == 0 || shape.d_out == 0 || shape.threads == 0 {
            return Err(ProducerError::Usage("--batch, model sizes and --threads must be at least 1".into()));
        }
        let model = match precision {
            Precision::F32 => Any::F32(Model::new(shape)),
            Precision::F64 => Any::F64(Model::new(shape)),
        };
        Ok(ComputeWorkload { model, precision, shape, checksum: 0.0 })
    }
}

impl Workload for ComputeWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-compute"
    }

    fn items_per_iteration(&self) -> u64 {
        self.shape.batch as u64
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        self.checksum = std::hint::black_box(match &mut self.model {
            Any::F32(m) => m.forward(),
            Any::F64(m) => m.forward(),
        });
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_pass_is_the_real_product_in_both_precisions_and_any_thread_count() {
        let shape = MlpShape { batch: 5, d_in: 4, hidden: 3, d_out: 2, threads: 1 };
        let mut m = Model::<f64>::new(shape);
        let one = m.forward();
        // Naive reference: y = relu(x·W1)·W2.
        let mut expect = 0.0;
        for r in 0..5 {
            for o in 0..2 {
                let mut acc = 0.0;
                for j in 0..3 {
                    let h: f64 = (0..4).map(|i| m.x[r * 4 + i] * m.w1[i * 3 + j]).sum::<f64>().max(0.0);
                    acc += h * m.w2[j * 2 + o];
                }
                expect += acc;
            }
        }
        assert!((one - expect).abs() < 1e-12, "{one} vs {expect}");
        let mut threaded = Model::<f64>::new(MlpShape { threads: 3, ..shape });
        assert!((threaded.forward() - one).abs() < 1e-12);
        let mut single = Model::<f32>::new(shape);
        assert!((single.forward() - one).abs() < 1e-4);
    }
}

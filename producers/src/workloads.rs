//! Built-in workloads: a command run as a child process, and a CPU matrix multiply.

use std::process::Stdio;

use crate::bench::Workload;
use crate::error::ProducerError;

/// `trackiq bench cmd -- program args...`: one child process per iteration.
#[derive(Debug, Clone)]
pub struct CmdWorkload {
    pub program: String,
    pub args: Vec<String>,
}

impl Workload for CmdWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-cmd"
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        let status = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|source| ProducerError::Spawn { program: self.program.clone(), source })?;
        Ok((!status.success()).then(|| status.to_string()))
    }
}

/// Dense `n × n` f64 matrix multiply, C = A·B, naive triple loop: a real, deterministic CPU
/// workload whose cost grows as n³.
#[derive(Debug, Clone)]
pub struct MatmulWorkload {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    /// Sum of C after the last iteration, so the work cannot be optimised away.
    pub checksum: f64,
}

impl MatmulWorkload {
    pub fn new(n: usize) -> Self {
        let a = (0..n * n).map(|i| ((i * 7 + 3) % 11) as f64 / 11.0).collect();
        let b = (0..n * n).map(|i| ((i * 5 + 1) % 13) as f64 / 13.0).collect();
        MatmulWorkload { n, a, b, c: vec![0.0; n * n], checksum: 0.0 }
    }

    fn multiply(&mut self) {
        let n = self.n;
        for i in 0..n {
            for j in 0..n {
                let mut acc = 0.0;
                for k in 0..n {
                    acc += self.a[i * n + k] * self.b[k * n + j];
                }
                self.c[i * n + j] = acc;
            }
        }
        self.checksum = std::hint::black_box(self.c.iter().sum());
    }
}

impl Workload for MatmulWorkload {
    fn tool(&self) -> &'static str {
        "trackiq-bench-matmul"
    }

    async fn iterate(&mut self) -> Result<Option<String>, ProducerError> {
        self.multiply();
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_is_a_real_product() {
        let mut w = MatmulWorkload::new(3);
        w.multiply();
        // c[0][0] = sum_k a[0][k] * b[k][0]
        let expect: f64 = (0..3).map(|k| w.a[k] * w.b[k * 3]).sum();
        assert_eq!(w.c[0], expect);
        assert!(w.checksum > 0.0);
    }
}

//! Reproducible synthetic series for simulations and benchmarks (splitmix64 + Box-Muller).

/// A seeded source of standard normal values.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` points around 100 with a level shift of ±(3..8) % every `segment` points and 2 %
/// noise, rounded to 0.01 as a benchmark history would be.
pub fn noisy_steps(n: usize, segment: usize, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    let mut level = 100.0;
    (0..n)
        .map(|i| {
            if i > 0 && i % segment.max(1) == 0 {
                let shift = 0.03 + 0.05 * noise.uniform();
                level *= if noise.uniform() < 0.5 { 1.0 - shift } else { 1.0 + shift };
            }
            (level * (1.0 + 0.02 * noise.normal()) * 100.0).round() / 100.0
        })
        .collect()
}

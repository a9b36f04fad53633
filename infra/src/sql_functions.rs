//! SQL functions trackiq adds to DataFusion.
//!
//! `approx_quantile(value, q)`: a **deterministic** approximate quantile, with DuckDB's name
//! and argument order so the same SQL text runs on both. DataFusion's `approx_percentile_cont`
//! (t-digest) answers differently from run to run on the same data, because t-digest's merge
//! depends on the order in which partitions finish. This one is a DDSketch (Masson, Rim and Lee,
//! VLDB 2019; the mapping of `sketches-ddsketch`, which `processors/stats` uses): values fall in
//! logarithmic buckets `ceil(ln|x| / ln γ)` with γ = (1 + α) / (1 − α), each bucket holds an
//! integer count, and merging adds counts. Integer addition is commutative and associative, and
//! min/max are too, so any partitioning and any merge order give the same sketch, bit for bit,
//! and the same answer. The answer is within relative error α = 1 % of a value of rank
//! `q × (n − 1)` in the sorted input (clamped to the exact min and max). NaN and infinities are
//! skipped, as are NULLs; a group with no value gives NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};
use datafusion::physical_expr::expressions::Literal;
use datafusion::prelude::SessionContext;

/// Relative accuracy of [`QuantileSketch`].
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Registers trackiq's SQL functions in a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(approx_quantile());
}

/// The `approx_quantile(value DOUBLE, q DOUBLE literal in [0, 1])` aggregate.
pub fn approx_quantile() -> AggregateUDF {
    create_udaf(
        "approx_quantile",
        vec![DataType::Float64, DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|args: AccumulatorArgs| {
            let q = quantile_argument(&args)?;
            Ok(Box::new(QuantileAccumulator { q, sketch: QuantileSketch::default() }) as Box<dyn Accumulator>)
        }),
        Arc::new(vec![DataType::Binary]),
    )
}

fn quantile_argument(args: &AccumulatorArgs) -> Result<f64> {
    let bad = || DataFusionError::Plan("approx_quantile(value, q): q must be a constant between 0 and 1".into());
    let lit = args.exprs.get(1).and_then(|e| (e.as_ref() as &dyn std::any::Any).downcast_ref::<Literal>()).ok_or_else(bad)?;
    let q = match lit.value() {
        ScalarValue::Float64(Some(q)) => *q,
        ScalarValue::Float32(Some(q)) => f64::from(*q),
        other => other.cast_to(&DataType::Float64).ok().and_then(|v| if let ScalarValue::Float64(Some(q)) = v { Some(q) } else { None }).ok_or_else(bad)?,
    };
    if (0.0..=1.0).contains(&q) { Ok(q) } else { Err(bad()) }
}

#[derive(Debug)]
struct QuantileAccumulator {
    q: f64,
    sketch: QuantileSketch,
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = values[0].as_primitive::<Float64Type>();
        if v.null_count() == 0 {
            v.values().iter().for_each(|x| self.sketch.add(*x));
        } else {
            v.iter().flatten().for_each(|x| self.sketch.add(x));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.sketch.quantile(self.q)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sketch.heap_size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.sketch.to_bytes()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let bytes = states[0].as_any().downcast_ref::<BinaryArray>().ok_or_else(|| DataFusionError::Internal("approx_quantile state is not binary".into()))?;
        for b in bytes.iter().flatten() {
            let other = QuantileSketch::from_bytes(b).ok_or_else(|| DataFusionError::Internal("approx_quantile state is malformed".into()))?;
            self.sketch.merge(&other);
        }
        Ok(())
    }
}

/// Dense bucket counts from key `offset` on.
#[derive(Debug, Default, Clone, PartialEq)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    fn add(&mut self, key: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(0);
        } else if key < self.offset {
            let grow = (self.offset - key) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = key;
        } else if (key - self.offset) as usize >= self.counts.len() {
            self.counts.resize((key - self.offset) as usize + 1, 0);
        }
        self.counts[(key - self.offset) as usize] += n;
    }

    fn merge(&mut self, other: &Store) {
        for (i, &c) in other.counts.iter().enumerate() {
            if c > 0 {
                self.add(other.offset + i as i32, c);
            }
        }
    }
}

/// A DDSketch with exact, order-independent merges (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    positive: Store,
    negative: Store,
    zero: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self { positive: Store::default(), negative: Store::default(), zero: 0, count: 0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

/// Values of smaller magnitude count as zero.
const MIN_MAGNITUDE: f64 = 1e-300;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl QuantileSketch {
    /// Adds one value; NaN and infinities are skipped.
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        let m = x.abs();
        if m < MIN_MAGNITUDE {
            self.zero += 1;
        } else {
            let key = (m.ln() / gamma().ln()).ceil() as i32;
            if x > 0.0 { self.positive.add(key, 1) } else { self.negative.add(key, 1) }
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &QuantileSketch) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero += other.zero;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (rank `q × (n − 1)`), within [`RELATIVE_ACCURACY`]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        if q <= 0.0 {
            return Some(self.min);
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let g = gamma();
        let estimate = |key: i32| 2.0 * g.powi(key) / (g + 1.0);
        let mut seen = 0u64;
        let value = 'found: {
            for (i, &c) in self.negative.counts.iter().enumerate().rev() {
                seen += c;
                if seen > rank {
                    break 'found -estimate(self.negative.offset + i as i32);
                }
            }
            seen += self.zero;
            if seen > rank {
                break 'found 0.0;
            }
            for (i, &c) in self.positive.counts.iter().enumerate() {
                seen += c;
                if seen > rank {
                    break 'found estimate(self.positive.offset + i as i32);
                }
            }
            self.max
        };
        Some(value.clamp(self.min, self.max))
    }

    fn heap_size(&self) -> usize {
        (self.positive.counts.capacity() + self.negative.counts.capacity()) * 8
    }

    /// Little-endian: count, zero, min, max, then each store as offset, length, counts.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48 + self.heap_size());
        b.extend(self.count.to_le_bytes());
        b.extend(self.zero.to_le_bytes());
        b.extend(self.min.to_le_bytes());
        b.extend(self.max.to_le_bytes());
        for s in [&self.positive, &self.negative] {
            b.extend(s.offset.to_le_bytes());
            b.extend((s.counts.len() as u32).to_le_bytes());
            s.counts.iter().for_each(|c| b.extend(c.to_le_bytes()));
        }
        b
    }

    /// The inverse of [`QuantileSketch::to_bytes`]; `None` when malformed.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = b.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let count = u64_(take(8)?);
        let zero = u64_(take(8)?);
        let min = f64::from_bits(u64_(take(8)?));
        let max = f64::from_bits(u64_(take(8)?));
        let mut stores = [Store::default(), Store::default()];
        for s in &mut stores {
            s.offset = i32::from_le_bytes(take(4)?.try_into().ok()?);
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            s.counts = take(len.checked_mul(8)?)?.chunks_exact(8).map(u64_).collect();
        }
        let [positive, negative] = stores;
        Some(Self { positive, negative, zero, count, min, max })
    }
}

#[cfg(test)]
#[path = "sql_functions_tests.rs"]
mod tests;

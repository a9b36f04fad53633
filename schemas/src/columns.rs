//! The columnar wire form of a run's samples ([`SampleColumns`], `avro/SampleColumns.avsc`):
//! what producers write. Consumers keep seeing a [`SampleBatch`] (one [`Sample`] per
//! measurement), whichever form the record came in, so the conversion lives here and
//! nowhere else.
//!
//! Why columns: row by row, every sample repeats its metric name and unit (two strings to
//! encode, and to allocate when decoding) and a full 8-byte timestamp varint. As columns a
//! batch names each (metric, unit) once, and timestamps are deltas of a few bytes; a
//! 5,000-sample batch of one metric is about 11 bytes per sample instead of 35.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::SchemaError;
use crate::events::{Sample, SampleBatch};

/// Marks "none" in `ranks` and `steps` (real ranks and steps are never negative).
pub const NONE: i64 = -1;

/// A [`SampleBatch`] as columns; see the module docs and the schema's field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleColumns {
    pub run_id: String,
    pub seq: i64,
    pub metrics: Vec<String>,
    pub units: Vec<String>,
    pub metric_index: Vec<i32>,
    pub ts_delta_us: Vec<i64>,
    pub values: Vec<f64>,
    pub ranks: Vec<i32>,
    pub steps: Vec<i64>,
}

impl From<&SampleBatch> for SampleColumns {
    fn from(b: &SampleBatch) -> Self {
        let n = b.samples.len();
        let mut dictionary: HashMap<(&str, &str), i32> = HashMap::new();
        let (mut metrics, mut units) = (Vec::new(), Vec::new());
        let mut metric_index = Vec::with_capacity(n);
        let mut ts_delta_us = Vec::with_capacity(n);
        let mut previous = 0i64;
        for s in &b.samples {
            let next = dictionary.len() as i32;
            let i = *dictionary.entry((s.metric.as_str(), s.unit.as_str())).or_insert_with(|| {
                metrics.push(s.metric.clone());
                units.push(s.unit.clone());
                next
            });
            metric_index.push(i);
            ts_delta_us.push(s.ts_us.wrapping_sub(previous));
            previous = s.ts_us;
        }
        // A negative rank or step is invalid; it must not turn into "none" (-1) on the wire,
        // so it goes out as the most negative value, which every reader rejects by name.
        let ranks = if b.samples.iter().any(|s| s.rank.is_some()) {
            b.samples.iter().map(|s| s.rank.map_or(NONE as i32, |r| if r < 0 { i32::MIN } else { r })).collect()
        } else {
            Vec::new()
        };
        let steps = if b.samples.iter().any(|s| s.step.is_some()) {
            b.samples.iter().map(|s| s.step.map_or(NONE, |st| if st < 0 { i64::MIN } else { st })).collect()
        } else {
            Vec::new()
        };
        SampleColumns {
            run_id: b.run_id.clone(),
            seq: b.seq,
            metrics,
            units,
            metric_index,
            ts_delta_us,
            values: b.samples.iter().map(|s| s.value).collect(),
            ranks,
            steps,
        }
    }
}

fn invalid(field: &str, reason: String) -> SchemaError {
    SchemaError::Invalid { field: field.into(), reason }
}

/// An optional per-sample column: empty, or one item per sample of which -1 means none.
fn optional<'a, T: Copy + Into<i64>>(name: &str, column: &'a [T], n: usize) -> Result<Option<&'a [T]>, SchemaError> {
    match column.len() {
        0 => Ok(None),
        len if len == n => {
            if let Some((i, v)) = column.iter().enumerate().find(|(_, v)| (**v).into() < NONE) {
                return Err(invalid(&format!("{name}[{i}]"), format!("{} is negative (ranks and steps are never negative; -1 marks none)", (*v).into())));
            }
            Ok(Some(column))
        }
        len => Err(invalid(name, format!("{len} items for {n} samples (must be empty or one per sample)"))),
    }
}

impl TryFrom<SampleColumns> for SampleBatch {
    type Error = SchemaError;

    /// The samples of the batch, after checking that the columns agree with each other.
    fn try_from(c: SampleColumns) -> Result<Self, SchemaError> {
        let n = c.values.len();
        if c.units.len() != c.metrics.len() {
            return Err(invalid("units", format!("{} units for {} metrics (one per dictionary entry)", c.units.len(), c.metrics.len())));
        }
        for (name, len) in [("metric_index", c.metric_index.len()), ("ts_delta_us", c.ts_delta_us.len())] {
            if len != n {
                return Err(invalid(name, format!("{len} items for {n} values (one per sample)")));
            }
        }
        let ranks = optional("ranks", &c.ranks, n)?;
        let steps = optional("steps", &c.steps, n)?;
        let mut samples = Vec::with_capacity(n);
        let mut ts_us = 0i64;
        for i in 0..n {
            let m = c.metric_index[i];
            let entry = usize::try_from(m).ok().filter(|&m| m < c.metrics.len()).ok_or_else(|| {
                invalid(&format!("metric_index[{i}]"), format!("{m} is not an entry of the {}-entry dictionary", c.metrics.len()))
            })?;
            ts_us = ts_us.wrapping_add(c.ts_delta_us[i]);
            samples.push(Sample {
                ts_us,
                metric: c.metrics[entry].clone(),
                value: c.values[i],
                unit: c.units[entry].clone(),
                rank: ranks.map(|r| r[i]).filter(|&r| i64::from(r) != NONE),
                step: steps.map(|s| s[i]).filter(|&s| s != NONE),
            });
        }
        Ok(SampleBatch { run_id: c.run_id, seq: c.seq, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts_us: i64, metric: &str, unit: &str, rank: Option<i32>, step: Option<i64>) -> Sample {
        Sample { ts_us, metric: metric.into(), value: ts_us as f64 / 3.0, unit: unit.into(), rank, step }
    }

    #[test]
    fn a_batch_survives_the_round_trip_through_columns() {
        let samples = vec![
            sample(1_700_000_000_000_000, "latency_ms", "ms", None, Some(0)),
            sample(1_700_000_000_000_150, "gpu_power_w", "W", Some(3), None),
            sample(1_700_000_000_000_100, "latency_ms", "ms", Some(0), Some(1)),
            sample(1_700_000_000_000_400, "latency_ms", "s", None, Some(2)),
        ];
        let batch = SampleBatch { run_id: "r".into(), seq: 7, samples };
        let c = SampleColumns::from(&batch);
        assert_eq!(c.metrics, ["latency_ms", "gpu_power_w", "latency_ms"], "one entry per (metric, unit)");
        assert_eq!(c.metric_index, [0, 1, 0, 2]);
        assert_eq!(c.ts_delta_us[1..], [150, -50, 300], "deltas, negative when samples are out of order");
        assert_eq!(c.ranks, [-1, 3, 0, -1]);
        assert_eq!(SampleBatch::try_from(c).unwrap(), batch);
    }

    #[test]
    fn optional_columns_are_empty_when_no_sample_has_them() {
        let batch = SampleBatch { run_id: "r".into(), seq: 0, samples: vec![sample(5, "m", "ms", None, None); 3] };
        let c = SampleColumns::from(&batch);
        assert!(c.ranks.is_empty() && c.steps.is_empty());
        assert_eq!(SampleBatch::try_from(c).unwrap(), batch);
        let empty = SampleBatch { run_id: "r".into(), seq: 1, samples: vec![] };
        assert_eq!(SampleBatch::try_from(SampleColumns::from(&empty)).unwrap(), empty);
    }

    #[test]
    fn columns_that_disagree_are_refused_naming_the_column() {
        let batch = SampleBatch { run_id: "r".into(), seq: 0, samples: vec![sample(5, "m", "ms", Some(1), Some(2)); 3] };
        let good = SampleColumns::from(&batch);
        let err = |f: &dyn Fn(&mut SampleColumns)| {
            let mut c = good.clone();
            f(&mut c);
            SampleBatch::try_from(c).unwrap_err().to_string()
        };
        assert!(err(&|c| c.units.push("s".into())).contains("units"), "{}", err(&|c| c.units.push("s".into())));
        assert!(err(&|c| { c.metric_index.pop(); }).contains("metric_index: 2 items for 3 values"));
        assert!(err(&|c| c.metric_index[2] = 4).contains("metric_index[2]"));
        assert!(err(&|c| c.metric_index[0] = -1).contains("metric_index[0]"));
        assert!(err(&|c| { c.ranks.pop(); }).contains("ranks: 2 items for 3 samples"));
        assert!(err(&|c| c.steps[1] = -7).contains("steps[1]"));
        assert!(err(&|c| { c.ts_delta_us.push(1); }).contains("ts_delta_us"));
    }

    #[test]
    fn a_negative_rank_or_step_is_refused_by_readers_rather_than_read_as_none() {
        let batch = SampleBatch { run_id: "r".into(), seq: 0, samples: vec![sample(5, "m", "ms", Some(-1), Some(0)), sample(6, "m", "ms", Some(0), Some(-1))] };
        let e = SampleBatch::try_from(SampleColumns::from(&batch)).unwrap_err().to_string();
        assert!(e.contains("ranks[0]"), "{e}");
        let batch = SampleBatch { run_id: "r".into(), seq: 0, samples: vec![sample(5, "m", "ms", None, Some(-3))] };
        let e = SampleBatch::try_from(SampleColumns::from(&batch)).unwrap_err().to_string();
        assert!(e.contains("steps[0]"), "{e}");
    }
}

//! The per-group states of [`crate::string_groups::StringGroupPartial`]: groups found by
//! runs of equal keys, each measure's running state, and the partial-aggregate columns
//! DataFusion's final stage merges (the same types and layout as its own accumulators').

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StringViewArray, UInt64Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, SchemaRef};
use datafusion::common::{DataFusionError, Result};

/// What one aggregate adds up per group, with the input column it reads (`None`: every row
/// counts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Measure {
    /// `count(*)` / `count(1)` (input `None`) or `count(col)`: one Int64 state.
    Count(Option<usize>),
    /// `sum(col)` of a double: one Float64 state, NULL for a group without values.
    Sum(usize),
    /// `avg(col)` of a double: states count (UInt64) then sum (Float64).
    Avg(usize),
    /// `median(col)` of a double: one state, the list of the group's values.
    Median(usize),
    /// `min(col)` of an i64-backed column (Int64, Timestamp): the input's type, NULL if none.
    Min(usize),
    /// `max(col)`, as `Min`.
    Max(usize),
}

/// A run of consecutive selected rows with one key: (group, first row, rows).
type Run = (usize, usize, usize);

/// Groups seen so far and each measure's running state.
pub(crate) struct Groups<'a> {
    measures: &'a [Measure],
    index: HashMap<Vec<u8>, usize>,
    keys: Vec<Option<Vec<u8>>>,
    null_group: Option<usize>,
    /// Per measure and group: rows (or non-null values) seen.
    counts: Vec<Vec<i64>>,
    /// Per measure and group: sums (`Sum`, `Avg`).
    sums: Vec<Vec<f64>>,
    /// Per measure and group: the extreme so far (`Min`, `Max`; meaningful once counted).
    extremes: Vec<Vec<i64>>,
    /// Per measure and group: every value (`Median`).
    values: Vec<Vec<Vec<f64>>>,
}

impl<'a> Groups<'a> {
    pub(crate) fn new(measures: &'a [Measure]) -> Self {
        let n = measures.len();
        Groups { measures, index: HashMap::new(), keys: Vec::new(), null_group: None, counts: vec![Vec::new(); n], sums: vec![Vec::new(); n], extremes: vec![Vec::new(); n], values: vec![Vec::new(); n] }
    }

    fn group_of(&mut self, key: Option<&[u8]>) -> usize {
        let found = match key {
            None => self.null_group,
            Some(k) => self.index.get(k).copied(),
        };
        if let Some(g) = found {
            return g;
        }
        let g = self.keys.len();
        self.keys.push(key.map(<[u8]>::to_vec));
        match key {
            None => self.null_group = Some(g),
            Some(k) => drop(self.index.insert(k.to_vec(), g)),
        }
        for (m, measure) in self.measures.iter().enumerate() {
            self.counts[m].push(0);
            match measure {
                Measure::Sum(_) | Measure::Avg(_) => self.sums[m].push(0.0),
                Measure::Min(_) | Measure::Max(_) => self.extremes[m].push(0),
                Measure::Median(_) => self.values[m].push(Vec::new()),
                Measure::Count(_) => {}
            }
        }
        g
    }

    /// The runs of equal keys among the selected rows of `column`: a lookup only where the key
    /// differs from the row before (equal string views are equal strings); an unselected row
    /// (false or NULL in `selected`) ends a run.
    fn runs(&mut self, column: &ArrayRef, selected: Option<&BooleanArray>) -> Result<Vec<Run>> {
        let ranges: Vec<(usize, usize)> = match selected {
            None => vec![(0, column.len())],
            Some(s) => match s.nulls() {
                Some(nulls) => (s.values() & nulls.inner()).set_slices().collect(),
                None => s.values().set_slices().collect(),
            },
        };
        let mut runs: Vec<Run> = Vec::new();
        match column.data_type() {
            DataType::Utf8View => {
                let a = column.as_string_view();
                let views = a.views();
                for &(start, end) in &ranges {
                    for i in start..end {
                        if i == start || views[i] != views[i - 1] || a.is_valid(i) != a.is_valid(i - 1) {
                            runs.push((self.group_of(a.is_valid(i).then(|| a.value(i).as_bytes())), i, 0));
                        }
                        runs.last_mut().expect("a run was started").2 += 1;
                    }
                }
            }
            DataType::Utf8 => {
                let a = column.as_string::<i32>();
                let key = |i: usize| a.is_valid(i).then(|| a.value(i));
                for &(start, end) in &ranges {
                    for i in start..end {
                        if i == start || key(i) != key(i - 1) {
                            runs.push((self.group_of(key(i).map(str::as_bytes)), i, 0));
                        }
                        runs.last_mut().expect("a run was started").2 += 1;
                    }
                }
            }
            other => return Err(DataFusionError::Internal(format!("StringGroupPartial: group column of type {other}"))),
        }
        Ok(runs)
    }

    /// Adds the rows of `batch` that `selected` keeps (all without it), grouped by column
    /// `group`.
    pub(crate) fn add(&mut self, batch: &RecordBatch, group: usize, selected: Option<&BooleanArray>) -> Result<()> {
        let runs = self.runs(batch.column(group), selected)?;
        for (m, measure) in self.measures.iter().enumerate() {
            let counts = &mut self.counts[m];
            match *measure {
                Measure::Count(None) => runs.iter().for_each(|&(g, _, len)| counts[g] += len as i64),
                Measure::Count(Some(c)) => {
                    let col = batch.column(c);
                    for &(g, start, len) in &runs {
                        counts[g] += (len - col.slice(start, len).null_count()) as i64;
                    }
                }
                Measure::Sum(c) | Measure::Avg(c) => {
                    let sums = &mut self.sums[m];
                    for_each_value::<Float64Type>(batch.column(c), &runs, |g, part| {
                        counts[g] += part.len() as i64;
                        sums[g] += part.iter().sum::<f64>();
                    });
                }
                Measure::Median(c) => {
                    let values = &mut self.values[m];
                    for_each_value::<Float64Type>(batch.column(c), &runs, |g, part| {
                        counts[g] += part.len() as i64;
                        values[g].extend_from_slice(part);
                    });
                }
                Measure::Min(c) | Measure::Max(c) => {
                    let extremes = &mut self.extremes[m];
                    let column = datafusion::arrow::compute::cast(batch.column(c), &DataType::Int64)?;
                    let is_min = matches!(measure, Measure::Min(_));
                    for_each_value::<Int64Type>(&column, &runs, |g, part| {
                        let Some(best) = (if is_min { part.iter().min() } else { part.iter().max() }).copied() else { return };
                        extremes[g] = match (counts[g], is_min) {
                            (0, _) => best,
                            (_, true) => extremes[g].min(best),
                            (_, false) => extremes[g].max(best),
                        };
                        counts[g] += part.len() as i64;
                    });
                }
            }
        }
        Ok(())
    }

    /// The partial aggregate's output: the group column, then each measure's states.
    pub(crate) fn finish(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let keys = self.keys.iter().map(|k| k.as_deref().map(|b| std::str::from_utf8(b).expect("keys come from string arrays")));
        let mut columns: Vec<ArrayRef> = vec![match schema.field(0).data_type() {
            DataType::Utf8View => Arc::new(keys.collect::<StringViewArray>()),
            _ => Arc::new(keys.collect::<StringArray>()),
        }];
        for (m, measure) in self.measures.iter().enumerate() {
            let counts = &self.counts[m];
            let seen = |i: usize| counts[i] > 0;
            match measure {
                Measure::Count(_) => columns.push(Arc::new(Int64Array::from(counts.clone()))),
                Measure::Sum(_) | Measure::Avg(_) => {
                    if matches!(measure, Measure::Avg(_)) {
                        columns.push(Arc::new(counts.iter().map(|&c| c as u64).collect::<UInt64Array>()));
                    }
                    columns.push(Arc::new(self.sums[m].iter().enumerate().map(|(i, &s)| seen(i).then_some(s)).collect::<Float64Array>()));
                }
                Measure::Median(_) => {
                    let lists = &self.values[m];
                    let offsets = OffsetBuffer::from_lengths(lists.iter().map(Vec::len));
                    let values = Float64Array::from(lists.concat());
                    columns.push(Arc::new(ListArray::try_new(Arc::new(Field::new_list_field(DataType::Float64, true)), offsets, Arc::new(values), None)?));
                }
                Measure::Min(_) | Measure::Max(_) => {
                    let ints: Int64Array = self.extremes[m].iter().enumerate().map(|(i, &v)| seen(i).then_some(v)).collect();
                    let field = schema.field(columns.len());
                    columns.push(datafusion::arrow::compute::cast(&ints, field.data_type())?);
                }
            }
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Calls `f(group, values)` for each run's non-null values of `column`, in runs of
/// consecutive non-null values (one call per run where the run has no NULL).
fn for_each_value<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(column: &ArrayRef, runs: &[Run], mut f: impl FnMut(usize, &[T::Native])) {
    let values = column.as_primitive::<T>();
    let raw = values.values();
    for &(g, start, len) in runs {
        match values.nulls().filter(|nulls| nulls.slice(start, len).null_count() > 0) {
            None => f(g, &raw[start..start + len]),
            Some(nulls) => {
                for i in start..start + len {
                    if nulls.is_valid(i) {
                        f(g, std::slice::from_ref(&raw[i]));
                    }
                }
            }
        }
    }
}

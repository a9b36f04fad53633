//! First-stage aggregation grouped by one string column (`GROUP BY metric`, `GROUP BY
//! run_id`) with `count`, `sum` and `avg` of doubles — the shape of most history queries.
//! DataFusion hashes and probes every row's string; the history's rows come in long runs of
//! one key (objects sorted by run and metric, archiver batches of one run), so
//! [`StringGroupPartial`] compares each row's 16-byte string view with the previous row's and
//! looks a key up only when it changes. Its output is exactly the replaced partial
//! aggregate's (group value, then each aggregate's state), so DataFusion's final stage merges
//! it as before. [`FastStringGroups`] is the physical optimizer rule that puts it in place;
//! any other aggregate is left as planned.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, StringViewArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties};
use futures::StreamExt;

/// What one aggregate adds up per group; `None` input: every row counts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    /// `count(*)` / `count(1)` (input `None`) or `count(col)`: one Int64 state.
    Count(Option<usize>),
    /// `sum(col)` of a double: one Float64 state, NULL for a group without values.
    Sum(usize),
    /// `avg(col)` of a double: states count (UInt64) then sum (Float64).
    Avg(usize),
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FastStringGroups;

impl PhysicalOptimizerRule for FastStringGroups {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match replacement(&node) {
                Some(fast) => Transformed::yes(fast),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "fast_string_groups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn column_of(expr: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    expr.downcast_ref::<Column>().map(Column::index)
}

fn replacement(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    let agg = node.downcast_ref::<AggregateExec>()?;
    if *agg.mode() != AggregateMode::Partial || !agg.group_expr().is_single() || agg.group_expr().expr().len() != 1 || agg.filter_expr().iter().any(Option::is_some) {
        return None;
    }
    let input = agg.input().clone();
    let input_schema = input.schema();
    let group = column_of(&agg.group_expr().expr()[0].0)?;
    if !matches!(input_schema.field(group).data_type(), DataType::Utf8View | DataType::Utf8) {
        return None;
    }
    let schema = agg.schema();
    // The output: the group column, then each aggregate's states in order, with the types
    // this operator writes.
    let mut expected = vec![input_schema.field(group).data_type().clone()];
    let mut measures = Vec::new();
    for a in agg.aggr_expr() {
        if a.is_distinct() || !a.order_bys().is_empty() {
            return None;
        }
        let args = a.expressions();
        let double = |i: usize| input_schema.field(i).data_type() == &DataType::Float64;
        let measure = match (a.fun().name(), args.as_slice()) {
            ("count", [e]) if e.downcast_ref::<Literal>().is_some_and(|l| !l.value().is_null()) => Measure::Count(None),
            ("count", [e]) => Measure::Count(Some(column_of(e)?)),
            ("sum", [e]) if double(column_of(e)?) => Measure::Sum(column_of(e)?),
            ("avg", [e]) if double(column_of(e)?) => Measure::Avg(column_of(e)?),
            _ => return None,
        };
        match measure {
            Measure::Count(_) => expected.push(DataType::Int64),
            Measure::Sum(_) => expected.push(DataType::Float64),
            Measure::Avg(_) => expected.extend([DataType::UInt64, DataType::Float64]),
        }
        measures.push(measure);
    }
    let got: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    if got != expected.iter().collect::<Vec<_>>() {
        return None;
    }
    Some(Arc::new(StringGroupPartial::new(input, group, measures, schema)))
}

/// See the module documentation.
#[derive(Debug)]
pub struct StringGroupPartial {
    input: Arc<dyn ExecutionPlan>,
    group: usize,
    measures: Vec<Measure>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl StringGroupPartial {
    fn new(input: Arc<dyn ExecutionPlan>, group: usize, measures: Vec<Measure>, schema: SchemaRef) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(EquivalenceProperties::new(schema.clone()), Partitioning::UnknownPartitioning(partitions), EmissionType::Final, Boundedness::Bounded);
        StringGroupPartial { input, group, measures, schema, properties: Arc::new(properties) }
    }
}

impl DisplayAs for StringGroupPartial {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "StringGroupPartial: gby=[{}], aggr={:?}", self.input.schema().field(self.group).name(), self.measures)
    }
}

impl ExecutionPlan for StringGroupPartial {
    fn name(&self) -> &'static str {
        "StringGroupPartial"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal("StringGroupPartial takes one input".into()));
        }
        Ok(Arc::new(StringGroupPartial::new(children.swap_remove(0), self.group, self.measures.clone(), self.schema.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let (group, measures, schema) = (self.group, self.measures.clone(), self.schema.clone());
        let out = futures::stream::once(async move {
            let mut groups = Groups::new(&measures);
            while let Some(batch) = input.next().await {
                groups.add(&batch?, group)?;
            }
            groups.finish(&schema)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), out)))
    }
}

/// Groups seen so far and each measure's running state.
struct Groups<'a> {
    measures: &'a [Measure],
    index: HashMap<Vec<u8>, usize>,
    keys: Vec<Option<Vec<u8>>>,
    null_group: Option<usize>,
    /// Per measure: rows (or values) counted, and sums.
    counts: Vec<Vec<i64>>,
    sums: Vec<Vec<f64>>,
}

impl<'a> Groups<'a> {
    fn new(measures: &'a [Measure]) -> Self {
        Groups { measures, index: HashMap::new(), keys: Vec::new(), null_group: None, counts: vec![Vec::new(); measures.len()], sums: vec![Vec::new(); measures.len()] }
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
        for m in 0..self.measures.len() {
            self.counts[m].push(0);
            self.sums[m].push(0.0);
        }
        g
    }

    /// The runs of equal keys in `column` as (group, first row, rows): a lookup only where
    /// the key differs from the row before (equal string views are equal strings).
    fn runs(&mut self, column: &ArrayRef) -> Result<Vec<(usize, usize, usize)>> {
        let n = column.len();
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        let extend_or_start = |runs: &mut Vec<(usize, usize, usize)>, same: bool, i: usize, group: &mut dyn FnMut() -> usize| {
            match runs.last_mut() {
                Some(run) if same => run.2 += 1,
                _ => runs.push((group(), i, 1)),
            }
        };
        match column.data_type() {
            DataType::Utf8View => {
                let a = column.as_string_view();
                let views = a.views();
                for i in 0..n {
                    let same = i > 0 && views[i] == views[i - 1] && a.is_valid(i) == a.is_valid(i - 1);
                    extend_or_start(&mut runs, same, i, &mut || self.group_of(a.is_valid(i).then(|| a.value(i).as_bytes())));
                }
            }
            DataType::Utf8 => {
                let a = column.as_string::<i32>();
                let key = |i: usize| a.is_valid(i).then(|| a.value(i));
                for i in 0..n {
                    let same = i > 0 && key(i) == key(i - 1);
                    extend_or_start(&mut runs, same, i, &mut || self.group_of(key(i).map(str::as_bytes)));
                }
            }
            other => return Err(DataFusionError::Internal(format!("StringGroupPartial: group column of type {other}"))),
        }
        Ok(runs)
    }

    fn add(&mut self, batch: &RecordBatch, group: usize) -> Result<()> {
        let runs = self.runs(batch.column(group))?;
        for (m, measure) in self.measures.iter().enumerate() {
            let (counts, sums) = (&mut self.counts[m], &mut self.sums[m]);
            match *measure {
                Measure::Count(None) => runs.iter().for_each(|&(g, _, len)| counts[g] += len as i64),
                Measure::Count(Some(c)) => {
                    let col = batch.column(c);
                    for &(g, start, len) in &runs {
                        counts[g] += (len - col.slice(start, len).null_count()) as i64;
                    }
                }
                Measure::Sum(c) | Measure::Avg(c) => {
                    let values = batch.column(c).as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                    let raw = values.values();
                    for &(g, start, len) in &runs {
                        let part = &raw[start..start + len];
                        match values.nulls().filter(|nulls| nulls.slice(start, len).null_count() > 0) {
                            None => {
                                counts[g] += len as i64;
                                sums[g] += part.iter().sum::<f64>();
                            }
                            Some(nulls) => {
                                for (i, v) in part.iter().enumerate() {
                                    if nulls.is_valid(start + i) {
                                        counts[g] += 1;
                                        sums[g] += v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let keys = self.keys.iter().map(|k| k.as_deref().map(|b| std::str::from_utf8(b).expect("keys come from string arrays")));
        let mut columns: Vec<ArrayRef> = vec![match schema.field(0).data_type() {
            DataType::Utf8View => Arc::new(keys.collect::<StringViewArray>()),
            _ => Arc::new(keys.collect::<StringArray>()),
        }];
        for (m, measure) in self.measures.iter().enumerate() {
            let (counts, sums) = (&self.counts[m], &self.sums[m]);
            let sums = || Arc::new(counts.iter().zip(sums).map(|(&c, &s)| (c > 0).then_some(s)).collect::<Float64Array>()) as ArrayRef;
            match measure {
                Measure::Count(_) => columns.push(Arc::new(Int64Array::from(counts.clone()))),
                Measure::Sum(_) => columns.push(sums()),
                Measure::Avg(_) => {
                    columns.push(Arc::new(counts.iter().map(|&c| c as u64).collect::<UInt64Array>()));
                    columns.push(sums());
                }
            }
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

#[cfg(test)]
#[path = "string_groups_tests.rs"]
mod tests;

//! First-stage aggregation grouped by one string column (`GROUP BY metric`, `GROUP BY
//! run_id`) with `count`, `sum`, `avg` and `median` of doubles and `min`/`max` of times and
//! integers — the shape of most history queries.
//! DataFusion hashes and probes every row's string; the history's rows come in long runs of
//! one key (objects sorted by run and metric, archiver batches of one run), so
//! [`StringGroupPartial`] compares each row's 16-byte string view with the previous row's and
//! looks a key up only when it changes. Its output is exactly the replaced partial
//! aggregate's (group value, then each aggregate's state), so DataFusion's final stage merges
//! it as before. A filter right below the aggregate (`WHERE metric = 'latency_ms'`, which keeps
//! most rows) is taken in as a row mask instead of copying every kept row into new batches.
//! [`FastStringGroups`] is the physical optimizer rule that puts it in place; any other
//! aggregate is left as planned. The per-group states live in `string_group_states`.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties};
use futures::StreamExt;

use crate::string_group_states::{Groups, Measure};

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
    // A filter below is read through its projection: column `i` of its output is column
    // `projection[i]` of its input.
    let (input, predicate, projection) = match agg.input().downcast_ref::<FilterExec>() {
        Some(filter) if filter.fetch().is_none() => (filter.input().clone(), Some(filter.predicate().clone()), filter.projection().clone()),
        _ => (agg.input().clone(), None, None),
    };
    let input_schema = input.schema();
    let column_of = |expr: &Arc<dyn PhysicalExpr>| column_of(expr).map(|i| projection.as_ref().map_or(i, |p| p[i]));
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
        // Times and integers held as i64 (NaN-free: a double's min/max stays planned).
        let int64 = |i: usize| matches!(input_schema.field(i).data_type(), DataType::Int64 | DataType::Timestamp(_, _));
        let measure = match (a.fun().name(), args.as_slice()) {
            ("count", [e]) if e.downcast_ref::<Literal>().is_some_and(|l| !l.value().is_null()) => Measure::Count(None),
            ("count", [e]) => Measure::Count(Some(column_of(e)?)),
            ("sum", [e]) if double(column_of(e)?) => Measure::Sum(column_of(e)?),
            ("avg", [e]) if double(column_of(e)?) => Measure::Avg(column_of(e)?),
            ("median", [e]) if double(column_of(e)?) => Measure::Median(column_of(e)?),
            ("min", [e]) if int64(column_of(e)?) => Measure::Min(column_of(e)?),
            ("max", [e]) if int64(column_of(e)?) => Measure::Max(column_of(e)?),
            _ => return None,
        };
        match measure {
            Measure::Count(_) => expected.push(DataType::Int64),
            Measure::Sum(_) => expected.push(DataType::Float64),
            Measure::Avg(_) => expected.extend([DataType::UInt64, DataType::Float64]),
            Measure::Median(_) => expected.push(DataType::new_list(DataType::Float64, true)),
            Measure::Min(c) | Measure::Max(c) => expected.push(input_schema.field(c).data_type().clone()),
        }
        measures.push(measure);
    }
    let got: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    if got != expected.iter().collect::<Vec<_>>() {
        return None;
    }
    Some(Arc::new(StringGroupPartial::new(input, predicate, group, measures, schema)))
}

/// See the module documentation.
#[derive(Debug)]
pub struct StringGroupPartial {
    input: Arc<dyn ExecutionPlan>,
    /// The rows to aggregate, evaluated on `input` (a filter taken in).
    predicate: Option<Arc<dyn PhysicalExpr>>,
    group: usize,
    measures: Vec<Measure>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl StringGroupPartial {
    fn new(input: Arc<dyn ExecutionPlan>, predicate: Option<Arc<dyn PhysicalExpr>>, group: usize, measures: Vec<Measure>, schema: SchemaRef) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(EquivalenceProperties::new(schema.clone()), Partitioning::UnknownPartitioning(partitions), EmissionType::Final, Boundedness::Bounded);
        StringGroupPartial { input, predicate, group, measures, schema, properties: Arc::new(properties) }
    }
}

impl DisplayAs for StringGroupPartial {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "StringGroupPartial: gby=[{}], aggr={:?}", self.input.schema().field(self.group).name(), self.measures)?;
        match &self.predicate {
            Some(p) => write!(f, ", rows where {p}"),
            None => Ok(()),
        }
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
        Ok(Arc::new(StringGroupPartial::new(children.swap_remove(0), self.predicate.clone(), self.group, self.measures.clone(), self.schema.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let (group, measures, schema, predicate) = (self.group, self.measures.clone(), self.schema.clone(), self.predicate.clone());
        let out = futures::stream::once(async move {
            let mut groups = Groups::new(&measures);
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let selected = match &predicate {
                    None => None,
                    Some(p) => Some(p.evaluate(&batch)?.into_array(batch.num_rows())?.as_boolean().clone()),
                };
                groups.add(&batch, group, selected.as_ref())?;
            }
            groups.finish(&schema)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), out)))
    }
}

#[cfg(test)]
#[path = "string_groups_tests.rs"]
mod tests;

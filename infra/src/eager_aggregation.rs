//! Eager aggregation (Yan & Larson, "Eager Aggregation and Lazy Aggregation", VLDB 1995):
//! `samples JOIN runs … GROUP BY r.workload` aggregates the samples by run *before* the join,
//! so the join meets one row per run instead of one per sample.
//!
//! DataFusion plans such a query as a partial aggregate over the join. [`EagerAggregation`]
//! moves that partial aggregate below the join, onto the probe side when its aggregates read
//! only that side, grouped by the side's join keys (and its own group columns), and puts a projection above the join
//! that lays out the columns the final stage expects: the group values, then each aggregate's
//! state. The final stage merges states, so it is left as planned. Exact for every aggregate
//! with a state (the approach ClickHouse's `AggregationPushdown` also takes): an inner join
//! with no residual filter pairs a run's pre-aggregated row with the same partner rows that
//! each of its sample rows would have met, and merging `m` copies of a state is aggregating
//! its rows `m` times, as the join would have made it do.
//!
//! It runs before DataFusion's final filter push-down, so the join's dynamic filter is made
//! for the plan as rewritten; the new partial aggregate (grouped by `run_id`) is then taken
//! by [`crate::string_groups::FastStringGroups`] like any other.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{JoinType, NullEquality, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct EagerAggregation;

impl PhysicalOptimizerRule for EagerAggregation {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match rewrite(&node)? {
                Some(eager) => Transformed::yes(eager),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "eager_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Where a column of the aggregate's input comes from: (the join's build (left) side?, column
/// index in that side's output).
type Origin = (bool, usize);

/// The join below `agg` (through a projection of plain columns, if any) and, for each column
/// of the aggregate's input, its origin.
fn join_below(agg: &AggregateExec) -> Option<(&HashJoinExec, Vec<Origin>)> {
    let (join, through) = match agg.input().downcast_ref::<ProjectionExec>() {
        Some(p) => (p.input().downcast_ref::<HashJoinExec>()?, Some(p.expr().iter().map(|e| column_index(&e.expr)).collect::<Option<Vec<_>>>()?)),
        None => (agg.input().downcast_ref::<HashJoinExec>()?, None),
    };
    let plain = *join.join_type() == JoinType::Inner && join.filter().is_none() && join.null_equality() == NullEquality::NullEqualsNothing && !join.null_aware && join.fetch().is_none();
    if !plain {
        return None;
    }
    let left_width = join.left().schema().fields().len();
    let joined: Vec<usize> = match &join.projection {
        Some(p) => p.to_vec(),
        None => (0..left_width + join.right().schema().fields().len()).collect(),
    };
    let joined = match through {
        Some(cols) => cols.iter().map(|c| joined.get(*c).copied()).collect::<Option<Vec<_>>>()?,
        None => joined,
    };
    Some((join, joined.into_iter().map(|i| if i < left_width { (true, i) } else { (false, i - left_width) }).collect()))
}

fn column_index(expr: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    expr.downcast_ref::<Column>().map(Column::index)
}

/// The columns `expr` reads (none for a literal: `count(*)`).
fn columns_of(expr: &Arc<dyn PhysicalExpr>) -> Vec<usize> {
    datafusion::physical_expr::utils::collect_columns(expr).into_iter().map(|c| c.index()).collect()
}

fn rewrite(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(agg) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
    if !matches!(agg.mode(), AggregateMode::Partial | AggregateMode::Single)
        || !agg.group_expr().is_single()
        || agg.limit_options().is_some()
        || agg.filter_expr().iter().any(Option::is_some)
        || agg.aggr_expr().iter().any(|a| a.is_distinct() || !a.order_bys().is_empty())
    {
        return Ok(None);
    }
    let Some((join, origins)) = join_below(agg) else { return Ok(None) };
    // Group columns must be plain columns; aggregates must all read one side (the pushed one).
    let Some(groups) = agg.group_expr().expr().iter().map(|(e, name)| Some((origins[column_index(e)?], name.clone()))).collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    // Every aggregate reads the probe side only (the larger one, as the join placed it; the
    // build side is the one it hashes).
    let reads_probe_only = agg.aggr_expr().iter().flat_map(|a| a.expressions()).flat_map(|e| columns_of(&e)).all(|c| !origins[c].0);
    let Some(keys) = join.on().iter().map(|(_, probe)| column_index(probe)).collect::<Option<Vec<_>>>() else { return Ok(None) };
    if !reads_probe_only {
        return Ok(None);
    }

    // The pushed aggregate: grouped by the probe side's join keys, then its own group columns.
    let probe = join.right();
    let probe_schema = probe.schema();
    let mut pushed_groups: Vec<usize> = Vec::new();
    for c in keys.iter().copied().chain(groups.iter().filter(|((left, _), _)| !left).map(|((_, c), _)| *c)) {
        if !pushed_groups.contains(&c) {
            pushed_groups.push(c);
        }
    }
    let probe_column = |i: usize| Arc::new(Column::new(probe_schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>;
    let group_by = PhysicalGroupBy::new_single(pushed_groups.iter().map(|c| (probe_column(*c), probe_schema.field(*c).name().clone())).collect());
    let rebind = |e: Arc<dyn PhysicalExpr>| -> Result<Arc<dyn PhysicalExpr>> {
        e.transform(|x| Ok(match x.downcast_ref::<Column>() {
            Some(c) => Transformed::yes(probe_column(origins[c.index()].1)),
            None => Transformed::no(x),
        }))
        .data()
    };
    let mut aggr_expr = Vec::new();
    for a in agg.aggr_expr() {
        let args = a.expressions().into_iter().map(rebind).collect::<Result<Vec<_>>>()?;
        let Some(moved) = a.with_new_expressions(args, vec![]) else { return Ok(None) };
        aggr_expr.push(Arc::new(moved));
    }
    let filters = vec![None; aggr_expr.len()];
    let pushed = Arc::new(AggregateExec::try_new(AggregateMode::Partial, group_by, aggr_expr, filters, probe.clone(), probe_schema.clone())?);

    // The join, meeting one row per key of the probe side.
    let position = |c: usize| pushed_groups.iter().position(|g| *g == c).expect("a pushed group");
    let on = join.on().iter().zip(&keys).map(|((build, _), k)| (build.clone(), Arc::new(Column::new(probe_schema.field(*k).name(), position(*k))) as Arc<dyn PhysicalExpr>)).collect();
    let new_join = join.builder().with_new_children(vec![join.left().clone(), pushed])?.with_on(on).with_projection(None).build_exec()?;

    // Above it: the group values, then the states, as the final stage reads them.
    let build_width = join.left().schema().fields().len();
    let at_in_join = |(left, c): Origin| if left { c } else { build_width + position(c) };
    let states_at = build_width + pushed_groups.len();
    let join_schema = new_join.schema();
    let partial_schema = match agg.mode() {
        AggregateMode::Partial => agg.schema(),
        _ => AggregateExec::try_new(AggregateMode::Partial, agg.group_expr().clone(), agg.aggr_expr().to_vec(), agg.filter_expr().to_vec(), agg.input().clone(), agg.input_schema())?.schema(),
    };
    let column = |at: usize, name: &str| (Arc::new(Column::new(join_schema.field(at).name(), at)) as Arc<dyn PhysicalExpr>, name.to_string());
    let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
    for (i, (origin, _)) in groups.iter().enumerate() {
        exprs.push(column(at_in_join(*origin), partial_schema.field(i).name()));
    }
    for (j, field) in partial_schema.fields().iter().enumerate().skip(groups.len()) {
        exprs.push(column(states_at + j - groups.len(), field.name()));
    }
    let projected = Arc::new(ProjectionExec::try_new(exprs, new_join)?) as Arc<dyn ExecutionPlan>;
    Ok(Some(match agg.mode() {
        AggregateMode::Partial => projected,
        // A single-stage aggregate becomes the final stage over the states.
        _ => Arc::new(AggregateExec::try_new(AggregateMode::Final, agg.group_expr().as_final(), agg.aggr_expr().to_vec(), agg.filter_expr().to_vec(), projected, agg.input_schema())?),
    }))
}

#[cfg(test)]
#[path = "eager_aggregation_tests.rs"]
mod tests;

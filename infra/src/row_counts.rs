//! `count(*)` grouped by partition columns (`SELECT date, count(*) FROM samples GROUP BY
//! date`) answered from Parquet footers' row counts instead of a scan: objects never change,
//! so a footer's count is exact, unlike min/max (which NaN makes unsafe to trust).
//!
//! [`CountFromRowCounts`] is a physical optimizer rule that runs after DataFusion's own. It
//! replaces a first-stage aggregate whose input is a plain Parquet scan — no predicate, no
//! limit, grouping only by partition columns, every aggregate a `count` of a non-null
//! literal — with a one-batch table of (group values, summed row counts). Anything else is
//! left as planned. (DataFusion's own `AggregateStatistics` would also answer min/max from
//! statistics, so trackiq leaves it out; this rule answers counts only, with or without
//! GROUP BY.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::scalar::ScalarValue;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct CountFromRowCounts;

impl PhysicalOptimizerRule for CountFromRowCounts {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| Ok(match replacement(&node)? {
            Some(table) => Transformed::yes(table),
            None => Transformed::no(node),
        }))
        .data()
    }

    fn name(&self) -> &str {
        "count_from_row_counts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `agg` only counts rows: `count(*)` / `count(1)`, no DISTINCT, no FILTER.
fn counts_rows_only(agg: &AggregateExec) -> bool {
    !agg.aggr_expr().is_empty()
        && agg.filter_expr().iter().all(Option::is_none)
        && agg.aggr_expr().iter().all(|a| {
            a.fun().name() == "count"
                && !a.is_distinct()
                && a.expressions().iter().all(|e| e.downcast_ref::<Literal>().is_some_and(|l| !l.value().is_null()))
        })
}

/// The one-batch table standing for `node`, when `node` is an aggregate this rule answers.
fn replacement(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(agg) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
    if !matches!(agg.mode(), AggregateMode::Partial | AggregateMode::Single) || !agg.group_expr().is_single() || !counts_rows_only(agg) {
        return Ok(None);
    }
    let Some(scan) = agg.input().downcast_ref::<DataSourceExec>() else { return Ok(None) };
    let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else { return Ok(None) };
    if config.file_source().filter().is_some() || config.limit.is_some() || config.file_source().file_type() != "parquet" {
        return Ok(None);
    }
    // Each group column must be a partition column of the scan.
    let scan_schema = scan.schema();
    let partition_cols = config.table_partition_cols();
    let mut positions = Vec::new();
    for (expr, _) in agg.group_expr().expr() {
        let Some(col) = expr.downcast_ref::<Column>() else { return Ok(None) };
        let name = scan_schema.field(col.index()).name();
        let Some(k) = partition_cols.iter().position(|f| f.name() == name) else { return Ok(None) };
        positions.push(k);
    }
    // Rows per group, each object once (a large object may be read as several ranges).
    let mut seen = HashSet::new();
    let mut order: Vec<Vec<ScalarValue>> = Vec::new();
    let mut rows: HashMap<Vec<ScalarValue>, i64> = HashMap::new();
    if positions.is_empty() {
        // No GROUP BY: one row, 0 for an empty table.
        order.push(Vec::new());
        rows.insert(Vec::new(), 0);
    }
    for file in config.file_groups.iter().flat_map(|g| g.files()) {
        if !seen.insert(file.object_meta.location.clone()) {
            continue;
        }
        let Some(Precision::Exact(n)) = file.statistics.as_ref().map(|s| s.num_rows) else { return Ok(None) };
        let Some(key) = positions.iter().map(|&k| file.partition_values.get(k).cloned()).collect::<Option<Vec<_>>>() else { return Ok(None) };
        if n == 0 {
            continue;
        }
        let count = rows.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            0
        });
        *count += n as i64;
    }
    let schema = agg.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().take(positions.len()).enumerate() {
        let values = if order.is_empty() { datafusion::arrow::array::new_empty_array(field.data_type()) } else { ScalarValue::iter_to_array(order.iter().map(|k| k[i].clone()))? };
        columns.push(cast(&values, field.data_type())?);
    }
    for field in schema.fields().iter().skip(positions.len()) {
        // A count's partial state and its final value are both one Int64.
        if field.data_type() != &DataType::Int64 {
            return Ok(None);
        }
        columns.push(Arc::new(Int64Array::from_iter_values(order.iter().map(|k| rows[k]))));
    }
    if columns.len() != schema.fields().len() {
        return Ok(None);
    }
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Some(MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?))
}

#[cfg(test)]
#[path = "row_counts_tests.rs"]
mod tests;

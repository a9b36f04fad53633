//! PostgreSQL's type names in `information_schema.columns`. DataFusion's catalog says `Float64`
//! and `Utf8View`; clients that type columns from it (Grafana's query builder: `double
//! precision` → number, `timestamp with time zone` → time, anything else text; its schema
//! handler reads `udt_name`) need PostgreSQL's words. A query's `information_schema.columns`
//! is read through [`columns_query`], a derived table with them (no extra table or schema appears
//! in any listing).
//!
//! Grafana's older query editor also names the schemas of the search path with a subquery that
//! splits `current_setting('search_path')` in a lateral `string_to_array(...) s` (a table
//! function DataFusion lacks): such an `IN (subquery)` reads as `IN ('public')`, the one schema
//! on the endpoint's search path (`settings::SEARCH_PATH`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, SetExpr, Statement, TableAlias, TableFactor, Value, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The alias that marks the catalog table inside [`columns_query`], which is not rewritten again.
const SOURCE: &str = "trackiq_pg_source";

/// DataFusion's type (a condition on its `data_type` text) → PostgreSQL's `data_type` and
/// `udt_name`, first match wins; anything else is `USER-DEFINED` / `text`.
const TYPES: &[(&str, &str, &str)] = &[
    ("IN ('Utf8', 'Utf8View', 'LargeUtf8')", "text", "text"),
    ("= 'Int64'", "bigint", "int8"),
    ("= 'Int32'", "integer", "int4"),
    ("= 'Int16'", "smallint", "int2"),
    ("= 'Float64'", "double precision", "float8"),
    ("= 'Float32'", "real", "float4"),
    ("= 'Boolean'", "boolean", "bool"),
    ("IN ('Binary', 'BinaryView', 'LargeBinary')", "bytea", "bytea"),
    // A time zone is printed quoted: `Timestamp(µs, "UTC")`.
    ("LIKE 'Timestamp(%\"%'", "timestamp with time zone", "timestamptz"),
    ("LIKE 'Timestamp(%'", "timestamp without time zone", "timestamp"),
    ("= 'Date32'", "date", "date"),
    ("LIKE 'List(%'", "ARRAY", "_text"),
];

/// DataFusion's `information_schema.columns` with `data_type` in PostgreSQL's words and
/// PostgreSQL's `udt_name` added, as a query whose one relation is the derived table.
fn columns_query() -> String {
    let case = |pick: fn(&(&'static str, &'static str, &'static str)) -> &'static str, otherwise: &str| {
        let arms: String = TYPES.iter().map(|t| format!("WHEN data_type {} THEN '{}' ", t.0, pick(t))).collect();
        format!("CASE {arms}ELSE '{otherwise}' END")
    };
    format!(
        "SELECT * FROM (SELECT table_catalog, table_schema, table_name, column_name, ordinal_position, column_default, is_nullable, \
         {} AS data_type, {} AS udt_name, character_maximum_length, character_octet_length, numeric_precision, numeric_precision_radix, \
         numeric_scale, datetime_precision, interval_type FROM information_schema.columns AS {SOURCE}) AS columns",
        case(|t| t.1, "USER-DEFINED"),
        case(|t| t.2, "text")
    )
}

/// The derived table standing for `information_schema.columns`.
fn derived_columns() -> Option<TableFactor> {
    let Statement::Query(query) = Parser::parse_sql(&PostgreSqlDialect {}, &columns_query()).ok()?.pop()? else { return None };
    let SetExpr::Select(select) = *query.body else { return None };
    Some(select.from.into_iter().next()?.relation)
}

/// Whether `sql` (lower-cased) is a subquery listing the search path's schemas.
fn lists_search_path(sql: &str) -> bool {
    sql.contains("current_setting('search_path')") && sql.contains("string_to_array")
}

/// Replaces each `information_schema.columns` (but the one inside [`columns_query`]) and each
/// `IN (subquery listing the search path)`.
struct WithPgTypes {
    derived: TableFactor,
    changed: bool,
}

impl VisitorMut for WithPgTypes {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else { return ControlFlow::Continue(()) };
        let parts: Vec<String> = name.0.iter().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase()).collect();
        let is_columns = parts.len() >= 2 && parts[parts.len() - 2] == "information_schema" && parts[parts.len() - 1] == "columns";
        if !is_columns || alias.as_ref().is_some_and(|a| a.name.value == SOURCE) {
            return ControlFlow::Continue(());
        }
        let alias: Option<TableAlias> = alias.clone();
        let mut derived = self.derived.clone();
        if let (TableFactor::Derived { alias: slot, .. }, Some(alias)) = (&mut derived, alias) {
            *slot = Some(alias);
        }
        *factor = derived;
        self.changed = true;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::InSubquery { expr: left, subquery, negated } = expr else { return ControlFlow::Continue(()) };
        if !lists_search_path(&subquery.to_string().to_ascii_lowercase()) {
            return ControlFlow::Continue(());
        }
        let list = vec![Expr::value(Value::SingleQuotedString(super::settings::SEARCH_PATH.to_string()))];
        *expr = Expr::InList { expr: left.clone(), list, negated: *negated };
        self.changed = true;
        ControlFlow::Continue(())
    }
}

/// `sql` reading PostgreSQL's type names wherever it read `information_schema.columns` and the
/// search path's schemas where it listed them, or `None` when it does neither (or does not
/// parse: the query then fails as written).
pub fn rewrite(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !(lower.contains("information_schema") && lower.contains("columns")) && !lists_search_path(&lower) {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut visitor = WithPgTypes { derived: derived_columns()?, changed: false };
    let _ = statements.visit(&mut visitor);
    visitor.changed.then(|| statements.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_information_schema_columns_is_read_with_postgresql_types() {
        let grafana = "SELECT column_name, data_type, udt_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'summaries'";
        let sql = rewrite(grafana).unwrap();
        assert!(sql.starts_with("SELECT column_name, data_type, udt_name FROM (SELECT table_catalog") && sql.ends_with(") AS columns WHERE table_schema = 'public' AND table_name = 'summaries'"), "{sql}");
        let quoted = rewrite("SELECT c.column_name FROM \"information_schema\".\"columns\" c").unwrap();
        assert!(quoted.ends_with(") c") || quoted.ends_with(") AS c"), "{quoted}");
        assert_eq!(quoted.matches("information_schema.columns").count(), 1, "the catalog table inside is not rewritten again: {quoted}");
        assert_eq!(rewrite("SELECT table_name FROM information_schema.tables"), None);
        assert_eq!(rewrite("SELECT metric, count(*) FROM samples GROUP BY metric"), None);
    }

    /// Grafana's `buildSchemaConstraint` (public/app/plugins/datasource/grafana-postgresql-
    /// datasource/postgresMetaQuery.ts, before its query editor moved to `parse_ident`).
    const GRAFANA_SEARCH_PATH: &str = "quote_ident(table_schema) IN (\n  SELECT\n    CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END\n  FROM\n    generate_series(\n      array_lower(string_to_array(current_setting('search_path'),','),1),\n      array_upper(string_to_array(current_setting('search_path'),','),1)\n    ) as i,\n    string_to_array(current_setting('search_path'),',') s\n)";

    #[test]
    fn the_search_path_subquery_reads_as_the_endpoints_schema() {
        let tables = format!("SELECT quote_ident(table_name) FROM information_schema.tables WHERE {GRAFANA_SEARCH_PATH} ORDER BY 1");
        assert_eq!(rewrite(&tables).unwrap(), "SELECT quote_ident(table_name) FROM information_schema.tables WHERE quote_ident(table_schema) IN ('public') ORDER BY 1");
        let columns = rewrite(&format!("SELECT column_name FROM information_schema.columns WHERE {GRAFANA_SEARCH_PATH} AND table_name = 'summaries'")).unwrap();
        assert!(columns.ends_with("AS columns WHERE quote_ident(table_schema) IN ('public') AND table_name = 'summaries'"), "{columns}");
        let not_in = rewrite(&GRAFANA_SEARCH_PATH.replacen("quote_ident(table_schema) IN", "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN", 1)).unwrap_or_else(|| panic!("not rewritten"));
        assert!(not_in.ends_with("NOT IN ('public')"), "{not_in}");
        assert_eq!(rewrite("SELECT 1 WHERE 'public' IN (SELECT current_setting('search_path'))"), None, "a subquery that does not split the path is left alone");
    }

    #[tokio::test]
    async fn the_derived_table_gives_postgresql_type_names() {
        let ctx = datafusion::prelude::SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_information_schema(true));
        use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let schema = Schema::new(vec![
            Field::new("f", DataType::Float64, true),
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8View, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("local", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]);
        ctx.register_table("t", std::sync::Arc::new(datafusion::datasource::MemTable::try_new(schema.into(), vec![vec![]]).unwrap())).unwrap();
        let sql = rewrite("SELECT column_name, data_type, udt_name FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position").unwrap();
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        let rows: Vec<Vec<&str>> = text.lines().filter(|l| l.starts_with("| ")).skip(1).map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
        assert_eq!(
            rows,
            [["f", "double precision", "float8"], ["i", "bigint", "int8"], ["s", "text", "text"], ["b", "boolean", "bool"], ["ts", "timestamp with time zone", "timestamptz"], ["local", "timestamp without time zone", "timestamp"]],
            "{text}"
        );
    }
}

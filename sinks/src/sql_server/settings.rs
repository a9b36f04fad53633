//! `current_setting(name)`: the server settings PostgreSQL clients read on connect (Grafana
//! asks `current_setting('server_version_num')` when a data source is saved, and
//! `current_setting('search_path')` to list tables). The catalog crate leaves it out.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The version trackiq's endpoint speaks as (the protocol crate announces `server_version`
/// 16.6 at start-up; the number says the same).
const SERVER_VERSION_NUM: &str = "160006";

/// The endpoint's search path: every table is in schema `public` (the statement rewrite
/// `pg_types` reads Grafana's search-path subquery as this schema).
pub(super) const SEARCH_PATH: &str = "public";

/// The value of setting `name` (case-insensitive, as in PostgreSQL).
fn setting(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "server_version_num" => SERVER_VERSION_NUM,
        "server_version" => "16.6",
        "search_path" => SEARCH_PATH,
        "timezone" => "UTC",
        "datestyle" => "ISO, YMD",
        "intervalstyle" => "postgres",
        "client_encoding" | "server_encoding" => "UTF8",
        "standard_conforming_strings" | "integer_datetimes" | "default_transaction_read_only" | "transaction_read_only" => "on",
        "max_identifier_length" => "63",
        "statement_timeout" | "lock_timeout" => "0",
        "application_name" => "",
        _ => return None,
    })
}

fn unknown(name: &str) -> DataFusionError {
    DataFusionError::Execution(format!("unrecognized configuration parameter \"{name}\""))
}

fn lookup(name: Option<&str>) -> Result<Option<String>, DataFusionError> {
    match name {
        None => Ok(None),
        Some(n) => setting(n).map(|v| Some(v.to_string())).ok_or_else(|| unknown(n)),
    }
}

/// The `current_setting(text)` function.
pub fn current_setting() -> ScalarUDF {
    let fun = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue, DataFusionError> {
        match &args[0] {
            ColumnarValue::Scalar(s) => {
                let name = match s {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => v.clone(),
                    other => return Err(DataFusionError::Execution(format!("current_setting takes a setting's name as text, not {other}"))),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(lookup(name.as_deref())?)))
            }
            ColumnarValue::Array(a) => {
                let names = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
                let names = names.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
                let values = (0..names.len()).map(|i| lookup(names.is_valid(i).then(|| names.value(i)))).collect::<Result<Vec<_>, _>>()?;
                Ok(ColumnarValue::Array(Arc::new(StringArray::from(values))))
            }
        }
    });
    create_udf("current_setting", vec![DataType::Utf8], DataType::Utf8, Volatility::Stable, fun)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn known_settings_answer_as_postgresql_does_and_unknown_ones_are_named() {
        let ctx = SessionContext::new();
        ctx.register_udf(current_setting());
        let batches = ctx.sql("SELECT CAST(current_setting('server_version_num') AS INT) / 100 AS version, current_setting('search_path') AS sp").await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        assert!(text.contains("| 1600    | public |"), "{text}");
        let err = ctx.sql("SELECT current_setting('no_such_thing')").await.unwrap().collect().await.unwrap_err().to_string();
        assert!(err.contains("unrecognized configuration parameter \"no_such_thing\""), "{err}");
    }
}

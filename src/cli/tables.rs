//! `trackiq tables`: the history's tables and views, and with a name, that table's columns
//! with their SQL types and meaning; `--duckdb` prints DuckDB views over the same objects.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::{DataStore, table_docs};

#[derive(Debug, Args)]
pub struct TablesArgs {
    /// A table or view: list its columns (without: list the tables and views).
    table: Option<String>,
    /// Print DuckDB views (`CREATE OR REPLACE VIEW ... read_parquet([...])`) over exactly the
    /// objects trackiq reads, for every table or the one named: a glob would also count a
    /// compaction's merged inputs while they are retained.
    #[arg(long)]
    duckdb: bool,
}

pub async fn run(config: Config, a: TablesArgs) -> anyhow::Result<ExitCode> {
    let store = DataStore::open(&config.data)?;
    if a.duckdb {
        let tables: Vec<&str> = match a.table.as_deref() {
            Some(t) if trackiq_schemas::arrow::TABLES.contains(&t) => vec![t],
            Some(t) => bail!("no table `{t}` to give DuckDB (views are trackiq's SQL); tables: {}", trackiq_schemas::arrow::TABLES.join(", ")),
            None => trackiq_schemas::arrow::TABLES.to_vec(),
        };
        for table in tables {
            println!("{}", super::duckdb_views::view(table, &super::duckdb_views::visible_files(&store, table).await?));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Table::new();
    out.load_preset(UTF8_FULL_CONDENSED);
    match a.table {
        None => {
            out.set_header(vec!["table", "one row per", "columns"]);
            let counts = trackiq_infra::tables::query_rows(&store, "SELECT table_name, count(*) AS n FROM information_schema.columns WHERE table_schema = 'public' GROUP BY table_name").await?;
            for (name, row) in table_docs::TABLES {
                let n = counts.iter().find(|r| r["table_name"] == name).and_then(|r| r["n"].as_i64()).unwrap_or(0);
                out.add_row(vec![name.to_string(), row.to_string(), n.to_string()]);
            }
            println!("{out}\ncolumns of one: trackiq tables NAME · times are UTC (µs); every table is partitioned by `date`");
        }
        Some(name) => {
            let Some(what) = table_docs::table(&name) else {
                let known: Vec<&str> = table_docs::TABLES.iter().map(|(t, _)| *t).collect();
                bail!("no table or view `{name}`; the history has: {}", known.join(", "));
            };
            let q = format!("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{name}' ORDER BY ordinal_position");
            out.set_header(vec!["column", "type", "null", "meaning"]);
            for r in trackiq_infra::tables::query_rows(&store, &q).await? {
                let column = r["column_name"].as_str().unwrap_or_default();
                let ty = r["data_type"].as_str().unwrap_or_default();
                out.add_row(vec![column.to_string(), sql_type(ty), r["is_nullable"].as_str().unwrap_or_default().to_lowercase(), table_docs::column(&name, column).unwrap_or("").to_string()]);
            }
            println!("{name} — one row per: {what}\n{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The SQL name of an Arrow type as DataFusion prints it.
fn sql_type(arrow: &str) -> String {
    match arrow {
        "Utf8" | "Utf8View" | "LargeUtf8" => "text".into(),
        "Int32" => "int".into(),
        "Int64" => "bigint".into(),
        "Float64" => "double".into(),
        "Boolean" => "boolean".into(),
        "Binary" => "bytea".into(),
        t if t.starts_with("Timestamp(") => "timestamp (UTC)".into(),
        t if t.starts_with("Map(") => "map(text, text)".into(),
        t if t.starts_with("List(") => "list(text)".into(),
        other => other.to_string(),
    }
}

//! `trackiq sql`: DataFusion over the Parquet history.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use datafusion::arrow::record_batch::RecordBatch;
use trackiq::config::Config;
use trackiq_infra::DataStore;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT metric, avg(value) FROM samples GROUP BY metric".
    query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Runs a query and returns the batches.
pub async fn query(config: &Config, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let store = DataStore::open(&config.data)?;
    let ctx = trackiq_infra::tables::session(&store).await?;
    let df = ctx.sql(sql).await?;
    Ok(df.collect().await?)
}

pub fn render(batches: &[RecordBatch], format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string(),
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
            }
            String::from_utf8(buf)?
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            let s = String::from_utf8(buf)?;
            if s.is_empty() { "[]".into() } else { s }
        }
    })
}

pub async fn run(config: Config, a: SqlArgs) -> anyhow::Result<ExitCode> {
    crate::one_shot_allocator();
    let batches = query(&config, &a.query).await?;
    // CSV already ends each row with a newline; the others end without one.
    let out = render(&batches, a.format)?;
    println!("{}", out.strip_suffix('\n').unwrap_or(&out));
    Ok(ExitCode::SUCCESS)
}

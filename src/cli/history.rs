//! Reading the Parquet history for the analysis commands: every query goes through
//! DataFusion over the object store.

use std::collections::{BTreeMap, HashSet};

use trackiq::config::Config;

/// A SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Rows of a query as JSON objects.
pub async fn rows(config: &Config, sql: &str) -> anyhow::Result<Vec<trackiq_infra::tables::Row>> {
    let store = trackiq_infra::DataStore::open(&config.data)?;
    Ok(trackiq_infra::tables::query_rows(&store, sql).await?)
}

/// Runs among `run_ids` the history already holds, each with its series (one query per 500
/// ids): what `trackiq import` and the HTTP ingest leave out as already imported.
pub async fn archived_runs<'a>(store: &trackiq_infra::DataStore, run_ids: impl IntoIterator<Item = &'a str>) -> Result<std::collections::HashMap<String, String>, trackiq_infra::InfraError> {
    let ids: Vec<String> = run_ids.into_iter().map(lit).collect();
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT DISTINCT run_id, series_id FROM runs WHERE event = 'started' AND run_id IN ({})", chunk.join(", "));
        let text = |r: &trackiq_infra::tables::Row, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        found.extend(trackiq_infra::tables::query_rows(store, &sql).await?.iter().map(|r| (text(r, "run_id"), text(r, "series_id"))));
    }
    Ok(found)
}

/// One run's judged figure of a metric.
#[derive(Debug, Clone)]
pub struct Point {
    pub run_id: String,
    pub started_at: String,
    pub value: f64,
    pub git_commit: Option<String>,
    pub version_tag: Option<String>,
}

/// Completed runs' values of `metric` (a sample metric's mean, or a derived figure), per
/// series, oldest first; at-least-once duplicates removed.
pub async fn series_values(config: &Config, metric: &str, series: Option<&str>, days: Option<u32>) -> anyhow::Result<BTreeMap<String, Vec<Point>>> {
    let mut filter = format!("metric = {} AND status = 'completed'", lit(metric));
    if let Some(s) = series {
        filter.push_str(&format!(" AND series_id = {}", lit(s)));
    }
    if let Some(d) = days {
        filter.push_str(&format!(" AND started_at >= now() - INTERVAL '{d} days'"));
    }
    let sql = format!(
        "SELECT series_id, run_id, CAST(started_at AS VARCHAR) AS started_at, mean AS value, git_commit, version_tag \
         FROM summaries WHERE {filter} ORDER BY series_id, started_at, run_id"
    );
    let mut out: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for r in rows(config, &sql).await? {
        let run_id = r.get("run_id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if !seen.insert(run_id.clone()) {
            continue;
        }
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
        out.entry(s("series_id").unwrap_or_default()).or_default().push(Point {
            run_id,
            started_at: s("started_at").unwrap_or_default(),
            value: r.get("value").and_then(|v| v.as_f64()).unwrap_or(f64::NAN),
            git_commit: s("git_commit"),
            version_tag: s("version_tag"),
        });
    }
    Ok(out)
}

/// Output formats of the analysis commands.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum OutFormat {
    Table,
    Json,
    Markdown,
}

/// A terminal table with a header.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED).set_header(header.iter().copied());
    t
}

/// A Markdown table.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}|\n", header.join(" | "), header.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | ")));
    }
    s
}

/// Prints rows in the chosen format (JSON: an array of objects keyed by the header).
pub fn print_rows(format: OutFormat, header: &[&str], rows: Vec<Vec<String>>) {
    match format {
        OutFormat::Table => {
            let mut t = table(header);
            for r in rows {
                t.add_row(r);
            }
            println!("{t}");
        }
        OutFormat::Markdown => print!("{}", markdown(header, &rows)),
        OutFormat::Json => {
            let v: Vec<serde_json::Value> = rows
                .into_iter()
                .map(|r| serde_json::Value::Object(header.iter().map(|h| h.to_string()).zip(r.into_iter().map(serde_json::Value::String)).collect()))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
}

/// A number for people.
pub fn num(x: f64) -> String {
    trackiq_sinks::report::fmt_num(x)
}

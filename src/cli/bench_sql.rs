//! `trackiq bench sql`: a fixed suite of analyst queries over the history the pipeline's
//! archiver wrote, each timed as a whole process — `trackiq sql` (this executable) side by
//! side with DuckDB's command-line shell on the same Parquet files — with the answers compared.

mod answers;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use trackiq::config::Config;
use trackiq_infra::DataStore;

/// Fewest samples the suite runs on.
const MIN_SAMPLES: u64 = 10_000_000;
/// Approximate percentiles against the exact ones: our DDSketch's bound is 1 %; the exact
/// quantile of a rank and DuckDB's `quantile_disc` may pick neighbouring values, hence 2 %.
const APPROX_TOLERANCE: f64 = 0.02;
/// Exact answers: floating-point sums may differ in the last bits with the summation order.
const EXACT_TOLERANCE: f64 = 1e-9;

#[derive(Debug, Args)]
pub struct SqlBenchArgs {
    /// Timed repetitions of each query per engine (the median is reported), after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// DuckDB's command-line shell. Default: `duckdb` on PATH.
    #[arg(long)]
    pub duckdb: Option<PathBuf>,
    /// Run on fewer than 10,000,000 samples anyway (to try the command out; the figures
    /// then say little).
    #[arg(long)]
    pub allow_small: bool,
}

struct Query {
    name: &'static str,
    sql: String,
    approximate: bool,
}

fn suite(metric: &str, run_id: &str) -> Vec<Query> {
    let q = |name, sql: String, approximate| Query { name, sql, approximate };
    vec![
        q("count per metric", "SELECT metric, count(*) AS n FROM samples GROUP BY metric ORDER BY metric".into(), false),
        q(
            "approx p50/p95/p99 per metric",
            "SELECT metric, approx_quantile(value, 0.5) AS p50, approx_quantile(value, 0.95) AS p95, approx_quantile(value, 0.99) AS p99 FROM samples GROUP BY metric ORDER BY metric".into(),
            true,
        ),
        q("exact median per metric", "SELECT metric, median(value) AS p50 FROM samples GROUP BY metric ORDER BY metric".into(), false),
        q("count per day", "SELECT date, count(*) AS n FROM samples GROUP BY date ORDER BY date".into(), false),
        q("one run's values of a metric", format!("SELECT value FROM samples WHERE run_id = '{run_id}' AND metric = '{metric}' ORDER BY ts, value"), false),
        q(
            "join runs, mean per workload",
            format!("SELECT r.workload, count(*) AS n, avg(s.value) AS mean FROM samples s JOIN runs r ON s.run_id = r.run_id WHERE r.event = 'started' AND s.metric = '{metric}' GROUP BY r.workload ORDER BY r.workload"),
            false,
        ),
        // What analysts ask next: the worst runs, a percentile per day per workload, and a
        // rolling figure over run medians (a window function).
        q("top 10 slowest runs", format!("SELECT run_id, avg(value) AS mean FROM samples WHERE metric = '{metric}' GROUP BY run_id ORDER BY mean DESC, run_id LIMIT 10"), false),
        q(
            "p99 per day per workload",
            format!("SELECT s.date, r.workload, approx_quantile(s.value, 0.99) AS p99 FROM samples s JOIN runs r ON s.run_id = r.run_id WHERE r.event = 'started' AND s.metric = '{metric}' GROUP BY s.date, r.workload ORDER BY s.date, r.workload"),
            true,
        ),
        q(
            "rolling mean of run medians",
            format!("SELECT run_id, p50, avg(p50) OVER (ORDER BY started, run_id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS rolling FROM (SELECT run_id, min(ts) AS started, median(value) AS p50 FROM samples WHERE metric = '{metric}' GROUP BY run_id) ORDER BY started, run_id"),
            false,
        ),
    ]
}

pub async fn run(config: Config, a: SqlBenchArgs) -> anyhow::Result<ExitCode> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let store = DataStore::open(&config.data)?;
    let Some(dir) = store.local_dir().map(Path::to_path_buf) else {
        bail!("bench sql needs a local history (--data file://DIR): DuckDB reads the same files");
    };
    let (count, metric) = preflight(&config).await?;
    if count < MIN_SAMPLES && !a.allow_small {
        bail!(
            "{} holds {count} samples; bench sql needs at least {MIN_SAMPLES} written by the pipeline's archiver. \
             Produce them with `trackiq bench ingest --out DIR` (it keeps DIR/data; e.g. --hosts 10 --series 10 --duration 60), \
             then run `trackiq --data file://DIR/data bench sql` (or pass --allow-small to try it on this history)",
            config.data
        );
    }
    let run_id = first_run(&config, &metric).await?;
    // DuckDB reads exactly the objects trackiq's readers list (compaction hides merged ones).
    let samples = super::duckdb_views::visible_files(&store, "samples").await?;
    let runs = super::duckdb_views::visible_files(&store, "runs").await?;
    let (files, bytes) = (samples.len(), samples.iter().map(|f| f.1).sum::<u64>());
    let (run_files, run_bytes) = (runs.len(), runs.iter().map(|f| f.1).sum::<u64>());
    let scripts = tempfile_dir()?;
    println!("data: {} — samples: {count} rows, {files} files, {:.1} MiB; runs: {run_files} files, {:.1} MiB", dir.display(), mib(bytes), mib(run_bytes));

    let duckdb = find_duckdb(a.duckdb.as_deref());
    if let Some(p) = a.duckdb.as_deref().filter(|p| !p.is_file()) {
        bail!("--duckdb {}: no such file (install the shell with `python3 -m venv ~/duckdb && ~/duckdb/bin/pip install duckdb-cli`, then pass --duckdb ~/duckdb/bin/duckdb)", p.display());
    }
    if duckdb.is_none() {
        println!("DuckDB's shell not found: trackiq times only. Install it with `python3 -m venv ~/duckdb && ~/duckdb/bin/pip install duckdb-cli`, then pass --duckdb ~/duckdb/bin/duckdb (or put `duckdb` on PATH)");
    }
    let exe = std::env::current_exe().context("locating the trackiq executable")?;
    let queries = suite(&metric, &run_id);
    let engines = if duckdb.is_some() { 2 } else { 1 };
    let bar = ProgressBar::new((queries.len() * (a.runs + 1) * engines) as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg}").expect("valid template"));

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["query", "trackiq ms", "duckdb ms", "ratio", "same answer"]);
    let mut worst: f64 = 0.0;
    for q in &queries {
        bar.set_message(q.name);
        let ours_cmd = || {
            let mut c = Command::new(&exe);
            c.args(["--data", &config.data, "sql", "--format", "csv", &q.sql]);
            c
        };
        let duck_sql = duckdb.as_ref().map(|_| duckdb_script(&samples, &runs, &q.sql));
        // The script names every file, more than a command-line argument may hold: a file.
        let duck_cmd_for = |script: &str| {
            let path = scripts.join(format!("q{}.sql", script.len()));
            std::fs::write(&path, script).expect("writing a DuckDB script to the temporary directory");
            let mut c = Command::new(duckdb.as_ref().expect("duckdb found"));
            c.args(["-csv", ":memory:", "-f"]).arg(path);
            c
        };
        let duck_cmd = || duck_cmd_for(duck_sql.as_deref().expect("script"));
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_answer, mut their_answer) = (String::new(), String::new());
        for rep in 0..=a.runs {
            let (ms, out) = timed(ours_cmd()).with_context(|| format!("trackiq sql: {}", q.sql))?;
            bar.inc(1);
            if rep > 0 {
                ours.push(ms);
            }
            our_answer = out;
            if duckdb.is_some() {
                let (ms, out) = timed(duck_cmd()).with_context(|| format!("duckdb: {}", q.sql))?;
                bar.inc(1);
                if rep > 0 {
                    theirs.push(ms);
                }
                their_answer = out;
            }
        }
        let ours = median(&mut ours);
        let row = if duckdb.is_some() {
            let theirs = median(&mut theirs);
            let ratio = ours / theirs;
            worst = worst.max(ratio);
            let same = if q.approximate {
                // Each engine against the exact quantiles (DuckDB's quantile_disc, untimed).
                let exact_sql = q.sql.replace("approx_quantile(", "quantile_disc(");
                let (_, exact) = timed(duck_cmd_for(&duckdb_script(&samples, &runs, &exact_sql))).context("duckdb: exact quantiles")?;
                let ours = answers::differ(&our_answer, &exact, APPROX_TOLERANCE);
                let theirs = answers::max_rel_error(&their_answer, &exact);
                match ours {
                    None => format!("yes: within {:.0} % of exact (DuckDB's t-digest off by up to {:.1} %)", APPROX_TOLERANCE * 100.0, theirs * 100.0),
                    Some(d) => format!("NO vs exact: {d}"),
                }
            } else {
                match answers::differ(&our_answer, &their_answer, EXACT_TOLERANCE) {
                    None => "yes".to_string(),
                    Some(d) => format!("NO: {d}"),
                }
            };
            vec![q.name.to_string(), format!("{ours:.0}"), format!("{theirs:.0}"), format!("{ratio:.2}×"), same]
        } else {
            vec![q.name.to_string(), format!("{ours:.0}"), "-".into(), "-".into(), "-".into()]
        };
        table.add_row(row);
    }
    bar.finish_and_clear();
    println!("{table}");
    println!("median of {} runs per query and engine, each a whole process (after one warm-up); queries:", a.runs);
    for q in &queries {
        println!("  {}: {}", q.name, q.sql);
    }
    if duckdb.is_some() {
        println!("slowest ratio {worst:.2}× (goal ≤ 1.00×)");
    }
    let _ = std::fs::remove_dir_all(&scripts);
    Ok(ExitCode::SUCCESS)
}

/// Sample count and the metric with the most samples.
async fn preflight(config: &Config) -> anyhow::Result<(u64, String)> {
    let batches = super::sql::query(config, "SELECT metric, count(*) AS n FROM samples GROUP BY metric ORDER BY n DESC, metric").await?;
    let rows = super::sql::render(&batches, super::sql::Format::Csv)?;
    let rows = answers::rows(&rows);
    let total = rows.iter().filter_map(|r| r.get(1)?.parse::<u64>().ok()).sum();
    let metric = rows.first().and_then(|r| r.first()).cloned().unwrap_or_default();
    Ok((total, metric))
}

/// The smallest run id with samples of `metric`.
async fn first_run(config: &Config, metric: &str) -> anyhow::Result<String> {
    let sql = format!("SELECT min(run_id) AS r FROM samples WHERE metric = '{}'", metric.replace('\'', "''"));
    let out = super::sql::render(&super::sql::query(config, &sql).await?, super::sql::Format::Csv)?;
    answers::rows(&out).first().and_then(|r| r.first()).cloned().filter(|r| !r.is_empty()).context("no run in the samples table")
}

fn duckdb_script(samples: &[(String, u64)], runs: &[(String, u64)], sql: &str) -> String {
    format!("{}\n{}\n{sql};\n", super::duckdb_views::view("samples", samples), super::duckdb_views::view("runs", runs))
}

/// A fresh directory for DuckDB scripts.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("trackiq-bench-sql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn find_duckdb(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("duckdb")).find(|p| p.is_file()))
}

/// Wall-clock milliseconds of a whole process and its standard output.
fn timed(mut c: Command) -> anyhow::Result<(f64, String)> {
    let start = Instant::now();
    let out = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output()?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok((ms, String::from_utf8(out.stdout)?))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

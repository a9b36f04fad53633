//! `trackiq compare <run_a> <run_b>`: two runs side by side, with significance from their
//! raw samples; `--html FILE` also writes the comparison as an HTML report (rendered by
//! `trackiq_sinks::report::compare`, in the per-run report's style).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use trackiq::config::Config;
use trackiq_schemas::Direction;
use trackiq_sinks::report::compare::render_compare;
use trackiq_sinks::report::compare_data::{compare, load_side};

use super::history::{OutFormat, num, print_rows};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first run (the "before"): its id, as `bench` and `record` print it.
    #[arg(value_name = "RUN_A")]
    run_a: String,
    /// The second run (the "after").
    #[arg(value_name = "RUN_B")]
    run_b: String,
    /// Compare runs whose workload or batch size differ (the difference is flagged).
    #[arg(long)]
    force: bool,
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
    /// Significance level for "significant" and for consistency findings.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Also write the comparison as an HTML report to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub async fn run(config: Config, a: CompareArgs) -> anyhow::Result<ExitCode> {
    let store = trackiq_infra::DataStore::open(&config.data)?;
    let (x, y) = (load_side(&store, &[a.run_a.clone()]).await?, load_side(&store, &[a.run_b.clone()]).await?);
    let report = compare(x, y, a.alpha, a.force, &|m| config.verdict.direction_of(m))?;
    let mut out = Vec::new();
    for m in &report.metrics {
        let confidence = match (m.a, m.b) {
            (Some(_), Some(_)) => "strong",
            (None, None) => "none",
            _ => "insufficient",
        };
        let (delta, winner) = match (m.a, m.b, m.change_pct()) {
            (Some(a_), Some(b_), Some(d)) => {
                let b_better = match m.direction {
                    Direction::LowerIsBetter => b_ < a_,
                    Direction::HigherIsBetter => b_ > a_,
                };
                (format!("{d:+.2}"), if a_ == b_ { "tie" } else if b_better { "B" } else { "A" }.to_string())
            }
            _ => (String::new(), String::new()),
        };
        let significance = m.pvalue.map(|p| format!("p = {p:.3e}{}", if p < a.alpha { " (significant)" } else { "" })).unwrap_or_default();
        out.push(vec![
            m.metric.clone(),
            m.a.map(num).unwrap_or_else(|| "—".into()),
            m.b.map(num).unwrap_or_else(|| "—".into()),
            delta,
            winner,
            m.direction.as_str().replace('_', " "),
            significance,
            confidence.to_string(),
        ]);
    }
    if let Some(path) = &a.html {
        let html = render_compare(&report)?;
        std::fs::write(path, html).with_context(|| format!("writing the HTML comparison to {}", path.display()))?;
        // stderr: stdout keeps the table (or the one JSON document).
        eprintln!("wrote {}", path.display());
    }
    let json = matches!(a.format, OutFormat::Json);
    print_rows(a.format, &["metric", "A", "B", "delta %", "winner", "better when", "Mann-Whitney", "confidence"], out);
    // JSON on stdout must stay one document: the notes go to stderr there.
    for n in report.notes {
        if json {
            eprintln!("{n}");
        } else {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

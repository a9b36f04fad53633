//! `trackiq compare <run_a> <run_b>`: two runs side by side, with significance from their
//! raw samples; `--html FILE` also writes the comparison as an HTML report (rendered by
//! `trackiq_sinks::report::compare`, in the per-run report's style).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use trackiq::config::Config;
use trackiq_schemas::Direction;
use trackiq_sinks::report::compare::{Comparison, MetricComparison, RunIdentity, render_compare};
use trackiq_stats::hypothesis::{brown_forsythe, mann_whitney_u};

use super::history::{OutFormat, lit, num, print_rows, rows};

/// Metrics of the TrackIQ contract that every comparison reports, present or not.
const CANONICAL: &[&str] = &["latency_ms", "throughput_per_sec"];

/// Columns of the runs table shown as the runs' identity in the HTML report, with labels.
const IDENTITY: &[(&str, &str)] = &[
    ("series_id", "series"), ("tool", "tool"), ("tool_version", "tool version"), ("started_at", "started"),
    ("hardware_name", "hardware"), ("cpu", "CPU"), ("gpus", "GPUs"), ("os", "OS"), ("driver", "driver"),
    ("workload", "workload"), ("workload_type", "workload type"), ("batch_size", "batch size"), ("precision", "precision"),
    ("git_commit", "git commit"), ("version_tag", "version tag"), ("env_hash", "environment hash"),
];

#[derive(Debug, Args)]
pub struct CompareArgs {
    run_a: String,
    run_b: String,
    /// Compare runs whose workload or batch size differ (the difference is flagged).
    #[arg(long)]
    force: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
    /// Significance level for "significant" and for consistency findings.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Also write the comparison as an HTML report to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

struct Side {
    workload: String,
    batch: Option<i64>,
    identity: RunIdentity,
    values: BTreeMap<String, f64>,
    units: BTreeMap<String, String>,
    samples: BTreeMap<String, Vec<f64>>,
}

async fn load(config: &Config, run: &str) -> anyhow::Result<Side> {
    let columns = IDENTITY.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
    let id = rows(config, &format!("SELECT {columns} FROM runs WHERE run_id = {} AND event = 'started' LIMIT 1", lit(run))).await?;
    let Some(id) = id.first() else { bail!("run {run} is not in the history (runs table)") };
    let mut values = BTreeMap::new();
    let mut units = BTreeMap::new();
    for r in rows(config, &format!("SELECT metric, mean, unit FROM summaries WHERE run_id = {}", lit(run))).await? {
        if let (Some(m), Some(v)) = (r.get("metric").and_then(|v| v.as_str()), r.get("mean").and_then(|v| v.as_f64())) {
            values.insert(m.to_string(), v);
            units.insert(m.to_string(), r.get("unit").and_then(|u| u.as_str()).unwrap_or_default().to_string());
        }
    }
    if values.is_empty() {
        bail!("run {run} has no summary in the history yet");
    }
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let sql = format!("SELECT DISTINCT metric, batch_seq, ts, step, value FROM samples WHERE run_id = {}", lit(run));
    for r in rows(config, &sql).await? {
        if let (Some(m), Some(v)) = (r.get("metric").and_then(|v| v.as_str()), r.get("value").and_then(|v| v.as_f64())) {
            samples.entry(m.to_string()).or_default().push(v);
        }
    }
    Ok(Side {
        workload: id.get("workload").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        batch: id.get("batch_size").and_then(|v| v.as_i64()),
        identity: RunIdentity {
            run_id: run.to_string(),
            // Absent fields are left out rather than shown as "null".
            fields: IDENTITY
                .iter()
                .filter_map(|(column, label)| match id.get(*column)? {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some((label.to_string(), s.clone())),
                    v => Some((label.to_string(), v.to_string())),
                })
                .collect(),
        },
        values,
        units,
        samples,
    })
}

pub async fn run(config: Config, a: CompareArgs) -> anyhow::Result<ExitCode> {
    let (x, y) = (load(&config, &a.run_a).await?, load(&config, &a.run_b).await?);
    let mut notes = Vec::new();
    if x.workload != y.workload || x.batch != y.batch {
        let msg = format!("runs differ: workload {} vs {}, batch {:?} vs {:?}", x.workload, y.workload, x.batch, y.batch);
        if !a.force {
            bail!("{msg}; pass --force to compare them anyway");
        }
        notes.push(format!("warning: {msg} (compared with --force)"));
    }
    let metrics: BTreeSet<String> = x.values.keys().chain(y.values.keys()).cloned().chain(CANONICAL.iter().map(|s| s.to_string())).collect();
    let mut out = Vec::new();
    let mut compared = Vec::new();
    for m in metrics {
        let (va, vb) = (x.values.get(&m).copied(), y.values.get(&m).copied());
        let confidence = match (va, vb) {
            (Some(_), Some(_)) => "strong",
            (None, None) => "none",
            _ => "insufficient",
        };
        let direction = config.verdict.direction_of(&m);
        let (delta, winner) = match (va, vb) {
            (Some(a_), Some(b_)) if a_ != 0.0 => {
                let d = (b_ - a_) / a_.abs() * 100.0;
                let b_better = match direction {
                    Direction::LowerIsBetter => b_ < a_,
                    Direction::HigherIsBetter => b_ > a_,
                };
                (format!("{d:+.2}"), if a_ == b_ { "tie" } else if b_better { "B" } else { "A" }.to_string())
            }
            _ => (String::new(), String::new()),
        };
        let (sa, sb) = (x.samples.get(&m), y.samples.get(&m));
        let mut significance = String::new();
        let mut stats = MetricComparison {
            metric: m.clone(),
            unit: x.units.get(&m).or_else(|| y.units.get(&m)).cloned().unwrap_or_default(),
            direction,
            a: va,
            b: vb,
            pvalue: None,
            variance_pvalue: None,
            stdev_a: None,
            stdev_b: None,
            n_a: sa.map_or(0, Vec::len),
            n_b: sb.map_or(0, Vec::len),
        };
        if let (Some(sa), Some(sb)) = (sa, sb)
            && sa.len() >= 2
            && sb.len() >= 2
        {
            if let Some(t) = mann_whitney_u(sa, sb) {
                significance = format!("p = {:.3e}{}", t.pvalue, if t.pvalue < a.alpha { " (significant)" } else { "" });
                stats.pvalue = Some(t.pvalue);
            }
            let (_, da) = trackiq_stats::mean_stdev(sa);
            let (_, db) = trackiq_stats::mean_stdev(sb);
            let bf = brown_forsythe(sa, sb);
            (stats.stdev_a, stats.stdev_b, stats.variance_pvalue) = (da, db, bf.as_ref().map(|t| t.pvalue));
            if let (Some(da), Some(db), Some(bf)) = (da, db, bf)
                && da > 0.0
                && (db - da) / da > 0.25
                && bf.pvalue < a.alpha
            {
                notes.push(format!("consistency: {m} stdev {:.4} → {:.4} (+{:.0} %), Brown-Forsythe p = {:.3e}", da, db, (db - da) / da * 100.0, bf.pvalue));
            }
        }
        compared.push(stats);
        out.push(vec![
            m.clone(),
            va.map(num).unwrap_or_else(|| "—".into()),
            vb.map(num).unwrap_or_else(|| "—".into()),
            delta,
            winner,
            direction.as_str().replace('_', " "),
            significance,
            confidence.to_string(),
        ]);
    }
    if let Some(path) = &a.html {
        let report = Comparison { a: x.identity, b: y.identity, alpha: a.alpha, metrics: compared, notes: notes.clone() };
        let html = render_compare(&report)?;
        std::fs::write(path, html).with_context(|| format!("writing the HTML comparison to {}", path.display()))?;
        // stderr: stdout keeps the table (or the one JSON document).
        eprintln!("wrote {}", path.display());
    }
    let json = matches!(a.format, OutFormat::Json);
    print_rows(a.format, &["metric", "A", "B", "delta %", "winner", "better when", "Mann-Whitney", "confidence"], out);
    // JSON on stdout must stay one document: the notes go to stderr there.
    for n in notes {
        if json {
            eprintln!("{n}");
        } else {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

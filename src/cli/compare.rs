//! `trackiq compare <run_a> <run_b>`: two runs side by side, with significance from their
//! raw samples.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use trackiq::config::Config;
use trackiq_schemas::Direction;
use trackiq_stats::hypothesis::{brown_forsythe, mann_whitney_u};

use super::history::{OutFormat, lit, num, print_rows, rows};

/// Metrics of the TrackIQ contract that every comparison reports, present or not.
const CANONICAL: &[&str] = &["latency_ms", "throughput_per_sec"];

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
}

struct Side {
    workload: String,
    batch: Option<i64>,
    values: BTreeMap<String, f64>,
    samples: BTreeMap<String, Vec<f64>>,
}

async fn load(config: &Config, run: &str) -> anyhow::Result<Side> {
    let id = rows(config, &format!("SELECT workload, batch_size FROM runs WHERE run_id = {} AND event = 'started' LIMIT 1", lit(run))).await?;
    let Some(id) = id.first() else { bail!("run {run} is not in the history (runs table)") };
    let mut values = BTreeMap::new();
    for r in rows(config, &format!("SELECT metric, mean FROM summaries WHERE run_id = {}", lit(run))).await? {
        if let (Some(m), Some(v)) = (r.get("metric").and_then(|v| v.as_str()), r.get("mean").and_then(|v| v.as_f64())) {
            values.insert(m.to_string(), v);
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
        values,
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
        if let (Some(sa), Some(sb)) = (sa, sb)
            && sa.len() >= 2
            && sb.len() >= 2
        {
            if let Some(t) = mann_whitney_u(sa, sb) {
                significance = format!("p = {:.3e}{}", t.pvalue, if t.pvalue < a.alpha { " (significant)" } else { "" });
            }
            let (_, da) = trackiq_stats::mean_stdev(sa);
            let (_, db) = trackiq_stats::mean_stdev(sb);
            if let (Some(da), Some(db), Some(bf)) = (da, db, brown_forsythe(sa, sb))
                && da > 0.0
                && (db - da) / da > 0.25
                && bf.pvalue < a.alpha
            {
                notes.push(format!("consistency: {m} stdev {:.4} → {:.4} (+{:.0} %), Brown-Forsythe p = {:.3e}", da, db, (db - da) / da * 100.0, bf.pvalue));
            }
        }
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

//! Reading two runs (or two groups of runs) from the history and testing their differences:
//! what `trackiq compare` prints and the dashboard's compare page shows. A group's value of a
//! metric is the mean of its runs' means, and its samples are all of its runs' samples.

use std::collections::{BTreeMap, BTreeSet};

use trackiq_infra::DataStore;
use trackiq_infra::tables::query_rows;
use trackiq_schemas::Direction;
use trackiq_stats::hypothesis::{brown_forsythe, mann_whitney_u};

use super::compare::{Comparison, MetricComparison, RunIdentity};
use crate::error::SinkError;

/// Metrics of the TrackIQ contract that every comparison reports, present or not.
pub const CANONICAL: &[&str] = &["latency_ms", "throughput_per_sec"];

/// Relative growth of the standard deviation that, when significant, is a consistency finding.
pub const SPREAD_GROWTH: f64 = 0.25;

/// Columns of the runs table shown as the runs' identity, with labels.
const IDENTITY: &[(&str, &str)] = &[
    ("series_id", "series"), ("tool", "tool"), ("tool_version", "tool version"), ("started_at", "started"),
    ("hardware_name", "hardware"), ("cpu", "CPU"), ("gpus", "GPUs"), ("os", "OS"), ("driver", "driver"),
    ("workload", "workload"), ("workload_type", "workload type"), ("batch_size", "batch size"), ("precision", "precision"),
    ("git_commit", "git commit"), ("version_tag", "version tag"), ("env_hash", "environment hash"),
];

/// One side of a comparison as read from the history.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub workload: String,
    pub batch: Option<i64>,
    pub identity: RunIdentity,
    /// Mean of the runs' means, per metric.
    pub values: BTreeMap<String, f64>,
    pub units: BTreeMap<String, String>,
    /// Raw samples of all the runs, per metric.
    pub samples: BTreeMap<String, Vec<f64>>,
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn str_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

/// Reads runs `runs` (one run, or a group) from the history.
pub async fn load_side(store: &DataStore, runs: &[String]) -> Result<Side, SinkError> {
    let Some(first) = runs.first() else { return Err(SinkError::Compare("no run given".into())) };
    let list = runs.iter().map(|r| lit(r)).collect::<Vec<_>>().join(", ");
    let columns = IDENTITY.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
    let ids = query_rows(store, &format!("SELECT DISTINCT run_id, {columns} FROM runs WHERE run_id IN ({list}) AND event = 'started'")).await?;
    for r in runs {
        if !ids.iter().any(|row| str_of(row.get("run_id")).as_deref() == Some(r)) {
            return Err(SinkError::Compare(format!("run {r} is not in the history (runs table)")));
        }
    }
    let id = ids.iter().find(|row| str_of(row.get("run_id")).as_deref() == Some(first)).expect("checked above");
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut units = BTreeMap::new();
    for r in query_rows(store, &format!("SELECT DISTINCT run_id, metric, mean, unit FROM summaries WHERE run_id IN ({list})")).await? {
        if let (Some(m), Some(v)) = (r.get("metric").and_then(|v| v.as_str()), r.get("mean").and_then(|v| v.as_f64())) {
            per_metric.entry(m.to_string()).or_default().push(v);
            units.insert(m.to_string(), r.get("unit").and_then(|u| u.as_str()).unwrap_or_default().to_string());
        }
    }
    if per_metric.is_empty() {
        return Err(SinkError::Compare(format!("{} no summary in the history yet", if runs.len() == 1 { format!("run {first} has") } else { "these runs have".into() })));
    }
    let values = per_metric.into_iter().map(|(m, v)| (m, v.iter().sum::<f64>() / v.len() as f64)).collect();
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let sql = format!("SELECT DISTINCT run_id, metric, batch_seq, ts, step, rank, value FROM samples WHERE run_id IN ({list})");
    for r in query_rows(store, &sql).await? {
        if let (Some(m), Some(v)) = (r.get("metric").and_then(|v| v.as_str()), r.get("value").and_then(|v| v.as_f64())) {
            samples.entry(m.to_string()).or_default().push(v);
        }
    }
    // Absent fields are left out rather than shown as "null".
    let mut fields: Vec<(String, String)> = IDENTITY.iter().filter_map(|(column, label)| Some((label.to_string(), str_of(id.get(*column))?))).collect();
    if runs.len() > 1 {
        fields.insert(0, ("runs in the group".into(), runs.len().to_string()));
    }
    Ok(Side {
        workload: str_of(id.get("workload")).unwrap_or_default(),
        batch: id.get("batch_size").and_then(|v| v.as_i64()),
        identity: RunIdentity { run_id: runs.join(", "), fields },
        values,
        units,
        samples,
    })
}

/// Compares B with A: per metric the values, Mann-Whitney U on the samples, and the spreads
/// (Brown-Forsythe). Runs of different workloads or batch sizes are refused unless `force`,
/// which keeps a warning in the notes.
pub fn compare(a: Side, b: Side, alpha: f64, force: bool, direction_of: &dyn Fn(&str) -> Direction) -> Result<Comparison, SinkError> {
    let mut notes = Vec::new();
    if a.workload != b.workload || a.batch != b.batch {
        let msg = format!("runs differ: workload {} vs {}, batch {:?} vs {:?}", a.workload, b.workload, a.batch, b.batch);
        if !force {
            return Err(SinkError::Compare(format!("{msg}; pass --force to compare them anyway")));
        }
        notes.push(format!("warning: {msg} (compared with --force)"));
    }
    let metrics: BTreeSet<String> = a.values.keys().chain(b.values.keys()).cloned().chain(CANONICAL.iter().map(|s| s.to_string())).collect();
    let mut compared = Vec::new();
    for m in metrics {
        let (sa, sb) = (a.samples.get(&m), b.samples.get(&m));
        let mut stats = MetricComparison {
            metric: m.clone(),
            unit: a.units.get(&m).or_else(|| b.units.get(&m)).cloned().unwrap_or_default(),
            direction: direction_of(&m),
            a: a.values.get(&m).copied(),
            b: b.values.get(&m).copied(),
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
            stats.pvalue = mann_whitney_u(sa, sb).map(|t| t.pvalue);
            let (_, da) = trackiq_stats::mean_stdev(sa);
            let (_, db) = trackiq_stats::mean_stdev(sb);
            let bf = brown_forsythe(sa, sb);
            (stats.stdev_a, stats.stdev_b, stats.variance_pvalue) = (da, db, bf.as_ref().map(|t| t.pvalue));
            if let (Some(da), Some(db), Some(bf)) = (da, db, bf)
                && da > 0.0
                && (db - da) / da > SPREAD_GROWTH
                && bf.pvalue < alpha
            {
                notes.push(format!("consistency: {m} stdev {:.4} → {:.4} (+{:.0} %), Brown-Forsythe p = {:.3e}", da, db, (db - da) / da * 100.0, bf.pvalue));
            }
        }
        compared.push(stats);
    }
    Ok(Comparison { a: a.identity, b: b.identity, alpha, metrics: compared, notes })
}

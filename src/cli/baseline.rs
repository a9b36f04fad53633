//! `trackiq baseline set|reset|show`: pinned baselines, as events on the baselines topic.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_infra::bus::send;
use trackiq_processors::verdict::baselines::judged_value;
use trackiq_schemas::{BaselinePin, PinnedRun, registry};

use super::history::{OutFormat, lit, print_rows, rows};

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Pin the baseline of a run's series to that run, or of every series to its recent runs.
    Set(SetArgs),
    /// Return a series to the rolling baseline.
    Reset {
        /// The series id (`trackiq baseline show` lists them).
        #[arg(long)]
        series: String,
    },
    /// Show each series' baseline.
    Show {
        /// Only this series.
        #[arg(long)]
        series: Option<String>,
    /// Output format: a terminal table, JSON (an array of objects), or Markdown.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Pin the series of this run to this run (its id, as `bench` and `record` print it).
    #[arg(value_name = "RUN_ID", conflicts_with = "all")]
    run: Option<String>,
    /// Pin every series to its completed runs of the last --days days.
    #[arg(long)]
    all: bool,
    /// With --all: the days of runs that become each series' baseline.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// With --all: leave out series with fewer runs.
    #[arg(long, default_value_t = 3)]
    min_samples: usize,
    /// Why (kept with the pin).
    #[arg(long)]
    reason: Option<String>,
}

async fn publish(config: &Config, pins: &[BaselinePin]) -> anyhow::Result<()> {
    let bus = Bus::new(config.bus.clone());
    bus.check_reachable().await?;
    let producer = bus.producer()?;
    for p in pins {
        send(&producer, &bus.topics().summaries, p.series_id.as_bytes(), &registry().encode(p)?).await?;
    }
    Ok(())
}

/// Judged values of runs, per series: run -> metric -> value.
async fn run_values(config: &Config, filter: &str) -> anyhow::Result<BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>> {
    let sql = format!("SELECT DISTINCT series_id, run_id, metric, count, mean, p50 FROM summaries WHERE status = 'completed' AND {filter}");
    let mut out: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
    for r in rows(config, &sql).await? {
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let f = |k: &str| r.get(k).and_then(|v| v.as_f64());
        if let Some(mean) = f("mean") {
            // The figure the verdict judges: the median of a duration, else the mean.
            let count = r.get("count").and_then(|v| v.as_i64()).unwrap_or(1);
            let (value, _) = judged_value(&s("metric"), count, mean, f("p50").unwrap_or(mean));
            out.entry(s("series_id")).or_default().entry(s("run_id")).or_default().insert(s("metric"), value);
        }
    }
    Ok(out)
}

/// Pins `series_id` to `run_ids` (completed runs of that series) with `reason`; for the
/// dashboard's pin form. Says what was pinned.
pub async fn pin_runs(config: &Config, series_id: &str, run_ids: &[String], reason: &str) -> anyhow::Result<String> {
    if run_ids.is_empty() {
        bail!("choose at least one run to pin the baseline to");
    }
    let ids = run_ids.iter().map(|r| lit(r)).collect::<Vec<_>>().join(", ");
    let filter = format!("series_id = {} AND run_id IN ({ids})", lit(series_id));
    let values = run_values(config, &filter).await?;
    let Some(runs) = values.get(series_id) else {
        bail!("none of the chosen runs is a completed run of series {series_id}");
    };
    let runs: Vec<PinnedRun> = runs.iter().map(|(run_id, values)| PinnedRun { run_id: run_id.clone(), values: values.clone() }).collect();
    let n = runs.len();
    let reason = Some(reason.trim().to_string()).filter(|r| !r.is_empty());
    publish(config, &[BaselinePin { series_id: series_id.to_string(), runs, set_at: trackiq_schemas::now_us(), reason }]).await?;
    Ok(format!("pinned series {series_id} to {n} run(s)"))
}

pub async fn run(config: Config, cmd: BaselineCommand) -> anyhow::Result<ExitCode> {
    let now = trackiq_schemas::now_us();
    match cmd {
        BaselineCommand::Set(a) => {
            let filter = match (&a.run, a.all) {
                (Some(r), _) => format!("run_id = {}", lit(r)),
                (None, true) => format!("started_at >= now() - INTERVAL '{} days'", a.days),
                (None, false) => bail!("give a run id or --all"),
            };
            let mut pins = Vec::new();
            for (series_id, runs) in run_values(&config, &filter).await? {
                if a.all && runs.len() < a.min_samples {
                    continue;
                }
                let runs = runs.into_iter().map(|(run_id, values)| PinnedRun { run_id, values }).collect();
                pins.push(BaselinePin { series_id, runs, set_at: now, reason: a.reason.clone() });
            }
            if pins.is_empty() {
                bail!("no completed runs matched in the history");
            }
            publish(&config, &pins).await?;
            for p in &pins {
                println!("pinned series {} to {} run(s)", p.series_id, p.runs.len());
            }
        }
        BaselineCommand::Reset { series } => {
            publish(&config, &[BaselinePin { series_id: series.clone(), runs: Vec::new(), set_at: now, reason: Some("reset".into()) }]).await?;
            println!("series {series} uses the rolling baseline again");
        }
        BaselineCommand::Show { series, format } => {
            let filter = series.as_deref().map(|s| format!("WHERE series_id = {}", lit(s))).unwrap_or_default();
            let sql = format!(
                "SELECT b.series_id, CAST(b.set_at AS VARCHAR) AS set_at, count(DISTINCT b.run_id) AS runs, max(b.reason) AS reason \
                 FROM baselines b JOIN (SELECT series_id, max(set_at) AS latest FROM baselines {filter} GROUP BY series_id) l \
                 ON b.series_id = l.series_id AND b.set_at = l.latest GROUP BY b.series_id, b.set_at ORDER BY b.series_id"
            );
            let mut out = Vec::new();
            for r in rows(&config, &sql).await? {
                let s = |k: &str| r.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_default();
                let n = r.get("runs").and_then(|v| v.as_i64()).unwrap_or(0);
                let mode = if n == 0 { format!("rolling (last {} runs)", config.verdict.window) } else { format!("pinned to {n} run(s)") };
                out.push(vec![s("series_id"), mode, s("set_at"), s("reason")]);
            }
            print_rows(format, &["series", "baseline", "since", "reason"], out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

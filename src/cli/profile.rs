//! `trackiq profile`: the call-stack profile `bench cmd --profile` stored with a run, as a
//! flame graph (SVG, drawn by inferno) and a table of its heaviest functions; with
//! `--against RUN`, a differential flame graph (red: a bigger share than in RUN, blue:
//! smaller) and the functions whose share of samples changed most.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq::config::Config;
use trackiq_infra::DataStore;
use trackiq_sinks::report::flame::profile_path;
use trackiq_stats::profiles::{Folded, biggest_changes, parse, shares, to_text};

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The run whose profile to show.
    run_id: String,
    /// A baseline run with a profile: show what changed from it.
    #[arg(long)]
    against: Option<String>,
    /// Rows of the table.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Write the flame graph (differential with --against) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// Stores `folded` as the profile of `run_id`.
pub async fn store(config: &Config, run_id: &str, folded: &Folded) -> anyhow::Result<()> {
    let store = DataStore::open(&config.data)?;
    store.put(&profile_path(run_id), to_text(folded).into_bytes()).await.with_context(|| format!("storing the profile of run {run_id}"))?;
    // The report stage embeds the profile where it finds one; a verdict that came first
    // has a report without it: written again, now with it.
    if let Ok(json) = store.get(&trackiq_sinks::report::verdict_path(run_id)).await {
        let verdict: trackiq_schemas::Verdict = serde_json::from_slice(&json).with_context(|| format!("reading run {run_id}'s verdict"))?;
        trackiq_sinks::report::write_report(&store, verdict).await.with_context(|| format!("writing run {run_id}'s report with its profile"))?;
    }
    Ok(())
}

async fn load(store: &DataStore, run_id: &str) -> anyhow::Result<Folded> {
    let bytes = store.get(&profile_path(run_id)).await.with_context(|| format!("run {run_id} has no profile (record one with `bench cmd --profile`)"))?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

fn svg(before: Option<&Folded>, after: &Folded, title: &str) -> anyhow::Result<String> {
    Ok(match before {
        None => trackiq_sinks::report::flame::flame_svg(after, title)?,
        Some(b) => trackiq_sinks::report::flame::differential_svg(b, after, title)?,
    })
}

pub async fn run(config: Config, a: ProfileArgs) -> anyhow::Result<ExitCode> {
    let store = DataStore::open(&config.data)?;
    let after = load(&store, &a.run_id).await?;
    let sampled_ms = |f: &Folded| f.values().sum::<u64>() as f64 / 1e6;
    let mut t = Table::new();
    let before = match &a.against {
        None => {
            t.load_preset(UTF8_FULL_CONDENSED).set_header(["function", "self %", "total %"]);
            let mut rows: Vec<(String, (f64, f64))> = shares(&after).into_iter().collect();
            rows.sort_by(|x, y| y.1.0.total_cmp(&x.1.0).then_with(|| x.0.cmp(&y.0)));
            for (f, (s, tot)) in rows.into_iter().take(a.top) {
                t.add_row([f, format!("{s:.1}"), format!("{tot:.1}")]);
            }
            println!("run {} · {:.0} ms of CPU sampled", a.run_id, sampled_ms(&after));
            None
        }
        Some(base) => {
            let before = load(&store, base).await?;
            t.load_preset(UTF8_FULL_CONDENSED).set_header(["function", "self % before → after", "total % before → after"]);
            for c in biggest_changes(&before, &after, a.top) {
                t.add_row([c.function.clone(), format!("{:.1} → {:.1}", c.self_before, c.self_after), format!("{:.1} → {:.1}", c.total_before, c.total_after)]);
            }
            println!("run {} ({:.0} ms of CPU sampled) against run {base} ({:.0} ms): the functions whose share changed most", a.run_id, sampled_ms(&after), sampled_ms(&before));
            Some(before)
        }
    };
    println!("{t}");
    if let Some(path) = &a.svg {
        let title = match &a.against {
            Some(b) => format!("{} vs {}: red a bigger share, blue smaller", &a.run_id[..a.run_id.len().min(13)], &b[..b.len().min(13)]),
            None => format!("run {}", a.run_id),
        };
        std::fs::write(path, svg(before.as_ref(), &after, &title)?).with_context(|| format!("writing {}", path.display()))?;
        println!("flame graph: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

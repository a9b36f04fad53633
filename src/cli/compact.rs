//! `trackiq compact`: one compaction pass over the history (what the `compactor` role of
//! `trackiq up` does every `[compactor] interval_secs`), with a table of what it changed.

use std::process::ExitCode;

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use trackiq::config::Config;
use trackiq_infra::DataStore;
use trackiq_processors::compactor::Compactor;

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Only these tables (repeatable). Default: every table.
    #[arg(long = "table")]
    tables: Vec<String>,
}

pub async fn run(config: Config, a: CompactArgs) -> anyhow::Result<ExitCode> {
    let known = trackiq_schemas::arrow::TABLES;
    let tables: Vec<&str> = if a.tables.is_empty() {
        known.to_vec()
    } else {
        a.tables
            .iter()
            .map(|t| known.iter().copied().find(|k| k == t).ok_or_else(|| anyhow::anyhow!("unknown table `{t}`; tables are {}", known.join(", "))))
            .collect::<anyhow::Result<_>>()?
    };
    let store = DataStore::open(&config.data)?;
    let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
    bar.set_message(format!("compacting {store}"));
    let compactor = Compactor::new(store, config.compactor.clone());
    let started = std::time::Instant::now();
    let reports = compactor.pass(&tables, |table, date, inputs| bar.set_message(format!("{table} {date}: merged {inputs} objects"))).await?;
    bar.finish_and_clear();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["table", "objects before", "MiB before", "objects after", "MiB after", "merges", "rows rewritten", "recovered"]);
    let mib = |b: u64| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
    for r in &reports {
        t.add_row([
            r.table.clone(),
            r.objects_before.to_string(),
            mib(r.bytes_before),
            r.objects_after.to_string(),
            mib(r.bytes_after),
            r.merges.to_string(),
            r.rows.to_string(),
            r.recovered.to_string(),
        ]);
    }
    println!("{t}");
    println!("compaction pass took {:.1} s", started.elapsed().as_secs_f64());
    if reports.iter().any(|r| r.merges > 0) && config.compactor.retain_secs > 0 {
        println!(
            "merged objects stay on disk, unlisted, for [compactor] retain_secs = {} s (queries planned before the merge may still read them); a later pass deletes them",
            config.compactor.retain_secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

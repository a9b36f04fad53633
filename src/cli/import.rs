//! `trackiq import <format> PATH...`: other tools' results as runs, in bulk (backfill).
//! Every input is parsed whole first; a bad one is reported with its file and place and
//! nothing of it is sent, the others go on; runs already in the history (same content, same
//! run id) are skipped; the rest are sent oldest first. The exit code is the number of inputs
//! that failed (at most 100).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use trackiq::config::Config;
use trackiq_infra::Bus;
use trackiq_producers::identity::parse_labels;
use trackiq_producers::importers::{self, Format, ImportContext, ImportedRun, emit::send_runs, mtime_us, parse_time};

use super::history::archived_runs;

/// Runs listed one by one when an import sends no more.
const LIST_AT_MOST: usize = 20;

/// `--format` values: the importers' own names (`Format::name`).
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = std::iter::once(Format::Auto).chain(Format::ALL).map(Format::name).collect();
    clap::builder::PossibleValuesParser::new(names).map(|n: String| Format::from_name(&n).expect("a listed name"))
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Format of the inputs: `auto` (each file by its content), pytest-benchmark (--benchmark-json), criterion (a target/criterion directory), google-benchmark (JSON), hyperfine (--export-json), vllm (bench serve --save-result), bmf (Bencher Metric Format), autoperfpy (bench-inference result or collector report), tracker-csv (IPFS tracker rows), trackiq-json, nccl-tests.
    #[arg(value_parser = format_parser())]
    format: Format,
    /// Files, directories (their files, recursively; a criterion directory as one input) and globs (quoted, e.g. 'results/**/*.json').
    #[arg(required = true)]
    paths: Vec<String>,
    /// Time of every run, instead of the tool's own (or the file's, for tools that write none): RFC 3339, YYYY-MM-DD HH:MM:SS (UTC) or Unix seconds.
    #[arg(long)]
    at: Option<String>,
    /// Hardware name of the machine that ran the benchmarks (default: what the tool wrote, else this host).
    #[arg(long)]
    hardware: Option<String>,
    /// Workload name of every run (default: the benchmark's name in the file).
    #[arg(long, alias = "test")]
    workload: Option<String>,
    /// Version tag of the software measured, when the tool wrote none.
    #[arg(long)]
    version_tag: Option<String>,
    /// Git commit of the software measured, when the tool wrote none.
    #[arg(long)]
    git_commit: Option<String>,
    /// Label key=value on every run, part of the series identity (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Parse and report, send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One input: a file or criterion directory, and whether the user named it (a file found by
/// walking a directory that is no result is passed over; a named one is an error).
type Input = (PathBuf, bool);

/// A criterion file (`<benchmark>/new/sample.json`, ...) stands for its benchmark directory;
/// its previous measurements (`base/`, `change/`) and `report/` pages are no inputs.
fn criterion_benchmark(path: &Path) -> Option<Option<PathBuf>> {
    let parent = path.parent()?;
    match parent.file_name()?.to_str()? {
        "new" if parent.join("benchmark.json").is_file() => Some(parent.parent().map(Path::to_path_buf)),
        "base" | "change" | "report" if parent.parent()?.join("new/benchmark.json").is_file() || parent.file_name()? == "report" => Some(None),
        _ => None,
    }
}

/// Inputs named by the arguments: globs expanded, directories walked (criterion ones kept whole).
fn inputs(format: Format, paths: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        let matches: Vec<PathBuf> = if p.contains(['*', '?', '[']) {
            let found: Vec<PathBuf> = glob::glob(p).map_err(|e| anyhow::anyhow!("bad glob `{p}`: {e}"))?.filter_map(Result::ok).collect();
            if found.is_empty() {
                bail!("`{p}` matches no file");
            }
            found
        } else {
            let path = PathBuf::from(p);
            if !path.exists() {
                bail!("{p}: no such file or directory");
            }
            vec![path]
        };
        let globbed = matches.len() > 1 || p.contains(['*', '?', '[']);
        for m in &matches {
            match criterion_benchmark(m) {
                Some(Some(bench)) if m.is_file() => out.push((bench, true)),
                Some(None) if m.is_file() => {}
                _ => walk(format, m, !globbed || !m.is_dir(), &mut out)?,
            }
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|(p, _)| seen.insert(p.clone()));
    Ok(out)
}

fn walk(format: Format, path: &Path, named: bool, out: &mut Vec<Input>) -> anyhow::Result<()> {
    if !path.is_dir() {
        out.push((path.to_path_buf(), named));
        return Ok(());
    }
    // A criterion directory given as such is one input; found while walking, each benchmark
    // (a directory with `new/benchmark.json`) is one.
    if format == Format::Criterion || path.join("new/benchmark.json").is_file() {
        out.push((path.to_path_buf(), true));
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let skipped = |e: &PathBuf| e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.') || (n == "report" && path.join("report/index.html").is_file()));
    for e in entries.iter().filter(|e| !skipped(e)) {
        walk(format, e, false, out)?;
    }
    Ok(())
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(ProgressStyle::with_template(&format!("{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} {{eta}}")).expect("valid template"));
    pb
}

#[derive(Default)]
struct Tally {
    inputs: usize,
    failed: usize,
    runs: usize,
    skipped: usize,
    samples: usize,
}

pub async fn run(config: Config, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let format = a.format;
    let at_us = a.at.as_deref().map(|s| parse_time(s).ok_or_else(|| anyhow::anyhow!("--at `{s}` is not a time (RFC 3339, YYYY-MM-DD HH:MM:SS, or Unix seconds)"))).transpose()?;
    let base = ImportContext {
        at_us,
        hardware: a.hardware.clone(),
        workload: a.workload.clone(),
        version_tag: a.version_tag.clone(),
        git_commit: a.git_commit.clone(),
        labels: parse_labels(&a.labels)?,
        ..Default::default()
    };
    let files = inputs(format, &a.paths)?;
    let started = Instant::now();
    let pb = bar(files.len(), "parsing");
    let mut tally: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut runs: Vec<ImportedRun> = Vec::new();
    let mut passed_over: Vec<String> = Vec::new();
    for (path, named) in &files {
        let ctx = ImportContext { file: path.display().to_string(), file_time_us: mtime_us(path), ..base.clone() };
        // `auto` over a walked directory passes over files that are no results (sources, binaries, notes).
        let detected = match (format, path.is_file()) {
            (Format::Auto, true) => std::fs::read(path).map_err(|e| ctx.error("(file)", format!("cannot read: {e}"))).and_then(|c| importers::detect::detect(&c, &ctx)),
            // Directories left after walking are criterion benchmarks.
            (Format::Auto, false) => Ok(Format::Criterion),
            _ => Ok(format),
        };
        let name = detected.as_ref().map_or(format, |f| *f).name();
        let parsed = match detected {
            Err(_) if !named => {
                passed_over.push(path.display().to_string());
                pb.inc(1);
                continue;
            }
            Err(e) => Err(e),
            Ok(f) => importers::parse_path(f, path, &ctx),
        };
        let t = tally.entry(name).or_default();
        t.inputs += 1;
        match parsed {
            Ok(r) => runs.extend(r),
            Err(e) => {
                t.failed += 1;
                pb.suspend(|| eprintln!("error: {e} (nothing of this file was imported)"));
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if !passed_over.is_empty() {
        eprintln!("passed over {} files of the directories walked that are no results trackiq reads: {}{}", passed_over.len(), passed_over.iter().take(5).cloned().collect::<Vec<_>>().join(", "), if passed_over.len() > 5 { ", ..." } else { "" });
    }
    if a.workload.is_some() && runs.len() > 1 {
        eprintln!("note: --workload names all {} runs alike: benchmarks of one tool on one machine then share a series and are judged against each other", runs.len());
    }
    let parse_secs = started.elapsed().as_secs_f64();
    // The same run twice in one command (a file given twice, a copy): once.
    let mut ids = BTreeSet::new();
    runs.retain(|r| ids.insert(r.run.run_id.clone()));
    let known = if a.dry_run { Default::default() } else { archived_runs(&trackiq_infra::DataStore::open(&config.data)?, runs.iter().map(|r| r.run.run_id.as_str())).await? };
    let mut fresh: Vec<ImportedRun> = Vec::with_capacity(runs.len());
    for r in runs {
        let t = tally.entry(Format::from_name(&r.run.labels["imported_from"]).map_or("?", Format::name)).or_default();
        if known.contains_key(&r.run.run_id) {
            t.skipped += 1;
        } else {
            t.runs += 1;
            t.samples += r.samples.len();
            fresh.push(r);
        }
    }
    if !a.dry_run && !fresh.is_empty() {
        let pb = bar(fresh.len(), "sending");
        send_runs(&Bus::new(config.bus.clone()), &mut fresh, |n| pb.set_position(n as u64)).await?;
        pb.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    // A few runs are listed one by one (a CI job importing its result wants the run id).
    if fresh.len() <= LIST_AT_MOST {
        for r in &fresh {
            let verb = if a.dry_run { "would import" } else { "imported" };
            println!("{verb} run {} ({} {}, {} samples)", r.run.run_id, r.run.tool, r.run.workload.name, r.samples.len());
        }
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED).set_header(["format", "inputs", "failed", "runs imported", "already in the history", "samples"]);
    let mut total = Tally::default();
    for (name, t) in &tally {
        table.add_row([name.to_string(), t.inputs.to_string(), t.failed.to_string(), t.runs.to_string(), t.skipped.to_string(), t.samples.to_string()]);
        (total.inputs, total.failed, total.runs, total.skipped, total.samples) =
            (total.inputs + t.inputs, total.failed + t.failed, total.runs + t.runs, total.skipped + t.skipped, total.samples + t.samples);
    }
    println!("{table}");
    let verb = if a.dry_run { "parsed (dry run, nothing sent)" } else { "imported" };
    println!(
        "{verb}: {} runs, {} samples from {} of {} inputs in {secs:.2} s (parsing {parse_secs:.2} s): {:.0} runs/s, {:.0} samples/s",
        total.runs,
        total.samples,
        total.inputs - total.failed,
        total.inputs,
        total.runs as f64 / secs,
        total.samples as f64 / secs
    );
    if total.failed > 0 {
        eprintln!("{} of {} inputs failed (the exit code is their number, at most 100)", total.failed, total.inputs);
    }
    Ok(ExitCode::from(total.failed.min(100) as u8))
}

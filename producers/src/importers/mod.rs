//! `trackiq import <format> PATH...` and the HTTP ingest: results other tools wrote, as runs.
//!
//! A file is parsed whole into [`ImportedRun`]s before anything is sent (all of a file or
//! none of it); an error names the file, the line or JSON path, and what was expected
//! ([`ImportError`]). Each run keeps the tool's own time, commit, version and machine, and
//! its raw samples (rounds, sample times, repetitions, per-request latencies) so verdicts
//! and `compare` get significance. Run ids are derived from the content, so importing the
//! same file twice names the same runs and the importer skips those already in the history.
//!
//! # Layout
//! - [`node`] — JSON access that knows its path (`$.benchmarks[3].stats.data`)
//! - [`detect`] — `--format auto`: a file's format from its content
//! - one module per format: [`pytest`], [`criterion`], [`gbench`], [`hyperfine`], [`vllm`],
//!   [`bmf`], [`autoperfpy`], [`tracker_csv`], [`trackiq_json`], [`nccl`]
//! - [`emit`] — sending parsed runs: series in parallel, each series' runs in time order

pub mod autoperfpy;
pub mod bmf;
pub mod criterion;
pub mod detect;
// The fuzz targets compile the parsers without Kafka.
#[cfg(not(fuzzing))]
pub mod emit;
pub mod gbench;
pub mod hyperfine;
pub mod nccl;
pub mod node;
pub mod pytest;
pub mod tracker_csv;
pub mod trackiq_json;
pub mod vllm;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use trackiq_schemas::identity::{env_hash, series_id};
use trackiq_schemas::{Platform, RunStarted, RunStatus, Sample, VersionInfo, Workload};

/// A result format `trackiq import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Recognise each file by its content.
    Auto,
    /// pytest-benchmark's `--benchmark-json` file (or an autosaved one; per-round data when present).
    PytestBenchmark,
    /// A criterion output directory (`target/criterion`): every benchmark's `new/` files.
    Criterion,
    /// Google Benchmark's `--benchmark_format=json` / `--benchmark_out` file.
    GoogleBenchmark,
    /// hyperfine's `--export-json` file.
    Hyperfine,
    /// vLLM's `bench serve --save-result` JSON (per-request data with `--save-detailed`).
    Vllm,
    /// Bencher Metric Format JSON.
    Bmf,
    /// AutoPerfPy's bench-inference result or its collector report (JSON or CSV).
    Autoperfpy,
    /// The IPFS performance tracker's rows as CSV, one result per row.
    TrackerCsv,
    /// A TrackiqResult JSON written by the original TrackIQ tools.
    TrackiqJson,
    /// nccl-tests output: the text table or the `-J` JSON file.
    NcclTests,
}

impl Format {
    /// Every concrete format, in the order `auto` tries them.
    pub const ALL: [Format; 10] = [
        Format::TrackiqJson,
        Format::PytestBenchmark,
        Format::GoogleBenchmark,
        Format::Hyperfine,
        Format::Vllm,
        Format::Autoperfpy,
        Format::Bmf,
        Format::TrackerCsv,
        Format::NcclTests,
        Format::Criterion,
    ];

    /// The name on the command line and in the `format` query parameter.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::PytestBenchmark => "pytest-benchmark",
            Format::Criterion => "criterion",
            Format::GoogleBenchmark => "google-benchmark",
            Format::Hyperfine => "hyperfine",
            Format::Vllm => "vllm",
            Format::Bmf => "bmf",
            Format::Autoperfpy => "autoperfpy",
            Format::TrackerCsv => "tracker-csv",
            Format::TrackiqJson => "trackiq-json",
            Format::NcclTests => "nccl-tests",
        }
    }

    /// The format named `s` (as [`Format::name`] writes it).
    pub fn from_name(s: &str) -> Option<Format> {
        std::iter::once(Format::Auto).chain(Format::ALL).find(|f| f.name() == s)
    }
}

/// What was wrong with an input, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {at}: {what}")]
pub struct ImportError {
    /// The file (or `request body`).
    pub file: String,
    /// Where in it: `line 3`, `$.benchmarks[2].stats.data[5]`, `(file)`.
    pub at: String,
    /// What was found and what was expected.
    pub what: String,
}

/// Where an import's input came from, and what the user says about it.
#[derive(Debug, Clone, Default)]
pub struct ImportContext {
    /// The file's name as shown in errors and stored as the `imported_from` label's file.
    pub file: String,
    /// When the tool wrote no time of its own: the file's modification time (µs).
    pub file_time_us: Option<i64>,
    /// `--at`: overrides every run's time (µs).
    pub at_us: Option<i64>,
    /// `--hardware`: overrides the machine name the tool wrote (or that it did not write).
    pub hardware: Option<String>,
    /// `--workload`: overrides the workload name of every run of the file.
    pub workload: Option<String>,
    /// `--version-tag` and `--git-commit` when the tool wrote none.
    pub version_tag: Option<String>,
    pub git_commit: Option<String>,
    /// `--label k=v`, added to every run.
    pub labels: BTreeMap<String, String>,
    /// The input came from another machine (an HTTP body): a format that records no machine
    /// gets none (`unknown` unless `hardware` names it), not this host's platform.
    pub remote: bool,
}

impl ImportContext {
    /// An error at `at` in this input.
    pub fn error(&self, at: impl Into<String>, what: impl Into<String>) -> ImportError {
        ImportError { file: self.file.clone(), at: at.into(), what: what.into() }
    }

    /// What the user said about every run, as part of the run ids: the same file imported
    /// with another `--hardware` or label is other runs (of another series), not the same ones.
    fn overrides(&self) -> String {
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let parts = [self.at_us.map(|t| t.to_string()), self.hardware.clone(), self.workload.clone(), self.version_tag.clone(), self.git_commit.clone(), Some(labels.join(","))];
        parts.iter().map(|p| p.as_deref().unwrap_or("")).fold(String::new(), |acc, p| acc + "\u{1f}" + p)
    }

    /// The machine of a format that records none: this host for a local file (the importing
    /// machine usually ran the benchmark), nothing for a remote input.
    pub fn machine(&self) -> Platform {
        if self.remote { Platform::default() } else { detect::this_host() }
    }

    /// The run's time: `--at`, else the tool's, else the file's.
    fn time(&self, tool_time: Option<i64>) -> Result<i64, ImportError> {
        self.at_us.or(tool_time).or(self.file_time_us).ok_or_else(|| {
            self.error("(file)", "the tool wrote no time and the input has no modification time: give --at TIMESTAMP")
        })
    }
}

/// One run read from a file, ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedRun {
    pub run: RunStarted,
    pub samples: Vec<Sample>,
    pub status: RunStatus,
    pub error: Option<String>,
    /// When the run ended (µs); the start when the tool did not say.
    pub ended_at: i64,
}

/// What a format module knows of one run before the shared rules (time, overrides, ids) apply.
#[derive(Debug, Clone, Default)]
pub struct RunDraft {
    /// Tool that produced the result (`pytest-benchmark`, `criterion`, ...).
    pub tool: String,
    pub tool_version: String,
    /// The tool's own time of the run (µs), if it wrote one.
    pub time_us: Option<i64>,
    /// Duration of the run if the tool wrote one (µs).
    pub duration_us: Option<i64>,
    pub platform: Platform,
    pub workload: Workload,
    pub version: VersionInfo,
    pub labels: BTreeMap<String, String>,
    /// Samples with `ts_us` as an offset from the run's start (µs).
    pub samples: Vec<Sample>,
    pub failed: Option<String>,
    /// Distinguishes this run from the file's others (benchmark name): part of the run id.
    pub key: String,
}

impl RunDraft {
    pub fn new(tool: &str, key: impl Into<String>) -> Self {
        RunDraft { tool: tool.to_string(), key: key.into(), ..Default::default() }
    }

    /// Adds a sample `offset_us` after the run's start.
    pub fn sample(&mut self, metric: &str, unit: &str, value: f64, offset_us: i64, step: Option<i64>) {
        self.samples.push(Sample { ts_us: offset_us, metric: metric.to_string(), value, unit: unit.to_string(), rank: None, step });
    }
}

/// A run id from the content: a hash of the format, the file's content and the run's key,
/// so the same file imports as the same run ids. When the run's time is the tool's own (or
/// `--at`), the id has the UUID v7 layout with that time in its first 48 bits (ids sort by
/// time like the pipeline's own); when the time is only the file's (a copy has another), the
/// id is all hash (UUID v8), so a copy of a file is the same runs too.
pub fn content_run_id(format: Format, content: &[u8], key: &str, time_us: Option<i64>) -> String {
    let digest = Sha256::new().chain_update(format.name()).chain_update([0]).chain_update(content).chain_update([0]).chain_update(key).finalize();
    match time_us {
        Some(t) => {
            let mut random = [0u8; 10];
            random.copy_from_slice(&digest[..10]);
            uuid::Builder::from_unix_timestamp_millis((t.max(0) / 1000) as u64, &random).into_uuid().to_string()
        }
        None => {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
        }
    }
}

/// Applies the shared rules to a format's drafts: times (`--at`, tool, file), overrides, the
/// `imported_from` label, series and content-derived run ids, and sample checks.
pub fn finish(format: Format, content: &[u8], ctx: &ImportContext, drafts: Vec<RunDraft>) -> Result<Vec<ImportedRun>, ImportError> {
    if drafts.is_empty() {
        return Err(ctx.error("(file)", format!("no results in this {} file", format.name())));
    }
    let mut runs = Vec::with_capacity(drafts.len());
    for d in drafts {
        // A file's modification time is when the tool finished: the run started its duration before.
        let from_file = ctx.at_us.or(d.time_us).is_none();
        let start = ctx.time(d.time_us)? - if from_file { d.duration_us.unwrap_or(0) } else { 0 };
        let mut platform = d.platform;
        if let Some(h) = &ctx.hardware {
            platform.hardware_name = h.clone();
        }
        if platform.hardware_name.is_empty() {
            platform.hardware_name = "unknown".into();
        }
        let mut workload = d.workload;
        if let Some(w) = &ctx.workload {
            workload.name = w.clone();
        }
        if workload.kind.is_empty() {
            workload.kind = "benchmark".into();
        }
        let mut version = d.version;
        version.version_tag = version.version_tag.or_else(|| ctx.version_tag.clone());
        version.git_commit = version.git_commit.or_else(|| ctx.git_commit.clone());
        if version.env_hash.is_empty() {
            version.env_hash = env_hash(&platform);
        }
        let mut labels = d.labels;
        labels.extend(ctx.labels.clone());
        labels.insert("imported_from".into(), format.name().into());
        let mut run = RunStarted {
            run_id: content_run_id(format, content, &format!("{}{}", d.key, ctx.overrides()), ctx.at_us.or(d.time_us)),
            tool: d.tool,
            tool_version: d.tool_version,
            timestamp: start,
            platform,
            workload,
            version,
            labels,
            series_id: String::new(),
        };
        run.series_id = series_id(&run);
        let mut samples = d.samples;
        for (i, s) in samples.iter_mut().enumerate() {
            trackiq_schemas::metrics::validate_value(&s.metric, s.value).map_err(|e| ctx.error(format!("{} (sample {i})", d.key), e))?;
            s.ts_us += start;
        }
        let last = samples.iter().map(|s| s.ts_us).max().unwrap_or(start);
        let ended_at = d.duration_us.map_or(last, |u| start + u).max(start);
        let (status, error) = match d.failed {
            Some(e) => (RunStatus::Failed, Some(e)),
            None => (RunStatus::Completed, None),
        };
        runs.push(ImportedRun { run, samples, status, error, ended_at });
    }
    Ok(runs)
}

/// Parses one input of a known format (not `auto`) into runs.
pub fn parse(format: Format, content: &[u8], ctx: &ImportContext) -> Result<Vec<ImportedRun>, ImportError> {
    let drafts = match format {
        Format::Auto => return parse(detect::detect(content, ctx)?, content, ctx),
        Format::PytestBenchmark => pytest::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::GoogleBenchmark => gbench::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::Hyperfine => hyperfine::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::Vllm => vllm::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::Bmf => bmf::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::Autoperfpy => autoperfpy::parse(content, ctx)?,
        Format::TrackerCsv => return tracker_csv::parse(content, ctx),
        Format::TrackiqJson => trackiq_json::parse(&node::parse_json(content, ctx)?, ctx)?,
        Format::NcclTests => nccl::parse(content, ctx)?,
        Format::Criterion => return Err(ctx.error("(file)", "criterion results are a directory (target/criterion): give the directory")),
    };
    finish(format, content, ctx, drafts)
}

/// Parses a path: a criterion directory, or a file of `format` (`auto`: by content).
pub fn parse_path(format: Format, path: &Path, ctx: &ImportContext) -> Result<Vec<ImportedRun>, ImportError> {
    if path.is_dir() {
        return criterion::parse_dir(path, ctx);
    }
    let content = std::fs::read(path).map_err(|e| ctx.error("(file)", format!("cannot read: {e}")))?;
    parse(format, &content, ctx)
}

/// The modification time of a file in µs since the epoch.
pub fn mtime_us(path: &Path) -> Option<i64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_micros() as i64)
}

/// Parses a time the tools write: RFC 3339, `2026-12-05T11:20:00[.f]` or `2026-12-05 11:20:00[.f]`
/// (naive: UTC), `20261205-112000` (vLLM), or a Unix time in seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y%m%d-%H%M%S", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
            return Some(t.timestamp_micros());
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0).map(|x| (x * 1e6) as i64)
}

#[cfg(test)]
mod tests;

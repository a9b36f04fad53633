//! The command line a `bench cmd` run timed, kept in the data store beside its report
//! (`commands/<run_id>.json`: the run event's workload name is a label, not a command), so
//! that `trackiq confirm --run RUN_ID` can time it again against its series' baseline. Kept
//! by the producer beside the history it can reach (as profiles are); carrying it in the run
//! event instead would reach the history from any producer (a schema change not made yet).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use trackiq::config::Config;
use trackiq_infra::DataStore;

/// Earlier runs of a series looked at for the baseline's command line.
const BASELINE_CANDIDATES: usize = 50;

/// A command line and the directory it ran in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCommand {
    pub argv: Vec<String>,
    pub dir: PathBuf,
}

impl RecordedCommand {
    /// `argv` as run from the current directory.
    pub fn here(argv: Vec<String>) -> anyhow::Result<Self> {
        Ok(RecordedCommand { argv, dir: std::env::current_dir().context("reading the current directory")? })
    }

    /// The words, shell-like, for messages.
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

fn command_path(run_id: &str) -> String {
    format!("commands/{run_id}.json")
}

fn plain_id(run_id: &str) -> anyhow::Result<()> {
    if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("`{run_id}` is not a run id (letters, digits, dashes and underscores)");
    }
    Ok(())
}

/// Keeps the command line run `run_id` timed, where this producer has the history: a data
/// URL given (flag, environment or file), or the default directory already there (a `trackiq
/// up` beside it). A producer with only the broker (a fleet machine) keeps none and creates no
/// stray `./trackiq-data`; a store that fails (an outage) costs the run nothing but this, said
/// on stderr.
pub async fn keep(config: &Config, run_id: &str, argv: &[String]) {
    let default_dir = config.data.strip_prefix("file://").unwrap_or(&config.data);
    if config.data == trackiq::config::DEFAULT_DATA && !Path::new(default_dir).is_dir() {
        return;
    }
    let kept = async {
        let command = RecordedCommand::here(argv.to_vec())?;
        let store = DataStore::open(&config.data)?;
        store.put(&command_path(run_id), serde_json::to_vec(&command)?).await?;
        anyhow::Ok(())
    };
    if let Err(e) = kept.await {
        eprintln!("warning: run {run_id}'s command line was not kept (`confirm --run {run_id}` will not find it): {e:#}");
    }
}

async fn load(store: &DataStore, run_id: &str) -> Option<RecordedCommand> {
    serde_json::from_slice(&store.get(&command_path(run_id)).await.ok()?).ok()
}

/// Whether `dir` still exists here, so that the command can be run again.
fn runnable(c: &RecordedCommand) -> bool {
    Path::new(&c.dir).is_dir()
}

/// The commands of `run_id` (the candidate) and of its baseline: the latest earlier run of
/// its series with a recorded command line that differs (the same line would time the
/// candidate's build twice). Returns (baseline run, baseline, candidate).
pub async fn pair(config: &Config, run_id: &str) -> anyhow::Result<(String, RecordedCommand, RecordedCommand)> {
    plain_id(run_id)?;
    let store = DataStore::open(&config.data)?;
    let Some(candidate) = load(&store, run_id).await else {
        bail!("run {run_id} has no recorded command line: only `trackiq bench cmd` runs keep one; give the commands: `confirm --baseline -- CMD_A... --candidate -- CMD_B...`");
    };
    if !runnable(&candidate) {
        bail!("run {run_id} ran `{}` in {}, which is not on this machine", candidate.line(), candidate.dir.display());
    }
    let earlier = trackiq_sinks::report::flame::earlier_runs(&store, run_id, BASELINE_CANDIDATES).await?;
    let mut same = 0;
    for id in &earlier {
        match load(&store, id).await {
            Some(c) if c == candidate => same += 1,
            Some(c) if runnable(&c) => return Ok((id.clone(), c, candidate)),
            _ => {}
        }
    }
    if same > 0 {
        bail!(
            "the {same} earlier runs of run {run_id}'s series with a recorded command ran the same line, `{}`: the build they timed is gone; \
             give the baseline's command: `confirm --baseline -- CMD_A... --candidate -- {}`",
            candidate.line(),
            candidate.line()
        );
    }
    bail!("no earlier run of run {run_id}'s series has a recorded command line runnable here ({} earlier runs looked at)", earlier.len())
}

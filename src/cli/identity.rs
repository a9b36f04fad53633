//! Identity flags shared by every producer command.

use clap::Args;
use trackiq_producers::identity::{RunIdentity, parse_labels};

#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Workload name (what was run), e.g. resnet50.
    #[arg(long)]
    pub workload: Option<String>,
    /// Workload type: inference, training, serving, command, ...
    #[arg(long)]
    pub workload_type: Option<String>,
    /// Hardware name of the machine under test (default: host name).
    #[arg(long)]
    pub hardware: Option<String>,
    /// Batch size: items one iteration processes (`bench compute` and `cluster` run batches of this size; default 32).
    #[arg(long)]
    pub batch_size: Option<i64>,
    /// Numeric precision, e.g. fp16.
    #[arg(long)]
    pub precision: Option<String>,
    /// Version tag of the software under test, e.g. v1.4.0.
    #[arg(long)]
    pub version_tag: Option<String>,
    /// Group of runs this one belongs to, e.g. a CI pipeline id.
    #[arg(long)]
    pub run_group: Option<String>,
    /// Git commit of the software under test (default: HEAD of the working directory).
    #[arg(long)]
    pub git_commit: Option<String>,
    /// Label key=value, part of the series identity (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
}

impl IdentityArgs {
    /// The batch a workload that runs batches itself runs: `--batch-size`, else `default`.
    pub fn batch_or(&self, default: usize) -> anyhow::Result<usize> {
        match self.batch_size {
            None => Ok(default),
            Some(b) if b > 0 => Ok(b as usize),
            Some(b) => anyhow::bail!("--batch-size must be at least 1, not {b}"),
        }
    }

    pub fn to_identity(&self, default_workload: &str, default_type: &str) -> anyhow::Result<RunIdentity> {
        Ok(RunIdentity {
            workload: self.workload.clone().unwrap_or_else(|| default_workload.to_string()),
            workload_type: self.workload_type.clone().unwrap_or_else(|| default_type.to_string()),
            hardware: self.hardware.clone(),
            batch_size: self.batch_size,
            precision: self.precision.clone(),
            version_tag: self.version_tag.clone(),
            run_group: self.run_group.clone(),
            git_commit: self.git_commit.clone(),
            labels: parse_labels(&self.labels)?,
            ..Default::default()
        })
    }
}

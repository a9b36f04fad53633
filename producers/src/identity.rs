//! Who ran what where: the identity of a run, with the platform detected from this machine
//! and the git commit detected from the working directory.

use std::collections::BTreeMap;

use trackiq_schemas::identity::{env_hash, series_id};
use trackiq_schemas::{Platform, RunStarted, VersionInfo, Workload};

use crate::error::ProducerError;

/// What the user says about a run (the identity flags shared by every producer command).
#[derive(Debug, Clone, Default)]
pub struct RunIdentity {
    pub workload: String,
    pub workload_type: String,
    /// Hardware name; the host name when not given.
    pub hardware: Option<String>,
    pub batch_size: Option<i64>,
    pub precision: Option<String>,
    pub sequence_length: Option<i64>,
    pub backend: Option<String>,
    pub steps: Option<i64>,
    pub version_tag: Option<String>,
    pub run_group: Option<String>,
    /// Commit of the software under test; detected from the working directory when `None`.
    pub git_commit: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Parses `key=value` labels.
pub fn parse_labels(args: &[String]) -> Result<BTreeMap<String, String>, ProducerError> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(ProducerError::LabelArg { arg: a.clone() }),
        })
        .collect()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The platform of this machine, read from the OS.
pub fn detect_platform(hardware: Option<&str>) -> Platform {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into());
    Platform {
        hardware_name: hardware.map(str::to_string).unwrap_or(host),
        os,
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cpu,
        gpus: Vec::new(),
        driver: None,
        framework: None,
        framework_version: None,
    }
}

/// HEAD of the git repository containing the working directory, if any.
pub fn detect_git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).stderr(std::process::Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

/// Builds the `RunStarted` of a new run (UUIDv7 run id, series id and env hash computed).
pub fn run_started(tool: &str, id: &RunIdentity) -> RunStarted {
    let platform = detect_platform(id.hardware.as_deref());
    let mut run = RunStarted {
        run_id: uuid::Uuid::now_v7().to_string(),
        tool: tool.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: trackiq_schemas::now_us(),
        workload: Workload {
            name: id.workload.clone(),
            kind: id.workload_type.clone(),
            batch_size: id.batch_size,
            precision: id.precision.clone(),
            sequence_length: id.sequence_length,
            backend: id.backend.clone(),
            steps: id.steps,
        },
        version: VersionInfo {
            git_commit: id.git_commit.clone().or_else(detect_git_commit),
            version_tag: id.version_tag.clone(),
            env_hash: env_hash(&platform),
            run_group: id.run_group.clone(),
        },
        platform,
        labels: id.labels.clone(),
        series_id: String::new(),
    };
    run.series_id = series_id(&run);
    run
}

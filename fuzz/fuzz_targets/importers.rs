// The importers' source, laid out at the crate root as in `trackiq-producers` (this file is
// `include!`d by the importer targets, so `crate::cluster::nccl` resolves as there): the real
// `producers/src/importers/` and `producers/src/cluster/nccl.rs` (via `#[path]`), built with
// `--cfg fuzzing`, which leaves out the Kafka side (`importers::emit`); a stand-in for the
// host probe that formats without a recorded machine call. The parse functions fuzzed are
// the files' own, unchanged.

#[path = "../../producers/src/importers/mod.rs"]
pub mod importers;

#[path = "../../producers/src/cluster/nccl.rs"]
pub mod nccl;

/// `crate::cluster::nccl`, as the importers name it.
pub mod cluster {
    pub use crate::nccl;
}

pub mod identity {
    /// Stand-in for the host probe (/etc/os-release, /proc): a fixed platform.
    pub fn detect_platform(hardware: Option<&str>) -> trackiq_schemas::Platform {
        trackiq_schemas::Platform { hardware_name: hardware.unwrap_or("fuzz-host").to_string(), ..Default::default() }
    }
}

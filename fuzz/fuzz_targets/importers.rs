// The importers' source, laid out at the crate root as in `trackiq-producers` (this file is
// `include!`d by the importer targets, so `crate::emitter` resolves as there): the real
// `producers/src/import.rs` and `producers/src/cluster/nccl.rs` (via `#[path]`), with small
// stand-ins for what their Kafka-emitting functions name (`RunEmitter`, `ProducerError`,
// `detect_platform`), so that fuzzing does not build rdkafka and DataFusion. The parse
// functions fuzzed are the files' own, unchanged.

#[path = "../../producers/src/import.rs"]
pub mod import;

#[path = "../../producers/src/cluster/nccl.rs"]
pub mod nccl;

/// `crate::cluster::nccl`, as import.rs names it.
pub mod cluster {
    pub use crate::nccl;
}

pub mod error {
    /// Stand-in for `trackiq_producers::ProducerError`: the one variant import.rs builds.
    #[derive(Debug)]
    pub enum ProducerError {
        Usage(String),
    }
}

pub mod identity {
    /// Stand-in for the host probe (only `import_nccl_tests` calls it).
    pub fn detect_platform(_hardware: Option<&str>) -> trackiq_schemas::Platform {
        unreachable!("the fuzz targets call no emitting function")
    }
}

pub mod emitter {
    use trackiq_schemas::{RunFinished, RunStarted, RunStatus, Sample};

    use crate::error::ProducerError;

    /// Not a unit struct: import.rs builds it with `Batching::default()`.
    #[derive(Default)]
    pub struct Batching {
        _private: (),
    }

    pub struct RunEmitter;

    impl RunEmitter {
        pub async fn start(_bus: &trackiq_infra::Bus, _run: RunStarted, _batching: Batching) -> Result<Self, ProducerError> {
            unreachable!("the fuzz targets call no emitting function")
        }
        pub async fn push(&mut self, _sample: Sample) -> Result<(), ProducerError> {
            unreachable!("the fuzz targets call no emitting function")
        }
        pub async fn finish(self, _status: RunStatus, _error: Option<String>) -> Result<RunFinished, ProducerError> {
            unreachable!("the fuzz targets call no emitting function")
        }
    }
}

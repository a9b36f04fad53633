//! Stands in for `trackiq_infra` where the importers' source is compiled into the fuzz
//! targets: only the name of the Kafka handle that `import.rs`'s emitting functions take.

/// The Kafka client handle; never constructed here.
pub struct Bus;

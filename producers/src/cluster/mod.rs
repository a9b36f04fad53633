//! Distributed-training building blocks (issue: cluster producer). So far: the ring
//! all-reduce over TCP between real ranks, nccl-tests bandwidth definitions, and the
//! nccl-tests text-output parser. The worker/coordinator processes, training loop, fault
//! injection and detectors build on these.

pub mod nccl;
pub mod ring;

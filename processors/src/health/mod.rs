//! Cluster health of distributed-training runs: streaming detectors while the samples
//! arrive ([`detectors`]), the health part of the run summary ([`summary`]), and the detectors
//! scored as a classifier over many runs ([`scoring`], for `trackiq bench faults`). The
//! aggregator owns one [`ClusterRun`] per open run that has `cluster.*` samples.

pub mod detectors;
pub mod scoring;
pub mod summary;

#[cfg(test)]
mod tests;

use trackiq_schemas::{ClusterHealth, DerivedMetric, Detection, RunStarted, Sample};

pub use detectors::{ClusterMonitor, DetectorConfig};

/// Metric prefix of the samples cluster runs emit.
pub const CLUSTER_PREFIX: &str = "cluster.";

/// Per-run cluster state kept by the aggregator.
pub struct ClusterRun {
    monitor: ClusterMonitor,
    records: Vec<Sample>,
    detections: Vec<Detection>,
}

impl ClusterRun {
    pub fn new(cfg: DetectorConfig, run_id: &str) -> Self {
        ClusterRun { monitor: ClusterMonitor::new(cfg, run_id), records: Vec::new(), detections: Vec::new() }
    }

    /// World size and steps from the run's identity (label `world_size`, workload steps).
    pub fn started(&mut self, run: &RunStarted) {
        let world = run.labels.get("world_size").and_then(|w| w.parse().ok());
        self.monitor.set_shape(world, run.workload.steps);
    }

    /// Feeds a sample; returns new detections.
    pub fn observe(&mut self, s: &Sample, now_us: i64) -> Vec<Detection> {
        self.records.push(s.clone());
        let found = self.monitor.observe(s, now_us);
        self.detections.extend(found.iter().cloned());
        found
    }

    /// The run is complete (ended at `ended_at`); returns last detections.
    pub fn finish(&mut self, ended_at: i64, now_us: i64) -> Vec<Detection> {
        let found = self.monitor.finish(ended_at, now_us);
        self.detections.extend(found.iter().cloned());
        found
    }

    /// The health record and derived figures of the summary.
    pub fn health(&self, batch: Option<i64>) -> Option<(ClusterHealth, Vec<DerivedMetric>)> {
        summary::cluster_health(&self.records, &self.detections, batch)
    }
}

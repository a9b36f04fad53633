//! What a scrape or an OTLP request says about one target at one time, in one shape for both.

use std::collections::BTreeMap;

use super::histogram::Buckets;

/// One series' value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A value now (a gauge, an untyped sample).
    Gauge(f64),
    /// A counter since its start (Prometheus counters, OTLP cumulative sums): a rate needs the
    /// previous reading.
    Cumulative(f64),
    /// An increase over `over_us` (OTLP delta sums).
    Delta { value: f64, over_us: i64 },
    /// A histogram since its start (Prometheus, OTLP cumulative): an interval's observations
    /// are the difference with the previous reading.
    CumulativeHistogram(Buckets),
    /// The observations of one interval (OTLP delta histograms).
    DeltaHistogram(Buckets),
}

/// One series of a target: its name as the exporter wrote it, its labels, and its reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub reading: Reading,
}

/// Who was read: the series identity every window of it shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The scrape job, or the OTLP resource's `service.name`: the workload.
    pub job: String,
    /// `host:port`, or the resource's host: the hardware name.
    pub instance: String,
    /// The job's static labels and the resource's other attributes: part of the series.
    pub labels: BTreeMap<String, String>,
}

/// Everything read from one target at `at_us`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub target: Target,
    pub at_us: i64,
    /// The software version the target reported (the version label or attribute), if any.
    pub version: Option<String>,
    pub points: Vec<Point>,
}

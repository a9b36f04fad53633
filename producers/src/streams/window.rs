//! Windows: how a continuous stream becomes runs trackiq can judge.
//!
//! One target's readings over a **window** (aligned to the wall clock: every `window` from the
//! epoch, so all hosts' windows line up) are one run of the target's series (job, instance,
//! labels). A **deploy** is a change of the version the target reports: it closes the window
//! at once, and the new version's windows carry the new `version_tag`, so the first of them is
//! judged against the previous version's windows by the same significance rules as any run.
//!
//! What a window's samples are, per reading:
//! - gauges: their values (DCGM's per GPU, with the GPU index as the rank);
//! - counters: rates (increase per second between two readings; a counter that went down was
//!   reset and counts from zero);
//! - histograms: each interval's median and 99th percentile from the bucket differences
//!   ([`super::histogram`]: off by at most the width of the bucket they fall in), summed over
//!   the family's label sets (every model of a server);
//! - node_exporter: CPU busy share from `node_cpu_seconds_total` (all CPUs, idle and iowait
//!   as idle) and memory in use from `MemTotal`/`MemAvailable`.
//!
//! Unknown series are kept (as `scraped.<name>`, telemetry) only when they carry no labels of
//! their own: one value per target and reading, not a series per label set.
//!
//! The open window lives in memory: a crash loses at most each target's open window (a gap,
//! never a duplicate: a window's run id comes from its target, start and version). A window
//! that fills up (`max_samples`) closes early, so memory stays bounded without dropping data.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use trackiq_schemas::identity::{env_hash, series_id};
use trackiq_schemas::{Platform, RunStarted, RunStatus, Sample, VersionInfo, Workload};

use super::histogram::Buckets;
use super::mapping;
use super::reading::{Observation, Point, Reading, Target};
use crate::importers::ImportedRun;

/// The rules every window of one source follows.
#[derive(Debug, Clone)]
pub struct WindowRules {
    /// Length of a window (µs).
    pub window_us: i64,
    /// Samples after which a window closes early.
    pub max_samples: usize,
    /// The tool the runs name: `prometheus` or `otlp` (also the `source` label).
    pub tool: &'static str,
}

/// A window being filled.
#[derive(Debug)]
struct Open {
    start_us: i64,
    end_us: i64,
    version: Option<String>,
    run_id: String,
    samples: Vec<Sample>,
    readings: i64,
    last_failure: Option<String>,
}

#[derive(Debug, Default)]
struct TargetState {
    /// The last cumulative reading of each series (by name and labels) and when it was read.
    previous: HashMap<(String, BTreeMap<String, String>), (i64, Reading)>,
    open: Option<Open>,
    /// Failed reads in a row.
    failures: u32,
}

/// Every target's open window.
#[derive(Debug)]
pub struct Windows {
    rules: WindowRules,
    targets: HashMap<Target, TargetState>,
}

impl Windows {
    pub fn new(rules: WindowRules) -> Self {
        Windows { rules, targets: HashMap::new() }
    }

    /// Targets with state.
    pub fn targets(&self) -> usize {
        self.targets.len()
    }

    /// Samples held in open windows.
    pub fn open_samples(&self) -> usize {
        self.targets.values().filter_map(|t| t.open.as_ref()).map(|o| o.samples.len()).sum()
    }

    /// Adds a reading; returns the windows it closed.
    pub fn observe(&mut self, obs: Observation) -> Vec<ImportedRun> {
        let rules = self.rules.clone();
        let state = self.targets.entry(obs.target.clone()).or_default();
        state.failures = 0;
        let mut closed = Vec::new();
        let due = |o: &Open| obs.at_us >= o.end_us || o.version != obs.version || o.samples.len() >= rules.max_samples;
        if state.open.as_ref().is_some_and(due) {
            closed.extend(close(&rules, &obs.target, state.open.take(), obs.at_us));
        }
        let open = state.open.get_or_insert_with(|| open_window(&rules, &obs.target, obs.at_us, obs.version.clone()));
        let step = open.readings;
        open.readings += 1;
        let samples = to_samples(&mut state.previous, &obs, step);
        state.open.as_mut().expect("opened above").samples.extend(samples);
        closed
    }

    /// A target did not answer at `at_us`. Returns the open window's run id when this makes
    /// `down_after` failures in a row (the moment to raise `scrape_failed`).
    pub fn failed(&mut self, target: &Target, at_us: i64, reason: &str, down_after: u32) -> (Vec<ImportedRun>, Option<String>) {
        let rules = self.rules.clone();
        let state = self.targets.entry(target.clone()).or_default();
        let mut closed = Vec::new();
        if state.open.as_ref().is_some_and(|o| at_us >= o.end_us) {
            closed.extend(close(&rules, target, state.open.take(), at_us));
        }
        let version = state.open.as_ref().and_then(|o| o.version.clone());
        let open = state.open.get_or_insert_with(|| open_window(&rules, target, at_us, version));
        open.last_failure = Some(reason.to_string());
        state.failures += 1;
        let raise = (state.failures == down_after).then(|| open.run_id.clone());
        (closed, raise)
    }

    /// Closes the windows whose end has passed at `now_us` (targets that went quiet).
    pub fn close_due(&mut self, now_us: i64) -> Vec<ImportedRun> {
        let rules = self.rules.clone();
        let mut closed = Vec::new();
        for (target, state) in &mut self.targets {
            if state.open.as_ref().is_some_and(|o| now_us >= o.end_us) {
                closed.extend(close(&rules, target, state.open.take(), now_us));
            }
        }
        closed
    }

    /// Closes every open window (on shutdown: what was read so far is a short run).
    pub fn close_all(&mut self, now_us: i64) -> Vec<ImportedRun> {
        let rules = self.rules.clone();
        self.targets.iter_mut().filter_map(|(t, s)| close(&rules, t, s.open.take(), now_us)).collect()
    }
}

fn open_window(rules: &WindowRules, target: &Target, at_us: i64, version: Option<String>) -> Open {
    let w = rules.window_us.max(1);
    let end_us = (at_us.div_euclid(w) + 1) * w;
    let digest = Sha256::new()
        .chain_update(rules.tool)
        .chain_update([0])
        .chain_update(format!("{target:?}"))
        .chain_update([0])
        .chain_update(at_us.to_le_bytes())
        .chain_update(version.as_deref().unwrap_or(""))
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let run_id = uuid::Builder::from_unix_timestamp_millis((at_us.max(0) / 1000) as u64, &random).into_uuid().to_string();
    Open { start_us: at_us, end_us, version, run_id, samples: Vec::new(), readings: 0, last_failure: None }
}

fn close(rules: &WindowRules, target: &Target, open: Option<Open>, now_us: i64) -> Option<ImportedRun> {
    let o = open?;
    let platform = Platform { hardware_name: target.instance.clone(), ..Default::default() };
    let mut labels = target.labels.clone();
    labels.insert("source".into(), rules.tool.into());
    let mut run = RunStarted {
        run_id: o.run_id,
        tool: rules.tool.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        timestamp: o.start_us,
        workload: Workload { name: target.job.clone(), kind: "service".into(), ..Default::default() },
        version: VersionInfo { version_tag: o.version, env_hash: env_hash(&platform), ..Default::default() },
        platform,
        labels,
        series_id: String::new(),
    };
    run.series_id = series_id(&run);
    let ended_at = now_us.min(o.end_us).max(o.start_us);
    let (status, error) = match (&o.last_failure, o.samples.is_empty()) {
        (Some(reason), true) => (RunStatus::Failed, Some(format!("no reading in this window: {reason}"))),
        _ => (RunStatus::Completed, None),
    };
    Some(ImportedRun { run, samples: o.samples, status, error, ended_at })
}

/// Sums of node_exporter's CPU seconds over one reading: (all modes, idle modes).
#[derive(Default)]
struct CpuSeconds {
    total: f64,
    idle: f64,
}

/// The samples of one reading; `previous` holds each cumulative series' last reading.
fn to_samples(previous: &mut HashMap<(String, BTreeMap<String, String>), (i64, Reading)>, obs: &Observation, step: i64) -> Vec<Sample> {
    let at = obs.at_us;
    let sample = |metric: &str, unit: &str, value: f64, rank: Option<i32>| Sample { ts_us: at, metric: metric.to_string(), value, unit: unit.to_string(), rank, step: Some(step) };
    let mut out = Vec::new();
    let mut families: BTreeMap<&str, Buckets> = BTreeMap::new();
    let mut cpu = CpuSeconds::default();
    let mut memory = (None, None);
    for p in &obs.points {
        let key = (p.name.clone(), p.labels.clone());
        // The change since the previous reading of a cumulative series.
        let since = |previous: &HashMap<_, (i64, Reading)>| previous.get(&key).cloned();
        match &p.reading {
            Reading::Gauge(v) => match mapping::gauge(&p.name) {
                Some(m) => {
                    let rank = m.rank_label.and_then(|l| p.labels.get(l)).and_then(|r| r.parse().ok());
                    let unit = trackiq_schemas::catalog::lookup(m.metric).map_or("", |d| d.unit);
                    push_finite(&mut out, sample(m.metric, unit, v * m.scale, rank));
                }
                None => {
                    match p.name.as_str() {
                        "node_memory_MemTotal_bytes" => memory.0 = Some(*v),
                        "node_memory_MemAvailable_bytes" => memory.1 = Some(*v),
                        _ => {}
                    }
                    if p.labels.is_empty() {
                        let (name, unit) = mapping::unknown(&p.name);
                        push_finite(&mut out, sample(&name, unit, *v, None));
                    }
                }
            },
            Reading::Cumulative(v) => {
                let rate = match since(previous) {
                    Some((t0, Reading::Cumulative(p0))) if at > t0 => Some(if *v >= p0 { v - p0 } else { *v } / ((at - t0) as f64 / 1e6)),
                    _ => None,
                };
                if p.name == "node_cpu_seconds_total" {
                    if let Some((_, Reading::Cumulative(p0))) = since(previous) {
                        let d = if *v >= p0 { v - p0 } else { *v };
                        cpu.total += d;
                        if matches!(p.labels.get("mode").map(String::as_str), Some("idle" | "iowait")) {
                            cpu.idle += d;
                        }
                    }
                } else if let (Some(r), true) = (rate, p.labels.is_empty()) {
                    push_finite(&mut out, per_second(&p.name, r, at, step));
                }
                previous.insert(key, (at, p.reading.clone()));
            }
            Reading::Delta { value, over_us } => {
                if p.labels.is_empty() && *over_us > 0 {
                    push_finite(&mut out, per_second(&p.name, value / (*over_us as f64 / 1e6), at, step));
                }
            }
            Reading::CumulativeHistogram(h) => {
                let interval = match since(previous) {
                    Some((_, Reading::CumulativeHistogram(h0))) => Some(h.since(&h0)),
                    _ => None,
                };
                previous.insert(key, (at, p.reading.clone()));
                if let Some(i) = interval.filter(|_| keep_histogram(p)) {
                    families.entry(&p.name).or_default().add(&i);
                }
            }
            Reading::DeltaHistogram(h) if keep_histogram(p) => families.entry(&p.name).or_default().add(h),
            Reading::DeltaHistogram(_) => {}
        }
    }
    for (name, h) in families {
        let (median, p99) = (h.quantile(0.5), h.quantile(0.99));
        let (Some(median), Some(p99)) = (median, p99) else { continue };
        match mapping::histogram(name) {
            Some(m) => {
                push_finite(&mut out, sample(m.median, "ms", median.value * m.scale, None));
                push_finite(&mut out, sample(m.p99, "ms", p99.value * m.scale, None));
            }
            None => {
                let (base, unit) = mapping::unknown(name);
                push_finite(&mut out, sample(&format!("{base}_p50"), unit, median.value, None));
                push_finite(&mut out, sample(&format!("{base}_p99"), unit, p99.value, None));
            }
        }
    }
    if cpu.total > 0.0 {
        out.push(sample("cpu_utilization_percent", "%", 100.0 * (1.0 - cpu.idle / cpu.total).clamp(0.0, 1.0), None));
    }
    if let (Some(total), Some(available)) = memory
        && total > 0.0
    {
        out.push(sample("memory_used_mib", "MiB", (total - available) / (1u64 << 20) as f64, None));
        out.push(sample("memory_utilization_percent", "%", 100.0 * (total - available) / total, None));
    }
    out
}

/// A known histogram is summed over its label sets; an unknown one is kept only without labels
/// of its own (see the module docs).
fn keep_histogram(p: &Point) -> bool {
    mapping::histogram(&p.name).is_some() || p.labels.is_empty()
}

/// An unknown counter's rate: `scraped.<name without _total>_per_second`.
fn per_second(name: &str, rate: f64, at: i64, step: i64) -> Sample {
    let (base, _) = mapping::unknown(name.strip_suffix("_total").unwrap_or(name));
    Sample { ts_us: at, metric: format!("{base}_per_second"), value: rate, unit: "/s".into(), rank: None, step: Some(step) }
}

/// Keeps finite values only (an exporter's NaN says "no value now", not a measurement).
fn push_finite(out: &mut Vec<Sample>, s: Sample) {
    if s.value.is_finite() {
        out.push(s);
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;

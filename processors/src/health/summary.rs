//! The cluster-health part of a run summary: rank × step all-reduce matrix, loss curve,
//! samples/s, communication overhead, and each injected fault matched to the detection that
//! caught it (detection latency = detected − injected) or reported missed.

use std::collections::BTreeMap;

use trackiq_schemas::{ClusterHealth, DerivedMetric, Detection, FaultOutcome, Sample};

/// Columns of the rank × step matrix at most; longer runs average steps per column.
pub const MAX_COLUMNS: usize = 200;
/// Cells of the rank × step matrix at most (about 9 bytes each in Avro): the summary, and the
/// verdict embedding it, must stay well below a Kafka record's 1 MB limit; wide jobs get
/// fewer columns.
pub const MAX_CELLS: usize = 50_000;
/// Prefix of the samples that record injected faults.
pub const FAULT_PREFIX: &str = "cluster.fault.";

/// The detector expected to catch a kind of fault; it must blame the faulty rank (for a
/// slow link, its sending rank).
pub fn expected_detector(kind: &str) -> Option<&'static str> {
    match kind {
        "slow_rank" => Some("straggler"),
        "kill_rank" => Some("failed_worker"),
        "stall" => Some("stalled_worker"),
        // A delay on one rank's sends: its link's time, not the all-reduce's (every rank of
        // the ring waits alike), says where it is.
        "net_delay" => Some("slow_link"),
        _ => None,
    }
}

/// Matches faults to detections. A detection after the first fault is explained (faults
/// have knock-on effects, e.g. a slow rank makes its peers wait in the all-reduce); one before
/// it, or in a run without faults, is a false alarm.
pub fn match_faults(faults: &[FaultOutcome], detections: &[Detection]) -> (Vec<FaultOutcome>, i32) {
    let mut out = faults.to_vec();
    out.sort_by_key(|f| f.injected_at);
    for f in out.iter_mut() {
        let Some(detector) = expected_detector(&f.kind) else { continue };
        let hit = detections
            .iter()
            .filter(|d| d.detector == detector && d.rank == Some(f.rank) && d.event_ts >= f.injected_at)
            .min_by_key(|d| d.detected_at);
        if let Some(d) = hit {
            f.detector = Some(d.detector.clone());
            f.detected_at = Some(d.detected_at);
            f.latency_ms = Some((d.detected_at - f.injected_at) as f64 / 1e3);
        }
    }
    let first_fault = out.first().map(|f| f.injected_at);
    let false_alarms = detections.iter().filter(|d| first_fault.is_none_or(|t| d.event_ts < t)).count() as i32;
    (out, false_alarms)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Cluster health of a run from its `cluster.*` samples and its detections; `batch` is the
/// per-rank batch size. Also returns the scalar figures as derived metrics (for verdicts).
pub fn cluster_health(records: &[Sample], detections: &[Detection], batch: Option<i64>) -> Option<(ClusterHealth, Vec<DerivedMetric>)> {
    let world = records.iter().filter_map(|s| s.rank).max()? as usize + 1;
    fn by<'a>(records: &'a [Sample], metric: &'a str) -> impl Iterator<Item = &'a Sample> {
        records.iter().filter(move |s| s.metric == metric)
    }
    // rank -> step -> all-reduce ms
    let mut allreduce: Vec<BTreeMap<i64, f64>> = vec![BTreeMap::new(); world];
    for s in by(records, "cluster.allreduce_ms") {
        if let (Some(r), Some(st)) = (s.rank, s.step) {
            allreduce[r as usize].insert(st, s.value);
        }
    }
    let mut done_by_step: BTreeMap<i64, usize> = BTreeMap::new();
    let (mut step_sum, mut span): (f64, Option<(i64, i64)>) = (0.0, None);
    let mut completions = 0usize;
    for s in by(records, "cluster.step_ms") {
        if let Some(st) = s.step {
            *done_by_step.entry(st).or_default() += 1;
        }
        completions += 1;
        step_sum += s.value;
        let end = s.ts_us.saturating_add((s.value * 1e3) as i64);
        span = Some(span.map_or((s.ts_us, end), |(a, b)| (a.min(s.ts_us), b.max(end))));
    }
    let steps = done_by_step.values().filter(|n| **n >= world).count() as i64;
    let last_step = allreduce.iter().filter_map(|m| m.keys().next_back().copied()).max().map_or(0, |s| s + 1) as usize;
    // Bounded in cells (rows are ranks, up to the contract's world-size limit) and built in
    // one pass over the samples, never over the step range, which a bad step number could make huge.
    let max_columns = (MAX_CELLS / world).clamp(1, MAX_COLUMNS);
    let per_col = last_step.div_ceil(max_columns).max(1);
    let columns = last_step.div_ceil(per_col);
    let matrix: Vec<Vec<Option<f64>>> = allreduce
        .iter()
        .map(|row| {
            let mut cells = vec![(0.0f64, 0usize); columns];
            for (step, v) in row {
                let cell = &mut cells[(*step as usize / per_col).min(columns.saturating_sub(1))];
                *cell = (cell.0 + v, cell.1 + 1);
            }
            cells.into_iter().map(|(sum, n)| (n > 0).then(|| sum / n as f64)).collect()
        })
        .collect();
    let mut loss: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in by(records, "cluster.loss") {
        if let Some(st) = s.step {
            loss.entry(st).or_default().push(s.value);
        }
    }
    let loss: Vec<f64> = loss.values().filter_map(|v| mean(v)).collect();
    let allreduce_sum: f64 = allreduce.iter().flat_map(|m| m.values()).sum();
    let comm_overhead_pct = if step_sum > 0.0 { allreduce_sum / step_sum * 100.0 } else { 0.0 };
    let samples_per_sec = match (span, batch) {
        (Some((a, b)), Some(batch)) if b > a => completions as f64 * batch as f64 / ((b - a) as f64 / 1e6),
        _ => 0.0,
    };
    let faults: Vec<FaultOutcome> = records
        .iter()
        .filter_map(|s| {
            let kind = s.metric.strip_prefix(FAULT_PREFIX)?;
            Some(FaultOutcome { kind: kind.to_string(), rank: s.rank?, step: s.step?, injected_at: s.ts_us, detector: None, detected_at: None, latency_ms: None })
        })
        .collect();
    let (faults, false_alarms) = match_faults(&faults, detections);
    let mut derived = vec![
        DerivedMetric { name: "cluster_samples_per_sec".into(), value: samples_per_sec, unit: "items/s".into() },
        DerivedMetric { name: "comm_overhead_pct".into(), value: comm_overhead_pct, unit: "%".into() },
        DerivedMetric { name: "false_alarms".into(), value: false_alarms as f64, unit: "count".into() },
    ];
    if !faults.is_empty() {
        let missed = faults.iter().filter(|f| f.latency_ms.is_none()).count();
        derived.push(DerivedMetric { name: "faults_missed".into(), value: missed as f64, unit: "count".into() });
    }
    for f in &faults {
        if let Some(l) = f.latency_ms {
            derived.push(DerivedMetric { name: format!("detection_latency_ms.{}", f.kind), value: l, unit: "ms".into() });
        }
    }
    let health = ClusterHealth {
        world_size: world as i32,
        steps,
        samples_per_sec,
        comm_overhead_pct,
        steps_per_column: per_col as i32,
        allreduce_ms: matrix,
        loss,
        faults,
        detections: detections.to_vec(),
        false_alarms,
    };
    Some((health, derived))
}

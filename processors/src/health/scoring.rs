//! The detectors scored as a classifier over many runs with injected faults (`trackiq bench
//! faults`): per fault kind, recall (caught / injected), localization (caught on the right
//! rank or link / injected), detection latency; over all detections, precision (detections an
//! injected fault explains / detections); false alarms in fault-free runs.
//!
//! A fault is *caught* by a detection of its kind's detector ([`expected_detector`]) whose
//! evidence is not older than the injection; each detection catches at most one fault, so two
//! faults need two detections. A detection is *explained* when it caught a fault on the right
//! rank, or when it is a symptom (`allreduce_spike`: the ring got slower) that follows a fault
//! of its run; every other detection is a false alarm.

use trackiq_schemas::{Detection, FaultOutcome};

use super::summary::expected_detector;

/// Detectors that report a symptom (the collective got slower), not a diagnosis: explained by
/// any fault before them in the run.
pub const SYMPTOM_DETECTORS: [&str; 1] = ["allreduce_spike"];

/// What became of one injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultScore {
    pub kind: String,
    /// Position among the run's faults by injection time (0: the first).
    pub order: usize,
    /// Faults injected into the run.
    pub of: usize,
    pub caught: bool,
    /// Caught on the rank (or the link's sending rank) the fault was injected on.
    pub localized: bool,
    /// Detection wall clock minus injection, ms.
    pub latency_ms: Option<f64>,
}

/// One run, scored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunScore {
    pub faults: Vec<FaultScore>,
    pub detections: usize,
    /// Detections an injected fault explains.
    pub explained: usize,
    /// Each detection's detector, and whether a fault explains it.
    pub by_detector: Vec<(String, bool)>,
}

impl RunScore {
    /// Detections no injected fault explains.
    pub fn false_alarms(&self) -> usize {
        self.detections - self.explained
    }
}

/// Scores one run's injected faults against its detections.
pub fn score_run(faults: &[FaultOutcome], detections: &[Detection]) -> RunScore {
    let mut faults: Vec<&FaultOutcome> = faults.iter().collect();
    faults.sort_by_key(|f| f.injected_at);
    let mut used = vec![false; detections.len()];
    let mut explained = vec![false; detections.len()];
    let mut scores = Vec::with_capacity(faults.len());
    for (order, f) in faults.iter().enumerate() {
        let mut score = FaultScore { kind: f.kind.clone(), order, of: faults.len(), caught: false, localized: false, latency_ms: None };
        if let Some(detector) = expected_detector(&f.kind) {
            let candidates = || detections.iter().enumerate().filter(|(i, d)| !used[*i] && d.detector == detector && d.event_ts >= f.injected_at);
            // The right rank's detection if there is one, else the earliest on any rank.
            let on_rank = candidates().filter(|(_, d)| d.rank == Some(f.rank)).min_by_key(|(_, d)| d.detected_at);
            let hit = on_rank.or_else(|| candidates().min_by_key(|(_, d)| d.detected_at));
            if let Some((i, d)) = hit {
                used[i] = true;
                score.caught = true;
                score.localized = d.rank == Some(f.rank);
                explained[i] = score.localized;
                score.latency_ms = Some((d.detected_at - f.injected_at) as f64 / 1e3);
            }
        }
        scores.push(score);
    }
    let first_fault = faults.first().map(|f| f.injected_at);
    for (i, d) in detections.iter().enumerate() {
        if SYMPTOM_DETECTORS.contains(&d.detector.as_str()) && first_fault.is_some_and(|t| d.event_ts >= t) {
            explained[i] = true;
        }
    }
    let by_detector = detections.iter().zip(&explained).map(|(d, e)| (d.detector.clone(), *e)).collect();
    RunScore { faults: scores, detections: detections.len(), explained: explained.iter().filter(|e| **e).count(), by_detector }
}

/// One row of the table: the faults of one kind (or one position in two-fault runs).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub label: String,
    pub injected: usize,
    pub caught: usize,
    pub localized: usize,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

impl ScoreRow {
    fn of<'a>(label: &str, faults: impl Iterator<Item = &'a FaultScore>) -> ScoreRow {
        let mut row = ScoreRow { label: label.to_string(), injected: 0, caught: 0, localized: 0, latency_p50_ms: None, latency_p95_ms: None };
        let mut latencies = Vec::new();
        for f in faults {
            row.injected += 1;
            row.caught += usize::from(f.caught);
            row.localized += usize::from(f.localized);
            latencies.extend(f.latency_ms);
        }
        if let Some(s) = trackiq_stats::summarize(&mut latencies) {
            row.latency_p50_ms = Some(s.p50);
            row.latency_p95_ms = Some(s.p95);
        }
        row
    }

    /// Caught / injected (`None` without injections).
    pub fn recall(&self) -> Option<f64> {
        (self.injected > 0).then(|| self.caught as f64 / self.injected as f64)
    }

    /// Caught on the right rank / injected.
    pub fn localization(&self) -> Option<f64> {
        (self.injected > 0).then(|| self.localized as f64 / self.injected as f64)
    }
}

/// The whole bench, scored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    /// One row per fault kind, then "first of two" and "second of two" (runs with two faults).
    pub rows: Vec<ScoreRow>,
    pub detections: usize,
    pub explained: usize,
    pub fault_free_runs: usize,
    /// Detections in fault-free runs.
    pub fault_free_alarms: usize,
    /// Per detector (by name): detections, and those an injected fault explains.
    pub per_detector: std::collections::BTreeMap<String, (usize, usize)>,
}

impl ScoreTable {
    /// Explained detections / detections (`None` without detections).
    pub fn precision(&self) -> Option<f64> {
        (self.detections > 0).then(|| self.explained as f64 / self.detections as f64)
    }

    /// False alarms per 100 fault-free runs.
    pub fn false_alarms_per_100(&self) -> Option<f64> {
        (self.fault_free_runs > 0).then(|| self.fault_free_alarms as f64 * 100.0 / self.fault_free_runs as f64)
    }
}

/// Aggregates scored runs; `kinds` orders the per-kind rows.
pub fn score_table(runs: &[RunScore], kinds: &[&str]) -> ScoreTable {
    let all = || runs.iter().flat_map(|r| r.faults.iter());
    let mut rows: Vec<ScoreRow> = kinds.iter().map(|k| ScoreRow::of(k, all().filter(|f| f.kind == *k))).collect();
    rows.push(ScoreRow::of("first of two", all().filter(|f| f.of == 2 && f.order == 0)));
    rows.push(ScoreRow::of("second of two", all().filter(|f| f.of == 2 && f.order == 1)));
    let clean = || runs.iter().filter(|r| r.faults.is_empty());
    let mut per_detector = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for (detector, explained) in runs.iter().flat_map(|r| r.by_detector.iter()) {
        let e = per_detector.entry(detector.clone()).or_default();
        *e = (e.0 + 1, e.1 + usize::from(*explained));
    }
    ScoreTable {
        per_detector,
        rows,
        detections: runs.iter().map(|r| r.detections).sum(),
        explained: runs.iter().map(|r| r.explained).sum(),
        fault_free_runs: clean().count(),
        fault_free_alarms: clean().map(|r| r.detections).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str, rank: i32, at: i64) -> FaultOutcome {
        FaultOutcome { kind: kind.into(), rank, step: 0, injected_at: at, detector: None, detected_at: None, latency_ms: None }
    }

    fn detection(detector: &str, rank: Option<i32>, event_ts: i64, detected_at: i64) -> Detection {
        Detection { run_id: "r".into(), detector: detector.into(), rank, step: None, event_ts, detected_at, value: 0.0, threshold: 0.0, message: String::new() }
    }

    #[test]
    fn two_faults_need_two_detections_and_the_right_ranks() {
        let faults = [fault("slow_rank", 2, 1_000_000), fault("slow_rank", 1, 2_000_000)];
        // One straggler detection, on rank 2: the first fault is caught and localized, the second missed.
        let s = score_run(&faults, &[detection("straggler", Some(2), 1_200_000, 1_300_000)]);
        assert_eq!((s.faults[0].caught, s.faults[0].localized, s.faults[0].latency_ms), (true, true, Some(300.0)));
        assert!(!s.faults[1].caught);
        // A detection on a rank no fault was injected on catches, but does not localize, and is unexplained.
        let s = score_run(&faults[..1], &[detection("straggler", Some(0), 1_200_000, 1_250_000)]);
        assert_eq!((s.faults[0].caught, s.faults[0].localized), (true, false));
        assert_eq!((s.detections, s.explained, s.false_alarms()), (1, 0, 1));
    }

    #[test]
    fn evidence_before_the_injection_catches_nothing_and_symptoms_need_a_fault() {
        let faults = [fault("net_delay", 1, 5_000_000)];
        let early = detection("slow_link", Some(1), 4_000_000, 5_100_000);
        let spike = detection("allreduce_spike", Some(3), 5_200_000, 5_300_000);
        let s = score_run(&faults, &[early, spike.clone()]);
        assert!(!s.faults[0].caught);
        assert_eq!((s.detections, s.explained), (2, 1), "the spike follows the fault; the early link detection is a false alarm");
        let clean = score_run(&[], &[spike]);
        assert_eq!(clean.false_alarms(), 1);
    }

    #[test]
    fn the_table_counts_per_kind_per_position_and_false_alarms_per_100_clean_runs() {
        let runs = vec![
            score_run(&[fault("stall", 0, 10)], &[detection("stalled_worker", Some(0), 20, 1010)]),
            score_run(&[fault("slow_rank", 1, 10), fault("stall", 3, 20)], &[detection("straggler", Some(1), 10, 510)]),
            score_run(&[], &[]),
            score_run(&[], &[detection("straggler", Some(0), 1, 2)]),
        ];
        let t = score_table(&runs, &["slow_rank", "stall"]);
        let row = |l: &str| t.rows.iter().find(|r| r.label == l).unwrap().clone();
        assert_eq!((row("stall").injected, row("stall").caught, row("stall").recall()), (2, 1, Some(0.5)));
        assert_eq!(row("stall").latency_p50_ms, Some(1.0));
        assert_eq!((row("first of two").caught, row("second of two").caught), (1, 0));
        assert_eq!((t.fault_free_runs, t.false_alarms_per_100()), (2, Some(50.0)));
        assert_eq!(t.precision(), Some(2.0 / 3.0));
        assert_eq!(t.per_detector["straggler"], (2, 1), "the clean run's straggler is the unexplained one");
        assert_eq!(t.per_detector["stalled_worker"], (1, 1));
    }
}

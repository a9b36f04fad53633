use super::*;
use crate::events::*;
use crate::tests::{encode_any, fixture_events};

/// The first fixture event that `pick` takes.
fn fixture<T>(pick: impl Fn(AnyEvent) -> Option<T>) -> T {
    fixture_events().into_iter().find_map(pick).expect("schemas/src/tests.rs has one")
}

fn edit<T>(mut t: T, change: impl FnOnce(&mut T)) -> T {
    change(&mut t);
    t
}

fn started() -> RunStarted {
    fixture(|e| if let AnyEvent::RunStarted(r) = e { Some(r) } else { None })
}
fn batch() -> SampleBatch {
    // Two samples: the second is the one broken below, so the index is part of each path.
    edit(fixture(|e| if let AnyEvent::SampleBatch(b) = e { Some(b) } else { None }), |b| {
        let mut second = b.samples[0].clone();
        second.step = Some(7);
        b.samples.push(second);
    })
}
fn finished() -> RunFinished {
    fixture(|e| if let AnyEvent::RunFinished(f) = e { Some(f) } else { None })
}
fn clustered() -> RunSummary {
    fixture(|e| if let AnyEvent::RunSummary(s) = e { s.cluster.is_some().then_some(*s) } else { None })
}
fn detection() -> Detection {
    fixture(|e| if let AnyEvent::Detection(d) = e { Some(d) } else { None })
}
fn verdict() -> Verdict {
    fixture(|e| if let AnyEvent::Verdict(v) = e { Some(*v) } else { None })
}
fn trend() -> TrendResult {
    fixture(|e| if let AnyEvent::TrendResult(t) = e { Some(*t) } else { None })
}
fn pin() -> BaselinePin {
    fixture(|e| if let AnyEvent::BaselinePin(p) = e { Some(p) } else { None })
}
fn dead_letter() -> DeadLetter {
    fixture(|e| if let AnyEvent::DeadLetter(d) = e { Some(d) } else { None })
}

fn refusal(e: &AnyEvent) -> (String, String) {
    match validate(e) {
        Err(SchemaError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected an invalid field in {e:?}, got {other:?}"),
    }
}

/// Each refused event with the field its error must name and a part of the reason.
fn refused_cases() -> Vec<(AnyEvent, &'static str, &'static str)> {
    use AnyEvent as E;
    let b = |change: fn(&mut SampleBatch)| E::SampleBatch(edit(batch(), change));
    let s = |change: fn(&mut RunSummary)| E::RunSummary(Box::new(edit(clustered(), change)));
    let c = |change: fn(&mut ClusterHealth)| E::RunSummary(Box::new(edit(clustered(), |s| change(s.cluster.as_mut().unwrap()))));
    let v = |change: fn(&mut Verdict)| E::Verdict(Box::new(edit(verdict(), change)));
    let t = |change: fn(&mut TrendResult)| E::TrendResult(Box::new(edit(trend(), change)));
    let d = |change: fn(&mut Detection)| E::Detection(edit(detection(), change));
    let p = |change: fn(&mut BaselinePin)| E::BaselinePin(edit(pin(), change));
    vec![
        // Samples: rank, step, value, names, unit, time; then the batch itself.
        (b(|b| b.samples[1].rank = Some(-1)), "samples[1].rank", "-1 is outside 0 .. 65535 (the world size limit)"),
        (b(|b| b.samples[1].rank = Some(65_536)), "samples[1].rank", "65536 is outside 0 .. 65535"),
        (b(|b| b.samples[1].rank = Some(2_000_000_000)), "samples[1].rank", "outside"),
        (b(|b| b.samples[1].step = Some(-5)), "samples[1].step", "-5 is outside 0 .. 1000000000"),
        (b(|b| b.samples[1].step = Some(MAX_STEP + 1)), "samples[1].step", "outside"),
        (b(|b| b.samples[1].value = f64::NAN), "samples[1].value", "NaN is not a finite number"),
        (b(|b| b.samples[1].value = f64::INFINITY), "samples[1].value", "inf is not a finite number"),
        (b(|b| b.samples[1].value = f64::NEG_INFINITY), "samples[1].value", "-inf is not a finite number"),
        (b(|b| b.samples[1].value = -1e300), "samples[1].value", "-1e300 is beyond ±1e100"),
        (b(|b| b.samples[1].metric = String::new()), "samples[1].metric", "is empty"),
        (b(|b| b.samples[1].metric = " \t".into()), "samples[1].metric", "is empty"),
        (b(|b| b.samples[1].metric = "a\u{0}b".into()), "samples[1].metric", "control characters"),
        (b(|b| b.samples[1].metric = "m".repeat(MAX_NAME_LEN + 1)), "samples[1].metric", "257 bytes long (at most 256)"),
        (b(|b| b.samples[1].unit = "u".repeat(300)), "samples[1].unit", "300 bytes long"),
        (b(|b| b.samples[1].ts_us = -1), "samples[1].ts_us", "-1 µs since the epoch is outside 1970-01-01 .. 2200-01-01"),
        (b(|b| b.samples[1].ts_us = MAX_TIMESTAMP_US + 1), "samples[1].ts_us", "outside"),
        (b(|b| b.seq = -1), "seq", "-1 is negative"),
        (b(|b| b.run_id = String::new()), "run_id", "is empty"),
        // A run's start, alone and inside a summary.
        (E::RunStarted(edit(started(), |r| r.run_id = " ".into())), "run_id", "is empty"),
        (E::RunStarted(edit(started(), |r| r.series_id = "s".repeat(1000))), "series_id", "1000 bytes long"),
        (E::RunStarted(edit(started(), |r| r.timestamp = i64::MIN)), "timestamp", "outside"),
        (E::RunStarted(edit(started(), |r| r.workload.sequence_length = Some(-1))), "workload.sequence_length", "negative"),
        (E::RunStarted(edit(started(), |r| _ = r.labels.insert("world_size".into(), "0".into()))), "labels.world_size", "`0` is not a world size in 1 .. 65536"),
        (E::RunStarted(edit(started(), |r| _ = r.labels.insert("world_size".into(), "65537".into()))), "labels.world_size", "not a world size"),
        (E::RunStarted(edit(started(), |r| _ = r.labels.insert("world_size".into(), "four".into()))), "labels.world_size", "not a world size"),
        (s(|s| s.run.workload.batch_size = Some(-8)), "run.workload.batch_size", "-8 is negative"),
        (E::RunFinished(edit(finished(), |f| f.ended_at = -1)), "ended_at", "outside"),
        (E::RunFinished(edit(finished(), |f| f.sample_count = -1)), "sample_count", "negative"),
        // Summaries: counts, statistics, histogram, derived values.
        (s(|s| s.sample_count = -3), "sample_count", "negative"),
        (s(|s| s.expected_sample_count = Some(-3)), "expected_sample_count", "negative"),
        (s(|s| s.ended_at = MAX_TIMESTAMP_US + 1), "ended_at", "outside"),
        (s(|s| s.metrics[0].count = -1), "metrics[0].count", "negative"),
        (s(|s| s.metrics[0].p99 = f64::NAN), "metrics[0].p99", "NaN is not a finite number"),
        (s(|s| s.metrics[0].min = f64::NEG_INFINITY), "metrics[0].min", "not a finite number"),
        (s(|s| s.metrics[0].stdev = Some(f64::INFINITY)), "metrics[0].stdev", "not a finite number"),
        (s(|s| s.metrics[0].metric = String::new()), "metrics[0].metric", "is empty"),
        (s(|s| s.metrics[0].unit = "u".repeat(257)), "metrics[0].unit", "257 bytes long"),
        (s(|s| s.metrics[0].histogram.as_mut().unwrap().edges.pop().map(drop).unwrap()), "metrics[0].histogram.edges", "2 edges for 2 bins (needs bins + 1)"),
        (s(|s| s.metrics[0].histogram.as_mut().unwrap().edges[2] = f64::NAN), "metrics[0].histogram.edges[2]", "not a finite number"),
        (s(|s| s.metrics[0].histogram.as_mut().unwrap().edges[2] = 0.5), "metrics[0].histogram.edges[2]", "0.5 is below the edge before it, 2"),
        (s(|s| s.metrics[0].histogram.as_mut().unwrap().counts[1] = -2), "metrics[0].histogram.counts[1]", "negative"),
        (
            s(|s| s.metrics[0].histogram = Some(Histogram { edges: vec![0.0; MAX_HISTOGRAM_BINS + 2], counts: vec![0; MAX_HISTOGRAM_BINS + 1] })),
            "metrics[0].histogram.counts",
            "10001 bins (at most 10000)",
        ),
        (s(|s| s.derived[0].name = String::new()), "derived[0].name", "is empty"),
        (s(|s| s.derived[0].value = f64::NAN), "derived[0].value", "not a finite number"),
        (s(|s| s.derived[0].unit = "u".repeat(257)), "derived[0].unit", "257 bytes long"),
        // Cluster health: world size, ranks below it, the matrix, faults and detections.
        (c(|c| c.world_size = 0), "cluster.world_size", "0 is outside 1 .. 65536"),
        (c(|c| c.world_size = 70_000), "cluster.world_size", "outside"),
        (c(|c| c.steps = -1), "cluster.steps", "negative"),
        (c(|c| c.samples_per_sec = f64::NAN), "cluster.samples_per_sec", "not a finite number"),
        (c(|c| c.comm_overhead_pct = f64::INFINITY), "cluster.comm_overhead_pct", "not a finite number"),
        (c(|c| c.steps_per_column = 0), "cluster.steps_per_column", "0 is outside 1 .. 1000000000"),
        (c(|c| c.allreduce_ms.push(vec![])), "cluster.allreduce_ms", "3 rows for a world of 2 ranks"),
        (c(|c| c.allreduce_ms[1][0] = Some(f64::NAN)), "cluster.allreduce_ms[1][0]", "not a finite number"),
        (c(|c| c.loss[1] = f64::INFINITY), "cluster.loss[1]", "not a finite number"),
        (c(|c| c.faults[0].rank = 2), "cluster.faults[0].rank", "2 is outside 0 .. 1 (the world size)"),
        (c(|c| c.faults[0].step = -1), "cluster.faults[0].step", "outside"),
        (c(|c| c.faults[0].injected_at = -1), "cluster.faults[0].injected_at", "outside"),
        (c(|c| c.faults[0].detected_at = Some(i64::MAX)), "cluster.faults[0].detected_at", "outside"),
        (c(|c| c.faults[0].latency_ms = Some(f64::NAN)), "cluster.faults[0].latency_ms", "not a finite number"),
        (c(|c| c.detections[0].rank = Some(2)), "cluster.detections[0].rank", "2 is outside 0 .. 1 (the world size)"),
        (c(|c| c.detections[0].value = f64::NAN), "cluster.detections[0].value", "not a finite number"),
        (c(|c| c.false_alarms = -1), "cluster.false_alarms", "negative"),
        // A detection on its own: the world size is not known, the limit applies.
        (d(|d| d.rank = Some(-1)), "rank", "outside 0 .. 65535 (the world size limit)"),
        (d(|d| d.step = Some(-1)), "step", "outside"),
        (d(|d| d.detector = String::new()), "detector", "is empty"),
        (d(|d| d.event_ts = -1), "event_ts", "outside"),
        (d(|d| d.detected_at = MAX_TIMESTAMP_US + 1), "detected_at", "outside"),
        (d(|d| d.value = f64::INFINITY), "value", "not a finite number"),
        (d(|d| d.threshold = f64::NAN), "threshold", "not a finite number"),
        // Verdicts: their values, limits and p-values, findings, and the summary inside.
        (v(|v| v.series_id = String::new()), "series_id", "is empty"),
        (v(|v| v.evaluated_at = -1), "evaluated_at", "outside"),
        (v(|v| v.metrics[0].metric = "\n".into()), "metrics[0].metric", "is empty"),
        (v(|v| v.metrics[0].value = f64::NAN), "metrics[0].value", "not a finite number"),
        (v(|v| v.metrics[0].baseline = Some(f64::INFINITY)), "metrics[0].baseline", "not a finite number"),
        (v(|v| v.metrics[0].baseline_count = -1), "metrics[0].baseline_count", "negative"),
        (v(|v| v.metrics[0].model = "m".repeat(257)), "metrics[0].model", "257 bytes long"),
        (v(|v| v.metrics[0].lower_limit = Some(f64::NEG_INFINITY)), "metrics[0].lower_limit", "not a finite number"),
        (v(|v| v.metrics[0].upper_limit = Some(f64::INFINITY)), "metrics[0].upper_limit", "not a finite number"),
        (v(|v| v.metrics[0].change_pct = Some(f64::NAN)), "metrics[0].change_pct", "not a finite number"),
        (v(|v| v.metrics[0].pvalue = Some(f64::NAN)), "metrics[0].pvalue", "not a finite number"),
        (v(|v| v.findings[0].value = Some(f64::NAN)), "findings[0].value", "not a finite number"),
        (v(|v| v.findings[0].rule = "r".repeat(257)), "findings[0].rule", "257 bytes long"),
        (v(|v| v.summary.metrics[0].p95 = f64::NAN), "summary.metrics[0].p95", "not a finite number"),
        (v(|v| v.summary.run.workload.batch_size = Some(-1)), "summary.run.workload.batch_size", "negative"),
        // Trends: every number, the change points.
        (t(|t| t.run_id = String::new()), "run_id", "is empty"),
        (t(|t| t.metric = String::new()), "metric", "is empty"),
        (t(|t| t.computed_at = -1), "computed_at", "outside"),
        (t(|t| t.points = -1), "points", "negative"),
        (t(|t| t.slope = f64::NAN), "slope", "not a finite number"),
        (t(|t| t.r_squared = f64::INFINITY), "r_squared", "not a finite number"),
        (t(|t| t.cv = f64::NAN), "cv", "not a finite number"),
        (t(|t| t.mann_kendall_p = Some(f64::NAN)), "mann_kendall_p", "not a finite number"),
        (t(|t| t.change_points[0].index = -1), "change_points[0].index", "negative"),
        (t(|t| t.change_points[0].run_id = String::new()), "change_points[0].run_id", "is empty"),
        (t(|t| t.change_points[0].pvalue = f64::NAN), "change_points[0].pvalue", "not a finite number"),
        (t(|t| t.change_points[0].mean_after = f64::INFINITY), "change_points[0].mean_after", "not a finite number"),
        // Baseline pins: the pinned values.
        (p(|p| p.series_id = String::new()), "series_id", "is empty"),
        (p(|p| p.set_at = -1), "set_at", "outside"),
        (p(|p| p.runs[0].run_id = String::new()), "runs[0].run_id", "is empty"),
        (p(|p| _ = p.runs[0].values.insert("latency_ms".into(), f64::NAN)), "runs[0].values[latency_ms]", "not a finite number"),
        (p(|p| _ = p.runs[0].values.insert(String::new(), 1.0)), "runs[0].values", "is empty"),
        (E::DeadLetter(edit(dead_letter(), |d| d.failed_at = -1)), "failed_at", "outside"),
    ]
}

#[test]
fn every_fixture_event_validates() {
    let events = fixture_events();
    assert_eq!(events.len(), 10);
    for e in &events {
        assert!(validate(e).is_ok(), "{}: {:?}", e.name(), validate(e));
        // And as every stage reads it: bytes through decode_valid.
        assert_eq!(&crate::registry().decode_valid(&encode_any(e)).unwrap(), e);
    }
    // The edited fixtures below start from valid events, so each refusal is its one change.
    for e in [AnyEvent::SampleBatch(batch()), AnyEvent::RunSummary(Box::new(clustered())), AnyEvent::Verdict(Box::new(verdict()))] {
        assert!(validate(&e).is_ok(), "{}: {:?}", e.name(), validate(&e));
    }
}

#[test]
fn each_rule_refuses_with_the_path_of_the_field() {
    let cases = refused_cases();
    for (event, field, reason) in &cases {
        let (f, r) = refusal(event);
        assert_eq!((f.as_str(), r.contains(reason)), (*field, true), "{} refused with `{f}: {r}`, expected `{field}: ..{reason}..`", event.name());
    }
    // Every type of event has rules.
    let mut types: Vec<&str> = cases.iter().map(|(e, ..)| e.name()).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), 9, "{types:?}");
}

#[test]
fn refusals_reach_consumers_through_decode_valid() {
    let event = AnyEvent::SampleBatch(edit(batch(), |b| b.samples[1].value = f64::NAN));
    let bytes = encode_any(&event);
    assert!(crate::registry().decode_any(&bytes).is_ok(), "NaN is a valid Avro double");
    let err = crate::registry().decode_valid(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "invalid samples[1].value: NaN is not a finite number");
}

#[test]
fn limits_themselves_are_accepted() {
    let edge = |change: fn(&mut Sample)| AnyEvent::SampleBatch(edit(batch(), |b| change(&mut b.samples[1])));
    for e in [
        edge(|s| s.rank = Some(0)),
        edge(|s| s.rank = Some((MAX_WORLD_SIZE - 1) as i32)),
        edge(|s| s.step = Some(0)),
        edge(|s| s.step = Some(MAX_STEP)),
        edge(|s| s.ts_us = MIN_TIMESTAMP_US),
        edge(|s| s.ts_us = MAX_TIMESTAMP_US),
        edge(|s| s.metric = "m".repeat(MAX_NAME_LEN)),
        edge(|s| s.unit = String::new()),
        edge(|s| s.value = -MAX_SAMPLE_MAGNITUDE),
        edge(|s| s.value = f64::MIN_POSITIVE),
        AnyEvent::RunSummary(Box::new(edit(clustered(), |s| {
            let c = s.cluster.as_mut().unwrap();
            c.world_size = MAX_WORLD_SIZE as i32;
            c.faults[0].rank = c.world_size - 1;
            // A single value's histogram: all edges equal.
            s.metrics[0].histogram = Some(Histogram { edges: vec![2.0, 2.0], counts: vec![3] });
        }))),
    ] {
        assert!(validate(&e).is_ok(), "{:?}", validate(&e));
    }
    // The batch size limit: counted before any sample is looked at (these have empty names).
    let empty = Sample { ts_us: 0, metric: String::new(), value: 0.0, unit: String::new(), rank: None, step: None };
    let at_limit = SampleBatch { run_id: "r".into(), seq: 0, samples: vec![empty.clone(); MAX_SAMPLES_PER_BATCH + 1] };
    let (f, r) = refusal(&AnyEvent::SampleBatch(at_limit));
    assert_eq!((f.as_str(), r.as_str()), ("samples", "1000001 samples in one batch (at most 1000000)"));
}

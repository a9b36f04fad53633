//! The alert lifecycle over hand-made verdicts: fire once, repeat on time, worse on growth,
//! resolve after K good runs or a pin, silences and acks, detections not sent twice, and a
//! book rebuilt from its own output continuing exactly where it was.

use std::collections::BTreeMap;

use trackiq_schemas::*;

use super::*;

const S: i64 = 1_000_000;
const SERIES: &str = "series-1";

fn verdict(run: &str, at_s: i64, change: Option<f64>, findings: &[(&str, &str)]) -> Verdict {
    let severity = match change {
        Some(c) if c >= 20.0 => Severity::Block,
        Some(_) => Severity::Warn,
        None => Severity::Pass,
    };
    let m = MetricVerdict {
        metric: "latency_ms".into(), direction: Direction::LowerIsBetter, value: 10.0 * (1.0 + change.unwrap_or(0.0) / 100.0),
        baseline: Some(10.0), baseline_count: 10, model: "normal".into(), lower_limit: None, upper_limit: Some(10.5), change_pct: change.or(Some(0.0)),
        severity, pvalue: Some(0.001), kind: None, gates: true, direction_guessed: false, change_ci_low: None, change_ci_high: None, pvalue_adjusted: None,
    };
    let run_started = RunStarted {
        run_id: run.into(), tool: "t".into(), tool_version: "0".into(), timestamp: at_s * S, platform: Platform { hardware_name: "h100".into(), ..Default::default() },
        workload: Workload { name: "resnet".into(), ..Default::default() }, version: VersionInfo::default(), labels: BTreeMap::new(), series_id: SERIES.into(),
    };
    Verdict {
        run_id: run.into(), series_id: SERIES.into(), evaluated_at: at_s * S, severity,
        summary: RunSummary {
            run: run_started, status: RunStatus::Completed, ended_at: at_s * S, sample_count: 1, expected_sample_count: None, error: None,
            metrics: vec![], derived: vec![], cluster: None,
        },
        metrics: vec![m],
        findings: findings.iter().map(|(rule, metric)| Finding { rule: (*rule).into(), metric: (*metric).into(), severity: Severity::Warn, value: None, message: "m".into() }).collect(),
    }
}

fn config() -> AlertsConfig {
    AlertsConfig { resolve_after_runs: 2, repeat_interval_secs: 3600, ..Default::default() }
}

fn reasons(changes: &[Alert]) -> Vec<(&str, &str, &str)> {
    changes.iter().map(|a| (a.subject.as_str(), a.state.as_str(), a.notify.as_str())).collect()
}

#[test]
fn a_regression_fires_once_repeats_on_time_worsens_and_resolves_after_k_good_runs() {
    let mut b = AlertBook::new(config());
    assert!(b.on_verdict(&verdict("r0", 0, None, &[])).is_empty(), "a pass with nothing firing changes nothing");
    let fired = b.on_verdict(&verdict("r1", 10, Some(8.0), &[]));
    assert_eq!(reasons(&fired), [("latency_ms", "firing", "firing")]);
    assert_eq!((fired[0].group_key.as_str(), fired[0].group_size, fired[0].series_firing), ("verdict/r1", 1, 1));
    assert_eq!(fired[0].alert_id, alert_id(SERIES, "latency_ms"));
    // Still bad, not much worse, within the repeat interval: recorded only.
    assert_eq!(reasons(&b.on_verdict(&verdict("r2", 20, Some(9.0), &[]))), [("latency_ms", "firing", "none")]);
    // 1.5x the change last sent (8 %) is worse; so is warn → block.
    assert_eq!(reasons(&b.on_verdict(&verdict("r3", 30, Some(12.5), &[]))), [("latency_ms", "firing", "worse")]);
    assert_eq!(reasons(&b.on_verdict(&verdict("r4", 40, Some(20.0), &[]))), [("latency_ms", "firing", "worse")]);
    // An hour after the last message: repeat.
    assert_eq!(reasons(&b.on_verdict(&verdict("r5", 40 + 3600, Some(20.0), &[]))), [("latency_ms", "firing", "repeat")]);
    // One good run counts, the second resolves; the episode start is kept throughout.
    let good = b.on_verdict(&verdict("r6", 5000, None, &[]));
    assert_eq!((reasons(&good)[0], good[0].ok_runs), (("latency_ms", "firing", "none"), 1));
    // Still firing: the row keeps the figures its message states, not the good run's 0 %.
    assert_eq!((good[0].change_pct, good[0].value), (Some(20.0), Some(12.0)));
    let resolved = b.on_verdict(&verdict("r7", 5010, None, &[]));
    assert_eq!(reasons(&resolved), [("latency_ms", "resolved", "resolved")]);
    assert_eq!((resolved[0].change_pct, resolved[0].value), (Some(0.0), Some(10.0)), "a resolution shows where the metric is back to");
    assert_eq!((resolved[0].fired_at, resolved[0].series_firing), (10 * S, 0));
    // A new regression is a new episode with the same id.
    let again = b.on_verdict(&verdict("r8", 6000, Some(9.0), &[]));
    assert_eq!((reasons(&again)[0], again[0].fired_at, again[0].alert_id.as_str()), (("latency_ms", "firing", "firing"), 6000 * S, fired[0].alert_id.as_str()));
}

#[test]
fn a_replayed_verdict_changes_nothing_and_a_rebuilt_book_continues_the_same() {
    let mut b = AlertBook::new(config());
    let mut log = Vec::new();
    for (i, c) in [Some(8.0), Some(9.0), None].into_iter().enumerate() {
        log.extend(b.on_verdict(&verdict(&format!("r{i}"), 10 * i as i64, c, &[])));
    }
    assert!(b.on_verdict(&verdict("r2", 20, None, &[])).is_empty(), "replay of the last verdict");
    let mut rebuilt = AlertBook::new(config());
    for a in &log {
        rebuilt.restore(&AnyEvent::Alert(Box::new(a.clone())));
    }
    assert!(rebuilt.on_verdict(&verdict("r2", 20, None, &[])).is_empty(), "replay after a restart");
    assert_eq!(reasons(&rebuilt.on_verdict(&verdict("r3", 30, None, &[]))), reasons(&b.on_verdict(&verdict("r3", 30, None, &[]))));
}

#[test]
fn silences_and_acks_keep_messages_from_being_sent_but_not_from_being_recorded() {
    let mut b = AlertBook::new(config());
    let silence = AlertAction {
        action: AlertActionKind::Silence, id: "sil-1".into(), series_id: SERIES.into(), subject: None, until: Some(100 * S), reason: "maintenance".into(),
        by: "ops".into(), at: 0,
    };
    assert!(b.on_action(&silence).is_empty());
    let fired = b.on_verdict(&verdict("r1", 10, Some(8.0), &[]));
    assert_eq!((fired[0].notify, fired[0].silenced_by.as_deref()), (NotifyReason::Firing, Some("sil-1")));
    // After the silence ends, the repeat is sent; an ack stops further repeats.
    let repeat = b.on_verdict(&verdict("r2", 3700, Some(8.0), &[]));
    assert_eq!((repeat[0].notify, repeat[0].silenced_by.as_deref()), (NotifyReason::Repeat, None));
    let ack = AlertAction { action: AlertActionKind::Ack, id: fired[0].alert_id.clone(), series_id: SERIES.into(), subject: None, until: None, reason: "looking".into(), by: "ana".into(), at: 3800 * S };
    let acked = b.on_action(&ack);
    assert_eq!((acked[0].acked_by.as_deref(), acked[0].notify), (Some("ana"), NotifyReason::None));
    assert!(b.on_action(&ack).is_empty(), "a repeated ack changes nothing");
    assert_eq!(b.on_verdict(&verdict("r3", 9000, Some(8.0), &[]))[0].notify, NotifyReason::None, "acked: no repeat");
    assert_eq!(b.on_verdict(&verdict("r4", 9010, Some(20.0), &[]))[0].notify, NotifyReason::Worse, "worse is sent even when acked");
}

#[test]
fn a_note_goes_to_the_alerts_thread_and_a_downgrade_makes_a_block_a_warning() {
    let mut b = AlertBook::new(config());
    let fired = b.on_verdict(&verdict("r1", 10, Some(25.0), &[]));
    assert_eq!(fired[0].severity, Severity::Block);
    let note = |kind: AlertActionKind, at: i64, text: &str| AlertAction {
        action: kind, id: fired[0].alert_id.clone(), series_id: SERIES.into(), subject: None, until: None, reason: text.into(), by: "ci".into(), at: at * S,
    };
    let confirmed = b.on_action(&note(AlertActionKind::Note, 20, "confirmed: +24.8 % [+22.0, +27.6]"));
    assert_eq!(reasons(&confirmed), [("latency_ms", "firing", "note")]);
    assert_eq!((confirmed[0].severity, confirmed[0].message.as_str()), (Severity::Block, "confirmed: +24.8 % [+22.0, +27.6] (by ci)"));
    assert_eq!((confirmed[0].group_key.as_str(), confirmed[0].change_pct), (format!("note/{}/{}", fired[0].alert_id, 20 * S).as_str(), Some(25.0)), "figures unchanged");
    assert!(b.on_action(&note(AlertActionKind::Note, 20, "confirmed: +24.8 % [+22.0, +27.6]")).is_empty(), "the same note twice is one");
    let downgraded = b.on_action(&note(AlertActionKind::Downgrade, 30, "not reproduced: +0.4 % [-1.8, +2.6]"));
    assert_eq!((downgraded[0].severity, downgraded[0].notify, downgraded[0].state), (Severity::Warn, NotifyReason::Note, AlertState::Firing));
    let unknown = AlertAction { id: "no-such-alert".into(), ..note(AlertActionKind::Note, 40, "x") };
    assert!(b.on_action(&unknown).is_empty(), "a note on an unknown alert changes nothing");
}

#[test]
fn runs_of_an_investigation_are_never_alerted_on() {
    let mut b = AlertBook::new(config());
    let mut v = verdict("r1", 10, Some(25.0), &[("consistency_regression", "child_cpu_ms")]);
    v.summary.run.labels.insert(INVESTIGATION_LABEL.into(), "bisect-1".into());
    assert!(b.on_verdict(&v).is_empty());
    v.summary.run.labels.clear();
    assert_eq!(reasons(&b.on_verdict(&v)), [("latency_ms", "firing", "firing"), ("finding:consistency_regression:child_cpu_ms", "firing", "firing")]);
}

#[test]
fn a_pin_resolves_and_findings_are_grouped_with_metrics() {
    let mut b = AlertBook::new(config());
    let fired = b.on_verdict(&verdict("r1", 10, Some(8.0), &[("sustained_shift", "queue_depth"), ("step_change", "latency_ms")]));
    // The step change of the metric that regressed is inhibited: the regression says it.
    assert_eq!(reasons(&fired), [("latency_ms", "firing", "firing"), ("finding:sustained_shift:queue_depth", "firing", "firing")]);
    assert!(fired.iter().all(|a| a.group_key == "verdict/r1" && a.group_size == 2 && a.series_firing == 2));
    assert_eq!(fired.iter().map(|a| a.group_index).collect::<Vec<_>>(), [0, 1]);
    let pin = BaselinePin { series_id: SERIES.into(), runs: vec![], set_at: 20 * S, reason: Some("accepted".into()) };
    let mut quiet = verdict("r2", 15, Some(8.0), &[("step_change", "gpu_power_w")]);
    quiet.metrics.push(MetricVerdict { metric: "gpu_power_w".into(), gates: false, ..quiet.metrics[0].clone() });
    assert!(b.on_verdict(&quiet).iter().all(|a| !a.subject.contains("gpu_power_w")), "a finding on telemetry that does not gate pages nobody");
    let resolved = b.on_pin(&pin);
    assert_eq!(reasons(&resolved), [("latency_ms", "resolved", "resolved")]);
    assert!(resolved[0].message.contains("accepted"));
    assert!(b.on_pin(&pin).is_empty(), "a replayed pin changes nothing");
}

#[test]
fn a_detection_fires_at_once_and_the_runs_verdict_does_not_send_it_again() {
    let mut b = AlertBook::new(config());
    let d = Detection {
        run_id: "run-9".into(), detector: "straggler".into(), rank: Some(3), step: Some(40), event_ts: 5 * S, detected_at: 6 * S, value: 80.0,
        threshold: 20.0, message: "rank 3 is 4x slower".into(),
    };
    let fired = b.on_detection(&d);
    assert_eq!(reasons(&fired), [("detection:straggler:rank 3", "firing", "firing")]);
    assert!(b.on_detection(&d).is_empty(), "the same condition again is not a new alert");
    let mut v = verdict("run-9", 30, None, &[("cluster_detection", "cluster.straggler"), ("fault_missed", "cluster.fault.kill_rank")]);
    v.findings[1].severity = Severity::Block;
    let changes = b.on_verdict(&v);
    assert_eq!(reasons(&changes), [("finding:fault_missed:cluster.fault.kill_rank", "firing", "firing"), ("detection:straggler:rank 3", "resolved", "none")]);
}

//! Detectors on simulated sample streams of a 4-rank run: the stream has the shape the
//! coordinator emits (heartbeats every 100 ms, compute/all-reduce/step/loss per rank and
//! step), with seeded jitter, and the faults change it the way the real ones do.

use trackiq_schemas::{FaultOutcome, Sample};
use trackiq_stats::synthetic::Noise;

use super::detectors::{ClusterMonitor, DetectorConfig};
use super::summary::{cluster_health, match_faults};

const WORLD: i32 = 4;
const HEARTBEAT_US: i64 = 100_000;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    Slow { rank: i32, from: i64, ms: f64 },
    /// Two slow ranks, the second from a later step: the first must not hide the second.
    SlowPair { first: (i32, i64), second: (i32, i64), ms: f64 },
    /// A delay before every send of `rank`: the link into rank + 1 is slow.
    NetDelay { rank: i32, from: i64, ms: f64 },
    /// `closed`: the coordinator sees the process's connection close (a killed process);
    /// otherwise the rank just goes silent (a host cut off).
    Kill { rank: i32, at: i64, closed: bool },
    Stall { rank: i32, at: i64 },
    LossJump { at: i64 },
}

fn s(ts: i64, metric: &str, value: f64, rank: i32, step: i64) -> Sample {
    Sample { ts_us: ts, metric: metric.into(), value, unit: "ms".into(), rank: Some(rank), step: Some(step) }
}

/// Extra compute of rank `r` at `step`, and whether the fault starts there.
fn slow_extra(fault: Fault, r: i32, step: i64) -> Option<(f64, bool)> {
    match fault {
        Fault::Slow { rank, from, ms } if r == rank && step >= from => Some((ms, step == from)),
        Fault::SlowPair { first, second, ms } => [first, second].into_iter().find(|(rank, from)| r == *rank && step >= *from).map(|(_, from)| (ms, step == from)),
        _ => None,
    }
}

/// Samples of `steps` steps, sorted by time. Compute ~2 ms (±30 %, and one step in 20 on
/// some rank 3× slower for one step: OS noise), all-reduce ~5 ms after the slowest rank, and
/// now and then two steps with 20 ms more all-reduce time, as a busy 2-core CI machine shows.
/// Each link's data spends ~0.3 ms on it (one link in 20 per step 10 ms: a receiver
/// descheduled on a busy machine).
fn simulate(steps: i64, fault: Fault, seed: u64) -> Vec<Sample> {
    let mut noise = Noise::new(seed);
    // The links' own stream: the other draws stay those the thresholds were tested with.
    let mut link_noise = Noise::new(seed.wrapping_add(1_000));
    let mut out = Vec::new();
    let mut t: i64 = 1_000_000_000;
    let mut loss = 0.5;
    let mut burst = 0;
    let heartbeats = |out: &mut Vec<Sample>, from: i64, to: i64, ranks: &[i32], step: i64| {
        let mut h = from - from % HEARTBEAT_US + HEARTBEAT_US;
        while h < to {
            for &r in ranks {
                out.push(Sample { unit: "event".into(), ..s(h + r as i64 * 7, "cluster.heartbeat", step as f64, r, step) });
            }
            h += HEARTBEAT_US;
        }
    };
    for step in 0..steps {
        let all: Vec<i32> = (0..WORLD).collect();
        match fault {
            Fault::Kill { rank, at, .. } | Fault::Stall { rank, at } if step == at => {
                let live: Vec<i32> = all.iter().copied().filter(|r| *r != rank || matches!(fault, Fault::Stall { .. })).collect();
                out.push(Sample { unit: "event".into(), ..s(t, &format!("cluster.fault.{}", if matches!(fault, Fault::Kill { .. }) { "kill_rank" } else { "stall" }), 0.0, rank, step) });
                for r in all.iter().filter(|r| **r != rank) {
                    out.push(s(t, "cluster.compute_ms", 2.0, *r, step));
                }
                if let Fault::Kill { closed: true, .. } = fault {
                    out.push(Sample { unit: "event".into(), ..s(t + 3_000, "cluster.worker_exit", 1.0, rank, step) });
                }
                // Survivors wait 2 s in the all-reduce, heartbeating, then the run ends.
                heartbeats(&mut out, t, t + 2_000_000, &live, step);
                out.sort_by_key(|x| x.ts_us);
                return out;
            }
            _ => {}
        }
        let mut ends = Vec::new();
        for r in 0..WORLD {
            let mut c = 2.0 * (1.0 + 0.3 * (noise.uniform() - 0.5));
            if noise.uniform() < 0.05 {
                c *= 3.0;
            }
            if let Some((ms, onset)) = slow_extra(fault, r, step) {
                c += ms;
                if onset {
                    out.push(Sample { unit: "event".into(), ..s(t, "cluster.fault.slow_rank", ms, r, step) });
                }
            }
            out.push(s(t, "cluster.compute_ms", c, r, step));
            ends.push(t + (c * 1e3) as i64);
        }
        let mut ar = 5.0 * (1.0 + 0.4 * (noise.uniform() - 0.5));
        if burst == 0 && noise.uniform() < 0.05 {
            burst = 2;
        }
        if burst > 0 {
            burst -= 1;
            ar += 20.0;
        }
        let mut links: Vec<f64> = (0..WORLD).map(|_| if link_noise.uniform() < 0.05 { 10.0 } else { 0.3 * (1.0 + 0.5 * link_noise.uniform()) }).collect();
        if let Fault::NetDelay { rank, from, ms } = fault
            && step >= from
        {
            // Six exchanges per all-reduce of four ranks, each delayed.
            ar += 6.0 * ms;
            links[((rank + 1) % WORLD) as usize] += 6.0 * ms;
            if step == from {
                out.push(Sample { unit: "event".into(), ..s(t, "cluster.fault.net_delay", ms, rank, step) });
            }
        }
        let done = *ends.iter().max().unwrap() + (ar * 1e3) as i64;
        loss = if matches!(fault, Fault::LossJump { at } if at == step) { loss * 4.0 } else { loss * 0.9 + 0.001 * noise.uniform() };
        for r in 0..WORLD {
            let e = ends[r as usize];
            out.push(s(e, "cluster.allreduce_ms", (done - e) as f64 / 1e3, r, step));
            out.push(s(e, "cluster.link_ms", links[r as usize], r, step));
            out.push(s(t, "cluster.step_ms", (done - t) as f64 / 1e3, r, step));
            out.push(s(t, "cluster.loss", loss * (1.0 + 0.01 * noise.normal()), r, step));
        }
        heartbeats(&mut out, t, done, &all, step);
        t = done + 200;
    }
    out.sort_by_key(|x| x.ts_us);
    out
}

fn detect(samples: &[Sample], steps: i64) -> Vec<trackiq_schemas::Detection> {
    let mut m = ClusterMonitor::new(DetectorConfig::default(), "run");
    m.set_shape(Some(WORLD as usize), Some(steps));
    let mut out = Vec::new();
    for smp in samples {
        out.extend(m.observe(smp, smp.ts_us));
    }
    let end = samples.last().map_or(0, |x| x.ts_us);
    out.extend(m.finish(end, end));
    out
}

#[test]
fn no_false_alarms_over_fifty_steps_of_jittery_runs() {
    for seed in 1..=20 {
        let d = detect(&simulate(50, Fault::None, seed), 50);
        assert!(d.is_empty(), "seed {seed}: {:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>());
    }
}

#[test]
fn slow_rank_is_a_straggler_within_three_steps() {
    let samples = simulate(30, Fault::Slow { rank: 2, from: 10, ms: 50.0 }, 3);
    let d = detect(&samples, 30);
    let st = d.iter().find(|d| d.detector == "straggler").expect("straggler found");
    assert_eq!((st.rank, st.step), (Some(2), Some(12)), "{}", st.message);
    assert!(d.iter().filter(|d| d.detector == "straggler").all(|d| d.rank == Some(2)), "only the slow rank is blamed");
}

#[test]
fn two_overlapping_slow_ranks_are_both_stragglers() {
    let samples = simulate(40, Fault::SlowPair { first: (2, 10), second: (0, 20), ms: 40.0 }, 8);
    let d = detect(&samples, 40);
    let found: Vec<(Option<i32>, Option<i64>)> = d.iter().filter(|d| d.detector == "straggler").map(|d| (d.rank, d.step)).collect();
    assert_eq!(found, [(Some(2), Some(12)), (Some(0), Some(22))], "{:?}", d.iter().map(|d| &d.message).collect::<Vec<_>>());
}

#[test]
fn a_slow_link_is_blamed_on_its_sender() {
    for rank in 0..WORLD {
        let d = detect(&simulate(30, Fault::NetDelay { rank, from: 10, ms: 20.0 }, 10 + rank as u64), 30);
        let link = d.iter().find(|d| d.detector == "slow_link").expect("slow link found");
        assert_eq!((link.rank, link.step), (Some(rank), Some(12)), "{}", link.message);
        assert!(link.message.contains(&format!("link rank {rank} → rank {}", (rank + 1) % WORLD)), "{}", link.message);
        assert_eq!(d.iter().filter(|d| d.detector == "slow_link").count(), 1, "{d:?}");
    }
}

#[test]
fn killed_rank_is_failed_when_its_connection_closes() {
    let samples = simulate(30, Fault::Kill { rank: 3, at: 10, closed: true }, 4);
    let d = detect(&samples, 30);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].detector.as_str(), d[0].rank, d[0].step), ("failed_worker", Some(3), Some(10)));
    let injected = samples.iter().find(|s| s.metric.starts_with("cluster.fault.")).unwrap().ts_us;
    assert_eq!(d[0].event_ts - injected, 3_000, "at the closed connection, not a heartbeat timeout later");
}

#[test]
fn silent_rank_fails_its_heartbeat_timeout() {
    let samples = simulate(30, Fault::Kill { rank: 3, at: 10, closed: false }, 4);
    let d = detect(&samples, 30);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].detector.as_str(), d[0].rank), ("failed_worker", Some(3)));
    let injected = samples.iter().find(|s| s.metric.starts_with("cluster.fault.")).unwrap().ts_us;
    // Heartbeats every 100 ms, limit 1000 ms: detected between 1.0 and 1.2 s of event time.
    let latency_ms = (d[0].event_ts - injected) as f64 / 1e3;
    assert!((1000.0..1200.0).contains(&latency_ms), "{latency_ms}");
}

#[test]
fn stalled_rank_keeps_heartbeating_and_is_named() {
    let d = detect(&simulate(30, Fault::Stall { rank: 1, at: 10 }, 5), 30);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].detector.as_str(), d[0].rank, d[0].step), ("stalled_worker", Some(1), Some(10)));
}

#[test]
fn network_delay_is_also_an_allreduce_spike_and_loss_jump_a_divergence() {
    let d = detect(&simulate(30, Fault::NetDelay { rank: 1, from: 10, ms: 20.0 }, 6), 30);
    let spike = d.iter().find(|d| d.detector == "allreduce_spike").expect("spike");
    assert_eq!(spike.step, Some(12), "three steps in a row: {}", spike.message);
    let d = detect(&simulate(30, Fault::LossJump { at: 15 }, 7), 30);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].detector.as_str(), d[0].step), ("loss_divergence", Some(15)));
}

#[test]
fn faults_match_their_detector_and_unexplained_detections_are_false_alarms() {
    let samples = simulate(30, Fault::Slow { rank: 2, from: 10, ms: 50.0 }, 3);
    let d = detect(&samples, 30);
    let (health, derived) = cluster_health(&samples, &d, Some(32)).unwrap();
    assert_eq!(health.world_size, 4);
    assert_eq!(health.steps, 30);
    assert_eq!(health.loss.len(), 30);
    assert_eq!(health.allreduce_ms.len(), 4);
    assert_eq!(health.allreduce_ms[0].len(), 30);
    assert_eq!(health.false_alarms, 0);
    let f = &health.faults[0];
    assert_eq!((f.kind.as_str(), f.rank, f.detector.as_deref()), ("slow_rank", 2, Some("straggler")));
    let latency = f.latency_ms.unwrap();
    assert!(latency > 0.0 && latency < 400.0, "three slow steps of ~57 ms: {latency}");
    assert!(derived.iter().any(|m| m.name == "detection_latency_ms.slow_rank" && m.value == latency));
    assert!(health.comm_overhead_pct > 0.0 && health.comm_overhead_pct < 100.0);

    // A fault nobody caught is missed; a detection before any fault is a false alarm.
    let fault = FaultOutcome { kind: "stall".into(), rank: 1, step: 5, injected_at: 10_000, detector: None, detected_at: None, latency_ms: None };
    let mut early = d[0].clone();
    early.event_ts = 9_000;
    let (m, false_alarms) = match_faults(&[fault], &[early]);
    assert_eq!((m[0].latency_ms, false_alarms), (None, 1));
}

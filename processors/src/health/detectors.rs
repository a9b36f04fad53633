//! Streaming cluster-health detectors over the samples of one distributed run, in event
//! time (the samples' timestamps), so a replay after a restart reaches the same conclusions.
//! Each detector fires at most once per run (per rank where it blames one).
//!
//! Detectors that blame a rank compare it with its peers at the same step (the lower median
//! over ranks), never with its own past: a fault already acting in the run raises no
//! reference, so a second fault is seen as well as a first.
//!
//! - **straggler**: a rank's compute time > `straggler_factor` × the lower median over ranks
//!   at that step, while p99/p50 of recent compute times over all ranks > `straggler_tail_ratio`,
//!   for `straggler_steps` consecutive steps. Compute time, not step time: synchronous ranks
//!   all share the slowest rank's step time, the difference shows before the all-reduce.
//! - **slow_link**: the time the all-reduce's data spent on the link into a rank
//!   (`cluster.link_ms`, measured by the ring per message) > `link_factor` × the lower median
//!   over links at that step, for `link_steps` consecutive steps. It blames the sending rank
//!   of that link: all-reduce times cannot, since every rank of a ring waits alike.
//! - **failed_worker**: a rank's connection to the coordinator closed before its job ended
//!   (`cluster.worker_exit`), or no heartbeat from it for `heartbeat_timeout_ms` while its
//!   peers' events go on (or until the run ended): a host cut off without a closed connection.
//! - **stalled_worker**: a rank keeps sending heartbeats but has not finished the compute of
//!   a step that a peer finished more than max(`stall_timeout_ms`, `stall_step_factor` × the
//!   median recent step time) earlier.
//! - **loss_divergence**: the mean loss over ranks at a step > mean + `loss_sigmas` σ of the
//!   previous `loss_window` steps, and at least `loss_min_rise` above that mean.
//! - **allreduce_spike**: a rank's all-reduce time > `spike_factor` × its mean over the
//!   previous `spike_window` steps (and `spike_min_excess_ms` above it) for `spike_steps`
//!   consecutive steps.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use trackiq_schemas::{Detection, Sample};

/// Thresholds of the cluster-health detectors (`[aggregator.cluster]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Straggler: a rank's compute time above this multiple of the median over ranks.
    pub straggler_factor: f64,
    /// Straggler: only while p99/p50 of recent compute times over all ranks exceeds this.
    pub straggler_tail_ratio: f64,
    /// Straggler: for this many consecutive steps.
    pub straggler_steps: u32,
    /// Straggler: and at least this many milliseconds above the median.
    pub straggler_min_excess_ms: f64,
    /// Failed worker: no heartbeat from a rank for this long (event time).
    pub heartbeat_timeout_ms: u64,
    /// Stalled worker: heartbeats continue, but a step its peers computed this long ago is not
    /// computed (at least; see `stall_step_factor`).
    pub stall_timeout_ms: u64,
    /// Stalled worker: and at least this multiple of the median recent step time (slower
    /// steps, e.g. on a busy machine, wait longer).
    pub stall_step_factor: f64,
    /// Slow link: the data's time on a link above this multiple of the lower median over links.
    pub link_factor: f64,
    /// Slow link: and at least this many milliseconds above it.
    pub link_min_excess_ms: f64,
    /// Slow link: for this many consecutive steps.
    pub link_steps: u32,
    /// Loss divergence: steps in the reference window.
    pub loss_window: usize,
    /// Loss divergence: standard deviations above the window mean.
    pub loss_sigmas: f64,
    /// Loss divergence: and at least this relative rise over the window mean (0.1 = 10 %).
    pub loss_min_rise: f64,
    /// All-reduce spike: multiple of the rank's recent mean all-reduce time.
    pub spike_factor: f64,
    /// All-reduce spike: steps in the rank's reference window.
    pub spike_window: usize,
    /// All-reduce spike: and at least this many milliseconds above the mean.
    pub spike_min_excess_ms: f64,
    /// All-reduce spike: for this many consecutive steps.
    pub spike_steps: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            straggler_factor: 2.0,
            straggler_tail_ratio: 1.3,
            straggler_steps: 3,
            straggler_min_excess_ms: 10.0,
            heartbeat_timeout_ms: 1000,
            stall_timeout_ms: 250,
            stall_step_factor: 5.0,
            link_factor: 3.0,
            link_min_excess_ms: 10.0,
            link_steps: 3,
            loss_window: 10,
            loss_sigmas: 2.0,
            loss_min_rise: 0.1,
            spike_factor: 3.0,
            spike_window: 5,
            spike_min_excess_ms: 20.0,
            spike_steps: 3,
        }
    }
}

/// Detector state of one run.
pub struct ClusterMonitor {
    cfg: DetectorConfig,
    run_id: String,
    world: usize,
    /// Steps of the run, when known: a rank past its last step is finished, not silent.
    steps: Option<i64>,
    watermark: i64,
    /// rank -> (last event ts, its step)
    last_heartbeat: BTreeMap<i32, (i64, i64)>,
    last_computed: BTreeMap<i32, i64>,
    finished: HashSet<i32>,
    /// step -> rank -> (compute end ts, compute ms)
    compute: BTreeMap<i64, BTreeMap<i32, (i64, f64)>>,
    recent_compute: VecDeque<f64>,
    straggling: BTreeMap<i32, u32>,
    /// step -> receiving rank -> (ts, ms on the link into it)
    links: BTreeMap<i64, BTreeMap<i32, (i64, f64)>>,
    /// receiving rank -> consecutive slow steps
    slow_links: BTreeMap<i32, u32>,
    recent_steps: VecDeque<f64>,
    allreduce: BTreeMap<i32, VecDeque<f64>>,
    spiking: BTreeMap<i32, u32>,
    loss: BTreeMap<i64, (f64, usize)>,
    loss_history: VecDeque<f64>,
    fired: HashSet<(&'static str, Option<i32>)>,
}

/// The lower median: the middle value, or the lower of the two middle ones. With two of four
/// ranks slow, the median would be halfway to them and hide both; the lower median stays with
/// the healthy ones.
fn lower_median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// Mean and sample standard deviation (0 below two values) of a window.
fn mean_sd(v: &VecDeque<f64>) -> (f64, f64) {
    let (mean, sd) = trackiq_stats::mean_stdev(&v.iter().copied().collect::<Vec<_>>());
    (mean, sd.unwrap_or(0.0))
}

impl ClusterMonitor {
    pub fn new(cfg: DetectorConfig, run_id: &str) -> Self {
        ClusterMonitor {
            cfg,
            run_id: run_id.to_string(),
            world: 0,
            steps: None,
            watermark: i64::MIN,
            last_heartbeat: BTreeMap::new(),
            last_computed: BTreeMap::new(),
            finished: HashSet::new(),
            compute: BTreeMap::new(),
            recent_compute: VecDeque::new(),
            straggling: BTreeMap::new(),
            links: BTreeMap::new(),
            slow_links: BTreeMap::new(),
            recent_steps: VecDeque::new(),
            allreduce: BTreeMap::new(),
            spiking: BTreeMap::new(),
            loss: BTreeMap::new(),
            loss_history: VecDeque::new(),
            fired: HashSet::new(),
        }
    }

    /// What the run announced: its world size and number of steps.
    pub fn set_shape(&mut self, world: Option<usize>, steps: Option<i64>) {
        if let Some(w) = world {
            self.world = self.world.max(w);
        }
        self.steps = steps.or(self.steps);
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(&mut self, out: &mut Vec<Detection>, detector: &'static str, rank: Option<i32>, key_rank: Option<i32>, step: Option<i64>, ts: i64, now: i64, value: f64, threshold: f64, message: String) {
        if self.fired.insert((detector, key_rank)) {
            out.push(Detection { run_id: self.run_id.clone(), detector: detector.into(), rank, step, event_ts: ts, detected_at: now, value, threshold, message });
        }
    }

    /// Feeds one sample of the run; returns the detections it triggers. `now` is the wall clock (µs).
    pub fn observe(&mut self, s: &Sample, now: i64) -> Vec<Detection> {
        let mut out = Vec::new();
        let (Some(rank), step) = (s.rank, s.step) else {
            return out;
        };
        self.world = self.world.max(rank as usize + 1);
        self.watermark = self.watermark.max(s.ts_us);
        // Any event of a rank shows it alive at that time; heartbeats fill the gaps between steps.
        let seen = self.last_heartbeat.entry(rank).or_insert((s.ts_us, step.unwrap_or(0)));
        if s.ts_us >= seen.0 {
            *seen = (s.ts_us, step.unwrap_or(seen.1));
        }
        match s.metric.as_str() {
            "cluster.heartbeat" => self.check_stall(rank, s.ts_us, now, &mut out),
            "cluster.compute_ms" => {
                if let Some(step) = step {
                    let end = s.ts_us.saturating_add((s.value * 1e3) as i64);
                    self.last_computed.entry(rank).and_modify(|c| *c = (*c).max(step)).or_insert(step);
                    self.compute.entry(step).or_default().insert(rank, (end, s.value));
                    self.check_straggler(step, now, &mut out);
                }
            }
            "cluster.allreduce_ms" => self.check_spike(rank, step, s.ts_us, s.value, now, &mut out),
            "cluster.link_ms" => {
                if let Some(step) = step {
                    self.links.entry(step).or_default().insert(rank, (s.ts_us, s.value));
                    self.check_links(step, now, &mut out);
                }
            }
            "cluster.worker_exit" => {
                let step = step.unwrap_or(0);
                let msg = format!("rank {rank}: its process's connection to the coordinator closed at step {step}, before its job ended");
                self.fire(&mut out, "failed_worker", Some(rank), Some(rank), Some(step), s.ts_us, now, 0.0, 0.0, msg);
            }
            "cluster.loss" => {
                if let Some(step) = step {
                    let e = self.loss.entry(step).or_insert((0.0, 0));
                    *e = (e.0 + s.value, e.1 + 1);
                    self.check_loss(now, &mut out);
                }
            }
            "cluster.step_ms" => {
                self.recent_steps.push_back(s.value);
                while self.recent_steps.len() > 10 * self.world.max(1) {
                    self.recent_steps.pop_front();
                }
                if let (Some(step), Some(total)) = (step, self.steps)
                    && step + 1 >= total
                {
                    self.finished.insert(rank);
                }
            }
            _ => {}
        }
        self.check_silence(self.watermark, now, &mut out);
        out
    }

    /// The run ended at `ended_at` (µs): ranks silent since long before that have failed.
    pub fn finish(&mut self, ended_at: i64, now: i64) -> Vec<Detection> {
        let mut out = Vec::new();
        self.check_silence(self.watermark.max(ended_at), now, &mut out);
        out
    }

    fn check_silence(&mut self, at: i64, now: i64, out: &mut Vec<Detection>) {
        let limit = self.cfg.heartbeat_timeout_ms as i64 * 1000;
        let silent: Vec<(i32, i64, i64)> = self
            .last_heartbeat
            .iter()
            .filter(|(r, (ts, _))| !self.finished.contains(r) && at - ts > limit)
            .map(|(r, (ts, step))| (*r, *ts, *step))
            .collect();
        for (rank, ts, step) in silent {
            let silent_ms = (at - ts) as f64 / 1e3;
            let msg = format!("rank {rank}: no heartbeat for {silent_ms:.0} ms (limit {} ms), last at step {step}", self.cfg.heartbeat_timeout_ms);
            self.fire(out, "failed_worker", Some(rank), Some(rank), Some(step), at, now, silent_ms, self.cfg.heartbeat_timeout_ms as f64, msg);
        }
    }

    fn check_stall(&mut self, rank: i32, ts: i64, now: i64, out: &mut Vec<Detection>) {
        let stuck_at = self.last_computed.get(&rank).map_or(0, |c| c + 1);
        let Some(peers) = self.compute.get(&stuck_at) else { return };
        let Some(first_end) = peers.iter().filter(|(r, _)| **r != rank).map(|(_, (end, _))| *end).min() else { return };
        let waited_ms = (ts - first_end) as f64 / 1e3;
        let mut steps: Vec<f64> = self.recent_steps.iter().copied().collect();
        let typical = trackiq_stats::summarize(&mut steps).map_or(0.0, |s| s.p50);
        let limit = (self.cfg.stall_timeout_ms as f64).max(self.cfg.stall_step_factor * typical);
        if waited_ms > limit {
            let msg = format!("rank {rank}: heartbeats continue, but step {stuck_at} is not computed {waited_ms:.0} ms after a peer computed it (limit {limit:.0} ms)");
            self.fire(out, "stalled_worker", Some(rank), Some(rank), Some(stuck_at), ts, now, waited_ms, limit, msg);
        }
    }

    fn check_straggler(&mut self, step: i64, now: i64, out: &mut Vec<Detection>) {
        let Some(at) = self.compute.get(&step) else { return };
        if at.len() < self.world.max(2) {
            return;
        }
        let per_rank: Vec<(i32, i64, f64)> = at.iter().map(|(r, (end, ms))| (*r, *end, *ms)).collect();
        let values: Vec<f64> = per_rank.iter().map(|p| p.2).collect();
        let med = lower_median(&values);
        let window = 10 * self.world.max(1);
        for v in &values {
            self.recent_compute.push_back(*v);
        }
        while self.recent_compute.len() > window {
            self.recent_compute.pop_front();
        }
        let mut pool: Vec<f64> = self.recent_compute.iter().copied().collect();
        let tail = match trackiq_stats::summarize(&mut pool) {
            Some(s) if s.p50 > 0.0 => s.p99 / s.p50,
            _ => 1.0,
        };
        for (rank, end, ms) in per_rank {
            let slow = ms > self.cfg.straggler_factor * med && ms - med >= self.cfg.straggler_min_excess_ms && tail > self.cfg.straggler_tail_ratio;
            let count = self.straggling.entry(rank).or_default();
            *count = if slow { *count + 1 } else { 0 };
            if *count >= self.cfg.straggler_steps {
                let limit = self.cfg.straggler_factor * med;
                let msg = format!("rank {rank}: compute {ms:.1} ms vs lower median {med:.1} ms over ranks ({} steps in a row; p99/p50 {tail:.2})", self.cfg.straggler_steps);
                self.fire(out, "straggler", Some(rank), Some(rank), Some(step), end, now, ms, limit, msg);
            }
        }
        // Steps far behind are complete; keep the map small.
        while self.compute.len() > 64 {
            self.compute.pop_first();
        }
    }

    fn check_links(&mut self, step: i64, now: i64, out: &mut Vec<Detection>) {
        let world = self.world.max(2);
        let Some(at) = self.links.get(&step) else { return };
        if at.len() < world {
            return;
        }
        let per_rank: Vec<(i32, i64, f64)> = at.iter().map(|(r, (ts, ms))| (*r, *ts, *ms)).collect();
        let reference = lower_median(&per_rank.iter().map(|p| p.2).collect::<Vec<_>>());
        let limit = (self.cfg.link_factor * reference).max(reference + self.cfg.link_min_excess_ms);
        for (receiver, ts, ms) in per_rank {
            let count = self.slow_links.entry(receiver).or_default();
            *count = if ms > limit { *count + 1 } else { 0 };
            if *count >= self.cfg.link_steps {
                let sender = (receiver + world as i32 - 1) % world as i32;
                let msg = format!(
                    "link rank {sender} → rank {receiver}: the all-reduce's data spent {ms:.1} ms on it vs {reference:.1} ms on the lower-median link ({} steps in a row)",
                    self.cfg.link_steps
                );
                self.fire(out, "slow_link", Some(sender), Some(sender), Some(step), ts, now, ms, limit, msg);
            }
        }
        while self.links.len() > 64 {
            self.links.pop_first();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_spike(&mut self, rank: i32, step: Option<i64>, ts: i64, ms: f64, now: i64, out: &mut Vec<Detection>) {
        let window = self.cfg.spike_window.max(1);
        let hist = self.allreduce.entry(rank).or_default();
        if hist.len() >= window.min(3) {
            let (mean, _) = mean_sd(hist);
            let limit = (self.cfg.spike_factor * mean).max(mean + self.cfg.spike_min_excess_ms);
            let count = self.spiking.entry(rank).or_default();
            if ms > limit {
                *count += 1;
                if *count >= self.cfg.spike_steps {
                    let msg = format!("rank {rank}: all-reduce {ms:.1} ms vs recent mean {mean:.1} ms ({} steps in a row)", self.cfg.spike_steps);
                    self.fire(out, "allreduce_spike", Some(rank), None, step, ts, now, ms, limit, msg);
                }
                // A spike does not enter the reference window: it would hide the next one.
                return;
            }
            *count = 0;
        }
        let hist = self.allreduce.entry(rank).or_default();
        hist.push_back(ms);
        while hist.len() > window {
            hist.pop_front();
        }
    }

    fn check_loss(&mut self, now: i64, out: &mut Vec<Detection>) {
        // A step's mean loss is final once every rank reported it.
        while let Some((&step, &(sum, n))) = self.loss.first_key_value() {
            if n < self.world.max(1) {
                break;
            }
            self.loss.pop_first();
            let loss = sum / n as f64;
            if self.loss_history.len() >= self.cfg.loss_window.clamp(2, 5) {
                let (mean, sd) = mean_sd(&self.loss_history);
                let limit = (mean + self.cfg.loss_sigmas * sd).max(mean * (1.0 + self.cfg.loss_min_rise));
                if loss > limit {
                    let msg = format!("loss {loss:.4} at step {step} above {limit:.4} (mean {mean:.4} + {}σ of the last {} steps)", self.cfg.loss_sigmas, self.loss_history.len());
                    self.fire(out, "loss_divergence", None, None, Some(step), self.watermark, now, loss, limit, msg);
                }
            }
            self.loss_history.push_back(loss);
            while self.loss_history.len() > self.cfg.loss_window.max(2) {
                self.loss_history.pop_front();
            }
        }
    }
}

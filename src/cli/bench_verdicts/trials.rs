//! The offline half of `trackiq bench verdicts`: the real run summaries judged again with the
//! verdict code (`Baselines::judge`, in run order, fresh state), per threshold model: A/A
//! false-alarm rates and A/B detection trials. Pure: no Kafka, no clock, no sleeping.

use trackiq_processors::verdict::config::{ModelName, ModelRule};
use trackiq_processors::verdict::judging::{HOST_CONTENTION_METRIC, SPEED_PROBE_METRIC};
use trackiq_processors::verdict::{Baselines, VerdictConfig};
use trackiq_schemas::{RunSummary, Severity};

/// The threshold models compared, with conventional boundaries (name, model, warn, block):
/// - `percentage`: percent worse than the baseline mean (the seed's 5 % warn, 10 % block);
/// - `z_score`, `t_test`, `log_normal`: cumulative probability of the distribution fitted to
///   the baseline runs, 0.977 ≈ mean + 2σ and 0.99865 ≈ mean + 3σ (the normal's 2σ/3σ points);
/// - `iqr`, `delta_iqr`: multiples of the interquartile range (Tukey's fences, 1.5 and 3.0).
pub const MODELS: &[(&str, ModelName, f64, f64)] = &[
    ("percentage", ModelName::Percentage, 5.0, 10.0),
    ("z_score", ModelName::ZScore, 0.977, 0.99865),
    ("t_test", ModelName::TTest, 0.977, 0.99865),
    ("log_normal", ModelName::LogNormal, 0.977, 0.99865),
    ("iqr", ModelName::Iqr, 1.5, 3.0),
    ("delta_iqr", ModelName::DeltaIqr, 1.5, 3.0),
];

/// `base` with one rule judging every metric of every series with `model`.
pub fn with_model(base: &VerdictConfig, model: ModelName, warn: f64, block: f64) -> VerdictConfig {
    let mut c = base.clone();
    c.rules = vec![ModelRule { metric: None, series: None, model, warn, block, min_samples: None }];
    c
}

/// Judges `runs` in order with fresh state; each run's severity.
pub fn judge_in_order<'a>(config: &VerdictConfig, runs: impl IntoIterator<Item = &'a RunSummary>) -> Vec<Severity> {
    let mut b = Baselines::new(config.clone());
    // `None` only for a run judged twice; the run ids here are distinct.
    runs.into_iter().map(|s| b.judge(s, s.ended_at).map_or(Severity::InsufficientData, |(v, _)| v.severity)).collect()
}

/// The summary with only the figures a run's severity can depend on: the gating metrics, the
/// host-contention and machine-speed metrics (noisy-host rule) and those run-level findings read (all-reduce,
/// scaling efficiency). Trends of the other figures cost most of a judgement and decide nothing
/// of the run's severity; [`evaluate`]'s caller checks that on the whole sequence.
pub fn decisive_only(config: &VerdictConfig, s: &RunSummary) -> RunSummary {
    let keep = |name: &str, derived: bool| {
        let n = name.to_ascii_lowercase();
        config.info_of(name, derived).gates || name == HOST_CONTENTION_METRIC || name == SPEED_PROBE_METRIC || n.contains("allreduce") || n.contains("all_reduce") || n.contains("scaling_efficiency")
    };
    let mut t = s.clone();
    t.metrics.retain(|m| keep(&m.metric, false));
    t.derived.retain(|d| keep(&d.name, true));
    t
}

/// Run-level counts over judged runs; `insufficient_data` is counted apart.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Runs with a verdict other than `insufficient_data`.
    pub judged: usize,
    pub block: usize,
    pub warn: usize,
    pub insufficient: usize,
}

impl Rates {
    pub fn of(severities: impl IntoIterator<Item = Severity>) -> Rates {
        let mut r = Rates::default();
        for s in severities {
            match s {
                Severity::InsufficientData => r.insufficient += 1,
                Severity::Block => (r.judged, r.block) = (r.judged + 1, r.block + 1),
                Severity::Warn => (r.judged, r.warn) = (r.judged + 1, r.warn + 1),
                Severity::Pass | Severity::Improved => r.judged += 1,
            }
        }
        r
    }

    pub fn add(self, o: Rates) -> Rates {
        Rates { judged: self.judged + o.judged, block: self.block + o.block, warn: self.warn + o.warn, insufficient: self.insufficient + o.insufficient }
    }

    /// Percentage of judged runs that blocked; `None` when none was judged.
    pub fn block_pct(&self) -> Option<f64> {
        (self.judged > 0).then(|| 100.0 * self.block as f64 / self.judged as f64)
    }

    /// Percentage of judged runs that warned.
    pub fn warn_pct(&self) -> Option<f64> {
        (self.judged > 0).then(|| 100.0 * self.warn as f64 / self.judged as f64)
    }
}

/// Cut points of the detection trials: the number `j` of A runs (in order) before the B runs,
/// from `first` to `a_runs`, except cuts whose last A run is inside the hog window
/// (`hog`, 1-based, inclusive).
pub fn cuts(a_runs: usize, first: usize, hog: Option<(usize, usize)>) -> Vec<usize> {
    (first.max(1)..=a_runs).filter(|j| hog.is_none_or(|(from, to)| !(from..=to).contains(j))).collect()
}

/// One detection trial: A[..cut] then B[start..start + within], judged fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    pub cut: usize,
    pub start: usize,
    /// 1-based position of the first B run judged block.
    pub first_block: Option<usize>,
    /// 1-based position of the first B run judged warn or block.
    pub first_flag: Option<usize>,
}

pub fn trial(config: &VerdictConfig, a: &[RunSummary], cut: usize, b: &[RunSummary], start: usize, within: usize) -> Trial {
    let sev = judge_in_order(config, a[..cut].iter().chain(&b[start..start + within]));
    let bs = &sev[cut..];
    let first = |hit: fn(&Severity) -> bool| bs.iter().position(hit).map(|p| p + 1);
    Trial { cut, start, first_block: first(|s| *s == Severity::Block), first_flag: first(|s| matches!(s, Severity::Warn | Severity::Block)) }
}

/// Detection over trials.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Detection {
    pub trials: usize,
    pub by_block: usize,
    pub by_flag: usize,
    /// Mean position of the first block among the trials that blocked.
    pub mean_runs_block: Option<f64>,
    pub mean_runs_flag: Option<f64>,
}

impl Detection {
    pub fn of(trials: &[Trial]) -> Detection {
        let mean = |xs: Vec<usize>| (!xs.is_empty()).then(|| xs.iter().sum::<usize>() as f64 / xs.len() as f64);
        let blocks: Vec<usize> = trials.iter().filter_map(|t| t.first_block).collect();
        let flags: Vec<usize> = trials.iter().filter_map(|t| t.first_flag).collect();
        Detection { trials: trials.len(), by_block: blocks.len(), by_flag: flags.len(), mean_runs_block: mean(blocks), mean_runs_flag: mean(flags) }
    }

    pub fn block_pct(&self) -> Option<f64> {
        (self.trials > 0).then(|| 100.0 * self.by_block as f64 / self.trials as f64)
    }

    pub fn flag_pct(&self) -> Option<f64> {
        (self.trials > 0).then(|| 100.0 * self.by_flag as f64 / self.trials as f64)
    }
}

/// One model's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelResult {
    pub name: String,
    /// A/A, A runs judged in order: quiet runs and runs under the hog.
    pub quiet: Rates,
    pub hog: Rates,
    pub detection: Detection,
}

/// The measured runs, in the order they ran.
#[derive(Debug, Clone, Copy)]
pub struct Runs<'a> {
    pub a: &'a [RunSummary],
    /// `hog[i]`: A run `i` ran under the CPU hog.
    pub hog: &'a [bool],
    pub b: &'a [RunSummary],
}

/// Judges the A runs in order (A/A) and every trial (A/B) with `config`. `on_trial` is called
/// after each trial (progress).
pub fn evaluate(name: &str, config: &VerdictConfig, runs: Runs<'_>, cuts: &[usize], within: usize, on_trial: &(dyn Fn() + Sync)) -> ModelResult {
    let Runs { a, hog, b } = runs;
    let sev = judge_in_order(config, a);
    let pick = |under: bool| Rates::of(sev.iter().zip(hog).filter(|(_, h)| **h == under).map(|(s, _)| *s));
    let mut trials = Vec::new();
    for &cut in cuts.iter().filter(|&&c| c <= a.len()) {
        for start in 0..=b.len().saturating_sub(within) {
            if b.len() >= within {
                trials.push(trial(config, a, cut, b, start, within));
                on_trial();
            }
        }
    }
    ModelResult { name: name.to_string(), quiet: pick(false), hog: pick(true), detection: Detection::of(&trials) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A completed run of series `s` whose latency_ms has `mean` and a 2 % spread over 30 samples.
    fn run(i: usize, mean: f64) -> RunSummary {
        let metric = |name: &str, mean: f64| {
            serde_json::json!({"metric": name, "unit": "ms", "count": 30, "mean": mean, "stdev": mean * 0.02,
                "min": mean, "p50": mean, "p90": mean, "p95": mean, "p99": mean, "max": mean})
        };
        serde_json::from_value(serde_json::json!({
            "run": {"run_id": format!("r{i}"), "tool": "t", "tool_version": "0", "timestamp": 1_000 + i as i64,
                    "platform": {"hardware_name": "h", "os": "o", "cpu": "c"}, "workload": {"name": "w", "type": "compute"},
                    "version": {"env_hash": "e"}, "series_id": "s"},
            "status": "completed", "ended_at": 1_000 + i as i64, "sample_count": 30,
            "metrics": [metric("latency_ms", mean), metric(HOST_CONTENTION_METRIC, 1.0)],
        }))
        .expect("a valid summary")
    }

    #[test]
    fn cuts_skip_the_hog_window() {
        assert_eq!(cuts(12, 4, Some((5, 8))), vec![4, 9, 10, 11, 12]);
        assert_eq!(cuts(5, 0, None), vec![1, 2, 3, 4, 5]);
        assert!(cuts(3, 4, None).is_empty());
    }

    #[test]
    fn rates_leave_out_insufficient_data() {
        use Severity::*;
        let r = Rates::of([InsufficientData, InsufficientData, Pass, Warn, Block, Improved]);
        assert_eq!(r, Rates { judged: 4, block: 1, warn: 1, insufficient: 2 });
        assert_eq!((r.block_pct(), r.warn_pct()), (Some(25.0), Some(25.0)));
        assert_eq!(Rates::of([InsufficientData]).block_pct(), None);
    }

    #[test]
    fn a_steady_series_passes_and_ten_percent_more_work_is_detected() {
        // A: ±0.5 % around 10 ms; B: 11.5 ms (+15 %).
        let a: Vec<RunSummary> = (0..8).map(|i| run(i, 10.0 * (1.0 + [0.0, 0.005, -0.005][i % 3]))).collect();
        let b: Vec<RunSummary> = (8..12).map(|i| run(i, 11.5)).collect();
        let hog = [false, false, false, true, true, false, false, false];
        let cfg = with_model(&VerdictConfig::default(), ModelName::Percentage, 5.0, 10.0);
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let r = evaluate("percentage", &cfg, Runs { a: &a, hog: &hog, b: &b }, &cuts(a.len(), 3, Some((4, 5))), 3, &|| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        // Cuts 3, 6, 7, 8 × starts 0, 1 = 8 trials, each a fresh judgement.
        assert_eq!((r.detection.trials, seen.into_inner()), (8, 8));
        assert_eq!(r.quiet, Rates { judged: 3, block: 0, warn: 0, insufficient: 3 });
        assert_eq!(r.hog, Rates { judged: 2, block: 0, warn: 0, insufficient: 0 });
        assert_eq!((r.detection.by_block, r.detection.mean_runs_block), (8, Some(1.0)));
        // Only the decisive figures: the same severities.
        let trimmed: Vec<RunSummary> = a.iter().chain(&b).map(|s| decisive_only(&cfg, s)).collect();
        assert_eq!(judge_in_order(&cfg, a.iter().chain(&b)), judge_in_order(&cfg, &trimmed));
    }
}

//! The tables of `trackiq bench verdicts`.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use trackiq_processors::verdict::judging::HOST_CONTENTION_METRIC;
use trackiq_schemas::{RunSummary, Severity};

use super::hog::HogUsage;
use super::trials::{ModelResult, Rates};

/// Goals the figures are held to.
pub const GOAL_FALSE_BLOCK_PCT: f64 = 1.0;
pub const GOAL_DETECTION_PCT: f64 = 95.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A runs before the hog.
    Before,
    /// A runs while the hog spins.
    Hog,
    /// A runs after the hog.
    After,
    /// B runs (+10 % work), quiet machine.
    B,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Before => "A quiet (before hog)",
            Phase::Hog => "A under CPU hog",
            Phase::After => "A quiet (after hog)",
            Phase::B => "B +work, quiet",
        }
    }
}

/// One run as measured and judged live.
pub struct RunRecord {
    pub label: String,
    pub phase: Phase,
    pub live: Severity,
    pub summary: RunSummary,
}

/// What the machine's load was.
pub struct Load {
    pub start: String,
    pub hog_end: Option<String>,
    pub end: String,
    pub hog: Option<HogUsage>,
}

fn pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.1} %"))
}

fn metric_mean(runs: &[&RunRecord], metric: &str) -> Option<f64> {
    let xs: Vec<f64> = runs.iter().filter_map(|r| r.summary.metrics.iter().find(|m| m.metric == metric).map(|m| m.mean)).collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

pub fn print_load(runs: &[RunRecord], load: &Load) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["phase", "runs", "latency_ms (mean of runs)", HOST_CONTENTION_METRIC, "cpu_utilization_percent"]);
    for phase in [Phase::Before, Phase::Hog, Phase::After, Phase::B] {
        let rs: Vec<&RunRecord> = runs.iter().filter(|r| r.phase == phase).collect();
        if rs.is_empty() {
            continue;
        }
        let f = |m: &str, unit: &str| metric_mean(&rs, m).map_or("n/a".into(), |x| format!("{x:.3}{unit}"));
        t.add_row([phase.name().to_string(), rs.len().to_string(), f("latency_ms", ""), f(HOST_CONTENTION_METRIC, " %"), f("cpu_utilization_percent", " %")]);
    }
    println!("machine load per phase (means of the runs' summaries)");
    println!("{t}");
    println!(
        "/proc/loadavg (1, 5, 15 min): start {} · end of hog {} · end {}",
        load.start,
        load.hog_end.as_deref().unwrap_or("n/a"),
        load.end
    );
    if let Some(h) = &load.hog {
        let cores = h.cores().map_or("n/a".into(), |c| format!("{c:.2}"));
        let cpu = h.cpu.map_or("n/a".into(), |c| format!("{:.1}", c.as_secs_f64()));
        println!("CPU hog: {} spinning processes for {:.1} s used {cpu} CPU-s = {cores} cores on average", h.procs, h.wall.as_secs_f64());
    }
}

fn letter(s: Severity) -> char {
    match s {
        Severity::Pass => '.',
        Severity::Improved => '+',
        Severity::Warn => 'W',
        Severity::Block => 'B',
        Severity::InsufficientData => '?',
    }
}

/// The live verdicts: A/A rates, split quiet vs hog, and the A/B detection.
pub fn print_live(runs: &[RunRecord], model: &str) {
    let rates = |f: &dyn Fn(Phase) -> bool| Rates::of(runs.iter().filter(|r| f(r.phase)).map(|r| r.live));
    let quiet = rates(&|p| matches!(p, Phase::Before | Phase::After));
    let hog = rates(&|p| p == Phase::Hog);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["A/A runs", "judged", "insufficient_data", "block", "warn", "false block % (goal ≤ 1 %)", "false warn %"]);
    for (name, r) in [("quiet", quiet), ("under CPU hog", hog), ("all", quiet.add(hog))] {
        t.add_row([name.to_string(), r.judged.to_string(), r.insufficient.to_string(), r.block.to_string(), r.warn.to_string(), pct(r.block_pct()), pct(r.warn_pct())]);
    }
    println!("live verdicts of the pipeline (default configuration: {model})");
    println!("{t}");
    let seq = |p: &dyn Fn(Phase) -> bool| runs.iter().filter(|r| p(r.phase)).map(|r| letter(r.live)).collect::<String>();
    println!("A runs in order (. pass  + improved  W warn  B block  ? insufficient_data; [hog]):");
    println!(
        "  {}[{}]{}",
        seq(&|p| p == Phase::Before),
        seq(&|p| p == Phase::Hog),
        seq(&|p| p == Phase::After)
    );
    let b: Vec<Severity> = runs.iter().filter(|r| r.phase == Phase::B).map(|r| r.live).collect();
    let names: Vec<&str> = b.iter().map(|s| s.as_str()).collect();
    println!("B runs (+10 % work) in order: {}", names.join(" "));
    let first = |hit: &dyn Fn(Severity) -> bool| b.iter().position(|s| hit(*s)).map_or("never".to_string(), |p| format!("{} run(s)", p + 1));
    println!(
        "runs until first detection: block after {} · warn or block after {}",
        first(&|s| s == Severity::Block),
        first(&|s| matches!(s, Severity::Warn | Severity::Block))
    );
}

/// Offline re-judging with the live configuration against the live verdicts; true when all agree.
pub fn print_agreement(runs: &[RunRecord], offline: &[Severity]) -> bool {
    let differ: Vec<String> = runs
        .iter()
        .zip(offline)
        .filter(|(r, o)| r.live != **o)
        .map(|(r, o)| format!("{} live {} offline {}", r.label, r.live.as_str(), o.as_str()))
        .collect();
    let agree = runs.len() - differ.len();
    if differ.is_empty() {
        println!("offline re-judging (default configuration) agrees with the live verdicts on {agree} of {} runs", runs.len());
    } else {
        println!("WARNING: offline re-judging (default configuration) agrees with the live verdicts on only {agree} of {} runs:", runs.len());
        for d in &differ {
            println!("WARNING:   {d}");
        }
        println!("WARNING: the figures below are not those of the live pipeline for these runs");
    }
    differ.is_empty()
}

pub fn print_models(results: &[ModelResult], within: usize) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "model".to_string(),
        "false block % (A/A, per run) [quiet · hog]".into(),
        "false warn %".into(),
        format!("detection within {within} runs % (block)"),
        "(warn or block)".into(),
        "mean runs to detect (block · warn/block)".into(),
        "trials".into(),
        format!("goals (false block ≤ {GOAL_FALSE_BLOCK_PCT} %, detection ≥ {GOAL_DETECTION_PCT} %)"),
    ]);
    for r in results {
        let all = r.quiet.add(r.hog);
        let d = &r.detection;
        let mean = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}"));
        let block_ok = all.block_pct().is_some_and(|p| p <= GOAL_FALSE_BLOCK_PCT);
        let detect_ok = d.block_pct().is_some_and(|p| p >= GOAL_DETECTION_PCT);
        let goals = match (block_ok, detect_ok) {
            _ if d.trials == 0 || all.judged == 0 => "n/a (nothing judged)".to_string(),
            (true, true) => "met".to_string(),
            (false, true) => "MISSED: false blocks".into(),
            (true, false) => "MISSED: detection".into(),
            (false, false) => "MISSED: both".into(),
        };
        t.add_row([
            r.name.clone(),
            format!("{} [{}/{} · {}/{}]", pct(all.block_pct()), r.quiet.block, r.quiet.judged, r.hog.block, r.hog.judged),
            format!("{} ({}/{})", pct(all.warn_pct()), all.warn, all.judged),
            format!("{} ({}/{})", pct(d.block_pct()), d.by_block, d.trials),
            format!("{} ({}/{})", pct(d.flag_pct()), d.by_flag, d.trials),
            format!("{} · {}", mean(d.mean_runs_block), mean(d.mean_runs_flag)),
            d.trials.to_string(),
            goals,
        ]);
    }
    println!("{t}");
}

/// The simulation (a complement to the real runs): noise-only series and +10 % steps at
/// CV 2, 5 and 10 %, judged with the live configuration.
pub fn print_simulation(cfg: &trackiq_processors::verdict::VerdictConfig, series: usize) {
    use trackiq_processors::verdict::simulation::{DETECT_WITHIN, RUNS, SEED, STEP_AT, simulate};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["simulated CV", "false block % (per run)", "false warn %", "runs judged", "+10 % detected within 3 runs (block)", "(warn or block)"]);
    for cv in [0.02, 0.05, 0.10] {
        let r = simulate(cfg, cv, 0.10, series, SEED);
        t.add_row(vec![
            format!("{:.0} %", cv * 100.0),
            format!("{:.2} %", r.false_block_pct()),
            format!("{:.2} %", r.false_warn_pct()),
            r.judged.to_string(),
            format!("{:.1} %", r.detected_block_pct()),
            format!("{:.1} %", r.detected_flagged_pct()),
        ]);
    }
    println!("simulation (complement, not evidence): {series} noise-only series of {RUNS} runs per CV, then {series} series stepping +10 % after {STEP_AT} runs, detection within {DETECT_WITHIN} runs; seed {SEED:#x}");
    println!("{t}");
}

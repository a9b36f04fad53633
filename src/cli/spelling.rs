//! One spelling per concept across the commands: how long something lasts is a duration
//! (`30s`, `500ms`, `1m30s`, `2h`; a plain number keeps the unit the flag had before), and a
//! concept has one flag name everywhere ([`RENAMED`]). An old spelling keeps working for one
//! release: it is rewritten before clap parses the line, with a warning naming the new one.

use std::ffi::OsString;
use std::time::Duration;

/// A duration flag's value: a humantime duration (`30s`, `1.5s`, `500ms`, `2h`), or a plain
/// number counted in `unit` (what the flag took before it took durations).
fn duration(s: &str, unit: Duration) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return Err(format!("`{s}` is not a duration (a number of at least 0, or e.g. 30s, 500ms, 2h)"));
        }
        return Ok(unit.mul_f64(n));
    }
    // humantime has no fractions ("1.5s"): those are seconds or milliseconds with a point.
    if let Some(ms) = trackiq_producers::units::parse_duration_ms(s) {
        return Ok(Duration::from_secs_f64(ms / 1e3));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration ({e}); e.g. 30s, 500ms, 1m30s, 2h"))
}

/// A duration; a plain number is seconds.
pub fn seconds(s: &str) -> Result<Duration, String> {
    duration(s, Duration::from_secs(1))
}

/// [`seconds`] as a number of seconds, for flags whose code counts in seconds.
pub fn seconds_f64(s: &str) -> Result<f64, String> {
    seconds(s).map(|d| d.as_secs_f64())
}

/// A duration; a plain number is milliseconds.
pub fn millis(s: &str) -> Result<Duration, String> {
    duration(s, Duration::from_millis(1))
}

/// A flag that changed name. `new` empty: the value is now a positional argument.
pub struct Renamed {
    /// The command it belongs to; empty: every command without an entry of its own for `old`.
    pub command: &'static [&'static str],
    pub old: &'static str,
    pub new: &'static str,
    /// Appended to a plain-number value: the unit the old flag counted in, now a duration.
    pub unit: Option<&'static str>,
}

const fn renamed(command: &'static [&'static str], old: &'static str, new: &'static str) -> Renamed {
    Renamed { command, old, new, unit: None }
}

/// Every renamed flag, specific commands before the catch-all entries.
pub const RENAMED: &[Renamed] = &[
    // Batch size: the items one iteration processes, `--batch-size` everywhere.
    renamed(&["bench", "compute"], "--batch", "--batch-size"),
    renamed(&["cluster", "run"], "--batch", "--batch-size"),
    renamed(&["cluster", "scaling"], "--batch", "--batch-size"),
    // ... while a record of samples is not a batch.
    renamed(&["bench", "ingest"], "--batch", "--samples-per-record"),
    // Where a command keeps what it makes: `--out DIR` (the history is `--data URL`).
    renamed(&["demo"], "--dir", "--out"),
    renamed(&["bench", "verdicts"], "--dir", "--out"),
    renamed(&["bench", "dashboard"], "--dir", "--out"),
    // Iterations: `--iterations` and `--warmup`, as `bench`.
    renamed(&["cluster", "bench"], "--iters", "--iterations"),
    renamed(&["cluster", "bench"], "--warmup-iters", "--warmup"),
    // `--workers` is a count; several world sizes are `--world-sizes`.
    renamed(&["cluster", "scaling"], "--workers", "--world-sizes"),
    // A run id is a positional argument, as in `compare` and `export`.
    renamed(&["gate"], "--run", ""),
    renamed(&["baseline", "set"], "--run", ""),
    // Listen addresses say what listens.
    renamed(&["ui"], "--listen", "--dashboard-listen"),
    renamed(&[], "--listen", "--broker-listen"),
    // Durations take units; the old unit-named flags keep their unit.
    Renamed { command: &["demo"], old: "--seconds", new: "--duration", unit: Some("s") },
    Renamed { command: &["bench", "http"], old: "--timeout-ms", new: "--timeout", unit: Some("ms") },
    Renamed { command: &["bench", "llm"], old: "--timeout-s", new: "--timeout", unit: Some("s") },
    Renamed { command: &[], old: "--heartbeat-ms", new: "--heartbeat", unit: Some("ms") },
];

/// Commands that have subcommands: their second word is part of the command, not an argument.
const GROUPS: &[&str] = &["bench", "cluster", "baseline", "alerts"];
/// Global flags that take a value (so the value is not read as a command word).
const GLOBAL_VALUES: &[&str] = &["--config", "--data", "--brokers", "--broker-listen", "--listen", "--topic-prefix", "--kafka-option"];

/// The command words of `args` (without the program name): `["bench", "ingest"]`.
pub(super) fn command_of(args: &[String]) -> Vec<&str> {
    let mut path = Vec::new();
    let mut i = 0;
    while i < args.len() && path.len() < 2 {
        let a = args[i].as_str();
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            i += usize::from(GLOBAL_VALUES.contains(&a));
        } else if path.is_empty() || GROUPS.contains(&path[0]) {
            path.push(a);
        } else {
            break;
        }
        i += 1;
    }
    path
}

/// `args` (program name first) with old spellings rewritten, and one warning per rewrite.
pub fn modernize(args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let Some(words) = args.iter().skip(1).map(|a| a.to_str().map(str::to_string)).collect::<Option<Vec<String>>>() else {
        return (args, Vec::new()); // not UTF-8: clap reports it
    };
    let path = command_of(&words);
    let mut out = vec![args[0].clone()];
    let mut warnings = Vec::new();
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        if word == "--" {
            out.push(word.into());
            out.extend(iter.map(OsString::from));
            break;
        }
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if word.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        let entry = RENAMED.iter().find(|r| r.old == flag && (r.command.is_empty() || path.starts_with(r.command)));
        let Some(r) = entry else {
            out.push(word.into());
            continue;
        };
        let shown = if path.is_empty() { "trackiq".to_string() } else { format!("trackiq {}", path.join(" ")) };
        let new = if r.new.is_empty() { "a positional argument".to_string() } else { format!("`{}`", r.new) };
        warnings.push(format!("warning: `{}` of `{shown}` is now {new}; the old spelling works until trackiq 0.3", r.old));
        let value = inline.or_else(|| iter.next().cloned());
        if !r.new.is_empty() {
            out.push(r.new.into());
        }
        if let Some(v) = value {
            let v = match r.unit {
                Some(unit) if v.parse::<f64>().is_ok() => format!("{v}{unit}"),
                _ => v,
            };
            out.push(v.into());
        }
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modern(line: &str) -> (String, usize) {
        let args = std::iter::once("trackiq").chain(line.split(' ')).map(OsString::from).collect();
        let (out, warnings) = modernize(args);
        (out[1..].iter().map(|a| a.to_str().unwrap()).collect::<Vec<_>>().join(" "), warnings.len())
    }

    #[test]
    fn durations_take_units_and_plain_numbers_keep_the_old_unit() {
        assert_eq!(seconds("30").unwrap(), Duration::from_secs(30));
        assert_eq!(seconds("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(seconds("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(seconds("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(seconds("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(seconds("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(millis("100").unwrap(), Duration::from_millis(100));
        assert_eq!(millis("2s").unwrap(), Duration::from_secs(2));
        for bad in ["-1", "fast", "NaN", "10 parsecs"] {
            let e = seconds(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("30s"), "{e}");
        }
    }

    #[test]
    fn old_spellings_are_rewritten_for_their_command_only() {
        assert_eq!(modern("bench ingest --batch 1000 --duration 30"), ("bench ingest --samples-per-record 1000 --duration 30".into(), 1));
        assert_eq!(modern("bench compute --batch=64"), ("bench compute --batch-size 64".into(), 1));
        assert_eq!(modern("--data file:///x gate --run abc"), ("--data file:///x gate abc".into(), 1));
        assert_eq!(modern("ui --listen 0.0.0.0:8080"), ("ui --dashboard-listen 0.0.0.0:8080".into(), 1));
        assert_eq!(modern("--listen 127.0.0.1:9300 up"), ("--broker-listen 127.0.0.1:9300 up".into(), 1));
        assert_eq!(modern("bench http --url u --timeout-ms 500"), ("bench http --url u --timeout 500ms".into(), 1));
        assert_eq!(modern("bench llm --url u --timeout-s 5m"), ("bench llm --url u --timeout 5m".into(), 1));
        assert_eq!(modern("cluster scaling --workers 1,2"), ("cluster scaling --world-sizes 1,2".into(), 1));
        // A flag of the same name elsewhere, and the benchmarked program's own flags, stay.
        assert_eq!(modern("cluster run --workers 4 --steps 5"), ("cluster run --workers 4 --steps 5".into(), 0));
        assert_eq!(modern("bench cmd --iterations 3 -- prog --batch 7 --listen x"), ("bench cmd --iterations 3 -- prog --batch 7 --listen x".into(), 0));
        assert_eq!(modern("compare --dir a b"), ("compare --dir a b".into(), 0), "not a flag of compare: clap says so");
    }
}

//! Fault specifications for `trackiq cluster run --fault`. Each fault is really performed by
//! the worker of the named rank from the named step on:
//!
//! | spec                  | what the worker does                                              |
//! |-----------------------|-------------------------------------------------------------------|
//! | `slow-rank:R:50ms@S`  | sleeps 50 ms inside the compute phase of every step from S        |
//! | `kill-rank:R@S`       | its process is killed with SIGKILL at the start of step S         |
//! | `net-delay:R:20ms@S`  | every send of the ring all-reduce arrives 20 ms late from step S  |
//! | `stall:R@S`           | stops making progress in step S while its heartbeats continue     |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::parse_duration_ms;

/// The kinds of fault trackiq injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    SlowRank,
    KillRank,
    NetDelay,
    Stall,
}

impl FaultKind {
    /// Name used in events and summaries, e.g. `slow_rank`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::SlowRank => "slow_rank",
            FaultKind::KillRank => "kill_rank",
            FaultKind::NetDelay => "net_delay",
            FaultKind::Stall => "stall",
        }
    }

    /// Sample metric that records the injection.
    pub fn metric(self) -> String {
        format!("{FAULT_METRIC_PREFIX}{}", self.as_str())
    }

    fn takes_duration(self) -> bool {
        matches!(self, FaultKind::SlowRank | FaultKind::NetDelay)
    }
}

/// Prefix of the sample metrics that record injected faults.
pub const FAULT_METRIC_PREFIX: &str = "cluster.fault.";

/// One fault to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub rank: usize,
    /// First step (from 0) the fault applies to.
    pub step: u64,
    /// Sleep or send delay in milliseconds (slow-rank, net-delay); 0 otherwise.
    pub delay_ms: f64,
}

impl FaultSpec {
    /// Whether the fault acts on `rank` at `step`.
    pub fn active(&self, rank: usize, step: u64) -> bool {
        self.rank == rank && step >= self.step
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.kind.as_str().replace('_', "-");
        if self.kind.takes_duration() {
            write!(f, "{name}:{}:{}ms@{}", self.rank, self.delay_ms, self.step)
        } else {
            write!(f, "{name}:{}@{}", self.rank, self.step)
        }
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid --fault `{spec}`: {why} (expected slow-rank:R:50ms@S, kill-rank:R@S, net-delay:R:20ms@S or stall:R@S)"
            )
        };
        let (head, step) = spec.rsplit_once('@').ok_or_else(|| bad("no `@step`"))?;
        let step: u64 = step.trim().parse().map_err(|_| bad("the step after `@` is not a whole number"))?;
        let parts: Vec<&str> = head.split(':').collect();
        let kind = match parts[0].trim() {
            "slow-rank" | "slow_rank" => FaultKind::SlowRank,
            "kill-rank" | "kill_rank" => FaultKind::KillRank,
            "net-delay" | "net_delay" => FaultKind::NetDelay,
            "stall" => FaultKind::Stall,
            other => return Err(bad(&format!("unknown fault `{other}`"))),
        };
        let want = if kind.takes_duration() { 3 } else { 2 };
        if parts.len() != want {
            return Err(bad(&format!("`{}` takes {} fields before `@`", parts[0], want)));
        }
        let rank: usize = parts[1].trim().parse().map_err(|_| bad("the rank is not a whole number"))?;
        let delay_ms = if kind.takes_duration() {
            parse_duration_ms(parts[2]).ok_or_else(|| bad("the duration must look like 50ms, 1s or 800us"))?
        } else {
            0.0
        };
        Ok(FaultSpec { kind, rank, step, delay_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_prints_it_back() {
        let cases = [
            ("slow-rank:2:50ms@5", FaultKind::SlowRank, 2, 5, 50.0),
            ("kill-rank:1@3", FaultKind::KillRank, 1, 3, 0.0),
            ("net-delay:0:20ms@4", FaultKind::NetDelay, 0, 4, 20.0),
            ("stall:3@7", FaultKind::Stall, 3, 7, 0.0),
            ("slow-rank:1:0.5s@0", FaultKind::SlowRank, 1, 0, 500.0),
        ];
        for (text, kind, rank, step, delay) in cases {
            let f: FaultSpec = text.parse().unwrap();
            assert_eq!(f, FaultSpec { kind, rank, step, delay_ms: delay }, "{text}");
            assert_eq!(f.to_string().parse::<FaultSpec>().unwrap(), f);
        }
        assert!(FaultSpec { kind: FaultKind::Stall, rank: 1, step: 3, delay_ms: 0.0 }.active(1, 4));
        assert!(!FaultSpec { kind: FaultKind::Stall, rank: 1, step: 3, delay_ms: 0.0 }.active(1, 2));
    }

    #[test]
    fn errors_name_the_spec_and_the_problem() {
        for (text, why) in [
            ("slow-rank:2:50ms", "no `@step`"),
            ("melt:1@2", "unknown fault `melt`"),
            ("slow-rank:2@5", "takes 3 fields"),
            ("kill-rank:x@5", "rank"),
            ("net-delay:1:20@5", "duration"),
            ("stall:1@soon", "step"),
        ] {
            let e = text.parse::<FaultSpec>().unwrap_err();
            assert!(e.contains(text) && e.contains(why), "{text}: {e}");
        }
    }
}

//! Routing (which channels get an alert) and per-channel rate limits.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use trackiq_schemas::Alert;

use super::config::{ChannelConfig, RouteConfig};

fn matches(r: &RouteConfig, a: &Alert) -> bool {
    r.min_severity.is_none_or(|m| a.severity.rank() >= m.rank())
        && (r.kinds.is_empty() || r.kinds.contains(&a.kind))
        && (r.workloads.is_empty() || r.workloads.contains(&a.workload))
        && (r.hardware.is_empty() || r.hardware.contains(&a.hardware))
        && r.labels.iter().all(|(k, v)| a.labels.get(k) == Some(v))
}

/// Names of the channels `a` goes to: the routes in order, stopping at the first match
/// unless it says `continue`; with no routes, every channel.
pub fn channels_for<'a>(routes: &'a [RouteConfig], channels: &'a [ChannelConfig], a: &Alert) -> Vec<&'a str> {
    if routes.is_empty() {
        return channels.iter().map(|c| c.name()).collect();
    }
    let mut out: Vec<&str> = Vec::new();
    for r in routes.iter().filter(|r| matches(r, a)) {
        for c in &r.channels {
            if !out.contains(&c.as_str()) {
                out.push(c);
            }
        }
        if !r.continue_matching {
            break;
        }
    }
    out
}

/// A channel's rate limit: a token bucket of `per_minute` messages refilled evenly, or none.
pub fn limiter(per_minute: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::direct(Quota::per_minute(n))))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trackiq_schemas::{AlertKind, AlertState, NotifyReason, Severity};

    use super::*;

    fn alert(severity: Severity, workload: &str, team: &str) -> Alert {
        Alert {
            alert_id: "a".into(), series_id: "s".into(), subject: "m".into(), kind: AlertKind::Regression, state: AlertState::Firing, severity,
            run_id: "r".into(), value: None, baseline: None, change_pct: None, change_ci_low: None, change_ci_high: None, pvalue: None,
            message: String::new(), workload: workload.into(), hardware: "h".into(), version_tag: None, git_commit: None,
            labels: BTreeMap::from([("team".into(), team.into())]), fired_at: 0, updated_at: 0, notified_at: None, notified_change_pct: None,
            notify: NotifyReason::Firing, silenced_by: None, acked_by: None, ok_runs: 0, series_firing: 1, group_key: "g".into(), group_size: 1, group_index: 0,
        }
    }

    #[test]
    fn routes_match_by_severity_workload_and_label_and_stop_at_the_first_match() {
        let log = |n: &str| ChannelConfig::Log { name: n.into(), send_resolved: true };
        let channels = [log("pager"), log("team"), log("all")];
        let route = |chs: &[&str], sev: Option<Severity>, team: Option<&str>, cont: bool| RouteConfig {
            channels: chs.iter().map(|s| s.to_string()).collect(), min_severity: sev, kinds: vec![], workloads: vec![], hardware: vec![],
            labels: team.map(|t| BTreeMap::from([("team".to_string(), t.to_string())])).unwrap_or_default(), continue_matching: cont,
        };
        let routes = [route(&["pager"], Some(Severity::Block), None, true), route(&["team"], None, Some("infra"), false), route(&["all"], None, None, false)];
        assert_eq!(channels_for(&routes, &channels, &alert(Severity::Block, "w", "infra")), ["pager", "team"]);
        assert_eq!(channels_for(&routes, &channels, &alert(Severity::Warn, "w", "infra")), ["team"]);
        assert_eq!(channels_for(&routes, &channels, &alert(Severity::Warn, "w", "ml")), ["all"]);
        assert_eq!(channels_for(&[], &channels, &alert(Severity::Warn, "w", "ml")), ["pager", "team", "all"]);
    }

    #[test]
    fn a_rate_limit_lets_a_burst_through_then_makes_the_next_wait() {
        let l = limiter(2).unwrap();
        assert!(l.check().is_ok() && l.check().is_ok());
        assert!(l.check().is_err(), "the third message within the minute waits");
        assert!(limiter(0).is_none());
    }
}

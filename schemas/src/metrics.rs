//! The metric-direction table: which way is better for a metric, decided by its name.

use crate::events::Direction;

/// Name fragments of metrics where a larger value is better.
const HIGHER_IS_BETTER: &[&str] = &[
    "throughput", "per_sec", "per_second", "tokens_per", "per_watt", "goodput", "efficiency", "qps", "rps",
    "bandwidth", "busbw", "algbw", "items_per", "samples_per", "ops", "slo_met",
];

/// Name fragments of metrics measured as a duration: they must never be negative.
const DURATION_LIKE: &[&str] = &["latency", "_ms", "_us", "_ns", "_sec", "_seconds", "duration", "time", "ttft", "tpot", "itl", "e2el"];

/// Direction of a metric by name; lower is better unless the name says a rate or efficiency.
pub fn direction_of(metric: &str) -> Direction {
    let m = metric.to_ascii_lowercase();
    if m.ends_with("per_sec") || HIGHER_IS_BETTER.iter().any(|f| m.contains(f)) {
        Direction::HigherIsBetter
    } else {
        Direction::LowerIsBetter
    }
}

/// Whether a metric is a duration (latency, time), which cannot be negative.
pub fn is_duration(metric: &str) -> bool {
    let m = metric.to_ascii_lowercase();
    direction_of(&m) == Direction::LowerIsBetter && DURATION_LIKE.iter().any(|f| m.contains(f))
}

/// Checks a measured value: finite, and not negative for durations. The error names the metric.
pub fn validate_value(metric: &str, value: f64) -> Result<(), String> {
    if !value.is_finite() {
        return Err(format!("metric `{metric}`: value {value} is not a finite number"));
    }
    if value < 0.0 && is_duration(metric) {
        return Err(format!("metric `{metric}`: value {value} is negative, but `{metric}` is a duration"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_follow_names() {
        assert_eq!(direction_of("latency_ms"), Direction::LowerIsBetter);
        assert_eq!(direction_of("throughput_samples_per_sec"), Direction::HigherIsBetter);
        assert_eq!(direction_of("performance_per_watt"), Direction::HigherIsBetter);
        assert_eq!(direction_of("power_consumption_watts"), Direction::LowerIsBetter);
        assert_eq!(direction_of("tokens_per_sec"), Direction::HigherIsBetter);
    }

    #[test]
    fn rejects_bad_values_naming_the_metric() {
        assert!(validate_value("latency_ms", f64::NAN).unwrap_err().contains("latency_ms"));
        assert!(validate_value("latency_ms", -1.0).unwrap_err().contains("negative"));
        assert!(validate_value("throughput", f64::INFINITY).is_err());
        assert!(validate_value("temperature_delta", -3.0).is_ok());
    }
}

//! Metric directions and value checks, read from the [`crate::catalog`].

use crate::events::Direction;

/// Direction of a metric: declared in the [`crate::catalog`], else guessed from its name.
pub fn direction_of(metric: &str) -> Direction {
    crate::catalog::info(metric).direction
}

/// Whether a metric is a duration (latency, time), which cannot be negative.
pub fn is_duration(metric: &str) -> bool {
    crate::catalog::is_duration(metric)
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

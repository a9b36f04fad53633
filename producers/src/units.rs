//! Units on the command line: durations such as `50ms`, `1.5s` or `800us`.

/// Parses `50ms`, `1.5s` or `800us` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_are_not_negative() {
        assert_eq!(parse_duration_ms("50ms"), Some(50.0));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500.0));
        assert_eq!(parse_duration_ms("800us"), Some(0.8));
        for bad in ["50", "-1ms", "fast", "nanms"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }
}

//! Comparing two CSV answers (with headers) cell by cell: numbers within a relative
//! tolerance, everything else as text.

/// Rows of a CSV answer, header dropped. Cells hold no commas or quotes in the suite's answers
/// (metric names, dates, numbers), so a split on commas is enough.
pub fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| l.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect()).collect()
}

/// `None` when the answers agree, else the first difference in words.
pub fn differ(ours: &str, theirs: &str, rel_tol: f64) -> Option<String> {
    let (a, b) = (rows(ours), rows(theirs));
    if a.len() != b.len() {
        return Some(format!("{} rows vs {}", a.len(), b.len()));
    }
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
        if ra.len() != rb.len() {
            return Some(format!("row {i}: {} columns vs {}", ra.len(), rb.len()));
        }
        for (ca, cb) in ra.iter().zip(rb) {
            if !same_cell(ca, cb, rel_tol) {
                return Some(format!("row {i}: {ca} vs {cb}"));
            }
        }
    }
    None
}

/// The largest relative difference between numeric cells of two answers of the same shape
/// (infinite when the shapes differ).
pub fn max_rel_error(ours: &str, theirs: &str) -> f64 {
    let (a, b) = (rows(ours), rows(theirs));
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut worst: f64 = 0.0;
    for (ra, rb) in a.iter().zip(&b) {
        for (ca, cb) in ra.iter().zip(rb) {
            if let (Ok(x), Ok(y)) = (ca.parse::<f64>(), cb.parse::<f64>()) {
                if x != y {
                    worst = worst.max((x - y).abs() / x.abs().max(y.abs()));
                }
            }
        }
    }
    worst
}

fn same_cell(a: &str, b: &str, rel_tol: f64) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() <= rel_tol * x.abs().max(y.abs()),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_within_tolerance_text_exactly() {
        assert_eq!(differ("m,n\nlat,10\n", "metric,n\nlat,10\n", 0.0), None);
        assert_eq!(differ("m,p\nlat,1.0\n", "m,p\nlat,1.015\n", 0.02), None);
        assert!(differ("m,p\nlat,1.0\n", "m,p\nlat,1.03\n", 0.02).is_some());
        assert!(differ("d,n\n2026-11-24,3\n", "d,n\n2026-11-25,3\n", 0.02).is_some());
        assert!(differ("a\n1\n2\n", "a\n1\n", 0.0).is_some());
        assert_eq!(differ("m,v\n\"x\",0.30000000000000004\n", "m,v\nx,0.3\n", 1e-9), None);
        assert!((max_rel_error("m,p\nlat,1.1\n", "m,p\nlat,1.0\n") - 0.1 / 1.1).abs() < 1e-12);
    }
}

//! Flame graphs of call-stack profiles (`bench cmd --profile`), drawn by inferno: one profile,
//! or the differential of two (red: a bigger share than in the baseline, blue: smaller).
//! The dashboard shows them as images (`<img>`): inferno's script (search, zoom) then does not
//! run, which the dashboard's CSP would refuse anyway, and each frame's `<title>` still names
//! it with its count and share; opened as a file, the SVG is interactive.

use trackiq_stats::profiles::{Folded, to_text};

use crate::error::SinkError;

/// Where a run's profile lives in the data store: beside its report.
pub fn profile_path(run_id: &str) -> String {
    format!("profiles/{run_id}.folded")
}

fn options(title: &str) -> inferno::flamegraph::Options<'static> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "ns".into();
    opts
}

fn draw(title: &str, folded_text: &str) -> Result<String, SinkError> {
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut options(title), folded_text.lines(), &mut out).map_err(|e| SinkError::Template(format!("flame graph: {e}")))?;
    String::from_utf8(out).map_err(|e| SinkError::Template(format!("flame graph: {e}")))
}

/// The flame graph of `folded`.
pub fn flame_svg(folded: &Folded, title: &str) -> Result<String, SinkError> {
    draw(title, &to_text(folded))
}

/// The differential flame graph of `after` against `before` (the first normalised to the
/// second's total, so colour shows shares, not a change of load).
pub fn differential_svg(before: &Folded, after: &Folded, title: &str) -> Result<String, SinkError> {
    let mut diff = Vec::new();
    let (b, a) = (to_text(before), to_text(after));
    inferno::differential::from_readers(inferno::differential::Options { normalize: true, ..Default::default() }, b.as_bytes(), a.as_bytes(), &mut diff)
        .map_err(|e| SinkError::Template(format!("differential flame graph: {e}")))?;
    draw(title, &String::from_utf8_lossy(&diff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackiq_stats::profiles::parse;

    #[test]
    fn frames_are_drawn_with_their_share() {
        let before = parse("main;hash 20\nmain;copy 80\n");
        let after = parse("main;hash 60\nmain;copy 80\n");
        let svg = flame_svg(&after, "run r").unwrap();
        assert!(svg.contains("<title>hash (60 ns, 42.86%)</title>"), "{svg}");
        let diff = differential_svg(&before, &after, "r vs b").unwrap();
        // hash grew: drawn red (inferno's differential colours: more red for a bigger share).
        assert!(diff.contains("<title>hash (60 ns, 42.86%; +"), "{diff}");
    }
}

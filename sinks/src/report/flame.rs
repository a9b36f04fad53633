//! Flame graphs of call-stack profiles (`bench cmd --profile`), drawn by inferno: one profile,
//! or the differential of two (red: a bigger share than in the baseline, blue: smaller).
//! The dashboard shows them as images (`<img>`): inferno's script (search, zoom) then does not
//! run, which the dashboard's CSP would refuse anyway, and each frame's `<title>` still names
//! it with its count and share; opened as a file, the SVG is interactive. The report file
//! embeds them as `data:` images, so that it stays one self-contained file.

use base64::Engine;
use serde::Serialize;
use trackiq_infra::DataStore;
use trackiq_infra::tables::query_rows;
use trackiq_stats::profiles::{Folded, biggest_changes, parse, to_text};

use crate::error::SinkError;

/// Earlier runs of the series looked at for a baseline profile.
const BASELINE_CANDIDATES: usize = 20;
/// Rows of the table of changed functions.
const CHANGED_ROWS: usize = 10;

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

/// Run `run_id`'s profile, if it has one.
pub async fn load(store: &DataStore, run_id: &str) -> Option<Folded> {
    let bytes = store.get(&profile_path(run_id)).await.ok()?;
    Some(parse(&String::from_utf8_lossy(&bytes)))
}

/// The runs of `run_id`'s series before it, latest first, at most `limit`. Run ids are
/// UUIDv7: ordered by their start. `run_id` must be a plain id (checked by the caller).
pub async fn earlier_runs(store: &DataStore, run_id: &str, limit: usize) -> Result<Vec<String>, SinkError> {
    let sql = format!(
        "SELECT b.run_id FROM runs r JOIN runs b ON b.series_id = r.series_id AND b.event = 'started' AND b.run_id < r.run_id \
         WHERE r.run_id = '{run_id}' AND r.event = 'started' ORDER BY b.run_id DESC LIMIT {limit}"
    );
    Ok(query_rows(store, &sql).await?.iter().filter_map(|r| r.get("run_id").and_then(|v| v.as_str()).map(str::to_string)).collect())
}

/// The latest run of `run_id`'s series before it that has a profile.
pub async fn baseline(store: &DataStore, run_id: &str) -> Option<(String, Folded)> {
    for id in earlier_runs(store, run_id, BASELINE_CANDIDATES).await.ok()? {
        if let Some(f) = load(store, &id).await {
            return Some((id, f));
        }
    }
    None
}

/// One row of the changed-functions table.
#[derive(Debug, Serialize)]
pub struct ChangedRow {
    function: String,
    self_share: String,
    total_share: String,
}

/// What a run's page and report show of its profile.
#[derive(Debug, Serialize)]
pub struct ProfileSection {
    /// The run whose profile it is compared with: the series' latest earlier one with a profile.
    pub baseline: Option<String>,
    /// Functions whose share of samples changed most against `baseline`.
    pub changed: Vec<ChangedRow>,
    /// The flame graph as a `data:` image (the report file; the dashboard serves it instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flame_uri: Option<String>,
    /// The differential flame graph as a `data:` image, where there is a baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_uri: Option<String>,
}

fn data_uri(svg: String) -> String {
    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(13)]
}

/// The title of the differential flame graph of `run_id` against `base`.
pub fn differential_title(run_id: &str, base: &str) -> String {
    format!("{} vs {}: red a bigger share, blue smaller", short(run_id), short(base))
}

/// The profile section of `run_id`; `None` without a profile. `embed`: with the graphs as
/// `data:` images.
pub async fn section(store: &DataStore, run_id: &str, embed: bool) -> Result<Option<ProfileSection>, SinkError> {
    let Some(after) = load(store, run_id).await else { return Ok(None) };
    let flame_uri = if embed { Some(data_uri(flame_svg(&after, &format!("run {run_id}"))?)) } else { None };
    let Some((base, before)) = baseline(store, run_id).await else {
        return Ok(Some(ProfileSection { baseline: None, changed: Vec::new(), flame_uri, diff_uri: None }));
    };
    let changed = biggest_changes(&before, &after, CHANGED_ROWS)
        .into_iter()
        .map(|c| ChangedRow {
            function: c.function,
            self_share: format!("{:.1} % → {:.1} %", c.self_before, c.self_after),
            total_share: format!("{:.1} % → {:.1} %", c.total_before, c.total_after),
        })
        .collect();
    let diff_uri = if embed { Some(data_uri(differential_svg(&before, &after, &differential_title(run_id, &base))?)) } else { None };
    Ok(Some(ProfileSection { baseline: Some(base), changed, flame_uri, diff_uri }))
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

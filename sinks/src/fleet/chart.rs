//! History chart of one series' metric over the report period: the judged value per run,
//! the baseline as a band (the model's lower..upper limits, else the baseline line), change
//! points as vertical lines, the trend (Theil-Sen, dashed), and a mark per run coloured by
//! its verdict.
//!
//! The SVG holds no user strings (series, workload and metric names are in the page around
//! it, where the template escapes them), so the page can insert it verbatim.

use plotters::prelude::*;
use serde::Serialize;

use crate::error::SinkError;

/// Fill of the baseline band (blue grey, drawn translucent).
pub const BAND: RGBColor = RGBColor(0x78, 0x90, 0x9C);
/// The baseline line where a verdict has no limits.
pub const BASELINE: RGBColor = RGBColor(0x60, 0x7D, 0x8B);
/// Change-point lines.
pub const CHANGE: RGBColor = RGBColor(0x6A, 0x1B, 0x9A);
/// The trend line (Theil-Sen over the charted runs).
pub const TREND: RGBColor = RGBColor(0xAD, 0x14, 0x57);
/// The value line joining the marks.
const VALUE: RGBColor = RGBColor(0x37, 0x47, 0x4F);

/// Colour of a verdict mark; the same palette as the badges of the HTML reports.
pub fn severity_color(severity: &str) -> RGBColor {
    match severity {
        "block" => RGBColor(0xC6, 0x28, 0x28),
        "warn" => RGBColor(0xEF, 0x6C, 0x00),
        "improved" => RGBColor(0x15, 0x65, 0xC0),
        "pass" => RGBColor(0x2E, 0x7D, 0x32),
        _ => RGBColor(0x75, 0x75, 0x75),
    }
}

/// One run's judged value of the charted metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub run_id: String,
    /// Start of the run, µs since the epoch (UTC).
    pub started_at: i64,
    pub value: f64,
    pub baseline: Option<f64>,
    pub lower_limit: Option<f64>,
    pub upper_limit: Option<f64>,
    pub severity: String,
}

/// The runs of one series × metric, oldest first, and the runs that start a new level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesHistory {
    pub series_id: String,
    pub metric: String,
    pub workload: String,
    pub hardware: String,
    pub points: Vec<HistoryPoint>,
    /// Runs that are the first after a change point (from the `trends` table).
    pub change_runs: Vec<String>,
}

fn err(h: &SeriesHistory, e: impl std::fmt::Display) -> SinkError {
    SinkError::Template(format!("chart of {} / {}: {e}", h.series_id, h.metric))
}

/// The y range: every value, limit and baseline, padded so that marks are not cut.
fn y_range(points: &[&HistoryPoint]) -> (f64, f64) {
    let all = points.iter().flat_map(|p| [Some(p.value), p.baseline, p.lower_limit, p.upper_limit]).flatten().filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if hi > lo { (hi - lo) * 0.08 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// Theil-Sen line (intercept, slope per run) through the values; robust to the outliers a
/// regression puts in the history. `None` below three runs.
pub fn trend_line(points: &[&HistoryPoint]) -> Option<(f64, f64)> {
    if points.len() < 3 {
        return None;
    }
    let y: Vec<f64> = points.iter().map(|p| p.value).collect();
    let slope = trackiq_stats::trend::theil_sen(&y)?;
    let mut residuals: Vec<f64> = y.iter().enumerate().map(|(i, v)| v - slope * i as f64).collect();
    residuals.sort_by(f64::total_cmp);
    let mid = residuals.len() / 2;
    let intercept = if residuals.len() % 2 == 1 { residuals[mid] } else { (residuals[mid - 1] + residuals[mid]) / 2.0 };
    Some((intercept, slope))
}

/// SVG line chart of a series history (runs on the x axis, labelled with their start time).
pub fn history_svg(h: &SeriesHistory) -> Result<String, SinkError> {
    // NaN values (history written before validation) cannot be placed; they are left out.
    let points: Vec<&HistoryPoint> = h.points.iter().filter(|p| p.value.is_finite()).collect();
    if points.is_empty() {
        return Err(err(h, "no finite values"));
    }
    let n = points.len();
    let (lo, hi) = y_range(&points);
    // Runs of one day are told apart by their time; longer periods need the date.
    let one_day = points[n - 1].started_at - points[0].started_at < 86_400_000_000;
    let format = if one_day { "%H:%M:%S" } else { "%m-%d %H:%M" };
    let label = |x: &f64| {
        // Only whole positions are runs; plotters may place ticks between them.
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        points
            .get(i as usize)
            .and_then(|p| chrono::DateTime::from_timestamp_micros(p.started_at))
            .map(|t| t.format(format).to_string())
            .unwrap_or_default()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(h, e))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
            .map_err(|e| err(h, e))?;
        chart
            .configure_mesh()
            .x_labels(n.min(8))
            .x_label_formatter(&label)
            .x_desc(if one_day { "run (start time, UTC)" } else { "run (start, UTC)" })
            .y_desc("value")
            .disable_x_mesh()
            .draw()
            .map_err(|e| err(h, e))?;
        // The band is per run (limits move with the baseline window): one step per run.
        let band = points.iter().enumerate().filter_map(|(i, p)| {
            let (l, u) = (p.lower_limit.filter(|v| v.is_finite())?, p.upper_limit.filter(|v| v.is_finite())?);
            let x = i as f64;
            Some(Rectangle::new([(x - 0.5, l), (x + 0.5, u)], BAND.mix(0.25).filled()))
        });
        chart.draw_series(band).map_err(|e| err(h, e))?;
        let baseline = points.iter().enumerate().filter_map(|(i, p)| {
            if p.lower_limit.is_some() && p.upper_limit.is_some() {
                return None;
            }
            let b = p.baseline.filter(|v| v.is_finite())?;
            let x = i as f64;
            Some(PathElement::new(vec![(x - 0.5, b), (x + 0.5, b)], BASELINE.stroke_width(2)))
        });
        chart.draw_series(baseline).map_err(|e| err(h, e))?;
        // A change point sits between the last run of the old level and the first of the new.
        let changes = points.iter().enumerate().filter(|(_, p)| h.change_runs.contains(&p.run_id)).map(|(i, _)| {
            let x = i as f64 - 0.5;
            PathElement::new(vec![(x, lo), (x, hi)], CHANGE.stroke_width(2))
        });
        chart.draw_series(changes).map_err(|e| err(h, e))?;
        chart
            .draw_series(LineSeries::new(points.iter().enumerate().map(|(i, p)| (i as f64, p.value)), VALUE.stroke_width(1)))
            .map_err(|e| err(h, e))?;
        if let Some((intercept, slope)) = trend_line(&points) {
            let ends = [(0.0, intercept), ((n - 1) as f64, intercept + slope * (n - 1) as f64)];
            chart.draw_series(DashedLineSeries::new(ends, 6, 4, TREND.stroke_width(2))).map_err(|e| err(h, e))?;
        }
        let marks = points.iter().enumerate().map(|(i, p)| Circle::new((i as f64, p.value), 5, severity_color(&p.severity).filled()));
        chart.draw_series(marks).map_err(|e| err(h, e))?;
        root.present().map_err(|e| err(h, e))?;
    }
    Ok(svg)
}

//! Charts drawn with plotters' SVG backend (text in the SVG is escaped by plotters).

use plotters::prelude::*;
use trackiq_schemas::Histogram;

/// SVG bar chart of a histogram with its bin edges on the x axis.
pub fn histogram_svg(title: &str, unit: &str, h: &Histogram) -> Result<String, String> {
    if h.counts.is_empty() || h.edges.len() != h.counts.len() + 1 {
        return Err(format!("histogram of {title} has {} edges for {} counts", h.edges.len(), h.counts.len()));
    }
    let (lo, hi) = (h.edges[0], h.edges[h.edges.len() - 1]);
    let top = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_desc("samples")
            .disable_x_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let bars = h.counts.iter().enumerate().map(|(i, &c)| {
            Rectangle::new([(h.edges[i], 0.0), (h.edges[i + 1], c as f64)], RGBColor(21, 101, 192).mix(0.75).filled())
        });
        chart.draw_series(bars).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// SVG heatmap of a rank × step matrix (rows: ranks); darker is larger; gaps stay white.
pub fn heatmap_svg(title: &str, unit: &str, rows: &[Vec<Option<f64>>], steps_per_column: usize) -> Result<String, String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    if rows.is_empty() || cols == 0 {
        return Err(format!("{title}: empty matrix"));
    }
    let values: Vec<f64> = rows.iter().flatten().flatten().copied().collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 120 + 24 * rows.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let steps = (cols * steps_per_column.max(1)) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{title} ({lo:.2}–{hi:.2} {unit})"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            // Rank r is the row centred on y = r, so ticks fall on the ranks.
            .build_cartesian_2d(0f64..steps, -0.5f64..rows.len() as f64 - 0.5)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("rank")
            .y_labels(rows.len().min(16))
            .y_label_formatter(&whole_number_label)
            .x_label_formatter(&whole_number_label)
            .disable_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let w = steps_per_column.max(1) as f64;
        let cells = rows.iter().enumerate().flat_map(|(r, row)| {
            row.iter().enumerate().filter_map(move |(c, v)| {
                let v = (*v)?;
                let t = (v - lo) / span;
                // From pale yellow (fast) to dark red (slow).
                let color = RGBColor(255 - (t * 100.0) as u8, (235.0 * (1.0 - t)) as u8 + 20, (160.0 * (1.0 - t)) as u8);
                Some(Rectangle::new([(c as f64 * w, r as f64 - 0.5), ((c + 1) as f64 * w, r as f64 + 0.5)], color.filled()))
            })
        });
        chart.draw_series(cells).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A rank or step axis tick: ranks and steps are whole numbers ("2", never "2.0"); a tick
/// between two has no label.
fn whole_number_label(y: &f64) -> String {
    match (y.fract() == 0.0, *y >= 0.0) {
        (true, true) => format!("{}", *y as u64),
        _ => String::new(),
    }
}

/// SVG line chart of one value per step.
pub fn line_svg(title: &str, y_desc: &str, values: &[f64]) -> Result<String, String> {
    if values.is_empty() {
        return Err(format!("{title}: no values"));
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max).max(lo + f64::EPSILON) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..(values.len().max(2) - 1) as f64, lo..hi)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("step").y_desc(y_desc).draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(values.iter().enumerate().map(|(i, v)| (i as f64, *v)), RGBColor(21, 101, 192).stroke_width(2)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// An injected fault on the fault timeline; no detection step and no latency: missed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultMark {
    /// Rank the fault was injected into.
    pub rank: i32,
    /// Step at which it was injected.
    pub step: i64,
    /// The step the matched detection names, when it names one.
    pub detected_step: Option<i64>,
    pub latency_ms: Option<f64>,
}

/// SVG timeline of a cluster run's faults: x = step, y = rank. Injections are triangles
/// (green when caught, red and ringed when missed), each caught one joined to its detection
/// (a blue cross) and labelled with its detection latency; `knock_on` (rank, step) are other
/// detections after a fault (its peers waiting on a slow rank: light blue crosses),
/// `false_alarms` detections nothing explains (grey crosses). Only numbers and fixed words
/// are drawn: fault kinds stay in the HTML table.
pub fn fault_timeline_svg(world_size: i32, steps: i64, faults: &[FaultMark], knock_on: &[(i32, i64)], false_alarms: &[(i32, i64)]) -> Result<String, String> {
    if world_size < 1 || (faults.is_empty() && false_alarms.is_empty()) {
        return Err("fault timeline: no ranks or nothing to draw".into());
    }
    let last = faults.iter().flat_map(|f| [Some(f.step), f.detected_step]).flatten().chain(knock_on.iter().chain(false_alarms).map(|a| a.1)).fold(steps, i64::max);
    let (caught, missed) = (RGBColor(46, 125, 50), RGBColor(198, 40, 40));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 160 + 28 * world_size.min(32) as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // The legend gets its own strip on the right, so it never hides a marker.
        let (plot, legend) = root.split_horizontally(660);
        let mut chart = ChartBuilder::on(&plot)
            .caption("injected faults and their detection", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(last as f64 + 1.0), -0.5f64..(world_size as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("rank")
            .y_labels(world_size.min(16) as usize)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .disable_x_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let at = |rank: i32, step: i64| (step as f64, rank as f64);
        let (grey, light) = (RGBColor(97, 97, 97), RGBColor(100, 181, 246));
        // Detection lag along the step axis, drawn under the markers.
        for f in faults {
            if let Some(d) = f.detected_step {
                chart.draw_series(LineSeries::new([at(f.rank, f.step), at(f.rank, d)], caught.stroke_width(2))).map_err(|e| e.to_string())?;
            }
        }
        let is_caught = |f: &&FaultMark| f.latency_ms.is_some() || f.detected_step.is_some();
        chart.draw_series(faults.iter().filter(is_caught).map(|f| TriangleMarker::new(at(f.rank, f.step), 9, caught.filled()))).map_err(|e| e.to_string())?;
        chart
            .draw_series(faults.iter().filter(|f| !is_caught(f)).flat_map(|f| {
                [Circle::new(at(f.rank, f.step), 7, missed.filled()), Circle::new(at(f.rank, f.step), 13, missed.stroke_width(2))]
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(faults.iter().filter_map(|f| f.detected_step.map(|d| Cross::new(at(f.rank, d), 7, BLUE.stroke_width(2)))))
            .map_err(|e| e.to_string())?;
        chart.draw_series(knock_on.iter().map(|&(r, s)| Cross::new(at(r, s), 6, light.stroke_width(2)))).map_err(|e| e.to_string())?;
        chart.draw_series(false_alarms.iter().map(|&(r, s)| Cross::new(at(r, s), 7, grey.stroke_width(2)))).map_err(|e| e.to_string())?;
        let labels = faults.iter().map(|f| {
            let text = match f.latency_ms {
                Some(l) => format!("{l:.0} ms"),
                None if f.detected_step.is_some() => "caught".to_string(),
                None => "missed".to_string(),
            };
            // Beside and above the marker, so the label does not cover it.
            Text::new(text, (f.step as f64 + 0.5, f.rank as f64 + 0.35), ("sans-serif", 13).into_font().color(&BLACK))
        });
        chart.draw_series(labels).map_err(|e| e.to_string())?;
        let font = ("sans-serif", 13).into_font().color(&BLACK);
        let row = |i: i32| (20, 60 + 24 * i);
        let text_at = |i: i32| (36, 60 + 24 * i - 7);
        legend.draw(&TriangleMarker::new(row(0), 6, caught.filled())).map_err(|e| e.to_string())?;
        legend.draw(&Circle::new(row(1), 5, missed.filled())).map_err(|e| e.to_string())?;
        legend.draw(&Cross::new(row(2), 5, BLUE.stroke_width(2))).map_err(|e| e.to_string())?;
        legend.draw(&Cross::new(row(3), 5, light.stroke_width(2))).map_err(|e| e.to_string())?;
        legend.draw(&Cross::new(row(4), 5, grey.stroke_width(2))).map_err(|e| e.to_string())?;
        for (i, t) in ["fault caught", "fault missed", "detection", "knock-on detection", "false alarm"].iter().enumerate() {
            legend.draw(&Text::new(*t, text_at(i as i32), font.clone())).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Equal-width histogram of `values` (`bins` bins); `None` for fewer than two distinct values.
pub fn histogram_of(values: &[f64], bins: usize) -> Option<Histogram> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Also false for no values (lo = +inf, hi = -inf).
    if hi <= lo || bins == 0 {
        return None;
    }
    let w = (hi - lo) / bins as f64;
    let mut counts = vec![0i64; bins];
    for v in values {
        // The maximum belongs to the last bin, not one past it.
        counts[(((v - lo) / w) as usize).min(bins - 1)] += 1;
    }
    Some(Histogram { edges: (0..=bins).map(|i| lo + w * i as f64).collect(), counts })
}

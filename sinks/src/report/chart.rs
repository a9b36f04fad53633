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
            .build_cartesian_2d(0f64..steps, 0f64..rows.len() as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("rank")
            .y_labels(rows.len().min(16))
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
                Some(Rectangle::new([(c as f64 * w, r as f64), ((c + 1) as f64 * w, r as f64 + 1.0)], color.filled()))
            })
        });
        chart.draw_series(cells).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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

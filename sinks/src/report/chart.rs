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

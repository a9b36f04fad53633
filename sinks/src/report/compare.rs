//! HTML comparison of two runs (`trackiq compare A B --html FILE`), in the per-run report's
//! style: identities side by side, per-metric deltas with their significance, the winner of
//! each metric family with its reason, a confidence matrix and the consistency findings.
//! The command computes the statistics; this module only decides winners and renders.

use serde::Serialize;
use tera::Context;
use trackiq_schemas::Direction;

use super::sections::{Family, family_of};
use super::{TEMPLATES, fmt_num, time_us};
use crate::error::SinkError;

/// Throughput difference (%) within which two runs count as doing the same work, so the
/// one drawing less power is the better one.
pub const COMPARABLE_THROUGHPUT_PCT: f64 = 5.0;
/// Difference (%) below which two single figures (no samples to test) are called a tie.
pub const UNTESTED_TIE_PCT: f64 = 2.0;
/// Samples per side below which the rank tests have too little power to trust a "not
/// significant", and a "significant" rests on a handful of points.
pub const MIN_SAMPLES: usize = 10;

/// One run's identity: its id and (field, value) rows, e.g. ("hardware", "A100").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunIdentity {
    pub run_id: String,
    pub fields: Vec<(String, String)>,
}

/// One metric of both runs with the statistics of their raw samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    pub metric: String,
    /// Unit of the summaries (empty when unknown).
    pub unit: String,
    pub direction: Direction,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// Mann-Whitney U p-value of the two sample sets.
    pub pvalue: Option<f64>,
    /// Brown-Forsythe p-value: do the spreads differ?
    pub variance_pvalue: Option<f64>,
    pub stdev_a: Option<f64>,
    pub stdev_b: Option<f64>,
    pub n_a: usize,
    pub n_b: usize,
}

impl MetricComparison {
    /// B's change relative to A, in percent.
    pub fn change_pct(&self) -> Option<f64> {
        match (self.a, self.b) {
            (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a.abs() * 100.0),
            _ => None,
        }
    }
}

/// Everything a comparison report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub a: RunIdentity,
    pub b: RunIdentity,
    /// Significance level of every test.
    pub alpha: f64,
    pub metrics: Vec<MetricComparison>,
    /// Warnings and consistency findings of the command.
    pub notes: Vec<String>,
}

/// The better run of one metric family, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Winner {
    pub family: &'static str,
    /// `A`, `B`, or `None` when nobody clearly wins.
    pub winner: Option<&'static str>,
    pub metric: Option<String>,
    pub reason: String,
}

/// Headline metric of a family: the first of `names` both runs have, else any of `family`.
fn headline<'a>(
    c: &'a Comparison,
    names: &[&str],
    family: Option<Family>,
) -> Option<&'a MetricComparison> {
    let both = |m: &&MetricComparison| m.a.is_some() && m.b.is_some();
    names
        .iter()
        .find_map(|n| c.metrics.iter().filter(both).find(|m| m.metric == *n))
        .or_else(|| {
            family.and_then(|f| {
                c.metrics
                    .iter()
                    .filter(both)
                    .find(|m| family_of(&m.metric, &m.unit) == f)
            })
        })
}

/// Which side is better on `m` given which way is better, tested where samples allow.
fn decide(family: &'static str, m: &MetricComparison, lower_is_better: bool, alpha: f64) -> Winner {
    let (a, b) = (m.a.unwrap_or(f64::NAN), m.b.unwrap_or(f64::NAN));
    let change = m.change_pct().unwrap_or(0.0);
    let better = if (b < a) == lower_is_better { "B" } else { "A" };
    let how = if b < a { "lower" } else { "higher" };
    let claim = format!(
        "B's {} is {} % {how} than A's",
        m.metric,
        fmt_num(super::sections::round(change.abs(), 1))
    );
    let (winner, reason) = match m.pvalue {
        _ if a == b => (None, format!("{} is equal in both runs", m.metric)),
        Some(p) if p < alpha => (Some(better), format!("{claim} (Mann-Whitney p = {p:.2e})")),
        Some(p) => (
            None,
            format!("{claim}, but not significantly (p = {p:.2e} ≥ {alpha})"),
        ),
        None if change.abs() < UNTESTED_TIE_PCT => (
            None,
            format!("{claim}: within {UNTESTED_TIE_PCT} %, a tie (single figures, not tested)"),
        ),
        None => (
            Some(better),
            format!("{claim} (single figures, not tested for significance)"),
        ),
    };
    Winner {
        family,
        winner,
        metric: Some(m.metric.clone()),
        reason,
    }
}

fn nobody(family: &'static str, reason: &str) -> Winner {
    Winner {
        family,
        winner: None,
        metric: None,
        reason: reason.into(),
    }
}

const LATENCY: &[&str] = &[
    "latency_ms",
    "latency_p50_ms",
    "e2el_ms",
    "ttft_ms",
    "cluster.step_ms",
];
const THROUGHPUT: &[&str] = &[
    "throughput_samples_per_sec",
    "throughput_per_sec",
    "tokens_per_sec",
    "cluster_samples_per_sec",
];
const POWER: &[&str] = &[
    "power_consumption_watts",
    "gpu_power_watts",
    "cpu_package_power_watts",
];

/// The winner of each family: latency (lower), throughput (higher), power (lower, at
/// comparable throughput), performance per watt (higher), variance (lower spread).
pub fn winners(c: &Comparison) -> Vec<Winner> {
    let lat = headline(c, LATENCY, Some(Family::Latency));
    let thr = headline(c, THROUGHPUT, Some(Family::Throughput));
    let mut out = vec![
        lat.map_or_else(
            || nobody("latency", "no latency metric in both runs"),
            |m| decide("latency", m, true, c.alpha),
        ),
        thr.map_or_else(
            || nobody("throughput", "no throughput figure in both runs"),
            |m| decide("throughput", m, false, c.alpha),
        ),
    ];
    // Less power for less work is no win: only at comparable throughput.
    out.push(match (headline(c, POWER, None), thr.and_then(MetricComparison::change_pct)) {
        (None, _) => nobody("power", "no power measured in both runs"),
        (Some(_), None) => nobody("power", "throughput unknown: power alone does not say which run is better"),
        (Some(_), Some(t)) if t.abs() > COMPARABLE_THROUGHPUT_PCT => {
            nobody("power", &format!("throughput differs by {} % (> {COMPARABLE_THROUGHPUT_PCT} %): compare perf/W instead", fmt_num(super::sections::round(t, 1))))
        }
        (Some(p), Some(t)) => {
            let mut w = decide("power", p, true, c.alpha);
            w.reason = format!("{}; throughput within {} %, comparable", w.reason, fmt_num(super::sections::round(t.abs(), 1)));
            w
        }
    });
    out.push(headline(c, &["performance_per_watt"], None).map_or_else(
        || nobody("perf/W", "no perf/W in both runs"),
        |m| decide("perf/W", m, false, c.alpha),
    ));
    out.push(match lat {
        Some(m) if m.stdev_a.is_some() && m.stdev_b.is_some() && m.variance_pvalue.is_some() => {
            let (sa, sb, p) = (
                m.stdev_a.unwrap_or(0.0),
                m.stdev_b.unwrap_or(0.0),
                m.variance_pvalue.unwrap_or(1.0),
            );
            let claim = format!(
                "{} stdev {} (A) vs {} (B)",
                m.metric,
                fmt_num(sa),
                fmt_num(sb)
            );
            let (winner, reason) = if p < c.alpha && sa != sb {
                (
                    Some(if sb < sa { "B" } else { "A" }),
                    format!("{claim}, Brown-Forsythe p = {p:.2e}"),
                )
            } else {
                (
                    None,
                    format!("{claim}: spreads not significantly different (p = {p:.2e})"),
                )
            };
            Winner {
                family: "variance",
                winner,
                metric: Some(m.metric.clone()),
                reason,
            }
        }
        _ => nobody(
            "variance",
            "no latency samples in both runs to compare spreads",
        ),
    });
    out
}

/// A cell of the confidence matrix: yes, no, or "—" (not computable), with its CSS class.
fn mark(x: Option<bool>) -> serde_json::Value {
    let (text, class) = match x {
        Some(true) => ("yes", "yes"),
        Some(false) => ("no", "no"),
        None => ("—", "na"),
    };
    serde_json::json!({"text": text, "class": class})
}

/// Renders the comparison as a standalone HTML page.
pub fn render_compare(c: &Comparison) -> Result<String, SinkError> {
    TEMPLATES.render("compare.html", &context(c)).map_err(|e| SinkError::Template(format!("{e:?}")))
}

/// The comparison without the document around it, for the dashboard's compare page.
pub fn render_compare_body(c: &Comparison) -> Result<String, SinkError> {
    TEMPLATES.render("compare_body.html", &context(c)).map_err(|e| SinkError::Template(format!("{e:?}")))
}

fn context(c: &Comparison) -> Context {
    let mut names: Vec<&str> = c.a.fields.iter().map(|(k, _)| k.as_str()).collect();
    names.extend(
        c.b.fields
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !c.a.fields.iter().any(|(a, _)| a == k)),
    );
    let get = |id: &RunIdentity, k: &str| {
        id.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let identity: Vec<_> = names
        .iter()
        .map(|k| (k, get(&c.a, k), get(&c.b, k)))
        .filter(|(_, a, b)| !(a.is_empty() && b.is_empty()))
        .map(|(k, a, b)| serde_json::json!({"field": k, "differs": a != b, "a": a, "b": b}))
        .collect();
    let opt = |x: Option<f64>| x.map(fmt_num).unwrap_or_else(|| "—".into());
    let deltas: Vec<_> = c
        .metrics
        .iter()
        .map(|m| {
            let significant = m.pvalue.map(|p| p < c.alpha);
            let enough = m.n_a >= MIN_SAMPLES && m.n_b >= MIN_SAMPLES;
            serde_json::json!({
                "metric": m.metric, "unit": m.unit, "a": opt(m.a), "b": opt(m.b),
                "change": m.change_pct().map(|d| format!("{d:+.2} %")).unwrap_or_else(|| "—".into()),
                "pvalue": m.pvalue.map(|p| format!("{p:.2e}")).unwrap_or_else(|| "—".into()),
                "significant": mark(significant), "better": m.direction.as_str().replace('_', " "),
                "variance": mark(m.variance_pvalue.map(|p| p < c.alpha)),
                "enough": mark((m.n_a + m.n_b > 0).then_some(enough)), "n_a": m.n_a, "n_b": m.n_b,
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("a", &c.a.run_id);
    ctx.insert("b", &c.b.run_id);
    ctx.insert("alpha", &c.alpha);
    ctx.insert("min_samples", &MIN_SAMPLES);
    ctx.insert("identity", &identity);
    ctx.insert("deltas", &deltas);
    ctx.insert("winners", &winners(c));
    ctx.insert("notes", &c.notes);
    ctx.insert("generated", &time_us(trackiq_schemas::now_us()));
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(metric: &str, a: f64, b: f64, pvalue: Option<f64>) -> MetricComparison {
        MetricComparison {
            metric: metric.into(),
            unit: String::new(),
            direction: trackiq_schemas::metrics::direction_of(metric),
            a: Some(a),
            b: Some(b),
            pvalue,
            variance_pvalue: None,
            stdev_a: None,
            stdev_b: None,
            n_a: if pvalue.is_some() { 30 } else { 0 },
            n_b: if pvalue.is_some() { 30 } else { 0 },
        }
    }

    fn comparison(metrics: Vec<MetricComparison>) -> Comparison {
        let id = |r: &str, hw: &str| RunIdentity {
            run_id: r.into(),
            fields: vec![("hardware".into(), hw.into())],
        };
        Comparison {
            a: id("a<1>", "h100"),
            b: id("b&2", "<script>alert(1)</script>"),
            alpha: 0.05,
            metrics,
            notes: vec!["stdev <grew>".into()],
        }
    }

    fn winner<'a>(w: &'a [Winner], family: &str) -> &'a Winner {
        w.iter()
            .find(|w| w.family == family)
            .expect("family present")
    }

    #[test]
    fn winners_follow_direction_significance_and_comparable_throughput() {
        let mut lat = m("latency_ms", 10.0, 8.0, Some(0.001));
        (lat.stdev_a, lat.stdev_b, lat.variance_pvalue) = (Some(2.0), Some(3.0), Some(0.01));
        let c = comparison(vec![
            lat,
            m("throughput_samples_per_sec", 100.0, 103.0, None),
            m("power_consumption_watts", 200.0, 180.0, None),
            m("performance_per_watt", 0.5, 0.51, None),
        ]);
        let w = winners(&c);
        // 8 vs 10 ms, p = 0.001 < 0.05: B, 20 % lower.
        assert_eq!(winner(&w, "latency").winner, Some("B"));
        assert!(
            winner(&w, "latency")
                .reason
                .starts_with("B's latency_ms is 20 % lower than A's"),
            "{}",
            winner(&w, "latency").reason
        );
        // 103 vs 100, untested, 3 % ≥ the 2 % tie band: B.
        assert_eq!(winner(&w, "throughput").winner, Some("B"));
        // Throughput within 5 %: the lower power (B, 180 W) wins.
        assert_eq!(winner(&w, "power").winner, Some("B"));
        // 0.51 vs 0.5 is 2 %: the tie band is "below 2 %", so B wins.
        assert_eq!(winner(&w, "perf/W").winner, Some("B"));
        // B's spread is larger and the difference significant: A is steadier.
        assert_eq!(winner(&w, "variance").winner, Some("A"));

        let c = comparison(vec![
            m("latency_ms", 10.0, 9.0, Some(0.2)),
            m("throughput_samples_per_sec", 100.0, 120.0, None),
            m("power_consumption_watts", 200.0, 180.0, None),
            m("performance_per_watt", 0.5, 0.495, None),
        ]);
        let w = winners(&c);
        assert_eq!(
            winner(&w, "latency").winner,
            None,
            "p = 0.2: not significant"
        );
        assert!(winner(&w, "latency").reason.contains("not significantly"));
        assert_eq!(
            winner(&w, "power").winner,
            None,
            "20 % more throughput: power is not comparable"
        );
        assert!(
            winner(&w, "power")
                .reason
                .contains("throughput differs by 20 %")
        );
        assert_eq!(
            winner(&w, "perf/W").winner,
            None,
            "1 % apart, untested: a tie"
        );
        assert_eq!(winner(&w, "variance").winner, None, "no spreads to compare");
        // Higher is better for throughput: 120 beats 100.
        assert_eq!(winner(&w, "throughput").winner, Some("B"));
    }

    #[test]
    fn compare_report_escapes_and_shows_every_part() {
        let mut lat = m("latency_ms", 10.0, 8.0, Some(0.001));
        lat.n_a = 5;
        let html =
            render_compare(&comparison(vec![lat, m("<b>custom</b>", 1.0, 2.0, None)])).unwrap();
        assert!(
            !html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)"),
            "identity escaped"
        );
        assert!(
            !html.contains("<b>custom") && html.contains("&lt;b&gt;custom"),
            "metric name escaped"
        );
        assert!(
            html.contains("a&lt;1&gt;") && html.contains("b&amp;2"),
            "run ids escaped"
        );
        assert!(html.contains("stdev &lt;grew&gt;"), "notes escaped");
        assert!(
            html.contains("<td>-20.00 %</td>") && html.contains("<td>1.00e-3</td>"),
            "change and p-value"
        );
        // Samples 5 / 30: significant, but not enough samples.
        assert!(html.contains(r#"<td class="l">latency_ms</td><td class="yes">yes</td><td class="na">—</td><td class="no">no</td><td>5 / 30</td>"#), "{html}");
        assert!(html.contains("B wins") && html.contains("Winner per family"));
    }
}

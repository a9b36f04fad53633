//! The Prometheus text format (0.0.4) and OpenMetrics text: sample lines and the `# TYPE` of
//! their families. Hand-written because no crate fits: prometheus-parse takes names as `\w+`
//! (vLLM's `vllm:time_to_first_token_seconds` is not one) and splits label values at `}`,
//! openmetrics-parser is LGPL. `trackiq status` reads the pipeline's own metrics with it too.

use std::collections::{BTreeMap, HashMap};

/// A line the parser could not read, with its number (from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ExpositionError {
    pub line: usize,
    pub what: String,
}

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The type a `# TYPE` line declares for a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// `untyped` (0.0.4), `unknown` (OpenMetrics), or no `# TYPE` line at all.
    Untyped,
    /// OpenMetrics `info` and `stateset`, gauge histograms: read as gauges.
    Other,
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// `# TYPE` of each family, by family name.
    pub types: HashMap<String, Kind>,
    /// Families whose name has a `:`, by the name with `_` for `:` → (declared name, type).
    colon_types: HashMap<String, (String, Kind)>,
}

/// Suffixes a family's samples carry in either format (OpenMetrics counters are declared
/// without `_total`; histograms' samples are `_bucket`, `_count`, `_sum`, `_created`).
const SUFFIXES: [&str; 7] = ["_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum"];

impl Exposition {
    /// The family a sample belongs to, its type, and the suffix its name adds (`""` for none).
    /// A family declared `vllm:x` whose samples are written `vllm_x` (prometheus_client's
    /// OpenMetrics output) is found too, under its declared name.
    pub fn family<'a>(&'a self, sample: &'a str) -> (&'a str, Kind, &'a str) {
        let candidates = std::iter::once((sample, "")).chain(SUFFIXES.iter().filter_map(|s| sample.strip_suffix(s).map(|f| (f, *s))));
        for (family, suffix) in candidates {
            if let Some((name, k)) = self.types.get_key_value(family) {
                return (name, *k, suffix);
            }
            if let Some((name, k)) = self.colon_types.get(family) {
                return (name, *k, suffix);
            }
        }
        (sample, Kind::Untyped, "")
    }
}

/// Parses a whole exposition; the first bad line is the error.
pub fn parse(text: &str) -> Result<Exposition, ExpositionError> {
    let mut out = Exposition::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                out.types.insert(name.to_string(), kind_of(kind));
                if name.contains(':') {
                    out.colon_types.insert(name.replace(':', "_"), (name.to_string(), kind_of(kind)));
                }
            }
            continue;
        }
        out.samples.push(parse_line(line).map_err(|what| ExpositionError { line: i + 1, what })?);
    }
    Ok(out)
}

fn kind_of(word: &str) -> Kind {
    match word {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "histogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        "untyped" | "unknown" => Kind::Untyped,
        _ => Kind::Other,
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ', '\t']).ok_or_else(|| format!("`{}`: a name without a value", clip(line)))?;
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(format!("`{}` is not a metric name", clip(name)));
    }
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (key, r) = rest.split_once("=\"").ok_or_else(|| format!("{name}: a label without a quoted value"))?;
            let (value, r) = unescape_until_quote(r).ok_or_else(|| format!("{name}: an unterminated label value"))?;
            labels.insert(key.trim().to_string(), value);
            rest = r;
        }
    }
    let value = rest.split_whitespace().next().ok_or_else(|| format!("{name}: no value"))?;
    Ok(Sample { name: name.to_string(), labels, value: number(value).ok_or_else(|| format!("{name}: `{}` is not a number", clip(value)))? })
}

/// A sample value: a float, or Go's spellings of the special ones.
pub fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// At most 60 characters of what was read, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A label value up to its closing quote (`\\`, `\"` and `\n` unescaped) and what follows.
fn unescape_until_quote(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => value.push(match chars.next()?.1 {
                'n' => '\n',
                other => other,
            }),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_their_families() {
        // Prometheus 0.0.4 as prometheus_client (Python) writes it, then OpenMetrics.
        let text = "# HELP vllm:e2e_request_latency_seconds x\n# TYPE vllm:e2e_request_latency_seconds histogram\n\
            vllm:e2e_request_latency_seconds_bucket{le=\"0.5\",model_name=\"m\\\"q\"} 3.0\n\
            vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\\\"q\"} 4.0\n\
            vllm:e2e_request_latency_seconds_count{model_name=\"m\\\"q\"} 4.0\n\
            # TYPE req counter\nreq_total 7 1700000000000\nreq_created 1.7e9\n# TYPE t gauge\nt{a=\"},\"} NaN\n# EOF\n";
        let e = parse(text).unwrap();
        assert_eq!(e.samples.len(), 6);
        assert_eq!(e.samples[0].labels["model_name"], "m\"q");
        assert_eq!((e.samples[1].labels["le"].as_str(), e.samples[1].value), ("+Inf", 4.0));
        assert_eq!(number("+Inf"), Some(f64::INFINITY));
        assert_eq!(e.family("vllm:e2e_request_latency_seconds_bucket"), ("vllm:e2e_request_latency_seconds", Kind::Histogram, "_bucket"));
        assert_eq!(e.family("req_total"), ("req", Kind::Counter, "_total"));
        assert_eq!(e.family("req_created"), ("req", Kind::Counter, "_created"));
        assert_eq!(e.samples[5].labels["a"], "},");
        assert!(e.samples[5].value.is_nan());
        assert_eq!(e.family("nothing_declared"), ("nothing_declared", Kind::Untyped, ""));
        // prometheus_client 0.2x's OpenMetrics: declared with the colon, written without.
        let om = parse("# TYPE vllm:e2e histogram\nvllm_e2e_bucket{le=\"+Inf\"} 1.0\n# EOF\n").unwrap();
        assert_eq!(om.family("vllm_e2e_bucket"), ("vllm:e2e", Kind::Histogram, "_bucket"));
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse("ok 1\nbad{le=\"1 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.what.contains("unterminated"), "{e}");
        assert!(parse("x y\n").unwrap_err().to_string().contains("`y` is not a number"));
        assert!(parse("a-b 1\n").unwrap_err().to_string().contains("not a metric name"));
    }
}

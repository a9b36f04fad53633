//! nccl-tests definitions and output. Bandwidths as nccl-tests' PERFORMANCE.md defines them
//! for all-reduce: algbw = S / t, busbw = algbw × 2(n−1)/n.

/// Algorithm bandwidth in GB/s (10⁹ bytes per second) for `bytes` moved in `seconds`.
pub fn algbw_gbps(bytes: f64, seconds: f64) -> f64 {
    bytes / seconds / 1e9
}

/// All-reduce bus bandwidth from the algorithm bandwidth and the number of ranks.
pub fn allreduce_busbw(algbw: f64, ranks: usize) -> f64 {
    if ranks == 0 { 0.0 } else { algbw * 2.0 * (ranks as f64 - 1.0) / ranks as f64 }
}

/// One row of an nccl-tests result table (out-of-place and in-place).
#[derive(Debug, Clone, PartialEq)]
pub struct NcclRow {
    pub size_bytes: u64,
    pub count: u64,
    pub dtype: String,
    pub redop: String,
    pub out_time_us: f64,
    pub out_algbw: f64,
    pub out_busbw: f64,
    pub in_time_us: f64,
    pub in_algbw: f64,
    pub in_busbw: f64,
    /// Elements that differed from the expected result (`#wrong`; 0 where not reported).
    pub wrong: u64,
}

/// A parsed nccl-tests text output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NcclResult {
    pub rows: Vec<NcclRow>,
    pub avg_busbw: Option<f64>,
    /// GPUs listed under "Using devices".
    pub devices: Vec<String>,
}

/// Parses the text output of an nccl-tests binary (e.g. `all_reduce_perf`), with or without
/// the `root` column. The error names the line that could not be read.
pub fn parse_text(text: &str) -> Result<NcclResult, String> {
    let mut out = NcclResult::default();
    let mut columns: Option<Vec<String>> = None;
    for (no, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('#') {
            let h = h.trim();
            if h.starts_with("size") && h.contains("count") {
                columns = Some(h.split_whitespace().map(str::to_string).collect());
            } else if let Some(v) = h.strip_prefix("Avg bus bandwidth") {
                out.avg_busbw = v.trim_start_matches([' ', ':']).trim().parse().ok();
            } else if h.starts_with("Rank") && h.contains("device") {
                out.devices.push(h.rsplit(']').next().unwrap_or_default().trim().to_string());
            }
            continue;
        }
        if t.is_empty() {
            continue;
        }
        let Some(cols) = &columns else { continue };
        let tok: Vec<&str> = t.split_whitespace().collect();
        if tok.len() != cols.len() {
            return Err(format!("line {}: {} fields where the header has {}: `{t}`", no + 1, tok.len(), cols.len()));
        }
        let at = |name: &str, nth: usize| cols.iter().enumerate().filter(|(_, c)| c.as_str() == name).nth(nth).map(|(i, _)| tok[i]);
        let num = |name: &str, nth: usize| -> Result<f64, String> {
            at(name, nth).ok_or_else(|| format!("no `{name}` column"))?.parse::<f64>().map_err(|_| format!("line {}: `{name}` is not a number", no + 1))
        };
        out.rows.push(NcclRow {
            size_bytes: num("size", 0)? as u64,
            count: num("count", 0)? as u64,
            dtype: at("type", 0).unwrap_or_default().to_string(),
            redop: at("redop", 0).unwrap_or_default().to_string(),
            out_time_us: num("time", 0)?,
            out_algbw: num("algbw", 0)?,
            out_busbw: num("busbw", 0)?,
            in_time_us: num("time", 1)?,
            in_algbw: num("algbw", 1)?,
            in_busbw: num("busbw", 1)?,
            wrong: ["#wrong", "error"].iter().filter_map(|c| at(c, 0)).filter_map(|v| v.parse::<f64>().ok()).map(|v| v as u64).sum(),
        });
    }
    if out.rows.is_empty() {
        return Err("no result rows: is this nccl-tests output?".into());
    }
    Ok(out)
}

/// Parses the JSON file nccl-tests writes with `-J <file>.json` (format version 3: `config`
/// with `devices`, then `results` of `out_of_place` / `in_place` objects). Doubles may be the
/// string `"nan"`; a missing out-of-place half (trace replay) gives NaN figures, which become
/// no samples. The error names what is missing.
pub fn parse_json(text: &str) -> Result<NcclResult, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let results = doc.get("results").and_then(Value::as_array).ok_or("no `results` list: is this an nccl-tests -J file?")?;
    let num = |v: Option<&Value>| -> f64 {
        match v {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            _ => f64::NAN,
        }
    };
    let half = |r: &Value, key: &str| -> (f64, f64, f64, u64) {
        match r.get(key) {
            Some(h @ Value::Object(_)) => (
                num(h.get("time").or_else(|| h.get("cpu_time"))),
                num(h.get("alg_bw")),
                num(h.get("bus_bw")),
                h.get("nwrong").and_then(Value::as_f64).unwrap_or(0.0) as u64,
            ),
            _ => (f64::NAN, f64::NAN, f64::NAN, 0),
        }
    };
    let mut out = NcclResult::default();
    for (i, r) in results.iter().enumerate() {
        let size = r.get("size").and_then(Value::as_u64).ok_or_else(|| format!("results[{i}]: no `size`"))?;
        let (ot, oa, ob, ow) = half(r, "out_of_place");
        let (it, ia, ib, iw) = half(r, "in_place");
        if ot.is_nan() && it.is_nan() {
            return Err(format!("results[{i}]: neither `out_of_place` nor `in_place` has a time"));
        }
        out.rows.push(NcclRow {
            size_bytes: size,
            count: r.get("count").and_then(Value::as_u64).unwrap_or(0),
            dtype: r.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
            redop: r.get("redop").and_then(Value::as_str).unwrap_or_default().to_string(),
            out_time_us: ot,
            out_algbw: oa,
            out_busbw: ob,
            in_time_us: it,
            in_algbw: ia,
            in_busbw: ib,
            wrong: ow + iw,
        });
    }
    if out.rows.is_empty() {
        return Err("`results` is empty".into());
    }
    out.avg_busbw = doc.pointer("/average_bus_bandwidth/bandwidth").and_then(Value::as_f64);
    if let Some(devs) = doc.pointer("/config/devices").and_then(Value::as_array) {
        out.devices = devs.iter().filter_map(|d| d.get("device_info").and_then(Value::as_str)).map(str::to_string).collect();
    }
    Ok(out)
}

/// Parses nccl-tests output of either kind: the `-J` JSON file or the text printed on stdout.
pub fn parse_any(text: &str) -> Result<NcclResult, String> {
    if text.trim_start().starts_with('{') { parse_json(text) } else { parse_text(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_by_the_nccl_tests_definitions() {
        // 1 GB in 10 ms: algbw 100 GB/s; 8 ranks: busbw = 100 × 2 × 7 / 8 = 175 GB/s.
        let alg = algbw_gbps(1e9, 0.01);
        assert!((alg - 100.0).abs() < 1e-9);
        assert!((allreduce_busbw(alg, 8) - 175.0).abs() < 1e-9);
        assert_eq!(allreduce_busbw(alg, 1), 0.0, "one rank moves nothing over the bus");
        // Row of the fixture: 134217728 B in 1093.5 us -> 122.74 GB/s, busbw 214.79 on 8 ranks.
        let alg = algbw_gbps(134_217_728.0, 1093.5e-6);
        assert!((alg - 122.74).abs() < 0.005);
        assert!((allreduce_busbw(alg, 8) - 214.79).abs() < 0.01);
    }

    #[test]
    fn parses_text_output_with_and_without_root() {
        let r = parse_text(include_str!("../../../tests/fixtures/nccl/all_reduce_perf_8gpu.txt")).unwrap();
        assert_eq!(r.rows.len(), 5);
        assert_eq!(r.devices.len(), 8);
        let last = r.rows.last().unwrap();
        assert_eq!((last.size_bytes, last.count, last.dtype.as_str()), (134_217_728, 33_554_432, "float"));
        assert_eq!((last.out_busbw, last.in_time_us), (214.79, 1092.9));
        assert_eq!(r.avg_busbw, Some(67.1234));
        let old = parse_text(include_str!("../../../tests/fixtures/nccl/all_reduce_perf_noroot.txt")).unwrap();
        assert_eq!(old.rows[0].out_algbw, 0.0);
        assert_eq!(old.rows[1].in_busbw, 25.61);
        let json = parse_any(include_str!("../../../tests/fixtures/nccl/all_reduce_perf_8gpu.json")).unwrap();
        assert_eq!(json.rows, r.rows, "the -J file of the same run gives the same rows");
        assert_eq!((json.avg_busbw, json.devices.len()), (r.avg_busbw, 8));
        assert!(parse_json("{\"version\": 3}").unwrap_err().contains("no `results`"));
        let replay = parse_json(r#"{"results":[{"size":8,"count":2,"out_of_place":null,"in_place":{"time":"nan","alg_bw":1.0,"bus_bw":1.5,"nwrong":null}}]}"#).unwrap_err();
        assert!(replay.contains("results[0]"), "{replay}");
        let err = parse_text("#       size         count      type   redop     time   algbw   busbw  error     time   algbw   busbw  error\n 8 2 float\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}

/// Samples of a parsed result: per message size, time, algbw and busbw of the out-of-place
/// and in-place runs (`<figure>.<size>B`), and the average bus bandwidth.
pub fn to_samples(r: &NcclResult, ts_us: i64) -> Vec<trackiq_schemas::Sample> {
    let mut out = Vec::new();
    // Figures nccl-tests did not report (NaN) become no sample rather than a fake zero.
    let mut s = |metric: String, value: f64, unit: &str| {
        if value.is_finite() {
            out.push(trackiq_schemas::Sample { ts_us, metric, value, unit: unit.into(), rank: None, step: None });
        }
    };
    for row in &r.rows {
        let b = row.size_bytes;
        s(format!("time_us.{b}B"), row.out_time_us, "us");
        s(format!("algbw_gbps.{b}B"), row.out_algbw, "GB/s");
        s(format!("busbw_gbps.{b}B"), row.out_busbw, "GB/s");
        s(format!("inplace_time_us.{b}B"), row.in_time_us, "us");
        s(format!("inplace_algbw_gbps.{b}B"), row.in_algbw, "GB/s");
        s(format!("inplace_busbw_gbps.{b}B"), row.in_busbw, "GB/s");
    }
    if let Some(avg) = r.avg_busbw {
        s("avg_busbw_gbps".into(), avg, "GB/s");
    }
    out
}

/// Parses a byte size: `8`, `8B`, `1K`/`1KB`/`1KiB` (1024), `64M`, `64MiB`, `1G`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Message sizes of a sweep `MIN..MAX`, doubling from MIN as nccl-tests does with `-f 2`.
pub fn parse_size_range(spec: &str) -> Result<Vec<u64>, String> {
    let bad = |why: &str| format!("invalid --sizes `{spec}`: {why} (expected MIN..MAX, e.g. 8B..64MiB)");
    let (lo, hi) = spec.split_once("..").ok_or_else(|| bad("no `..`"))?;
    let lo = parse_size(lo).ok_or_else(|| bad("cannot read the minimum"))?;
    let hi = parse_size(hi).ok_or_else(|| bad("cannot read the maximum"))?;
    if lo < 4 || lo > hi {
        return Err(bad("the minimum must be at least 4 B (one float) and not above the maximum"));
    }
    let mut out = Vec::new();
    // Doubling stops at the maximum or where it would leave u64 (a maximum of 2^63 B or more
    // overflowed here: a panic, or without overflow checks an endless run of zeros).
    let mut s = Some(lo);
    while let Some(size) = s.filter(|&size| size <= hi) {
        out.push(size);
        s = size.checked_mul(2);
    }
    Ok(out)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn size_ranges_double_like_nccl_tests() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1K"), Some(1024));
        let s = parse_size_range("8B..64MiB").unwrap();
        assert_eq!((s.len(), s[0], s[1], *s.last().unwrap()), (24, 8, 16, 64 << 20));
        assert!(parse_size_range("64MiB..8B").unwrap_err().contains("64MiB..8B"));
        assert!(parse_size_range("8B-64MiB").unwrap_err().contains("no `..`"));
        // Up to the largest u64: doubling ends at 2^63 instead of overflowing.
        let s = parse_size_range("4..18446744073709551615").unwrap();
        assert_eq!((s.len(), *s.last().unwrap()), (62, 1 << 63));
    }

    /// Inputs on which fuzz target `import_nccl` failed (`tests/fuzz_regressions/import_nccl/`
    /// of this crate; `fuzz/README.md` tells how to reproduce one): each goes through what
    /// the target calls, which must return rather than panic.
    #[test]
    fn fuzz_findings_parse_or_fail_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/import_nccl");
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(!files.is_empty(), "{} holds the findings", dir.display());
        for path in files {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let run = std::panic::catch_unwind(|| {
                for r in [parse_any(&text), parse_text(&text), parse_json(&text)].into_iter().flatten() {
                    to_samples(&r, 0);
                }
                (parse_size(&text), parse_size_range(&text).map(|s| s.len()))
            });
            assert!(run.is_ok(), "{} panicked", path.display());
        }
    }
}

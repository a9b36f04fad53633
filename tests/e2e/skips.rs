//! Parts of the e2e tests that need a tool Cargo does not build (a browser, another tool whose
//! output is imported, a second SMTP implementation). Each such part asks [`have`] first; a
//! missing tool prints one line naming it and how to get it, and the part is counted as
//! skipped. libtest hides the output of a passing test, so a skip would read as a pass: when
//! the test binary exits, one summary line says how many parts ran and which were SKIPPED and
//! why. `.ci/run` installs every tool, so CI runs every part.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};

/// A tool outside Cargo that some part of a test needs.
pub struct Tool {
    /// What it is called, as the summary names it.
    pub name: &'static str,
    /// How a user gets it on Debian.
    pub get: &'static str,
    /// Whether it is here.
    pub present: fn() -> bool,
}

pub const CHROMIUM: Tool = Tool { name: "chromium + chromedriver", get: "apt-get install chromium chromium-driver", present: || on_path(&["chromium", "chromium-browser"]).is_some() && on_path(&["chromedriver"]).is_some() };
pub const AIOSMTPD: Tool = Tool { name: "Python aiosmtpd", get: "python3 -m pip install aiosmtpd", present: || python_has("aiosmtpd") };
pub const PYTEST_BENCHMARK: Tool = Tool { name: "pytest-benchmark", get: "python3 -m pip install pytest-benchmark", present: || python_has("pytest_benchmark") };
pub const HYPERFINE: Tool = Tool { name: "hyperfine", get: "apt-get install hyperfine", present: || runs("hyperfine", &["--version"]) };
pub const GOOGLE_BENCHMARK: Tool = Tool {
    name: "Google Benchmark (libbenchmark-dev, g++)",
    get: "apt-get install libbenchmark-dev g++",
    present: || Path::new("/usr/include/benchmark/benchmark.h").exists() && runs("g++", &["--version"]),
};
pub const STUNNEL: Tool = Tool { name: "stunnel4 + openssl", get: "apt-get install stunnel4 openssl", present: || on_path(&["stunnel4", "stunnel"]).is_some() && runs("openssl", &["version"]) };
pub const PROMETHEUS_CLIENT: Tool = Tool { name: "Python prometheus-client", get: "python3 -m pip install prometheus-client", present: || python_has("prometheus_client") };
pub const OTEL_SDK: Tool = Tool {
    name: "Python OpenTelemetry SDK + OTLP/HTTP exporter",
    get: "python3 -m pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http",
    present: || python_has("opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.http.metric_exporter"),
};
pub const NODE_EXPORTER: Tool = Tool { name: "prometheus-node-exporter", get: "apt-get install prometheus-node-exporter", present: || on_path(&["prometheus-node-exporter", "node_exporter"]).is_some() };
pub const PSQL: Tool = Tool { name: "psql (postgresql-client)", get: "apt-get install postgresql-client", present: || runs("psql", &["--version"]) };
pub const DUCKDB: Tool = Tool { name: "Python duckdb", get: "python3 -m pip install duckdb", present: || python_has("duckdb") };
pub const PSYCOPG_PANDAS: Tool = Tool { name: "Python psycopg 3 + pandas", get: "python3 -m pip install 'psycopg[binary]' pandas", present: || python_has("psycopg, pandas") };
pub const CC: Tool = Tool { name: "a C compiler (cc)", get: "apt-get install gcc", present: || runs("cc", &["--version"]) };
pub const PERF: Tool = Tool { name: "perf (linux-perf) allowed to sample", get: "apt-get install linux-perf; sysctl kernel.perf_event_paranoid=2", present: || trackiq_producers::profile::perf().is_ok() };
pub const CARGO_DENY: Tool = Tool { name: "cargo-deny", get: "cargo install --locked cargo-deny", present: || runs("cargo", &["deny", "--version"]) };
pub const CARGO_CYCLONEDX: Tool = Tool { name: "cargo-cyclonedx", get: "cargo install --locked cargo-cyclonedx", present: || runs("cargo", &["cyclonedx", "--version"]) };
pub const CURL: Tool = Tool { name: "curl", get: "apt-get install curl", present: || runs("curl", &["--version"]) };

/// The first of `names` found on PATH.
pub fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n))).find(|p| p.is_file())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn python_has(module: &str) -> bool {
    runs("python3", &["-c", &format!("import {module}")])
}

/// (part, tool, ran) of every part that asked, in the order asked.
static PARTS: Mutex<Vec<(String, &'static str, &'static str, bool)>> = Mutex::new(Vec::new());

/// Whether `part` can run: `tool` is here. When it is not, says so in one line and counts the
/// part as skipped for the summary printed at exit.
pub fn have(part: &str, tool: &Tool) -> bool {
    static SUMMARY_AT_EXIT: Once = Once::new();
    SUMMARY_AT_EXIT.call_once(|| {
        // SAFETY: `atexit` takes a plain function; `summary` only locks a static and writes
        // to stderr, both fine while the process exits.
        unsafe { libc::atexit(summary) };
    });
    let present = (tool.present)();
    if !present {
        eprintln!("SKIPPED {part}: needs {} ({})", tool.name, tool.get);
    }
    PARTS.lock().unwrap_or_else(|e| e.into_inner()).push((part.to_string(), tool.name, tool.get, present));
    present
}

/// The line printed when the test binary exits (after libtest's own result line).
pub fn summary_line(parts: &[(String, &str, &str, bool)]) -> String {
    let skipped: Vec<String> = parts.iter().filter(|p| !p.3).map(|(part, name, get, _)| format!("{part} (needs {name}: {get})")).collect();
    let ran = parts.len() - skipped.len();
    if skipped.is_empty() {
        format!("e2e summary: every part that needs a tool outside Cargo ran ({ran}); 0 SKIPPED")
    } else {
        format!("e2e summary: {} of {} parts that need a tool outside Cargo were SKIPPED (every other test ran): {}; .ci/run installs them", skipped.len(), parts.len(), skipped.join("; "))
    }
}

extern "C" fn summary() {
    let parts = PARTS.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("\n{}\n", summary_line(&parts));
}

#[test]
fn the_summary_counts_each_skipped_part_and_says_how_to_get_its_tool() {
    let parts = [("browser pages".to_string(), "chromium", "apt-get install chromium", false), ("import of hyperfine".to_string(), "hyperfine", "apt-get install hyperfine", true)];
    let line = summary_line(&parts);
    assert!(line.contains("1 of 2 parts") && line.contains("SKIPPED") && line.contains("browser pages (needs chromium: apt-get install chromium)"), "{line}");
    assert!(!line.contains("import of hyperfine"), "{line}");
    assert!(summary_line(&parts[1..]).contains("ran (1); 0 SKIPPED"), "{}", summary_line(&parts[1..]));
}

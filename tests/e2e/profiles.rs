//! `bench cmd --profile` and `trackiq profile --against`: a C program with two functions under
//! real perf; the candidate gives one of them three times the work.

use std::process::Command;
use std::time::Duration;

use crate::pipeline::uuid_in;
use crate::skips::{CC, PERF, have};
use crate::support::{Up, fast_config, http_get, ok, wait_for};

const TWO_C: &str = r#"#include <stdlib.h>
__attribute__((noinline)) double hash(long n) { volatile double x = 1.0; for (long i = 0; i < n; i++) x = x * 1.0000001 + 1e-9; return x; }
__attribute__((noinline)) double copy(long n) { volatile double y = 2.0; for (long i = 0; i < n; i++) y = y * 0.9999999 + 1e-9; return y; }
int main(int argc, char **argv) {
    long h = argc > 1 ? atol(argv[1]) : 2000000;
    return (hash(h) + copy(8000000)) < 0;
}
"#;

#[test]
fn the_differential_profile_puts_the_slower_function_first() {
    if !have("profiles (a C program)", &CC) || !have("profiles (perf)", &PERF) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("two.c"), TWO_C).unwrap();
    let exe = dir.path().join("two");
    let built = Command::new("cc").args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"]).arg(&exe).arg(dir.path().join("two.c")).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let exe = exe.to_str().unwrap();
    let bench = |steps: &str| {
        let out = ok(&up.cli(&["bench", "cmd", "--iterations", "3", "--profile", "3", "--workload", "two", "--", exe, steps]));
        assert!(out.contains("profile: "), "{out}");
        uuid_in(&out)
    };
    let (base, cand) = (bench("2000000"), bench("6000000"));
    let svg = dir.path().join("diff.svg");
    let out = ok(&up.cli(&["profile", &cand, "--against", &base, "--svg", svg.to_str().unwrap()]));
    // The table's first row is `hash`: 2M of 10M steps (20 %) became 6M of 14M (43 %).
    let first = out.lines().find(|l| l.starts_with('│') && !l.contains("function")).unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = first.trim_matches('│').split('┆').map(str::trim).collect();
    assert_eq!(cells[0], "hash", "{out}");
    let (before, after) = cells[1].split_once(" → ").map(|(a, b)| (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap())).unwrap();
    assert!((12.0..30.0).contains(&before) && (33.0..55.0).contains(&after), "hash's self share {before} → {after}:\n{out}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<title>hash ("), "the flame graph has a frame for hash");

    // The run's dashboard page: its flame graph, and against the series' earlier run with a
    // profile, the changed functions (hash first) and the differential flame graph.
    let dashboard = up.log.lock().unwrap().lines().find_map(|l| l.split("dashboard http://").nth(1).map(|r| r.split('/').next().unwrap().to_string())).expect("up prints its dashboard");
    let page = wait_for("the run page with the profile against the baseline", Duration::from_secs(60), || {
        Some(http_get(&format!("http://{dashboard}/runs/{cand}"))).filter(|p| p.contains(&format!("Against run <a href=\"/runs/{base}\"")))
    });
    let table = page.split("changed-functions").nth(1).expect("the changed functions");
    let first = table.split("<td><code>").nth(1).and_then(|c| c.split("</code>").next());
    assert_eq!(first, Some("hash"), "{table}");
    assert!(page.contains(&format!("/runs/{cand}/profile-diff.svg")) && page.contains(&format!("/runs/{cand}/profile.svg")));
    for path in ["profile.svg", "profile-diff.svg"] {
        let svg = http_get(&format!("http://{dashboard}/runs/{cand}/{path}"));
        assert!(svg.starts_with("<?xml") && svg.contains("<title>hash ("), "{path}");
    }
    let _ = up.stop();
}

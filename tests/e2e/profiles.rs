//! `bench cmd --profile` and `trackiq profile --against`: a C program with two functions under
//! real perf; the candidate gives one of them three times the work.

use std::process::Command;
use std::time::Duration;

use crate::pipeline::uuid_in;
use crate::browser::driver;
use crate::skips::{CC, CHROMIUM, PERF, have, on_path};
use crate::webdriver::Session;
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
    // The run's report file is self-contained: both flame graphs embedded as images, the
    // changed functions with hash first (written again by `bench` once the profile is stored,
    // when the verdict came first).
    let report_file = dir.path().join("data").join("reports").join(format!("{cand}.html"));
    let report = wait_for("the report with the profile against the baseline", Duration::from_secs(60), || {
        std::fs::read_to_string(&report_file).ok().filter(|r| r.contains(&format!("Against run {base}")))
    });
    let images: Vec<String> = report.split("src=\"data:image/svg+xml;base64,").skip(1).map(|r| r.split('"').next().unwrap().to_string()).collect();
    assert_eq!(images.len(), 2, "the flame graph and the differential");
    for b64 in &images {
        use base64::Engine;
        let svg = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<title>hash ("));
    }
    let first = report.split("<tbody>").last().and_then(|t| t.split("<code>").nth(1)).and_then(|c| c.split("</code>").next());
    assert_eq!(first, Some("hash"));
    // In a real browser both pages draw their flame graphs (an image that fails to decode or
    // is refused by the page's CSP has no natural width).
    if have("profiles in a browser", &CHROMIUM) {
        let (chromium, chromedriver) = (on_path(&["chromium", "chromium-browser"]).expect("checked"), on_path(&["chromedriver"]).expect("checked"));
        let chromedriver = driver(&chromedriver);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let caps = serde_json::json!({"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100"]}, "goog:loggingPrefs": {"browser": "ALL"}});
            let client = Session::start(&chromedriver.1, caps).await.expect("a chromium session");
            let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("profile-screenshots");
            std::fs::create_dir_all(&shots).unwrap();
            for (name, url) in [("run-page", format!("http://{dashboard}/runs/{cand}")), ("report-file", format!("file://{}", report_file.display()))] {
                client.goto(&url).await.unwrap();
                let drawn = wait_for_async(|| async {
                    let v = client.execute("const i = [...document.querySelectorAll('#profile img')]; return i.map(x => x.complete ? x.naturalWidth : -1);").await.ok()?;
                    let widths: Vec<i64> = v.as_array()?.iter().filter_map(|w| w.as_i64()).collect();
                    (widths.len() == 2 && widths.iter().all(|w| *w > 0)).then_some(widths)
                })
                .await;
                assert!(drawn.is_some(), "{name}: the two flame graphs are drawn ({url})");
                client.execute("document.getElementById('profile').scrollIntoView();").await.unwrap();
                let errors: Vec<serde_json::Value> = client.browser_log().await.unwrap().into_iter().filter(|e| e["level"] == "SEVERE").collect();
                assert!(errors.is_empty(), "{name}: console errors {errors:?}");
                std::fs::write(shots.join(format!("{name}.png")), client.screenshot().await.unwrap()).unwrap();
            }
            client.close().await.unwrap();
        });
    }
    let _ = up.stop();
}

/// `f` until it gives a value, for up to 30 s.
async fn wait_for_async<T, F: std::future::Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

//! The README's two commands share one build: `cargo run` (the `trackiq` package, normal
//! dependencies) and `cargo test --workspace` (every member, dev-dependencies too) must
//! resolve every shared crate with the same features, or the second command rebuilds
//! parquet, DataFusion and their neighbours (11 minutes on 2 cores, measured by a new user).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `package version -> feature sets` as `cargo tree` resolves them for `args`. A package
/// can be built more than once (for the host, as a build or proc-macro dependency, and for
/// the target), each time with its own features, so every set is kept.
fn features(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "--prefix", "none", "-f", "{p}|{f}"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim_end_matches(" (*)").split_once('|'))
        // Path dependencies print their directory; the name and version identify them.
        .map(|(p, f)| (p.split(" (").next().unwrap_or(p).to_string(), f.to_string()))
        .fold(BTreeMap::new(), |mut map, (p, f)| {
            map.entry(p).or_insert_with(BTreeSet::new).insert(f);
            map
        })
}

#[test]
fn the_test_build_resolves_the_same_features_as_cargo_run() {
    let run = features(&["-p", "trackiq", "-e", "normal,build"]);
    let test = features(&["--workspace", "-e", "normal,build,dev"]);
    // Every build of a crate that `cargo run` makes must be made identically by `cargo test`,
    // so its artifact is reused; a test-only extra build of a small host crate is allowed.
    let empty = BTreeSet::new();
    let changed: Vec<String> = run
        .iter()
        .flat_map(|(p, sets)| {
            let test_sets = test.get(p).unwrap_or(&empty);
            sets.iter()
                .filter(|f| !test_sets.contains(*f))
                .map(move |f| format!("{p}: `{f}` for cargo run, {test_sets:?} for cargo test"))
        })
        .collect();
    assert!(run.len() > 300, "cargo tree listed the build: {} packages", run.len());
    assert!(
        changed.is_empty(),
        "dev-dependencies change features of crates the normal build uses; add those features to the root [dependencies] (build sharing):\n{}",
        changed.join("\n")
    );
}

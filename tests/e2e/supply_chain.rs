//! The supply chain we vouch for: cargo-deny's licence, ban and source checks over
//! `deny.toml`, the CycloneDX SBOM of SECURITY.md's command, and SECURITY.md's table of
//! native code kept equal to `Cargo.lock`.

use std::path::Path;
use std::process::Command;

use crate::skips::{CARGO_CYCLONEDX, CARGO_DENY, have};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new("cargo").args(args).current_dir(ROOT).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn licences_bans_and_sources_pass_cargo_deny() {
    if !have("licences, bans and sources (cargo deny)", &CARGO_DENY) {
        return;
    }
    let (ok, out) = run(&["deny", "--offline", "check", "licenses", "bans", "sources"]);
    assert!(ok && out.contains("licenses ok") && out.contains("bans ok") && out.contains("sources ok"), "{out}");
    let db = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/advisory-dbs"));
    match db.filter(|d| d.is_dir()) {
        Some(_) => {
            let (ok, out) = run(&["deny", "--offline", "check", "--disable-fetch", "advisories"]);
            assert!(ok, "{out}");
        }
        None => eprintln!("note: cargo deny's advisories not checked: no local copy of the RustSec database at ~/.cargo/advisory-dbs (`cargo deny fetch` where github.com is reachable)"),
    }
}

/// Removes the SBOM files of one test run, passed or not.
struct Sboms(String);

impl Drop for Sboms {
    fn drop(&mut self) {
        for dir in [".", "schemas", "infra", "producers", "processors", "processors/stats", "sinks"] {
            let _ = std::fs::remove_file(Path::new(ROOT).join(dir).join(format!("{}.json", self.0)));
        }
    }
}

#[test]
fn the_sbom_names_the_native_code_with_its_versions() {
    if !have("SBOM (cargo cyclonedx)", &CARGO_CYCLONEDX) {
        return;
    }
    let name = Sboms(format!("sbom-test-{}", std::process::id()));
    let (ok, out) = run(&["cyclonedx", "--format", "json", "--spec-version", "1.5", "--override-filename", &name.0, "-q"]);
    assert!(ok, "{out}");
    let sbom: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join(format!("{}.json", name.0))).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "trackiq");
    let components = sbom["components"].as_array().unwrap();
    assert!(components.len() > 300, "{} components", components.len());
    let lock = std::fs::read_to_string(Path::new(ROOT).join("Cargo.lock")).unwrap();
    for native in ["rdkafka-sys", "openssl-src", "zstd-sys", "libsql-ffi"] {
        let c = components.iter().find(|c| c["name"] == native).unwrap_or_else(|| panic!("{native} is not in the SBOM"));
        let version = c["version"].as_str().unwrap();
        assert!(lock.contains(&format!("name = \"{native}\"\nversion = \"{version}\"")), "{native} {version} is not Cargo.lock's");
        assert!(c["purl"].as_str().unwrap().starts_with(&format!("pkg:cargo/{native}@")), "{c}");
    }
}

/// Every crate that builds native code (a `links` key, or libSQL's bundled SQLite) is in
/// SECURITY.md's table with the version of `Cargo.lock`.
#[test]
fn security_md_lists_every_native_crate_at_its_locked_version() {
    let (ok, out) = run(&["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", "x86_64-unknown-linux-gnu"]);
    assert!(ok, "{out}");
    let meta: serde_json::Value = serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let resolved: Vec<&str> = meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let security = std::fs::read_to_string(Path::new(ROOT).join("SECURITY.md")).unwrap();
    let mut native = Vec::new();
    for p in meta["packages"].as_array().unwrap().iter().filter(|p| resolved.contains(&p["id"].as_str().unwrap())) {
        let name = p["name"].as_str().unwrap();
        // prettyplease declares `links` only to keep one copy per major version: pure Rust.
        if (p["links"].is_string() && name != "prettyplease") || name == "libsql-ffi" {
            native.push(name);
            let row = format!("| `{name}` | {} |", p["version"].as_str().unwrap());
            assert!(security.contains(&row), "SECURITY.md has no row `{row}`: a native dependency was added or changed version");
        }
    }
    assert!(native.len() >= 8 && native.contains(&"rdkafka-sys"), "{native:?}");
}

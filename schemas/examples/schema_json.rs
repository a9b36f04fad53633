//! Writes every current schema, self-contained (`registry().schema_json(name)`), to
//! `<dir>/<name>.avsc`, with trackiq's Parsing Canonical Form and fingerprint beside it in
//! `<dir>/<name>.trackiq`: the input of `schemas/tests/fixtures/spec_fingerprints.py`, which
//! checks both with Python's Avro libraries.
//!
//! cargo run -q -p trackiq-schemas --example schema_json -- /tmp/trackiq-schemas

use trackiq_schemas::registry;

/// Every record type of the contract.
const NAMES: [&str; 9] = [
    "trackiq.RunStarted",
    "trackiq.SampleBatch",
    "trackiq.RunFinished",
    "trackiq.Detection",
    "trackiq.RunSummary",
    "trackiq.Verdict",
    "trackiq.DeadLetter",
    "trackiq.TrendResult",
    "trackiq.BaselinePin",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: schema_json <dir>")?);
    std::fs::create_dir_all(&dir)?;
    for name in NAMES {
        let json = registry().schema_json(name).ok_or(format!("no schema {name}"))?;
        std::fs::write(dir.join(format!("{name}.avsc")), serde_json::to_string_pretty(json)?)?;
        let form = registry().canonical_form(name).ok_or(format!("no schema {name}"))?;
        let fp: String = registry().fingerprint(name).ok_or("no fingerprint")?.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(dir.join(format!("{name}.trackiq")), format!("{fp}\n{form}\n"))?;
    }
    Ok(())
}

//! Writes every schema version trackiq decodes, self-contained, to `<dir>/<name>.<n>.avsc`
//! (n = 0 is the current version, `registry().schema_json(name)`; then the history), with
//! trackiq's fingerprint, legacy fingerprint and Parsing Canonical Form, one a line, beside
//! it in `<dir>/<name>.<n>.trackiq`: the input of `schemas/tests/fixtures/spec_fingerprints.py`,
//! which checks them with Python's Avro libraries.
//!
//! cargo run -q -p trackiq-schemas --example schema_json -- /tmp/trackiq-schemas

use trackiq_schemas::registry;

/// Every record type of the contract.
const NAMES: [&str; 10] = [
    "trackiq.RunStarted",
    "trackiq.SampleBatch",
    "trackiq.SampleColumns",
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
    let hex = |fp: [u8; 8]| fp.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for name in NAMES {
        let current = registry().schema_json(name).ok_or(format!("no schema {name}"))?;
        for (n, v) in registry().versions(name).into_iter().enumerate() {
            // The listing's order is the contract this file relies on: current first.
            if n == 0 && v.json != current {
                return Err(format!("{name}: the first version listed is not the current one").into());
            }
            std::fs::write(dir.join(format!("{name}.{n}.avsc")), serde_json::to_string_pretty(v.json)?)?;
            let about = format!("{}\n{}\n{}\n", hex(v.fingerprint), hex(v.legacy_fingerprint), v.canonical_form);
            std::fs::write(dir.join(format!("{name}.{n}.trackiq")), about)?;
        }
    }
    Ok(())
}

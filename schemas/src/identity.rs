//! Stable identities: which runs are comparable (series_id) and on what environment (env_hash).

use sha2::{Digest, Sha256};

use crate::events::{Platform, RunStarted, Workload};

/// Hex of the first 8 bytes of SHA-256 over the parts, separated so that ("ab","c") != ("a","bc").
fn short_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

/// Comparable runs share a series: same tool, workload, hardware name and user labels.
/// Version fields (commit, tag, env) are deliberately left out: they are what is compared.
pub fn series_id(run: &RunStarted) -> String {
    let w: &Workload = &run.workload;
    let mut parts = vec![
        run.tool.clone(),
        w.name.clone(),
        w.kind.clone(),
        opt(&w.batch_size),
        opt(&w.precision),
        opt(&w.sequence_length),
        opt(&w.backend),
        opt(&w.steps),
        run.platform.hardware_name.clone(),
    ];
    // BTreeMap iterates in key order, so label order on the command line does not matter.
    parts.extend(run.labels.iter().map(|(k, v)| format!("{k}={v}")));
    short_hash(parts.iter().map(String::as_str))
}

/// Hash of the software and hardware environment.
pub fn env_hash(p: &Platform) -> String {
    let mut parts = vec![p.os.clone(), opt(&p.kernel), p.cpu.clone(), opt(&p.driver), opt(&p.framework), opt(&p.framework_version)];
    parts.extend(p.gpus.iter().cloned());
    short_hash(parts.iter().map(String::as_str))
}

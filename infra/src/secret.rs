//! Secrets named in the configuration: read from `{ env = "VAR" }` or `{ file = "/path" }` at
//! start-up, never written in the config, and never shown (`Debug` prints `***`; errors name
//! the variable or file, never a value). Kafka credentials, notification channels, the
//! dashboard and the ingest API all take them this way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a secret is read from at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable's value.
    Env(String),
    /// A file's contents (trailing newline dropped), e.g. a mounted Kubernetes secret.
    File(PathBuf),
}

/// `{ env = "VAR" }` or `{ file = "path" }`; anything else (a secret written in the config)
/// is refused without repeating it.
impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Where {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Where(Where),
            Other(serde::de::IgnoredAny),
        }
        match Repr::deserialize(d)? {
            Repr::Where(Where { env: Some(v), file: None }) => Ok(SecretSource::Env(v)),
            Repr::Where(Where { env: None, file: Some(f) }) => Ok(SecretSource::File(f)),
            _ => Err(serde::de::Error::custom(
                "a secret (`password`, `token`, `webhook_url`) is read from `{ env = \"VAR\" }` or `{ file = \"/path\" }`; it is never written in the config (its value is not repeated here)",
            )),
        }
    }
}

/// A secret that could not be read: whose, which, and why (never its value).
#[derive(Debug, Error)]
#[error("{owner} {what}: {reason}")]
pub struct SecretError {
    /// What the secret belongs to: a channel's name, `kafka`, `dashboard`, ...
    pub owner: String,
    /// Which secret: `password`, `token`, ...
    pub what: String,
    pub reason: String,
}

/// A secret's value. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads `source`; the error names the variable or file, never a value.
    pub fn read(owner: &str, what: &str, source: &SecretSource) -> Result<Secret, SecretError> {
        let fail = |reason: String| SecretError { owner: owner.into(), what: what.into(), reason };
        let value = match source {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| fail(format!("environment variable {var} is not set")))?,
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| fail(format!("reading {}: {e}", path.display())))?,
        };
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        if value.is_empty() {
            return Err(fail("is empty".into()));
        }
        Ok(Secret(value))
    }
}

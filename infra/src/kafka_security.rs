//! `[bus.security]`: how every Kafka client of trackiq (producers, stages, `alerts`,
//! `baseline`, replays) encrypts and authenticates, as librdkafka options. Passwords come
//! from `{ env = ... }` or `{ file = ... }` only ([`crate::secret`]); the same keys given as
//! plain `options` (or `--kafka-option`) are refused, so a credential never sits in a config
//! file, a command line or a process listing.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::{Secret, SecretError, SecretSource};

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// No TLS, no SASL (the embedded broker on loopback).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS (the password crosses the network in clear with PLAIN).
    SaslPlaintext,
    /// SASL over TLS: what managed Kafka services ask for.
    SaslSsl,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// SASL mechanisms with a user name and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// A bearer token (`token`), e.g. an OIDC access token; see [`crate::kafka_oauth`].
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
}

impl Mechanism {
    fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// `[bus.security]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSecurity {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Protocol,
    /// PEM file of the CA(s) that signed the brokers' certificates. Default: the system's.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that ask for mutual TLS.
    pub certificate: Option<PathBuf>,
    /// The client certificate's private key (PEM), read like a secret.
    pub key: Option<SecretSource>,
    /// Check that a broker's certificate names the host connected to. On by default; turning
    /// it off lets a stolen certificate of any host impersonate the broker.
    pub skip_hostname_check: bool,
    /// SASL mechanism with `sasl_*` protocols: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or
    /// `OAUTHBEARER`.
    pub mechanism: Option<Mechanism>,
    /// SASL user name; with `OAUTHBEARER`, the principal of a token that is not a JWT.
    pub username: Option<String>,
    /// SASL password (PLAIN and SCRAM).
    pub password: Option<SecretSource>,
    /// Bearer token (`OAUTHBEARER`): read again at every refresh, so a rotated file is
    /// picked up; a JWT's `exp` says when.
    pub token: Option<SecretSource>,
}

/// librdkafka options that hold credentials: never accepted as plain options.
pub const SECRET_OPTIONS: &[&str] =
    &["sasl.password", "ssl.key.password", "ssl.key.pem", "ssl.keystore.password", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config"];

/// A `[bus.security]` that cannot work, or a secret that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("[bus.security] {0}")]
    Invalid(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// What a broker port says to a client that speaks plaintext Kafka without SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// It answered like a Kafka broker serving unauthenticated clients.
    Kafka,
    /// It refused a Kafka ApiVersions request (v0, which every broker answers) with a TLS
    /// alert (content type 21, version 3.x) or a closed connection without a byte, as TLS
    /// listeners do (OpenSSL-based terminators such as stunnel reset it: "wrong version number").
    Tls,
    /// It answered ApiVersions (allowed before authentication) and closed the connection on
    /// Metadata: it wants SASL first.
    Sasl,
    /// Silence, or an answer of another shape: nothing to say.
    Unknown,
}

/// Sends one Kafka request (`api_key`, version 0, no body but `body`) and reads the answer's
/// first bytes: `Ok(Some(bytes))`, `Ok(None)` on a closed or reset connection, `Err` on silence.
async fn request(stream: &mut tokio::net::TcpStream, api_key: i16, correlation: i32, body: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CLIENT_ID: &[u8] = b"trackiq";
    let mut r = Vec::with_capacity(14 + CLIENT_ID.len() + body.len());
    r.extend_from_slice(&((10 + CLIENT_ID.len() + body.len()) as i32).to_be_bytes());
    r.extend_from_slice(&api_key.to_be_bytes());
    r.extend_from_slice(&0i16.to_be_bytes());
    r.extend_from_slice(&correlation.to_be_bytes());
    r.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    r.extend_from_slice(CLIENT_ID);
    r.extend_from_slice(body);
    if stream.write_all(&r).await.is_err() {
        return Ok(None);
    }
    let mut head = [0u8; 4];
    match tokio::time::timeout(std::time::Duration::from_secs(3), stream.read_exact(&mut head)).await {
        Err(_) => Err(()),
        Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => Ok(None),
        Ok(Err(_)) => Err(()),
        Ok(Ok(_)) => {
            if head[..2] == [21, 3] {
                return Ok(Some(head.to_vec()));
            }
            // The rest of a Kafka answer, so that the next request starts clean.
            let len = i32::from_be_bytes(head).clamp(0, 1 << 20) as usize;
            let mut rest = vec![0u8; len];
            match tokio::time::timeout(std::time::Duration::from_secs(3), stream.read_exact(&mut rest)).await {
                Ok(Ok(_)) => Ok(Some(head.to_vec())),
                _ => Err(()),
            }
        }
    }
}

/// Asks the broker port at the other end of `stream` what it wants of a plaintext client.
pub async fn probe(mut stream: tokio::net::TcpStream) -> Probe {
    const API_VERSIONS: i16 = 18;
    const METADATA: i16 = 3;
    match request(&mut stream, API_VERSIONS, 1, &[]).await {
        Ok(None) => return Probe::Tls,
        Ok(Some(head)) if head[..2] == [21, 3] => return Probe::Tls,
        Ok(Some(_)) => {}
        Err(()) => return Probe::Unknown,
    }
    // Metadata v0 of no topic: a zero-length topic array.
    match request(&mut stream, METADATA, 2, &0i32.to_be_bytes()).await {
        Ok(None) => Probe::Sasl,
        Ok(Some(_)) => Probe::Kafka,
        Err(()) => Probe::Unknown,
    }
}

impl KafkaSecurity {
    /// Whether clients speak TLS to the brokers.
    pub fn tls(&self) -> bool {
        self.protocol.tls()
    }

    /// Whether clients authenticate with SASL.
    pub fn sasl(&self) -> bool {
        self.protocol.sasl()
    }

    /// The bearer token's source with SASL/OAUTHBEARER.
    pub fn oauth(&self) -> Option<crate::kafka_oauth::OAuthSource> {
        let oauth = self.protocol.sasl() && self.mechanism == Some(Mechanism::OAuthBearer);
        self.token.clone().filter(|_| oauth).map(|token| crate::kafka_oauth::OAuthSource { token, principal: self.username.clone() })
    }

    /// The librdkafka options this section stands for, secrets read now.
    pub fn options(&self) -> Result<Vec<(&'static str, String)>, SecurityError> {
        let invalid = |s: &str| SecurityError::Invalid(s.to_string());
        let mut o = vec![("security.protocol", self.protocol.as_str().to_string())];
        if self.protocol.tls() {
            if let Some(ca) = &self.ca {
                o.push(("ssl.ca.location", ca.display().to_string()));
            }
            match (&self.certificate, &self.key) {
                (Some(cert), Some(key)) => {
                    o.push(("ssl.certificate.location", cert.display().to_string()));
                    o.push(("ssl.key.pem", Secret::read("kafka", "key", key)?.expose().to_string()));
                }
                (None, None) => {}
                _ => return Err(invalid("`certificate` and `key` go together (mutual TLS)")),
            }
            o.push(("ssl.endpoint.identification.algorithm", if self.skip_hostname_check { "none" } else { "https" }.to_string()));
        } else if self.ca.is_some() || self.certificate.is_some() {
            return Err(SecurityError::Invalid(format!("`ca` and `certificate` need protocol ssl or sasl_ssl, not {}", self.protocol.as_str())));
        }
        if self.protocol.sasl() {
            let mechanism = self.mechanism.ok_or_else(|| invalid("protocol sasl_* needs a `mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"))?;
            o.push(("sasl.mechanism", mechanism.as_str().to_string()));
            if mechanism == Mechanism::OAuthBearer {
                if self.password.is_some() {
                    return Err(invalid("OAUTHBEARER takes a `token`, not a `password`"));
                }
                let oauth = self.oauth().ok_or_else(|| invalid("OAUTHBEARER needs a `token` ({ env = \"VAR\" } or { file = \"/path\" })"))?;
                // Read now so that a missing or expired token stops the command at once.
                oauth.read(chrono::Utc::now().timestamp_millis())?;
            } else {
                let username = self.username.as_deref().filter(|u| !u.is_empty()).ok_or_else(|| invalid("SASL needs a `username`"))?;
                let password = self.password.as_ref().ok_or_else(|| invalid("SASL needs a `password` ({ env = \"VAR\" } or { file = \"/path\" })"))?;
                if self.token.is_some() {
                    return Err(invalid("a `token` is for mechanism OAUTHBEARER"));
                }
                o.push(("sasl.username", username.to_string()));
                o.push(("sasl.password", Secret::read("kafka", "password", password)?.expose().to_string()));
            }
        } else if self.mechanism.is_some() || self.username.is_some() || self.password.is_some() || self.token.is_some() {
            return Err(SecurityError::Invalid(format!("a SASL `mechanism`, `username`, `password` or `token` needs protocol sasl_ssl or sasl_plaintext, not {}", self.protocol.as_str())));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_over_tls_becomes_librdkafka_options_with_the_password_read_from_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("pw");
        std::fs::write(&password, "hunter2\n").unwrap();
        let s: KafkaSecurity = toml::from_str(&format!(
            "protocol = \"sasl_ssl\"\nca = \"/etc/kafka/ca.pem\"\nmechanism = \"SCRAM-SHA-512\"\nusername = \"trackiq\"\npassword = {{ file = \"{}\" }}",
            password.display()
        ))
        .unwrap();
        let o: std::collections::BTreeMap<_, _> = s.options().unwrap().into_iter().collect();
        assert_eq!(o["security.protocol"], "sasl_ssl");
        assert_eq!(o["ssl.ca.location"], "/etc/kafka/ca.pem");
        assert_eq!(o["ssl.endpoint.identification.algorithm"], "https");
        assert_eq!((o["sasl.mechanism"].as_str(), o["sasl.username"].as_str(), o["sasl.password"].as_str()), ("SCRAM-SHA-512", "trackiq", "hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_written_password_and_half_settings_are_refused_naming_what_is_missing() {
        let e = toml::from_str::<KafkaSecurity>("protocol = \"sasl_ssl\"\npassword = \"hunter2\"").unwrap_err();
        assert!(e.message().contains("never written in the config") && !e.message().contains("hunter2"), "{e}");
        let missing = |t: &str| toml::from_str::<KafkaSecurity>(t).unwrap().options().unwrap_err().to_string();
        assert!(missing("protocol = \"sasl_ssl\"").contains("mechanism"));
        assert!(missing("protocol = \"sasl_ssl\"\nmechanism = \"PLAIN\"").contains("username"));
        assert!(missing("protocol = \"plaintext\"\nusername = \"u\"").contains("needs protocol sasl_ssl"));
        assert!(missing("protocol = \"ssl\"\ncertificate = \"/c.pem\"").contains("go together"));
        let unset = missing("protocol = \"sasl_ssl\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = { env = \"TRACKIQ_TEST_NO_SUCH_VARIABLE\" }");
        assert!(unset.contains("kafka password") && unset.contains("TRACKIQ_TEST_NO_SUCH_VARIABLE"), "{unset}");
    }
}

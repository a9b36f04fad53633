//! Cluster authentication: before any control message or gradient is trusted, the two ends
//! of a connection (a worker and its coordinator, a ring rank and its left neighbour) prove
//! to each other that they hold the run's shared secret, and agree on the run.
//!
//! The handshake, in fixed-size frames (nothing in it is read by a length the peer chose
//! beyond [`MAX_RUN_ID`]):
//! 1. acceptor → connector: [`MAGIC`], whether a secret is required, the channel, the run id,
//!    and a fresh 32-byte nonce `a`;
//! 2. connector → acceptor: its own fresh nonce `c` and HMAC-SHA256(secret, transcript ·
//!    "connector");
//! 3. acceptor → connector: one byte (refused / accepted) and, when accepted,
//!    HMAC-SHA256(secret, transcript · "acceptor").
//!
//! The transcript holds the channel, the run id and both nonces, so a proof is good for one
//! connection of one run only: a captured handshake replayed meets a new nonce `a`, a worker
//! of another run proves the wrong run id, and a proof cannot be reflected back to its
//! sender (the roles differ). Proofs are compared in constant time (`Mac::verify_slice`).
//! The connector also checks the run id before proving anything, so a worker told which run
//! it belongs to (`--run-id`) refuses a coordinator of another run.
//!
//! Without a secret (loopback only: the CLI refuses a non-loopback listener without one) the
//! acceptor says so in step 1 and neither side proves anything; a connector that holds a
//! secret refuses such a peer rather than sending it unauthenticated data.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// First bytes of every cluster connection: protocol and version.
pub const MAGIC: &[u8; 4] = b"TQC1";
/// Bytes of each side's nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of an HMAC-SHA256 proof.
const PROOF_LEN: usize = 32;
/// Longest run id accepted in a challenge (a UUID is 36).
pub const MAX_RUN_ID: usize = 128;
/// Shortest secret accepted: 128 bits, so guessing it is no shortcut.
pub const MIN_SECRET_BYTES: usize = 16;
/// A peer that has not finished its part of the handshake by then is dropped (a silent
/// connection must not hold a rendezvous or a ring slot).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a handshake is for; part of the proven transcript, so a proof made for one channel is
/// worthless on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Worker → coordinator control connection.
    Control = 1,
    /// Ring connection from a rank to its right neighbour.
    Ring = 2,
}

/// Why a handshake failed. None of these carries the secret or a proof.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthFailure {
    #[error("the peer is not a trackiq cluster endpoint (no handshake)")]
    NotTrackiq,
    #[error("the peer did not complete the handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())]
    Timeout,
    #[error("connection closed during the handshake: {0}")]
    Io(String),
    #[error("the peer requires the cluster secret (give it with --secret-env VAR or --secret-file PATH)")]
    SecretRequired,
    #[error("the peer does not authenticate (started without a secret); refusing to trust it")]
    PeerUnauthenticated,
    #[error("wrong secret, or a replayed or forged proof")]
    BadProof,
    #[error("the peer refused our proof: its secret differs")]
    Refused,
    #[error("the peer belongs to run {found}, not run {expected}")]
    OtherRun { expected: String, found: String },
    #[error("the peer is a {found:?} endpoint, not a {expected:?} one")]
    OtherChannel { expected: Channel, found: u8 },
    #[error("malformed handshake: {0}")]
    Malformed(&'static str),
}

/// The run's shared secret (read by the caller from `--secret-env` or `--secret-file`).
/// `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret(String);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(***)")
    }
}

impl ClusterSecret {
    /// A secret of at least [`MIN_SECRET_BYTES`]; the error never repeats it.
    pub fn new(secret: String) -> Result<ClusterSecret, String> {
        match secret.len() {
            n if n < MIN_SECRET_BYTES => Err(format!("the cluster secret has {n} bytes; at least {MIN_SECRET_BYTES} are required (e.g. `openssl rand -hex 32`)")),
            _ => Ok(ClusterSecret(secret)),
        }
    }

    /// The secret's value, for handing to local workers through their environment.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn proof(&self, transcript: &[u8], role: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(transcript);
        mac.update(role);
        mac
    }
}

/// The bytes both proofs cover.
fn transcript(channel: Channel, run_id: &str, nonce_a: &[u8; NONCE_LEN], nonce_c: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut t = Vec::with_capacity(8 + run_id.len() + 2 * NONCE_LEN);
    t.extend_from_slice(MAGIC);
    t.push(channel as u8);
    t.push(run_id.len() as u8);
    t.extend_from_slice(run_id.as_bytes());
    t.extend_from_slice(nonce_a);
    t.extend_from_slice(nonce_c);
    t
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).expect("the operating system's random source");
    n
}

async fn timed<T>(f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, AuthFailure> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, f).await {
        Err(_) => Err(AuthFailure::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(AuthFailure::Io("end of stream".into())),
        Ok(Err(e)) => Err(AuthFailure::Io(e.to_string())),
        Ok(Ok(v)) => Ok(v),
    }
}

/// The accepting side (the coordinator for workers, a rank for its left neighbour): offers
/// the run `run_id` and, with a secret, accepts the peer only with a valid proof.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, secret: Option<&ClusterSecret>, channel: Channel, run_id: &str) -> Result<(), AuthFailure> {
    if run_id.len() > MAX_RUN_ID {
        return Err(AuthFailure::Malformed("run id too long"));
    }
    let nonce_a = nonce();
    let mut challenge = Vec::with_capacity(8 + run_id.len() + NONCE_LEN);
    challenge.extend_from_slice(MAGIC);
    challenge.push(u8::from(secret.is_some()));
    challenge.push(channel as u8);
    challenge.push(run_id.len() as u8);
    challenge.extend_from_slice(run_id.as_bytes());
    challenge.extend_from_slice(&nonce_a);
    timed(async { stream.write_all(&challenge).await?; stream.flush().await }).await?;
    let Some(secret) = secret else { return Ok(()) };
    let mut answer = [0u8; NONCE_LEN + PROOF_LEN];
    timed(stream.read_exact(&mut answer)).await?;
    let nonce_c: [u8; NONCE_LEN] = answer[..NONCE_LEN].try_into().expect("split at NONCE_LEN");
    let t = transcript(channel, run_id, &nonce_a, &nonce_c);
    if secret.proof(&t, b"connector").verify_slice(&answer[NONCE_LEN..]).is_err() {
        let _ = timed(async { stream.write_all(&[0]).await?; stream.flush().await }).await;
        return Err(AuthFailure::BadProof);
    }
    let mut reply = vec![1u8];
    reply.extend_from_slice(&secret.proof(&t, b"acceptor").finalize().into_bytes());
    timed(async { stream.write_all(&reply).await?; stream.flush().await }).await
}

/// The connecting side (a worker, a rank joining its right neighbour): checks the channel and
/// (when given) the run, proves the secret and checks the acceptor's proof. Returns the run
/// id the acceptor offered.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, secret: Option<&ClusterSecret>, channel: Channel, expected_run: Option<&str>) -> Result<String, AuthFailure> {
    let mut head = [0u8; 7];
    timed(stream.read_exact(&mut head)).await?;
    if &head[..4] != MAGIC {
        return Err(AuthFailure::NotTrackiq);
    }
    let (secured, their_channel, run_len) = (head[4], head[5], head[6] as usize);
    if their_channel != channel as u8 {
        return Err(AuthFailure::OtherChannel { expected: channel, found: their_channel });
    }
    if run_len > MAX_RUN_ID || secured > 1 {
        return Err(AuthFailure::Malformed("challenge header out of range"));
    }
    let mut rest = vec![0u8; run_len + NONCE_LEN];
    timed(stream.read_exact(&mut rest)).await?;
    let run_id = String::from_utf8(rest[..run_len].to_vec()).map_err(|_| AuthFailure::Malformed("run id is not UTF-8"))?;
    if let Some(expected) = expected_run.filter(|e| *e != run_id) {
        return Err(AuthFailure::OtherRun { expected: expected.to_string(), found: run_id });
    }
    let secret = match (secured == 1, secret) {
        (false, None) => return Ok(run_id),
        (true, None) => return Err(AuthFailure::SecretRequired),
        (false, Some(_)) => return Err(AuthFailure::PeerUnauthenticated),
        (true, Some(s)) => s,
    };
    let nonce_a: [u8; NONCE_LEN] = rest[run_len..].try_into().expect("NONCE_LEN bytes");
    let nonce_c = nonce();
    let t = transcript(channel, &run_id, &nonce_a, &nonce_c);
    let mut answer = nonce_c.to_vec();
    answer.extend_from_slice(&secret.proof(&t, b"connector").finalize().into_bytes());
    timed(async { stream.write_all(&answer).await?; stream.flush().await }).await?;
    let mut verdict = [0u8; 1];
    timed(stream.read_exact(&mut verdict)).await?;
    if verdict[0] != 1 {
        return Err(AuthFailure::Refused);
    }
    let mut proof = [0u8; PROOF_LEN];
    timed(stream.read_exact(&mut proof)).await?;
    secret.proof(&t, b"acceptor").verify_slice(&proof).map_err(|_| AuthFailure::BadProof)?;
    Ok(run_id)
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

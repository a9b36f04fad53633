//! SASL/OAUTHBEARER with a bearer token from `{ env }` or `{ file }` (`[bus.security] token`):
//! what a mounted, rotated token (Kubernetes projected service-account tokens, a sidecar that
//! refreshes an OIDC token) gives a client. The token is read again at every refresh, so a
//! rotated file is picked up without a restart; a JWT's `exp` sets when librdkafka asks for
//! the next one (at 80 % of its lifetime) and its `sub` is the principal.
//!
//! Every Kafka client of trackiq carries a [`crate::kafka_context::BusContext`]: producers
//! and consumers are asked for tokens through it when they poll. Clients that only make blocking metadata calls (the
//! admin client, the cluster-id reader) never poll librdkafka's main queue, so
//! [`set_initial_token`] hands them the first token right after they are created.


use base64::Engine;
use rdkafka::client::{Client, ClientContext, OAuthToken};

use crate::kafka_security::SecurityError;
use crate::secret::{Secret, SecretSource};

/// How long an opaque (non-JWT) token is used before it is read again.
pub const OPAQUE_TOKEN_LIFETIME_MS: i64 = 15 * 60 * 1000;

/// Where the bearer token comes from, and the principal of an opaque token.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthSource {
    pub token: SecretSource,
    /// `[bus.security] username`: the principal when the token is not a JWT with a `sub`.
    pub principal: Option<String>,
}

/// A token read now: the value for the broker, who it names, and until when it is good
/// (`Debug` shows no value: [`Secret`] hides it).
#[derive(Debug)]
pub struct BearerToken {
    pub value: Secret,
    pub principal: String,
    /// Milliseconds since the epoch.
    pub expires_ms: i64,
}

fn where_from(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(var) => format!("environment variable {var}"),
        SecretSource::File(path) => format!("file {}", path.display()),
    }
}

impl OAuthSource {
    /// Reads the token; a JWT that has expired (or carries no usable principal) is refused
    /// with a message naming where it came from and when it expired — never its value.
    pub fn read(&self, now_ms: i64) -> Result<BearerToken, SecurityError> {
        let value = Secret::read("kafka", "token", &self.token)?;
        let invalid = |why: String| SecurityError::Invalid(format!("the OAUTHBEARER token from {} {why}", where_from(&self.token)));
        let claims = jwt_claims(value.expose());
        let (exp, sub) = match &claims {
            Some(c) => (c.get("exp").and_then(serde_json::Value::as_f64), c.get("sub").and_then(serde_json::Value::as_str).map(str::to_string)),
            None => (None, None),
        };
        let principal = match sub.or_else(|| self.principal.clone()) {
            Some(p) if !p.is_empty() => p,
            _ => return Err(invalid("has no `sub` claim (it is not a JWT, or names no subject): set `username` under [bus.security] as its principal".into())),
        };
        let expires_ms = match exp {
            Some(exp) => {
                let expires_ms = (exp * 1000.0) as i64;
                if expires_ms <= now_ms {
                    let at = chrono::DateTime::from_timestamp_millis(expires_ms).map(|t| t.to_rfc3339()).unwrap_or_else(|| exp.to_string());
                    return Err(invalid(format!("expired at {at} ({} s ago): give it a fresh token", (now_ms - expires_ms) / 1000)));
                }
                expires_ms
            }
            None if claims.is_some() => return Err(invalid("is a JWT without an `exp` claim: the broker cannot know when it ends".into())),
            None => now_ms + OPAQUE_TOKEN_LIFETIME_MS,
        };
        Ok(BearerToken { value, principal, expires_ms })
    }
}

/// The claims of a compact JWT (`header.payload.signature`, base64url), or `None` for a
/// token of another shape. The signature is the broker's to check, not the client's.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The token for librdkafka's refresh event, shared by every client context.
pub fn generate(oauth: Option<&OAuthSource>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let oauth = oauth.ok_or("SASL/OAUTHBEARER needs `token` under [bus.security]")?;
    let t = oauth.read(now_ms())?;
    Ok(OAuthToken { token: t.value.expose().to_string(), principal_name: t.principal, lifetime_ms: t.expires_ms })
}

/// Gives a client that never polls its main queue (admin, cluster id) its first token.
pub fn set_initial_token<C: ClientContext>(client: &Client<C>, oauth: Option<&OAuthSource>) -> Result<(), SecurityError> {
    let Some(oauth) = oauth else { return Ok(()) };
    let t = oauth.read(now_ms())?;
    let nul = |what: &str| SecurityError::Invalid(format!("the OAUTHBEARER {what} holds a NUL byte"));
    let token = std::ffi::CString::new(t.value.expose()).map_err(|_| nul("token"))?;
    let principal = std::ffi::CString::new(t.principal).map_err(|_| nul("principal"))?;
    let mut err = [0 as std::ffi::c_char; 512];
    // SAFETY: the client pointer is live for `client`'s lifetime; the strings outlive the call
    // (librdkafka copies them); no extensions (null, 0); `err` is a writable buffer of its size.
    let code = unsafe {
        rdkafka::bindings::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            token.as_ptr(),
            t.expires_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if code != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka wrote a NUL-terminated message into `err`.
        let why = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
        return Err(SecurityError::Invalid(format!("librdkafka refused the OAUTHBEARER token: {why}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_context::BusContext;

    fn jwt(claims: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", b(r#"{"alg":"RS256","typ":"JWT"}"#), b(claims), b("signature"))
    }

    fn source(dir: &std::path::Path, token: &str, principal: Option<&str>) -> OAuthSource {
        let path = dir.join("token");
        std::fs::write(&path, format!("{token}\n")).unwrap();
        OAuthSource { token: SecretSource::File(path), principal: principal.map(str::to_string) }
    }

    #[test]
    fn a_jwt_gives_its_subject_and_expiry_and_an_expired_one_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_780_000_000_000;
        let good = source(dir.path(), &jwt(r#"{"sub":"svc-trackiq","exp":1780000600}"#), None).read(now).unwrap();
        assert_eq!((good.principal.as_str(), good.expires_ms), ("svc-trackiq", 1_780_000_600_000));

        let token = jwt(r#"{"sub":"svc-trackiq","exp":1779999000}"#);
        let e = source(dir.path(), &token, None).read(now).unwrap_err().to_string();
        assert!(e.contains("expired at 2026-05-28T") && e.contains("(1000 s ago)") && e.contains("file ") && !e.contains(&token), "{e}");

        let e = source(dir.path(), &jwt(r#"{"sub":"svc"}"#), None).read(now).unwrap_err().to_string();
        assert!(e.contains("without an `exp`"), "{e}");
    }

    #[test]
    fn an_opaque_token_needs_a_username_and_is_read_again_after_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let e = source(dir.path(), "opaque-abc", None).read(0).unwrap_err().to_string();
        assert!(e.contains("set `username`") && !e.contains("opaque-abc"), "{e}");
        let t = source(dir.path(), "opaque-abc", Some("svc")).read(0).unwrap();
        assert_eq!((t.principal.as_str(), t.expires_ms, t.value.expose()), ("svc", OPAQUE_TOKEN_LIFETIME_MS, "opaque-abc"));
    }

    #[test]
    fn the_token_is_read_again_at_each_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let s = source(dir.path(), &jwt(r#"{"sub":"a","exp":4000000000}"#), None);
        let context = BusContext { oauth: Some(std::sync::Arc::new(s.clone())), ..Default::default() };
        assert_eq!(context.generate_oauth_token(None).unwrap().principal_name, "a");
        std::fs::write(dir.path().join("token"), jwt(r#"{"sub":"b","exp":4000000000}"#)).unwrap();
        assert_eq!(context.generate_oauth_token(None).unwrap().principal_name, "b");
        assert!(BusContext::default().generate_oauth_token(None).is_err());
    }
}

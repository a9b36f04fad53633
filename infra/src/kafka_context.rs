//! [`BusContext`], the librdkafka client context of every Kafka client trackiq makes: it
//! answers OAUTHBEARER token requests ([`crate::kafka_oauth`]) and remembers why a broker
//! refused the client (TLS or SASL), so that a command can fail at once with the cause
//! instead of at librdkafka's message timeout.

use std::sync::{Arc, Mutex};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::error::KafkaError;

use crate::kafka_oauth::OAuthSource;

/// See the module documentation.
#[derive(Clone, Default)]
pub struct BusContext {
    /// The bearer-token source with SASL/OAUTHBEARER.
    pub oauth: Option<Arc<OAuthSource>>,
    /// The first TLS or SASL refusal librdkafka reported, as it worded it.
    pub refused: Arc<Mutex<Option<String>>>,
}

impl BusContext {
    /// Why a broker refused this client, with what to check first.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().ok()?.clone()
    }
}

/// The cause a user can act on, for a librdkafka message about a refused connection.
pub fn refusal_cause(reason: &str) -> Option<&'static str> {
    let r = reason.to_ascii_lowercase();
    Some(if r.contains("certificate verify failed") && (r.contains("hostname") || r.contains("ip address mismatch")) {
        "the broker's certificate does not name the host connected to (hostname mismatch)"
    } else if r.contains("certificate verify failed") {
        "the broker's certificate is not signed by a CA this client trusts (set `ca` under [bus.security])"
    } else if r.contains("ssl handshake failed") || r.contains("ssl transport error") {
        "the TLS handshake failed (is the port a TLS listener, and `ca` right?)"
    } else if r.contains("unsupported sasl mechanism") {
        "the broker does not offer this SASL `mechanism`"
    } else if r.contains("sasl") && (r.contains("authentication failed") || r.contains("invalid-proof") || r.contains("authentication error")) {
        "the broker refused the SASL credentials (wrong username or password, or a token it does not accept)"
    } else {
        return None;
    })
}

impl ClientContext for BusContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        crate::kafka_oauth::generate(self.oauth.as_deref())
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("librdkafka: {error}: {reason}");
        if let Some(cause) = refusal_cause(reason)
            && let Ok(mut slot) = self.refused.lock()
            && slot.is_none()
        {
            *slot = Some(format!("{cause}; librdkafka: {reason}"));
        }
    }
}

impl rdkafka::consumer::ConsumerContext for BusContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_refusals_are_named_by_their_cause() {
        let cause = |r| refusal_cause(r).unwrap();
        assert!(cause("ssl://b:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured").contains("not signed by a CA"));
        assert!(cause("SSL handshake failed: certificate verify failed (Hostname mismatch)").contains("hostname mismatch"));
        assert!(cause("SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof").contains("credentials"));
        assert!(cause("SASL authentication error: SASL Authentication failed. (after 0ms in state AUTH_REQ)").contains("credentials"));
        assert!(refusal_cause("1/1 brokers are down").is_none());
        let context = BusContext::default();
        context.error(KafkaError::Global(rdkafka::types::RDKafkaErrorCode::Authentication), "SASL authentication error: SASL Authentication failed.");
        context.error(KafkaError::Global(rdkafka::types::RDKafkaErrorCode::AllBrokersDown), "SSL handshake failed");
        assert!(context.refusal().unwrap().ends_with("librdkafka: SASL authentication error: SASL Authentication failed."));
    }
}

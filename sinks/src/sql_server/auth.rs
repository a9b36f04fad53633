//! Who may connect: SCRAM-SHA-256 against the configured user's password (the password never
//! crosses the network, and a server that does not know it cannot fake the proof), or no
//! password on loopback; and the TLS acceptor when a certificate is configured.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::SASLAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use datafusion_postgres::pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use futures::Sink;

use super::SqlServerConfig;
use crate::error::SinkError;
use crate::notify::Secret;

/// SCRAM's iteration count: PostgreSQL's own default.
const SCRAM_ITERATIONS: usize = 4096;

/// The one user and, where set, the password.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: Option<Secret>,
}

impl Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("user", &self.user).field("password", &self.password.as_ref().map(|_| "***")).finish()
    }
}

/// The salted password SCRAM checks a client's proof against. Another user name gets a
/// random one: its login fails exactly as a wrong password does, so the answer does not
/// tell which user names exist.
#[async_trait]
impl AuthSource for Login {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // uuid's v4 is 122 bits from the OS's random source.
        let salt = *uuid::Uuid::new_v4().as_bytes();
        let password = match (&self.password, login.user()) {
            (Some(p), Some(user)) if user == self.user => p.expose().to_string(),
            _ => format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
        };
        Ok(Password::new(Some(salt.to_vec()), gen_salted_password(&password, &salt, SCRAM_ITERATIONS)))
    }
}

/// Loopback without a password: clients are let in as the user they name.
pub struct Trust;

impl NoopStartupHandler for Trust {}

/// A connection's start-up: SCRAM when a password is set, trust otherwise.
pub enum Startup {
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
    Trust(Trust),
}

impl Startup {
    pub fn new(login: Login) -> Startup {
        match login.password {
            Some(_) => {
                let mut scram = ScramAuth::new(Arc::new(login));
                scram.set_iterations(SCRAM_ITERATIONS);
                Startup::Scram(Box::new(SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default())).with_scram(scram)))
            }
            None => Startup::Trust(Trust),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Scram(h) => h.on_startup(client, message).await,
            Startup::Trust(h) => h.on_startup(client, message).await,
        }
    }
}

/// The TLS acceptor of `tls_cert` and `tls_key`; none without them; an error naming the file
/// that cannot be used.
pub fn tls_acceptor(config: &SqlServerConfig) -> Result<Option<TlsAcceptor>, SinkError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => return Err(SinkError::SqlServer("TLS needs both [sql_server] tls_cert and tls_key".into())),
    };
    let fail = |what: &std::path::Path, e: &dyn std::fmt::Display| SinkError::SqlServer(format!("[sql_server] {}: {e}", what.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).map_err(|e| fail(cert, &e))?.collect::<Result<_, _>>().map_err(|e| fail(cert, &e))?;
    if chain.is_empty() {
        return Err(fail(cert, &"no PEM certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| SinkError::SqlServer(format!("[sql_server] TLS set-up: {e}")))?;
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}

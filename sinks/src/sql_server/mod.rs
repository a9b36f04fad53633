//! The history over the PostgreSQL wire protocol, for the tools analysts already have:
//! `psql`, psycopg and pandas, DBeaver, Grafana's PostgreSQL data source. Served by
//! `trackiq up` and `trackiq ui` beside the dashboard, and alone by `trackiq serve-sql`.
//!
//! The protocol, PostgreSQL's catalog (`pg_catalog`, `information_schema`, the functions
//! clients call on connect) and the Arrow → PostgreSQL type mapping come from
//! `datafusion-postgres`; this module adds what a shared history needs:
//! - read-only: queries, `EXPLAIN`, `SET`/`SHOW`, transactions and cursors; anything else
//!   (DDL, DML, `COPY`, `CREATE EXTERNAL TABLE`) is refused by name before it is planned;
//! - a time limit and a row cap per statement, enforced by the server whatever the client
//!   `SET`s;
//! - one DataFusion session per connection (a client's `SET` changes only its own session);
//! - SCRAM-SHA-256 password authentication, required on any address but loopback, and TLS
//!   when a certificate is configured;
//! - `information_schema.columns` with PostgreSQL's type names (`double precision`,
//!   `udt_name` `float8`), which clients type columns by.
//!
//! # Layout
//! - [`guard`] — the read-only check and the limits around each statement
//! - [`auth`] — the password and TLS set-up
//! - [`settings`] — `current_setting()`, which clients read on connect
//! - [`pg_types`] — PostgreSQL's type names in `information_schema.columns`
//! - this file — settings, and the accept loop ([`serve`])

pub mod auth;
pub mod guard;
pub mod pg_types;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};
use trackiq_infra::{DataStore, Shutdown};

use crate::error::SinkError;
use crate::notify::{Secret, SecretSource};

/// The PostgreSQL endpoint's settings (`[sql_server]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlServerConfig {
    /// Serve the endpoint from `trackiq up` and `trackiq ui` (`trackiq serve-sql` always does).
    pub enabled: bool,
    /// Address to serve on. Loopback needs no password; any other address requires `password`.
    pub listen: String,
    /// The one user name clients log in with (`psql -U trackiq`).
    pub user: String,
    /// The user's password (`{ env = "VAR" }` or `{ file = "/path" }`), checked with
    /// SCRAM-SHA-256: the password never crosses the network. Without it, loopback clients
    /// are let in without one.
    pub password: Option<SecretSource>,
    /// A PEM certificate chain: with `tls_key`, clients may (and with `sslmode=require`,
    /// do) encrypt the connection.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Longest a statement may run, from parsing to its last row.
    pub query_timeout_secs: u64,
    /// Most rows a statement may return; a larger answer is an error naming this setting
    /// (never a silently shortened one).
    pub max_rows: usize,
    /// Most clients connected at once; one more is refused with a clear error.
    pub max_connections: usize,
}

impl Default for SqlServerConfig {
    fn default() -> Self {
        SqlServerConfig {
            enabled: true,
            listen: "127.0.0.1:5433".into(),
            user: "trackiq".into(),
            password: None,
            tls_cert: None,
            tls_key: None,
            query_timeout_secs: 60,
            max_rows: 1_000_000,
            max_connections: 32,
        }
    }
}

impl SqlServerConfig {
    /// Reads the password; refuses a non-loopback `addr` without one (before anything starts).
    pub fn check(&self, addr: SocketAddr) -> Result<Option<Secret>, SinkError> {
        let password = self.password.as_ref().map(|p| Secret::read("sql_server", "password", p)).transpose()?;
        if !addr.ip().is_loopback() && password.is_none() {
            return Err(SinkError::SqlServer(format!(
                "{addr} is not a loopback address: set [sql_server] password = {{ env = \"VAR\" }} so only people with the password can read the history"
            )));
        }
        Ok(password)
    }
}

/// What a connection needs: the session every connection's own session starts from, the
/// limits, and the credentials.
pub struct SqlServer {
    base: SessionState,
    limits: guard::Limits,
    user: String,
    password: Option<Secret>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
}

impl SqlServer {
    /// Checks the settings for `addr` (a non-loopback address without a password is refused),
    /// reads the password and TLS files, and registers the history's tables with
    /// PostgreSQL's catalog.
    pub async fn new(store: &DataStore, config: &SqlServerConfig, addr: SocketAddr) -> Result<SqlServer, SinkError> {
        let password = config.check(addr)?;
        let tls = auth::tls_acceptor(config)?;
        let ctx = trackiq_infra::tables::session(store).await?;
        datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog(&ctx, "datafusion", datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider)
            .map_err(|e| SinkError::SqlServer(format!("setting up PostgreSQL's catalog: {e}")))?;
        ctx.register_udf(settings::current_setting());
        let limits = guard::Limits { timeout: Duration::from_secs(config.query_timeout_secs.max(1)), max_rows: config.max_rows.max(1) };
        Ok(SqlServer { base: ctx.state(), limits, user: config.user.clone(), password, tls, max_connections: config.max_connections.max(1) })
    }

    /// Whether clients must present the password.
    pub fn requires_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether TLS is offered.
    pub fn offers_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A connection's handlers over its own session.
    fn connection(&self) -> guard::Connection {
        let ctx = Arc::new(SessionContext::new_with_state(self.base.clone()));
        guard::Connection::new(ctx, self.limits, auth::Login { user: self.user.clone(), password: self.password.clone() })
    }
}

/// Serves PostgreSQL clients on `listener` until `shutdown`; connections in progress end
/// with the process.
pub async fn serve(server: SqlServer, listener: TcpListener, mut shutdown: Shutdown) -> Result<(), SinkError> {
    let server = Arc::new(server);
    let slots = Arc::new(Semaphore::new(server.max_connections));
    let addr = listener.local_addr().map_err(|e| SinkError::SqlServer(format!("reading the bound address: {e}")))?;
    info!(%addr, password = server.requires_password(), tls = server.offers_tls(), "PostgreSQL endpoint serving the history");
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accepting a PostgreSQL client failed");
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%peer, max = server.max_connections, "PostgreSQL client refused: [sql_server] max_connections reached");
            tokio::spawn(guard::refuse_busy(socket, server.max_connections));
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let handlers = Arc::new(server.connection());
            if let Err(e) = datafusion_postgres::pgwire::tokio::process_socket(socket, server.tls.clone(), handlers).await {
                warn!(%peer, error = %e, "PostgreSQL connection ended with an error");
            }
            drop(slot);
        });
    }
}

//! The web dashboard over the history (issue 13, first part): overview, runs with filters and
//! paging, each run's report, and a read-only SQL console with CSV download. Served by
//! `trackiq ui` (and later `trackiq up`); pages are server-rendered tera templates (every
//! user string escaped) with no script and nothing from a CDN.
//!
//! Security: loopback by default; any other address needs a token (compared in constant
//! time) given as `Authorization: Bearer`, or once as `?token=` which sets a cookie. Every
//! answer carries a Content-Security-Policy that forbids scripts from anywhere but this
//! server and inline scripts from data.
//!
//! # Layout
//! - [`auth`] — token check and security headers
//! - [`pages`] — the pages and their queries

pub mod auth;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;
use trackiq_infra::{DataStore, Shutdown};

use crate::error::SinkError;
use crate::notify::{Secret, SecretSource};

/// Dashboard settings (`[dashboard]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Address to serve on. Loopback needs no token; any other address requires `token`.
    pub listen: String,
    /// The access token: `{ env = "VAR" }` or `{ file = "/path" }`.
    pub token: Option<SecretSource>,
    /// Longest a console query may run.
    pub query_timeout_secs: u64,
    /// Most rows a console query returns (CSV included).
    pub max_rows: usize,
    /// Runs per page of the runs list.
    pub page_size: usize,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig { listen: "127.0.0.1:8080".into(), token: None, query_timeout_secs: 30, max_rows: 10_000, page_size: 50 }
    }
}

/// The pipeline's health as table rows (stage, up, records in, out, errors, dead letters,
/// lag), when the dashboard runs inside `trackiq up`.
pub type HealthFn = Arc<dyn Fn() -> Vec<Vec<String>> + Send + Sync>;

/// Column names of [`HealthFn`]'s rows.
pub const HEALTH_COLUMNS: [&str; 7] = ["stage", "up", "records in", "records out", "errors", "dead letters", "lag"];

/// What the pages need.
pub struct Dashboard {
    pub store: DataStore,
    pub config: DashboardConfig,
    pub token: Option<Secret>,
    /// Set by `trackiq up`; `trackiq ui` has no pipeline.
    pub health: Option<HealthFn>,
}

impl Dashboard {
    /// Checks the settings for `addr`: a non-loopback address without a token is refused.
    pub fn new(store: DataStore, config: DashboardConfig, addr: SocketAddr) -> Result<Dashboard, SinkError> {
        let token = config.token.as_ref().map(|t| Secret::read("dashboard", "token", t)).transpose()?;
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(SinkError::Dashboard(format!(
                "{addr} is not a loopback address: set [dashboard] token = {{ env = \"VAR\" }} (or `--token-env VAR`) so only people with the token can read the history"
            )));
        }
        Ok(Dashboard { store, config, token, health: None })
    }

    fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.config.query_timeout_secs)
    }
}

/// Serves the dashboard on `listener` until `shutdown`.
pub async fn serve(d: Dashboard, listener: tokio::net::TcpListener, mut shutdown: Shutdown) -> Result<(), SinkError> {
    let addr = listener.local_addr().map_err(|e| SinkError::Dashboard(e.to_string()))?;
    let app = pages::router(Arc::new(d));
    info!("dashboard at http://{addr}/");
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await.map_err(|e| SinkError::Dashboard(format!("serving {addr}: {e}")))
}

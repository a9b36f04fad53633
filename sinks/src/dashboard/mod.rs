//! The web dashboard over the history: overview, runs with filters and paging, each run's
//! report in tabs with its exports, a series' history with its baseline (and a form to pin
//! one), a comparison of any two runs or run groups, and a read-only SQL console with CSV
//! download. Served by `trackiq up` (live: new runs appear as their verdicts stream in,
//! over server-sent events fed from the verdicts and summaries topics) and by `trackiq ui`
//! over a history alone.
//!
//! Pages are rendered on the server with tera (every user string escaped) and charts are
//! SVG drawn by the same code as the HTML reports: a page is readable without script, looks
//! like the reports, and needs nothing from a CDN. Scripts served by the binary add tabs, the
//! live updates, uploads, and interactive charts (uPlot, vendored under `assets/vendor`) that
//! replace the SVG where script runs.
//!
//! Security: loopback by default; any other address needs a token (compared in constant
//! time) given as `Authorization: Bearer`, or once as `?token=` which sets a cookie. Every
//! answer carries a Content-Security-Policy that forbids scripts from anywhere but this
//! server and inline scripts from data.
//!
//! # Layout
//! - [`auth`] — token check, same-origin check of forms, security headers
//! - [`pages`] — the router, overview, runs list and SQL console
//! - [`run`] — a run's page and exports; [`profile`] — its flame graphs and changed functions; [`series`] — a series' history and pins;
//!   [`compare`] — two runs or groups side by side
//! - [`live`] — server-sent events; `assets/dashboard.js` — the script
//! - [`charts`] — the interactive charts' data; `assets/charts.js` — their script
//! - [`release`] — a release candidate's review, approval and export
//! - [`upload`] — result files dropped on the runs page, through the run API's publisher
//! - [`launch`] — configured benchmarks a person may start, their parameters checked;
//!   [`launch_runner`] — their processes and output; [`launch_pages`] — the forms and progress
//! - [`ingest`] — the HTTP ingest API (`POST /api/v1/runs`, its own token) and its OpenAPI
//!   document (`assets/openapi.json`)

pub mod auth;
pub mod charts;
pub mod compare;
pub mod ingest;
pub mod launch;
pub mod launch_pages;
pub mod launch_runner;
#[cfg(test)]
mod ingest_tests;
pub mod live;
pub mod pages;
pub mod profile;
pub mod release;
pub mod run;
pub mod series;
pub mod upload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;
use trackiq_infra::{DataStore, Shutdown};
use trackiq_schemas::Direction;

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
    /// Benchmarks the dashboard of `trackiq up` may start (`[[dashboard.launch]]`); none by
    /// default. Each is a `trackiq bench` (or `cluster run`) template with the parameters a
    /// person may set and their allowed values.
    pub launch: Vec<launch::LaunchEntry>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: "127.0.0.1:8080".into(),
            token: None,
            query_timeout_secs: 30,
            max_rows: 10_000,
            page_size: 50,
            launch: Vec::new(),
        }
    }
}

/// The pipeline's health as table rows (stage, up, records in, out, errors, dead letters,
/// lag), when the dashboard runs inside `trackiq up`.
pub type HealthFn = Arc<dyn Fn() -> Vec<Vec<String>> + Send + Sync>;

/// Column names of [`HealthFn`]'s rows.
pub const HEALTH_COLUMNS: [&str; 7] = [
    "stage",
    "up",
    "records in",
    "records out",
    "errors",
    "dead letters",
    "lag",
];

/// A request to pin a series' baseline to some of its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PinRequest {
    pub series_id: String,
    pub run_ids: Vec<String>,
    pub reason: String,
}

/// Publishes a pin (as `trackiq baseline set` does); the answer says what was pinned.
pub type PinFn = Arc<dyn Fn(PinRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// Which way is better for a metric (the verdict settings' overrides over the catalog).
pub type DirectionFn = Arc<dyn Fn(&str) -> Direction + Send + Sync>;

/// What the pages need.
pub struct Dashboard {
    pub store: DataStore,
    pub config: DashboardConfig,
    pub token: Option<Secret>,
    /// Set by `trackiq up`; `trackiq ui` has no pipeline.
    pub health: Option<HealthFn>,
    /// New summaries and verdicts as they happen.
    pub live: live::LiveFeed,
    /// Whether something feeds `live` now (`trackiq up`'s follower of the pipeline's topics):
    /// pages say "live" only then, and `/events` refuses without it.
    pub fed: live::Fed,
    /// Set where the dashboard can publish to the pipeline.
    pub pin: Option<PinFn>,
    pub direction_of: DirectionFn,
    /// The HTTP ingest API, set by `trackiq up` (`trackiq ui` answers its posts 404).
    pub ingest: Option<ingest::Ingest>,
    /// The configured launches, set by `trackiq up` where `[[dashboard.launch]]` has entries.
    pub launcher: Option<Arc<launch_runner::Launcher>>,
    /// Publishes release decisions, set by `trackiq up`.
    pub decide: Option<release::DecideFn>,
}

impl Dashboard {
    /// Checks the settings for `addr`: a non-loopback address without a token is refused.
    pub fn new(
        store: DataStore,
        config: DashboardConfig,
        addr: SocketAddr,
    ) -> Result<Dashboard, SinkError> {
        let token = config
            .token
            .as_ref()
            .map(|t| Secret::read("dashboard", "token", t))
            .transpose()?;
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(SinkError::Dashboard(format!(
                "{addr} is not a loopback address: set [dashboard] token = {{ env = \"VAR\" }} (or `--token-env VAR`) so only people with the token can read the history"
            )));
        }
        let catalog: DirectionFn = Arc::new(|m: &str| trackiq_schemas::catalog::lookup(m).map_or(Direction::LowerIsBetter, |d| d.direction));
        Ok(Dashboard { store, config, token, health: None, live: live::feed(), fed: live::Fed::default(), pin: None, direction_of: catalog, ingest: None, launcher: None, decide: None })
    }

    pub(crate) fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.config.query_timeout_secs)
    }
}

/// Serves the dashboard on `listener` until `shutdown`.
pub async fn serve(
    d: Dashboard,
    listener: tokio::net::TcpListener,
    mut shutdown: Shutdown,
) -> Result<(), SinkError> {
    let addr = listener
        .local_addr()
        .map_err(|e| SinkError::Dashboard(e.to_string()))?;
    let app = pages::router(Arc::new(d));
    info!("dashboard at http://{addr}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
        .map_err(|e| SinkError::Dashboard(format!("serving {addr}: {e}")))
}

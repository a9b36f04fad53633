//! `trackiq ui`: the web dashboard over a history, read-only, without running the pipeline.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use trackiq::config::Config;
use trackiq_infra::{DataStore, Shutdown};
use trackiq_sinks::dashboard::{Dashboard, serve};
use trackiq_sinks::notify::SecretSource;

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to serve on (default `[dashboard] listen`, 127.0.0.1:8080). A non-loopback
    /// address needs a token.
    #[arg(long)]
    dashboard_listen: Option<String>,
    /// Read the access token from this environment variable (overrides `[dashboard] token`).
    #[arg(long)]
    token_env: Option<String>,
}

pub async fn run(mut config: Config, a: UiArgs) -> anyhow::Result<ExitCode> {
    if let Some(l) = a.dashboard_listen {
        config.dashboard.listen = l;
    }
    if let Some(v) = a.token_env {
        config.dashboard.token = Some(SecretSource::Env(v));
    }
    let addr: SocketAddr = config.dashboard.listen.parse().with_context(|| format!("`{}` is not host:port", config.dashboard.listen))?;
    let store = DataStore::open(&config.data)?;
    let dashboard = Dashboard::new(store.clone(), config.dashboard.clone(), addr)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let (trigger, shutdown) = Shutdown::new();
    let server = tokio::spawn(serve(dashboard, listener, shutdown));
    let sql = if config.sql_server.enabled { Some(super::serve_sql::start(&config, &store).await?) } else { None };
    let sql_line = sql.as_ref().map(|s| format!(" · SQL postgresql://{}@{}/trackiq", config.sql_server.user, s.addr)).unwrap_or_default();
    println!("trackiq ui at http://{bound}/{sql_line} over {store} · Ctrl-C to stop");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    trigger.trigger();
    if let Some(s) = sql {
        s.stop().await;
    }
    server.await??;
    Ok(ExitCode::SUCCESS)
}

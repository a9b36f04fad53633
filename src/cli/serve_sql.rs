//! `trackiq serve-sql`: the history over the PostgreSQL wire protocol, alone; and the same
//! endpoint started beside the dashboard by `trackiq up` and `trackiq ui`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::task::JoinHandle;
use trackiq::config::Config;
use trackiq_infra::{DataStore, Shutdown, ShutdownTrigger};
use trackiq_sinks::notify::SecretSource;
use trackiq_sinks::sql_server::{SqlServer, serve};

#[derive(Debug, Args)]
pub struct ServeSqlArgs {
    /// Address to serve on (default `[sql_server] listen`, 127.0.0.1:5433). A non-loopback
    /// address needs a password.
    #[arg(long)]
    sql_listen: Option<String>,
    /// Read the password from this environment variable (overrides `[sql_server] password`).
    #[arg(long)]
    password_env: Option<String>,
}

/// A running endpoint: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = self.task.await;
    }

    /// `psql` command line that reaches it.
    pub fn psql_hint(&self, config: &Config) -> String {
        format!("psql -h {} -p {} -U {} trackiq", self.addr.ip(), self.addr.port(), config.sql_server.user)
    }
}

/// Checks the settings (a non-loopback address without a password is refused), binds and
/// serves; the error names the setting to change.
pub async fn start(config: &Config, store: &DataStore) -> anyhow::Result<Running> {
    let listen = &config.sql_server.listen;
    let addr: SocketAddr = listen.parse().with_context(|| format!("[sql_server] listen `{listen}` is not host:port"))?;
    let server = SqlServer::new(store, &config.sql_server, addr).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the SQL endpoint to {addr} (set [sql_server] listen, or enabled = false)"))?;
    let addr = listener.local_addr()?;
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(async move {
        if let Err(e) = serve(server, listener, shutdown).await {
            eprintln!("the SQL endpoint stopped: {e}");
        }
    });
    Ok(Running { addr, trigger, task })
}

pub async fn run(mut config: Config, a: ServeSqlArgs) -> anyhow::Result<ExitCode> {
    if let Some(l) = a.sql_listen {
        config.sql_server.listen = l;
    }
    if let Some(v) = a.password_env {
        config.sql_server.password = Some(SecretSource::Env(v));
    }
    let store = DataStore::open(&config.data)?;
    let running = start(&config, &store).await?;
    println!("trackiq serve-sql at postgresql://{}@{}/trackiq over {store} (read-only) · try: {} · Ctrl-C to stop", config.sql_server.user, running.addr, running.psql_hint(&config));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

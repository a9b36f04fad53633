//! The embedded Kafka-API broker: tansu's Kafka API services and SQLite storage engine, in
//! this process, with a Fetch that answers the moment records are appended and costs nothing
//! while none are (see [`fetch`]).
//!
//! # Layout
//! - [`appends`] — high watermarks and the append signal, fed by Produce
//! - [`fetch`] — the waiting Fetch
//! - [`records`] — records read straight from the database (readers behind the tail)
//! - [`serve`] — the route table and accept loop
//!
//! Facts this relies on (measured, see `../shared/notes/embedded-broker.md`): the SQLite
//! engine keeps messages and committed offsets across restarts; the memory engine loses
//! messages and is never used. There is no shutdown call: stopping aborts the serving task,
//! after the caller has dropped its Kafka clients.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::error::InfraError;

mod appends;
mod fetch;
mod records;
mod serve;
pub mod users;
#[cfg(test)]
mod tests;

pub use appends::{Appends, Marks};
pub use records::{LogReader, LogRecords, StoredRecord};

/// The embedded broker's log, for readers in this process (see
/// [`crate::runtime::log_source`]): its storage, what the broker learns of appends, and the
/// consumer groups read in-process (no Kafka client may join those).
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    pub storage: tansu_storage::StorageContainer,
    pub appends: Appends,
    /// The database, read directly by readers behind the tail.
    pub records: LogRecords,
    pub(crate) claimed: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl EmbeddedLog {
    /// Reads `group`'s partitions in this process from now on: a Kafka client that asks to
    /// join the group is refused. False when the group is read in-process already.
    pub fn claim(&self, group: &str) -> bool {
        self.claimed.lock().expect("claimed groups").insert(group.to_string())
    }

    /// `group` is no longer read in-process.
    pub fn release(&self, group: &str) {
        self.claimed.lock().expect("claimed groups").remove(group);
    }

    /// Whether `group` is read in-process.
    pub fn claimed(&self, group: &str) -> bool {
        self.claimed.lock().expect("claimed groups").contains(group)
    }
}

/// How the embedded broker meets its clients, beyond its address.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// The `host:port` clients are told to connect to instead of the listen address: a TLS
    /// terminator in front of the broker, which then speaks to clients only through it.
    pub advertise: Option<String>,
    /// SASL users ([`users`]); none: every client is served without authentication.
    pub users: Vec<(String, crate::secret::Secret)>,
}

/// A running embedded broker. Dropping it stops the broker.
///
/// The broker runs on its own thread and tokio runtime: Kafka clients block their thread
/// while they close (leaving the group, committing), and they must never be able to starve
/// the broker they are waiting for.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    log: EmbeddedLog,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0 picks a free port), storing its log in
    /// `<data_dir>/tansu.db`, and waits until it accepts connections.
    pub async fn start(addr: SocketAddr, data_dir: &Path) -> Result<Self, InfraError> {
        Self::start_with(addr, &BrokerOptions::default(), data_dir).await
    }

    /// [`EmbeddedBroker::start`] with [`BrokerOptions`]: an advertised address, SASL users.
    pub async fn start_with(addr: SocketAddr, options: &BrokerOptions, data_dir: &Path) -> Result<Self, InfraError> {
        let advertise = options.advertise.as_deref();
        let users = options.users.clone();
        let fail = |reason: String| InfraError::BrokerStart { addr: addr.to_string(), reason };
        // Beyond loopback every host could read and write every topic: only with SASL users.
        if !addr.ip().is_loopback() && users.is_empty() {
            return Err(fail(
                "this address is reachable from other hosts, and the embedded broker has no SASL users: add [[bus.users]] (name, password = { env = \"VAR\" }) with [bus.security] for the clients, or keep it on 127.0.0.1".into(),
            ));
        }
        // Port 0: a free port, picked again (up to 5 times) when another process starts
        // listening on it between the pick and this check (parallel tests do).
        let mut tries = if addr.port() == 0 { 5 } else { 1 };
        let addr = loop {
            let candidate = if addr.port() == 0 { free_port(addr.ip()).map_err(|e| fail(e.to_string()))? } else { addr };
            if tokio::net::TcpStream::connect(candidate).await.is_err() {
                break candidate;
            }
            tries -= 1;
            if tries == 0 {
                return Err(fail(format!("{candidate} is already in use; pass another --broker-listen address or --brokers to use that broker")));
            }
        };
        std::fs::create_dir_all(data_dir).map_err(|e| fail(format!("{}: {e}", data_dir.display())))?;
        let abs = std::path::absolute(data_dir).map_err(|e| fail(e.to_string()))?;
        let cluster_id = cluster_id(&abs).map_err(|e| fail(format!("cluster id in {}: {e}", abs.display())))?;
        // tansu strips the leading `/` of the path: an absolute path needs four slashes.
        let database = abs.join("tansu.db");
        let storage = url::Url::parse(&format!("sqlite:///{}", database.display())).map_err(|e| fail(e.to_string()))?;
        let listener = url::Url::parse(&format!("tcp://{addr}")).map_err(|e| fail(e.to_string()))?;
        let advertised = match advertise.filter(|a| !a.trim().is_empty()) {
            Some(a) => url::Url::parse(&format!("tcp://{}", a.trim())).map_err(|e| fail(format!("advertised address `{a}`: {e}")))?,
            None => listener.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<EmbeddedLog, String>>();
        let thread = std::thread::Builder::new()
            .name("trackiq-broker".into())
            .spawn(move || serve_on_own_runtime((listener, advertised), (storage, database), cluster_id, users, ready_tx, stop_rx))
            .map_err(|e| fail(e.to_string()))?;
        let log = match ready_rx.await {
            Ok(Ok(log)) => log,
            Ok(Err(reason)) => return Err(fail(reason)),
            Err(_) => return Err(fail("broker thread ended during start-up".into())),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if thread.is_finished() || Instant::now() > deadline {
                let _ = stop_tx.send(());
                return Err(fail("did not accept connections".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        info!(%addr, data = %abs.display(), "embedded Kafka-API broker ready");
        Ok(EmbeddedBroker { addr, log, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The log, for readers in this process.
    pub fn log(&self) -> &EmbeddedLog {
        &self.log
    }

    /// Stops the broker and waits (up to 5 s) for its thread. Drop Kafka clients first.
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }

    fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            debug!(addr = %self.addr, "stopping embedded broker");
            let _ = tx.send(());
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Cluster id of every embedded broker before ids were stored per database.
pub const LEGACY_CLUSTER_ID: &str = "trackiq";
const CLUSTER_ID_FILE: &str = "cluster-id";

/// The cluster id of the broker database in `dir`: stored beside it, new (random) whenever the
/// database does not exist (even if an id file from a lost database is still there), [`LEGACY_CLUSTER_ID`] for a database created before ids were stored. A lost
/// database therefore comes back as a new cluster, whose offsets start again from 0: the
/// archive tells its records from those of the old one by this id.
pub fn cluster_id(dir: &Path) -> std::io::Result<String> {
    let file = dir.join(CLUSTER_ID_FILE);
    let database = dir.join("tansu.db").exists();
    // The id belongs to the database: a lost database is a new cluster even if the id file stayed.
    if database && let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = if database { LEGACY_CLUSTER_ID.to_string() } else { uuid::Uuid::new_v4().to_string() };
    std::fs::write(&file, &id)?;
    Ok(id)
}

fn serve_on_own_runtime(
    (listener, advertised): (url::Url, url::Url),
    (storage, database): (url::Url, std::path::PathBuf),
    cluster_id: String,
    users: Vec<(String, crate::secret::Secret)>,
    ready: tokio::sync::oneshot::Sender<Result<EmbeddedLog, String>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("tansu").enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    rt.block_on(async move {
        let opened = async {
            let addr = listener.socket_addrs(|| None).map_err(|e| e.to_string())?.into_iter().next().ok_or("no listen address")?;
            let container = tansu_storage::StorageContainer::builder()
                .cluster_id(cluster_id.clone())
                .node_id(tansu_broker::NODE_ID)
                .advertised_listener(advertised)
                .storage(storage)
                .silent(true)
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let records = LogRecords::open(&database, &cluster_id).await?;
            let socket = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((container, records, socket))
        };
        let (container, records, socket) = match opened.await {
            Ok(o) => o,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let log = EmbeddedLog { storage: container, appends: Appends::default(), records, claimed: Default::default() };
        let _ = ready.send(Ok(log.clone()));
        if let Err(e) = serve::serve(socket, log, &cluster_id, uuid::Uuid::new_v4(), &users, async {
            let _ = stop.await;
        })
        .await
        {
            tracing::error!(error = %e, "embedded broker stopped");
        }
    });
    // Open client connections keep tasks alive: do not wait for them.
    rt.shutdown_timeout(Duration::from_secs(1));
}

fn free_port(ip: std::net::IpAddr) -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind((ip, 0))?.local_addr()
}

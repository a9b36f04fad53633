//! The embedded Kafka-API broker: tansu with its SQLite storage engine, in this process.
//!
//! Facts this relies on (measured, see `../shared/notes/embedded-broker.md`): the SQLite
//! engine keeps messages and committed offsets across restarts; the memory engine loses
//! messages and is never used. There is no shutdown call: stopping aborts the serving task,
//! after the caller has dropped its Kafka clients.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::error::InfraError;

type EmbeddedTansu = tansu_broker::broker::Broker<
    tansu_broker::coordinator::group::administrator::Controller<tansu_storage::StorageContainer>,
    tansu_storage::StorageContainer,
>;

/// A running embedded broker. Dropping it stops the broker.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0 picks a free port), storing its log in
    /// `<data_dir>/tansu.db`, and waits until it accepts connections.
    pub async fn start(addr: SocketAddr, data_dir: &Path) -> Result<Self, InfraError> {
        let fail = |reason: String| InfraError::BrokerStart { addr: addr.to_string(), reason };
        let addr = if addr.port() == 0 { free_port(addr.ip()).map_err(|e| fail(e.to_string()))? } else { addr };
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Err(fail(format!("{addr} is already in use; pass another --listen address or --brokers to use that broker")));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| fail(format!("{}: {e}", data_dir.display())))?;
        let abs = std::path::absolute(data_dir).map_err(|e| fail(e.to_string()))?;
        // tansu strips the leading `/` of the path: an absolute path needs four slashes.
        let storage = format!("sqlite:///{}/tansu.db", abs.display());
        let listener = url::Url::parse(&format!("tcp://{addr}")).map_err(|e| fail(e.to_string()))?;
        let storage = url::Url::parse(&storage).map_err(|e| fail(e.to_string()))?;
        let mut broker = EmbeddedTansu::builder()
            .node_id(tansu_broker::NODE_ID)
            .cluster_id("trackiq")
            .incarnation_id(uuid::Uuid::new_v4())
            .advertised_listener(listener.clone())
            .listener(listener)
            .storage(storage)
            .silent(true)
            .build()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if task.is_finished() || Instant::now() > deadline {
                task.abort();
                return Err(fail("did not accept connections".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        info!(%addr, data = %abs.display(), "embedded Kafka-API broker ready");
        Ok(EmbeddedBroker { addr, task })
    }

    /// Address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the broker. Kafka clients should be dropped first: the listen loop waits on them.
    pub fn stop(self) {
        debug!(addr = %self.addr, "stopping embedded broker");
        self.task.abort();
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn free_port(ip: std::net::IpAddr) -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind((ip, 0))?.local_addr()
}

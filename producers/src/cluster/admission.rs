//! Who may join a cluster run: each connection to the coordinator is handled on its own task
//! (a stranger that connects and stays silent holds up nobody), proves the run's secret
//! ([`super::auth`]), then says hello within [`HELLO_TIMEOUT`]. Refusals are logged with the
//! peer's address and the reason; the run goes on.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tracing::warn;

use super::auth::{self, Channel, ClusterSecret};
use super::protocol::{Reader, WorkerMsg};

/// An authenticated worker's first message must arrive within this.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A worker admitted to the run, with its connection.
pub struct Joined {
    pub from: SocketAddr,
    pub rank: usize,
    pub world: usize,
    pub ring_addr: String,
    pub reader: Reader,
    pub writer: OwnedWriteHalf,
}

/// Authenticates one connection and reads its hello; sends the worker on `joined`, or logs
/// why it was refused.
pub async fn admit(mut stream: TcpStream, from: SocketAddr, secret: Option<ClusterSecret>, run_id: String, joined: mpsc::UnboundedSender<Joined>) {
    let _ = stream.set_nodelay(true);
    if let Err(why) = auth::accept(&mut stream, secret.as_ref(), Channel::Control, &run_id).await {
        warn!(%from, reason = %why, "refused a cluster connection: handshake failed");
        return;
    }
    let (rd, writer) = stream.into_split();
    let mut reader = Reader::new(rd);
    match tokio::time::timeout(HELLO_TIMEOUT, reader.next::<WorkerMsg>()).await {
        Ok(Ok(Some(WorkerMsg::Hello { rank, world, ring_addr, .. }))) => {
            let _ = joined.send(Joined { from, rank, world, ring_addr, reader, writer });
        }
        Ok(Err(e)) => warn!(%from, reason = %e, "refused a cluster connection: bad first message"),
        Ok(Ok(Some(_))) => warn!(%from, "refused a cluster connection: its first message was not a hello"),
        Ok(Ok(None)) => warn!(%from, "refused a cluster connection: closed before saying hello"),
        Err(_) => warn!(%from, "refused a cluster connection: no hello within {} s", HELLO_TIMEOUT.as_secs()),
    }
}

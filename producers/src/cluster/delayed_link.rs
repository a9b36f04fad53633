//! The `net-delay` fault's link: every message a rank sends to its right neighbour arrives
//! `delay` later, as over a link with that much latency, while the sender goes on at once
//! (its kernel buffers took the data). A sender that slept before each write instead would
//! hold up its own next exchange, and two delayed ranks side by side would hide each other.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A write half whose messages are delivered, in order, each `delay` after it was sent.
pub struct DelayedLink {
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    writer: JoinHandle<io::Result<()>>,
}

impl DelayedLink {
    /// Takes over `w`: from now on every message goes through the delay queue.
    pub fn start(mut w: OwnedWriteHalf) -> DelayedLink {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, msg)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                w.write_all(&msg).await?;
            }
            Ok(())
        });
        DelayedLink { tx, writer }
    }

    /// Queues `header` and `payload` as one message, delivered `delay` from now.
    pub fn send(&self, header: &[u8], payload: &[u8], delay: Duration) -> io::Result<()> {
        let mut msg = Vec::with_capacity(header.len() + payload.len());
        msg.extend_from_slice(header);
        msg.extend_from_slice(payload);
        self.tx
            .send((Instant::now() + delay, msg))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the delayed link's writer stopped: its connection failed"))
    }

    /// Delivers everything queued (a rank must not exit with its last messages undelivered).
    pub async fn flush(self) -> io::Result<()> {
        drop(self.tx);
        self.writer.await.map_err(io::Error::other)?
    }
}

//! Ring all-reduce (sum) over TCP: each rank sends to its right neighbour and receives from
//! its left one. Reduce-scatter in N−1 steps leaves rank r with the full sum of chunk
//! (r+1) mod N; all-gather in N−1 more steps hands every finished chunk around. Each chunk
//! is reduced along one fixed chain, so every rank ends with bit-identical results.
//! Every byte of the configured size really crosses the sockets.
//!
//! Each message starts with the time its sender began sending it, so the receiver can tell
//! how long the data spent on the link itself: from the later of "the sender began" and "the
//! receiver was ready" to "the data arrived". A slow rank or a late receiver does not count;
//! a slow link counts on that link only (every rank waits in the all-reduce alike, so its
//! time alone cannot say where the delay is). Across hosts this assumes clocks that agree
//! to well under a step (NTP or PTP); on one host they are the same clock.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::auth::{self, Channel, ClusterSecret};
use super::delayed_link::DelayedLink;

/// What a rank proves to its ring neighbours: the run's secret, for this run.
pub struct RingAuth {
    pub secret: Option<ClusterSecret>,
    pub run_id: String,
}

/// One rank's connections in the ring.
pub struct Ring {
    pub rank: usize,
    pub world: usize,
    left: Option<OwnedReadHalf>,
    right: Option<OwnedWriteHalf>,
    /// Bytes this rank sent in collectives.
    pub bytes_sent: u64,
    /// µs the data received from the left neighbour spent on the link (see the module doc).
    pub link_us: u64,
    /// Injected latency of every send (the `net-delay` fault): from the first send with one,
    /// the right link is a [`DelayedLink`].
    pub send_delay: Option<std::time::Duration>,
    delayed: Option<DelayedLink>,
}

/// The little-endian bytes of `v` (a plain view on little-endian machines).
fn le_bytes(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: f32 has no padding and u8 no alignment requirement; the view covers exactly `v`.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) })
    } else {
        std::borrow::Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

/// Chunk boundaries: `world` nearly equal parts of `len`.
pub fn chunks(len: usize, world: usize) -> Vec<(usize, usize)> {
    (0..world).map(|i| (len * i / world, len * (i + 1) / world)).collect()
}

impl Ring {
    /// Joins the ring: connects to the right neighbour's listener (address `right`) and
    /// accepts the left neighbour on `listener`, each side proving the run's secret first
    /// ([`super::auth`]); a connection that fails the handshake is logged and dropped, and
    /// the rank goes on waiting for its real neighbour.
    pub async fn connect(rank: usize, world: usize, listener: TcpListener, right: SocketAddr, auth: RingAuth) -> std::io::Result<Ring> {
        if world <= 1 {
            return Ok(Ring { rank, world, left: None, right: None, bytes_sent: 0, link_us: 0, send_delay: None, delayed: None });
        }
        let secret = auth.secret.as_ref();
        let outgoing = async {
            let mut out = TcpStream::connect(right).await?;
            auth::connect(&mut out, secret, Channel::Ring, Some(&auth.run_id))
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("ring peer {right}: {e}")))?;
            Ok::<_, std::io::Error>(out)
        };
        // Each connection's handshake on its own task: a silent stranger does not hold up
        // the real neighbour (the handshakes left over are aborted with the set).
        let incoming = async {
            let mut pending = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let (mut inc, from) = accepted?;
                        let (secret, run_id) = (auth.secret.clone(), auth.run_id.clone());
                        pending.spawn(async move {
                            let verdict = auth::accept(&mut inc, secret.as_ref(), Channel::Ring, &run_id).await;
                            (inc, from, verdict)
                        });
                    }
                    Some(Ok((inc, from, verdict))) = pending.join_next() => match verdict {
                        Ok(()) => return Ok::<_, std::io::Error>(inc),
                        Err(why) => tracing::warn!(rank, %from, reason = %why, "refused a ring connection: handshake failed"),
                    },
                }
            }
        };
        let (out, inc) = tokio::join!(outgoing, incoming);
        let (out, inc) = (out?, inc?);
        out.set_nodelay(true)?;
        inc.set_nodelay(true)?;
        let (_, right_w) = out.into_split();
        let (left_r, _) = inc.into_split();
        Ok(Ring { rank, world, left: Some(left_r), right: Some(right_w), bytes_sent: 0, link_us: 0, send_delay: None, delayed: None })
    }

    /// Sends `send` to the right while receiving `recv.len()` values from the left. On the
    /// wire: the time the sender began (µs since the epoch, i64), then little-endian f32.
    async fn exchange(&mut self, send: &[f32], recv: &mut [f32]) -> std::io::Result<()> {
        let began = trackiq_schemas::now_us();
        if self.send_delay.is_some() && self.delayed.is_none() {
            self.delayed = Some(DelayedLink::start(self.right.take().expect("world > 1")));
        }
        let r = self.left.as_mut().expect("world > 1");
        #[cfg(target_endian = "little")]
        let read = async {
            let mut sender_began = [0u8; 8];
            r.read_exact(&mut sender_began).await?;
            // SAFETY: any bit pattern is a valid f32 and u8 has no alignment requirement, so
            // the f32 buffer may be filled through a byte view of the same length.
            let bytes = unsafe { std::slice::from_raw_parts_mut(recv.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(recv)) };
            r.read_exact(bytes).await?;
            Ok::<_, std::io::Error>((i64::from_le_bytes(sender_began), trackiq_schemas::now_us()))
        };
        #[cfg(target_endian = "big")]
        let read = async {
            let mut sender_began = [0u8; 8];
            r.read_exact(&mut sender_began).await?;
            let mut inc = vec![0u8; recv.len() * 4];
            r.read_exact(&mut inc).await?;
            for (dst, src) in recv.iter_mut().zip(inc.chunks_exact(4)) {
                *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
            }
            Ok::<_, std::io::Error>((i64::from_le_bytes(sender_began), trackiq_schemas::now_us()))
        };
        let (sender_began, arrived) = match (&self.delayed, self.right.as_mut()) {
            (Some(link), _) => {
                link.send(&began.to_le_bytes(), &le_bytes(send), self.send_delay.unwrap_or_default())?;
                read.await?
            }
            (None, Some(w)) => {
                let write = async {
                    w.write_all(&began.to_le_bytes()).await?;
                    w.write_all(&le_bytes(send)).await
                };
                let (a, b) = tokio::join!(write, read);
                a?;
                b?
            }
            (None, None) => unreachable!("the right link is either direct or delayed"),
        };
        self.link_us += arrived.saturating_sub(sender_began.max(began)).max(0) as u64;
        self.bytes_sent += std::mem::size_of_val(send) as u64;
        Ok(())
    }

    /// Delivers the messages a delayed link still holds (see [`DelayedLink::flush`]).
    pub async fn flush(&mut self) -> std::io::Result<()> {
        match self.delayed.take() {
            Some(link) => link.flush().await,
            None => Ok(()),
        }
    }

    /// In-place sum all-reduce of `data` across the ring.
    pub async fn all_reduce_sum(&mut self, data: &mut [f32]) -> std::io::Result<()> {
        let n = self.world;
        if n <= 1 {
            return Ok(());
        }
        let parts = chunks(data.len(), n);
        let mut buf = Vec::new();
        for s in 0..n - 1 {
            let (send_i, recv_i) = ((self.rank + n - s) % n, (self.rank + n - s - 1) % n);
            let (sa, sb) = parts[send_i];
            let (ra, rb) = parts[recv_i];
            let send = data[sa..sb].to_vec();
            buf.resize(rb - ra, 0.0);
            self.exchange(&send, &mut buf).await?;
            for (d, v) in data[ra..rb].iter_mut().zip(&buf) {
                *d += v;
            }
        }
        for s in 0..n - 1 {
            let (send_i, recv_i) = ((self.rank + 1 + n - s) % n, (self.rank + n - s) % n);
            let (sa, sb) = parts[send_i];
            let (ra, rb) = parts[recv_i];
            let send = data[sa..sb].to_vec();
            buf.resize(rb - ra, 0.0);
            self.exchange(&send, &mut buf).await?;
            data[ra..rb].copy_from_slice(&buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ring_of(world: usize) -> Vec<Ring> {
        let mut listeners = Vec::new();
        for _ in 0..world {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        join(listeners, None).await
    }

    async fn join(listeners: Vec<TcpListener>, secret: Option<ClusterSecret>) -> Vec<Ring> {
        let world = listeners.len();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let joins: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(r, l)| {
                let right = addrs[(r + 1) % world];
                tokio::spawn(Ring::connect(r, world, l, right, RingAuth { secret: secret.clone(), run_id: "run-a".into() }))
            })
            .collect();
        let mut rings = Vec::new();
        for j in joins {
            rings.push(j.await.unwrap().unwrap());
        }
        rings
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_ranks_agree_bit_for_bit_and_equal_the_serial_sum() {
        const WORLD: usize = 4;
        const LEN: usize = 1003; // not a multiple of the world size
        let inputs: Vec<Vec<f32>> = (0..WORLD).map(|r| (0..LEN).map(|i| ((i * 7 + r * 13) % 29) as f32 - 14.0).collect()).collect();
        let serial: Vec<f32> = (0..LEN).map(|i| inputs.iter().map(|v| v[i]).sum()).collect();
        let rings = ring_of(WORLD).await;
        let tasks: Vec<_> = rings
            .into_iter()
            .zip(inputs)
            .map(|(mut ring, mut data)| {
                tokio::spawn(async move {
                    ring.all_reduce_sum(&mut data).await.unwrap();
                    (data, ring.bytes_sent)
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        for (data, sent) in &results {
            assert_eq!(data, &results[0].0, "every rank holds the same bits");
            // Integer-valued inputs: the ring's sum is exact, so it equals the serial one.
            assert_eq!(data, &serial);
            // 2(N-1) steps of about LEN/N floats each.
            let expect = 2 * (WORLD - 1) * LEN / WORLD * 4;
            assert!((*sent as i64 - expect as i64).abs() <= 8 * 4 * WORLD as i64, "{sent} bytes vs {expect}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delayed_sender_shows_on_its_link_only() {
        const WORLD: usize = 4;
        const DELAY_MS: u64 = 20;
        let mut rings = ring_of(WORLD).await;
        rings[1].send_delay = Some(std::time::Duration::from_millis(DELAY_MS));
        let tasks: Vec<_> = rings
            .into_iter()
            .map(|mut ring| {
                tokio::spawn(async move {
                    let mut data = vec![1.0f32; 4096];
                    ring.all_reduce_sum(&mut data).await.unwrap();
                    assert!(data.iter().all(|v| *v == WORLD as f32));
                    ring.link_us as f64 / 1e3
                })
            })
            .collect();
        let mut link_ms = Vec::new();
        for t in tasks {
            link_ms.push(t.await.unwrap());
        }
        // Each of rank 1's 2(N-1) sends arrives 20 ms late. Rank 2 waits the full delay at
        // least once (later sends overlap with the ring's own waiting), the others never.
        assert!(link_ms[2] >= DELAY_MS as f64 * 0.95, "{link_ms:?}");
        for r in [0, 1, 3] {
            assert!(link_ms[r] < link_ms[2] / 4.0, "rank {r} waited on rank 1's delay too, but its own link is not slow: {link_ms:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn strangers_on_a_ring_port_are_refused_and_the_ring_still_forms() {
        const WORLD: usize = 3;
        let secret = ClusterSecret::new("the ring's shared secret".into()).unwrap();
        let mut listeners = Vec::new();
        for _ in 0..WORLD {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let target = listeners[0].local_addr().unwrap();
        // Before the real neighbours, and left open: one without the secret, one of another
        // run, one that sends raw floats at once, as if it were the left neighbour.
        let (mut nobody, mut other_run, mut raw) = (TcpStream::connect(target).await.unwrap(), TcpStream::connect(target).await.unwrap(), TcpStream::connect(target).await.unwrap());
        raw.write_all(&[0u8; 4096]).await.unwrap();
        let without = auth::connect(&mut nobody, None, Channel::Ring, None);
        let wrong_run = auth::connect(&mut other_run, Some(&secret), Channel::Ring, Some("run-b"));
        let (rings, without, wrong_run) = tokio::join!(join(listeners, Some(secret.clone())), without, wrong_run);
        drop((nobody, other_run, raw));
        assert_eq!(without, Err(auth::AuthFailure::SecretRequired));
        assert_eq!(wrong_run, Err(auth::AuthFailure::OtherRun { expected: "run-b".into(), found: "run-a".into() }));
        let tasks: Vec<_> = rings
            .into_iter()
            .map(|mut ring| {
                tokio::spawn(async move {
                    let mut data = vec![ring.rank as f32; 64];
                    ring.all_reduce_sum(&mut data).await.unwrap();
                    data
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().iter().all(|v| *v == 3.0), "0 + 1 + 2 on every rank: the strangers' bytes were never summed");
        }
    }

    #[test]
    fn chunks_cover_everything_once() {
        let c = chunks(10, 4);
        assert_eq!(c, vec![(0, 2), (2, 5), (5, 7), (7, 10)]);
    }
}

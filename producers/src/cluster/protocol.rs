//! Control protocol between the coordinator and its workers: one JSON object per line over
//! TCP (after the handshake of [`super::auth`]), each line at most [`MAX_CONTROL_MESSAGE`]
//! bytes. Workers stream measurements and heartbeats to the coordinator, which alone talks to
//! Kafka; the coordinator sends the job, fault acknowledgements and aborts.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;

use super::faults::{FaultKind, FaultSpec};

/// What the coordinator asks the workers to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    Train(TrainConfig),
    Sweep(SweepConfig),
}

/// Data-parallel training settings, identical on every rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: u64,
    /// Gradient (and model) size in bytes of f32.
    pub grad_bytes: u64,
    /// Samples per rank per step.
    pub batch: usize,
    pub seed: u64,
    pub learning_rate: f32,
    pub faults: Vec<FaultSpec>,
    /// A rank waiting longer than this in an all-reduce gives up and reports itself blocked.
    pub collective_timeout_ms: u64,
    pub heartbeat_ms: u64,
}

/// A collective sweep like nccl-tests' `all_reduce_perf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepConfig {
    pub sizes: Vec<u64>,
    pub warmup_iters: u32,
    pub iters: u32,
    pub collective_timeout_ms: u64,
    pub heartbeat_ms: u64,
}

/// Worker → coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMsg {
    Hello { rank: usize, world: usize, ring_addr: String, pid: u32, host: String },
    /// Alive, working on `step`.
    Heartbeat { step: u64, ts_us: i64 },
    /// The compute phase of `step` ended (sent before the all-reduce starts).
    Computed { step: u64, ts_us: i64, compute_ms: f64 },
    StepDone(StepReport),
    /// A fault is being injected now.
    Fault { kind: FaultKind, step: u64, ts_us: i64, delay_ms: f64 },
    /// The all-reduce of `step` failed or timed out; the worker waits for an abort.
    Blocked { step: u64, reason: String },
    SweepRow(SweepRow),
    Done,
}

/// Measurements of one training step on one rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: u64,
    /// Start of the step, µs since the epoch.
    pub ts_us: i64,
    pub compute_ms: f64,
    pub allreduce_ms: f64,
    pub step_ms: f64,
    /// Payload of the all-reduce (the gradient).
    pub bytes: u64,
    /// Bytes this rank sent during the all-reduce.
    pub bytes_sent: u64,
    /// Time the all-reduce's data from the left neighbour spent on the link into this rank
    /// (`Ring::link_us`), ms. 0 from a worker of a release without it.
    #[serde(default)]
    pub link_ms: f64,
    pub loss: f64,
    /// Checksum of the reduced gradient: equal on every rank when the ring is correct.
    pub checksum: u64,
    /// Local gradient and reduced sum at the probe indices, to check against the serial sum.
    pub probes_local: Vec<f32>,
    pub probes_reduced: Vec<f32>,
}

/// One message size of a sweep on one rank: mean time per iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub size: u64,
    pub count: u64,
    pub out_of_place_us: f64,
    pub in_place_us: f64,
    /// Elements that differ from the expected sum (nccl-tests' `#wrong`).
    pub wrong: u64,
}

/// Coordinator → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinatorMsg {
    /// Ring addresses by rank, and the job.
    Start { peers: Vec<String>, job: Job },
    /// The fault event was received (a worker about to be killed waits for this).
    FaultAck,
    Abort { reason: String },
}

/// Writes one message as a line.
pub async fn send<W: AsyncWrite + Unpin, M: Serialize>(w: &mut W, msg: &M) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

/// Longest control message accepted, newline included: a job with its peers and faults is a
/// few kilobytes. A longer line is refused before it is buffered whole, so a peer cannot make
/// the coordinator or a worker hold an unbounded line.
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// A message from one line's bytes; the error quotes the start of a line that is not one.
pub fn decode<M: for<'de> Deserialize<'de>>(line: &[u8]) -> std::io::Result<M> {
    serde_json::from_slice(line).map_err(|e| {
        let text = String::from_utf8_lossy(line);
        let shown: String = text.trim_end().chars().take(200).collect();
        let more = if text.trim_end().chars().count() > 200 { "…" } else { "" };
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad control message `{shown}{more}`: {e}"))
    })
}

/// Reads messages line by line, each at most [`MAX_CONTROL_MESSAGE`] bytes.
pub struct Reader<R = OwnedReadHalf> {
    inner: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader { inner: BufReader::new(r), line: Vec::new() }
    }

    /// The next message; `Ok(None)` at end of stream. A line that is not a message, or one
    /// longer than [`MAX_CONTROL_MESSAGE`], is an error naming it.
    pub async fn next<M: for<'de> Deserialize<'de>>(&mut self) -> std::io::Result<Option<M>> {
        self.line.clear();
        let limit = MAX_CONTROL_MESSAGE as u64;
        let n = (&mut self.inner).take(limit).read_until(b'\n', &mut self.line).await?;
        if n == 0 {
            return Ok(None);
        }
        if n as u64 == limit && self.line.last() != Some(&b'\n') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("control message longer than {} KiB (no newline in the first {n} bytes): refused", MAX_CONTROL_MESSAGE / 1024),
            ));
        }
        decode(&self.line).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_past_the_limit_is_refused_and_one_below_is_read() {
        let hello = WorkerMsg::Hello { rank: 0, world: 2, ring_addr: "127.0.0.1:1".into(), pid: 1, host: "h".into() };
        let mut ok = serde_json::to_vec(&hello).unwrap();
        ok.push(b'\n');
        let padded = format!("{{\"type\":\"done\",\"pad\":\"{}\"}}\n", "x".repeat(MAX_CONTROL_MESSAGE - 25));
        assert_eq!(padded.len(), MAX_CONTROL_MESSAGE, "exactly at the limit, newline included");
        let over = vec![b'a'; 3 * MAX_CONTROL_MESSAGE];
        let input = [ok.as_slice(), padded.as_bytes(), &over].concat();
        let mut r = Reader::new(&input[..]);
        assert_eq!(r.next::<WorkerMsg>().await.unwrap(), Some(hello));
        assert_eq!(r.next::<WorkerMsg>().await.unwrap(), Some(WorkerMsg::Done));
        let err = r.next::<WorkerMsg>().await.unwrap_err().to_string();
        assert!(err.contains("longer than 64 KiB"), "{err}");
        let mut r = Reader::new(&b"{\"type\":\"nonsense\"}\n"[..]);
        let err = r.next::<WorkerMsg>().await.unwrap_err().to_string();
        assert!(err.contains("bad control message `{\"type\":\"nonsense\"}`"), "{err}");
    }
}

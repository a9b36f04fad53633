//! The cluster's listeners as an attacker meets them: a coordinator reachable from other
//! hosts refuses to start without a secret; with one, a worker without it, with a wrong one,
//! of another run, a replayed handshake and an oversized frame are each refused with a log
//! line naming the peer and the reason, while the real workers' run completes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trackiq_producers::cluster::auth::{self, Channel, ClusterSecret, NONCE_LEN};

use crate::support::{BIN, Up, fast_config, wait_for};

const SECRET_VAR: &str = "TRACKIQ_E2E_CLUSTER_SECRET";
const SECRET: &str = "e2e-cluster-secret-0123456789abcdef";

/// Runs `trackiq cluster worker` for `rank` of 2 against `addr`, with `env`; returns its output.
fn worker(up: &Up, addr: &str, rank: usize, extra: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    Command::new(BIN)
        .args(["--brokers", &up.brokers, "--data", &up.data, "cluster", "worker", "--rank", &rank.to_string(), "--world", "2", "--coordinator", addr])
        .args(extra)
        .env_remove(SECRET_VAR)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(child: std::process::Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn strangers_are_refused_while_the_authenticated_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let up = Up::start(&data, &fast_config(dir.path()), &[], &[]);
    let cli = |args: &[&str], env: &[(&str, &str)]| Command::new(BIN).args(["--brokers", &up.brokers, "--data", &data]).args(args).env_remove(SECRET_VAR).envs(env.iter().copied()).output().unwrap();

    // Off loopback without a secret: refused before anything listens.
    let open = cli(&["cluster", "run", "--workers", "2", "--steps", "2", "--remote-workers", "--coordinator-listen", "0.0.0.0:0"], &[]);
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(!open.status.success() && err.contains("reachable from other hosts") && err.contains("--secret-env"), "{err}");
    let short = cli(&["cluster", "run", "--workers", "2", "--remote-workers", "--coordinator-listen", "0.0.0.0:0", "--secret-env", SECRET_VAR], &[(SECRET_VAR, "hunter2")]);
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(!short.status.success() && err.contains("at least 16 are required") && !err.contains("hunter2"), "{err}");

    // The coordinator of a secured run, on every interface.
    let mut coordinator = Command::new(BIN)
        .args(["--brokers", &up.brokers, "--data", &data, "cluster", "run", "--workers", "2", "--steps", "10", "--grad-mib", "0.05", "--remote-workers"])
        .args(["--coordinator-listen", "0.0.0.0:0", "--secret-env", SECRET_VAR])
        .env(SECRET_VAR, SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = coordinator.stderr.take().unwrap();
    let l = log.clone();
    std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).for_each(|line| l.lock().unwrap().push_str(&format!("{line}\n"))));
    let (port, run_id) = wait_for("the coordinator's address", Duration::from_secs(60), || {
        let log = log.lock().unwrap();
        let line = log.lines().find(|l| l.contains("coordinator listening on"))?;
        let port = line.split("0.0.0.0:").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.to_string();
        let run = line.split("--run-id ").nth(1)?.split_whitespace().next()?.to_string();
        Some((port, run))
    });
    assert!(!log.lock().unwrap().contains(SECRET), "the printed command names the variable, not the secret");
    let addr = format!("127.0.0.1:{port}");
    let refusals = |reason: &str| log.lock().unwrap().lines().filter(|l| l.contains("refused a cluster connection") && l.contains(reason)).count();

    // A worker whose ring listener would face other hosts needs the secret too.
    let (ok, err) = stderr_of(worker(&up, &addr, 1, &["--bind", "0.0.0.0"], &[]));
    assert!(!ok && err.contains("the ring listener would be on 0.0.0.0"), "{err}");

    // 1. A worker without the secret, 2. one with a wrong secret, 3. one of another run.
    let (ok, err) = stderr_of(worker(&up, &addr, 0, &[], &[]));
    assert!(!ok && err.contains("requires the cluster secret"), "{err}");
    let (ok, err) = stderr_of(worker(&up, &addr, 0, &["--secret-env", SECRET_VAR], &[(SECRET_VAR, "a different secret, 32 bytes long")]));
    assert!(!ok && err.contains("refused our proof"), "{err}");
    wait_for("the wrong secret's log line", Duration::from_secs(10), || (refusals("wrong secret, or a replayed or forged proof") == 1).then_some(()));
    let (ok, err) = stderr_of(worker(&up, &addr, 0, &["--secret-env", SECRET_VAR, "--run-id", "01a24bec-0000-7000-8000-000000000000"], &[(SECRET_VAR, SECRET)]));
    assert!(!ok && err.contains(&format!("belongs to run {run_id}")), "{err}");

    // 4. A genuine handshake, captured, then replayed on a new connection; 5. an authenticated
    // peer that sends a 200 KiB line.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let secret = ClusterSecret::new(SECRET.into()).unwrap();
        let mut wire = TcpStream::connect(&addr).await.unwrap();
        let (mut ours, mut relay) = tokio::io::duplex(1024);
        let genuine = tokio::spawn({
            let secret = secret.clone();
            async move { auth::connect(&mut ours, Some(&secret), Channel::Control, None).await }
        });
        let mut head = [0u8; 7];
        wire.read_exact(&mut head).await.unwrap();
        let mut rest = vec![0u8; head[6] as usize + NONCE_LEN];
        wire.read_exact(&mut rest).await.unwrap();
        relay.write_all(&[&head[..], &rest].concat()).await.unwrap();
        let mut captured = [0u8; NONCE_LEN + 32];
        relay.read_exact(&mut captured).await.unwrap();
        wire.write_all(&captured).await.unwrap();
        let mut reply = [0u8; 33];
        wire.read_exact(&mut reply).await.unwrap();
        relay.write_all(&reply).await.unwrap();
        assert_eq!(genuine.await.unwrap().as_deref(), Ok(run_id.as_str()), "the captured handshake was genuine");
        drop(wire);

        let mut replay = TcpStream::connect(&addr).await.unwrap();
        let mut challenge = vec![0u8; 7 + head[6] as usize + NONCE_LEN];
        replay.read_exact(&mut challenge).await.unwrap();
        replay.write_all(&captured).await.unwrap();
        let mut verdict = [9u8];
        replay.read_exact(&mut verdict).await.unwrap();
        assert_eq!(verdict, [0], "the replayed proof is refused on the wire");

        let mut big = TcpStream::connect(&addr).await.unwrap();
        auth::connect(&mut big, Some(&secret), Channel::Control, Some(&run_id)).await.unwrap();
        let _ = big.write_all(&vec![b'x'; 200 * 1024]).await;
    });
    wait_for("the replay's and the oversized frame's log lines", Duration::from_secs(10), || {
        (refusals("wrong secret, or a replayed or forged proof") == 2 && refusals("longer than 64 KiB") == 1).then_some(())
    });

    // The real workers, with the secret and the run id: the run completes.
    let real: Vec<_> = (0..2).map(|r| worker(&up, &addr, r, &["--secret-env", SECRET_VAR, "--run-id", &run_id], &[(SECRET_VAR, SECRET)])).collect();
    let out = coordinator.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("10 steps completed"), "{stdout}\n{}", log.lock().unwrap());
    for w in real {
        let (ok, err) = stderr_of(w);
        assert!(ok, "{err}");
    }
    let log = log.lock().unwrap();
    assert!(!log.contains(SECRET), "the secret never appears in the coordinator's output");
    for line in log.lines().filter(|l| l.contains("refused a cluster connection")) {
        assert!(line.contains("127.0.0.1:"), "each refusal names the peer: {line}");
    }
}

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;

const RUN: &str = "01a24bec-16e3-7127-a85f-d734c15c655d";

fn secret(value: &str) -> ClusterSecret {
    ClusterSecret::new(value.into()).unwrap()
}

/// Runs both sides over an in-memory pipe.
async fn handshake(acceptor: Option<&ClusterSecret>, connector: Option<&ClusterSecret>, channels: (Channel, Channel), expected: Option<&str>) -> (Result<(), AuthFailure>, Result<String, AuthFailure>) {
    let (mut a, mut c) = duplex(1024);
    // Each side hangs up when done, as a process would: the other then sees the end at once.
    let acceptor = async move { accept(&mut a, acceptor, channels.0, RUN).await };
    let connector = async move { connect(&mut c, connector, channels.1, expected).await };
    tokio::join!(acceptor, connector)
}

async fn read_challenge(s: &mut DuplexStream) -> Vec<u8> {
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await.unwrap();
    let mut rest = vec![0u8; head[6] as usize + NONCE_LEN];
    s.read_exact(&mut rest).await.unwrap();
    [head.to_vec(), rest].concat()
}

#[tokio::test]
async fn the_same_secret_admits_both_sides_and_names_the_run() {
    let s = secret("a shared secret of 32 bytes.....");
    let (a, c) = handshake(Some(&s), Some(&s), (Channel::Control, Channel::Control), Some(RUN)).await;
    assert_eq!(a, Ok(()));
    assert_eq!(c.as_deref(), Ok(RUN));
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_acceptor() {
    let (right, wrong) = (secret("the coordinator's secret value"), secret("a worker with another secret!!!!!"));
    let (a, c) = handshake(Some(&right), Some(&wrong), (Channel::Control, Channel::Control), None).await;
    assert_eq!(a, Err(AuthFailure::BadProof));
    assert_eq!(c, Err(AuthFailure::Refused));
}

#[tokio::test]
async fn no_secret_against_a_secured_acceptor_and_a_secret_against_an_open_one_are_refused() {
    let s = secret("sixteen bytes ok");
    let (a, c) = handshake(Some(&s), None, (Channel::Control, Channel::Control), None).await;
    assert_eq!(c, Err(AuthFailure::SecretRequired));
    assert_eq!(a, Err(AuthFailure::Io("end of stream".into())), "the acceptor admits nobody");
    let (a, c) = handshake(None, Some(&s), (Channel::Ring, Channel::Ring), None).await;
    assert_eq!(a, Ok(()), "an open acceptor asks nothing");
    assert_eq!(c, Err(AuthFailure::PeerUnauthenticated), "but a connector with a secret does not trust it");
    let (a, c) = handshake(None, None, (Channel::Ring, Channel::Ring), None).await;
    assert_eq!((a, c.as_deref()), (Ok(()), Ok(RUN)), "loopback runs without a secret still work");
}

#[tokio::test]
async fn another_run_or_channel_is_refused_before_anything_is_proven() {
    let s = secret("a secret for two runs at once..");
    let (_, c) = handshake(Some(&s), Some(&s), (Channel::Control, Channel::Control), Some("another-run")).await;
    assert_eq!(c, Err(AuthFailure::OtherRun { expected: "another-run".into(), found: RUN.into() }));
    let (_, c) = handshake(Some(&s), Some(&s), (Channel::Ring, Channel::Control), None).await;
    assert_eq!(c, Err(AuthFailure::OtherChannel { expected: Channel::Control, found: Channel::Ring as u8 }));
}

#[tokio::test]
async fn a_captured_handshake_replayed_is_refused() {
    let s = secret("captured on the wire, replayed later");
    // A genuine handshake relayed by the test, which keeps what the connector sent.
    let (mut a, mut a_wire) = duplex(1024);
    let (mut c, mut c_wire) = duplex(1024);
    let acceptor = tokio::spawn({
        let s = s.clone();
        async move { accept(&mut a, Some(&s), Channel::Control, RUN).await }
    });
    let connector = tokio::spawn({
        let s = s.clone();
        async move { connect(&mut c, Some(&s), Channel::Control, None).await }
    });
    let challenge = read_challenge(&mut a_wire).await;
    c_wire.write_all(&challenge).await.unwrap();
    let mut captured = [0u8; NONCE_LEN + 32];
    c_wire.read_exact(&mut captured).await.unwrap();
    a_wire.write_all(&captured).await.unwrap();
    let mut reply = [0u8; 33];
    a_wire.read_exact(&mut reply).await.unwrap();
    c_wire.write_all(&reply).await.unwrap();
    assert_eq!(acceptor.await.unwrap(), Ok(()));
    assert!(connector.await.unwrap().is_ok());

    // The same bytes against a new connection: a fresh nonce, so the proof no longer fits.
    let (mut b, mut b_wire) = duplex(1024);
    let replayed = tokio::spawn(async move { accept(&mut b, Some(&s), Channel::Control, RUN).await });
    let second = read_challenge(&mut b_wire).await;
    assert_ne!(second[second.len() - NONCE_LEN..], challenge[challenge.len() - NONCE_LEN..], "every challenge has a fresh nonce");
    b_wire.write_all(&captured).await.unwrap();
    let mut verdict = [9u8; 1];
    b_wire.read_exact(&mut verdict).await.unwrap();
    assert_eq!(verdict, [0], "refused on the wire");
    assert_eq!(replayed.await.unwrap(), Err(AuthFailure::BadProof));
}

#[tokio::test]
async fn a_peer_that_is_not_trackiq_is_named() {
    let (mut c, mut other) = duplex(1024);
    other.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
    assert_eq!(connect(&mut c, None, Channel::Control, None).await, Err(AuthFailure::NotTrackiq));
}

#[test]
fn a_short_secret_is_refused_without_repeating_it() {
    let err = ClusterSecret::new("hunter2".into()).unwrap_err();
    assert!(err.contains("7 bytes") && !err.contains("hunter2"), "{err}");
    assert_eq!(format!("{:?}", secret("sixteen bytes!!!")), "ClusterSecret(***)");
}

//! What a cluster peer reads before it trusts anyone: the handshake of both sides
//! (`producers/src/cluster/auth.rs`, unchanged, by `#[path]`) fed arbitrary bytes as the
//! other side's frames, and the control-line reader (`protocol.rs`) fed arbitrary lines as
//! worker and coordinator messages. No input may panic, hang or allocate by a length it
//! chose; an input that passes a handshake would be a forged proof.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

// At the crate root, as siblings: `protocol.rs` names `super::faults`, `faults.rs` `crate::units`.
#[allow(dead_code)]
#[path = "../../producers/src/cluster/auth.rs"]
mod auth;
#[allow(dead_code)]
#[path = "../../producers/src/cluster/faults.rs"]
mod faults;
#[allow(dead_code)]
#[path = "../../producers/src/cluster/protocol.rs"]
mod protocol;

#[allow(dead_code)]
#[path = "../../producers/src/units.rs"]
mod units;

use auth::{Channel, ClusterSecret};
use protocol::{CoordinatorMsg, Reader, WorkerMsg};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let secret = ClusterSecret::new("the fuzzer's cluster secret".into()).expect("long enough");
    runtime().block_on(async {
        // The bytes as an acceptor's challenge and reply, with and without a secret.
        for key in [Some(&secret), None] {
            let mut peer = tokio::io::join(data, tokio::io::sink());
            let verdict = auth::connect(&mut peer, key, Channel::Control, None).await;
            assert!(!(key.is_some() && verdict.is_ok()), "a forged acceptor proof passed");
        }
        // The bytes as a connector's answer to a fresh challenge.
        let mut peer = tokio::io::join(data, tokio::io::sink());
        assert!(auth::accept(&mut peer, Some(&secret), Channel::Ring, "run-under-fuzz").await.is_err(), "a forged connector proof passed");
        // The bytes as control lines, read as each side reads them.
        let mut from_worker = Reader::new(data);
        while let Ok(Some(_)) = from_worker.next::<WorkerMsg>().await {}
        let mut from_coordinator = Reader::new(data);
        while let Ok(Some(_)) = from_coordinator.next::<CoordinatorMsg>().await {}
    });
});

//! What `[otlp]` reads from senders: an OTLP/HTTP metrics body, as protobuf and as JSON
//! (`producers/src/streams/otlp_decode.rs`, unchanged, by `#[path]`), and the observations of
//! what decodes. Errors are answers (400 with the reason); no input may panic. What decodes
//! must encode and decode again to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

// At the crate root, as siblings: `otlp_decode.rs` names `super::{histogram, mapping, reading}`.
#[allow(dead_code)]
#[path = "../../producers/src/streams/histogram.rs"]
mod histogram;
#[allow(dead_code)]
#[path = "../../producers/src/streams/mapping.rs"]
mod mapping;
#[allow(dead_code)]
#[path = "../../producers/src/streams/otlp_decode.rs"]
mod otlp_decode;
#[allow(dead_code)]
#[path = "../../producers/src/streams/reading.rs"]
mod reading;

fuzz_target!(|data: &[u8]| {
    let version = ["service.version".to_string()];
    let labels = ["deployment.environment".to_string()];
    let attributes = otlp_decode::Attributes { version: &version, labels: &labels };
    for json in [false, true] {
        if let Ok(req) = otlp_decode::decode(data, json) {
            // Compared as bytes: a NaN (a legal double on the wire) is not equal to itself.
            let bytes = req.encode_to_vec();
            let again = otlp_decode::decode(&bytes, false).expect("what decoded encodes and decodes again");
            assert_eq!(again.encode_to_vec(), bytes);
            let _ = otlp_decode::observations(&req, &attributes, 0);
        }
    }
});

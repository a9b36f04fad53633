//! `trackiq import trackiq-json FILE`: any file, read as a `TrackiqResult`, must parse or be
//! refused with an error, never panic. Also the timestamp parser on its own (the document's
//! `timestamp`) and the unit lookup of metric names.
#![no_main]
// Only the parse functions run; the rest of the included files is compiled, not called.
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

include!("importers.rs");

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = import::parse(&doc);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = import::parse_timestamp(text);
        let _ = import::unit_of(text);
    }
});

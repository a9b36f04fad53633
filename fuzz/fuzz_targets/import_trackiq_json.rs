//! `trackiq import <format> FILE`: any file, read as each format trackiq imports
//! (trackiq-json, pytest-benchmark, google-benchmark, hyperfine, vllm, autoperfpy, bmf,
//! tracker-csv, nccl-tests) and as `auto`, must parse or be refused with an error naming the
//! place, never panic; the time parser on its own too.
#![no_main]
// Only the parse functions run; the rest of the included files is compiled, not called.
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

include!("importers.rs");

use importers::{Format, ImportContext};

fuzz_target!(|data: &[u8]| {
    let ctx = ImportContext { file: "fuzz".into(), file_time_us: Some(1_700_000_000_000_000), ..Default::default() };
    for format in Format::ALL.into_iter().filter(|f| *f != Format::Criterion).chain([Format::Auto]) {
        if let Err(e) = importers::parse(format, data, &ctx) {
            assert!(!e.at.is_empty() && !e.what.is_empty(), "{format:?}: an error without a place or reason");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = importers::parse_time(text);
        let _ = importers::trackiq_json::unit_of(text);
    }
});

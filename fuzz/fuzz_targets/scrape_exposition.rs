//! What `[[scrape]]` reads from a target and `trackiq status` from the pipeline: the
//! Prometheus / OpenMetrics text parser (`producers/src/streams/exposition.rs`, unchanged, by
//! `#[path]`) on arbitrary text. An error must name its line; a parsed sample must have a
//! name and a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../producers/src/streams/exposition.rs"]
mod exposition;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count().max(1);
    match exposition::parse(text) {
        Ok(e) => assert!(e.samples.iter().all(|s| !s.name.is_empty()), "a sample without a name"),
        Err(err) => assert!(err.line >= 1 && err.line <= lines, "error at line {} of {lines}", err.line),
    }
    for word in text.split_whitespace().take(8) {
        let _ = exposition::number(word);
    }
});

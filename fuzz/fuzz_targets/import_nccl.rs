//! `trackiq import nccl-tests FILE`: any file, read as nccl-tests output (the text table or
//! the `-J` JSON), must parse or be refused, never panic; what parses must turn into samples.
//! Also the byte-size and `--sizes` range parsers of the same file.
#![no_main]
// Only the parse functions run; the rest of the included files is compiled, not called.
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

include!("importers.rs");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // parse_any picks one by the first character; both parsers see every input.
    for result in [nccl::parse_any(&text), nccl::parse_text(&text), nccl::parse_json(&text)].into_iter().flatten() {
        let _ = nccl::to_samples(&result, 0);
    }
    let _ = nccl::parse_size(&text);
    let _ = nccl::parse_size_range(&text);
});

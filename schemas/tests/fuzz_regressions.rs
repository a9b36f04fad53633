//! Inputs on which a `fuzz/` target failed, kept so that the bug stays fixed: every file
//! under `tests/fuzz_regressions/` must come back from `decode_valid` as a result (an event
//! or a `SchemaError`), without a panic, and without any single allocation far larger than
//! the record (the first findings were records of a few hundred bytes that made apache-avro
//! ask for gigabytes, which aborts the process where the allocation fails).
//!
//! Files are named `<target>-<kind>-<sha1>` as libFuzzer wrote them into `fuzz/artifacts/`.
//! Reproduce one with: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest single allocation requested since the last reset.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Tracking;

// SAFETY: forwards to the system allocator; only records the sizes asked for.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// A decoded value (`apache_avro::types::Value`, tens of bytes) per byte of the record, with
/// room for the fixed structures (schemas, error messages): what decoding may take at most in
/// one allocation. The inputs that made this test were at 20 million bytes per byte.
const MAX_ALLOCATION_PER_RECORD_BYTE: usize = 128;
const ALLOCATION_ALLOWANCE: usize = 1 << 20;

#[test]
fn fuzz_findings_decode_to_a_result_within_bounded_memory() {
    // The registry's own allocations (schemas, built once) are not a record's.
    let registry = trackiq_schemas::registry();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds the findings", dir.display());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let result = std::panic::catch_unwind(|| registry.decode_valid(&bytes).map(|e| e.name()));
        let largest = LARGEST.load(Ordering::Relaxed);
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(result.is_ok(), "{name}: decode_valid panicked");
        let limit = bytes.len() * MAX_ALLOCATION_PER_RECORD_BYTE + ALLOCATION_ALLOWANCE;
        assert!(largest <= limit, "{name}: one allocation of {largest} bytes for a {}-byte record", bytes.len());
    }
}

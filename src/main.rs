//! `trackiq`: benchmark and telemetry events to Kafka, summaries, Parquet history, verdicts,
//! reports and alerts. Each subcommand lives in its own module under `cli/`.

mod cli;

/// mimalloc: glibc's malloc took a fifth of the pipeline's CPU under load (measured with
/// `perf record` during `trackiq bench ingest`), and its arenas held memory after bursts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc (v3) options, numbered as in its `mimalloc.h` (`mi_option_e`, the version that
/// Cargo.lock pins): commit arena memory when used, not ahead; return freed memory to the
/// OS at once. Measured: `trackiq compact` of 56.8M samples peaked at 247 MiB (88 s) with
/// mimalloc's defaults and 189 MiB (99 s) with these; `bench ingest` at 100 runs/s at 224 MiB
/// instead of 378, for a few percent more CPU. An option given in mimalloc's environment
/// variable (`MIMALLOC_ARENA_EAGER_COMMIT`, `MIMALLOC_PURGE_DELAY`) is left as given.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
/// Freed memory goes back after 10 ms, not at once: with 0, a query re-faulted (and the kernel
/// zeroed) the same huge pages after every free — `SELECT count(*) FROM samples` over 1,133
/// objects spent half its time in `clear_page_erms` (perf), 0.46 s against 0.24 s with 10 ms.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// A one-shot query process (`trackiq sql`) keeps freed memory for a second: it exits soon
/// anyway, and the kernel's zeroing of re-faulted huge pages was 18 % of a 56.8M-sample
/// `GROUP BY run_id` (perf); about a tenth faster on both layouts.
const ONE_SHOT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// C libraries allocate with glibc's malloc, not mimalloc: the Parquet reader makes a zstd
/// decompression context (~100-200 KB) per column chunk, which glibc served from fresh `mmap`s
/// and trimmed heaps, so the kernel faulted and zeroed them again each time — 22 % of the
/// page faults of a `GROUP BY run_id` over 1,133 archived objects (`perf record -e
/// page-faults`). A one-shot process keeps such memory: chunks below 32 MiB come from the heap,
/// and up to 256 MiB of free heap stays mapped.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ONE_SHOT_GLIBC: [(std::ffi::c_int, std::ffi::c_int); 2] = [(libc::M_MMAP_THRESHOLD, 32 << 20), (libc::M_TRIM_THRESHOLD, 256 << 20)];

/// Switches the allocators to one-shot settings: [`ONE_SHOT_PURGE_DELAY_MS`] (unless
/// `MIMALLOC_PURGE_DELAY` is set) and [`ONE_SHOT_GLIBC`] (unless `GLIBC_TUNABLES` is set).
pub(crate) fn one_shot_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: as in `main`: the option is read when memory is next purged.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ONE_SHOT_PURGE_DELAY_MS) };
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        for (param, value) in ONE_SHOT_GLIBC {
            // SAFETY: mallopt only changes thresholds glibc reads on its next allocation or
            // free; it takes glibc's own arena lock.
            unsafe { libc::mallopt(param, value) };
        }
    }
}

fn main() -> std::process::ExitCode {
    for (option, variable, value) in [(MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0), (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS)] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mi_option_set only stores an option value; no allocation in flight
            // depends on it.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
    cli::main()
}

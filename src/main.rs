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

/// Switches the allocator to [`ONE_SHOT_PURGE_DELAY_MS`] (unless `MIMALLOC_PURGE_DELAY` is set).
pub(crate) fn one_shot_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: as in `main`: the option is read when memory is next purged.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ONE_SHOT_PURGE_DELAY_MS) };
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

//! `ValueAccumulator`'s memory stays under its stated bound however many values it takes.
//! Its own binary, because counting heap bytes takes a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use trackiq_stats::accumulator::SKETCH_HEAP_BOUND_BYTES;
use trackiq_stats::synthetic::Noise;
use trackiq_stats::{Precision, ValueAccumulator};

/// Values pushed: far more than any run, so that growth with length would show.
const PUSHES: usize = 10_000_000;
/// Live heap bytes are read this often.
const CHECK_EVERY: usize = 1_000_000;
/// Exact-mode limit of the test.
const EXACT_LIMIT: usize = 10_000;
/// Decades the values span: more than the sketch's buckets cover (17), so that both stores
/// reach their bin limit and collapse, the worst case for memory.
const DECADES: f64 = 30.0;

/// Counts the live heap bytes of the current thread (the test's), so that the harness's
/// threads don't blur the figure.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add_live(bytes: isize) {
    // `try_with`: allocations during the thread's teardown find no counter, and don't matter.
    let _ = LIVE.try_with(|c| c.set(c.get() + bytes));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add_live(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add_live(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

#[test]
fn memory_stays_flat_and_under_the_bound_over_ten_million_values() {
    let mut noise = Noise::new(7);
    // Allocated before the count starts, so that only the accumulator is measured.
    let mut checkpoints = Vec::with_capacity(PUSHES / CHECK_EVERY);
    let before = live();
    let mut acc = ValueAccumulator::new(EXACT_LIMIT);
    let mut peak_exact = 0;
    for i in 1..=PUSHES {
        // ±10^(−15 … 15): both signs, 30 decades.
        let magnitude = 10f64.powf(DECADES * (noise.uniform() - 0.5));
        acc.push(if noise.uniform() < 0.5 { -magnitude } else { magnitude });
        if i <= EXACT_LIMIT {
            peak_exact = peak_exact.max(live() - before);
        }
        if i % CHECK_EVERY == 0 {
            checkpoints.push(live() - before);
        }
    }
    let exact_bound = (EXACT_LIMIT * size_of::<f64>()) as isize;
    assert!(peak_exact <= exact_bound, "exact mode used {peak_exact} bytes, bound {exact_bound}");

    let bound = SKETCH_HEAP_BOUND_BYTES as isize;
    assert!(checkpoints.iter().all(|&b| b <= bound), "sketch mode over {bound} bytes: {checkpoints:?}");
    // Flat: the buckets are all there after the first million values and nothing grows after.
    assert!(checkpoints.iter().all(|&b| b == checkpoints[0]), "memory grew: {checkpoints:?}");

    let summary = acc.summary(20).unwrap();
    assert_eq!(summary.summary.count, PUSHES);
    assert!(matches!(summary.precision, Precision::Sketched { .. }));
    eprintln!("heap bytes at each million values: {checkpoints:?} (bound {bound})");
}

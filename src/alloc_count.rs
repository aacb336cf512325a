//! A counting global allocator for measurement builds (`--features count-allocs`): wraps
//! mimalloc and counts allocations per thread, so a bench or test can assert that the steady
//! state of a request path allocates nothing. Never compiled into the default binary.
//!
//! This is the crate's only unsafe code: implementing `GlobalAlloc` is unsafe by definition.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
    static IGNORED: Cell<bool> = const { Cell::new(false) };
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// How many of the next allocations (by counted threads) print their backtrace to stderr.
static TRACE: AtomicU64 = AtomicU64::new(0);

/// Prints the backtrace of each of the next `n` allocations made by counted threads: the way to
/// find where a path allocates (`cargo test --features count-allocs --test alloc`).
pub fn trace_next(n: u64) {
    TRACE.store(n, Ordering::SeqCst);
}

fn trace() {
    if TRACE.load(Ordering::Relaxed) == 0 || TRACING.try_with(|t| t.replace(true)).unwrap_or(true) {
        return;
    }
    if TRACE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        eprintln!("allocation:\n{}", std::backtrace::Backtrace::force_capture());
    }
    let _ = TRACING.try_with(|t| t.set(false));
}

/// Allocations by every thread that did not call [`ignore_this_thread`].
static TOTAL: AtomicU64 = AtomicU64::new(0);

fn count() {
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    if !IGNORED.try_with(Cell::get).unwrap_or(true) {
        TOTAL.fetch_add(1, Ordering::Relaxed);
        trace();
    }
}

/// Leaves the calling thread's allocations out of [`total`] (a test's client thread).
pub fn ignore_this_thread() {
    IGNORED.with(|i| i.set(true));
}

/// Allocations by all counted threads so far.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Bytes allocated and not yet freed, by every thread (the sizes asked for, not mimalloc's size
/// classes): what a test reads to tell what an idle connection holds.
static LIVE: AtomicI64 = AtomicI64::new(0);

fn grow(by: usize) {
    LIVE.fetch_add(by as i64, Ordering::Relaxed);
}

fn shrink(by: usize) {
    LIVE.fetch_sub(by as i64, Ordering::Relaxed);
}

/// Heap bytes live now, all threads together.
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// mimalloc plus a per-thread allocation counter and a process-wide count of live bytes.
pub struct Counting;

// SAFETY: every method forwards to mimalloc with the caller's arguments unchanged; the counter is
// a thread-local Cell, touched with `try_with` so allocation during thread teardown is safe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        grow(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from this allocator (mimalloc) with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        grow(layout.size());
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        let moved = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            grow(new_size);
            shrink(layout.size());
        }
        moved
    }
}

/// Allocations made by the calling thread so far.
pub fn allocations() -> u64 {
    COUNT.with(Cell::get)
}

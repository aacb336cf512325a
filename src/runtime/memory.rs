//! Giving freed memory back to the system. mimalloc returns the pages a thread freed only after
//! a delay (1 s), and only when that thread calls into the allocator in certain ways; a worker
//! whose connections went idle makes no such calls, so the buffers and request pipelines they
//! freed stayed resident. Each worker calls [`release_freed`] once a second, after trimming its
//! spare buffers.
//!
//! This and `alloc_count` are the crate's only unsafe code: a call into mimalloc's C API.
#![allow(unsafe_code)]

/// Lets mimalloc purge the calling thread's freed pages whose delay has passed (cheap: it walks
/// the thread's own non-full pages; nothing when mimalloc is not the allocator in use).
pub fn release_freed() {
    // SAFETY: `mi_collect` has no preconditions: any thread may call it at any time, and it
    // touches only the calling thread's heap and the process's arenas, under their own locks.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

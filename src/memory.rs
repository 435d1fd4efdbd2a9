//! The process's memory: keeping glibc's malloc from holding on to what a long run frees.
//!
//! A long export allocates and frees the same shapes over and over (a page of users, a
//! window's batch, a connection's read buffer grown to a page), and glibc keeps freed memory
//! in the arena that freed it for reuse. Measured on an export with no rate limit: the heap in
//! use peaked at 21 MiB at 100,000 users and 18 MiB at a million (heaptrack), while the peak
//! RSS went from 36 to 41 MiB: the growth was memory freed and not given back. Two arenas, and
//! free pages handed back to the kernel every few windows, keep it flat. Elsewhere (musl,
//! macOS) these do nothing.

/// Caps glibc's malloc at two arenas, unless `MALLOC_ARENA_MAX` says otherwise.
///
/// glibc gives each thread that allocates an arena of its own, up to eight per core, and the
/// runtime's blocking pool (file writes, fsyncs) starts and ends threads all the time: each
/// arena keeps its own free memory. Called before the runtime starts any thread.
pub fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Hands the free pages of every arena back to the kernel. It walks every arena's free lists:
/// call it every few batches, not every request.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}

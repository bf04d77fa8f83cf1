//! Gives the heap's free memory back to the system. glibc's malloc keeps freed memory for
//! reuse (in every thread's arena), so after a burst — a big record built, a saturation
//! phase, many slow clients gone — the proxy would otherwise keep its peak for good.

/// Returns the free pages of every arena to the system (`malloc_trim(0)`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() {
    // SAFETY: malloc_trim takes a byte count and touches only the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() {}

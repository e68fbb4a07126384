//! Keeping the resident size small on glibc.
//!
//! glibc gives each thread that allocates its own arena (up to 8 per core)
//! and keeps freed memory in them. A sidecar that parses a 10k-monitor file
//! (serde_yaml holds every event of the document at once) and runs checks on
//! several threads would keep tens of MB it no longer uses. Two arenas cut
//! the resident size of 10k monitors by about a fifth (see the README's
//! benchmark).

/// Call once at start-up, before threads are spawned.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

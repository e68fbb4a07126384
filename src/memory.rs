//! Keeping the resident size small on glibc.
//!
//! glibc gives each thread that allocates its own arena (up to 8 per core)
//! and keeps freed memory in them. A sidecar that parses a 10k-monitor file
//! (serde_yaml holds every event of the document at once) and runs checks on
//! several threads would keep tens of MB it no longer uses. Two arenas cut
//! the resident size of 10k monitors by about a fifth (see the README's
//! benchmark).

/// Call once at start-up, before threads are spawned.
///
/// Also fixes glibc's mmap threshold at 128 KiB. By default glibc raises it
/// to the size of any mmapped block that is freed (up to 32 MiB), after which
/// large buffers (sled's among them) come from the heap, between long-lived
/// small allocations, and stay resident until a trim. A fixed threshold keeps
/// them in their own mappings, returned to the kernel when freed: about 2 MB
/// less resident in the first minutes at 10k monitors (README, Benchmark).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Allocations at least this large get their own mapping (see [`tune_allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Give freed heap pages back to the kernel.
///
/// A reload builds the whole new declared set (and serde's event list) before
/// the old one is dropped; glibc keeps those freed pages, so without a trim the
/// resident size after the first reload stays at the reload's peak. Called
/// after each reload and reconcile pass, and every 30 s by
/// [`trim_periodically`]; its cost (a walk over free chunks, about a
/// millisecond at 10k monitors) does not matter at that rate.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Call [`release_free_pages`] every `every`, forever.
///
/// Each check writes to sled, whose copy-on-write nodes free as much as they
/// allocate: glibc keeps those freed chunks, so without a trim the resident
/// size creeps up (about 1 MB a minute at 10k monitors, measured) though
/// the live heap does not grow. A trim costs about a millisecond.
pub async fn trim_periodically(every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let _ = tokio::task::spawn_blocking(release_free_pages).await;
    }
}

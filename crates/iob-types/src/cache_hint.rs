//! Asking the CPU to start loading memory that is about to be read: the hot paths use it to
//! overlap the cache misses of a whole batch (dedup slots, person ciphers) instead of paying
//! them one after another. A hint only: it never changes a result and never faults, so it must
//! never be used for anything but speed.

/// Prefetches the cache lines covering `bytes` bytes from `at` (any address: nothing is read).
#[inline]
pub fn prefetch(at: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..bytes.max(1)).step_by(64) {
        // SAFETY: `_mm_prefetch` only hints the cache hierarchy and never faults, whatever the
        // address; SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                at.wrapping_add(line).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, bytes);
}

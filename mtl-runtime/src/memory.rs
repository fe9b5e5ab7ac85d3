//! Large zero-filled buffers: embedding tables and their optimizer state.
//!
//! They are allocated fallibly (a table that does not fit is an error naming it, not an abort)
//! and, on Linux, backed by transparent huge pages (`madvise(MADV_HUGEPAGE)`, asked before the
//! first touch): a step reads and writes a few thousand random rows of tables that can span
//! gigabytes, and with 4 KiB pages nearly every row access also misses the TLB. Where the
//! system does not offer huge pages the advice is ignored and nothing else changes.

use std::alloc::Layout;

/// Below this size the advice is not worth a system call.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// `n` zeroes of `T` (a plain number type), or `None` when the memory cannot be had.
pub(crate) fn zeroed<T: Copy + Default>(n: usize) -> Option<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Some(vec![T::default(); n]);
    }
    let layout = Layout::array::<T>(n).ok()?;
    // SAFETY: `layout` has a non-zero size. The allocation is zero-filled, and all-zero bytes
    // are `T::default()` for the number types this is used with (f32, u32). On success the
    // pointer, length and capacity are exactly those of a `Vec<T>` allocated by the global
    // allocator with this layout.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut T;
        if p.is_null() {
            return None;
        }
        advise_huge_pages(p as *mut u8, layout.size());
        Some(Vec::from_raw_parts(p, n, n))
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(p: *mut u8, bytes: usize) {
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    // madvise wants a page-aligned start: advise the whole pages inside the buffer.
    let page = 4096;
    let start = (p as usize).div_ceil(page) * page;
    let end = (p as usize + bytes) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made; MADV_HUGEPAGE only changes
        // how the kernel backs the range, never its contents. A failure (no THP support) is
        // harmless and ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_p: *mut u8, _bytes: usize) {
    let _ = HUGE_PAGE_MIN_BYTES;
}

/// Memory this process can still get, in bytes (`MemAvailable + SwapFree` on Linux); `None`
/// where it is not known.
pub(crate) fn available_bytes() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |key: &str| -> Option<u128> {
        let line = info.lines().find(|l| l.starts_with(key))?;
        let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some(field("MemAvailable:")? + field("SwapFree:").unwrap_or(0))
}

/// `bytes` in a unit a person reads (`1.35 GB`).
pub(crate) fn human_bytes(bytes: u128) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999_999 => format!("{:.1} KB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b / 1e6),
        1_000_000_000..=999_999_999_999 => format!("{:.2} GB", b / 1e9),
        _ => format!("{:.1} TB", b / 1e12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_and_impossible_sizes_are_refused() {
        let v: Vec<f32> = zeroed(3 << 20).unwrap();
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 0.0));
        assert!(zeroed::<f32>(usize::MAX / 2).is_none());
        assert_eq!(zeroed::<u32>(0).unwrap(), Vec::<u32>::new());
    }
}

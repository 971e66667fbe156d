//! Resident memory from `/proc/self/statm`.

/// Bytes per page on the platforms this is run on (x86-64 and aarch64 Linux with 4 KiB pages).
pub const PAGE_SIZE: u64 = 4096;

/// Resident set size in bytes (second field of `/proc/self/statm`), or `None` where there is no
/// procfs.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_SIZE)
}

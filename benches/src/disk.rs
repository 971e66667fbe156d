//! What a store takes on disk: the files under a path, and a compacted copy of a redb file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes of the files under a path (the path itself if it is a file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Sum of the files' lengths.
    pub apparent: u64,
    /// Sum of the blocks the files occupy (`st_blocks` × 512): less than `apparent` for sparse
    /// files, more for files whose last block is partly used.
    pub allocated: u64,
    /// Number of files.
    pub files: usize,
}

impl DiskUsage {
    /// The usage of `path`, recursively. Symlinks are not followed.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Ok(Self {
                apparent: meta.len(),
                allocated: meta.blocks() * 512,
                files: 1,
            });
        }
        let mut total = Self::default();
        for entry in std::fs::read_dir(path)? {
            let u = Self::of(&entry?.path())?;
            total.apparent += u.apparent;
            total.allocated += u.allocated;
            total.files += u.files;
        }
        Ok(total)
    }
}

/// Copies the redb file `from` to `to` and compacts the copy with redb's
/// [`Database::compact`](redb::Database::compact) until it shrinks no more; returns the copy's
/// usage. The original is left as it is.
pub fn compacted_redb_copy(from: &Path, to: &Path) -> Result<DiskUsage, String> {
    std::fs::copy(from, to).map_err(|e| e.to_string())?;
    {
        let mut db = redb::Database::open(to).map_err(|e| e.to_string())?;
        while db.compact().map_err(|e| e.to_string())? {}
    }
    DiskUsage::of(to).map_err(|e| e.to_string())
}

//! Recovery at open: a redb file whose creation a crash interrupted.
//!
//! redb 4.6 creates a database file in steps (`TransactionalMemory::new`): it sizes the empty
//! file (zeros), writes the 320-byte header *without* its magic number, `fsync`s, then writes
//! the magic number and `fsync`s again, so that a half-made file is never taken for a database.
//! But every later open (`create` included) refuses a non-empty file without the magic number
//! ("Not a redb database: magic number mismatch"), so a process killed between the sizing and
//! the magic number leaves a file that never opens again: the store is bricked at its very
//! first start, although it never held anything. The kill harness
//! (`tests/kill_lifecycle.rs`, `kill_redb_lifecycle`) found it: a child killed while it created
//! a fresh store.
//!
//! [`is_unfinished`] recognises such a file, and nothing else: its magic number is all zeros,
//! every byte after the header is zero (a creation writes nothing there before its magic
//! number; any commit writes pages there), and it is at most [`MAX_UNFINISHED`] bytes (a
//! creation makes a file of a few pages). Anything redb wrote a record into, a foreign file and
//! a damaged store stay as they are and keep failing with their error.
//!
//! [`RedbStore::open`](super::RedbStore::open) removes an unfinished file and creates the store
//! afresh, holding [`DirLock`] from before the removal until the new file is made (so two
//! keyward processes never both remove and re-create it), and only after redb itself, asked
//! again under that lock, still finds no one holding the file (a process initialising it holds
//! redb's lock; and no process starts initialising a file that is not empty).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::StoreError;
use crate::lock_wait::LockWait;

/// redb's header: the magic number (9 bytes), the god byte, the layout, two commit slots.
const HEADER: usize = 320;
/// The magic number's length; it is the header's first bytes.
const MAGIC: usize = 9;
/// The largest file taken for an unfinished creation (redb makes a new file of a few pages).
pub(super) const MAX_UNFINISHED: u64 = 1 << 20;

/// Whether `path` is a redb file whose creation a crash interrupted (see the module
/// documentation). Any error reading it (a missing file included) answers `false`.
pub(super) fn is_unfinished(path: &Path) -> bool {
    let read = || -> io::Result<bool> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        if len <= MAGIC as u64 || len > MAX_UNFINISHED {
            return Ok(false);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes)?;
        Ok(bytes[..MAGIC].iter().all(|b| *b == 0)
            && bytes.get(HEADER..).unwrap_or(&[]).iter().all(|b| *b == 0))
    };
    read().unwrap_or(false)
}

/// Removes the unfinished file at `path` and makes the removal durable. Returns its size.
pub(super) fn remove(path: &Path) -> Result<u64, StoreError> {
    let io = |what: &str, e: io::Error| StoreError::Backend {
        message: format!("{what} {}: {e}", path.display()),
    };
    let len = fs::metadata(path).map_err(|e| io("cannot read", e))?.len();
    fs::remove_file(path).map_err(|e| io("cannot remove the unfinished store file", e))?;
    File::open(parent(path))
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory of", e))?;
    Ok(len)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An exclusive `flock` of the directory holding a store file, held by an open that removes
/// an unfinished file until it has created the new one.
pub(super) struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Takes the lock, retrying every `pause` for up to `wait`; [`StoreError::InUse`] after.
    pub(super) fn acquire(
        path: &Path,
        wait: Duration,
        pause: Duration,
    ) -> Result<Self, StoreError> {
        let dir = parent(path);
        let file = File::open(&dir).map_err(|e| StoreError::Backend {
            message: format!("cannot open the directory {}: {e}", dir.display()),
        })?;
        let lock_wait = LockWait::new(wait, pause);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _dir: file }),
                Err(std::fs::TryLockError::WouldBlock) => lock_wait.pause(path)?,
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::Backend {
                        message: format!("cannot lock the directory {}: {e}", dir.display()),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Unfinished files built by hand next to real stores, then opened.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::redb::RedbStore;
    use crate::{Store, conformance};

    /// A real store's first `HEADER` bytes, and the length redb gives a new file.
    fn real_header(dir: &Path) -> (Vec<u8>, usize) {
        let path = dir.join("real.redb");
        drop(RedbStore::open(&path).unwrap());
        let bytes = fs::read(&path).unwrap();
        (bytes[..HEADER].to_vec(), bytes.len())
    }

    /// What a creation killed at each step leaves: sized but empty, and the header written
    /// without its magic number.
    fn unfinished_files(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
        let (header, len) = real_header(dir);
        let mut without_magic = header;
        without_magic[..MAGIC].fill(0);
        without_magic.resize(len, 0);
        vec![("sized", vec![0; len]), ("header", without_magic)]
    }

    #[test]
    fn an_unfinished_file_is_removed_and_the_store_created_afresh() {
        let dir = tempfile::tempdir().unwrap();
        for (step, bytes) in unfinished_files(dir.path()) {
            let path = dir.path().join(format!("{step}.redb"));
            fs::write(&path, &bytes).unwrap();
            assert!(is_unfinished(&path), "{step}");
            let e = ::redb::Database::create(&path).err().unwrap();
            assert!(e.to_string().contains("magic number"), "redb alone: {e}");

            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.unfinished_file_removed(), Some(bytes.len() as u64));
            let cred = conformance::put(&store, &conformance::credential("acc_unfinished"));
            drop(store);
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.unfinished_file_removed(), None, "{step}");
            assert_eq!(store.get(&cred.id).unwrap(), Some(cred), "{step}");
        }
    }

    #[test]
    fn a_file_with_anything_after_its_header_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        // A real store whose magic number was lost: its tables are past the header.
        let path = dir.path().join("damaged.redb");
        let store = RedbStore::open(&path).unwrap();
        conformance::put(&store, &conformance::credential("acc_damaged"));
        drop(store);
        let mut bytes = fs::read(&path).unwrap();
        bytes[..MAGIC].fill(0);
        fs::write(&path, &bytes).unwrap();
        // One byte past the header in an otherwise unfinished file; a foreign file.
        let (_, mut one_byte) = unfinished_files(dir.path()).pop().unwrap();
        one_byte[HEADER + 100] = 1;
        let cases = [
            ("damaged.redb", bytes),
            ("one_byte.redb", one_byte),
            ("text.redb", b"not a database\n".repeat(400)),
            ("huge.redb", vec![0; MAX_UNFINISHED as usize + 1]),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            fs::write(&path, &content).unwrap();
            assert!(!is_unfinished(&path), "{name}");
            assert!(RedbStore::open(&path).is_err(), "{name}");
            assert_eq!(fs::read(&path).unwrap(), content, "{name}");
        }
    }

    #[test]
    fn a_missing_or_tiny_file_is_not_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        assert!(!is_unfinished(&path));
        fs::write(&path, [0; MAGIC]).unwrap();
        assert!(!is_unfinished(&path));
    }

    #[test]
    fn the_directory_lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let pause = Duration::from_millis(5);
        let held = DirLock::acquire(&path, Duration::ZERO, pause).unwrap();
        let e = DirLock::acquire(&path, Duration::from_millis(20), pause)
            .err()
            .unwrap();
        assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
        drop(held);
        DirLock::acquire(&path, Duration::ZERO, pause).unwrap();
    }
}

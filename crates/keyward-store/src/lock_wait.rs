//! Waiting for a store another handle holds: an open retries for under a second, then answers
//! [`StoreError::InUse`], never hangs.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::StoreError;

/// How long an open keeps trying a store another handle holds.
pub(crate) const LOCK_WAIT: Duration = Duration::from_millis(900);
/// The pause between tries.
pub(crate) const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Tries of a held lock, `pause` apart, for up to `wait` from the first.
pub(crate) struct LockWait {
    started: Instant,
    wait: Duration,
    pause: Duration,
}

impl LockWait {
    /// Starts waiting now.
    pub(crate) fn new(wait: Duration, pause: Duration) -> Self {
        Self {
            started: Instant::now(),
            wait,
            pause,
        }
    }

    /// Starts an open's wait now: [`LOCK_WAIT`], [`LOCK_RETRY_PAUSE`] apart.
    pub(crate) fn open() -> Self {
        Self::new(LOCK_WAIT, LOCK_RETRY_PAUSE)
    }

    /// After a try found the lock held: sleeps a pause if the next try still fits in the wait,
    /// else [`StoreError::InUse`] naming `path`.
    pub(crate) fn pause(&self, path: &Path) -> Result<(), StoreError> {
        if self.started.elapsed() + self.pause > self.wait {
            return Err(StoreError::InUse {
                what: path.display().to_string(),
            });
        }
        std::thread::sleep(self.pause);
        Ok(())
    }
}

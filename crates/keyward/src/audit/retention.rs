//! Retention: how much of the log [`Keyward::sweep`] keeps, and the trim it makes.

use std::time::Duration;

use keyward_core::Timestamp;
use keyward_store::Store;

use super::codec::{decode, link};
use super::log::Call;
use super::{Action, EventHash};
use crate::engine::Keyward;
use crate::error::EngineError;

/// Events read from the store per batch while looking for the age cut.
const BATCH: usize = 1000;

/// How much of the audit log [`Keyward::sweep`] keeps. The default keeps everything: an audit
/// log that silently forgets is worse than one that grows, and an event is small (a couple of
/// hundred bytes); set a bound when the deployment's rate of management calls makes that matter.
///
/// ```
/// use std::time::Duration;
/// use keyward::audit::Retention;
/// let r = Retention::default()
///     .with_max_age(Duration::from_secs(400 * 24 * 3600))
///     .with_max_count(1_000_000);
/// assert_eq!(r.max_count, Some(1_000_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Remove events older than this (by their time).
    pub max_age: Option<Duration>,
    /// Keep at most this many events: once the log holds more, a sweep trims it to this many,
    /// its own trim event included (at least 1).
    pub max_count: Option<u64>,
}

impl Retention {
    /// Sets the maximum age.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Sets the maximum count.
    pub fn with_max_count(mut self, max_count: u64) -> Self {
        self.max_count = Some(max_count);
        self
    }
}

impl Keyward {
    /// Applies the retention policy at `now` on behalf of `call` (a sweep): if events are due
    /// for removal, appends a trim event naming the last one removed and its hash, then removes
    /// them. Returns how many were removed.
    pub(crate) fn apply_retention(
        &self,
        call: &Call<'_>,
        now: Timestamp,
    ) -> Result<usize, EngineError> {
        let retention = self.inner.audit.retention;
        if retention.max_age.is_none() && retention.max_count.is_none() {
            return Ok(0);
        }
        let store = self.inner.store.backend();
        let (Some(first), Some(last)) = (store.events(0, 1)?.first().cloned(), store.last_event()?)
        else {
            return Ok(0);
        };
        let mut up_to = 0;
        if let Some(max) = retention.max_count {
            let max = max.max(1);
            if last.seq - first.seq + 1 > max {
                // The trim event will be the newest: keep it and `max - 1` before it.
                up_to = up_to.max(last.seq - (max - 1));
            }
        }
        if let Some(age) = retention.max_age {
            up_to = up_to.max(self.older_than(store, now.saturating_sub(age), last.seq)?);
        }
        // Never the newest (the store would not remove it anyway).
        let up_to = up_to.min(last.seq);
        if up_to < first.seq {
            return Ok(0);
        }
        let named = store.events(up_to - 1, 1)?;
        let Some(named) = named.first().filter(|e| e.seq == up_to) else {
            return Ok(0);
        };
        let hash: EventHash = link(self.inner.audit.key(), named);
        let trim = call.with_action(Action::Trim { up_to, hash });
        self.append_event(&trim.done(now))?;
        Ok(store.trim_events(up_to)?)
    }

    /// The last sequence number (up to `last`) of the leading run of events older than
    /// `cutoff`, 0 if none. Events are in time order but for clock steps; the first event at or
    /// after the cutoff ends the run.
    fn older_than(
        &self,
        store: &dyn Store,
        cutoff: Timestamp,
        last: u64,
    ) -> Result<u64, EngineError> {
        let mut after = 0;
        let mut up_to = 0;
        loop {
            let batch = store.events(after, BATCH)?;
            for entry in &batch {
                if entry.seq > last {
                    return Ok(up_to);
                }
                after = entry.seq;
                match decode(entry) {
                    Ok(e) if e.at < cutoff => up_to = e.seq,
                    // An undecodable event is kept: it may be evidence.
                    _ => return Ok(up_to),
                }
            }
            if batch.len() < BATCH {
                return Ok(up_to);
            }
        }
    }
}

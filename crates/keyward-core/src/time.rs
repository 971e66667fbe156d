//! Timestamps: milliseconds since the Unix epoch, RFC 3339 in text.

use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// A point in time, in milliseconds since the Unix epoch (UTC). Displayed as RFC 3339 with
/// millisecond precision, e.g. `2024-06-30T01:02:29.212Z`.
///
/// ```
/// use keyward_core::Timestamp;
/// let t: Timestamp = "2024-06-30T01:02:29.212Z".parse().unwrap();
/// assert_eq!(t.to_string(), "2024-06-30T01:02:29.212Z");
/// assert_eq!(t.as_millis(), 1_719_709_349_212);
/// ```
///
/// Serialised as the integer number of milliseconds; deserialising refuses a value outside
/// `[EPOCH, MAX]`, so a corrupt record cannot smuggle in a time that cannot be displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Timestamp(i64);

/// Latest supported instant: 9999-12-31T23:59:59.999Z.
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(MAX_MILLIS);

    /// From milliseconds since the epoch; clamped to `[EPOCH, MAX]`.
    pub const fn from_millis(ms: i64) -> Self {
        Self(if ms < 0 {
            0
        } else if ms > MAX_MILLIS {
            MAX_MILLIS
        } else {
            ms
        })
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current system time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(MAX_MILLIS))
            .unwrap_or(0);
        Self::from_millis(ms)
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self::from_millis(self.0.saturating_add(ms))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self::from_millis(self.0.saturating_sub(ms))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

impl TryFrom<i64> for Timestamp {
    type Error = ModelError;
    /// Milliseconds since the epoch; refuses values outside `[EPOCH, MAX]` (unlike
    /// [`Timestamp::from_millis`], which clamps).
    fn try_from(ms: i64) -> Result<Self, ModelError> {
        if (0..=MAX_MILLIS).contains(&ms) {
            Ok(Self(ms))
        } else {
            Err(ModelError::InvalidTimestamp)
        }
    }
}

impl From<Timestamp> for i64 {
    fn from(t: Timestamp) -> i64 {
        t.0
    }
}

/// Whether `s` has the shape `YYYY-MM-DD(T| )HH:MM:SS[.digits][Z|+00:00]`: the subset of
/// RFC 3339 that is UTC. `humantime`'s weak parser alone accepts trailing bytes after `Z`, an
/// empty fraction, and silently ignores a non-UTC offset after a fraction; this check runs first.
fn utc_rfc3339_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(mut rest) = b.get(19..) else {
        return false;
    };
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &tail[digits..];
    }
    matches!(rest, b"" | b"Z" | b"+00:00")
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&humantime::format_rfc3339_millis(self.to_system_time()), f)
    }
}

impl core::str::FromStr for Timestamp {
    type Err = ModelError;
    /// Parses RFC 3339 (`2027-01-01T00:00:00Z`, fractional seconds allowed, UTC only: the
    /// offset is `Z`, `+00:00` or absent; any other offset or trailing text is refused).
    /// Sub-millisecond digits are truncated.
    fn from_str(s: &str) -> Result<Self, ModelError> {
        if s.len() > 64 || !utc_rfc3339_shape(s) {
            return Err(ModelError::InvalidTimestamp);
        }
        let t = humantime::parse_rfc3339_weak(s).map_err(|_| ModelError::InvalidTimestamp)?;
        let d = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ModelError::InvalidTimestamp)?;
        let ms = i64::try_from(d.as_millis()).map_err(|_| ModelError::InvalidTimestamp)?;
        if ms > MAX_MILLIS {
            return Err(ModelError::InvalidTimestamp);
        }
        Ok(Self(ms))
    }
}

//! The export format: the codec behind [`Keyward::export`](crate::Keyward::export) and
//! [`Keyward::import`](crate::Keyward::import). Specified field by field, with its versioning
//! policy, in `docs/export-format.md`.
//!
//! JSON Lines: a header line, one line per credential, a trailer line.
//!
//! ```text
//! {"format":"keyward-export","version":1,"created_at":"…","pepper_id":"…","namespace":null}
//! {"id":"key_…","account":"acc_1",…,"secrets":[{"version":1,"lookup":"…","digest":"…",…}]}
//! {"end":true,"count":1,"digest":"…"}
//! ```
//!
//! The record lines are explicit structs of this module, not the core model serialised
//! directly, so that a change to the model cannot silently change the format. They carry digests
//! and public lookup tags, never a key.

use core::fmt;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, Read, Write};

use keyward_core::{
    AccountId, Credential, CredentialId, Digest, Environment, KeyType, LookupTag, Metadata, Name,
    Permission, PermissionSet, SecretVersion, Timestamp,
};
use keyward_store::StoreError;

use crate::EngineError;
use serde::{Deserialize, Serialize};

/// The `format` of every export header.
pub const FORMAT_NAME: &str = "keyward-export";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The longest line an import accepts, in bytes (a credential with the most metadata the model
/// allows is about 30 KiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

// ----- lines --------------------------------------------------------------------------------

/// Line 1.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    created_at: String,
    pepper_id: String,
    namespace: Option<String>,
}

/// What of the header every version keeps, to tell a newer version from a damaged header.
#[derive(Deserialize)]
struct HeaderPrelude {
    format: Option<String>,
    version: Option<u64>,
}

/// One credential.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: String,
    account: String,
    environment: String,
    #[serde(rename = "type")]
    key_type: String,
    name: String,
    permissions: Vec<String>,
    metadata: BTreeMap<String, String>,
    created_at: String,
    modified_at: String,
    expires_at: Option<String>,
    enabled: bool,
    secrets: Vec<Secret>,
}

/// One secret version of a credential.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Secret {
    version: u32,
    lookup: String,
    digest: String,
    not_before: String,
    not_after: Option<String>,
    created_at: String,
    revoked_at: Option<String>,
}

/// The last line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    end: bool,
    count: u64,
    digest: String,
}

fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Lowercase hexadecimal only: one spelling per value, so a re-export is byte-identical.
fn from_hex_32(s: &str) -> Option<[u8; 32]> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

impl Record {
    fn from_credential(c: &Credential) -> Self {
        Self {
            id: c.id.to_string(),
            account: c.account.to_string(),
            environment: c.environment.to_string(),
            key_type: c.key_type.as_str().to_owned(),
            name: c.name.to_string(),
            permissions: c
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            metadata: c.metadata.as_map().clone(),
            created_at: c.created_at.to_string(),
            modified_at: c.modified_at.to_string(),
            expires_at: c.expires_at.map(|t| t.to_string()),
            enabled: c.enabled,
            secrets: c
                .secrets
                .iter()
                .map(|s| Secret {
                    version: s.version,
                    lookup: s.lookup.as_str().to_owned(),
                    digest: to_hex(s.digest.as_bytes()),
                    not_before: s.not_before.to_string(),
                    not_after: s.not_after.map(|t| t.to_string()),
                    created_at: s.created_at.to_string(),
                    revoked_at: s.revoked_at.map(|t| t.to_string()),
                })
                .collect(),
        }
    }

    /// The credential this record describes (revision 0), or why it is not a valid one.
    fn into_credential(self) -> Result<Credential, String> {
        fn field<T, E: fmt::Display>(name: &str, r: Result<T, E>) -> Result<T, String> {
            r.map_err(|e| format!("{name}: {e}"))
        }
        fn time(name: &str, s: &str) -> Result<Timestamp, String> {
            field(name, s.parse::<Timestamp>())
        }
        fn opt_time(name: &str, s: Option<&str>) -> Result<Option<Timestamp>, String> {
            s.map(|s| time(name, s)).transpose()
        }
        let key_type: KeyType = field("type", self.key_type.parse())?;
        if key_type.as_str() != self.key_type {
            return Err("type: expected publishable, secret or restricted".into());
        }
        let permissions = self
            .permissions
            .iter()
            .map(|p| field("permissions", Permission::parse(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut secrets = Vec::with_capacity(self.secrets.len());
        for s in self.secrets {
            if secrets
                .last()
                .is_some_and(|prev: &SecretVersion| prev.version >= s.version)
                || s.version == 0
            {
                return Err("secrets: versions must start at 1 or more and increase".into());
            }
            secrets.push(SecretVersion {
                version: s.version,
                lookup: LookupTag::new(s.lookup.as_bytes())
                    .ok_or_else(|| "secrets.lookup: not a lookup tag".to_owned())?,
                digest: Digest::from_bytes(from_hex_32(&s.digest).ok_or_else(|| {
                    "secrets.digest: expected 64 lowercase hexadecimal characters".to_owned()
                })?),
                not_before: time("secrets.not_before", &s.not_before)?,
                not_after: opt_time("secrets.not_after", s.not_after.as_deref())?,
                created_at: time("secrets.created_at", &s.created_at)?,
                revoked_at: opt_time("secrets.revoked_at", s.revoked_at.as_deref())?,
            });
        }
        if secrets.is_empty() {
            return Err("secrets: a credential has at least one".into());
        }
        let mut tags = HashSet::new();
        if !secrets.iter().all(|s| tags.insert(s.lookup)) {
            return Err("secrets: a lookup tag appears twice".into());
        }
        let cred = Credential {
            id: field("id", self.id.parse::<CredentialId>())?,
            account: field("account", self.account.parse::<AccountId>())?,
            environment: field("environment", self.environment.parse::<Environment>())?,
            key_type,
            name: field("name", self.name.parse::<Name>())?,
            permissions: PermissionSet::from(permissions),
            metadata: field("metadata", Metadata::try_from(self.metadata))?,
            created_at: time("created_at", &self.created_at)?,
            modified_at: time("modified_at", &self.modified_at)?,
            expires_at: opt_time("expires_at", self.expires_at.as_deref())?,
            enabled: self.enabled,
            revision: 0,
            secrets,
        };
        cred.validate().map_err(|e| e.to_string())?;
        Ok(cred)
    }
}

// ----- summaries and options ----------------------------------------------------------------

/// What [`Keyward::export`](crate::Keyward::export) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Credentials written.
    pub count: usize,
    /// The trailer's digest (blake3 of every line before it), lowercase hexadecimal.
    pub digest: String,
    /// The header's pepper fingerprint ([`keyward_core::Pepper::fingerprint`]).
    pub pepper_id: String,
}

/// How [`Keyward::import_with`](crate::Keyward::import_with) treats a file from another
/// deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Import even if the file's pepper fingerprint or namespace differs from this
    /// deployment's. The imported keys cannot verify here then (their digests were made with
    /// another pepper, or they carry another namespace); the records are kept for their
    /// history only.
    pub force: bool,
}

/// What [`Keyward::import`](crate::Keyward::import) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Credentials in the file.
    pub records: usize,
    /// Credentials written.
    pub imported: usize,
    /// Credentials already present with identical content (a re-import), left as they were.
    pub skipped: usize,
}

// ----- errors -------------------------------------------------------------------------------

/// Why an export failed. The stream written so far has no trailer, so an import refuses it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing failed.
    Io(io::Error),
    /// Reading the store failed, or a record cannot be decoded (the error names it).
    Store(StoreError),
    /// The principal may not read every account's keys ([`EngineError::Forbidden`]); nothing
    /// was written.
    Refused(EngineError),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot write the export: {e}"),
            Self::Store(e) => write!(f, "cannot read every key for the export: {e}"),
            Self::Refused(e) => write!(f, "export refused: {e}"),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Refused(e) => Some(e),
        }
    }
}

/// Why an existing credential stops an import.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictReason {
    /// A credential with this id exists with other content.
    DifferentContent,
    /// One of the record's lookup tags belongs to another stored credential.
    LookupTaken {
        /// The tag.
        lookup: LookupTag,
        /// The credential holding it.
        owner: CredentialId,
    },
    /// This deployment would not issue such a key: its permission policy refuses the
    /// permissions for the key type, or its environment tags cannot name the environment.
    NotAllowed {
        /// Why.
        reason: String,
    },
}

/// A record of the file that clashes with what the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConflict {
    /// The record's line in the file (1 is the header).
    pub line: usize,
    /// The record's credential id.
    pub id: CredentialId,
    /// The clash.
    pub reason: ConflictReason,
}

impl fmt::Display for ImportConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            ConflictReason::DifferentContent => write!(
                f,
                "line {}: {} already exists with different content",
                self.line, self.id
            ),
            ConflictReason::LookupTaken { lookup, owner } => write!(
                f,
                "line {}: {}'s lookup tag {lookup} belongs to {owner}",
                self.line, self.id
            ),
            ConflictReason::NotAllowed { reason } => {
                write!(f, "line {}: {}: {reason}", self.line, self.id)
            }
        }
    }
}

/// Why an import was refused or stopped. Every variant but [`ImportError::Interrupted`] means
/// nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum ImportError {
    /// The principal may not write every account's keys ([`EngineError::Forbidden`]);
    /// nothing was read or written.
    Refused(EngineError),
    /// Reading the input failed.
    Io(io::Error),
    /// The input is empty.
    Empty,
    /// Line 1 is not a keyward export header.
    NotAnExport,
    /// The file was written by a newer format version than this build reads.
    UnsupportedVersion {
        /// The header's version.
        found: u64,
        /// The newest this build reads.
        supported: u32,
    },
    /// A line is not what the format allows there (the reason says what).
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file was exported from a deployment with another pepper: none of its keys could
    /// verify here. See [`ImportOptions::force`].
    PepperMismatch {
        /// The file's pepper fingerprint.
        found: String,
        /// This deployment's.
        expected: String,
    },
    /// The file was exported from a deployment with another namespace: its keys would be
    /// refused here. See [`ImportOptions::force`].
    NamespaceMismatch {
        /// The file's namespace.
        found: Option<String>,
        /// This deployment's.
        expected: Option<String>,
    },
    /// The input ends before the trailer: the file is cut short.
    Truncated {
        /// Records read before the end.
        records: usize,
    },
    /// The trailer's count is not the number of records.
    CountMismatch {
        /// The trailer's count.
        declared: u64,
        /// Records in the file.
        found: usize,
    },
    /// The trailer's digest does not match the lines before it: the file was changed.
    DigestMismatch,
    /// Records clash with credentials already stored, or break this deployment's rules (every
    /// one is listed).
    Conflicts(Vec<ImportConflict>),
    /// Reading the store (to compare with what it holds) failed.
    Store(StoreError),
    /// Writing failed part way: the records in `summary` were written (a re-import skips them
    /// and writes the rest), the others were not.
    Interrupted {
        /// What was done before the failure.
        summary: ImportSummary,
        /// The failure.
        error: StoreError,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(e) => write!(f, "import refused: {e}"),
            Self::Io(e) => write!(f, "cannot read the export: {e}"),
            Self::Empty => f.write_str("the export is empty"),
            Self::NotAnExport => {
                write!(f, "line 1 is not a keyward export header ({FORMAT_NAME})")
            }
            Self::UnsupportedVersion { found, supported } => write!(
                f,
                "export format version {found} is newer than this build reads (up to \
                 {supported}): upgrade keyward"
            ),
            Self::Malformed { line, reason } => write!(f, "line {line}: {reason}"),
            Self::PepperMismatch { found, expected } => write!(
                f,
                "the export was made with another pepper (fingerprint {found}, this deployment's \
                 is {expected}): its keys could never verify here; import with the pepper it was \
                 made with, or force it"
            ),
            Self::NamespaceMismatch { found, expected } => write!(
                f,
                "the export is of namespace {} but this deployment's is {}: its keys would be \
                 refused here",
                found.as_deref().unwrap_or("(none)"),
                expected.as_deref().unwrap_or("(none)")
            ),
            Self::Truncated { records } => write!(
                f,
                "the export ends after {records} record(s) without its trailer: it is cut short"
            ),
            Self::CountMismatch { declared, found } => write!(
                f,
                "the trailer counts {declared} record(s) but the export holds {found}"
            ),
            Self::DigestMismatch => f.write_str(
                "the trailer's digest does not match the lines before it: the export was changed",
            ),
            Self::Conflicts(list) => {
                write!(
                    f,
                    "{} record(s) clash with stored keys or this deployment's rules, nothing was \
                     imported",
                    list.len()
                )?;
                for (i, c) in list.iter().enumerate() {
                    if i == 3 {
                        return write!(f, "; …");
                    }
                    write!(f, "; {c}")?;
                }
                Ok(())
            }
            Self::Store(e) => write!(f, "cannot read the store: {e}"),
            Self::Interrupted { summary, error } => write!(
                f,
                "import stopped after writing {} of {} record(s): {error} (importing the same \
                 file again skips those written)",
                summary.imported, summary.records
            ),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Store(e) | Self::Interrupted { error: e, .. } => Some(e),
            Self::Refused(e) => Some(e),
            _ => None,
        }
    }
}

// ----- writing ------------------------------------------------------------------------------

/// Writes an export, one line at a time, hashing every line for the trailer.
pub(crate) struct Writer<'a> {
    out: &'a mut dyn Write,
    hasher: blake3::Hasher,
    count: usize,
    pepper_id: String,
}

impl<'a> Writer<'a> {
    /// Writes the header.
    pub(crate) fn start(
        out: &'a mut dyn Write,
        created_at: Timestamp,
        pepper_id: String,
        namespace: Option<&str>,
    ) -> Result<Self, ExportError> {
        let mut w = Self {
            out,
            hasher: blake3::Hasher::new(),
            count: 0,
            pepper_id,
        };
        let header = Header {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            created_at: created_at.to_string(),
            pepper_id: w.pepper_id.clone(),
            namespace: namespace.map(str::to_owned),
        };
        w.line(&header, true)?;
        Ok(w)
    }

    /// Writes one credential.
    pub(crate) fn record(&mut self, c: &Credential) -> Result<(), ExportError> {
        self.line(&Record::from_credential(c), true)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the trailer and flushes.
    pub(crate) fn finish(mut self) -> Result<ExportSummary, ExportError> {
        let digest = self.hasher.finalize().to_hex().to_string();
        let trailer = Trailer {
            end: true,
            count: u64::try_from(self.count).unwrap_or(u64::MAX),
            digest: digest.clone(),
        };
        self.line(&trailer, false)?;
        self.out.flush().map_err(ExportError::Io)?;
        Ok(ExportSummary {
            count: self.count,
            digest,
            pepper_id: self.pepper_id,
        })
    }

    fn line<T: Serialize>(&mut self, value: &T, hashed: bool) -> Result<(), ExportError> {
        let mut bytes = serde_json::to_vec(value)
            .map_err(|e| ExportError::Io(io::Error::other(e.to_string())))?;
        bytes.push(b'\n');
        if hashed {
            self.hasher.update(&bytes);
        }
        self.out.write_all(&bytes).map_err(ExportError::Io)
    }
}

// ----- reading ------------------------------------------------------------------------------

/// What the importing deployment expects of a file's header.
pub(crate) struct Expected<'a> {
    pub(crate) pepper_id: &'a str,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) force: bool,
}

/// A fully read and checked export.
pub(crate) struct Parsed {
    /// Each credential with its line number, in file order.
    pub(crate) records: Vec<(usize, Credential)>,
}

/// Reads one line (with its `\n`, if any) into `buf`; `false` at the end of the input.
fn read_line(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    number: usize,
) -> Result<bool, ImportError> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
    let n = input
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(ImportError::Io)?;
    if n > MAX_LINE_BYTES {
        return Err(ImportError::Malformed {
            line: number,
            reason: format!("longer than {MAX_LINE_BYTES} bytes"),
        });
    }
    Ok(n > 0)
}

fn malformed(line: usize, e: impl fmt::Display) -> ImportError {
    ImportError::Malformed {
        line,
        reason: e.to_string(),
    }
}

/// Reads and checks a whole export: header (format, version, pepper, namespace), every record
/// (decodes into a valid credential; ids and lookup tags unique), trailer (count and digest),
/// nothing after it. Writes nothing anywhere.
pub(crate) fn read(
    input: &mut dyn BufRead,
    expected: &Expected<'_>,
) -> Result<Parsed, ImportError> {
    let mut buf = Vec::new();
    let mut hasher = blake3::Hasher::new();

    // Header.
    if !read_line(input, &mut buf, 1)? {
        return Err(ImportError::Empty);
    }
    let prelude: HeaderPrelude =
        serde_json::from_slice(&buf).map_err(|_| ImportError::NotAnExport)?;
    if prelude.format.as_deref() != Some(FORMAT_NAME) {
        return Err(ImportError::NotAnExport);
    }
    match prelude.version {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(ImportError::UnsupportedVersion {
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        _ => return Err(malformed(1, "the header's version is not a supported one")),
    }
    let header: Header = serde_json::from_slice(&buf).map_err(|e| malformed(1, e))?;
    header
        .created_at
        .parse::<Timestamp>()
        .map_err(|e| malformed(1, format_args!("created_at: {e}")))?;
    if !expected.force {
        if header.pepper_id != expected.pepper_id {
            return Err(ImportError::PepperMismatch {
                found: header.pepper_id.chars().take(64).collect(),
                expected: expected.pepper_id.to_owned(),
            });
        }
        if header.namespace.as_deref() != expected.namespace {
            return Err(ImportError::NamespaceMismatch {
                found: header.namespace.map(|n| n.chars().take(64).collect()),
                expected: expected.namespace.map(str::to_owned),
            });
        }
    }
    hasher.update(&buf);

    // Records, then the trailer.
    let mut records = Vec::new();
    let mut ids = HashSet::new();
    let mut tags = HashSet::new();
    let mut number = 1;
    let trailer = loop {
        number += 1;
        if !read_line(input, &mut buf, number)? {
            return Err(ImportError::Truncated {
                records: records.len(),
            });
        }
        if buf.last() != Some(&b'\n') {
            // The last line of the input: it must be a whole trailer.
            return match serde_json::from_slice::<Trailer>(&buf) {
                Ok(t) if t.end => Ok(t),
                _ => Err(ImportError::Truncated {
                    records: records.len(),
                }),
            }
            .and_then(|t| finish(t, records, hasher, &mut buf, input, number));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| malformed(number, e))?;
        if value.get("end").is_some() {
            let t: Trailer = serde_json::from_value(value).map_err(|e| malformed(number, e))?;
            if !t.end {
                return Err(malformed(number, "the trailer's end must be true"));
            }
            break t;
        }
        let record: Record = serde_json::from_value(value).map_err(|e| malformed(number, e))?;
        let cred = record.into_credential().map_err(|e| malformed(number, e))?;
        if !ids.insert(cred.id.clone()) {
            return Err(malformed(number, format_args!("{} appears twice", cred.id)));
        }
        for s in &cred.secrets {
            if !tags.insert(s.lookup) {
                return Err(malformed(
                    number,
                    format_args!("lookup tag {} belongs to two records", s.lookup),
                ));
            }
        }
        hasher.update(&buf);
        records.push((number, cred));
    };
    finish(trailer, records, hasher, &mut buf, input, number)
}

/// Checks the trailer against what was read, and that nothing follows it.
fn finish(
    trailer: Trailer,
    records: Vec<(usize, Credential)>,
    hasher: blake3::Hasher,
    buf: &mut Vec<u8>,
    input: &mut dyn BufRead,
    number: usize,
) -> Result<Parsed, ImportError> {
    if read_line(input, buf, number + 1)? {
        return Err(malformed(number + 1, "data after the trailer"));
    }
    if u64::try_from(records.len()).ok() != Some(trailer.count) {
        return Err(ImportError::CountMismatch {
            declared: trailer.count,
            found: records.len(),
        });
    }
    if hasher.finalize().to_hex().as_str() != trailer.digest {
        return Err(ImportError::DigestMismatch);
    }
    Ok(Parsed { records })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_other_spellings() {
        let bytes: [u8; 32] = core::array::from_fn(|i| u8::try_from(i * 7).unwrap());
        let hex = to_hex(&bytes);
        assert_eq!(from_hex_32(&hex), Some(bytes));
        assert_eq!(from_hex_32(&hex.to_uppercase()), None);
        assert_eq!(from_hex_32(&hex[2..]), None);
        assert_eq!(from_hex_32(&format!("{}zz", &hex[2..])), None);
    }
}

//! Backup and migration: [`Keyward::export`] and [`Keyward::import`], on the format of
//! [`crate::export`].

use std::io::{BufRead, Write};

use keyward_core::Credential;
use keyward_store::StoreError;

use crate::Keyward;
use crate::acting::Acts;
use crate::audit::{Action, Call};
use crate::authority::{self, Right};
use crate::error::EngineError;
use crate::export::{
    ConflictReason, Expected, ExportError, ExportSummary, ImportConflict, ImportError,
    ImportOptions, ImportSummary, Writer, read,
};

impl Keyward {
    /// Writes every credential (digests and lookup tags, never a key) to `out` in the export
    /// format (`docs/export-format.md`), in the backend's scan order (id order for the
    /// built-in backends), and returns what it wrote.
    ///
    /// `by` must reach every account: the local operator, or an operator key holding
    /// `api-key:read` and `api-key:admin` ([`ExportError::Refused`] otherwise).
    ///
    /// The records are one consistent snapshot of the store ([`keyward_store::Store::scan`]),
    /// so the export may run while keys are issued and rotated. On failure the stream written so
    /// far has no trailer, and an import refuses it.
    ///
    /// ```
    /// # use keyward::{Config, Keyward, NewKey, Principal, core::{Environment, KeyType}};
    /// let op = &Principal::LocalOperator;
    /// let a = Keyward::open(Config::memory())?;
    /// let issued = a.issue(op, NewKey::new(
    ///     "acc_1".parse()?, KeyType::Secret, Environment::Test, "ci".parse()?,
    /// ))?;
    /// let mut file = Vec::new();
    /// assert_eq!(a.export(op, &mut file)?.count, 1);
    ///
    /// let b = Keyward::open(Config::memory())?;
    /// assert_eq!(b.import(op, &mut file.as_slice())?.imported, 1);
    /// assert!(b.verify(issued.key.expose_secret()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export(
        &self,
        by: &impl Acts,
        out: &mut dyn Write,
    ) -> Result<ExportSummary, ExportError> {
        let by = by.acting();
        self.authorize_export(&by).map_err(ExportError::Refused)?;
        // Recorded before anything is written: no audit event, no export.
        let call = Call::new(&by, Action::Export);
        self.append_event(&call.done(self.now()))
            .map_err(|e| ExportError::Store(store_error(e)))?;
        let mut writer = Writer::start(
            out,
            self.now(),
            self.pepper_fingerprint(),
            self.format().namespace(),
        )?;
        // `scan` visits every record before returning; the first failure stops the writing
        // and is reported once the visit is over.
        let mut failure: Option<ExportError> = None;
        self.store()
            .backend()
            .scan(&mut |item| {
                if failure.is_some() {
                    return;
                }
                let written = match item {
                    Ok(cred) => writer.record(&cred),
                    Err(e) => Err(ExportError::Store(e)),
                };
                if let Err(e) = written {
                    failure = Some(e);
                }
            })
            .map_err(ExportError::Store)?;
        if let Some(e) = failure {
            return Err(e);
        }
        writer.finish()
    }

    /// Whether `by` may export the whole store ([`Keyward::export`] checks this itself; a face
    /// that streams the export calls it first, to refuse before it starts answering).
    pub fn authorize_export(&self, by: &impl Acts) -> Result<(), EngineError> {
        let by = by.acting();
        let call = Call::new(&by, Action::Export);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            authority::check_deployment_wide(&actor)
        })
    }

    /// [`Keyward::import_with`] with the default options: a file from a deployment with
    /// another pepper or namespace is refused.
    pub fn import(
        &self,
        by: &impl Acts,
        input: &mut dyn BufRead,
    ) -> Result<ImportSummary, ImportError> {
        self.import_with(by, input, ImportOptions::default())
    }

    /// Reads an export and stores its credentials. `by` must reach every account: the local
    /// operator, or an operator key holding `api-key:write` and `api-key:admin`
    /// ([`ImportError::Refused`] otherwise, before anything is read).
    ///
    /// Everything is checked before anything is written: the header (format, version, the
    /// pepper fingerprint and namespace of this deployment unless [`ImportOptions::force`]),
    /// every record (a valid credential; ids and lookup tags unique), the trailer (record count
    /// and digest of every line), and every record against the store and this deployment: a
    /// credential already stored with identical content is skipped (re-importing a file is
    /// harmless); one stored with other content, a lookup tag held by another credential, or a
    /// key `issue` would refuse here (permission policy, environment) refuses the whole import
    /// ([`ImportError::Conflicts`], listing each one). Then each credential is written
    /// as new (revision 0; its own revision restarts at 1).
    ///
    /// All or nothing where it can be known in advance: a clash found while checking writes
    /// nothing, because a half-imported deployment (some of a file's keys, not others) is
    /// harder to reason about than one that refused the file. Only a write failing part way
    /// (disk full, a concurrent writer creating the same id) leaves some records written:
    /// [`ImportError::Interrupted`] says how many, and importing the file again finishes it.
    pub fn import_with(
        &self,
        by: &impl Acts,
        input: &mut dyn BufRead,
        options: ImportOptions,
    ) -> Result<ImportSummary, ImportError> {
        let by = by.acting();
        let call = Call::new(&by, Action::Import);
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Write)?;
            authority::check_deployment_wide(&actor)
        })
        .map_err(ImportError::Refused)?;
        let pepper_id = self.pepper_fingerprint();
        let parsed = read(
            input,
            &Expected {
                pepper_id: &pepper_id,
                namespace: self.format().namespace(),
                force: options.force,
            },
        )?;
        let mut summary = ImportSummary {
            records: parsed.records.len(),
            ..ImportSummary::default()
        };
        let mut to_write = Vec::with_capacity(parsed.records.len());
        let mut conflicts = Vec::new();
        for (line, cred) in parsed.records {
            match self.clash(&cred).map_err(ImportError::Store)? {
                Clash::None => to_write.push(cred),
                Clash::Identical => summary.skipped += 1,
                Clash::Conflict(reason) => conflicts.push(ImportConflict {
                    line,
                    id: cred.id.clone(),
                    reason,
                }),
            }
        }
        if !conflicts.is_empty() {
            return Err(ImportError::Conflicts(conflicts));
        }
        for cred in to_write {
            // Each key with its own event, in one write.
            let event = call.changed(None, Some(&cred), self.now());
            let written = self.commit_event(&event, |entry| {
                self.store().put_with(cred.clone(), Some(entry))
            });
            match written {
                Ok(_) => summary.imported += 1,
                Err(e) => {
                    return Err(ImportError::Interrupted {
                        summary,
                        error: store_error(e),
                    });
                }
            }
        }
        Ok(summary)
    }

    /// How `cred` (from a file) relates to what the store holds and to this deployment's rules.
    fn clash(&self, cred: &Credential) -> Result<Clash, StoreError> {
        // The rules `issue` applies: an import must not bring in a key issue would refuse.
        if let Err(e) = self.check_permissions(cred.key_type, &cred.permissions) {
            return Ok(Clash::Conflict(ConflictReason::NotAllowed {
                reason: e.to_string(),
            }));
        }
        if let Err(e) = self.format().environments().tag_of(&cred.environment) {
            return Ok(Clash::Conflict(ConflictReason::NotAllowed {
                reason: format!("environment {}: {e}", cred.environment),
            }));
        }
        if let Some(stored) = self.store().get(&cred.id)? {
            let mut stored = Credential::clone(&stored);
            stored.revision = 0;
            return Ok(if stored == *cred {
                Clash::Identical
            } else {
                Clash::Conflict(ConflictReason::DifferentContent)
            });
        }
        for s in &cred.secrets {
            let owner = self
                .store()
                .with_lookup(&s.lookup, |e| e.map(|e| e.id().clone()))?;
            if let Some(owner) = owner {
                return Ok(Clash::Conflict(ConflictReason::LookupTaken {
                    lookup: s.lookup,
                    owner,
                }));
            }
        }
        Ok(Clash::None)
    }
}

/// The store error inside an engine error from writing an event (any other is described).
fn store_error(e: EngineError) -> StoreError {
    match e {
        EngineError::Store(e) => e,
        other => StoreError::Backend {
            message: other.to_string(),
        },
    }
}

enum Clash {
    /// Not stored: write it.
    None,
    /// Stored with the same content: skip it.
    Identical,
    /// Stored otherwise: refuse.
    Conflict(ConflictReason),
}

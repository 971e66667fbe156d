//! The deployment's first administrator, and the way back when every administrator key is
//! lost: what `keyward init` and `keyward init --recover` do, as engine operations.

use keyward_core::{AccountId, Environment, KeyType, ModelError, Name};

use crate::acting::Acts;
use crate::audit::{Action, Call};
use crate::authority::{self, Denial, OPERATOR_ACCOUNT, Principal, forbidden};
use crate::engine::Keyward;
use crate::error::{EngineError, Field};
use crate::manage::{Issued, NewKey};

/// Whether [`Keyward::issue_operator_key`] makes the first administrator or another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKey {
    /// The first: refused once the store holds any key ([`EngineError::AlreadyInitialised`]).
    First,
    /// Another one, on a store that may hold keys: recovery when the last administrator key is
    /// lost (the API never removes the last one; the local operator can always make another).
    Recover,
}

impl Keyward {
    /// Issues an operator key: a secret production key of the operator account
    /// ([`OPERATOR_ACCOUNT`]) holding every permission, named `admin` (or `recovered admin`
    /// when the store already holds keys). Only the local operator may
    /// ([`Denial::OperatorOnly`]).
    pub fn issue_operator_key(
        &self,
        by: &Principal,
        which: OperatorKey,
    ) -> Result<Issued, EngineError> {
        let action = match which {
            OperatorKey::First => Action::Issue,
            OperatorKey::Recover => Action::Recover,
        };
        let account: AccountId = OPERATOR_ACCOUNT
            .parse()
            .map_err(|e: ModelError| EngineError::invalid(Field::Account, e))?;
        // Only the local operator (the data directory's owner); a key trying is refused, and
        // the refusal is on the audit log like every other.
        let acting = by.acting();
        let call = Call::on_account(&acting, action.clone(), &account);
        self.recorded(&call, || match by {
            Principal::LocalOperator => Ok(()),
            Principal::Key(_) => Err(forbidden(Denial::OperatorOnly)),
        })?;
        let existing = self.inner.store.len();
        if existing > 0 && which == OperatorKey::First {
            return Err(EngineError::AlreadyInitialised { keys: existing });
        }
        let name: Name = if existing > 0 {
            "recovered admin"
        } else {
            "admin"
        }
        .parse()
        .map_err(|e: ModelError| EngineError::invalid(Field::Name, e))?;
        let new = NewKey::new(account, KeyType::Secret, Environment::Production, name)
            .with_permissions(authority::root_permissions());
        self.issue_recorded_as(by, new, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_first_operator_key_is_issued_once_and_recovery_always_works() {
        let kw = Keyward::open(Config::memory()).unwrap_or_else(|e| panic!("{e}"));
        let op = &Principal::LocalOperator;
        let first = kw
            .issue_operator_key(op, OperatorKey::First)
            .unwrap_or_else(|e| panic!("{e}"));
        let c = &first.credential;
        assert_eq!(
            (c.account.as_str(), c.name.as_str()),
            (OPERATOR_ACCOUNT, "admin")
        );
        assert_eq!(c.key_type, KeyType::Secret);
        assert_eq!(c.permissions, authority::root_permissions());
        assert!(authority::is_administrator(c, kw.now()));

        let again = kw.issue_operator_key(op, OperatorKey::First);
        assert!(
            matches!(again, Err(EngineError::AlreadyInitialised { keys: 1 })),
            "{again:?}"
        );
        assert_eq!(kw.store().len(), 1);

        // Even the operator key itself may not mint another: only the local operator.
        let as_key = Principal::Key(
            kw.verify(first.key.expose_secret())
                .unwrap_or_else(|e| panic!("{e}")),
        );
        for which in [OperatorKey::First, OperatorKey::Recover] {
            let refused = kw.issue_operator_key(&as_key, which);
            assert!(
                matches!(
                    refused,
                    Err(EngineError::Forbidden {
                        reason: Denial::OperatorOnly,
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
        assert_eq!(kw.store().len(), 1);

        let recovered = kw
            .issue_operator_key(op, OperatorKey::Recover)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(recovered.credential.name.as_str(), "recovered admin");
        assert!(authority::is_administrator(&recovered.credential, kw.now()));
        assert_eq!(kw.store().len(), 2);

        // The log: the first key as an issue, the key's two refused attempts, the recovery as
        // a recovery (`AlreadyInitialised` changes nothing and is bad input, not a refusal).
        let events = kw
            .events(op, &crate::audit::EventQuery::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .events;
        let summary: Vec<(&str, bool)> = events
            .iter()
            .map(|e| {
                (
                    e.action.name(),
                    matches!(e.outcome, crate::audit::Outcome::Ok),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("issue", true),
                ("issue", false),
                ("recover", false),
                ("recover", true),
            ],
            "{events:?}"
        );
        assert_eq!(events[3].key.as_ref(), Some(&recovered.credential.id));
        let chain = kw.verify_events(op, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&chain, Ok(report) if report.events == 4),
            "{chain:?}"
        );
    }
}

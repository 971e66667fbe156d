//! Reading the log: [`Keyward::events`], filtered by what the principal can see.

use keyward_core::{CredentialId, Timestamp};

use super::codec::decode;
use super::{Action, Event, EventActor, log::Call};
use crate::acting::Acts;
use crate::authority::{self, Actor, Right, is_operator_account};
use crate::engine::Keyward;
use crate::error::EngineError;

/// Events read from the store per batch.
const BATCH: usize = 1000;

/// Most events one [`Keyward::events`] call looks at; past this it returns what it found with
/// a cursor, so that a narrow filter over a long log never makes one call unbounded.
const SCAN_BUDGET: usize = 10_000;

/// Which events [`Keyward::events`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only the events about this key.
    pub key: Option<CredentialId>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events after this sequence number (the previous page's [`EventPage::next`]).
    pub after: u64,
    /// Page size, 1–1000 (clamped).
    pub limit: usize,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            key: None,
            since: None,
            after: 0,
            limit: 100,
        }
    }
}

/// One page of [`Keyward::events`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPage {
    /// Events, in sequence order.
    pub events: Vec<Event>,
    /// Pass as [`EventQuery::after`] for the next page; `None` once the end of the log was
    /// reached.
    pub next: Option<u64>,
}

/// Whether `actor` may see `event`: the local operator and deployment-wide operator keys see
/// everything; any other key sees the events about its own account's keys, by its account's
/// keys or by the deployment's operators (not another account's attempts on them, which would
/// tell it about that account).
fn visible(actor: &Actor, event: &Event) -> bool {
    let Actor::Key(k) = actor else {
        return true;
    };
    if k.deployment_wide {
        return true;
    }
    let about_own = event.account.as_ref() == Some(&k.account);
    let by = match &event.actor {
        EventActor::LocalOperator => true,
        EventActor::Key { account, .. } => *account == k.account || is_operator_account(account),
    };
    about_own && by
}

impl EventQuery {
    fn matches(&self, event: &Event) -> bool {
        self.key
            .as_ref()
            .is_none_or(|k| event.key.as_ref() == Some(k))
            && self.since.is_none_or(|t| event.at >= t)
    }
}

impl Keyward {
    /// Reads the audit log, one page at a time, in sequence order (needs `api-key:read`). A
    /// principal sees only the events about what it can see: the local operator and operator
    /// keys holding `api-key:admin` everything, any other key the events about its account's
    /// keys. A key out of reach in `query.key` answers [`EngineError::NotFound`], like an
    /// unknown one. Events that cannot be decoded are skipped ([`Keyward::verify_events`]
    /// names them).
    ///
    /// ```
    /// # use keyward::{Config, Keyward, NewKey, Principal, core::{Environment, KeyType}};
    /// # use keyward::audit::{Action, EventQuery};
    /// let op = &Principal::LocalOperator;
    /// let kw = Keyward::open(Config::memory())?;
    /// let issued = kw.issue(op, NewKey::new(
    ///     "acc_1".parse()?, KeyType::Secret, Environment::Test, "ci".parse()?,
    /// ))?;
    /// let page = kw.events(op, &EventQuery::default())?;
    /// assert_eq!(page.events[0].action, Action::Issue);
    /// assert_eq!(page.events[0].key.as_ref(), Some(&issued.credential.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self, by: &impl Acts, query: &EventQuery) -> Result<EventPage, EngineError> {
        let by = by.acting();
        let call = Call {
            key: query.key.clone(),
            ..Call::new(&by, Action::ReadEvents)
        };
        self.recorded(&call, || {
            let actor = self.actor(&by.principal, Right::Read)?;
            if let (Some(id), Actor::Key(k)) = (&query.key, &actor)
                && !k.deployment_wide
            {
                let target = self.read(id)?;
                authority::check_reach(&actor, &target)?;
            }
            self.scan_events(&actor, query)
        })
    }

    fn scan_events(&self, actor: &Actor, query: &EventQuery) -> Result<EventPage, EngineError> {
        let store = self.inner.store.backend();
        let limit = query.limit.clamp(1, 1000);
        let mut page = EventPage::default();
        let mut after = query.after;
        let mut scanned = 0;
        loop {
            let batch = store.events(after, BATCH)?;
            let full = batch.len() == BATCH;
            for entry in &batch {
                after = entry.seq;
                scanned += 1;
                let Ok(event) = decode(entry) else { continue };
                if query.matches(&event) && visible(actor, &event) {
                    page.events.push(event);
                    if page.events.len() == limit {
                        page.next = Some(after);
                        return Ok(page);
                    }
                }
            }
            if !full {
                return Ok(page);
            }
            if scanned >= SCAN_BUDGET {
                page.next = Some(after);
                return Ok(page);
            }
        }
    }
}

//! The audit log through the library, on the memory store: what each management action and
//! each refusal records, who sees which events, fail-closed writes, the chain across several
//! writers, and retention. Tampering with stored events, and the other backends, are in
//! `audit_backends.rs`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keyward::audit::{Action, Event, EventActor, EventQuery, HeadCheck, Outcome, Retention};
use keyward::core::{
    Credential, CredentialId, Environment, KeyType, LookupTag, PermissionSet, Timestamp,
};
use keyward::rotation::{ManualClock, RegenerateOptions};
use keyward::store::{AuditEntry, Change, ListQuery, MemoryStore, Page, Store, StoreError};
use keyward::{
    Acting, Backend, Config, EngineError, KeyUpdate, Keyward, NewKey, OPERATOR_ACCOUNT, Principal,
};

const OP: &Principal = &Principal::LocalOperator;
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn new_key(account: &str, perms: &[&str]) -> NewKey {
    NewKey::new(
        account.parse().unwrap(),
        KeyType::Secret,
        Environment::Production,
        "k".parse().unwrap(),
    )
    .with_permissions(PermissionSet::parse(perms).unwrap())
}

struct Fx {
    kw: Keyward,
    clock: Arc<ManualClock>,
}

impl Fx {
    fn new() -> Self {
        Self::with(Config::memory())
    }

    fn with(config: Config) -> Self {
        let clock = Arc::new(ManualClock::new(ts(T0)));
        let kw = Keyward::open(config.with_clock(clock.clone())).unwrap();
        Self { kw, clock }
    }

    fn at(&self, ms: i64) {
        self.clock.set(ts(ms));
    }

    /// A key of `account` holding `perms`, and the principal it acts as.
    fn principal(&self, account: &str, perms: &[&str]) -> (CredentialId, Principal) {
        let issued = self.kw.issue(OP, new_key(account, perms)).unwrap();
        let verified = self.kw.verify(issued.key.expose_secret()).unwrap();
        (issued.credential.id.clone(), Principal::Key(verified))
    }

    /// Every event, as the local operator sees them.
    fn log(&self) -> Vec<Event> {
        all_events(&self.kw, OP, &EventQuery::default())
    }

    /// The events from `seq` on.
    fn since(&self, seq: u64) -> Vec<Event> {
        let query = EventQuery {
            after: seq,
            ..EventQuery::default()
        };
        all_events(&self.kw, OP, &query)
    }

    fn last_seq(&self) -> u64 {
        self.log().last().map_or(0, |e| e.seq)
    }
}

/// Every event `by` sees for `query`, following pages of 3.
fn all_events(kw: &Keyward, by: &Principal, query: &EventQuery) -> Vec<Event> {
    let mut q = EventQuery {
        limit: 3,
        ..query.clone()
    };
    let mut out = Vec::new();
    loop {
        let page = kw.events(by, &q).unwrap();
        assert!(page.events.len() <= 3);
        out.extend(page.events);
        match page.next {
            Some(next) => q.after = next,
            None => return out,
        }
    }
}

/// `(action, key, versions, fields)` of an event, to compare in one line.
fn summary(e: &Event) -> (String, Option<CredentialId>, Vec<u32>, Vec<String>) {
    (
        e.action.name().to_owned(),
        e.key.clone(),
        e.versions.clone(),
        e.fields.clone(),
    )
}

fn row(
    action: &str,
    key: &CredentialId,
    versions: &[u32],
    fields: &[&str],
) -> (String, Option<CredentialId>, Vec<u32>, Vec<String>) {
    (
        action.to_owned(),
        Some(key.clone()),
        versions.to_vec(),
        fields.iter().map(|f| (*f).to_owned()).collect(),
    )
}

fn refused_code(e: &Event) -> &str {
    match &e.outcome {
        Outcome::Refused { code, .. } => code,
        Outcome::Ok => panic!("event {} was not a refusal: {e:?}", e.seq),
    }
}

#[test]
fn each_management_action_is_logged_once_with_what_it_touched() {
    let fx = Fx::new();
    let kw = &fx.kw;
    let account = "acc_1".parse().unwrap();
    let k1 = kw
        .issue(OP, new_key("acc_1", &["a:read"]))
        .unwrap()
        .credential
        .id
        .clone();
    fx.at(T0 + HOUR);
    kw.regenerate(OP, &k1, RegenerateOptions::default())
        .unwrap();
    let rename = KeyUpdate {
        name: Some("renamed".parse().unwrap()),
        ..KeyUpdate::default()
    };
    kw.update(OP, &k1, rename).unwrap();
    // An empty update changes nothing, and is not an event.
    kw.update(OP, &k1, KeyUpdate::default()).unwrap();
    kw.disable(OP, &k1).unwrap();
    kw.enable(OP, &k1).unwrap();
    kw.revoke_version(OP, &k1, 1).unwrap();
    let k2 = kw
        .environment_key(OP, &account, &Environment::Test)
        .unwrap()
        .credential
        .id
        .clone();
    kw.environment_key(OP, &account, &Environment::Test)
        .unwrap();
    let done = kw
        .regenerate_environment(
            OP,
            &account,
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap();
    assert_eq!(done.issued.len(), 1);
    kw.revoke(OP, &k1).unwrap();
    let mut export = Vec::new();
    kw.export(OP, &mut export).unwrap();
    fx.at(T0 + 40 * DAY);
    let report = kw.sweep(OP, kw.now()).unwrap();
    let purged = |id: &CredentialId| -> Vec<u32> {
        report
            .purged
            .iter()
            .filter(|(p, _)| p == id)
            .map(|(_, v)| *v)
            .collect()
    };
    assert!(
        !purged(&k1).is_empty() && !purged(&k2).is_empty(),
        "{report:?}"
    );

    let log = fx.log();
    let rows: Vec<_> = log
        .iter()
        .filter(|e| e.action != Action::Export)
        .map(summary)
        .collect();
    // A sweep goes through the keys in id order.
    let mut sweeps = [
        row("sweep", &k1, &purged(&k1), &[]),
        row("sweep", &k2, &purged(&k2), &[]),
    ];
    sweeps.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        rows,
        vec![
            row("issue", &k1, &[1], &[]),
            row("regenerate", &k1, &[1, 2], &[]),
            row("update", &k1, &[], &["name"]),
            row("disable", &k1, &[], &["enabled"]),
            row("enable", &k1, &[], &["enabled"]),
            row("revoke_version", &k1, &[1], &[]),
            row("environment_key", &k2, &[1], &[]),
            row("environment_key", &k2, &[1, 2], &[]),
            row("regenerate_environment", &k1, &[2, 3], &[]),
            row("revoke", &k1, &[2, 3], &[]),
            sweeps[0].clone(),
            sweeps[1].clone(),
        ]
    );
    // The export is recorded between the revoke and the sweep, on no key.
    let exported = log.iter().find(|e| e.action == Action::Export).unwrap();
    assert_eq!(exported.seq, 11);
    assert_eq!(
        (exported.key.as_ref(), exported.account.as_ref()),
        (None, None)
    );
    // Every event: in sequence, by the local operator, done, on acc_1, no request id.
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.actor, EventActor::LocalOperator);
        assert_eq!(e.outcome, Outcome::Ok);
        assert_eq!(e.request_id, None);
        if e.action != Action::Export {
            assert_eq!(e.account.as_ref().map(|a| a.as_str()), Some("acc_1"));
        }
    }
    assert_eq!(log[0].at, ts(T0));
    assert_eq!(log[1].at, ts(T0 + HOUR));
    assert_eq!(log.last().unwrap().at, ts(T0 + 40 * DAY));
    let report = kw.verify_events(OP, None).unwrap().unwrap();
    assert_eq!(report.events, log.len() as u64);
    assert_eq!(report.head, Some(log.last().unwrap().head()));

    // An import writes one event per key it stores, none for those it skips.
    let other = Fx::new();
    let imported = other.kw.import(OP, &mut export.as_slice()).unwrap();
    assert_eq!(imported.imported, 2);
    let imported: Vec<_> = other.log().iter().map(summary_action).collect();
    assert_eq!(imported, vec!["import", "import"]);
    other.kw.import(OP, &mut export.as_slice()).unwrap();
    assert_eq!(other.log().len(), 2);
}

fn summary_action(e: &Event) -> &'static str {
    e.action.name()
}

#[test]
fn refusals_are_events_and_bad_input_is_not() {
    let fx = Fx::new();
    let kw = &fx.kw;
    let (writer_id, writer) = fx.principal("acc_a", &["api-key:read", "api-key:write"]);
    let (_, reader) = fx.principal("acc_a", &["api-key:read"]);
    let strong = kw
        .issue(OP, new_key("acc_a", &["*"]))
        .unwrap()
        .credential
        .id
        .clone();
    let foreign = kw
        .issue(OP, new_key("acc_b", &[]))
        .unwrap()
        .credential
        .id
        .clone();
    let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
    let start = fx.last_seq();

    // 403: escalation, another account, a missing right (at the face's check and in a call).
    assert!(
        kw.issue(&writer, new_key("acc_a", &["payments:write"]))
            .is_err()
    );
    assert!(kw.issue(&writer, new_key("acc_b", &[])).is_err());
    assert!(kw.authorize(&reader, keyward::Right::Write).is_err());
    assert!(kw.revoke(&reader, &strong).is_err());
    // 403 on the target: stronger than the caller.
    assert!(kw.revoke(&writer, &strong).is_err());
    // 404: out of reach, and unknown.
    assert!(matches!(
        kw.revoke(&writer, &foreign),
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        kw.get(&writer, &unknown),
        Err(EngineError::NotFound(_))
    ));
    // 409: a grace in progress.
    kw.regenerate(OP, &writer_id, RegenerateOptions::default())
        .unwrap();
    assert!(
        kw.regenerate(OP, &writer_id, RegenerateOptions::default())
            .is_err()
    );
    // Not refusals: bad input.
    let past = new_key("acc_a", &[]).with_expiry(ts(T0 - 1));
    assert!(matches!(
        kw.issue(&writer, past),
        Err(EngineError::Invalid { .. })
    ));

    let events = fx.since(start);
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            let code = match &e.outcome {
                Outcome::Ok => "ok",
                Outcome::Refused { code, .. } => code,
            };
            (e.action.name(), code)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("issue", "escalation"),
            ("issue", "other_account"),
            ("authorize", "missing_permission"),
            ("revoke", "missing_permission"),
            ("revoke", "escalation"),
            ("revoke", "not_found"),
            ("read", "not_found"),
            ("regenerate", "ok"),
            ("regenerate", "grace_in_progress"),
        ]
    );
    // What each refusal names.
    let escalation = &events[0];
    assert_eq!(
        escalation.outcome,
        Outcome::Refused {
            code: "escalation".into(),
            missing: vec!["payments:write".into()],
        }
    );
    assert_eq!(escalation.account.as_ref().unwrap().as_str(), "acc_a");
    assert_eq!(escalation.key, None);
    let Principal::Key(w) = &writer else {
        unreachable!()
    };
    assert_eq!(
        escalation.actor,
        EventActor::Key {
            id: w.id().clone(),
            account: w.account().clone(),
        }
    );
    // The out-of-reach key is recorded with its account, the unknown one without.
    assert_eq!(events[5].key.as_ref(), Some(&foreign));
    assert_eq!(events[5].account.as_ref().unwrap().as_str(), "acc_b");
    assert_eq!(events[6].key.as_ref(), Some(&unknown));
    assert_eq!(events[6].account, None);
    assert_eq!(refused_code(&events[8]), "grace_in_progress");
}

#[test]
fn the_last_administrator_refusal_is_an_event() {
    let fx = Fx::new();
    let (admin_id, admin) = fx.principal(OPERATOR_ACCOUNT, &["*"]);
    let r = fx.kw.revoke(&admin, &admin_id);
    assert!(matches!(r, Err(EngineError::LastAdministrator(_))), "{r:?}");
    let last = fx.log().pop().unwrap();
    assert_eq!(last.action, Action::Revoke);
    assert_eq!(refused_code(&last), "last_administrator");
    assert_eq!(last.key, Some(admin_id));
    assert_eq!(last.account.unwrap().as_str(), OPERATOR_ACCOUNT);
}

#[test]
fn a_principal_sees_only_the_events_of_its_reach() {
    let fx = Fx::new();
    let kw = &fx.kw;
    let (a_id, a) = fx.principal("acc_a", &["api-key:read", "api-key:write", "x:read"]);
    let (b_id, b) = fx.principal("acc_b", &["api-key:read", "api-key:write"]);
    let (_, admin) = fx.principal(OPERATOR_ACCOUNT, &["*"]);
    let (_, narrow_op) = fx.principal(OPERATOR_ACCOUNT, &["api-key:read"]);
    let a2 = kw
        .issue(&a, new_key("acc_a", &["x:read"]))
        .unwrap()
        .credential
        .id
        .clone();
    let b2 = kw
        .issue(&b, new_key("acc_b", &[]))
        .unwrap()
        .credential
        .id
        .clone();
    kw.disable(&admin, &a2).unwrap();
    // b tries a's key: refused as unknown, recorded, and not shown to a (it would tell a
    // about b) nor, of course, to b.
    assert!(kw.revoke(&b, &a2).is_err());

    let seen_by = |p: &Principal| -> Vec<(String, Option<CredentialId>)> {
        all_events(kw, p, &EventQuery::default())
            .iter()
            .map(|e| (e.action.name().to_owned(), e.key.clone()))
            .collect()
    };
    let issue = |id: &CredentialId| ("issue".to_owned(), Some(id.clone()));
    // a: its own account's events, by the operator or its own keys.
    assert_eq!(
        seen_by(&a),
        vec![
            issue(&a_id),
            issue(&a2),
            ("disable".to_owned(), Some(a2.clone()))
        ]
    );
    assert_eq!(seen_by(&b), vec![issue(&b_id), issue(&b2)]);
    // The deployment-wide operator sees everything, the refusal included; an operator key
    // without `api-key:admin` reaches only the operator account.
    let all = seen_by(&admin);
    assert_eq!(all.len(), fx.log().len());
    assert!(all.contains(&("revoke".to_owned(), Some(a2.clone()))));
    assert!(
        seen_by(&narrow_op)
            .iter()
            .all(|(_, k)| k.as_ref() != Some(&a2))
    );

    // A key filter: within reach, only that key's events; out of reach, exactly like an
    // unknown id.
    let q = |id: &CredentialId| EventQuery {
        key: Some(id.clone()),
        ..EventQuery::default()
    };
    let a2_events = all_events(kw, &a, &q(&a2));
    assert_eq!(a2_events.len(), 2);
    assert!(a2_events.iter().all(|e| e.key.as_ref() == Some(&a2)));
    let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
    for id in [&b2, &unknown] {
        assert!(matches!(
            kw.events(&a, &q(id)),
            Err(EngineError::NotFound(_))
        ));
    }
    assert_eq!(all_events(kw, &admin, &q(&a2)).len(), 3);
    // `since`: only events at or after it.
    fx.at(T0 + HOUR);
    kw.enable(&a, &a2).unwrap();
    let later = EventQuery {
        since: Some(ts(T0 + HOUR)),
        ..EventQuery::default()
    };
    let recent = all_events(kw, &a, &later);
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].action, Action::Enable);
    // Reading events needs api-key:read; the head and the verification the deployment-wide
    // tier.
    let (_, nothing) = fx.principal("acc_a", &[]);
    assert!(matches!(
        kw.events(&nothing, &EventQuery::default()),
        Err(EngineError::Forbidden { .. })
    ));
    assert!(kw.event_head(&a).is_err());
    assert!(kw.verify_events(&a, None).is_err());
    assert!(kw.event_head(&admin).unwrap().is_some());
    assert!(kw.verify_events(&admin, None).unwrap().is_ok());
}

#[test]
fn a_face_request_id_is_recorded() {
    let fx = Fx::new();
    let acting = Acting::from(Principal::LocalOperator).with_request_id("req_abc".parse().unwrap());
    let id = fx
        .kw
        .issue(&acting, new_key("acc_1", &[]))
        .unwrap()
        .credential
        .id
        .clone();
    fx.kw.revoke(&acting, &id).unwrap();
    let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
    assert!(fx.kw.revoke(&acting, &unknown).is_err());
    let log = fx.log();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|e| e.request_id.as_ref().map(|r| r.as_str()) == Some("req_abc"))
    );
}

// ----- fail closed ---------------------------------------------------------------------------

/// A memory store whose audit appends fail while `broken` is set (every commit carrying an
/// event fails and writes nothing), and whose trims fail while `no_trim` is set (as a crash
/// between a trim's event and the trim would leave it).
struct BrokenLog {
    inner: MemoryStore,
    broken: Arc<AtomicBool>,
    no_trim: Arc<AtomicBool>,
}

impl Store for BrokenLog {
    fn get(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        self.inner.get(id)
    }
    fn find_by_lookup(&self, lookup: &LookupTag) -> Result<Option<Credential>, StoreError> {
        self.inner.find_by_lookup(lookup)
    }
    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query)
    }
    fn commit(&self, change: &Change<'_>) -> Result<(), StoreError> {
        if change.event.is_some() && self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                message: "the audit device is full".into(),
            });
        }
        self.inner.commit(change)
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.events(after, limit)
    }
    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.inner.last_event()
    }
    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        if self.no_trim.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                message: "killed".into(),
            });
        }
        self.inner.trim_events(up_to)
    }
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        self.inner.scan(visit)
    }
}

/// A fixture on a [`BrokenLog`], and its two switches.
fn broken_fx(retention: Retention) -> (Fx, Arc<AtomicBool>, Arc<AtomicBool>) {
    let broken = Arc::new(AtomicBool::new(false));
    let no_trim = Arc::new(AtomicBool::new(false));
    let store = BrokenLog {
        inner: MemoryStore::new(),
        broken: broken.clone(),
        no_trim: no_trim.clone(),
    };
    let config = Config::new(Backend::Custom(Box::new(store)))
        .with_development_pepper()
        .with_retention(retention);
    (Fx::with(config), broken, no_trim)
}

#[test]
fn no_audit_write_no_change() {
    let (fx, broken, _) = broken_fx(Retention::default());
    let kw = &fx.kw;
    let issued = kw.issue(OP, new_key("acc_1", &[])).unwrap();
    let id = issued.credential.id.clone();
    let key = issued.key.expose_secret().to_owned();
    let before = kw.get(OP, &id).unwrap();
    broken.store(true, Ordering::SeqCst);

    let store_failure = |r: Result<_, EngineError>| {
        assert!(
            matches!(r, Err(EngineError::Store(StoreError::Backend { .. }))),
            "{r:?}"
        );
    };
    store_failure(kw.issue(OP, new_key("acc_1", &[])).map(|_| ()));
    store_failure(
        kw.regenerate(OP, &id, RegenerateOptions::default())
            .map(|_| ()),
    );
    store_failure(kw.revoke(OP, &id).map(|_| ()));
    store_failure(kw.disable(OP, &id).map(|_| ()));
    let mut out = Vec::new();
    assert!(kw.export(OP, &mut out).is_err());
    assert!(out.is_empty(), "no event, no export");
    // A refusal is still answered as a refusal.
    let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
    assert!(matches!(
        kw.revoke(OP, &unknown),
        Err(EngineError::NotFound(_))
    ));

    // Nothing changed: one key, as it was, its key verifying; one event.
    assert_eq!(kw.get(OP, &id).unwrap(), before);
    assert_eq!(kw.store().len(), 1);
    assert!(kw.verify(&key).is_ok());
    broken.store(false, Ordering::SeqCst);
    assert_eq!(fx.log().len(), 1);
    // And the chain goes on where it was.
    kw.revoke(OP, &id).unwrap();
    let report = kw.verify_events(OP, None).unwrap().unwrap();
    assert_eq!(report.events, 2);
}

// ----- several writers ----------------------------------------------------------------------

#[test]
fn engines_sharing_a_store_keep_one_chain() {
    let shared = Arc::new(MemoryStore::shared());
    let open = || {
        Keyward::open(
            Config::new(Backend::Custom(Box::new(shared.clone()))).with_development_pepper(),
        )
        .unwrap()
    };
    let (one, two) = (open(), open());
    // Each engine's cached tail goes stale as the other appends: it must re-read, not fork.
    for i in 0..10 {
        let kw = if i % 2 == 0 { &one } else { &two };
        kw.issue(OP, new_key("acc_1", &[])).unwrap();
    }
    std::thread::scope(|s| {
        for kw in [&one, &two] {
            s.spawn(move || {
                for _ in 0..10 {
                    kw.issue(OP, new_key("acc_1", &[])).unwrap();
                }
            });
        }
    });
    let report = one.verify_events(OP, None).unwrap().unwrap();
    assert_eq!(report.events, 30);
    assert_eq!(two.verify_events(OP, None).unwrap().unwrap(), report);
}

// ----- retention ----------------------------------------------------------------------------

#[test]
fn retention_by_count_trims_on_sweep_and_the_trim_is_on_the_chain() {
    let fx = Fx::with(Config::memory().with_retention(Retention::default().with_max_count(5)));
    let kw = &fx.kw;
    for _ in 0..8 {
        kw.issue(OP, new_key("acc_1", &[])).unwrap();
    }
    let pinned = kw.event_head(OP).unwrap().unwrap();
    assert_eq!(pinned.seq, 8);
    let report = kw.sweep(OP, kw.now()).unwrap();
    // The trim event is 9; the newest five (5..=9) are kept.
    assert_eq!(report.events_trimmed, 4);
    let log = fx.log();
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9]
    );
    let trim = &log[4];
    let Action::Trim { up_to, hash } = &trim.action else {
        panic!("{trim:?}")
    };
    assert_eq!(*up_to, 4);
    // The first kept event chains to the last removed one, which the trim names.
    assert_eq!(log[0].prev, *hash);
    assert_eq!(trim.actor, EventActor::LocalOperator);
    let verified = kw.verify_events(OP, Some(pinned)).unwrap().unwrap();
    assert_eq!(verified.first, Some(5));
    assert_eq!(verified.pinned, HeadCheck::Matched);
    // A head pinned before the trim and trimmed since cannot be compared, but the trim
    // vouches for the cut.
    let old = log[0].head();
    let old = keyward::audit::EventHead {
        seq: 3,
        hash: old.hash,
    };
    assert_eq!(
        kw.verify_events(OP, Some(old)).unwrap().unwrap().pinned,
        HeadCheck::Trimmed
    );
    // Another sweep with nothing due trims nothing and records nothing.
    let again = kw.sweep(OP, kw.now()).unwrap();
    assert_eq!(again.events_trimmed, 0);
    assert_eq!(fx.last_seq(), 9);
}

#[test]
fn retention_by_age_removes_only_older_events() {
    let fx = Fx::with(Config::memory().with_retention(
        Retention::default().with_max_age(Duration::from_millis(u64::try_from(10 * DAY).unwrap())),
    ));
    let kw = &fx.kw;
    for day in [0, 1, 2, 20, 21] {
        fx.at(T0 + day * DAY);
        kw.issue(OP, new_key("acc_1", &[])).unwrap();
    }
    fx.at(T0 + 25 * DAY);
    let report = kw.sweep(OP, kw.now()).unwrap();
    assert_eq!(report.events_trimmed, 3);
    let log = fx.log();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert!(matches!(log[2].action, Action::Trim { up_to: 3, .. }));
    assert!(kw.verify_events(OP, None).unwrap().is_ok());
}

#[test]
fn without_retention_sweep_keeps_every_event() {
    let fx = Fx::new();
    for _ in 0..3 {
        fx.kw.issue(OP, new_key("acc_1", &[])).unwrap();
    }
    fx.at(T0 + 1000 * DAY);
    assert_eq!(fx.kw.sweep(OP, fx.kw.now()).unwrap().events_trimmed, 0);
    assert_eq!(fx.log().len(), 3);
}

#[test]
fn a_trim_cut_short_is_still_vouched_and_the_next_sweep_finishes_it() {
    let (fx, _, no_trim) = broken_fx(Retention::default().with_max_count(3));
    let kw = &fx.kw;
    for _ in 0..6 {
        kw.issue(OP, new_key("acc_1", &[])).unwrap();
    }
    // The trim event is written, the trim is not (a crash in between).
    no_trim.store(true, Ordering::SeqCst);
    assert!(kw.sweep(OP, kw.now()).is_err());
    no_trim.store(false, Ordering::SeqCst);
    let log = fx.log();
    assert_eq!(log.len(), 7);
    assert!(matches!(log[6].action, Action::Trim { up_to: 4, .. }));
    assert_eq!(kw.verify_events(OP, None).unwrap().unwrap().first, Some(1));
    // Part of the trim (a sled trim cut short removes the oldest first).
    assert_eq!(kw.store().trim_events(2).unwrap(), 2);
    assert_eq!(kw.verify_events(OP, None).unwrap().unwrap().first, Some(3));
    // The next sweep trims to the bound again (3..=5), with its own trim event.
    assert_eq!(kw.sweep(OP, kw.now()).unwrap().events_trimmed, 3);
    let seqs: Vec<u64> = fx.log().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![6, 7, 8]);
    let report = kw.verify_events(OP, None).unwrap().unwrap();
    assert_eq!((report.first, report.events), (Some(6), 3));
}

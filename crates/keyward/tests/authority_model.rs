//! Model-based test of the authority rules: random sequences of management calls by random
//! principals (keys of ordinary accounts and of the operator account, with random permissions
//! and expiries, and the local operator), with time passing.
//!
//! After every call, checked against rules written here from the documentation (not the
//! engine's code):
//! * a refused call changed nothing (the whole store is compared);
//! * a call a key made succeeded only if that key, as stored, was live, a secret key holding
//!   `api-key:write` (`api-key:read` for reads), and everything it touched was in its reach (its
//!   own account, or any for an operator key holding `api-key:admin`), held only permissions it
//!   holds (before and after), and a key it received or re-dated expires no later than it;
//! * every key holds no more than the key that last made or changed it held at the time;
//! * a key never takes away the deployment's last administrator;
//! * the audit log is the history: each call's events name its action and its actor, every
//!   credential it changed appears in exactly one `ok` event and no other does, a refused call
//!   or a read writes no `ok` event, and the chain verifies at the end.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use keyward::audit::{Event, EventActor, EventQuery, Outcome};
use keyward::core::{
    AccountId, Credential, CredentialId, Environment, KeyType, PermissionSet, Timestamp,
};
use keyward::rotation::{ManualClock, RegenerateOptions, live_secrets};
use keyward::store::ListQuery;
use keyward::{Config, KeyUpdate, Keyward, NewKey, OPERATOR_ACCOUNT, Principal};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const OP: &Principal = &Principal::LocalOperator;
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

const ACCOUNTS: [&str; 3] = ["acc_a", "acc_b", OPERATOR_ACCOUNT];
const POOL: [&str; 8] = [
    "*",
    "api-key:*",
    "api-key:read",
    "api-key:write",
    "api-key:admin",
    "a:read",
    "a:*",
    "b:write",
];

fn grants(mask: u8) -> Vec<&'static str> {
    POOL.iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, g)| *g)
        .collect()
}

/// `*` grants all; `r:*` grants `r:*` and every `r:…`; `r:a` grants only itself.
fn allows(held: &PermissionSet, required: &str) -> bool {
    held.iter().map(|p| p.as_str()).any(|g| {
        g == "*"
            || g == required
            || (required != "*"
                && g.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with(':') && required.starts_with(prefix)))
    })
}

fn covers(held: &PermissionSet, other: &PermissionSet) -> bool {
    other.iter().all(|p| allows(held, p.as_str()))
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

// ----- operations ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Kind {
    Issue {
        account: usize,
        mask: u8,
        expires_in: Option<i64>,
    },
    SetPermissions(u8),
    SetExpiry(Option<i64>),
    Rename,
    Regenerate {
        end_earlier_grace: bool,
        zero_grace: bool,
    },
    RegenerateEnvironment(usize),
    EnvironmentKey(usize),
    Disable,
    Enable,
    Revoke,
    RevokeVersion(u32),
    Get,
    List(Option<usize>),
    Advance(i64),
}

#[derive(Debug, Clone)]
struct Step {
    /// `None`: the local operator; else the index of a key to act as.
    actor: Option<usize>,
    target: usize,
    kind: Kind,
}

fn kind() -> impl Strategy<Value = Kind> {
    let expiry = proptest::option::of(prop_oneof![Just(HOUR), Just(2 * HOUR), Just(30 * HOUR)]);
    prop_oneof![
        4 => (0usize..3, any::<u8>(), expiry.clone())
            .prop_map(|(account, mask, expires_in)| Kind::Issue { account, mask, expires_in }),
        3 => any::<u8>().prop_map(Kind::SetPermissions),
        1 => expiry.prop_map(Kind::SetExpiry),
        1 => Just(Kind::Rename),
        3 => (any::<bool>(), any::<bool>()).prop_map(|(end_earlier_grace, zero_grace)| {
            Kind::Regenerate { end_earlier_grace, zero_grace }
        }),
        1 => (0usize..3).prop_map(Kind::RegenerateEnvironment),
        1 => (0usize..3).prop_map(Kind::EnvironmentKey),
        2 => Just(Kind::Disable),
        1 => Just(Kind::Enable),
        2 => Just(Kind::Revoke),
        1 => (1u32..3).prop_map(Kind::RevokeVersion),
        1 => Just(Kind::Get),
        1 => proptest::option::of(0usize..3).prop_map(Kind::List),
        1 => prop_oneof![Just(HOUR / 2), Just(HOUR), Just(25 * HOUR)].prop_map(Kind::Advance),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![1 => Just(None), 6 => (0usize..64).prop_map(Some)],
        0usize..64,
        kind(),
    )
        .prop_map(|(actor, target, kind)| Step {
            actor,
            target,
            kind,
        })
}

/// Seed keys, issued by the local operator: (account, permission mask, expiry offset).
fn seeds() -> impl Strategy<Value = Vec<(usize, u8, Option<i64>)>> {
    proptest::collection::vec(
        (
            0usize..3,
            any::<u8>(),
            proptest::option::of(prop_oneof![Just(HOUR), Just(50 * HOUR)]),
        ),
        2..7,
    )
}

// ----- running ---------------------------------------------------------------------------

/// What a key acting at an instant may do, from its stored record (computed here, not by the
/// engine).
struct Acting {
    account: AccountId,
    permissions: PermissionSet,
    expires_at: Option<Timestamp>,
    deployment_wide: bool,
    secret: bool,
}

fn acting(cred: &Credential, version: u32) -> Acting {
    let secret = cred.secrets.iter().find(|s| s.version == version).unwrap();
    let expires_at = [secret.not_after, cred.expires_at]
        .into_iter()
        .flatten()
        .min();
    Acting {
        account: cred.account.clone(),
        deployment_wide: cred.account.as_str() == OPERATOR_ACCOUNT
            && allows(&cred.permissions, "api-key:admin"),
        permissions: cred.permissions.clone(),
        expires_at,
        secret: cred.key_type == KeyType::Secret,
    }
}

fn snapshot(kw: &Keyward) -> BTreeMap<CredentialId, Credential> {
    kw.list(
        OP,
        &ListQuery {
            limit: 1000,
            ..ListQuery::default()
        },
    )
    .unwrap()
    .items
    .into_iter()
    .map(|c| (c.id.clone(), c))
    .collect()
}

/// The events after `after`.
fn events_after(kw: &Keyward, after: u64) -> Vec<Event> {
    let query = EventQuery {
        after,
        limit: 1000,
        ..EventQuery::default()
    };
    kw.events(OP, &query).unwrap().events
}

/// The audit action a step's call records.
fn action_of(kind: &Kind) -> &'static str {
    match kind {
        Kind::Issue { .. } => "issue",
        Kind::SetPermissions(_) | Kind::SetExpiry(_) | Kind::Rename => "update",
        Kind::Regenerate { .. } => "regenerate",
        Kind::RegenerateEnvironment(_) => "regenerate_environment",
        Kind::EnvironmentKey(_) => "environment_key",
        Kind::Disable => "disable",
        Kind::Enable => "enable",
        Kind::Revoke => "revoke",
        Kind::RevokeVersion(_) => "revoke_version",
        Kind::Get | Kind::List(_) => "read",
        Kind::Advance(_) => "none",
    }
}

/// The call's events are its history: its action, its actor, one `ok` event per credential it
/// changed and none for any other, none at all for a refusal or a read.
fn check_log(
    w: &World,
    step: &Step,
    principal: &Principal,
    seen: u64,
    changed: &[CredentialId],
    succeeded: bool,
) -> Result<(), TestCaseError> {
    let events = events_after(&w.kw, seen);
    let actor = match principal {
        Principal::LocalOperator => EventActor::LocalOperator,
        Principal::Key(v) => EventActor::Key {
            id: v.id().clone(),
            account: v.account().clone(),
        },
    };
    for e in &events {
        prop_assert_eq!(e.action.name(), action_of(&step.kind), "{:?}", e);
        prop_assert_eq!(&e.actor, &actor);
    }
    let mut logged: Vec<CredentialId> = events
        .iter()
        .filter(|e| e.outcome == Outcome::Ok)
        .map(|e| e.key.clone().unwrap())
        .collect();
    logged.sort();
    let mut expected = changed.to_vec();
    expected.sort();
    prop_assert_eq!(
        &logged,
        &expected,
        "{:?}: the ok events do not name exactly the keys it changed",
        step.kind
    );
    if !succeeded {
        prop_assert!(expected.is_empty());
    }
    Ok(())
}

fn administrators(all: &BTreeMap<CredentialId, Credential>, now: Timestamp) -> usize {
    all.values()
        .filter(|c| {
            c.account.as_str() == OPERATOR_ACCOUNT
                && c.key_type == KeyType::Secret
                && c.enabled
                && live_secrets(c, now).next().is_some()
                && ["api-key:read", "api-key:write", "api-key:admin"]
                    .iter()
                    .all(|p| allows(&c.permissions, p))
        })
        .count()
}

struct World {
    kw: Keyward,
    clock: Arc<ManualClock>,
    /// Every key handed out, newest plaintext last: (id, plaintext).
    keys: Vec<(CredentialId, String)>,
    /// What the key that last made or changed each credential held then (`None`: the local
    /// operator).
    maker: BTreeMap<CredentialId, Option<PermissionSet>>,
}

impl World {
    fn remember(&mut self, id: &CredentialId, key: &str) {
        self.keys.push((id.clone(), key.to_owned()));
    }
}

fn run(seeds: Vec<(usize, u8, Option<i64>)>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(ts(T0)));
    let kw = Keyward::open(Config::memory().with_clock(clock.clone())).unwrap();
    let mut w = World {
        kw,
        clock,
        keys: Vec::new(),
        maker: BTreeMap::new(),
    };
    // Always one administrator to begin with, as `init` makes it.
    for (account, mask, expires_in) in std::iter::once((2usize, 1u8, None)).chain(seeds) {
        let mut new = NewKey::new(
            ACCOUNTS[account].parse().unwrap(),
            KeyType::Secret,
            Environment::Production,
            "seed".parse().unwrap(),
        )
        .with_permissions(PermissionSet::parse(grants(mask)).unwrap());
        if let Some(d) = expires_in {
            new = new.with_expiry(ts(T0 + d));
        }
        let issued = w.kw.issue(OP, new).unwrap();
        w.maker.insert(issued.credential.id.clone(), None);
        let id = issued.credential.id.clone();
        w.remember(&id, issued.key.expose_secret());
    }
    for step in steps {
        one_step(&mut w, &step)?;
    }
    let verdict = w.kw.verify_events(OP, None).unwrap();
    prop_assert!(verdict.is_ok(), "{:?}", verdict);
    Ok(())
}

#[allow(clippy::too_many_lines)]
fn one_step(w: &mut World, step: &Step) -> Result<(), TestCaseError> {
    if let Kind::Advance(d) = step.kind {
        w.clock.advance(std::time::Duration::from_millis(d as u64));
        return Ok(());
    }
    let now = w.kw.now();
    let before = snapshot(&w.kw);
    let ids: Vec<CredentialId> = before.keys().cloned().collect();
    let target = ids[step.target % ids.len()].clone();
    // The acting principal: the local operator, or a key that verifies now.
    let (principal, actor) = match step.actor {
        None => (Principal::LocalOperator, None),
        Some(i) => {
            let (_, key) = &w.keys[i % w.keys.len()];
            let Ok(verified) = w.kw.verify(key) else {
                // A key that does not verify never reaches the management plane.
                return Ok(());
            };
            let a = acting(&before[verified.id()], verified.version());
            (Principal::Key(verified), Some(a))
        }
    };
    let admins_before = administrators(&before, now);
    let seen = w.kw.event_head(OP).unwrap().map_or(0, |h| h.seq);
    let p = &principal;
    let kw = w.kw.clone();
    // Run the call. `Some(keys)`: it succeeded, handing out these keys.
    let mut read: Vec<Arc<Credential>> = Vec::new();
    let mut reads = false;
    let outcome: Option<Vec<(CredentialId, String)>> = match &step.kind {
        Kind::Issue {
            account,
            mask,
            expires_in,
        } => {
            let mut new = NewKey::new(
                ACCOUNTS[*account].parse().unwrap(),
                KeyType::Secret,
                Environment::Production,
                "made".parse().unwrap(),
            )
            .with_permissions(PermissionSet::parse(grants(*mask)).unwrap());
            if let Some(d) = expires_in {
                new = new.with_expiry(ts(now.as_millis() + d));
            }
            kw.issue(p, new)
                .ok()
                .map(|i| vec![(i.credential.id.clone(), i.key.expose_secret().to_owned())])
        }
        Kind::SetPermissions(mask) => {
            let update = KeyUpdate {
                permissions: Some(PermissionSet::parse(grants(*mask)).unwrap()),
                ..KeyUpdate::default()
            };
            kw.update(p, &target, update).ok().map(|_| Vec::new())
        }
        Kind::SetExpiry(e) => {
            let update = KeyUpdate {
                expires_at: Some(e.map(|d| ts(now.as_millis() + d))),
                ..KeyUpdate::default()
            };
            kw.update(p, &target, update).ok().map(|_| Vec::new())
        }
        Kind::Rename => {
            let update = KeyUpdate {
                name: Some("renamed".parse().unwrap()),
                ..KeyUpdate::default()
            };
            kw.update(p, &target, update).ok().map(|_| Vec::new())
        }
        Kind::Regenerate {
            end_earlier_grace,
            zero_grace,
        } => {
            let options = RegenerateOptions {
                grace_period: zero_grace.then_some(std::time::Duration::ZERO),
                end_earlier_grace: *end_earlier_grace,
                ..RegenerateOptions::default()
            };
            kw.regenerate(p, &target, options)
                .ok()
                .map(|i| vec![(target.clone(), i.key.expose_secret().to_owned())])
        }
        Kind::RegenerateEnvironment(account) => kw
            .regenerate_environment(
                p,
                &ACCOUNTS[*account].parse().unwrap(),
                &Environment::Production,
                RegenerateOptions::default(),
            )
            .ok()
            .map(|done| {
                done.issued
                    .iter()
                    .map(|i| (i.credential.id.clone(), i.key.expose_secret().to_owned()))
                    .collect()
            }),
        Kind::EnvironmentKey(account) => kw
            .environment_key(p, &ACCOUNTS[*account].parse().unwrap(), &Environment::Test)
            .ok()
            .map(|i| vec![(i.credential.id.clone(), i.key.expose_secret().to_owned())]),
        Kind::Disable => kw.disable(p, &target).ok().map(|_| Vec::new()),
        Kind::Enable => kw.enable(p, &target).ok().map(|_| Vec::new()),
        Kind::Revoke => kw.revoke(p, &target).ok().map(|_| Vec::new()),
        Kind::RevokeVersion(v) => kw.revoke_version(p, &target, *v).ok().map(|_| Vec::new()),
        Kind::Get => {
            reads = true;
            kw.get(p, &target).ok().map(|c| {
                read.push(c);
                Vec::new()
            })
        }
        Kind::List(account) => {
            reads = true;
            let query = ListQuery {
                account: account.map(|a| ACCOUNTS[a].parse().unwrap()),
                limit: 1000,
                ..ListQuery::default()
            };
            kw.list(p, &query).ok().map(|page| {
                read.extend(page.items.into_iter().map(Arc::new));
                Vec::new()
            })
        }
        Kind::Advance(_) => None,
    };
    let after = snapshot(&w.kw);
    let changed_ids: Vec<CredentialId> = after
        .values()
        .filter(|c| before.get(&c.id) != Some(*c))
        .map(|c| c.id.clone())
        .collect();
    check_log(w, step, &principal, seen, &changed_ids, outcome.is_some())?;
    let Some(handed) = outcome else {
        prop_assert_eq!(
            &after,
            &before,
            "a refused {:?} changed the store",
            step.kind
        );
        return Ok(());
    };
    for (id, key) in &handed {
        w.remember(id, key);
    }
    // What changed: created or modified credentials.
    let changed: Vec<&Credential> = after
        .values()
        .filter(|c| before.get(&c.id) != Some(*c))
        .collect();
    if let Some(a) = &actor {
        let right = if reads {
            "api-key:read"
        } else {
            "api-key:write"
        };
        prop_assert!(a.secret, "a non-secret key managed keys");
        prop_assert!(
            allows(&a.permissions, right),
            "{:?} succeeded without {}",
            step.kind,
            right
        );
        for c in read.iter().map(|c| &**c).chain(changed.iter().copied()) {
            prop_assert!(
                a.deployment_wide || c.account == a.account,
                "{:?} by a key of {} reached {} ({})",
                step.kind,
                a.account,
                c.account,
                c.id
            );
        }
        for c in &changed {
            prop_assert!(
                covers(&a.permissions, &c.permissions),
                "{:?} left {} holding {:?}, more than its maker's {:?}",
                step.kind,
                c.id,
                c.permissions,
                a.permissions
            );
            if let Some(old) = before.get(&c.id) {
                prop_assert!(
                    covers(&a.permissions, &old.permissions),
                    "{:?} changed {}, stronger than its actor",
                    step.kind,
                    c.id
                );
            }
            let new_plaintext = handed.iter().any(|(id, _)| *id == c.id);
            let redated = before
                .get(&c.id)
                .is_some_and(|o| o.expires_at != c.expires_at);
            if let (Some(limit), true) = (a.expires_at, new_plaintext || redated) {
                prop_assert!(
                    c.expires_at.is_some_and(|e| e <= limit),
                    "{} outlives the key that made or changed it",
                    c.id
                );
            }
        }
        if admins_before > 0 {
            prop_assert!(
                administrators(&after, now) > 0,
                "{:?} by a key removed the last administrator",
                step.kind
            );
        }
    }
    for c in changed {
        w.maker
            .insert(c.id.clone(), actor.as_ref().map(|a| a.permissions.clone()));
    }
    // Every key holds no more than what its last maker held.
    for c in after.values() {
        if let Some(Some(made_by)) = w.maker.get(&c.id) {
            prop_assert!(
                covers(made_by, &c.permissions),
                "{} outgrew its maker",
                c.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn no_sequence_of_calls_escalates_or_reaches_across_accounts(
        seeds in seeds(),
        steps in proptest::collection::vec(step(), 1..48),
    ) {
        run(seeds, steps)?;
    }
}

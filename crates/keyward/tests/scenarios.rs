#![allow(clippy::unwrap_used)]
//! Scenarios written from real systems' documented behaviour (`/work/shared/reference`):
//!
//! * a payment platform's API credentials: "You can use the new API key a few minutes after
//!   generating it. The old API key stops working 24 hours after generating a new one."
//! * PublicSquare: `POST /api-keys/:id/regenerate` keeps the id and returns a new key; name
//!   non-empty and ≤ 100 characters; at least one permission; types publishable / secret /
//!   restricted; environments test / production; scopes such as `api-key:write`.
//! * Equaze / ServiceStack: regenerate the keys of an environment, any environment name.
//! * a dashboard: a generated key is active immediately.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use keyward::core::{
    AccountId, Credential, CredentialId, Environment, Environments, FormatError, KeyType,
    LookupTag, ModelError, Name, Permission, PermissionSet, Timestamp,
};
use keyward::rotation::{Clock, ManualClock, RegenerateOptions, RotationError, RotationPolicy};
use keyward::store::{AuditEntry, Change, ListQuery, MemoryStore, Page, Store, StoreError};
use keyward::{Backend, Config, EngineError, Field, KeyUpdate, Keyward, NewKey, VerifyError};

/// Tests act as the local operator unless they say otherwise.
const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_719_709_349_212; // 2024-06-30T01:02:29.212Z, PublicSquare's example

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn ms(d: i64) -> Duration {
    Duration::from_millis(u64::try_from(d).unwrap())
}

struct Fixture {
    kw: Keyward,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|c| c)
    }

    fn with(configure: impl FnOnce(Config) -> Config) -> Self {
        let clock = Arc::new(ManualClock::new(ts(T0)));
        let kw = Keyward::open(configure(Config::memory().with_clock(clock.clone()))).unwrap();
        Self { kw, clock }
    }

    fn at(&self, t: i64) {
        self.clock.set(ts(t));
    }

    fn issue(&self, new: NewKey) -> (Arc<Credential>, String) {
        let issued = self.kw.issue(OP, new).unwrap();
        (issued.credential, issued.key.expose_secret().to_owned())
    }

    fn regenerate(&self, id: &CredentialId, options: RegenerateOptions) -> String {
        let issued = self.kw.regenerate(OP, id, options).unwrap();
        assert_eq!(&issued.credential.id, id, "a regenerate keeps the id");
        issued.key.expose_secret().to_owned()
    }
}

fn account(s: &str) -> AccountId {
    s.parse().unwrap()
}

fn perms(p: &[&str]) -> PermissionSet {
    PermissionSet::parse(p).unwrap()
}

fn perm(p: &str) -> Permission {
    p.parse().unwrap()
}

fn key(acc: &str, env: Environment) -> NewKey {
    NewKey::new(
        account(acc),
        KeyType::Secret,
        env,
        "Test Application".parse().unwrap(),
    )
    .with_permissions(perms(&["api-key:write", "business:read"]))
}

fn prod_key() -> NewKey {
    key("acc_B518niGwGYKzig6vtrRVZGGGV", Environment::Production)
}

fn version_of(kw: &Keyward, k: &str) -> Result<u32, VerifyError> {
    kw.verify(k).map(|v| v.version())
}

// ----- regenerate: grace and activation delay ---------------------------------------------

#[test]
fn old_secret_works_for_exactly_the_default_24_hours() {
    let f = Fixture::new();
    let (cred, old) = f.issue(prod_key());
    assert_eq!(version_of(&f.kw, &old), Ok(1), "active immediately");
    let t1 = T0 + 3 * HOUR;
    f.at(t1);
    let new = f.regenerate(&cred.id, RegenerateOptions::default());
    assert_ne!(new, old);
    assert_eq!(version_of(&f.kw, &new), Ok(2));
    assert_eq!(version_of(&f.kw, &old), Ok(1));
    assert_eq!(f.kw.verify(&old).unwrap().expires_at(), Some(ts(t1 + DAY)));
    assert_eq!(f.kw.verify(&new).unwrap().expires_at(), None);
    f.at(t1 + DAY - 1);
    assert_eq!(
        version_of(&f.kw, &old),
        Ok(1),
        "one millisecond before the end"
    );
    f.at(t1 + DAY);
    assert_eq!(version_of(&f.kw, &old), Err(VerifyError::Expired));
    assert_eq!(version_of(&f.kw, &new), Ok(2));
    f.at(t1 + 400 * DAY);
    assert_eq!(version_of(&f.kw, &old), Err(VerifyError::Expired));
    assert_eq!(version_of(&f.kw, &new), Ok(2));
}

#[test]
fn grace_override_and_grace_zero() {
    let f = Fixture::new();
    let (cred, v1) = f.issue(prod_key());
    let hour = RegenerateOptions {
        grace_period: Some(ms(HOUR)),
        ..RegenerateOptions::default()
    };
    let v2 = f.regenerate(&cred.id, hour);
    f.at(T0 + HOUR - 1);
    assert_eq!(version_of(&f.kw, &v1), Ok(1));
    f.at(T0 + HOUR);
    assert_eq!(version_of(&f.kw, &v1), Err(VerifyError::Expired));
    let zero = RegenerateOptions {
        grace_period: Some(Duration::ZERO),
        ..RegenerateOptions::default()
    };
    let v3 = f.regenerate(&cred.id, zero);
    assert_eq!(
        version_of(&f.kw, &v2),
        Err(VerifyError::Expired),
        "stops at once"
    );
    assert_eq!(version_of(&f.kw, &v3), Ok(3));
}

#[test]
fn with_an_activation_delay_the_new_key_is_refused_until_due() {
    let f = Fixture::with(|c| {
        c.with_rotation(RotationPolicy {
            activation_delay: ms(5 * MIN),
            ..RotationPolicy::default()
        })
    });
    let (cred, old) = f.issue(prod_key());
    assert_eq!(version_of(&f.kw, &old), Ok(1), "issue is not delayed");
    let t1 = T0 + MIN;
    f.at(t1);
    let new = f.regenerate(&cred.id, RegenerateOptions::default());
    assert_eq!(version_of(&f.kw, &new), Err(VerifyError::NotYetActive));
    assert_eq!(
        f.kw.whoami(&new).map(|c| c.id.clone()),
        Err(VerifyError::NotYetActive)
    );
    f.at(t1 + 5 * MIN - 1);
    assert_eq!(version_of(&f.kw, &new), Err(VerifyError::NotYetActive));
    assert_eq!(
        version_of(&f.kw, &old),
        Ok(1),
        "the old key covers the delay"
    );
    f.at(t1 + 5 * MIN);
    assert_eq!(version_of(&f.kw, &new), Ok(2));
    f.at(t1 + DAY - 1);
    assert_eq!(version_of(&f.kw, &old), Ok(1));
    f.at(t1 + DAY);
    assert_eq!(version_of(&f.kw, &old), Err(VerifyError::Expired));
}

#[test]
fn per_call_activation_delay() {
    let f = Fixture::new();
    let (cred, _) = f.issue(prod_key());
    let new = f.regenerate(
        &cred.id,
        RegenerateOptions {
            activation_delay: Some(ms(5 * MIN)),
            ..RegenerateOptions::default()
        },
    );
    assert_eq!(version_of(&f.kw, &new), Err(VerifyError::NotYetActive));
    f.at(T0 + 5 * MIN);
    assert_eq!(version_of(&f.kw, &new), Ok(2));
}

#[test]
fn grace_never_extends_past_the_credential_expiry() {
    let f = Fixture::new();
    let exp = T0 + 2 * HOUR;
    let (cred, old) = f.issue(prod_key().with_expiry(ts(exp)));
    f.at(T0 + HOUR);
    let new = f.regenerate(&cred.id, RegenerateOptions::default());
    assert_eq!(f.kw.verify(&old).unwrap().expires_at(), Some(ts(exp)));
    assert_eq!(f.kw.verify(&new).unwrap().expires_at(), Some(ts(exp)));
    f.at(exp - 1);
    assert_eq!(version_of(&f.kw, &old), Ok(1));
    assert_eq!(version_of(&f.kw, &new), Ok(2));
    f.at(exp);
    assert_eq!(version_of(&f.kw, &old), Err(VerifyError::Expired));
    assert_eq!(version_of(&f.kw, &new), Err(VerifyError::Expired));
}

#[test]
fn regenerating_keeps_at_most_two_secrets_live() {
    let f = Fixture::new();
    let (cred, k1) = f.issue(prod_key());
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    f.at(T0 + MIN);
    // A third live secret would push k1 out before the day it was promised: refused, nothing
    // changed, unless the caller asks for exactly that.
    let before = f.kw.get(OP, &cred.id).unwrap();
    match f.kw.regenerate(OP, &cred.id, RegenerateOptions::default()) {
        Err(EngineError::Rotation(RotationError::GraceInProgress { version: 1, until })) => {
            assert_eq!(until, ts(T0 + DAY));
        }
        other => panic!("expected GraceInProgress, got {other:?}"),
    }
    assert_eq!(f.kw.get(OP, &cred.id).unwrap(), before);
    assert_eq!(version_of(&f.kw, &k1), Ok(1));
    let ending = RegenerateOptions {
        end_earlier_grace: true,
        ..RegenerateOptions::default()
    };
    let k3 = f.regenerate(&cred.id, ending);
    assert_eq!(
        version_of(&f.kw, &k1),
        Err(VerifyError::Expired),
        "pushed out"
    );
    assert_eq!(version_of(&f.kw, &k2), Ok(2));
    assert_eq!(version_of(&f.kw, &k3), Ok(3));
}

// ----- issue-time rules --------------------------------------------------------------------

#[test]
fn a_restricted_key_without_permissions_is_rejected_at_issue() {
    let f = Fixture::new();
    let new = NewKey::new(
        account("acc_1"),
        KeyType::Restricted,
        Environment::Production,
        "Reporting".parse().unwrap(),
    );
    match f.kw.issue(OP, new.clone()) {
        Err(EngineError::Invalid {
            field: Field::Permissions,
            error: ModelError::RestrictedWithoutPermissions,
        }) => {}
        other => panic!("expected RestrictedWithoutPermissions, got {other:?}"),
    }
    assert_eq!(f.kw.store().len(), 0, "nothing stored");
    let (cred, k) = f.issue(new.with_permissions(perms(&["business:read"])));
    assert!(k.starts_with("rk_prod_"));
    // Nor can an update take its last permission away.
    let emptied = f.kw.update(
        OP,
        &cred.id,
        KeyUpdate {
            permissions: Some(PermissionSet::new()),
            ..KeyUpdate::default()
        },
    );
    assert!(
        matches!(
            emptied,
            Err(EngineError::Invalid {
                field: Field::Permissions,
                error: ModelError::RestrictedWithoutPermissions,
            })
        ),
        "{emptied:?}"
    );
    assert_eq!(
        f.kw.get(OP, &cred.id).unwrap().permissions,
        perms(&["business:read"])
    );
    // Publishable and secret keys may have none.
    for t in [KeyType::Publishable, KeyType::Secret] {
        let new = NewKey::new(account("acc_1"), t, Environment::Test, "x".parse().unwrap());
        f.issue(new);
    }
}

#[test]
fn a_name_of_101_characters_is_refused_and_100_accepted() {
    let long: String = "a".repeat(101);
    assert_eq!(
        long.parse::<Name>(),
        Err(ModelError::NameTooLong { len: 101 })
    );
    // Characters, not bytes.
    let wide: String = "é".repeat(101);
    assert_eq!(
        wide.parse::<Name>(),
        Err(ModelError::NameTooLong { len: 101 })
    );
    assert_eq!("".parse::<Name>(), Err(ModelError::NameEmpty));
    assert_eq!("   ".parse::<Name>(), Err(ModelError::NameEmpty));
    let f = Fixture::new();
    for name in ["a".repeat(100), "é".repeat(100)] {
        let mut new = prod_key();
        new.name = name.parse().unwrap();
        let (cred, k) = f.issue(new);
        assert_eq!(cred.name.as_str(), name);
        assert_eq!(f.kw.whoami(&k).unwrap().name.as_str(), name);
    }
}

// ----- verify / verify_for ----------------------------------------------------------------

#[test]
fn a_key_presented_in_the_wrong_environment_is_refused() {
    let f = Fixture::new();
    let (_, test_key) = f.issue(key("acc_1", Environment::Test));
    assert!(test_key.starts_with("sk_test_"));
    assert_eq!(
        f.kw.verify_for(&test_key, Some(&Environment::Production), None)
            .map(|v| v.version()),
        Err(VerifyError::WrongEnvironment)
    );
    let ok =
        f.kw.verify_for(&test_key, Some(&Environment::Test), None)
            .unwrap();
    assert_eq!(ok.environment(), &Environment::Test);
    // Plain verify does not care about the environment.
    assert_eq!(version_of(&f.kw, &test_key), Ok(1));
}

#[test]
fn missing_and_wildcard_permissions() {
    let f = Fixture::new();
    let mk = |p: &[&str]| {
        f.issue(
            NewKey::new(
                account("acc_1"),
                KeyType::Restricted,
                Environment::Production,
                "r".parse().unwrap(),
            )
            .with_permissions(perms(p)),
        )
        .1
    };
    let read_only = mk(&["business:read"]);
    let resource_wildcard = mk(&["payment-method:*"]);
    let everything = mk(&["*"]);
    let check = |k: &str, p: &str| {
        f.kw.verify_for(k, None, Some(&perm(p)))
            .map(|v| v.version())
    };
    assert_eq!(check(&read_only, "business:read"), Ok(1));
    assert_eq!(
        check(&read_only, "business:write"),
        Err(VerifyError::MissingPermission)
    );
    assert_eq!(
        check(&read_only, "api-key:write"),
        Err(VerifyError::MissingPermission)
    );
    assert_eq!(check(&resource_wildcard, "payment-method:write"), Ok(1));
    assert_eq!(check(&resource_wildcard, "payment-method:read"), Ok(1));
    assert_eq!(
        check(&resource_wildcard, "payment-methods:write"),
        Err(VerifyError::MissingPermission)
    );
    assert_eq!(
        check(&resource_wildcard, "payment:write"),
        Err(VerifyError::MissingPermission)
    );
    assert_eq!(
        check(&resource_wildcard, "business:read"),
        Err(VerifyError::MissingPermission)
    );
    assert_eq!(check(&everything, "business:write"), Ok(1));
    assert_eq!(check(&everything, "api-key:write"), Ok(1));
    // Both requirements at once: the environment is checked first.
    assert_eq!(
        f.kw.verify_for(
            &read_only,
            Some(&Environment::Test),
            Some(&perm("business:write"))
        )
        .map(|v| v.version()),
        Err(VerifyError::WrongEnvironment)
    );
}

#[test]
fn disabled_then_enabled() {
    let f = Fixture::new();
    let (cred, k) = f.issue(prod_key());
    f.kw.disable(OP, &cred.id).unwrap();
    assert_eq!(version_of(&f.kw, &k), Err(VerifyError::Disabled));
    assert_eq!(
        f.kw.whoami(&k).map(|c| c.id.clone()),
        Err(VerifyError::Disabled)
    );
    f.kw.enable(OP, &cred.id).unwrap();
    assert_eq!(version_of(&f.kw, &k), Ok(1));
}

#[test]
fn revoked_stops_every_version_at_once_and_cannot_be_regenerated() {
    let f = Fixture::new();
    let (cred, k1) = f.issue(prod_key());
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    f.at(T0 + SEC);
    f.kw.revoke(OP, &cred.id).unwrap();
    assert_eq!(version_of(&f.kw, &k1), Err(VerifyError::Revoked));
    assert_eq!(version_of(&f.kw, &k2), Err(VerifyError::Revoked));
    match f.kw.regenerate(OP, &cred.id, RegenerateOptions::default()) {
        Err(EngineError::Rotation(RotationError::Revoked)) => {}
        other => panic!("expected Rotation(Revoked), got {other:?}"),
    }
    // Revoked stays revoked: enabling or disabling does not change the reason.
    f.kw.disable(OP, &cred.id).unwrap();
    assert_eq!(version_of(&f.kw, &k2), Err(VerifyError::Revoked));
    f.kw.enable(OP, &cred.id).unwrap();
    assert_eq!(version_of(&f.kw, &k2), Err(VerifyError::Revoked));
}

#[test]
fn revoking_only_the_old_version_ends_its_grace_early() {
    let f = Fixture::new();
    let (cred, k1) = f.issue(prod_key());
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    f.kw.revoke_version(OP, &cred.id, 1).unwrap();
    assert_eq!(version_of(&f.kw, &k1), Err(VerifyError::Revoked));
    assert_eq!(version_of(&f.kw, &k2), Ok(2));
    match f.kw.revoke_version(OP, &cred.id, 9) {
        Err(EngineError::Rotation(RotationError::NoSuchVersion(9))) => {}
        other => panic!("expected NoSuchVersion(9), got {other:?}"),
    }
}

#[test]
fn expired_from_the_expiry_on_and_cannot_be_regenerated() {
    let f = Fixture::new();
    let exp = T0 + 30 * DAY;
    let (cred, k) = f.issue(prod_key().with_expiry(ts(exp)));
    f.at(exp - 1);
    assert_eq!(f.kw.verify(&k).unwrap().expires_at(), Some(ts(exp)));
    f.at(exp);
    assert_eq!(version_of(&f.kw, &k), Err(VerifyError::Expired));
    match f.kw.regenerate(OP, &cred.id, RegenerateOptions::default()) {
        Err(EngineError::Rotation(RotationError::Expired)) => {}
        other => panic!("expected Rotation(Expired), got {other:?}"),
    }
    // Lifting the expiry brings the key back.
    f.kw.update(
        OP,
        &cred.id,
        KeyUpdate {
            expires_at: Some(None),
            ..KeyUpdate::default()
        },
    )
    .unwrap();
    assert_eq!(version_of(&f.kw, &k), Ok(1));
}

#[test]
fn a_wrong_secret_for_a_known_lookup_tag_is_unknown() {
    let f = Fixture::new();
    let (_, k) = f.issue(prod_key());
    // Change one secret character (after the 16-character lookup tag) and recompute the
    // checksum: well-formed, known lookup tag, wrong secret.
    let mut b = k.as_bytes().to_vec();
    let i = b.len() - 6 - 1;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    let without = std::str::from_utf8(&b[..b.len() - 6]).unwrap().to_owned();
    let forged = format!(
        "{without}{}",
        std::str::from_utf8(&keyward::core::checksum(without.as_bytes())).unwrap()
    );
    assert!(f.kw.format().parse(&forged).is_ok(), "well-formed");
    assert_eq!(version_of(&f.kw, &forged), Err(VerifyError::Unknown));
    // Only the checksum broken: malformed, rejected offline.
    let mut typo = k.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        version_of(&f.kw, std::str::from_utf8(&typo).unwrap()),
        Err(VerifyError::Malformed(FormatError::BadChecksum))
    );
    assert_eq!(
        version_of(&f.kw, "sk_prod_nope"),
        Err(VerifyError::Malformed(FormatError::BadBodyLength))
    );
    assert_eq!(version_of(&f.kw, &k), Ok(1), "the real key still works");
}

// ----- environments and namespaces --------------------------------------------------------

#[test]
fn custom_environment_with_a_configured_tag() {
    let mut envs = Environments::default();
    envs.insert("staging", "stg").unwrap();
    let f = Fixture::with(|c| c.with_environments(envs));
    let staging: Environment = "staging".parse().unwrap();
    let (cred, k) = f.issue(key("acc_1", staging.clone()));
    assert!(k.starts_with("sk_stg_"), "{k}");
    assert_eq!(cred.environment, staging);
    let v = f.kw.verify_for(&k, Some(&staging), None).unwrap();
    assert_eq!(v.environment(), &staging);
    assert_eq!(
        f.kw.verify_for(&k, Some(&Environment::Production), None)
            .map(|v| v.version()),
        Err(VerifyError::WrongEnvironment)
    );
    // The regenerated key keeps the environment and its tag.
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    assert!(k2.starts_with("sk_stg_"), "{k2}");
    assert_eq!(
        f.kw.verify_for(&k2, Some(&staging), None)
            .unwrap()
            .version(),
        2
    );
}

#[test]
fn keys_of_another_namespace_are_malformed() {
    let acme = Fixture::with(|c| c.with_namespace("acme"));
    let other = Fixture::with(|c| c.with_namespace("globex"));
    let none = Fixture::new();
    let (_, acme_key) = acme.issue(prod_key());
    let (_, other_key) = other.issue(prod_key());
    let (_, plain_key) = none.issue(prod_key());
    assert!(acme_key.starts_with("acme_sk_prod_"), "{acme_key}");
    assert!(plain_key.starts_with("sk_prod_"), "{plain_key}");
    assert_eq!(version_of(&acme.kw, &acme_key), Ok(1));
    let wrong = Err(VerifyError::Malformed(FormatError::WrongNamespace));
    assert_eq!(version_of(&acme.kw, &other_key), wrong);
    assert_eq!(version_of(&acme.kw, &plain_key), wrong);
    assert_eq!(version_of(&none.kw, &acme_key), wrong);
    assert_eq!(version_of(&other.kw, &acme_key), wrong);
}

// ----- regenerate_environment ---------------------------------------------------------------

#[test]
fn regenerate_environment_regenerates_every_live_key_of_that_account_and_environment() {
    let f = Fixture::new();
    let a = "acc_a";
    let (p1, p1_old) = f.issue(key(a, Environment::Production));
    let (p2, p2_old) = f.issue(key(a, Environment::Production));
    let (revoked, _) = f.issue(key(a, Environment::Production));
    f.kw.revoke(OP, &revoked.id).unwrap();
    let (expired, _) = f.issue(key(a, Environment::Production).with_expiry(ts(T0 + MIN)));
    let (a_test, _) = f.issue(key(a, Environment::Test));
    let (b_prod, _) = f.issue(key("acc_b", Environment::Production));
    f.at(T0 + HOUR);
    let before: Vec<Arc<Credential>> = [&revoked, &expired, &a_test, &b_prod]
        .iter()
        .map(|c| f.kw.get(OP, &c.id).unwrap())
        .collect();

    let issued =
        f.kw.regenerate_environment(
            OP,
            &account(a),
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap()
        .issued;
    let mut got: Vec<CredentialId> = issued.iter().map(|i| i.credential.id.clone()).collect();
    got.sort();
    let mut want = vec![p1.id.clone(), p2.id.clone()];
    want.sort();
    assert_eq!(got, want);
    for i in &issued {
        let k = i.key.expose_secret();
        assert!(k.starts_with("sk_prod_"));
        let v = f.kw.verify(k).unwrap();
        assert_eq!(v.id(), &i.credential.id);
        assert_eq!(v.version(), 2);
    }
    // The old keys are in grace.
    assert_eq!(version_of(&f.kw, &p1_old), Ok(1));
    assert_eq!(version_of(&f.kw, &p2_old), Ok(1));
    f.at(T0 + HOUR + DAY);
    assert_eq!(version_of(&f.kw, &p1_old), Err(VerifyError::Expired));
    // Everything else is untouched.
    for b in before {
        assert_eq!(f.kw.get(OP, &b.id).unwrap(), b, "{} changed", b.id);
    }
    // An environment with nothing to regenerate.
    let none =
        f.kw.regenerate_environment(
            OP,
            &account("acc_nobody"),
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap()
        .issued;
    assert!(none.is_empty());
}

/// A clock that moves forward by `step` every time it is read (once armed).
struct TickingClock {
    now: AtomicI64,
    step: AtomicI64,
}

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let step = self.step.load(Ordering::SeqCst);
        ts(self.now.fetch_add(step, Ordering::SeqCst))
    }
}

#[test]
fn regenerate_environment_skips_a_key_that_expires_midway_and_loses_no_new_key() {
    // Keys that expire between the listing and their regenerate (as a concurrent revoke
    // would) are left alone; the call must neither fail nor throw away the keys it already
    // regenerated (their holders would never see them while the old ones run out).
    let clock = Arc::new(TickingClock {
        now: AtomicI64::new(T0),
        step: AtomicI64::new(0),
    });
    let kw = Keyward::open(Config::memory().with_clock(clock.clone())).unwrap();
    let acc = "acc_a";
    let mut live = Vec::new();
    let mut expiring = Vec::new();
    for _ in 0..6 {
        live.push(
            kw.issue(OP, key(acc, Environment::Production))
                .unwrap()
                .credential,
        );
        // Live at the listing (T0), expired one tick (an hour) later.
        let exp = key(acc, Environment::Production).with_expiry(ts(T0 + 30 * MIN));
        expiring.push(kw.issue(OP, exp).unwrap().credential);
    }
    clock.step.store(HOUR, Ordering::SeqCst);
    let issued = kw
        .regenerate_environment(
            OP,
            &account(acc),
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap()
        .issued;
    let mut got: Vec<CredentialId> = issued.iter().map(|i| i.credential.id.clone()).collect();
    got.sort();
    let mut want: Vec<CredentialId> = live.iter().map(|c| c.id.clone()).collect();
    want.sort();
    assert_eq!(got, want);
    clock.step.store(0, Ordering::SeqCst);
    for i in &issued {
        assert_eq!(kw.verify(i.key.expose_secret()).unwrap().version(), 2);
    }
    // Every stored secret was handed to someone: one per key returned, plus the first.
    for c in live.iter().chain(&expiring) {
        let returned = issued.iter().filter(|i| i.credential.id == c.id).count();
        assert_eq!(
            kw.get(OP, &c.id).unwrap().secrets.len(),
            1 + returned,
            "{}",
            c.id
        );
    }
}

// ----- whoami, sweep ------------------------------------------------------------------------

#[test]
fn whoami_returns_the_credential_behind_a_key() {
    let f = Fixture::new();
    let (cred, k) = f.issue(prod_key());
    let me = f.kw.whoami(&k).unwrap();
    assert_eq!(me.id, cred.id);
    assert_eq!(me.account.as_str(), "acc_B518niGwGYKzig6vtrRVZGGGV");
    assert_eq!(me.name.as_str(), "Test Application");
    assert_eq!(me.environment, Environment::Production);
    assert_eq!(me.key_type, KeyType::Secret);
    assert_eq!(me.permissions, perms(&["api-key:write", "business:read"]));
    assert_eq!(me.created_at, ts(T0));
    // The same credential through the regenerated key.
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    assert_eq!(f.kw.whoami(&k2).unwrap().id, cred.id);
    f.kw.revoke(OP, &cred.id).unwrap();
    assert_eq!(
        f.kw.whoami(&k).map(|c| c.id.clone()),
        Err(VerifyError::Revoked)
    );
}

#[test]
fn sweep_expires_keys_at_their_maximum_age() {
    let f = Fixture::with(|c| {
        c.with_rotation(RotationPolicy {
            max_age: Some(ms(90 * DAY)),
            expire_at_max_age: true,
            ..RotationPolicy::default()
        })
    });
    let (old, old_key) = f.issue(prod_key());
    f.at(T0 + 60 * DAY);
    let (young, young_key) = f.issue(prod_key());
    f.at(T0 + 90 * DAY - 1);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert_eq!(report.examined, 2);
    assert!(report.expired.is_empty());
    f.at(T0 + 90 * DAY);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert_eq!(report.expired, vec![old.id.clone()]);
    assert_eq!(version_of(&f.kw, &old_key), Err(VerifyError::Expired));
    assert_eq!(
        f.kw.get(OP, &old.id).unwrap().expires_at,
        Some(ts(T0 + 90 * DAY))
    );
    assert_eq!(version_of(&f.kw, &young_key), Ok(1));
    // Applying it again changes nothing.
    let again = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert!(again.expired.is_empty(), "{again:?}");
    assert_eq!(f.kw.get(OP, &young.id).unwrap().expires_at, None);
}

#[test]
fn sweep_reports_rotation_due_and_expiring_soon() {
    let f = Fixture::with(|c| {
        c.with_rotation(RotationPolicy {
            max_age: Some(ms(90 * DAY)),
            ..RotationPolicy::default()
        })
    });
    let (stale, stale_key) = f.issue(prod_key());
    let (soon, _) = f.issue(prod_key().with_expiry(ts(T0 + 95 * DAY)));
    f.at(T0 + 91 * DAY);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    let mut due = report.rotation_due.clone();
    due.sort();
    let mut want = vec![stale.id.clone(), soon.id.clone()];
    want.sort();
    assert_eq!(due, want);
    assert!(report.expired.is_empty());
    assert_eq!(
        report.expiring_soon,
        vec![(soon.id.clone(), ts(T0 + 95 * DAY))]
    );
    assert_eq!(
        version_of(&f.kw, &stale_key),
        Ok(1),
        "reported, not expired"
    );
    // Regenerating resets the age.
    f.regenerate(&stale.id, RegenerateOptions::default());
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert_eq!(report.rotation_due, vec![soon.id.clone()]);
}

#[test]
fn sweep_purges_dead_secrets_after_purge_after() {
    let f = Fixture::new(); // 24 h grace, purge after 30 days
    let (cred, k1) = f.issue(prod_key());
    let k2 = f.regenerate(&cred.id, RegenerateOptions::default());
    f.at(T0 + DAY + 30 * DAY - 1);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert!(report.purged.is_empty());
    assert_eq!(version_of(&f.kw, &k1), Err(VerifyError::Expired));
    f.at(T0 + DAY + 30 * DAY);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert_eq!(report.purged, vec![(cred.id.clone(), 1)]);
    let stored = f.kw.get(OP, &cred.id).unwrap();
    assert_eq!(
        stored.secrets.iter().map(|s| s.version).collect::<Vec<_>>(),
        vec![2]
    );
    // A purged secret is no longer known at all; the current key is unaffected.
    assert_eq!(version_of(&f.kw, &k1), Err(VerifyError::Unknown));
    assert_eq!(version_of(&f.kw, &k2), Ok(2));
    let again = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert!(again.purged.is_empty());
    // The newest secret is never purged, even long after a revoke.
    f.kw.revoke(OP, &cred.id).unwrap();
    f.at(T0 + 400 * DAY);
    let report = f.kw.sweep(OP, f.kw.now()).unwrap();
    assert!(report.purged.is_empty(), "{report:?}");
    assert_eq!(version_of(&f.kw, &k2), Err(VerifyError::Revoked));
}

// ----- storage -------------------------------------------------------------------------------

/// A memory store whose warm-up scan also reports one undecodable record.
struct CorruptOnOpen {
    inner: Arc<MemoryStore>,
    corrupt: bool,
}

const CORRUPT_ID: &str = "key_0000000000000000000000bad";

impl Store for CorruptOnOpen {
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
        self.inner.commit(change)
    }
    fn events(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.events(after, limit)
    }
    fn last_event(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.inner.last_event()
    }
    fn trim_events(&self, up_to: u64) -> Result<usize, StoreError> {
        self.inner.trim_events(up_to)
    }
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        self.inner.scan(visit)?;
        if self.corrupt {
            visit(Err(StoreError::Corrupt {
                id: CORRUPT_ID.into(),
                reason: "truncated record".into(),
            }));
        }
        Ok(())
    }
}

#[test]
fn corrupt_storage_surfaces_through_startup_errors() {
    let shared = Arc::new(MemoryStore::new());
    let open = |corrupt: bool| {
        Keyward::open(
            Config::new(Backend::Custom(Box::new(CorruptOnOpen {
                inner: shared.clone(),
                corrupt,
            })))
            .with_development_pepper(),
        )
        .unwrap()
    };
    let kw = open(false);
    let k = kw
        .issue(OP, prod_key())
        .unwrap()
        .key
        .expose_secret()
        .to_owned();
    assert!(kw.startup_errors().is_empty());
    drop(kw);
    let kw = open(true);
    let errors = kw.startup_errors();
    assert_eq!(errors.len(), 1);
    match &errors[0] {
        StoreError::Corrupt { id, .. } => assert_eq!(id, CORRUPT_ID),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        errors[0].to_string().contains(CORRUPT_ID),
        "names the record"
    );
    // Every other credential keeps working.
    assert_eq!(version_of(&kw, &k), Ok(1));
}

#[cfg(feature = "sled")]
#[test]
fn sled_keys_survive_a_reopen_with_their_lifecycle_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let clock = Arc::new(ManualClock::new(ts(T0)));
    let open = || {
        Keyward::open(
            Config::sled(&path)
                .with_development_pepper()
                .with_clock(clock.clone()),
        )
        .unwrap()
    };
    let kw = open();
    let (cred, k1) = {
        let i = kw.issue(OP, prod_key()).unwrap();
        (i.credential, i.key.expose_secret().to_owned())
    };
    clock.set(ts(T0 + HOUR));
    let k2 = kw
        .regenerate(OP, &cred.id, RegenerateOptions::default())
        .unwrap()
        .key
        .expose_secret()
        .to_owned();
    let (revoked, k3) = {
        let i = kw.issue(OP, prod_key()).unwrap();
        (i.credential, i.key.expose_secret().to_owned())
    };
    kw.revoke(OP, &revoked.id).unwrap();
    drop(kw);
    let kw = open();
    assert!(kw.startup_errors().is_empty());
    assert_eq!(version_of(&kw, &k1), Ok(1));
    assert_eq!(version_of(&kw, &k2), Ok(2));
    assert_eq!(version_of(&kw, &k3), Err(VerifyError::Revoked));
    clock.set(ts(T0 + HOUR + DAY));
    assert_eq!(version_of(&kw, &k1), Err(VerifyError::Expired));
    assert_eq!(version_of(&kw, &k2), Ok(2));
}

// ----- a store failure partway through regenerate_environment -------------------------------

/// A store whose credential writes start failing once `writes_left` reaches zero.
struct FailingWrites {
    inner: MemoryStore,
    writes_left: Arc<AtomicI64>,
}

impl Store for FailingWrites {
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
        if change.write.is_some() && self.writes_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(StoreError::Backend {
                message: "disk full".into(),
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
        self.inner.trim_events(up_to)
    }
    fn scan(
        &self,
        visit: &mut dyn FnMut(Result<Credential, StoreError>),
    ) -> Result<(), StoreError> {
        self.inner.scan(visit)
    }
}

#[test]
fn regenerate_environment_failing_partway_hands_back_the_keys_already_rotated() {
    let writes_left = Arc::new(AtomicI64::new(i64::MAX));
    let kw = Keyward::open(
        Config::new(Backend::Custom(Box::new(FailingWrites {
            inner: MemoryStore::new(),
            writes_left: writes_left.clone(),
        })))
        .with_development_pepper(),
    )
    .unwrap();
    let old: Vec<String> = (0..3)
        .map(|_| {
            kw.issue(OP, key("acc_p", Environment::Production))
                .unwrap()
                .key
                .expose_secret()
                .to_owned()
        })
        .collect();
    // One more write succeeds, then the disk is "full".
    writes_left.store(1, Ordering::SeqCst);
    let partial = kw
        .regenerate_environment(
            OP,
            &account("acc_p"),
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        partial.issued.len(),
        1,
        "exactly one key was rotated before the failure"
    );
    assert!(matches!(
        partial.error,
        EngineError::Store(StoreError::Backend { .. })
    ));
    // The rotated key's new secret works, and every old key still works (in grace or untouched).
    let new = partial.issued[0].key.expose_secret();
    assert_eq!(
        kw.verify(new).unwrap().id(),
        &partial.issued[0].credential.id
    );
    for k in &old {
        assert!(kw.verify(k).is_ok());
    }
}

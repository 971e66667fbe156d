#![allow(clippy::unwrap_used)]
//! Model-based test of the whole key lifecycle with a manual clock.
//!
//! Random sequences of issue / regenerate (random grace and activation-delay overrides,
//! including zero) / regenerate_environment / revoke / revoke_version / disable / enable /
//! update (expiry, permissions) / advance time (small and large steps, and landing exactly on a
//! boundary or one millisecond before it) / verify (of any key ever issued, or a mutated one) /
//! verify_for. After every step, `verify` of every key ever issued agrees with a reference model
//! written here from the documented rules, and every stored record agrees with the model's.
//! Run against the memory backend and against sled and redb in a temporary directory, where a
//! reopen step drops the engine and opens the store again.

use std::sync::Arc;
use std::time::Duration;

use keyward::core::ModelError;
use keyward::core::{
    Credential, CredentialId, Environment, Environments, FormatError, KeyType, Pepper, Permission,
    PermissionSet, Timestamp,
};
use keyward::rotation::{ManualClock, RegenerateOptions, RotationError, RotationPolicy};
use keyward::{Config, EngineError, Field, KeyUpdate, Keyward, NewKey, VerifyError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Tests act as the local operator unless they say otherwise.
const OP: &keyward::Principal = &keyward::Principal::LocalOperator;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_000_000_000;

const ACCOUNTS: [&str; 2] = ["acc_alpha", "acc_beta"];
/// Permissions a key may hold (bit i of a mask selects GRANTS[i]).
const GRANTS: [&str; 5] = ["*", "a:*", "a:read", "a:write", "b:read"];
/// Permissions a caller may require.
const REQUIRED: [&str; 5] = ["a:read", "a:write", "b:read", "b:write", "c:x"];
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// lookup (16) + secret (33) + checksum (6), per docs/key-format.md.
const BODY: usize = 55;
const CHECKSUM: usize = 6;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn dur(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap())
}

fn environment(i: u8) -> Environment {
    match i % 3 {
        0 => Environment::Production,
        1 => Environment::Test,
        _ => "staging".parse().unwrap(),
    }
}

/// The tag each environment has in keys: `staging` is configured as `stg`.
fn tag_of(env: &Environment) -> &'static str {
    match env {
        Environment::Production => "prod",
        Environment::Test => "test",
        Environment::Custom(_) => "stg",
    }
}

fn grants(mask: u8) -> Vec<&'static str> {
    GRANTS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, g)| *g)
        .collect()
}

fn permission_set(grants: &[&str]) -> PermissionSet {
    PermissionSet::parse(grants).unwrap()
}

/// `*` grants all; `r:*` grants every `r:…`; `r:a` grants only itself.
fn model_allows(grants: &[&str], required: &str) -> bool {
    grants.iter().any(|g| {
        *g == "*"
            || *g == required
            || g.strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with(':') && required.starts_with(prefix))
    })
}

// ----- the reference model ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Pending,
    Usable,
    Expired,
    Revoked,
}

#[derive(Debug, Clone)]
struct MSecret {
    version: u32,
    not_before: i64,
    not_after: Option<i64>,
    revoked_at: Option<i64>,
}

impl MSecret {
    /// When it stops: its own end or the credential's expiry, whichever is first.
    fn end(&self, expires: Option<i64>) -> Option<i64> {
        [self.not_after, expires].into_iter().flatten().min()
    }

    fn state(&self, expires: Option<i64>, now: i64) -> MState {
        if self.revoked_at.is_some() {
            return MState::Revoked;
        }
        match self.end(expires) {
            // Past its end, or never usable at all (ended before it activated).
            Some(end) if now >= end || end <= self.not_before => MState::Expired,
            _ if now < self.not_before => MState::Pending,
            _ => MState::Usable,
        }
    }

    fn live(&self, expires: Option<i64>, now: i64) -> bool {
        matches!(self.state(expires, now), MState::Pending | MState::Usable)
    }
}

#[derive(Debug, Clone)]
struct MCred {
    id: CredentialId,
    account: usize,
    env: Environment,
    key_type: KeyType,
    grants: Vec<&'static str>,
    expires: Option<i64>,
    enabled: bool,
    secrets: Vec<MSecret>,
}

#[derive(Debug, Clone)]
struct MKey {
    cred: usize,
    version: u32,
    key: String,
}

#[derive(Debug)]
struct Model {
    now: i64,
    grace: i64,
    delay: i64,
    limit: usize,
    creds: Vec<MCred>,
    keys: Vec<MKey>,
}

impl Model {
    fn secret(&self, k: &MKey) -> &MSecret {
        self.creds[k.cred]
            .secrets
            .iter()
            .find(|s| s.version == k.version)
            .unwrap()
    }

    /// What verify / verify_for must answer for a key the model issued. Reasons about the
    /// presented secret that no operator action undoes (revoked, expired) come before the
    /// credential's enabled flag; then not-yet-active; then what the caller requires.
    fn verify(
        &self,
        k: &MKey,
        env: Option<&Environment>,
        required: Option<&str>,
    ) -> Result<(), VerifyError> {
        let c = &self.creds[k.cred];
        match self.secret(k).state(c.expires, self.now) {
            MState::Revoked => return Err(VerifyError::Revoked),
            MState::Expired => return Err(VerifyError::Expired),
            MState::Pending | MState::Usable => {}
        }
        if !c.enabled {
            return Err(VerifyError::Disabled);
        }
        if self.secret(k).state(c.expires, self.now) == MState::Pending {
            return Err(VerifyError::NotYetActive);
        }
        if env.is_some_and(|e| *e != c.env) {
            return Err(VerifyError::WrongEnvironment);
        }
        if required.is_some_and(|p| !model_allows(&c.grants, p)) {
            return Err(VerifyError::MissingPermission);
        }
        Ok(())
    }

    /// Regenerates credential `i` at `now`; returns the new version.
    /// Regenerates credential `i` at `now`; returns the new version. Without
    /// `end_earlier_grace`, a regenerate that would end a secret before the end an earlier
    /// regenerate promised it is refused and changes nothing.
    fn regenerate(
        &mut self,
        i: usize,
        grace: Option<i64>,
        delay: Option<i64>,
        end_earlier_grace: bool,
    ) -> Result<u32, RotationError> {
        let before = self.creds[i].secrets.clone();
        let now = self.now;
        let version = self.regenerate_unchecked(i, grace, delay)?;
        if end_earlier_grace {
            return Ok(version);
        }
        let after = &self.creds[i].secrets;
        let cut = before.iter().zip(after).find_map(|(b, a)| {
            let promised = b.not_after?;
            (b.live(None, now) && a.not_after.is_some_and(|end| end < promised))
                .then_some((b.version, promised))
        });
        match cut {
            None => Ok(version),
            Some((version, promised)) => {
                self.creds[i].secrets = before;
                Err(RotationError::GraceInProgress {
                    version,
                    until: ts(promised),
                })
            }
        }
    }

    fn regenerate_unchecked(
        &mut self,
        i: usize,
        grace: Option<i64>,
        delay: Option<i64>,
    ) -> Result<u32, RotationError> {
        let now = self.now;
        let limit = self.limit.max(1);
        let grace = grace.unwrap_or(self.grace);
        let delay = delay.unwrap_or(self.delay);
        let c = &mut self.creds[i];
        if c.secrets.iter().all(|s| s.revoked_at.is_some()) {
            return Err(RotationError::Revoked);
        }
        if c.expires.is_some_and(|e| now >= e) {
            return Err(RotationError::Expired);
        }
        let grace_end = c.expires.map_or(now + grace, |e| e.min(now + grace));
        // Liveness by each secret's own window: the expiry may be extended later.
        for s in &mut c.secrets {
            if s.live(None, now) {
                s.not_after = Some(s.not_after.map_or(grace_end, |a| a.min(grace_end)));
            }
        }
        let version = c.secrets.iter().map(|s| s.version).max().unwrap() + 1;
        c.secrets.push(MSecret {
            version,
            not_before: now + delay,
            not_after: None,
            revoked_at: None,
        });
        let live: Vec<usize> = (0..c.secrets.len())
            .filter(|&j| c.secrets[j].live(None, now))
            .collect();
        for &j in live.iter().take(live.len().saturating_sub(limit)) {
            c.secrets[j].not_after = Some(now);
        }
        Ok(version)
    }

    /// Every instant after now at which some key's answer may change.
    fn boundaries(&self) -> Vec<i64> {
        let mut b: Vec<i64> = self
            .creds
            .iter()
            .flat_map(|c| {
                c.secrets
                    .iter()
                    .flat_map(|s| [Some(s.not_before), s.not_after])
                    .chain([c.expires])
                    .flatten()
            })
            .filter(|&t| t > self.now)
            .collect();
        b.sort_unstable();
        b.dedup();
        b
    }
}

// ----- operations ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// One body character changed: the checksum no longer matches.
    BreakChecksum(usize, usize),
    /// One secret character changed and the checksum recomputed: a known lookup tag with a
    /// wrong secret.
    WrongSecret(usize, usize),
    /// Another environment's tag, checksum recomputed.
    OtherEnvironmentTag(u8),
    /// Another deployment's namespace in front, checksum recomputed.
    OtherNamespace,
}

#[derive(Debug, Clone)]
enum Advance {
    Small(i64),
    Large(i64),
    /// Exactly the default grace period.
    Day,
    /// Onto the n-th upcoming boundary, or one millisecond before it.
    Boundary(usize, bool),
}

#[derive(Debug, Clone)]
enum Op {
    Issue {
        account: usize,
        env: u8,
        key_type: usize,
        grants: u8,
        expires_in: Option<i64>,
    },
    Regenerate {
        cred: usize,
        grace: Option<i64>,
        delay: Option<i64>,
        end_earlier_grace: bool,
    },
    RegenerateEnvironment {
        account: usize,
        env: u8,
        grace: Option<i64>,
        end_earlier_grace: bool,
    },
    Revoke(usize),
    RevokeVersion(usize, u32),
    Disable(usize),
    Enable(usize),
    UpdateExpiry(usize, Option<i64>),
    UpdatePermissions(usize, u8),
    Advance(Advance),
    Verify(usize, Option<Mutation>),
    /// The newest key of a credential, with an environment and/or a permission required.
    VerifyFor(usize, Option<u8>, Option<usize>),
    Reopen,
}

fn grace_override() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(prop_oneof![
        Just(0),
        Just(1),
        Just(5 * MIN),
        Just(DAY),
        0..2 * DAY
    ])
}

fn delay_override() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(prop_oneof![Just(0), Just(1), Just(5 * MIN), 0..HOUR])
}

fn mutation() -> impl Strategy<Value = Option<Mutation>> {
    prop_oneof![
        3 => Just(None),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, c)| Some(Mutation::BreakChecksum(p, c))),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, c)| Some(Mutation::WrongSecret(p, c))),
        1 => (1u8..3).prop_map(|d| Some(Mutation::OtherEnvironmentTag(d))),
        1 => Just(Some(Mutation::OtherNamespace)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..64;
    prop_oneof![
        4 => (0usize..2, 0u8..3, 0usize..3, any::<u8>(),
              proptest::option::of(prop_oneof![Just(0i64), -HOUR..0, 1..3 * DAY]))
            .prop_map(|(account, env, key_type, grants, expires_in)| Op::Issue {
                account, env, key_type, grants: grants & 0b1_1111, expires_in,
            }),
        5 => (idx.clone(), grace_override(), delay_override(), any::<bool>())
            .prop_map(|(cred, grace, delay, end_earlier_grace)| {
                Op::Regenerate { cred, grace, delay, end_earlier_grace }
            }),
        1 => (0usize..2, 0u8..3, grace_override(), any::<bool>())
            .prop_map(|(account, env, grace, end_earlier_grace)| {
                Op::RegenerateEnvironment { account, env, grace, end_earlier_grace }
            }),
        1 => idx.clone().prop_map(Op::Revoke),
        1 => (idx.clone(), 1u32..6).prop_map(|(c, v)| Op::RevokeVersion(c, v)),
        1 => idx.clone().prop_map(Op::Disable),
        1 => idx.clone().prop_map(Op::Enable),
        1 => (idx.clone(), proptest::option::of(prop_oneof![-HOUR..0, 0..3 * DAY]))
            .prop_map(|(c, e)| Op::UpdateExpiry(c, e)),
        1 => (idx.clone(), 0u8..32).prop_map(|(c, g)| Op::UpdatePermissions(c, g)),
        5 => prop_oneof![
            3 => (0i64..10_000).prop_map(Advance::Small),
            1 => (HOUR..2 * DAY).prop_map(Advance::Large),
            1 => Just(Advance::Day),
            3 => (0usize..8, any::<bool>()).prop_map(|(n, before)| Advance::Boundary(n, before)),
        ].prop_map(Op::Advance),
        3 => (idx.clone(), mutation()).prop_map(|(k, m)| Op::Verify(k, m)),
        4 => (idx, proptest::option::of(0u8..3), proptest::option::of(0usize..REQUIRED.len()))
            .prop_map(|(k, e, p)| Op::VerifyFor(k, e, p)),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone)]
struct PolicyChoice {
    grace: i64,
    delay: i64,
    limit: usize,
}

fn policy() -> impl Strategy<Value = PolicyChoice> {
    (
        prop_oneof![Just(0), Just(1), Just(5 * MIN), Just(DAY)],
        prop_oneof![Just(0), Just(5 * MIN)],
        1usize..4,
    )
        .prop_map(|(grace, delay, limit)| PolicyChoice {
            grace,
            delay,
            limit,
        })
}

// ----- running ---------------------------------------------------------------------------

fn with_checksum(without: &str) -> String {
    let sum = keyward::core::checksum(without.as_bytes());
    format!("{without}{}", std::str::from_utf8(&sum).unwrap())
}

fn other_char(current: u8, pick: usize) -> u8 {
    let c = ALNUM[pick % ALNUM.len()];
    if c == current {
        ALNUM[(pick + 1) % ALNUM.len()]
    } else {
        c
    }
}

/// A mutated form of `key` and what verify must say about it.
fn mutate(key: &str, m: Mutation) -> (String, VerifyError) {
    let mut b = key.as_bytes().to_vec();
    let body = b.len() - BODY;
    match m {
        Mutation::BreakChecksum(pos, pick) => {
            let i = body + pos % BODY;
            b[i] = other_char(b[i], pick);
            (
                String::from_utf8(b).unwrap(),
                VerifyError::Malformed(FormatError::BadChecksum),
            )
        }
        Mutation::WrongSecret(pos, pick) => {
            let i = body + 16 + pos % 33;
            b[i] = other_char(b[i], pick);
            let s = String::from_utf8(b).unwrap();
            (
                with_checksum(&s[..s.len() - CHECKSUM]),
                VerifyError::Unknown,
            )
        }
        Mutation::OtherEnvironmentTag(d) => {
            let (ty, rest) = key.split_once('_').unwrap();
            let (tag, tail) = rest.split_once('_').unwrap();
            let tags = ["prod", "test", "stg"];
            let at = tags.iter().position(|t| *t == tag).unwrap();
            let other = tags[(at + usize::from(d)) % 3];
            let s = format!("{ty}_{other}_{tail}");
            (
                with_checksum(&s[..s.len() - CHECKSUM]),
                VerifyError::Unknown,
            )
        }
        Mutation::OtherNamespace => {
            let s = format!("zz_{}", &key[..key.len() - CHECKSUM]);
            (
                with_checksum(&s),
                VerifyError::Malformed(FormatError::WrongNamespace),
            )
        }
    }
}

fn expect_rotation_error(r: Result<impl std::fmt::Debug, EngineError>, want: RotationError) {
    match r {
        Err(EngineError::Rotation(e)) => assert_eq!(e, want),
        other => panic!("expected Rotation({want:?}), got {other:?}"),
    }
}

/// The engine's answer for `k` against the model's, including what a verified key reports.
fn check_key(
    kw: &Keyward,
    model: &Model,
    k: &MKey,
    env: Option<&Environment>,
    required: Option<&str>,
) -> Result<(), TestCaseError> {
    let permission = required.map(|p| p.parse::<Permission>().unwrap());
    let got = kw.verify_for(&k.key, env, permission.as_ref());
    let want = model.verify(k, env, required);
    if env.is_none() && required.is_none() {
        // The borrowing form answers exactly as the owned one.
        let lent = kw.verify_with(&k.key, |v| {
            (
                v.id().clone(),
                v.version(),
                v.expires_at(),
                v.to_owned().version(),
            )
        });
        let owned = got
            .as_ref()
            .map(|v| (v.id().clone(), v.version(), v.expires_at(), v.version()))
            .map_err(|e| *e);
        prop_assert_eq!(lent, owned, "verify_with vs verify, key v{}", k.version);
    }
    let c = &model.creds[k.cred];
    match (&got, &want) {
        (Ok(v), Ok(())) => {
            prop_assert_eq!(v.id(), &c.id);
            prop_assert_eq!(v.version(), k.version);
            prop_assert_eq!(v.account().as_str(), ACCOUNTS[c.account]);
            prop_assert_eq!(v.environment(), &c.env);
            prop_assert_eq!(v.key_type(), c.key_type);
            prop_assert_eq!(v.permissions(), &permission_set(&c.grants));
            prop_assert_eq!(
                v.expires_at(),
                model.secret(k).end(c.expires).map(ts),
                "expiry reported for v{}",
                k.version
            );
        }
        (Err(g), Err(w)) => prop_assert_eq!(g, w, "key v{} of cred {}", k.version, k.cred),
        _ => prop_assert!(
            false,
            "key v{} of cred {} at +{} ms: engine {:?}, model {:?}\nmodel cred: {:#?}",
            k.version,
            k.cred,
            model.now - T0,
            got.map(|v| v.version()),
            want,
            c
        ),
    }
    Ok(())
}

/// The stored record agrees with the model's.
fn check_record(
    stored: &Credential,
    c: &MCred,
    limit: usize,
    now: i64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&stored.id, &c.id);
    prop_assert_eq!(stored.account.as_str(), ACCOUNTS[c.account]);
    prop_assert_eq!(&stored.environment, &c.env);
    prop_assert_eq!(stored.key_type, c.key_type);
    prop_assert_eq!(&stored.permissions, &permission_set(&c.grants));
    prop_assert_eq!(stored.expires_at, c.expires.map(ts));
    prop_assert_eq!(stored.enabled, c.enabled);
    prop_assert_eq!(stored.secrets.len(), c.secrets.len());
    for (s, m) in stored.secrets.iter().zip(&c.secrets) {
        prop_assert_eq!(s.version, m.version);
        prop_assert_eq!(
            s.not_before,
            ts(m.not_before),
            "not_before of v{}",
            m.version
        );
        prop_assert_eq!(
            s.not_after,
            m.not_after.map(ts),
            "not_after of v{}",
            m.version
        );
        prop_assert_eq!(
            s.revoked_at,
            m.revoked_at.map(ts),
            "revoked_at of v{}",
            m.version
        );
    }
    let live = keyward::rotation::live_secrets(stored, ts(now)).count();
    prop_assert!(live <= limit.max(1), "{live} live secrets, limit {limit}");
    Ok(())
}

fn check_all(kw: &Keyward, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(kw.now(), ts(model.now));
    for k in &model.keys {
        check_key(kw, model, k, None, None)?;
    }
    for c in &model.creds {
        check_record(&kw.get(OP, &c.id).unwrap(), c, model.limit, model.now)?;
    }
    prop_assert_eq!(kw.store().len(), model.creds.len());
    Ok(())
}

fn issue_op(
    kw: &Keyward,
    model: &mut Model,
    account: usize,
    env: u8,
    key_type: usize,
    mask: u8,
    expires_in: Option<i64>,
) -> Result<(), TestCaseError> {
    let env = environment(env);
    let key_type = KeyType::ALL[key_type];
    let g = grants(mask);
    let expires = expires_in.map(|d| model.now + d);
    let n = model.creds.len();
    let mut new = NewKey::new(
        ACCOUNTS[account].parse().unwrap(),
        key_type,
        env.clone(),
        format!("key {n}").parse().unwrap(),
    )
    .with_permissions(permission_set(&g));
    if let Some(e) = expires {
        new = new.with_expiry(ts(e));
    }
    let r = kw.issue(OP, new);
    if key_type == KeyType::Restricted && g.is_empty() {
        match r {
            Err(EngineError::Invalid {
                field: Field::Permissions,
                error: ModelError::RestrictedWithoutPermissions,
            }) => {}
            other => prop_assert!(false, "restricted key without permissions: {other:?}"),
        }
        return Ok(());
    }
    if expires.is_some_and(|e| e <= model.now) {
        match r {
            Err(EngineError::Invalid {
                field: Field::ExpiresAt,
                error: ModelError::ExpiryNotInFuture,
            }) => {}
            other => prop_assert!(false, "issued with an expiry not in the future: {other:?}"),
        }
        return Ok(());
    }
    let issued = r.unwrap();
    let key = issued.key.expose_secret().to_owned();
    let prefix = format!("{}_{}_", key_type.prefix(), tag_of(&env));
    prop_assert!(
        key.starts_with(&prefix),
        "{} does not start with {}",
        key,
        prefix
    );
    prop_assert_eq!(issued.credential.secrets.len(), 1);
    model.creds.push(MCred {
        id: issued.credential.id.clone(),
        account,
        env,
        key_type,
        grants: g,
        expires,
        enabled: true,
        secrets: vec![MSecret {
            version: 1,
            not_before: model.now,
            not_after: None,
            revoked_at: None,
        }],
    });
    model.keys.push(MKey {
        cred: n,
        version: 1,
        key,
    });
    Ok(())
}

fn run(
    ops: Vec<Op>,
    choice: &PolicyChoice,
    make_config: &dyn Fn() -> Config,
    can_reopen: bool,
) -> Result<(), TestCaseError> {
    let clock = Arc::new(ManualClock::new(ts(T0)));
    let policy = RotationPolicy {
        grace_period: dur(choice.grace),
        activation_delay: dur(choice.delay),
        max_live_secrets: choice.limit,
        ..RotationPolicy::default()
    };
    let open = || {
        let mut envs = Environments::default();
        envs.insert("staging", "stg").unwrap();
        Keyward::open(
            make_config()
                .with_clock(clock.clone())
                .with_rotation(policy.clone())
                .with_environments(envs)
                .with_pepper(Pepper::from_bytes([7; 32])),
        )
        .unwrap()
    };
    let mut kw = open();
    let mut model = Model {
        now: T0,
        grace: choice.grace,
        delay: choice.delay,
        limit: choice.limit,
        creds: Vec::new(),
        keys: Vec::new(),
    };
    for op in ops {
        let nc = model.creds.len();
        let nk = model.keys.len();
        match op {
            Op::Issue {
                account,
                env,
                key_type,
                grants,
                expires_in,
            } => issue_op(&kw, &mut model, account, env, key_type, grants, expires_in)?,
            Op::Regenerate {
                cred,
                grace,
                delay,
                end_earlier_grace,
            } if nc > 0 => {
                let i = cred % nc;
                let options = RegenerateOptions {
                    grace_period: grace.map(dur),
                    activation_delay: delay.map(dur),
                    end_earlier_grace,
                };
                let r = kw.regenerate(OP, &model.creds[i].id, options);
                match model.regenerate(i, grace, delay, end_earlier_grace) {
                    Ok(version) => {
                        let issued = r.unwrap();
                        prop_assert_eq!(&issued.credential.id, &model.creds[i].id);
                        prop_assert_eq!(
                            issued.credential.latest_secret().unwrap().version,
                            version
                        );
                        model.keys.push(MKey {
                            cred: i,
                            version,
                            key: issued.key.expose_secret().to_owned(),
                        });
                    }
                    Err(e) => expect_rotation_error(r, e),
                }
            }
            Op::RegenerateEnvironment {
                account,
                env,
                grace,
                end_earlier_grace,
            } => {
                let e = environment(env);
                let options = RegenerateOptions {
                    grace_period: grace.map(dur),
                    activation_delay: None,
                    end_earlier_grace,
                };
                let done = kw
                    .regenerate_environment(OP, &ACCOUNTS[account].parse().unwrap(), &e, options)
                    .unwrap();
                let now = model.now;
                let mut targets: Vec<usize> = (0..nc)
                    .filter(|&i| {
                        let c = &model.creds[i];
                        c.account == account
                            && c.env == e
                            && c.secrets.iter().any(|s| s.live(c.expires, now))
                    })
                    .collect();
                targets.sort_by(|&a, &b| model.creds[a].id.cmp(&model.creds[b].id));
                // In id order, each target is regenerated, or skipped (and left untouched)
                // when that would cut an earlier promised grace.
                let mut issued = done.issued.into_iter();
                let mut skipped = done.skipped.into_iter();
                for i in targets {
                    match model.regenerate(i, grace, None, end_earlier_grace) {
                        Ok(version) => {
                            let got = issued.next().unwrap();
                            prop_assert_eq!(&got.credential.id, &model.creds[i].id);
                            prop_assert_eq!(
                                got.credential.latest_secret().unwrap().version,
                                version
                            );
                            model.keys.push(MKey {
                                cred: i,
                                version,
                                key: got.key.expose_secret().to_owned(),
                            });
                        }
                        Err(want) => {
                            let got = skipped.next().unwrap();
                            prop_assert_eq!(&got.id, &model.creds[i].id);
                            match got.reason {
                                EngineError::Rotation(e) => prop_assert_eq!(e, want),
                                other => prop_assert!(false, "skipped for {:?}", other),
                            }
                        }
                    }
                }
                prop_assert!(issued.next().is_none() && skipped.next().is_none());
            }
            Op::Revoke(c) if nc > 0 => {
                let i = c % nc;
                kw.revoke(OP, &model.creds[i].id).unwrap();
                let now = model.now;
                for s in &mut model.creds[i].secrets {
                    s.revoked_at.get_or_insert(now);
                }
            }
            Op::RevokeVersion(c, v) if nc > 0 => {
                let i = c % nc;
                let r = kw.revoke_version(OP, &model.creds[i].id, v);
                let now = model.now;
                match model.creds[i].secrets.iter_mut().find(|s| s.version == v) {
                    Some(s) => {
                        r.unwrap();
                        s.revoked_at.get_or_insert(now);
                    }
                    None => expect_rotation_error(r, RotationError::NoSuchVersion(v)),
                }
            }
            Op::Disable(c) if nc > 0 => {
                let i = c % nc;
                prop_assert!(!kw.disable(OP, &model.creds[i].id).unwrap().enabled);
                model.creds[i].enabled = false;
            }
            Op::Enable(c) if nc > 0 => {
                let i = c % nc;
                prop_assert!(kw.enable(OP, &model.creds[i].id).unwrap().enabled);
                model.creds[i].enabled = true;
            }
            Op::UpdateExpiry(c, e) if nc > 0 => {
                let i = c % nc;
                let expires = e.map(|d| model.now + d);
                let update = KeyUpdate {
                    expires_at: Some(expires.map(ts)),
                    ..KeyUpdate::default()
                };
                let r = kw.update(OP, &model.creds[i].id, update);
                if expires.is_some_and(|e| e <= model.now) {
                    prop_assert!(
                        matches!(
                            r,
                            Err(EngineError::Invalid {
                                field: Field::ExpiresAt,
                                error: ModelError::ExpiryNotInFuture,
                            })
                        ),
                        "set an expiry not in the future: {:?}",
                        r
                    );
                } else {
                    r.unwrap();
                    model.creds[i].expires = expires;
                }
            }
            Op::UpdatePermissions(c, mask) if nc > 0 => {
                let i = c % nc;
                let g = grants(mask);
                let update = KeyUpdate {
                    permissions: Some(permission_set(&g)),
                    ..KeyUpdate::default()
                };
                let r = kw.update(OP, &model.creds[i].id, update);
                if model.creds[i].key_type == KeyType::Restricted && g.is_empty() {
                    prop_assert!(
                        matches!(
                            r,
                            Err(EngineError::Invalid {
                                field: Field::Permissions,
                                error: ModelError::RestrictedWithoutPermissions,
                            })
                        ),
                        "emptied a restricted key's permissions: {:?}",
                        r
                    );
                } else {
                    r.unwrap();
                    model.creds[i].grants = g;
                }
            }
            Op::Advance(a) => {
                let to = match a {
                    Advance::Small(d) | Advance::Large(d) => model.now + d,
                    Advance::Day => model.now + DAY,
                    Advance::Boundary(n, before) => {
                        let b = model.boundaries();
                        match b.get(n % b.len().max(1)) {
                            Some(&t) if before && t - 1 > model.now => t - 1,
                            Some(&t) => t,
                            None => model.now,
                        }
                    }
                };
                model.now = to;
                clock.set(ts(to));
            }
            Op::Verify(k, m) if nk > 0 => {
                let key = model.keys[k % nk].clone();
                match m {
                    None => check_key(&kw, &model, &key, None, None)?,
                    Some(m) => {
                        let (mutated, want) = mutate(&key.key, m);
                        prop_assert_eq!(kw.verify(&mutated).map(|v| v.version()), Err(want));
                    }
                }
            }
            Op::VerifyFor(c, env, perm) if nk > 0 => {
                // The newest key of some credential: the one most likely to be usable (every
                // key is verified after each step anyway).
                let i = c % nc;
                let key = model
                    .keys
                    .iter()
                    .rev()
                    .find(|k| k.cred == i)
                    .unwrap()
                    .clone();
                let env = env.map(environment);
                check_key(&kw, &model, &key, env.as_ref(), perm.map(|p| REQUIRED[p]))?;
            }
            Op::Reopen if can_reopen => {
                drop(kw);
                kw = open();
                prop_assert!(kw.startup_errors().is_empty());
            }
            _ => {}
        }
        check_all(&kw, &model)?;
    }
    Ok(())
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    // Start with a few keys so that most steps act on something.
    (
        proptest::collection::vec(
            (0usize..2, 0u8..3, 0usize..2, 1u8..32).prop_map(|(account, env, key_type, grants)| {
                Op::Issue {
                    account,
                    env,
                    key_type,
                    grants,
                    expires_in: None,
                }
            }),
            1..4,
        ),
        proptest::collection::vec(op(), 1..max),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lifecycle_agrees_with_the_model_in_memory(choice in policy(), ops in ops(64)) {
        run(ops, &choice, &Config::memory, false)?;
    }
}

#[cfg(feature = "sled")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn lifecycle_agrees_with_the_model_on_sled_across_reopen(choice in policy(), ops in ops(40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        run(ops, &choice, &|| Config::sled(&path).with_development_pepper(), true)?;
    }
}

#[cfg(feature = "redb")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn lifecycle_agrees_with_the_model_on_redb_across_reopen(choice in policy(), ops in ops(40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyward.redb");
        run(ops, &choice, &|| Config::redb(&path).with_development_pepper(), true)?;
    }
}

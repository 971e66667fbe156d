#![allow(clippy::unwrap_used)]
//! The secret lifecycle: `secret_state` at every boundary, `apply_regenerate`, `revoke_all`,
//! `revoke_version`, and a property test of random regenerate/advance sequences against a
//! reference written from the documented rules.

mod common;

use std::time::Duration;

use common::*;
use keyward_core::{Credential, SecretVersion, Timestamp};
use keyward_rotation::{
    Clock, ManualClock, RegenerateOptions, RotationError, RotationPolicy, SecretState,
    apply_regenerate, live_secrets, revoke_all, revoke_version, secret_state, timeless_state,
};
use proptest::prelude::*;

fn state(s: &SecretVersion, expires: Option<i64>, now: i64) -> SecretState {
    secret_state(s, expires.map(ts), ts(now))
}

// ----- secret_state ------------------------------------------------------------------------

#[test]
fn pending_until_not_before_exactly() {
    let s = secret(2, T0 + 5 * MIN, None);
    assert_eq!(state(&s, None, T0), SecretState::Pending);
    assert_eq!(state(&s, None, T0 + 5 * MIN - 1), SecretState::Pending);
    assert_eq!(state(&s, None, T0 + 5 * MIN), SecretState::Active);
    assert_eq!(state(&s, None, T0 + 365 * DAY), SecretState::Active);
}

#[test]
fn grace_until_not_after_exclusive() {
    let s = secret(1, T0, Some(T0 + DAY));
    assert_eq!(state(&s, None, T0), SecretState::Grace);
    assert_eq!(state(&s, None, T0 + DAY - 1), SecretState::Grace);
    assert_eq!(state(&s, None, T0 + DAY), SecretState::Expired);
    assert_eq!(state(&s, None, T0 + DAY + 1), SecretState::Expired);
}

#[test]
fn credential_expiry_ends_an_active_secret_exactly() {
    let s = secret(1, T0, None);
    let exp = Some(T0 + HOUR);
    assert_eq!(state(&s, exp, T0 + HOUR - 1), SecretState::Active);
    assert_eq!(state(&s, exp, T0 + HOUR), SecretState::Expired);
}

#[test]
fn credential_expiry_before_grace_end_wins() {
    let s = secret(1, T0, Some(T0 + DAY));
    let exp = Some(T0 + HOUR);
    assert_eq!(state(&s, exp, T0 + HOUR - 1), SecretState::Grace);
    assert_eq!(state(&s, exp, T0 + HOUR), SecretState::Expired);
}

#[test]
fn grace_end_before_credential_expiry_wins() {
    let s = secret(1, T0, Some(T0 + HOUR));
    let exp = Some(T0 + DAY);
    assert_eq!(state(&s, exp, T0 + HOUR - 1), SecretState::Grace);
    assert_eq!(state(&s, exp, T0 + HOUR), SecretState::Expired);
}

#[test]
fn revoked_wins_over_every_other_state() {
    let mut pending = secret(2, T0 + MIN, None);
    let mut active = secret(1, T0, None);
    let mut grace = secret(1, T0, Some(T0 + DAY));
    let mut expired = secret(1, T0, Some(T0 + 1));
    for s in [&mut pending, &mut active, &mut grace, &mut expired] {
        s.revoked_at = Some(ts(T0));
    }
    for s in [&pending, &active, &grace, &expired] {
        assert_eq!(state(s, None, T0), SecretState::Revoked);
        assert_eq!(state(s, Some(T0 - 1), T0), SecretState::Revoked);
        assert_eq!(state(s, None, T0 + 10 * DAY), SecretState::Revoked);
    }
}

#[test]
fn a_secret_that_can_never_become_usable_is_expired_not_pending() {
    // Ended (by a regenerate) before its activation delay passed.
    let s = secret(3, T0 + 5 * MIN, Some(T0));
    assert_eq!(state(&s, None, T0), SecretState::Expired);
    assert_eq!(state(&s, None, T0 + MIN), SecretState::Expired);
    assert_eq!(state(&s, None, T0 + 10 * MIN), SecretState::Expired);
    assert!(!state(&s, None, T0).is_live());
    // The credential expires before the secret activates.
    let s = secret(3, T0 + 5 * MIN, None);
    assert_eq!(state(&s, Some(T0 + 5 * MIN), T0), SecretState::Expired);
    assert_eq!(state(&s, Some(T0 + 5 * MIN + 1), T0), SecretState::Pending);
    assert_eq!(
        state(&s, Some(T0 + 5 * MIN + 1), T0 + 5 * MIN),
        SecretState::Active
    );
}

#[test]
fn usable_and_live() {
    use SecretState::*;
    assert!(Active.is_usable() && Grace.is_usable());
    assert!(!Pending.is_usable() && !Expired.is_usable() && !Revoked.is_usable());
    assert!(Pending.is_live() && Active.is_live() && Grace.is_live());
    assert!(!Expired.is_live() && !Revoked.is_live());
}

/// The documented rules, written independently of the library.
fn reference_state(s: &SecretVersion, expires: Option<i64>, now: i64) -> SecretState {
    if s.revoked_at.is_some() {
        return SecretState::Revoked;
    }
    let nb = s.not_before.as_millis();
    let end = [s.not_after.map(Timestamp::as_millis), expires]
        .into_iter()
        .flatten()
        .min();
    if let Some(end) = end
        && (now >= end || end <= nb)
    {
        return SecretState::Expired;
    }
    // Pending only with an activation delay (not-before after creation).
    if now < nb && nb > s.created_at.as_millis() {
        SecretState::Pending
    } else if s.not_after.is_some() {
        SecretState::Grace
    } else {
        SecretState::Active
    }
}

#[test]
fn a_secret_without_activation_delay_is_never_pending_even_before_its_creation() {
    // The clock stepped back past the creation of a secret that had no delay.
    let s = secret(1, T0, None);
    assert_eq!(state(&s, None, T0 - HOUR), SecretState::Active);
    assert_eq!(timeless_state(&s, None), Some(SecretState::Active));
    // With a delay it is pending before not-before, and its state depends on the time.
    let mut delayed = secret(2, T0 + 5 * MIN, None);
    delayed.created_at = ts(T0);
    assert_eq!(state(&delayed, None, T0 - HOUR), SecretState::Pending);
    assert_eq!(timeless_state(&delayed, None), None);
}

#[test]
fn timeless_only_without_any_bound() {
    let active = secret(1, T0, None);
    assert_eq!(timeless_state(&active, None), Some(SecretState::Active));
    assert_eq!(
        timeless_state(&active, Some(ts(T0 + DAY))),
        None,
        "credential expiry"
    );
    assert_eq!(
        timeless_state(&secret(1, T0, Some(T0 + DAY)), None),
        None,
        "grace end"
    );
    let mut revoked = secret(1, T0, None);
    revoked.revoked_at = Some(ts(T0));
    assert_eq!(timeless_state(&revoked, None), None, "revoked");
}

proptest! {
    /// Whenever `timeless_state` answers, `secret_state` gives the same answer at every time.
    #[test]
    fn timeless_state_agrees_with_secret_state(
        nb in -100i64..100,
        created in -100i64..100,
        na in proptest::option::of(-100i64..100),
        exp in proptest::option::of(-100i64..100),
        revoked in any::<bool>(),
        now in -200i64..200,
    ) {
        let mut s = secret(1, T0 + nb, na.map(|a| T0 + a));
        s.created_at = ts(T0 + created);
        if revoked {
            s.revoked_at = Some(ts(T0));
        }
        let exp = exp.map(|e| ts(T0 + e));
        if let Some(st) = timeless_state(&s, exp) {
            prop_assert_eq!(st, secret_state(&s, exp, ts(T0 + now)));
        }
    }

    #[test]
    fn secret_state_matches_the_rules(
        nb in 0i64..100,
        na in proptest::option::of(0i64..100),
        exp in proptest::option::of(0i64..100),
        revoked in any::<bool>(),
        now in 0i64..100,
    ) {
        let mut s = secret(1, T0 + nb, na.map(|a| T0 + a));
        if revoked {
            s.revoked_at = Some(ts(T0));
        }
        let exp = exp.map(|e| T0 + e);
        prop_assert_eq!(state(&s, exp, T0 + now), reference_state(&s, exp, T0 + now));
    }
}

// ----- apply_regenerate --------------------------------------------------------------------

fn policy(grace: i64, delay: i64, max_live: usize) -> RotationPolicy {
    RotationPolicy {
        grace_period: ms(grace),
        activation_delay: ms(delay),
        max_live_secrets: max_live,
        ..RotationPolicy::default()
    }
}

fn regen(
    cred: &mut Credential,
    n: u32,
    policy: &RotationPolicy,
    options: RegenerateOptions,
    now: i64,
) -> Result<u32, RotationError> {
    apply_regenerate(cred, lookup(n), digest(n), policy, options, ts(now))
}

#[test]
fn regenerate_with_the_default_policy() {
    let mut cred = credential(T0, None);
    let now = T0 + HOUR;
    let v = regen(
        &mut cred,
        2,
        &RotationPolicy::default(),
        RegenerateOptions::default(),
        now,
    )
    .unwrap();
    assert_eq!(v, 2);
    assert_eq!(cred.secrets.len(), 2);
    let old = version(&cred, 1);
    assert_eq!(old.not_after, Some(ts(now + DAY)));
    assert_eq!(old.not_before, ts(T0));
    let new = version(&cred, 2);
    assert_eq!(new.not_before, ts(now));
    assert_eq!(new.not_after, None);
    assert_eq!(new.created_at, ts(now));
    assert_eq!(new.lookup, lookup(2));
    assert_eq!(new.digest, digest(2));
    assert_eq!(new.revoked_at, None);
    assert_eq!(cred.modified_at, ts(now));
    assert_eq!(state(old, None, now + DAY - 1), SecretState::Grace);
    assert_eq!(state(old, None, now + DAY), SecretState::Expired);
    assert_eq!(state(new, None, now), SecretState::Active);
}

#[test]
fn activation_delay_makes_the_new_secret_pending() {
    let mut cred = credential(T0, None);
    let p = policy(DAY, 5 * MIN, 2);
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    let new = version(&cred, 2);
    assert_eq!(new.not_before, ts(T0 + 5 * MIN));
    assert_eq!(state(new, None, T0 + 5 * MIN - 1), SecretState::Pending);
    assert_eq!(state(new, None, T0 + 5 * MIN), SecretState::Active);
    // The old one covers the gap.
    assert_eq!(
        state(version(&cred, 1), None, T0 + 5 * MIN - 1),
        SecretState::Grace
    );
}

#[test]
fn per_call_options_override_the_policy() {
    let mut cred = credential(T0, None);
    let options = RegenerateOptions {
        grace_period: Some(ms(HOUR)),
        activation_delay: Some(ms(MIN)),
        end_earlier_grace: false,
    };
    regen(&mut cred, 2, &RotationPolicy::default(), options, T0).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + HOUR)));
    assert_eq!(version(&cred, 2).not_before, ts(T0 + MIN));
}

#[test]
fn grace_zero_ends_the_old_secret_at_once() {
    let mut cred = credential(T0, None);
    let options = RegenerateOptions {
        grace_period: Some(Duration::ZERO),
        activation_delay: None,
        end_earlier_grace: false,
    };
    regen(&mut cred, 2, &RotationPolicy::default(), options, T0 + MIN).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + MIN)));
    assert_eq!(
        state(version(&cred, 1), None, T0 + MIN),
        SecretState::Expired
    );
    assert_eq!(live_secrets(&cred, ts(T0 + MIN)).count(), 1);
}

#[test]
fn grace_is_capped_by_the_credential_expiry() {
    let mut cred = credential(T0, Some(T0 + 2 * HOUR));
    regen(
        &mut cred,
        2,
        &RotationPolicy::default(),
        RegenerateOptions::default(),
        T0 + HOUR,
    )
    .unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + 2 * HOUR)));
    // The new secret inherits the credential's expiry.
    assert_eq!(version(&cred, 2).not_after, None);
    assert_eq!(
        state(
            version(&cred, 2),
            cred.expires_at.map(|e| e.as_millis()),
            T0 + 2 * HOUR
        ),
        SecretState::Expired
    );
}

#[test]
fn grace_never_extends_an_earlier_end() {
    let mut cred = credential(T0, None);
    let p = RotationPolicy {
        max_live_secrets: 3,
        ..RotationPolicy::default()
    };
    let short = RegenerateOptions {
        grace_period: Some(ms(HOUR)),
        activation_delay: None,
        end_earlier_grace: false,
    };
    regen(&mut cred, 2, &p, short, T0).unwrap();
    regen(&mut cred, 3, &p, RegenerateOptions::default(), T0 + MIN).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + HOUR)));
    assert_eq!(version(&cred, 2).not_after, Some(ts(T0 + MIN + DAY)));
}

/// Options that let a regenerate end an earlier promised grace (the limit's mechanism).
fn ending() -> RegenerateOptions {
    RegenerateOptions {
        end_earlier_grace: true,
        ..RegenerateOptions::default()
    }
}

#[test]
fn a_promised_grace_is_never_cut_without_asking() {
    // v1 is promised a day of grace; regenerating again an hour later would push it out (the
    // limit of two) or shorten it (a shorter grace): refused, the credential untouched.
    let mut cred = credential(T0, None);
    let p = RotationPolicy::default();
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    let before = cred.clone();
    let want = Err(RotationError::GraceInProgress {
        version: 1,
        until: ts(T0 + DAY),
    });
    assert_eq!(
        regen(&mut cred, 3, &p, RegenerateOptions::default(), T0 + HOUR),
        want
    );
    assert_eq!(cred, before);
    let three = policy(DAY, 0, 3);
    let short = RegenerateOptions {
        grace_period: Some(ms(MIN)),
        ..RegenerateOptions::default()
    };
    assert_eq!(regen(&mut cred, 3, &three, short, T0 + HOUR), want);
    assert_eq!(cred, before);
    // A longer or equal grace keeps the promise: allowed under a limit of three.
    regen(
        &mut cred,
        3,
        &three,
        RegenerateOptions::default(),
        T0 + HOUR,
    )
    .unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + DAY)));
    // Once the grace is over, or with the explicit option, regenerating is allowed again.
    let mut cred = before.clone();
    regen(&mut cred, 3, &p, RegenerateOptions::default(), T0 + DAY).unwrap();
    let mut cred = before;
    regen(&mut cred, 3, &p, ending(), T0 + HOUR).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0 + HOUR)));
    // A zero grace or a limit of one promises nothing, so repeated regenerates never refuse.
    let mut cred = credential(T0, None);
    for n in 2..=4 {
        regen(
            &mut cred,
            n,
            &policy(0, 0, 2),
            RegenerateOptions::default(),
            T0,
        )
        .unwrap();
        regen(
            &mut cred,
            n + 10,
            &policy(DAY, 0, 1),
            RegenerateOptions::default(),
            T0,
        )
        .unwrap();
    }
}

#[test]
fn versions_increase_and_the_limit_ends_the_oldest() {
    let mut cred = credential(T0, None);
    let p = RotationPolicy::default();
    for n in 2..=6u32 {
        let now = T0 + i64::from(n) * MIN;
        assert_eq!(regen(&mut cred, n, &p, ending(), now).unwrap(), n);
        let live: Vec<u32> = live_secrets(&cred, ts(now)).map(|s| s.version).collect();
        assert_eq!(live, vec![n - 1, n]);
        if n > 2 {
            // Pushed out by the limit at the regenerate, not at its grace end.
            assert_eq!(version(&cred, n - 2).not_after, Some(ts(now)));
        }
    }
    let versions: Vec<u32> = cred.secrets.iter().map(|s| s.version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn max_live_one_ends_the_old_secret_despite_grace() {
    let mut cred = credential(T0, None);
    let p = policy(DAY, 0, 1);
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0)));
    assert_eq!(live_secrets(&cred, ts(T0)).count(), 1);
}

#[test]
fn max_live_zero_is_treated_as_one() {
    let mut cred = credential(T0, None);
    let p = policy(DAY, 0, 0);
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    let live: Vec<u32> = live_secrets(&cred, ts(T0)).map(|s| s.version).collect();
    assert_eq!(live, vec![2]);
}

#[test]
fn the_limit_counts_pending_secrets_and_ends_them_for_good() {
    // Regenerating again and again within the activation delay: pending secrets are live, and a
    // pending secret pushed out must stop counting (and never activate later).
    let mut cred = credential(T0, None);
    let p = policy(DAY, 5 * MIN, 2);
    for n in 2..=5u32 {
        regen(&mut cred, n, &p, ending(), T0).unwrap();
        assert!(live_secrets(&cred, ts(T0)).count() <= 2, "after v{n}");
    }
    let live: Vec<u32> = live_secrets(&cred, ts(T0)).map(|s| s.version).collect();
    assert_eq!(live, vec![4, 5]);
    for later in [T0 + 5 * MIN, T0 + HOUR] {
        let usable: Vec<u32> = cred
            .secrets
            .iter()
            .filter(|s| secret_state(s, None, ts(later)).is_usable())
            .map(|s| s.version)
            .collect();
        assert_eq!(usable, vec![4, 5], "at {later}");
    }
}

#[test]
fn extending_the_expiry_later_never_revives_secrets_over_the_limit() {
    // The new secret activates after the credential expires, so it is dead for now; the
    // operator then removes the expiry. Only one secret may be live.
    let mut cred = credential(T0, Some(T0 + HOUR));
    let p = policy(DAY, 2 * HOUR, 1);
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    assert_eq!(version(&cred, 1).not_after, Some(ts(T0)));
    cred.expires_at = None;
    let live: Vec<u32> = live_secrets(&cred, ts(T0)).map(|s| s.version).collect();
    assert_eq!(live, vec![2]);
}

#[test]
fn a_pending_secret_past_the_expiry_still_gets_a_grace_end() {
    let mut cred = credential(T0, Some(T0 + HOUR));
    let p = policy(DAY, 2 * HOUR, 3);
    regen(&mut cred, 2, &p, RegenerateOptions::default(), T0).unwrap();
    regen(&mut cred, 3, &p, RegenerateOptions::default(), T0 + MIN).unwrap();
    // v2 would activate after the expiry, but it is not the newest any more: it ends.
    assert_eq!(version(&cred, 2).not_after, Some(ts(T0 + HOUR)));
    cred.expires_at = None;
    let no_end: Vec<u32> = cred
        .secrets
        .iter()
        .filter(|s| s.not_after.is_none())
        .map(|s| s.version)
        .collect();
    assert_eq!(no_end, vec![3]);
}

#[test]
fn regenerate_of_a_revoked_credential_is_refused() {
    let mut cred = credential(T0, None);
    revoke_all(&mut cred, ts(T0 + 1));
    let before = cred.clone();
    assert_eq!(
        regen(
            &mut cred,
            2,
            &RotationPolicy::default(),
            RegenerateOptions::default(),
            T0 + 2
        ),
        Err(RotationError::Revoked)
    );
    assert_eq!(cred, before);
}

#[test]
fn regenerate_of_an_expired_credential_is_refused_from_the_expiry_on() {
    let mut cred = credential(T0, Some(T0 + HOUR));
    let before = cred.clone();
    assert_eq!(
        regen(
            &mut cred,
            2,
            &RotationPolicy::default(),
            RegenerateOptions::default(),
            T0 + HOUR
        ),
        Err(RotationError::Expired)
    );
    assert_eq!(cred, before);
    assert_eq!(
        regen(
            &mut cred,
            2,
            &RotationPolicy::default(),
            RegenerateOptions::default(),
            T0 + HOUR - 1
        ),
        Ok(2)
    );
}

#[test]
fn regenerate_after_revoking_only_one_version_is_allowed() {
    let mut cred = credential(T0, None);
    regen(
        &mut cred,
        2,
        &RotationPolicy::default(),
        RegenerateOptions::default(),
        T0,
    )
    .unwrap();
    revoke_version(&mut cred, 2, ts(T0 + 1)).unwrap();
    assert_eq!(
        regen(
            &mut cred,
            3,
            &RotationPolicy::default(),
            RegenerateOptions::default(),
            T0 + 2
        ),
        Ok(3)
    );
}

#[test]
fn revoke_all_keeps_earlier_revocation_times() {
    let mut cred = credential(T0, None);
    regen(
        &mut cred,
        2,
        &RotationPolicy::default(),
        RegenerateOptions::default(),
        T0,
    )
    .unwrap();
    revoke_version(&mut cred, 1, ts(T0 + 1)).unwrap();
    revoke_all(&mut cred, ts(T0 + 2));
    assert_eq!(version(&cred, 1).revoked_at, Some(ts(T0 + 1)));
    assert_eq!(version(&cred, 2).revoked_at, Some(ts(T0 + 2)));
    assert_eq!(cred.modified_at, ts(T0 + 2));
    assert_eq!(live_secrets(&cred, ts(T0 + 2)).count(), 0);
}

#[test]
fn revoke_version_of_a_missing_version() {
    let mut cred = credential(T0, None);
    let before = cred.clone();
    assert_eq!(
        revoke_version(&mut cred, 7, ts(T0)),
        Err(RotationError::NoSuchVersion(7))
    );
    assert_eq!(cred, before);
}

#[test]
fn version_overflow_is_refused() {
    let mut cred = credential(T0, None);
    cred.secrets[0].version = u32::MAX;
    let before = cred.clone();
    assert_eq!(
        regen(
            &mut cred,
            2,
            &RotationPolicy::default(),
            RegenerateOptions::default(),
            T0
        ),
        Err(RotationError::TooManyVersions)
    );
    assert_eq!(cred, before);
}

#[test]
fn manual_clock() {
    let clock = ManualClock::new(ts(T0));
    assert_eq!(clock.now(), ts(T0));
    clock.advance(ms(1));
    assert_eq!(clock.now(), ts(T0 + 1));
    clock.set(ts(5));
    assert_eq!(clock.now(), ts(5));
    clock.set(Timestamp::MAX);
    clock.advance(Duration::from_secs(u64::MAX));
    assert_eq!(clock.now(), Timestamp::MAX);
    let shared: std::sync::Arc<dyn Clock> = std::sync::Arc::new(ManualClock::new(ts(T0)));
    assert_eq!(shared.now(), ts(T0));
}

// ----- property: random sequences ----------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Regenerate {
        grace: Option<i64>,
        delay: Option<i64>,
        end_earlier_grace: bool,
    },
    Advance(i64),
    RevokeVersion(usize),
    RevokeAll,
    SetExpiry(Option<i64>),
}

fn duration_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(5 * MIN),
        Just(HOUR),
        Just(DAY),
        0..2 * DAY,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::option::of(duration_ms()), proptest::option::of(duration_ms()), any::<bool>())
            .prop_map(|(grace, delay, end_earlier_grace)| Op::Regenerate { grace, delay, end_earlier_grace }),
        4 => prop_oneof![Just(0), Just(1), 0..10 * MIN, 0..3 * DAY].prop_map(Op::Advance),
        1 => (0usize..16).prop_map(Op::RevokeVersion),
        1 => Just(Op::RevokeAll).prop_filter("rare", |_| true),
        1 => proptest::option::of(-HOUR..3 * DAY).prop_map(Op::SetExpiry),
    ]
}

fn policy_strategy() -> impl Strategy<Value = RotationPolicy> {
    (duration_ms(), duration_ms(), 0usize..5).prop_map(|(g, d, m)| policy(g, d, m))
}

fn live_at(cred: &Credential, now: i64) -> Vec<u32> {
    cred.secrets
        .iter()
        .filter(|s| reference_state(s, cred.expires_at.map(Timestamp::as_millis), now).is_live())
        .map(|s| s.version)
        .collect()
}

fn own_live_at(cred: &Credential, now: i64) -> Vec<u32> {
    cred.secrets
        .iter()
        .filter(|s| reference_state(s, None, now).is_live())
        .map(|s| s.version)
        .collect()
}

/// What `apply_regenerate` must produce, from the documented rules.
fn expected_regenerate(
    before: &Credential,
    policy: &RotationPolicy,
    grace: Option<i64>,
    delay: Option<i64>,
    end_earlier_grace: bool,
    n: u32,
    now: i64,
) -> Result<Credential, RotationError> {
    if !before.secrets.is_empty() && before.secrets.iter().all(|s| s.revoked_at.is_some()) {
        return Err(RotationError::Revoked);
    }
    let exp = before.expires_at.map(Timestamp::as_millis);
    if exp.is_some_and(|e| now >= e) {
        return Err(RotationError::Expired);
    }
    let grace = grace.unwrap_or(i64::try_from(policy.grace_period.as_millis()).unwrap());
    let delay = delay.unwrap_or(i64::try_from(policy.activation_delay.as_millis()).unwrap());
    let grace_end = exp.map_or(now + grace, |e| e.min(now + grace));
    // Judged by each secret's own window: the credential's expiry may be extended later.
    let live_before = own_live_at(before, now);
    let mut after = before.clone();
    for s in &mut after.secrets {
        if live_before.contains(&s.version) {
            let end = s
                .not_after
                .map_or(grace_end, |a| a.as_millis().min(grace_end));
            s.not_after = Some(ts(end));
        }
    }
    let v = before.secrets.iter().map(|s| s.version).max().unwrap_or(0) + 1;
    let mut new = secret(v, now + delay, None);
    new.created_at = ts(now);
    new.lookup = lookup(n);
    new.digest = digest(n);
    after.secrets.push(new);
    let limit = policy.max_live_secrets.max(1);
    let live = own_live_at(&after, now);
    let excess = live.len().saturating_sub(limit);
    for v in live.iter().take(excess) {
        let s = after.secrets.iter_mut().find(|s| s.version == *v).unwrap();
        s.not_after = Some(ts(now));
    }
    after.modified_at = ts(now);
    // A secret live with an end already set was promised that end: it may not come sooner.
    if !end_earlier_grace {
        for (b, a) in before.secrets.iter().zip(&after.secrets) {
            if let Some(promised) = b.not_after
                && live_before.contains(&b.version)
                && a.not_after.is_some_and(|end| end < promised)
            {
                return Err(RotationError::GraceInProgress {
                    version: b.version,
                    until: promised,
                });
            }
        }
    }
    Ok(after)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_sequences_keep_every_invariant(
        policy in policy_strategy(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let limit = policy.max_live_secrets.max(1);
        let mut cred = credential(T0, None);
        let mut now = T0;
        let mut n = 1u32;
        for op in ops {
            let before = cred.clone();
            match op {
                Op::Regenerate { grace, delay, end_earlier_grace } => {
                    n += 1;
                    let options = RegenerateOptions {
                        grace_period: grace.map(ms),
                        activation_delay: delay.map(ms),
                        end_earlier_grace,
                    };
                    let expected =
                        expected_regenerate(&before, &policy, grace, delay, end_earlier_grace, n, now);
                    let got = regen(&mut cred, n, &policy, options, now);
                    match expected {
                        Ok(exp) => {
                            prop_assert_eq!(got, Ok(exp.secrets.last().unwrap().version));
                            prop_assert_eq!(&cred, &exp);
                            // The new secret has no end of its own and becomes usable after
                            // the delay (unless the credential expires first).
                            let new = cred.secrets.last().unwrap();
                            prop_assert_eq!(new.not_after, None);
                            prop_assert_eq!(
                                new.not_before,
                                ts(now).saturating_add(options.activation_delay.unwrap_or(policy.activation_delay))
                            );
                            // No end was set past the credential's expiry or before now.
                            for (b, a) in before.secrets.iter().zip(&cred.secrets) {
                                if a.not_after != b.not_after {
                                    let end = a.not_after.unwrap().as_millis();
                                    prop_assert!(end >= now);
                                    if let Some(e) = cred.expires_at {
                                        prop_assert!(end <= e.as_millis());
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            prop_assert_eq!(got, Err(e));
                            prop_assert_eq!(&cred, &before);
                        }
                    }
                }
                Op::Advance(d) => now += d,
                Op::RevokeVersion(i) => {
                    let v = u32::try_from(i).unwrap() + 1;
                    let r = revoke_version(&mut cred, v, ts(now));
                    if before.secrets.iter().any(|s| s.version == v) {
                        prop_assert_eq!(r, Ok(()));
                        prop_assert!(version(&cred, v).revoked_at.is_some());
                    } else {
                        prop_assert_eq!(r, Err(RotationError::NoSuchVersion(v)));
                        prop_assert_eq!(&cred, &before);
                    }
                }
                Op::RevokeAll => {
                    revoke_all(&mut cred, ts(now));
                    prop_assert!(cred.secrets.iter().all(|s| s.revoked_at.is_some()));
                }
                Op::SetExpiry(e) => cred.expires_at = e.map(|e| ts(now + e)),
            }
            // Invariants after every step.
            let live = live_at(&cred, now);
            prop_assert!(live.len() <= limit, "{} live > {limit}: {cred:#?}", live.len());
            let lib_live: Vec<u32> = live_secrets(&cred, ts(now)).map(|s| s.version).collect();
            prop_assert_eq!(&lib_live, &live);
            prop_assert!(cred.secrets.windows(2).all(|w| w[0].version < w[1].version));
            for (b, a) in before.secrets.iter().zip(&cred.secrets) {
                prop_assert_eq!(b.version, a.version);
                prop_assert_eq!(b.not_before, a.not_before);
                if let Some(old_end) = b.not_after {
                    // An end once set is never pushed later.
                    prop_assert!(a.not_after.is_some_and(|e| e <= old_end));
                }
            }
            // A secret dead now never comes back later (while the expiry is unchanged).
            for s in &cred.secrets {
                let exp = cred.expires_at.map(Timestamp::as_millis);
                if !reference_state(s, exp, now).is_live() {
                    for later in [now + 1, now + 5 * MIN, now + 2 * DAY] {
                        prop_assert!(!secret_state(s, cred.expires_at, ts(later)).is_live());
                    }
                }
            }
        }
    }
}

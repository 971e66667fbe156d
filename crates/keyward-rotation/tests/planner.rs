#![allow(clippy::unwrap_used)]
//! The planner: max age (rotation due / expire), the expiry warning window, purging dead
//! secrets (never the newest), and `apply_due` being idempotent.

mod common;

use common::*;
use keyward_core::{Credential, Timestamp};
use keyward_rotation::{
    Due, RegenerateOptions, RotationPolicy, apply_due, apply_regenerate, plan, revoke_all,
    revoke_version,
};
use proptest::prelude::*;

fn max_age_policy(expire: bool) -> RotationPolicy {
    RotationPolicy {
        max_age: Some(ms(90 * DAY)),
        expire_at_max_age: expire,
        ..RotationPolicy::default()
    }
}

fn regen(cred: &mut Credential, n: u32, policy: &RotationPolicy, now: i64) {
    apply_regenerate(
        cred,
        lookup(n),
        digest(n),
        policy,
        RegenerateOptions::default(),
        ts(now),
    )
    .unwrap();
}

#[test]
fn nothing_is_due_for_a_fresh_key_under_the_default_policy() {
    let cred = credential(T0, None);
    for now in [T0, T0 + 365 * DAY, T0 + 10 * 365 * DAY] {
        assert_eq!(plan(&cred, &RotationPolicy::default(), ts(now)), vec![]);
    }
}

#[test]
fn max_age_reports_rotation_due_from_the_instant_it_is_reached() {
    let cred = credential(T0, None);
    let p = max_age_policy(false);
    assert_eq!(plan(&cred, &p, ts(T0 + 90 * DAY - 1)), vec![]);
    let at = ts(T0 + 90 * DAY);
    assert_eq!(plan(&cred, &p, at), vec![Due::RotationDue { since: at }]);
    assert_eq!(
        plan(&cred, &p, ts(T0 + 200 * DAY)),
        vec![Due::RotationDue { since: at }]
    );
}

#[test]
fn max_age_with_expire_expires_at_the_max_age() {
    let mut cred = credential(T0, None);
    let p = max_age_policy(true);
    assert_eq!(plan(&cred, &p, ts(T0 + 90 * DAY - 1)), vec![]);
    let at = ts(T0 + 90 * DAY);
    let now = ts(T0 + 95 * DAY);
    let due = plan(&cred, &p, now);
    assert_eq!(due, vec![Due::Expire { at }]);
    assert!(apply_due(&mut cred, &due, now));
    assert_eq!(cred.expires_at, Some(at));
    assert_eq!(cred.modified_at, now);
    // Expired now: nothing further about age or expiry.
    assert!(
        plan(&cred, &p, now)
            .iter()
            .all(|d| matches!(d, Due::Purge { .. }))
    );
}

#[test]
fn expire_never_extends_an_earlier_expiry() {
    let mut cred = credential(T0, Some(T0 + 100 * DAY));
    let p = max_age_policy(true);
    let now = ts(T0 + 95 * DAY);
    let due = plan(&cred, &p, now);
    assert!(due.contains(&Due::Expire {
        at: ts(T0 + 90 * DAY)
    }));
    apply_due(&mut cred, &due, now);
    assert_eq!(cred.expires_at, Some(ts(T0 + 90 * DAY)));
    // An expiry already earlier than the due time stays.
    let mut cred = credential(T0, Some(T0 + 80 * DAY));
    let before = cred.clone();
    assert!(!apply_due(
        &mut cred,
        &[Due::Expire {
            at: ts(T0 + 90 * DAY)
        }],
        now
    ));
    assert_eq!(cred, before);
}

#[test]
fn regenerating_resets_the_age() {
    let mut cred = credential(T0, None);
    let p = max_age_policy(false);
    regen(&mut cred, 2, &p, T0 + 60 * DAY);
    // (v1 becomes purgeable meanwhile; only the age matters here.)
    let age = |now: i64| -> Vec<Due> {
        plan(&cred, &p, ts(now))
            .into_iter()
            .filter(|d| !matches!(d, Due::Purge { .. }))
            .collect()
    };
    assert_eq!(age(T0 + 90 * DAY), vec![]);
    assert_eq!(age(T0 + 150 * DAY - 1), vec![]);
    assert_eq!(
        age(T0 + 150 * DAY),
        vec![Due::RotationDue {
            since: ts(T0 + 150 * DAY)
        }]
    );
}

#[test]
fn max_age_is_not_reported_for_revoked_or_expired_credentials() {
    let p = max_age_policy(false);
    let mut revoked = credential(T0, None);
    revoke_all(&mut revoked, ts(T0 + 1));
    let expired = credential(T0, Some(T0 + DAY));
    for cred in [&revoked, &expired] {
        assert!(
            !plan(cred, &p, ts(T0 + 100 * DAY))
                .iter()
                .any(|d| matches!(d, Due::RotationDue { .. } | Due::Expire { .. }))
        );
    }
}

#[test]
fn expiry_warning_window() {
    let cred = credential(T0, Some(T0 + 30 * DAY));
    let p = RotationPolicy::default(); // 7-day warning
    let exp = ts(T0 + 30 * DAY);
    assert_eq!(plan(&cred, &p, ts(T0 + 23 * DAY - 1)), vec![]);
    assert_eq!(
        plan(&cred, &p, ts(T0 + 23 * DAY)),
        vec![Due::ExpiryWarning { expires_at: exp }]
    );
    assert_eq!(
        plan(&cred, &p, ts(T0 + 30 * DAY - 1)),
        vec![Due::ExpiryWarning { expires_at: exp }]
    );
    assert_eq!(plan(&cred, &p, exp), vec![]);
    let mut revoked = cred.clone();
    revoke_all(&mut revoked, ts(T0));
    assert_eq!(plan(&revoked, &p, ts(T0 + 25 * DAY)), vec![]);
}

#[test]
fn purge_only_after_purge_after() {
    let mut cred = credential(T0, None);
    let p = RotationPolicy::default(); // 24 h grace, 30 days purge
    regen(&mut cred, 2, &p, T0);
    let dead = T0 + DAY;
    assert_eq!(plan(&cred, &p, ts(dead + 30 * DAY - 1)), vec![]);
    let due = plan(&cred, &p, ts(dead + 30 * DAY));
    assert_eq!(due, vec![Due::Purge { version: 1 }]);
    let now = ts(dead + 30 * DAY);
    assert!(apply_due(&mut cred, &due, now));
    assert_eq!(
        cred.secrets.iter().map(|s| s.version).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(cred.modified_at, now);
}

#[test]
fn revoked_secrets_are_purged_from_their_revocation_and_never_the_newest() {
    let mut cred = credential(T0, None);
    let p = RotationPolicy::default();
    regen(&mut cred, 2, &p, T0);
    revoke_all(&mut cred, ts(T0 + HOUR));
    assert_eq!(plan(&cred, &p, ts(T0 + HOUR + 30 * DAY - 1)), vec![]);
    let due = plan(&cred, &p, ts(T0 + HOUR + 30 * DAY));
    assert_eq!(due, vec![Due::Purge { version: 1 }]);
    // Years later the newest (revoked) secret is still kept.
    let due = plan(&cred, &p, ts(T0 + 10 * 365 * DAY));
    assert_eq!(due, vec![Due::Purge { version: 1 }]);
    apply_due(&mut cred, &due, ts(T0 + 10 * 365 * DAY));
    assert_eq!(plan(&cred, &p, ts(T0 + 20 * 365 * DAY)), vec![]);
    assert_eq!(cred.secrets.len(), 1);
}

#[test]
fn a_secret_revoked_during_its_grace_is_dead_from_the_revocation() {
    let mut cred = credential(T0, None);
    let p = RotationPolicy::default();
    regen(&mut cred, 2, &p, T0);
    revoke_version(&mut cred, 1, ts(T0 + MIN)).unwrap();
    assert_eq!(plan(&cred, &p, ts(T0 + MIN + 30 * DAY - 1)), vec![]);
    assert_eq!(
        plan(&cred, &p, ts(T0 + MIN + 30 * DAY)),
        vec![Due::Purge { version: 1 }]
    );
}

#[test]
fn the_credential_expiry_ends_old_secrets_for_purging() {
    let mut cred = credential(T0, Some(T0 + HOUR));
    let p = RotationPolicy::default();
    regen(&mut cred, 2, &p, T0);
    // v1's grace is capped at the expiry (T0 + 1 h).
    assert_eq!(plan(&cred, &p, ts(T0 + HOUR + 30 * DAY - 1)), vec![]);
    assert_eq!(
        plan(&cred, &p, ts(T0 + HOUR + 30 * DAY)),
        vec![Due::Purge { version: 1 }]
    );
}

#[test]
fn informational_items_change_nothing() {
    let mut cred = credential(T0, Some(T0 + DAY));
    let before = cred.clone();
    let due = [
        Due::RotationDue { since: ts(T0) },
        Due::ExpiryWarning {
            expires_at: ts(T0 + DAY),
        },
        Due::Purge { version: 99 },
    ];
    assert!(!apply_due(&mut cred, &due, ts(T0 + 5)));
    assert_eq!(cred, before);
}

// ----- property: apply_due is idempotent ----------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Regenerate(i64, i64),
    Advance(i64),
    RevokeVersion(u32),
    RevokeAll,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (prop_oneof![Just(0i64), Just(DAY), 0..3 * DAY],
              prop_oneof![Just(0i64), Just(5 * MIN)])
            .prop_map(|(g, d)| Step::Regenerate(g, d)),
        4 => prop_oneof![0..HOUR, 0..100 * DAY].prop_map(Step::Advance),
        1 => (1u32..8).prop_map(Step::RevokeVersion),
        1 => Just(Step::RevokeAll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn apply_due_is_idempotent_and_respects_the_rules(
        steps in proptest::collection::vec(step(), 0..20),
        expires in proptest::option::of(0..200 * DAY),
        max_age in proptest::option::of(1..120 * DAY),
        expire_at_max_age in any::<bool>(),
        purge_after in prop_oneof![Just(0i64), Just(DAY), Just(30 * DAY)],
        later in 0..400 * DAY,
    ) {
        let policy = RotationPolicy {
            max_age: max_age.map(ms),
            expire_at_max_age,
            purge_after: ms(purge_after),
            max_live_secrets: 3,
            ..RotationPolicy::default()
        };
        let mut cred = credential(T0, expires.map(|e| T0 + e));
        let mut now = T0;
        let mut n = 1;
        for s in steps {
            match s {
                Step::Regenerate(g, d) => {
                    n += 1;
                    let _ = apply_regenerate(
                        &mut cred,
                        lookup(n),
                        digest(n),
                        &policy,
                        RegenerateOptions {
                            grace_period: Some(ms(g)),
                            activation_delay: Some(ms(d)),
                            end_earlier_grace: true,
                        },
                        ts(now),
                    );
                }
                Step::Advance(d) => now += d,
                Step::RevokeVersion(v) => {
                    let _ = revoke_version(&mut cred, v, ts(now));
                }
                Step::RevokeAll => revoke_all(&mut cred, ts(now)),
            }
        }
        let now = ts(now + later);
        let pure = cred.clone();
        let due = plan(&cred, &policy, now);
        prop_assert_eq!(&cred, &pure, "plan must not change the credential");
        let newest = cred.latest_secret().unwrap().version;
        for d in &due {
            if let Due::Purge { version } = d {
                prop_assert_ne!(*version, newest);
                let s = cred.secrets.iter().find(|s| s.version == *version).unwrap();
                let exp = cred.expires_at.map(Timestamp::as_millis);
                let end = [s.not_after.map(Timestamp::as_millis), exp].into_iter().flatten().min();
                let dead_since = s.revoked_at.map(Timestamp::as_millis).or(end).unwrap();
                prop_assert!(now.as_millis() >= dead_since + purge_after);
            }
        }
        apply_due(&mut cred, &due, now);
        let once = cred.clone();
        prop_assert!(!apply_due(&mut cred, &due, now), "second apply changed something");
        prop_assert_eq!(&cred, &once);
        // Nothing state-changing is due any more at the same instant.
        let again = plan(&cred, &policy, now);
        prop_assert!(
            !again.iter().any(|d| matches!(d, Due::Expire { .. } | Due::Purge { .. })),
            "still due after apply: {:?}", again
        );
        prop_assert!(!apply_due(&mut cred, &again, now));
        prop_assert_eq!(cred.latest_secret().unwrap().version, newest);
    }
}

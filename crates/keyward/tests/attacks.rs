//! Every attack on the management plane found against `keyward serve`, through the library
//! (the HTTP versions are in `attacks_http.rs`). Each refusal is checked to change nothing:
//! the whole store is read before and after.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use keyward::core::{
    AccountId, Credential, CredentialId, Environment, KeyType, PermissionSet, Timestamp,
};
use keyward::rotation::{ManualClock, RegenerateOptions, RotationError};
use keyward::store::ListQuery;
use keyward::{
    Config, Denial, EngineError, KeyUpdate, Keyward, NewKey, OPERATOR_ACCOUNT, Principal,
};

const OP: &Principal = &Principal::LocalOperator;
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

struct Fx {
    kw: Keyward,
}

/// A key issued by the operator: its id, plaintext, and the principal it acts as.
struct Actor {
    id: CredentialId,
    key: String,
}

impl Fx {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        Self {
            kw: Keyward::open(Config::memory().with_clock(clock)).unwrap(),
        }
    }

    fn key(&self, account: &str, perms: &[&str]) -> Actor {
        self.key_with(account, KeyType::Secret, perms, None)
    }

    fn key_with(
        &self,
        account: &str,
        key_type: KeyType,
        perms: &[&str],
        expires_at: Option<i64>,
    ) -> Actor {
        let mut new = NewKey::new(
            account.parse().unwrap(),
            key_type,
            Environment::Production,
            "k".parse().unwrap(),
        )
        .with_permissions(PermissionSet::parse(perms).unwrap());
        if let Some(t) = expires_at {
            new = new.with_expiry(Timestamp::from_millis(t));
        }
        let issued = self.kw.issue(OP, new).unwrap();
        Actor {
            id: issued.credential.id.clone(),
            key: issued.key.expose_secret().to_owned(),
        }
    }

    /// The principal a key acts as once a face has verified it.
    fn principal(&self, a: &Actor) -> Principal {
        Principal::Key(self.kw.verify(&a.key).unwrap())
    }

    fn snapshot(&self) -> Vec<Credential> {
        let page = self
            .kw
            .list(
                OP,
                &ListQuery {
                    limit: 1000,
                    ..ListQuery::default()
                },
            )
            .unwrap();
        page.items
    }
}

fn perms(p: &[&str]) -> PermissionSet {
    PermissionSet::parse(p).unwrap()
}

fn new_key(account: &str, p: &[&str]) -> NewKey {
    NewKey::new(
        account.parse().unwrap(),
        KeyType::Secret,
        Environment::Production,
        "made".parse().unwrap(),
    )
    .with_permissions(perms(p))
}

fn assert_escalation<T: std::fmt::Debug>(r: Result<T, EngineError>, missing: &[&str]) {
    match r {
        Err(EngineError::Forbidden {
            reason: Denial::Escalation,
            missing: m,
        }) => assert_eq!(m, perms(missing)),
        other => panic!("expected an escalation refusal naming {missing:?}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, EngineError>) {
    assert!(
        matches!(r, Err(EngineError::NotFound(_))),
        "expected NotFound, got {r:?}"
    );
}

fn assert_forbidden<T: std::fmt::Debug>(r: Result<T, EngineError>, want: Denial) {
    match r {
        Err(EngineError::Forbidden { reason, .. }) => assert_eq!(reason, want),
        other => panic!("expected Forbidden({want:?}), got {other:?}"),
    }
}

// ----- attack 1: a write-only key mints stronger keys ------------------------------------------

#[test]
fn a_write_only_key_cannot_mint_keys_stronger_than_itself() {
    let fx = Fx::new();
    let writer = fx.key("acc_a", &["api-key:write"]);
    let p = fx.principal(&writer);
    let before = fx.snapshot();
    for (asked, missing) in [
        (&["*"][..], &["*"][..]),
        (&["api-key:*"], &["api-key:*"]),
        (&["api-key:admin"], &["api-key:admin"]),
        (&["payments:write"], &["payments:write"]),
        (&["api-key:write", "payments:write"], &["payments:write"]),
    ] {
        assert_escalation(fx.kw.issue(&p, new_key("acc_a", asked)), missing);
    }
    assert_eq!(fx.snapshot(), before, "a refused issue stored something");
    // What it holds, it may give.
    fx.kw
        .issue(&p, new_key("acc_a", &["api-key:write"]))
        .unwrap();
    fx.kw.issue(&p, new_key("acc_a", &[])).unwrap();
}

#[test]
fn a_star_key_reaches_only_its_own_account() {
    let fx = Fx::new();
    let star = fx.key("acc_a", &["*"]);
    let victim = fx.key("acc_b", &["api-key:read"]);
    let p = fx.principal(&star);
    let before = fx.snapshot();
    let id = &victim.id;
    let listing = ListQuery {
        account: Some("acc_b".parse().unwrap()),
        ..ListQuery::default()
    };
    assert_forbidden(fx.kw.list(&p, &listing), Denial::OtherAccount);
    assert_not_found(fx.kw.get(&p, id));
    let zero = RegenerateOptions {
        grace_period: Some(std::time::Duration::ZERO),
        ..RegenerateOptions::default()
    };
    assert_not_found(fx.kw.regenerate(&p, id, zero));
    assert_not_found(fx.kw.revoke(&p, id));
    assert_not_found(fx.kw.revoke_version(&p, id, 1));
    assert_not_found(fx.kw.disable(&p, id));
    assert_not_found(fx.kw.enable(&p, id));
    let rename = KeyUpdate {
        name: Some("mine".parse().unwrap()),
        ..KeyUpdate::default()
    };
    assert_not_found(fx.kw.update(&p, id, rename));
    assert_forbidden(
        fx.kw.issue(&p, new_key("acc_b", &["api-key:read"])),
        Denial::OtherAccount,
    );
    assert_forbidden(
        fx.kw.issue(&p, new_key(OPERATOR_ACCOUNT, &[])),
        Denial::OtherAccount,
    );
    let acc_b: AccountId = "acc_b".parse().unwrap();
    let r = fx.kw.regenerate_environment(
        &p,
        &acc_b,
        &Environment::Production,
        RegenerateOptions::default(),
    );
    assert!(matches!(
        r.map_err(|e| e.error),
        Err(EngineError::Forbidden {
            reason: Denial::OtherAccount,
            ..
        })
    ));
    assert_forbidden(
        fx.kw.environment_key(&p, &acc_b, &Environment::Test),
        Denial::OtherAccount,
    );
    // Listing without an account lists its own only.
    let mine = fx.kw.list(&p, &ListQuery::default()).unwrap();
    assert!(mine.items.iter().all(|c| c.account.as_str() == "acc_a"));
    assert_eq!(fx.snapshot(), before);
    assert!(fx.kw.verify(&victim.key).is_ok());
}

// ----- attack 2: a key patches itself stronger -----------------------------------------------

#[test]
fn a_key_cannot_patch_itself_stronger() {
    let fx = Fx::new();
    let me = fx.key("acc_a", &["api-key:read", "api-key:write"]);
    let p = fx.principal(&me);
    let before = fx.snapshot();
    for add in ["api-key:admin", "*", "api-key:*", "payments:write"] {
        let update = KeyUpdate {
            permissions: Some(perms(&["api-key:read", "api-key:write", add])),
            ..KeyUpdate::default()
        };
        assert_escalation(fx.kw.update(&p, &me.id, update), &[add]);
    }
    // Nor outlive itself: an expiring key cannot remove its own expiry.
    let expiring = fx.key_with(
        "acc_a",
        KeyType::Secret,
        &["api-key:write"],
        Some(T0 + HOUR),
    );
    let pe = fx.principal(&expiring);
    let before_all = fx.snapshot();
    let forever = KeyUpdate {
        expires_at: Some(None),
        ..KeyUpdate::default()
    };
    assert_forbidden(
        fx.kw.update(&pe, &expiring.id, forever),
        Denial::OutlivesPrincipal {
            principal_expires: Timestamp::from_millis(T0 + HOUR),
        },
    );
    assert_eq!(fx.snapshot(), before_all);
    assert!(before.iter().all(|c| before_all.contains(c)));
    // Giving up a permission is fine.
    let fewer = KeyUpdate {
        permissions: Some(perms(&["api-key:write"])),
        ..KeyUpdate::default()
    };
    fx.kw.update(&p, &me.id, fewer).unwrap();
}

// ----- attack 3: a weaker key regenerates, revokes and disables stronger ones ---------------

/// Every single-key management operation, on a fresh fixture each time.
#[derive(Debug, Clone, Copy)]
enum Op {
    Rename,
    AddPermission,
    Regenerate,
    Disable,
    Enable,
    Revoke,
    RevokeVersion,
}

const OPS: [Op; 7] = [
    Op::Rename,
    Op::AddPermission,
    Op::Regenerate,
    Op::Disable,
    Op::Enable,
    Op::Revoke,
    Op::RevokeVersion,
];

fn apply(kw: &Keyward, p: &Principal, id: &CredentialId, op: Op) -> Result<(), EngineError> {
    match op {
        Op::Rename => kw
            .update(
                p,
                id,
                KeyUpdate {
                    name: Some("renamed".parse().unwrap()),
                    ..KeyUpdate::default()
                },
            )
            .map(drop),
        Op::AddPermission => {
            let mut set: Vec<String> = kw
                .get(OP, id)
                .unwrap()
                .permissions
                .iter()
                .map(ToString::to_string)
                .collect();
            set.push("payments:write".into());
            kw.update(
                p,
                id,
                KeyUpdate {
                    permissions: Some(PermissionSet::parse(&set).unwrap()),
                    ..KeyUpdate::default()
                },
            )
            .map(drop)
        }
        Op::Regenerate => kw.regenerate(p, id, RegenerateOptions::default()).map(drop),
        Op::Disable => kw.disable(p, id).map(drop),
        Op::Enable => kw.enable(p, id).map(drop),
        Op::Revoke => kw.revoke(p, id).map(drop),
        Op::RevokeVersion => kw.revoke_version(p, id, 1).map(drop),
    }
}

#[test]
fn every_operation_by_a_weaker_key_on_a_stronger_one_is_refused() {
    for op in OPS {
        for stronger in [
            &["*"][..],
            &["api-key:read", "api-key:write", "api-key:admin"],
            &["api-key:read", "api-key:write", "business:read"],
        ] {
            let fx = Fx::new();
            let weak = fx.key("acc_a", &["api-key:read", "api-key:write"]);
            let strong = fx.key("acc_a", stronger);
            if matches!(op, Op::Enable) {
                fx.kw.disable(OP, &strong.id).unwrap();
            }
            let p = fx.principal(&weak);
            let before = fx.snapshot();
            let r = apply(&fx.kw, &p, &strong.id, op);
            assert!(
                matches!(
                    r,
                    Err(EngineError::Forbidden {
                        reason: Denial::Escalation,
                        ..
                    })
                ),
                "{op:?} on {stronger:?}: {r:?}"
            );
            assert_eq!(
                fx.snapshot(),
                before,
                "{op:?} on {stronger:?} changed state"
            );
        }
    }
}

#[test]
fn every_operation_on_another_account_answers_like_an_unknown_id() {
    for op in OPS {
        let fx = Fx::new();
        let me = fx.key("acc_a", &["*"]);
        let theirs = fx.key("acc_b", &[]);
        if matches!(op, Op::Enable) {
            fx.kw.disable(OP, &theirs.id).unwrap();
        }
        let p = fx.principal(&me);
        let before = fx.snapshot();
        let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
        let a = apply(&fx.kw, &p, &theirs.id, op).unwrap_err();
        let b = match op {
            // The helper reads the target first; an unknown id has nothing to read.
            Op::AddPermission => fx
                .kw
                .update(
                    &p,
                    &unknown,
                    KeyUpdate {
                        permissions: Some(perms(&["payments:write"])),
                        ..KeyUpdate::default()
                    },
                )
                .unwrap_err(),
            _ => apply(&fx.kw, &p, &unknown, op).unwrap_err(),
        };
        assert!(matches!(a, EngineError::NotFound(_)), "{op:?}: {a:?}");
        assert_eq!(
            a.to_string().replace(theirs.id.as_str(), "ID"),
            b.to_string().replace(unknown.as_str(), "ID"),
            "{op:?}"
        );
        assert_eq!(fx.snapshot(), before, "{op:?} changed state");
    }
}

#[test]
fn every_operation_on_itself_is_allowed_but_adding_a_permission() {
    for op in OPS {
        let fx = Fx::new();
        // A second administrator-free account key: nothing here is the last administrator.
        let me = fx.key("acc_a", &["api-key:read", "api-key:write"]);
        let p = fx.principal(&me);
        let r = apply(&fx.kw, &p, &me.id, op);
        match op {
            Op::AddPermission => assert_escalation(r, &["payments:write"]),
            // Enabling an enabled key is allowed and changes nothing visible.
            _ => r.unwrap_or_else(|e| panic!("{op:?} on itself: {e:?}")),
        }
    }
}

#[test]
fn a_weaker_key_never_receives_a_stronger_keys_plaintext() {
    // The `init` admin of the account, and an operator key.
    let fx = Fx::new();
    let admin = fx.key("acc_a", &["*"]);
    let operator = fx.key(OPERATOR_ACCOUNT, &["*"]);
    let weak = fx.key("acc_a", &["api-key:read", "api-key:write"]);
    let p = fx.principal(&weak);
    let before = fx.snapshot();
    assert_escalation(
        fx.kw
            .regenerate(&p, &admin.id, RegenerateOptions::default()),
        &["*"],
    );
    assert_not_found(
        fx.kw
            .regenerate(&p, &operator.id, RegenerateOptions::default()),
    );
    assert_eq!(fx.snapshot(), before);
    assert!(fx.kw.verify(&admin.key).is_ok());
}

// ----- attack 4: bulk regenerate hands out stronger keys --------------------------------------

#[test]
fn regenerate_all_touches_only_what_the_caller_could_touch_one_by_one() {
    let fx = Fx::new();
    let admin = fx.key("acc_a", &["*"]);
    let operator_like = fx.key("acc_a", &["api-key:admin", "api-key:write"]);
    let weak = fx.key("acc_a", &["api-key:read", "api-key:write"]);
    let product = fx.key("acc_a", &["api-key:read"]);
    let other = fx.key("acc_b", &[]);
    let p = fx.principal(&weak);
    let untouched: Vec<Arc<Credential>> = [&admin.id, &operator_like.id, &other.id]
        .iter()
        .map(|id| fx.kw.get(OP, id).unwrap())
        .collect();
    let done = fx
        .kw
        .regenerate_environment(
            &p,
            &"acc_a".parse().unwrap(),
            &Environment::Production,
            RegenerateOptions::default(),
        )
        .unwrap();
    let mut got: Vec<&CredentialId> = done.issued.iter().map(|i| &i.credential.id).collect();
    got.sort();
    let mut want = vec![&weak.id, &product.id];
    want.sort();
    assert_eq!(got, want, "regenerated");
    let mut skipped: Vec<&CredentialId> = done.skipped.iter().map(|s| &s.id).collect();
    skipped.sort();
    let mut want = vec![&admin.id, &operator_like.id];
    want.sort();
    assert_eq!(skipped, want, "skipped");
    for s in &done.skipped {
        assert!(matches!(
            s.reason,
            EngineError::Forbidden {
                reason: Denial::Escalation,
                ..
            }
        ));
    }
    for c in untouched {
        assert_eq!(fx.kw.get(OP, &c.id).unwrap(), c, "{} was touched", c.id);
    }
}

// ----- attack 5: a key made for another account on the caller's behalf ----------------------

#[test]
fn an_environment_key_never_carries_the_callers_management_scopes() {
    let fx = Fx::new();
    let acc_b: AccountId = "acc_b".parse().unwrap();
    // An account key cannot make one for another account.
    let account_admin = fx.key("acc_a", &["api-key:write", "api-key:admin"]);
    let before = fx.snapshot();
    assert_forbidden(
        fx.kw
            .environment_key(&fx.principal(&account_admin), &acc_b, &Environment::Test),
        Denial::OtherAccount,
    );
    assert_eq!(fx.snapshot(), before);
    // An operator can; the key holds what the caller holds minus `*` and `api-key:…`.
    let operator = fx.key(
        OPERATOR_ACCOUNT,
        &["*", "api-key:admin", "api-key:write", "business:read"],
    );
    let made = fx
        .kw
        .environment_key(&fx.principal(&operator), &acc_b, &Environment::Test)
        .unwrap();
    assert_eq!(made.credential.account, acc_b);
    assert_eq!(made.credential.permissions, perms(&["business:read"]));
    // And expires with its maker.
    let short = fx.key_with(
        "acc_c",
        KeyType::Secret,
        &["api-key:write", "a:b"],
        Some(T0 + HOUR),
    );
    let made = fx
        .kw
        .environment_key(
            &fx.principal(&short),
            &"acc_c".parse().unwrap(),
            &Environment::Test,
        )
        .unwrap();
    assert_eq!(
        made.credential.expires_at,
        Some(Timestamp::from_millis(T0 + HOUR))
    );
    assert_eq!(made.credential.permissions, perms(&["a:b"]));
}

// ----- attack 6: the administrator removes itself ---------------------------------------------

#[test]
fn the_last_administrator_cannot_be_removed_through_a_key() {
    let fx = Fx::new();
    let root = fx.key(OPERATOR_ACCOUNT, &["*"]);
    let p = fx.principal(&root);
    let before = fx.snapshot();
    let attempts: Vec<(&str, Result<Arc<Credential>, EngineError>)> = vec![
        ("revoke", fx.kw.revoke(&p, &root.id)),
        ("revoke version", fx.kw.revoke_version(&p, &root.id, 1)),
        ("disable", fx.kw.disable(&p, &root.id)),
        (
            "drop admin",
            fx.kw.update(
                &p,
                &root.id,
                KeyUpdate {
                    permissions: Some(perms(&["api-key:read", "api-key:write"])),
                    ..KeyUpdate::default()
                },
            ),
        ),
        (
            "expire sooner",
            fx.kw.update(
                &p,
                &root.id,
                KeyUpdate {
                    expires_at: Some(Some(Timestamp::from_millis(T0 + HOUR))),
                    ..KeyUpdate::default()
                },
            ),
        ),
    ];
    for (what, r) in attempts {
        assert!(
            matches!(&r, Err(EngineError::LastAdministrator(id)) if *id == root.id),
            "{what}: {r:?}"
        );
    }
    assert_eq!(fx.snapshot(), before);
    // Harmless changes to itself still work.
    fx.kw
        .update(
            &p,
            &root.id,
            KeyUpdate {
                name: Some("root".parse().unwrap()),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    // With a second administrator, the first may go; the second is then the last.
    let second = fx.key(
        OPERATOR_ACCOUNT,
        &["api-key:read", "api-key:write", "api-key:admin"],
    );
    fx.kw.revoke(&p, &root.id).unwrap();
    let p2 = fx.principal(&second);
    assert!(matches!(
        fx.kw.revoke(&p2, &second.id),
        Err(EngineError::LastAdministrator(_))
    ));
    // The local operator can always act, and recover: a new operator key.
    fx.kw.revoke(OP, &second.id).unwrap();
    let recovered = fx.key(OPERATOR_ACCOUNT, &["*"]);
    let list = fx
        .kw
        .list(&fx.principal(&recovered), &ListQuery::default())
        .unwrap();
    assert_eq!(list.items.len(), 3);
}

#[test]
fn an_account_key_is_never_an_administrator() {
    // `*` in an ordinary account is not the operator tier: revoking it is not guarded, and it
    // does not count as the deployment's administrator.
    let fx = Fx::new();
    let root = fx.key(OPERATOR_ACCOUNT, &["*"]);
    let star = fx.key("acc_a", &["*"]);
    fx.kw.revoke(&fx.principal(&star), &star.id).unwrap();
    assert!(matches!(
        fx.kw.revoke(&fx.principal(&root), &root.id),
        Err(EngineError::LastAdministrator(_))
    ));
}

// ----- attack 7: ids leak existence ----------------------------------------------------------

#[test]
fn another_accounts_id_reads_like_an_unknown_one() {
    let fx = Fx::new();
    let reader = fx.key("acc_a", &["api-key:read"]);
    let theirs = fx.key("acc_b", &["*"]);
    let p = fx.principal(&reader);
    let unknown: CredentialId = "key_0000000000000000000000000".parse().unwrap();
    let a = fx.kw.get(&p, &theirs.id).unwrap_err();
    let b = fx.kw.get(&p, &unknown).unwrap_err();
    assert!(matches!(a, EngineError::NotFound(_)));
    assert_eq!(
        a.to_string().replace(theirs.id.as_str(), "ID"),
        b.to_string().replace(unknown.as_str(), "ID")
    );
}

// ----- attack 8: a second regenerate cuts the first one's grace -------------------------------

#[test]
fn a_promised_grace_is_not_cut_by_a_second_regenerate() {
    let fx = Fx::new();
    let writer = fx.key("acc_a", &["*"]);
    let target = fx.key("acc_a", &[]);
    let p = fx.principal(&writer);
    fx.kw
        .regenerate(&p, &target.id, RegenerateOptions::default())
        .unwrap();
    let before = fx.snapshot();
    let r = fx
        .kw
        .regenerate(&p, &target.id, RegenerateOptions::default());
    assert!(
        matches!(
            r,
            Err(EngineError::Rotation(RotationError::GraceInProgress {
                version: 1,
                ..
            }))
        ),
        "{r:?}"
    );
    assert_eq!(fx.snapshot(), before);
    assert!(fx.kw.verify(&target.key).is_ok());
}

// ----- the principal itself ---------------------------------------------------------------

#[test]
fn a_principal_acts_as_it_is_stored_now() {
    let fx = Fx::new();
    let me = fx.key("acc_a", &["api-key:read", "api-key:write"]);
    let p = fx.principal(&me);
    // Stripped of a right after it was verified: it no longer has it.
    fx.kw
        .update(
            OP,
            &me.id,
            KeyUpdate {
                permissions: Some(perms(&["api-key:read"])),
                ..KeyUpdate::default()
            },
        )
        .unwrap();
    match fx.kw.issue(&p, new_key("acc_a", &[])) {
        Err(EngineError::Forbidden {
            reason: Denial::MissingRight,
            missing,
        }) => assert_eq!(missing, perms(&["api-key:write"])),
        other => panic!("{other:?}"),
    }
    // Revoked after it was verified: it acts no more.
    fx.kw.revoke(OP, &me.id).unwrap();
    assert_forbidden(fx.kw.get(&p, &me.id), Denial::InactivePrincipal);
    // A non-secret key never manages.
    let rk = fx.key_with(
        "acc_a",
        KeyType::Restricted,
        &["api-key:read", "api-key:write"],
        None,
    );
    assert_forbidden(
        fx.kw.list(&fx.principal(&rk), &ListQuery::default()),
        Denial::NotSecretKey,
    );
    // Only the local operator sweeps.
    let star = fx.key("acc_a", &["*"]);
    assert_forbidden(
        fx.kw.sweep(&fx.principal(&star), fx.kw.now()),
        Denial::OperatorOnly,
    );
}

#[test]
fn a_key_in_grace_cannot_mint_a_longer_lived_key() {
    // A leaked old key, still in its grace period after a regenerate, acts only until its
    // grace ends: it cannot make or regenerate a key that outlives that.
    let fx = Fx::new();
    let me = fx.key("acc_a", &["*"]);
    let fresh = fx
        .kw
        .regenerate(OP, &me.id, RegenerateOptions::default())
        .unwrap();
    let old = fx.principal(&me);
    let grace_end = Timestamp::from_millis(T0 + 24 * HOUR);
    let before = fx.snapshot();
    assert_forbidden(
        fx.kw.issue(&old, new_key("acc_a", &[])),
        Denial::OutlivesPrincipal {
            principal_expires: grace_end,
        },
    );
    assert_eq!(fx.snapshot(), before);
    fx.kw
        .issue(&old, new_key("acc_a", &[]).with_expiry(grace_end))
        .unwrap();
    // The new secret acts without that limit.
    let new = Principal::Key(fx.kw.verify(fresh.key.expose_secret()).unwrap());
    fx.kw.issue(&new, new_key("acc_a", &[])).unwrap();
}

#[test]
fn two_administrators_revoking_each_other_at_once_leave_one() {
    // Without the administrators' turn, both checks can see the other alive; a few hundred
    // races catch that reliably.
    for _ in 0..400 {
        let fx = Fx::new();
        let a = fx.key(OPERATOR_ACCOUNT, &["*"]);
        let b = fx.key(OPERATOR_ACCOUNT, &["*"]);
        let (pa, pb) = (fx.principal(&a), fx.principal(&b));
        let barrier = std::sync::Barrier::new(2);
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| {
                barrier.wait();
                fx.kw.revoke(&pa, &b.id).map(drop)
            });
            let tb = s.spawn(|| {
                barrier.wait();
                fx.kw.revoke(&pb, &a.id).map(drop)
            });
            (ta.join().unwrap(), tb.join().unwrap())
        });
        assert!(
            ra.is_ok() != rb.is_ok(),
            "exactly one revoke succeeds: {ra:?} {rb:?}"
        );
        let live = [&a, &b]
            .iter()
            .filter(|k| fx.kw.verify(&k.key).is_ok())
            .count();
        assert_eq!(live, 1);
    }
}

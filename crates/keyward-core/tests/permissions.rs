//! Permissions: the grammar, its parser and errors, wildcard semantics against a reference
//! implementation written from the spec, sets and the per-key-type policy.
#![allow(clippy::unwrap_used)]

use keyward_core::{
    KeyType, ModelError, Permission, PermissionError, PermissionPolicy, PermissionSet,
};
use proptest::prelude::*;

/// The grammar as a regular expression (the length cap of 128 bytes is separate).
const GRAMMAR: &str = r"^(?:\*|[a-z][a-z0-9._-]*:(?:\*|[a-z][a-z0-9._-]*))$";

/// A permission as the spec describes it.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    All,
    Resource(String, Action),
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Any,
    Named(String),
}

fn spec_of(s: &str) -> Spec {
    if s == "*" {
        return Spec::All;
    }
    let (r, a) = s.split_once(':').unwrap();
    let action = if a == "*" {
        Action::Any
    } else {
        Action::Named(a.to_owned())
    };
    Spec::Resource(r.to_owned(), action)
}

/// `*` covers everything; `r:*` covers `r:*` and every `r:<action>`; an exact permission
/// covers itself.
fn reference_covers(grant: &Spec, required: &Spec) -> bool {
    match (grant, required) {
        (Spec::All, _) => true,
        (Spec::Resource(_, _), Spec::All) => false,
        (Spec::Resource(gr, Action::Any), Spec::Resource(rr, _)) => gr == rr,
        (Spec::Resource(gr, Action::Named(ga)), Spec::Resource(rr, Action::Named(ra))) => {
            gr == rr && ga == ra
        }
        (Spec::Resource(_, Action::Named(_)), Spec::Resource(_, Action::Any)) => false,
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        // A small pool so that grants and requirements often share a resource or action.
        prop::sample::select(vec![
            "a",
            "b",
            "ab",
            "payment-method",
            "api-key",
            "read",
            "write"
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z0-9._-]{0,12}",
    ]
}

/// A valid permission string, built from the grammar.
fn permission_text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_owned()),
        3 => (segment(), segment()).prop_map(|(r, a)| format!("{r}:{a}")),
        2 => segment().prop_map(|r| format!("{r}:*")),
    ]
}

fn permission() -> impl Strategy<Value = Permission> {
    permission_text().prop_map(|s| Permission::parse(&s).unwrap())
}

proptest! {
    /// Display then parse gives the same value; the parts are what the text says.
    #[test]
    fn grammar_round_trips(text in permission_text()) {
        let p = Permission::parse(&text).unwrap();
        prop_assert_eq!(p.to_string(), text.as_str());
        prop_assert_eq!(p.as_str(), text.as_str());
        prop_assert_eq!(Permission::parse(&p.to_string()).unwrap(), p.clone());
        prop_assert_eq!(text.parse::<Permission>().unwrap(), p.clone());
        match spec_of(&text) {
            Spec::All => {
                prop_assert!(p.is_all());
                prop_assert_eq!(p.resource(), None);
                prop_assert_eq!(p.action(), None);
            }
            Spec::Resource(r, a) => {
                prop_assert!(!p.is_all());
                prop_assert_eq!(p.resource(), Some(r.as_str()));
                let action = match &a {
                    Action::Any => "*",
                    Action::Named(n) => n.as_str(),
                };
                prop_assert_eq!(p.action(), Some(action));
            }
        }
        let json = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(&json, &format!("\"{text}\""));
        prop_assert_eq!(serde_json::from_str::<Permission>(&json).unwrap(), p);
    }

    /// The parser accepts exactly the grammar (up to 128 bytes), over strings drawn from the
    /// characters that matter.
    #[test]
    fn parser_accepts_exactly_the_grammar(s in "[a-cA0-9._:*\\- -]{0,12}") {
        let grammar = regex::Regex::new(GRAMMAR).unwrap();
        prop_assert_eq!(Permission::parse(&s).is_ok(), grammar.is_match(&s), "{:?}", s);
    }

    /// `Permission::parse` never panics, on any string.
    #[test]
    fn parse_never_panics(s in prop_oneof![
        any::<String>(),
        "[a-z:*._-]{0,200}",
        (".{0,3}", 0..300usize).prop_map(|(s, n)| s.repeat(n)),
    ]) {
        if let Ok(p) = Permission::parse(&s) {
            prop_assert!(s.len() <= 128);
            prop_assert_eq!(p.as_str(), s.as_str());
        }
    }

    /// `covers` matches the spec's reference implementation.
    #[test]
    fn covers_matches_reference(grant in permission(), required in permission()) {
        prop_assert_eq!(
            grant.covers(&required),
            reference_covers(&spec_of(grant.as_str()), &spec_of(required.as_str())),
            "{} covers {}?", grant, required
        );
        // Every permission covers itself.
        prop_assert!(grant.covers(&grant));
    }

    /// `allows` is "some member covers it", and a set is sorted and de-duplicated.
    #[test]
    fn set_allows_matches_reference(
        grants in prop::collection::vec(permission_text(), 0..6),
        required in permission(),
    ) {
        let set = PermissionSet::parse(&grants).unwrap();
        let expected = grants
            .iter()
            .any(|g| reference_covers(&spec_of(g), &spec_of(required.as_str())));
        prop_assert_eq!(set.allows(&required), expected);

        let mut distinct: Vec<String> = grants.clone();
        distinct.sort();
        distinct.dedup();
        let members: Vec<String> = set.iter().map(ToString::to_string).collect();
        prop_assert_eq!(&members, &distinct);
        prop_assert_eq!(set.len(), distinct.len());
        prop_assert_eq!(set.is_empty(), grants.is_empty());

        let json = serde_json::to_string(&set).unwrap();
        prop_assert_eq!(serde_json::from_str::<PermissionSet>(&json).unwrap(), set);
    }

    /// Set coverage (the management plane's subset rule) is "every member of the other set is
    /// allowed", `missing` lists exactly the members that are not, and coverage is sound: a
    /// set that covers another allows every permission the other allows.
    #[test]
    fn set_covers_matches_reference_and_is_sound(
        mine in prop::collection::vec(permission_text(), 0..5),
        theirs in prop::collection::vec(permission_text(), 0..5),
        probes in prop::collection::vec(permission(), 1..8),
    ) {
        let a = PermissionSet::parse(&mine).unwrap();
        let b = PermissionSet::parse(&theirs).unwrap();
        let uncovered: Vec<String> = b
            .iter()
            .filter(|p| !mine.iter().any(|g| reference_covers(&spec_of(g), &spec_of(p.as_str()))))
            .map(ToString::to_string)
            .collect();
        prop_assert_eq!(a.covers(&b), uncovered.is_empty());
        let missing: Vec<String> = a.missing(&b).iter().map(ToString::to_string).collect();
        prop_assert_eq!(missing, uncovered);
        prop_assert!(a.covers(&a));
        if a.covers(&b) {
            for p in &probes {
                prop_assert!(!b.allows(p) || a.allows(p), "{:?} covers {:?} but not {}", a, b, p);
            }
        }
    }
}

#[test]
fn set_coverage_examples() {
    let s = |items: &[&str]| PermissionSet::parse(items).unwrap();
    // `*` covers every set, and only `*` covers `*`.
    assert!(s(&["*"]).covers(&s(&["*", "api-key:admin", "x:*"])));
    assert!(!s(&["api-key:*"]).covers(&s(&["*"])));
    assert!(!s(&["api-key:*", "a:b", "z:*"]).covers(&s(&["*"])));
    // `r:*` covers `r:*` and `r:a`, not `r2:a`; `r:a` does not cover `r:*`.
    assert!(s(&["api-key:*"]).covers(&s(&["api-key:*", "api-key:admin"])));
    assert!(!s(&["api-key:write"]).covers(&s(&["api-key:*"])));
    assert!(!s(&["api-key:write"]).covers(&s(&["api-key:admin"])));
    assert_eq!(
        s(&["api-key:write"]).missing(&s(&["*", "api-key:write", "payments:write"])),
        s(&["*", "payments:write"])
    );
    // The empty set is covered by anything, and covers only the empty set.
    assert!(s(&[]).covers(&s(&[])));
    assert!(!s(&[]).covers(&s(&["a:b"])));
}

#[test]
fn wildcard_examples() {
    let p = |s: &str| Permission::parse(s).unwrap();
    assert!(p("*").covers(&p("*")));
    assert!(p("*").covers(&p("payment-method:write")));
    assert!(p("*").covers(&p("payment-method:*")));
    assert!(p("payment-method:*").covers(&p("payment-method:*")));
    assert!(p("payment-method:*").covers(&p("payment-method:write")));
    assert!(!p("payment-method:*").covers(&p("*")));
    assert!(!p("payment-method:*").covers(&p("payment:write")));
    assert!(!p("payment:*").covers(&p("payment-method:write")));
    assert!(p("api-key:write").covers(&p("api-key:write")));
    assert!(!p("api-key:write").covers(&p("api-key:read")));
    assert!(!p("api-key:write").covers(&p("api-key:*")));
    assert!(!p("api-key:write").covers(&p("*")));
    // A prefix of a resource is not the resource.
    assert!(!p("a:*").covers(&p("ab:read")));
    assert!(!p("ab:*").covers(&p("a:read")));
}

#[test]
fn every_permission_error_reason() {
    let long = format!("a:{}", "b".repeat(127));
    assert_eq!(long.len(), 129);
    let cases: &[(&str, PermissionError)] = &[
        ("", PermissionError::Empty),
        (&long, PermissionError::TooLong),
        ("payments", PermissionError::MissingColon),
        ("**", PermissionError::MissingColon),
        (":read", PermissionError::InvalidResource),
        ("Payments:read", PermissionError::InvalidResource),
        ("1payments:read", PermissionError::InvalidResource),
        ("-payments:read", PermissionError::InvalidResource),
        ("*:read", PermissionError::InvalidResource),
        ("pay ments:read", PermissionError::InvalidResource),
        ("paymënts:read", PermissionError::InvalidResource),
        ("payments:", PermissionError::InvalidAction),
        ("payments:Read", PermissionError::InvalidAction),
        ("payments:1read", PermissionError::InvalidAction),
        ("payments:**", PermissionError::InvalidAction),
        ("payments:read:write", PermissionError::InvalidAction),
        ("payments:read ", PermissionError::InvalidAction),
    ];
    for (input, expected) in cases {
        assert_eq!(
            Permission::parse(input).unwrap_err(),
            *expected,
            "{input:?}"
        );
        assert_eq!(input.parse::<Permission>().unwrap_err(), *expected);
    }
    // 128 bytes is still fine.
    assert!(Permission::parse(&long[..128]).is_ok());
    // Errors name the problem and do not echo the input.
    for (input, expected) in cases {
        let text = expected.to_string();
        assert!(!text.is_empty());
        if input.len() > 3 {
            assert!(!text.contains(input), "{text}");
        }
    }
    // Deserialisation goes through the parser.
    assert!(serde_json::from_str::<Permission>("\"Payments:read\"").is_err());
    assert!(serde_json::from_str::<PermissionSet>(r#"["a:read", "b"]"#).is_err());
    // The first error wins in a set.
    assert_eq!(
        PermissionSet::parse(["a:read", "", "B:read"]).unwrap_err(),
        PermissionError::Empty
    );
}

#[test]
fn policy_limits_key_types() {
    let set = |items: &[&str]| PermissionSet::parse(items).unwrap();
    let writes = set(&["business:write", "payment-method:write"]);

    // By default nothing is limited, not even for publishable keys.
    let open = PermissionPolicy::default();
    for key_type in KeyType::ALL {
        assert!(open.check(key_type, &writes).is_ok());
        assert!(open.check(key_type, &set(&["*"])).is_ok());
    }

    let mut policy = PermissionPolicy::default();
    policy.limit(
        KeyType::Publishable,
        set(&["business:read", "payment-method:*"]),
    );
    assert!(policy.check(KeyType::Publishable, &set(&[])).is_ok());
    assert!(
        policy
            .check(
                KeyType::Publishable,
                &set(&["business:read", "payment-method:write", "payment-method:*"])
            )
            .is_ok()
    );
    assert_eq!(
        policy.check(KeyType::Publishable, &writes).unwrap_err(),
        ModelError::PermissionNotAllowed {
            permission: "business:write".to_owned()
        }
    );
    assert_eq!(
        policy
            .check(KeyType::Publishable, &set(&["*"]))
            .unwrap_err(),
        ModelError::PermissionNotAllowed {
            permission: "*".to_owned()
        }
    );
    assert!(policy.check(KeyType::Secret, &writes).is_ok());
    assert!(policy.check(KeyType::Restricted, &writes).is_ok());
    let err = policy.check(KeyType::Publishable, &writes).unwrap_err();
    assert!(err.to_string().contains("business:write"));
}

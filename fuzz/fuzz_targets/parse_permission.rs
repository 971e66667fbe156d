//! `Permission::parse` (and sets of permissions) on arbitrary input: never panics, and what
//! parses prints back as the same text and covers itself.
#![no_main]

use keyward_core::{Permission, PermissionSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(p) = Permission::parse(&input) {
        assert_eq!(p.to_string(), input);
        assert_eq!(Permission::parse(&p.to_string()), Ok(p.clone()));
        assert!(p.covers(&p));
        assert_eq!(p.is_all(), input == "*");
        if let (Some(r), Some(a)) = (p.resource(), p.action()) {
            assert_eq!(format!("{r}:{a}"), input);
        }
    }
    // Comma-separated: a set parses iff every member does, and allows each of its members.
    if let Ok(set) = PermissionSet::parse(input.split(',')) {
        for p in set.iter() {
            assert!(set.allows(p));
        }
    }
});

//! `KeyFormat::parse` and `parse_any` on arbitrary input: never panic, and whatever is accepted
//! is self-consistent (checksum, parts, digest input).
#![no_main]

use keyward_core::{
    CHECKSUM_LEN, Environments, KeyFormat, LOOKUP_LEN, MAX_KEY_LEN, checksum, parse_any,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let any = parse_any(&input);

    let mut envs = Environments::default();
    let _ = envs.insert("staging", "stg");
    let formats = [
        Some(KeyFormat::default()),
        KeyFormat::new(Some("acme"), Environments::default()).ok(),
        KeyFormat::new(None, envs).ok(),
    ];
    for format in formats.iter().flatten() {
        if let Ok(parsed) = format.parse(&input) {
            // The deployment parser only ever narrows parse_any.
            assert_eq!(any, Ok(parsed));
            assert_eq!(parsed.namespace(), format.namespace());
            assert!(
                format
                    .environments()
                    .environment_of_tag(parsed.env_tag())
                    .is_some()
            );
        }
    }

    if let Ok(parsed) = any {
        let bytes = input.as_bytes();
        assert!(bytes.len() <= MAX_KEY_LEN);
        let (covered, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        assert_eq!(&checksum(covered), sum);
        assert!(covered.ends_with(parsed.digest_input()));
        assert!(
            parsed
                .digest_input()
                .starts_with(parsed.key_type().prefix().as_bytes())
        );
        let lookup_at = bytes.len() - CHECKSUM_LEN - 33 - LOOKUP_LEN;
        assert_eq!(
            parsed.lookup().as_bytes(),
            &bytes[lookup_at..lookup_at + LOOKUP_LEN]
        );
        let redacted = parsed.redacted();
        assert!(redacted.len() < input.len());
        let _ = format!("{parsed:?}");
    }
});

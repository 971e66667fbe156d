//! Helpers shared by the integration tests: proptest strategies and independent reference
//! implementations of the checksum, written from the spec rather than from the library.
#![allow(dead_code, clippy::unwrap_used)]

use keyward_core::{Environment, Environments, KeyFormat, KeyType};
use proptest::prelude::*;

/// The key alphabet plus the separator: what a single-character substitution may insert.
pub const KEY_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, init and final xor 0xFFFFFFFF),
/// bit by bit.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// `v` as six base62 digits (`0-9A-Za-z`), most significant first.
pub fn base62_6(mut v: u32) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [0u8; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// The checksum a key must end with, computed from the spec.
pub fn reference_checksum(covered: &[u8]) -> String {
    base62_6(crc32_ieee(covered))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn key_type() -> impl Strategy<Value = KeyType> {
    prop::sample::select(KeyType::ALL.to_vec())
}

/// `[a-z0-9]{1,16}`: namespaces, custom environment names and tags.
pub fn tag() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,16}"
}

/// Production, test, or a custom environment (any name that parses as custom).
pub fn environment() -> impl Strategy<Value = Environment> {
    prop_oneof![
        Just(Environment::Production),
        Just(Environment::Test),
        tag().prop_filter_map("not a custom name", |s| match s.parse() {
            Ok(e @ Environment::Custom(_)) => Some(e),
            _ => None,
        }),
    ]
}

/// A deployment's configured custom tags: zero to three `name → tag` mappings (invalid or
/// clashing ones are skipped, as `insert` refuses them).
pub fn environments() -> impl Strategy<Value = (Environments, Vec<String>)> {
    prop::collection::vec((tag(), tag()), 0..4).prop_map(|pairs| {
        let mut envs = Environments::default();
        let mut names = Vec::new();
        for (name, tag) in pairs {
            if envs.insert(&name, &tag).is_ok() {
                names.push(name);
            }
        }
        (envs, names)
    })
}

/// A full deployment format plus an environment to issue in (often one with a configured tag).
pub fn format_and_env() -> impl Strategy<Value = (KeyFormat, Environment)> {
    (
        prop::option::of(tag()),
        environments(),
        environment(),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(ns, (envs, names), env, pick, use_configured)| {
            let env = if use_configured && !names.is_empty() {
                pick.get(&names).parse().unwrap()
            } else {
                env
            };
            (KeyFormat::new(ns.as_deref(), envs).unwrap(), env)
        })
}

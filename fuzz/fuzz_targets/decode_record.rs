//! `keyward_store::decode_credential` on arbitrary bytes: never panics, and whatever decodes
//! encodes and decodes back to the same credential, and displays without panicking.
#![no_main]

use keyward_store::{decode_credential, encode_credential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // An empty id skips the id check, so any record may decode.
    let Ok(cred) = decode_credential("", data) else {
        return;
    };
    let encoded = encode_credential(&cred).expect("a decoded credential encodes");
    let again = decode_credential(cred.id.as_str(), &encoded).expect("re-encoded record decodes");
    assert_eq!(again, cred);
    // Every value that came out of the record is within the model's bounds, so displaying it
    // cannot fail.
    let _ = cred.validate();
    let _ = cred.created_at.to_string();
    let _ = cred.modified_at.to_string();
    let _ = cred.expires_at.map(|t| t.to_string());
    for s in &cred.secrets {
        let _ = (s.not_before.to_string(), s.created_at.to_string());
        let _ = s.not_after.map(|t| t.to_string());
        let _ = s.revoked_at.map(|t| t.to_string());
    }
    let _ = format!("{cred:?}");
});

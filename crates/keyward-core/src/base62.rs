//! Base62 alphabet helpers (`0-9A-Za-z`).

pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Value of one base62 digit, or `None`.
#[inline]
pub(crate) fn digit(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 36),
        _ => None,
    }
}

/// Encodes `v` as exactly 6 base62 digits, most significant first (62^6 > 2^32).
#[inline]
pub(crate) fn encode_u32_6(mut v: u32) -> [u8; 6] {
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    out
}

/// Decodes 6 base62 digits; `None` if a digit is invalid or the value exceeds `u32::MAX`.
/// (The parser compares encodings instead, see `parse_any`; this is the tests' reference.)
#[cfg(test)]
pub(crate) fn decode_u32_6(s: &[u8]) -> Option<u32> {
    if s.len() != 6 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        v = v * 62 + u64::from(digit(b)?);
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_edges() {
        for v in [0, 1, 61, 62, 3_843, u32::MAX] {
            assert_eq!(decode_u32_6(&encode_u32_6(v)), Some(v));
        }
        assert_eq!(decode_u32_6(b"zzzzzz"), None, "62^6-1 exceeds u32");
        assert_eq!(decode_u32_6(b"00000-"), None);
        assert_eq!(decode_u32_6(b"00000"), None);
    }
}

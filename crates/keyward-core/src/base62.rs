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

/// Digit value of each base62 character (0 for every other byte).
static DIGIT_VALUE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The value of the six base62 digits in the last six bytes of `last8` (most significant
/// first), which must all be base62 characters; the first two bytes are ignored. Branch-free:
/// a table lookup per digit, then the three pairs (×62) combined with two multiplications by
/// 62² that do not depend on each other.
///
/// The result is below 62⁶ < 2³⁶, so six digits that encode more than `u32::MAX` give a value
/// no CRC equals: comparing this with a CRC is the same test as `decode_u32_6` followed by a
/// comparison.
#[inline(always)]
pub(crate) fn decode_last6(last8: &[u8; 8]) -> u64 {
    let d = |i: usize| u64::from(DIGIT_VALUE[usize::from(last8[i])]);
    let (hi, mid, lo) = (d(2) * 62 + d(3), d(4) * 62 + d(5), d(6) * 62 + d(7));
    hi * (3844 * 3844) + mid * 3844 + lo
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

    /// The SWAR decode against the digit-by-digit one, on edges and on a spread of digit
    /// strings (every digit value in every position, values past `u32::MAX` included).
    #[test]
    fn decode_last6_matches_digit_by_digit() {
        let check = |digits: [u8; 6]| {
            let want = digits
                .iter()
                .try_fold(0u64, |v, &c| Some(v * 62 + u64::from(digit(c)?)));
            for lead in [*b"__", *b"zz", *b"09", [0xff, 0]] {
                let mut last8 = [0u8; 8];
                last8[..2].copy_from_slice(&lead);
                last8[2..].copy_from_slice(&digits);
                assert_eq!(Some(decode_last6(&last8)), want, "{digits:?}");
            }
        };
        for v in [
            0,
            1,
            61,
            62,
            3_843,
            3_844,
            238_327,
            14_776_335,
            u32::MAX - 1,
            u32::MAX,
        ] {
            check(encode_u32_6(v));
        }
        for pos in 0..6 {
            for &c in ALPHABET {
                for fill in [b'0', b'z', b'A', b'9', b'a', b'Z'] {
                    let mut d = [fill; 6];
                    d[pos] = c;
                    check(d);
                }
            }
        }
        let mut x: u32 = 0x1234_5678;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            check(encode_u32_6(x));
        }
        assert_eq!(decode_last6(b"__zzzzzz"), 62u64.pow(6) - 1);
    }
}

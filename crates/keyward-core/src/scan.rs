//! Byte-class checks for the key parser, sixteen bytes at a time.
//!
//! Every check here is written as a fixed-size, branch-free loop over a `[u8; 16]` that ORs a
//! per-lane "bad" flag into an accumulator, with no early exit: LLVM turns each into about eight
//! SSE2 instructions per sixteen bytes (subtract, saturating subtract, minimum, OR) and one
//! reduction at the end. Which byte failed is never needed: the parser only asks *whether* a
//! range is clean, and the error it reports follows from which range is not.

/// Sixteen lanes; a lane is non-zero iff its byte failed a check.
type Lanes = [u8; 16];

/// `[0-9]`.
#[inline(always)]
fn is_digit(c: u8) -> bool {
    c.wrapping_sub(b'0') < 10
}

/// `[a-z]`.
#[inline(always)]
fn is_lower(c: u8) -> bool {
    c.wrapping_sub(b'a') < 26
}

/// `[0-9A-Za-z]` (`c | 0x20` maps `A-Z` onto `a-z` and nothing else onto it).
#[inline(always)]
pub(crate) fn is_base62(c: u8) -> bool {
    is_digit(c) | is_lower(c | 0x20)
}

/// `[0-9A-Za-z_]`: the characters a key may contain.
#[inline(always)]
pub(crate) fn is_key_char(c: u8) -> bool {
    is_base62(c) | (c == b'_')
}

/// `[a-z0-9]`: the characters of a namespace or environment tag.
#[inline(always)]
pub(crate) fn is_tag_char(c: u8) -> bool {
    is_digit(c) | is_lower(c)
}

// The lane versions of the classes: zero iff the byte is in the class. They use only byte-wise
// wrapping subtraction, saturating subtraction, OR, XOR and minimum, which map one to one onto
// SSE2 instructions (`psubb`, `psubusb`, `por`, `pxor`, `pminub`), so that the SLP vectoriser
// turns sixteen of them into one vector operation each. `x.saturating_sub(k)` is zero iff
// `x <= k`, and the minimum of two flags is zero iff either is.

/// Zero iff `c` is `[0-9]`.
#[inline(always)]
fn not_digit(c: u8) -> u8 {
    c.wrapping_sub(b'0').saturating_sub(9)
}

/// Zero iff `c` is `[0-9A-Za-z]`.
#[inline(always)]
fn not_base62(c: u8) -> u8 {
    not_digit(c).min((c | 0x20).wrapping_sub(b'a').saturating_sub(25))
}

/// Zero iff `c` is `[0-9A-Za-z_]`.
#[inline(always)]
fn not_key_char(c: u8) -> u8 {
    not_base62(c).min(c ^ b'_')
}

/// Zero iff `c` is `[a-z0-9]`.
#[inline(always)]
fn not_tag_char(c: u8) -> u8 {
    not_digit(c).min(c.wrapping_sub(b'a').saturating_sub(25))
}

/// One iff `c` is `_`, else zero.
#[inline(always)]
fn underscore(c: u8) -> u8 {
    1u8.saturating_sub(c ^ b'_')
}

/// Whether no lane is flagged.
#[inline(always)]
fn clean(lanes: Lanes) -> bool {
    u128::from_ne_bytes(lanes) == 0
}

/// ORs into `bad` the flag of every byte of `chunk` that is not base62.
#[inline(always)]
fn flag_non_base62(bad: &mut Lanes, chunk: &[u8; 16]) {
    for i in 0..16 {
        bad[i] |= not_base62(chunk[i]);
    }
}

/// Whether all 55 bytes of a key body are base62: four overlapping 16-byte chunks.
#[inline]
pub(crate) fn body_is_base62(body: &[u8; 55]) -> bool {
    let (c0, rest) = body.split_first_chunk::<16>().unwrap_or((&[b'0'; 16], &[]));
    let (c1, rest) = rest.split_first_chunk::<16>().unwrap_or((&[b'0'; 16], &[]));
    let c2 = rest.first_chunk::<16>().unwrap_or(&[b'0'; 16]);
    let c3 = body.last_chunk::<16>().unwrap_or(&[b'0'; 16]);
    let mut bad = [0u8; 16];
    flag_non_base62(&mut bad, c0);
    flag_non_base62(&mut bad, c1);
    flag_non_base62(&mut bad, c2);
    flag_non_base62(&mut bad, c3);
    clean(bad)
}

/// Whether the first `len` bytes of `window` are a tag (`[a-z0-9]{1,16}`): `len` must be
/// `1..=16`; the bytes past `len` are ignored.
#[inline(always)]
pub(crate) fn is_tag_prefix(window: &[u8; 16], len: usize) -> bool {
    let Ok(len @ 1..=16) = u8::try_from(len) else {
        return false;
    };
    let mut bad = [0u8; 16];
    for (i, lane) in (0u8..).zip(&mut bad) {
        // `len - i` (saturating) is zero from lane `len` on: only the first `len` lanes count.
        *lane = not_tag_char(window[usize::from(i)]).min(len.saturating_sub(i));
    }
    clean(bad)
}

/// How many bytes at the start of `window` are tag characters (`[a-z0-9]`), 0..=16.
#[inline(always)]
pub(crate) fn tag_prefix_len(window: &[u8; 16]) -> usize {
    let mut bad = [0u8; 16];
    for i in 0..16 {
        bad[i] = not_tag_char(window[i]);
    }
    // Little-endian: lane i is bits 8i..8i+8, so the lowest set bit is in the first bad lane
    // (128 when there is none: 16 lanes).
    (u128::from_le_bytes(bad).trailing_zeros() / 8) as usize
}

/// Whether every byte of `b` is a key character, and whether any is `_`. Sixteen bytes at a
/// time, the last chunk overlapping the one before it; no early exit.
#[inline]
pub(crate) fn scan_key(b: &[u8]) -> (bool, bool) {
    let Some(tail) = b.last_chunk::<16>() else {
        return (b.iter().all(|&c| is_key_char(c)), b.contains(&b'_'));
    };
    let mut bad = [0u8; 16];
    let mut under = [0u8; 16];
    let mut flag = |chunk: &[u8; 16]| {
        for i in 0..16 {
            bad[i] |= not_key_char(chunk[i]);
            under[i] |= underscore(chunk[i]);
        }
    };
    let mut rest = b;
    while let Some((chunk, r)) = rest.split_first_chunk::<16>() {
        flag(chunk);
        rest = r;
    }
    if !rest.is_empty() {
        flag(tail);
    }
    (clean(bad), !clean(under))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_std() {
        for c in 0..=255u8 {
            assert_eq!(is_base62(c), c.is_ascii_alphanumeric(), "{c}");
            assert_eq!(
                is_key_char(c),
                c.is_ascii_alphanumeric() || c == b'_',
                "{c}"
            );
            assert_eq!(
                is_tag_char(c),
                c.is_ascii_lowercase() || c.is_ascii_digit(),
                "{c}"
            );
            assert_eq!(not_digit(c) == 0, c.is_ascii_digit(), "{c}");
            assert_eq!(not_base62(c) == 0, is_base62(c), "{c}");
            assert_eq!(not_key_char(c) == 0, is_key_char(c), "{c}");
            assert_eq!(not_tag_char(c) == 0, is_tag_char(c), "{c}");
            assert_eq!(underscore(c), u8::from(c == b'_'), "{c}");
        }
    }

    /// Every byte value at every position, between valid and invalid neighbours, through every
    /// chunked check and against a plain per-byte check.
    #[test]
    fn chunked_checks_match_per_byte() {
        for c in 0..=255u8 {
            for fill in [b'a', b'Z', b'7', b'_', 0xff, 0x00, b'-'] {
                for pos in 0..55 {
                    let mut body = [fill; 55];
                    body[pos] = c;
                    assert_eq!(
                        body_is_base62(&body),
                        body.iter().all(u8::is_ascii_alphanumeric),
                        "{c} {fill} {pos}"
                    );
                }
                for pos in 0..16 {
                    let mut w = [fill; 16];
                    w[pos] = c;
                    let want = w
                        .iter()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                        .count();
                    assert_eq!(tag_prefix_len(&w), want, "{c} {fill} {pos}");
                    for len in 0..=17 {
                        let want = (1..=16).contains(&len)
                            && w[..len]
                                .iter()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                        assert_eq!(is_tag_prefix(&w, len), want, "{c} {fill} {pos} {len}");
                    }
                }
                for len in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 60, 63, 92, 128] {
                    for pos in (0..len).step_by(5).chain(len.checked_sub(1)) {
                        let mut b = vec![fill; len];
                        b[pos] = c;
                        let want = (
                            b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_'),
                            b.contains(&b'_'),
                        );
                        assert_eq!(scan_key(&b), want, "{c} {fill} {pos} {len}");
                    }
                }
            }
        }
    }
}

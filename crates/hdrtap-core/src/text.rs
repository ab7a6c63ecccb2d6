//! Wire text that is not UTF-8, written losslessly.
//!
//! Records are JSON, whose strings are Unicode: bytes of a header block that
//! are not UTF-8 (Latin-1 in a value, binary in a target) cannot go in as
//! they are. Replacing them with U+FFFD would lose them, so a record that
//! holds any is written with [`escape_wire`]: each byte that is not part of
//! a valid UTF-8 sequence becomes `\xHH` (two lower-case hex digits), and
//! each backslash becomes `\x5c` so that the escapes are unambiguous;
//! [`unescape_wire`] gives the exact bytes back. The record then carries the
//! `non_utf8` flag (`record::flag::NON_UTF8`), and only such records are
//! escaped.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::borrow::Cow;

/// `b` as text: itself when it is UTF-8 without a backslash (no copy), else
/// with every byte outside a valid UTF-8 sequence written `\xHH` and every
/// `\` written `\x5c`.
pub fn escape_wire(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        if !s.contains('\\') {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(b.len() + b.len() / 4 + 4);
    for chunk in b.utf8_chunks() {
        for (i, part) in chunk.valid().split('\\').enumerate() {
            if i > 0 {
                out.push_str("\\x5c");
            }
            out.push_str(part);
        }
        for &byte in chunk.invalid() {
            push_hex(&mut out, byte);
        }
    }
    Cow::Owned(out)
}

/// `\xHH` for `byte`.
fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    for nibble in [byte >> 4, byte & 0xf] {
        out.push(char::from(
            HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
        ));
    }
}

/// The bytes [`escape_wire`] was given: every `\xHH` (either case of hex
/// digit) becomes byte `HH`; anything else, a lone `\` included, is kept.
pub fn unescape_wire(s: &str) -> Vec<u8> {
    decode_hex_escapes(s.as_bytes(), b"\\x")
}

/// RFC 3986 percent-decoding: every `%HH` (either case of hex digit)
/// becomes byte `HH`; a `%` not followed by two hex digits is kept. For
/// query parameter names (redaction) and HTTP/2's grpc-message.
pub fn percent_decode(b: &[u8]) -> Vec<u8> {
    decode_hex_escapes(b, b"%")
}

/// `b` with every `prefix` followed by two hex digits replaced by their
/// byte; everything else kept.
fn decode_hex_escapes(b: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if b.get(i..).is_some_and(|t| t.starts_with(prefix)) {
            let at = i + prefix.len();
            let hi = b.get(at).and_then(|&h| hex_value(h));
            let lo = b.get(at + 1).and_then(|&h| hex_value(h));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i = at + 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn hex_value(h: u8) -> Option<u8> {
    char::from(h)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_takes_hex_pairs_and_keeps_the_rest() {
        assert_eq!(percent_decode(b"caf%C3%a9 a%20b"), "café a b".as_bytes());
        assert_eq!(percent_decode(b"access%5Ftoken"), b"access_token");
        assert_eq!(percent_decode(b"%E9"), [0xe9]);
        // Not an escape: kept as sent.
        assert_eq!(percent_decode(b"100% %zz %4"), b"100% %zz %4");
    }
    use proptest::prelude::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(escape_wire(b"text/html; q=0.9"), Cow::Borrowed(_)));
        assert!(matches!(
            escape_wire("caf\u{e9}".as_bytes()),
            Cow::Borrowed(_)
        ));
        assert!(matches!(escape_wire(b"a\0b\rc"), Cow::Borrowed(_)));
    }

    #[test]
    fn invalid_bytes_and_backslashes_are_escaped() {
        assert_eq!(escape_wire(b"caf\xe9"), "caf\\xe9");
        assert_eq!(escape_wire(b"a\\b"), "a\\x5cb");
        assert_eq!(escape_wire(b"\\xe9"), "\\x5cxe9");
        assert_eq!(escape_wire(b"\xff\xfe"), "\\xff\\xfe");
        // A valid sequence stays, a cut one is escaped byte by byte.
        assert_eq!(escape_wire("\u{e9}\\".as_bytes()), "\u{e9}\\x5c");
        assert_eq!(escape_wire(b"\xe2\x82"), "\\xe2\\x82");
        assert_eq!(escape_wire(b"\xe2\x82\xac\x80"), "\u{20ac}\\x80");
    }

    #[test]
    fn unescape_gives_the_bytes_back() {
        assert_eq!(unescape_wire("caf\\xe9"), b"caf\xe9");
        assert_eq!(unescape_wire("a\\x5cb"), b"a\\b");
        assert_eq!(unescape_wire("\\x5cxe9"), b"\\xe9");
        assert_eq!(unescape_wire("\\XE9\\xE9"), b"\\XE9\xe9");
        assert_eq!(unescape_wire("end\\x"), b"end\\x");
        assert_eq!(unescape_wire("end\\xz1"), b"end\\xz1");
    }

    proptest! {
        #[test]
        fn escape_round_trips(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unescape_wire(&escape_wire(&b)), b);
        }
    }
}

//! The header lines of one message, in wire order, original case,
//! duplicates kept.
//!
//! Stored as one string and a span per header rather than a `String` per
//! name and value: a busy machine emits hundreds of thousands of records a
//! second, and one allocation per header was a third of hdrtap's CPU time
//! (perf, nginx+wrk on loopback). A record costs two allocations for its
//! headers however many there are, and [`Headers::from_block`] copies and
//! UTF-8-checks a parsed header block in one pass instead of per value.
use std::fmt;

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// Header lines: `(name, value)` pairs.
#[derive(Clone, Default)]
pub struct Headers {
    /// Text the spans point into.
    buf: String,
    /// Per header: name start, name end, value start, value end in `buf`.
    spans: Vec<[u32; 4]>,
    /// Per header, bits of [`mark`]; empty while no header has any (every
    /// HTTP/1 record, most HTTP/2 ones).
    marks: Vec<u8>,
}

/// What a header line carries besides its text (HTTP/2's HPACK).
pub mod mark {
    /// The name refers to an HPACK dynamic-table entry hdrtap never saw
    /// (a connection joined mid-stream): stored empty, JSON `null`.
    pub const NAME_UNKNOWN: u8 = 1 << 0;
    /// The same for the value.
    pub const VALUE_UNKNOWN: u8 = 1 << 1;
    /// The sender encoded the field "never indexed" (RFC 7541 §7.1.3), its
    /// mark for sensitive values: redacted by default.
    pub const NEVER_INDEXED: u8 = 1 << 2;
}

impl Headers {
    /// Empty, with room for `n` headers of `bytes` bytes in all.
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        Headers {
            buf: String::with_capacity(bytes),
            spans: Vec::with_capacity(n),
            marks: Vec::new(),
        }
    }

    /// The headers `pairs` (name, value), every one a slice of `block`,
    /// keeping `block`'s text once. None when a slice lies outside `block`
    /// or splits a character, or `block` is not UTF-8: the caller then
    /// pushes the pairs one by one.
    pub fn from_block<'a, I>(block: &'a [u8], pairs: I) -> Option<Headers>
    where
        I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let text = std::str::from_utf8(block).ok()?;
        // Addresses as numbers: where each slice sits within the block.
        let base = block.as_ptr() as usize;
        let span = |s: &[u8]| -> Option<[u32; 2]> {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(s.len())?;
            // Inside the block, and on character boundaries.
            text.get(start..end)?;
            Some([u32::try_from(start).ok()?, u32::try_from(end).ok()?])
        };
        let mut spans = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let [ns, ne] = span(name)?;
            let [vs, ve] = span(value)?;
            spans.push([ns, ne, vs, ve]);
        }
        Some(Headers {
            buf: text.to_owned(),
            spans,
            marks: Vec::new(),
        })
    }

    /// Append a header line.
    pub fn push(&mut self, name: &str, value: &str) {
        let ns = self.buf.len() as u32;
        self.buf.push_str(name);
        let ne = self.buf.len() as u32;
        self.buf.push_str(value);
        self.spans.push([ns, ne, ne, self.buf.len() as u32]);
    }

    /// Append a header line with [`mark`] bits.
    pub fn push_marked(&mut self, name: &str, value: &str, marks: u8) {
        self.push(name, value);
        if marks != 0 {
            // Lines before it without marks of their own read as 0.
            self.marks.resize(self.spans.len() - 1, 0);
            self.marks.push(marks);
        }
    }

    /// The [`mark`] bits of header line `i` (0 for an unmarked one).
    pub fn marks(&self, i: usize) -> u8 {
        self.marks.get(i).copied().unwrap_or(0)
    }

    /// Whether any header line has a [`mark`] bit.
    pub fn any_marks(&self) -> bool {
        self.marks.iter().any(|&m| m != 0)
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No header lines.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Header line `i`.
    pub fn get(&self, i: usize) -> Option<(&str, &str)> {
        pair(&self.buf, self.spans.get(i)?)
    }

    /// The last header line.
    pub fn last(&self) -> Option<(&str, &str)> {
        self.get(self.len().checked_sub(1)?)
    }

    /// Every header line in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            spans: self.spans.iter(),
        }
    }

    /// Every header line in order, as bytes (the same text as [`iter`]).
    ///
    /// For the hot loops that only compare or copy bytes: a `&str` slice
    /// costs two character-boundary checks, four per line, and every record
    /// goes through its lines several times (rules, redaction, output).
    ///
    /// [`iter`]: Headers::iter
    pub fn iter_bytes(&self) -> BytesIter<'_> {
        BytesIter {
            buf: self.buf.as_bytes(),
            spans: self.spans.iter(),
        }
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn first(&self, name: &str) -> Option<&str> {
        let i = self
            .iter_bytes()
            .position(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))?;
        self.get(i).map(|(_, v)| v)
    }

    /// Replace the value of every header for which `f(name, value)` returns
    /// a new one. Returns how many were replaced.
    pub fn replace_values<F>(&mut self, mut f: F) -> usize
    where
        F: FnMut(&str, &str) -> Option<String>,
    {
        self.replace_values_marked(0, |name, value, _, out| match f(name, value) {
            Some(new) => {
                out.push_str(&new);
                true
            }
            None => false,
        })
    }

    /// [`Headers::replace_values`] from line `from` on, with each line's
    /// [`mark`] bits, and the new value written by `f` into a buffer
    /// (cleared for each line, one for the whole block): `f` returns true
    /// when it wrote one.
    pub fn replace_values_marked<F>(&mut self, from: usize, mut f: F) -> usize
    where
        F: FnMut(&str, &str, u8, &mut String) -> bool,
    {
        let mut replaced = 0;
        // Room for a redaction marker, so the usual new value is written
        // without growing the buffer.
        let mut new = String::with_capacity(64);
        for i in from..self.len() {
            let Some((name, value)) = self.get(i) else {
                continue;
            };
            new.clear();
            if f(name, value, self.marks(i), &mut new) {
                replaced += usize::from(self.replace_value(i, &new));
            }
        }
        replaced
    }

    /// Replace the value of header line `i` with `new`, in place: the text
    /// after it moves, nothing is rebuilt. Rebuilding the lines into a new
    /// buffer (two allocations and a copy per line) was most of what
    /// redacting a request cost (callgrind). False when there is no line
    /// `i`.
    pub fn replace_value(&mut self, i: usize, new: &str) -> bool {
        let Some(&[ns, ne, vs, ve]) = self.spans.get(i) else {
            return false;
        };
        let (start, end) = (vs as usize, ve as usize);
        let Ok(width) = u32::try_from(new.len()) else {
            return false;
        };
        if self.buf.get(start..end).is_none() {
            return false;
        }
        let old_len = self.buf.len();
        // Not replace_range: it splices byte by byte (~800 instructions for
        // one marker, callgrind); these two move the tail with memmove.
        self.buf.drain(start..end);
        self.buf.insert_str(start, new);
        let new_len = self.buf.len();
        if new_len < old_len {
            // The bytes the text moved away from (the end of the old value
            // among them, when it was the last) stay in the buffer's spare
            // room until overwritten: overwrite them now, since the old
            // value is usually a secret.
            self.buf
                .extend(std::iter::repeat_n('\0', old_len - new_len));
            self.buf.truncate(new_len);
        }
        // Spans never overlap: an offset past the value's start lies at or
        // after its end and moves; one at its start (an empty range) moves
        // only when its line comes later.
        let (new_end, old_width) = (vs.saturating_add(width), ve - vs);
        let shift = |x: u32| x.saturating_add(width).saturating_sub(old_width);
        for (j, span) in self.spans.iter_mut().enumerate() {
            if j == i {
                *span = [ns, ne, vs, new_end];
                continue;
            }
            for x in span.iter_mut() {
                if *x > vs || (*x == vs && j > i) {
                    *x = shift(*x);
                }
            }
        }
        // A replaced value is known, whatever it stood for.
        if let Some(m) = self.marks.get_mut(i) {
            *m &= !mark::VALUE_UNKNOWN;
        }
        true
    }

    /// Owned pairs (for tests and callers that want them).
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

fn pair<'a>(buf: &'a str, &[ns, ne, vs, ve]: &[u32; 4]) -> Option<(&'a str, &'a str)> {
    Some((
        buf.get(ns as usize..ne as usize)?,
        buf.get(vs as usize..ve as usize)?,
    ))
}

/// Equal when the header lines are equal, however they are stored.
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().eq(other.iter())
            && (0..self.len()).all(|i| self.marks(i) == other.marks(i))
    }
}

impl Eq for Headers {}

/// Iterator over header lines.
pub struct Iter<'a> {
    buf: &'a str,
    spans: std::slice::Iter<'a, [u32; 4]>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        pair(self.buf, self.spans.next()?)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Iterator over header lines as bytes (see [`Headers::iter_bytes`]).
pub struct BytesIter<'a> {
    buf: &'a [u8],
    spans: std::slice::Iter<'a, [u32; 4]>,
}

impl<'a> Iterator for BytesIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let &[ns, ne, vs, ve] = self.spans.next()?;
        Some((
            self.buf.get(ns as usize..ne as usize)?,
            self.buf.get(vs as usize..ve as usize)?,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for BytesIter<'_> {}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::default();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// JSON: an array of `[name, value]` arrays; an unknown part is `null`.
impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for (i, (n, v)) in self.iter().enumerate() {
            let m = self.marks(i);
            let n = (m & mark::NAME_UNKNOWN == 0).then_some(n);
            let v = (m & mark::VALUE_UNKNOWN == 0).then_some(v);
            seq.serialize_element(&(n, v))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_case_and_duplicates() {
        let h: Headers = [("Host", "a"), ("X-Dup", "1"), ("x-dup", "2"), ("Empty", "")]
            .into_iter()
            .collect();
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(0), Some(("Host", "a")));
        assert_eq!(h.get(2), Some(("x-dup", "2")));
        assert_eq!(h.get(3), Some(("Empty", "")));
        assert_eq!(h.get(4), None);
        assert_eq!(h.last(), Some(("Empty", "")));
        assert_eq!(h.first("X-DUP"), Some("1"));
        assert_eq!(h.first("missing"), None);
        let bytes: Vec<_> = h.iter_bytes().collect();
        let text: Vec<_> = h
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(bytes, text);
        assert_eq!(h.iter_bytes().len(), 4);
        assert_eq!(h.iter().len(), 4);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"[["Host","a"],["X-Dup","1"],["x-dup","2"],["Empty",""]]"#
        );
    }

    #[test]
    fn from_block_keeps_the_block_once() {
        let block = b"Host: a\r\nX-Dup: 1\r\nEmpty: \r\n";
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (&block[0..4], &block[6..7]),
            (&block[9..14], &block[16..17]),
            (&block[19..24], &block[26..26]),
        ];
        let h = Headers::from_block(block, pairs.into_iter()).unwrap();
        assert_eq!(
            h,
            [("Host", "a"), ("X-Dup", "1"), ("Empty", "")]
                .into_iter()
                .collect()
        );
        // A slice from elsewhere, or a block that is not UTF-8: no.
        let other = b"Elsewhere".to_vec();
        assert!(Headers::from_block(block, std::iter::once((&other[..], &block[0..1]))).is_none());
        let bad = b"N\xff: v";
        assert!(Headers::from_block(bad, std::iter::once((&bad[0..1], &bad[4..5]))).is_none());
        // A slice that splits a character: no.
        let utf = "é: v".as_bytes();
        assert!(Headers::from_block(utf, std::iter::once((&utf[0..1], &utf[4..5]))).is_none());
    }

    #[test]
    fn replaces_values_in_place() {
        let mut h: Headers = [("A", "1"), ("Secret", "xyz"), ("B", "2"), ("secret", "q")]
            .into_iter()
            .collect();
        let n = h.replace_values(|n, v| {
            n.eq_ignore_ascii_case("secret")
                .then(|| format!("<{}>", v.len()))
        });
        assert_eq!(n, 2);
        assert_eq!(
            h.to_vec(),
            vec![
                ("A".to_string(), "1".to_string()),
                ("Secret".to_string(), "<3>".to_string()),
                ("B".to_string(), "2".to_string()),
                ("secret".to_string(), "<1>".to_string()),
            ]
        );
        let before = h.clone();
        assert_eq!(h.replace_values(|_, _| None), 0);
        assert_eq!(h, before);
    }

    #[test]
    fn replace_value_moves_the_lines_after_it_only() {
        let block = b"A: 1\r\nSecret: xyz\r\nEmpty: \r\nB: 2\r\n";
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (&block[0..1], &block[3..4]),
            (&block[6..12], &block[14..17]),
            (&block[19..24], &block[26..26]),
            (&block[28..29], &block[31..32]),
        ];
        let parsed = Headers::from_block(block, pairs.into_iter()).unwrap();
        // Longer, shorter, into an empty value, and to empty.
        for (i, new) in [(1, "a longer value"), (1, "s"), (2, "now set"), (3, "")] {
            let mut h = parsed.clone();
            let mut want = parsed.to_vec();
            want[i].1 = new.to_string();
            assert!(h.replace_value(i, new));
            assert_eq!(h.to_vec(), want, "line {i} := {new:?}");
        }
        // Lines pushed one after the other: an empty name and value share
        // their offsets with the next line's name.
        let mut h: Headers = [("", ""), ("", ""), ("N", "v")].into_iter().collect();
        assert!(h.replace_value(0, "x"));
        assert!(h.replace_value(1, "yy"));
        assert_eq!(
            h.to_vec(),
            [("", "x"), ("", "yy"), ("N", "v")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .to_vec()
        );
        assert!(!h.replace_value(3, "no line 3"));
        // An unknown value replaced is known; its other marks stay.
        let mut h = Headers::default();
        h.push_marked("n", "", mark::VALUE_UNKNOWN | mark::NEVER_INDEXED);
        assert!(h.replace_value(0, "v"));
        assert_eq!(h.marks(0), mark::NEVER_INDEXED);
    }
}

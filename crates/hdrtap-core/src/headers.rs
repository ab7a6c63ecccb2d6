//! The header lines of one message, in wire order, original case,
//! duplicates kept.
//!
//! Stored as one string and a list of end offsets rather than a `String`
//! per name and value: a busy machine emits hundreds of thousands of
//! records a second, and one allocation per header was a third of hdrtap's
//! CPU time (perf, nginx+wrk on loopback). A record now costs two
//! allocations for its headers however many there are.
use std::fmt;

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// Header lines: `(name, value)` pairs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Names and values back to back.
    buf: String,
    /// Per header: (end of name, end of value) in `buf`. A name starts
    /// where the previous value ended.
    ends: Vec<(u32, u32)>,
}

impl Headers {
    /// Empty, with room for `n` headers of `bytes` bytes in all.
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        Headers {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    /// Append a header line.
    pub fn push(&mut self, name: &str, value: &str) {
        self.buf.push_str(name);
        let name_end = self.buf.len() as u32;
        self.buf.push_str(value);
        self.ends.push((name_end, self.buf.len() as u32));
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No header lines.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Header line `i`.
    pub fn get(&self, i: usize) -> Option<(&str, &str)> {
        let start = match i.checked_sub(1) {
            None => 0,
            Some(prev) => self.ends.get(prev)?.1 as usize,
        };
        let &(name_end, value_end) = self.ends.get(i)?;
        Some((
            self.buf.get(start..name_end as usize)?,
            self.buf.get(name_end as usize..value_end as usize)?,
        ))
    }

    /// The last header line.
    pub fn last(&self) -> Option<(&str, &str)> {
        self.get(self.len().checked_sub(1)?)
    }

    /// Every header line in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            ends: self.ends.iter(),
            start: 0,
        }
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Replace the value of every header for which `f(name, value)` returns
    /// a new one. Returns how many were replaced.
    pub fn replace_values<F>(&mut self, mut f: F) -> usize
    where
        F: FnMut(&str, &str) -> Option<String>,
    {
        let mut replaced = 0;
        let mut out: Option<Headers> = None;
        for (i, (name, value)) in self.iter().enumerate() {
            match f(name, value) {
                Some(new) => {
                    let out = out.get_or_insert_with(|| {
                        // Copy the untouched lines before the first change.
                        let mut h = Headers::with_capacity(self.len(), self.buf.len() + new.len());
                        for (n, v) in self.iter().take(i) {
                            h.push(n, v);
                        }
                        h
                    });
                    out.push(name, &new);
                    replaced += 1;
                }
                None => {
                    if let Some(out) = out.as_mut() {
                        out.push(name, value);
                    }
                }
            }
        }
        if let Some(out) = out {
            *self = out;
        }
        replaced
    }

    /// Owned pairs (for tests and callers that want them).
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

/// Iterator over header lines.
pub struct Iter<'a> {
    buf: &'a str,
    ends: std::slice::Iter<'a, (u32, u32)>,
    start: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let &(name_end, value_end) = self.ends.next()?;
        let (name_end, value_end) = (name_end as usize, value_end as usize);
        let item = (
            self.buf.get(self.start..name_end)?,
            self.buf.get(name_end..value_end)?,
        );
        self.start = value_end;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

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

/// JSON: an array of `[name, value]` arrays.
impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for pair in self.iter() {
            seq.serialize_element(&pair)?;
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
        assert_eq!(h.iter().len(), 4);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"[["Host","a"],["X-Dup","1"],["x-dup","2"],["Empty",""]]"#
        );
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
}

//! Redaction of secret header values, on by default.
//!
//! A redacted value becomes `[REDACTED len=N hash=H]`: N is the value's
//! length in bytes and H the first 64 bits of a BLAKE3 keyed hash under a key
//! drawn at random for each run. Equal secrets give equal markers within a
//! run (so a token's reuse can be followed) and nothing that can be compared
//! across runs or brute-forced offline without the key.
use crate::headers::mark;
use crate::record::HttpRecord;

/// Headers redacted unless `--no-redact`.
pub const DEFAULT_REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// Replaces the values of secret headers with keyed-hash markers.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
    names: Vec<String>,
    /// Also redact HTTP/2 fields the sender encoded "never indexed" (its
    /// mark for sensitive values, RFC 7541 §7.1.3), whatever their name.
    never_indexed: bool,
    /// For names n bytes long (n < 64; longer ones share entry 63): bit
    /// `last_bit(b)` set for the last byte b of each. Every header of every
    /// record is tested against it, and it settles all but the redacted
    /// ones: by length alone, nginx's Server, Connection, Content-Type,
    /// Last-Modified and Accept-Ranges looked like Cookie, Set-Cookie,
    /// X-Auth-Token and Authorization, and went on to the string compare.
    ends: [u64; 64],
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Redactor")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor for `names` (matched case-insensitively) with a fresh
    /// random key. Empty `names` redacts nothing.
    pub fn new<I, S>(names: I) -> Result<Self, getrandom::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self::with_key(key, names))
    }

    /// A redactor with a given key (tests).
    pub fn with_key<I, S>(key: [u8; 32], names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().trim().to_ascii_lowercase())
            .collect();
        names.sort();
        names.dedup();
        let mut ends = [0u64; 64];
        for n in &names {
            if let (Some(e), Some(&last)) = (ends.get_mut(n.len().min(63)), n.as_bytes().last()) {
                *e |= last_bit(last);
            }
        }
        Redactor {
            key,
            names,
            ends,
            never_indexed: false,
        }
    }

    /// Also redact fields the sender marked never-indexed (HTTP/2).
    pub fn with_never_indexed(mut self, on: bool) -> Self {
        self.never_indexed = on;
        self
    }

    /// Whether never-indexed fields are redacted.
    pub fn redacts_never_indexed(&self) -> bool {
        self.never_indexed
    }

    /// The default list plus `extra`; with `no_defaults` (`--no-redact`),
    /// only the headers named in `extra`.
    pub fn from_options(no_defaults: bool, extra: &[String]) -> Result<Self, getrandom::Error> {
        if no_defaults {
            return Redactor::new(extra);
        }
        Ok(Redactor::new(
            DEFAULT_REDACTED
                .iter()
                .map(|s| s.to_string())
                .chain(extra.iter().cloned()),
        )?
        .with_never_indexed(true))
    }

    /// Header names redacted (lower case).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `name` is redacted.
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The marker that stands for `value`:
    /// `[REDACTED len=N hash=<first 8 bytes of the keyed hash, hex>]`.
    pub fn marker(&self, value: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let h = blake3::keyed_hash(&self.key, value.as_bytes());
        // Built by hand: format! with sixteen `{:02x}` cost more than the
        // hash itself (callgrind: ~4,000 instructions per marker).
        let mut s = String::with_capacity(48);
        s.push_str("[REDACTED len=");
        s.push_str(itoa::Buffer::new().format(value.len()));
        s.push_str(" hash=");
        for &b in h.as_bytes().iter().take(8) {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s.push(']');
        s
    }

    /// Redact every covered header of `rec` in place. Returns how many values
    /// were replaced.
    pub fn apply(&self, rec: &mut HttpRecord) -> usize {
        let marked = self.never_indexed && rec.headers.any_marks();
        if self.names.is_empty() && !marked {
            return 0;
        }
        // The usual record has no secret: one pass that changes nothing.
        if !marked && !rec.headers.iter_bytes().any(|(name, _)| self.maybe(name)) {
            return 0;
        }
        rec.headers.replace_values_marked(|name, value, m| {
            let never =
                self.never_indexed && m & mark::NEVER_INDEXED != 0 && m & mark::VALUE_UNKNOWN == 0;
            (never || (self.maybe(name.as_bytes()) && self.covers(name)))
                .then(|| self.marker(value))
        })
    }

    /// False when `name` is certainly not redacted (see `ends`).
    fn maybe(&self, name: &[u8]) -> bool {
        let (Some(e), Some(&last)) = (self.ends.get(name.len().min(63)), name.last()) else {
            return false;
        };
        e & last_bit(last) != 0
    }
}

/// A name's last byte as a bit: letters of either case alike (OR 0x20),
/// other bytes may share a bit with a letter (only a false "maybe").
fn last_bit(b: u8) -> u64 {
    1u64 << ((b | 0x20) & 63)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_request as record;

    #[test]
    fn redacts_default_headers_case_insensitively() {
        let r = Redactor::from_options(false, &[]).unwrap();
        let mut rec = record(&[
            ("AUTHORIZATION", "Bearer secret"),
            ("cookie", "a=b"),
            ("Set-Cookie", "s=1"),
            ("X-Api-Key", "k"),
            ("x-auth-token", "t"),
            ("Proxy-Authorization", "Basic x"),
            ("Host", "example"),
        ]);
        assert_eq!(r.apply(&mut rec), 6);
        for (name, value) in rec.headers.iter().take(6) {
            assert!(
                value.starts_with("[REDACTED len="),
                "{name} not redacted: {value}"
            );
            assert!(!value.contains("secret"));
        }
        assert_eq!(rec.headers.get(6), Some(("Host", "example")));
        assert!(rec
            .headers
            .get(0)
            .unwrap()
            .1
            .starts_with("[REDACTED len=13 hash="));
    }

    #[test]
    fn never_indexed_fields_are_redacted_unless_no_redact() {
        let mut rec = record(&[]);
        rec.headers
            .push_marked("x-token", "s3cr3t", mark::NEVER_INDEXED);
        rec.headers.push("x-plain", "v");
        // An unknown value (joined mid-stream) stays unknown, not a marker.
        rec.headers
            .push_marked("x-old", "", mark::NEVER_INDEXED | mark::VALUE_UNKNOWN);
        let mut r1 = rec.clone();
        assert_eq!(
            Redactor::from_options(false, &[]).unwrap().apply(&mut r1),
            1
        );
        assert!(r1.headers.get(0).unwrap().1.starts_with("[REDACTED len=6 "));
        assert_eq!(r1.headers.get(1), Some(("x-plain", "v")));
        assert_eq!(r1.headers.marks(0), mark::NEVER_INDEXED);
        assert_eq!(
            r1.headers.marks(2),
            mark::NEVER_INDEXED | mark::VALUE_UNKNOWN
        );
        let mut r2 = rec.clone();
        assert_eq!(Redactor::from_options(true, &[]).unwrap().apply(&mut r2), 0);
        assert_eq!(r2.headers.get(0), Some(("x-token", "s3cr3t")));
    }

    #[test]
    fn equal_secrets_correlate_within_a_run_only() {
        let r = Redactor::new(["authorization"]).unwrap();
        assert_eq!(r.marker("abc"), r.marker("abc"));
        assert_ne!(r.marker("abc"), r.marker("abd"));
        let other = Redactor::new(["authorization"]).unwrap();
        assert_ne!(
            r.marker("abc"),
            other.marker("abc"),
            "a new run has a new key"
        );
    }

    #[test]
    fn marker_is_length_and_the_first_eight_hash_bytes_in_hex() {
        let r = Redactor::new(["authorization"]).unwrap();
        let value = "Bearer secret-token";
        let hex = blake3::keyed_hash(&r.key, value.as_bytes()).to_hex();
        assert_eq!(
            r.marker(value),
            format!("[REDACTED len={} hash={}]", value.len(), &hex[..16])
        );
    }

    #[test]
    fn lookalike_names_are_not_redacted() {
        let r = Redactor::from_options(false, &[]).unwrap();
        // Same length as a secret's name, and some the same last letter too.
        let lookalikes = [
            ("Server", "nginx"),            // 6, like Cookie
            ("Connection", "keep-alive"),   // 10, like Set-Cookie
            ("Content-Type", "text/html"),  // 12, like X-Auth-Token
            ("Last-Modified", "yesterday"), // 13, like Authorization
            ("Xuthorization", "x"),         // 13 and ending in n
            ("X-Api-Kez", "k"),             // 9, like X-Api-Key
        ];
        let mut rec = record(&lookalikes);
        assert_eq!(r.apply(&mut rec), 0);
        assert_eq!(rec.headers.to_vec(), record(&lookalikes).headers.to_vec());
        // A secret among them is still found, whatever its case.
        let mut rec = record(&[
            ("Server", "nginx"),
            ("X-API-KEY", "k"),
            ("Xuthorization", "x"),
        ]);
        assert_eq!(r.apply(&mut rec), 1);
        assert!(rec
            .headers
            .get(1)
            .unwrap()
            .1
            .starts_with("[REDACTED len=1 "));
        assert_eq!(rec.headers.get(2), Some(("Xuthorization", "x")));
        // Names of 63 bytes or more share one entry.
        let long = "x".repeat(70);
        let r = Redactor::new([long.as_str()]).unwrap();
        let mut rec = record(&[(&"x".repeat(64), "a"), (&long.to_uppercase(), "b")]);
        assert_eq!(r.apply(&mut rec), 1);
        assert_eq!(rec.headers.get(0).map(|(_, v)| v), Some("a"));
    }

    #[test]
    fn extra_and_disabled() {
        let r = Redactor::from_options(false, &["X-Custom".to_string()]).unwrap();
        let mut rec = record(&[("x-custom", "v"), ("Authorization", "a")]);
        assert_eq!(r.apply(&mut rec), 2);
        let off = Redactor::from_options(true, &[]).unwrap();
        let mut rec = record(&[("Authorization", "a")]);
        assert_eq!(off.apply(&mut rec), 0);
        assert_eq!(rec.headers.get(0), Some(("Authorization", "a")));
        // --no-redact --redact X: only X
        let only = Redactor::from_options(true, &["X-Custom".to_string()]).unwrap();
        let mut rec = record(&[("Authorization", "a"), ("X-Custom", "c")]);
        assert_eq!(only.apply(&mut rec), 1);
        assert_eq!(rec.headers.get(0), Some(("Authorization", "a")));
    }

    #[test]
    fn debug_never_shows_key() {
        let r = Redactor::with_key([7u8; 32], ["cookie"]);
        assert!(!format!("{r:?}").contains("7, 7"));
    }
}

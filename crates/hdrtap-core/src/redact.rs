//! Redaction of secrets, on by default, in one place: the pipeline runs
//! [`Redactor::apply`] on every record before anything else reads it (the
//! security rules, every sink, every metric label, every log line).
//!
//! * Secret headers (Authorization, Cookie, ... and `--redact NAME`): the
//!   value becomes `[REDACTED len=N hash=H]`, N its length in bytes and H
//!   SipHash-2-4 of the value (a keyed pseudo-random function built for
//!   short inputs, 64 bits out) under a 128-bit key drawn at random for
//!   each run. Equal secrets give equal markers within a run (so a
//!   token's reuse can be followed) and nothing that can be compared across
//!   runs or brute-forced offline without the key. Authorization and
//!   Proxy-Authorization keep a well-known scheme in front:
//!   `Bearer [REDACTED len=N hash=H]`, N and H of the credentials.
//! * Secret query parameters (`access_token`, `code`, `X-Amz-Signature`, ...
//!   and `--redact-param NAME`), in the request target, the request a
//!   response names, HTTP/2's `:path`, and the URLs in Referer, Location,
//!   Content-Location and Refresh: the value becomes the URL-safe
//!   `REDACTED_lenN_H`. Userinfo (`user:pass@`) in those URLs, in Host and in
//!   `:authority` becomes the same marker.
//! * Fields derived from a header follow it: a redacted Host (or
//!   `:authority`) redacts the host metrics are labelled with, a redacted
//!   `grpc-message` the decoded gRPC message.
use crate::headers::mark;
use crate::record::{CompactString, HttpRecord};

/// Headers redacted unless `--no-redact`.
pub const DEFAULT_REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// Query parameters whose values are redacted unless `--no-redact` (or
/// `--no-redact-param NAME`): the usual places credentials travel in URLs
/// (OAuth, cloud-storage signed URLs, API keys).
pub const DEFAULT_REDACTED_PARAMS: &[&str] = &[
    "access_token",
    "id_token",
    "refresh_token",
    "token",
    "code",
    "state",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "awsaccesskeyid",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "session",
    "sessionid",
    "jwt",
    "auth",
];

/// Authorization schemes kept in front of the marker (and named by the
/// cleartext-credentials rule); any other first word may be the secret.
const AUTH_SCHEMES: &[&str] = &[
    "Basic",
    "Bearer",
    "Digest",
    "Negotiate",
    "NTLM",
    "AWS4-HMAC-SHA256",
    "Token",
    "HOBA",
    "Mutual",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
    "ApiKey",
];

/// The scheme of an Authorization value when it is a well-known one and
/// something follows it, else None (a lone word is the secret itself).
/// Works on a redacted value too (`Bearer [REDACTED ...]`).
pub fn auth_scheme(value: &str) -> Option<&'static str> {
    let first = value.trim_start().split([' ', '\t']).next().unwrap_or("");
    let has_rest = value.trim().len() > first.len();
    AUTH_SCHEMES
        .iter()
        .find(|s| has_rest && s.eq_ignore_ascii_case(first))
        .copied()
}

/// The length of the value a redacted header value stood for, read back
/// from its marker (`[REDACTED len=N ...]`, after a kept scheme); None when
/// `value` is not a marker.
pub fn original_len(value: &str) -> Option<usize> {
    const OPEN: &str = "[REDACTED len=";
    if !value.ends_with(']') {
        return None;
    }
    let at = value.find(OPEN)?;
    let digits = value.get(at + OPEN.len()..)?;
    let end = digits.find(' ')?;
    let n: usize = digits.get(..end)?.parse().ok()?;
    Some(at + n)
}

/// Replaces secret values with keyed-hash markers.
#[derive(Clone)]
pub struct Redactor {
    /// SipHash-2-4's 128-bit key: keyed BLAKE3 cost 65 ns for a 29-byte
    /// token here, SipHash 18 ns, and a record carries a secret or two
    /// (Authorization, Cookie) on every request of an API.
    key: [u8; 16],
    names: Vec<String>,
    /// Query parameter names whose values are redacted (lower case).
    params: Vec<String>,
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
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// What a header's value is, for redaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UrlKind {
    /// Not a URL.
    None,
    /// A URL or request target (Referer, Location, Content-Location, `:path`).
    Url,
    /// Refresh: `5; url=...`.
    Refresh,
    /// Host or `:authority`: only userinfo can be secret.
    Host,
}

/// Header names [`url_kind`] knows.
const URL_NAMES: [&str; 7] = [
    "host",
    ":authority",
    ":path",
    "refresh",
    "referer",
    "location",
    "content-location",
];

/// [`Redactor::maybe`]'s table for [`URL_NAMES`]: most names (Date, ETag,
/// Connection, ...) are settled by length and last byte.
const URL_ENDS: [u64; 64] = {
    let mut t = [0u64; 64];
    let mut i = 0;
    while i < URL_NAMES.len() {
        let n = URL_NAMES[i].as_bytes();
        t[n.len()] |= last_bit(n[n.len() - 1]);
        i += 1;
    }
    t
};

fn url_kind(name: &[u8]) -> UrlKind {
    if !ends_match(&URL_ENDS, name) {
        return UrlKind::None;
    }
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    match name.len() {
        4 if is("host") => UrlKind::Host,
        10 if name == b":authority" => UrlKind::Host,
        5 if name == b":path" => UrlKind::Url,
        7 if is("refresh") => UrlKind::Refresh,
        7 if is("referer") => UrlKind::Url,
        8 if is("location") => UrlKind::Url,
        16 if is("content-location") => UrlKind::Url,
        _ => UrlKind::None,
    }
}

/// Whether `b` has a byte that can start something to redact in a URL: a
/// query or fragment, or userinfo. One byte loop: targets and URL headers
/// are on every record.
fn url_special(b: &[u8]) -> bool {
    b.iter().any(|&c| matches!(c, b'?' | b'#' | b'@'))
}

impl Redactor {
    /// A redactor for `names` (matched case-insensitively) with a fresh
    /// random key. Empty `names` redacts no header; no query parameter
    /// is redacted until [`Redactor::with_params`].
    pub fn new<I, S>(names: I) -> Result<Self, getrandom::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key)?;
        Ok(Self::with_key(key, names))
    }

    /// A redactor with a given key (tests).
    pub fn with_key<I, S>(key: [u8; 16], names: I) -> Self
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
            params: Vec::new(),
            ends,
            never_indexed: false,
        }
    }

    /// Also redact fields the sender marked never-indexed (HTTP/2).
    pub fn with_never_indexed(mut self, on: bool) -> Self {
        self.never_indexed = on;
        self
    }

    /// Redact the values of these query parameters (case-insensitive).
    pub fn with_params<I, S>(mut self, params: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.params = params
            .into_iter()
            .map(|n| n.as_ref().trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        self.params.sort();
        self.params.dedup();
        self
    }

    /// Whether never-indexed fields are redacted.
    pub fn redacts_never_indexed(&self) -> bool {
        self.never_indexed
    }

    /// The default lists plus `extra` headers; with `no_defaults`
    /// (`--no-redact`), only the headers named in `extra` (and no query
    /// parameter: see [`Redactor::from_params`]).
    pub fn from_options(no_defaults: bool, extra: &[String]) -> Result<Self, getrandom::Error> {
        Self::from_params(no_defaults, extra, &[], &[])
    }

    /// [`Redactor::from_options`], and the query parameters: the default
    /// list (unless `no_defaults`) plus `add` (`--redact-param`) minus
    /// `remove` (`--no-redact-param`).
    pub fn from_params(
        no_defaults: bool,
        extra: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<Self, getrandom::Error> {
        let defaults = if no_defaults {
            &[][..]
        } else {
            DEFAULT_REDACTED_PARAMS
        };
        let params: Vec<String> = defaults
            .iter()
            .map(|s| s.to_string())
            .chain(add.iter().cloned())
            .filter(|p| {
                !remove
                    .iter()
                    .any(|r| r.trim().eq_ignore_ascii_case(p.trim()))
            })
            .collect();
        let headers = if no_defaults {
            &[][..]
        } else {
            DEFAULT_REDACTED
        };
        Ok(Redactor::new(
            headers
                .iter()
                .map(|s| s.to_string())
                .chain(extra.iter().cloned()),
        )?
        .with_never_indexed(!no_defaults)
        .with_params(params))
    }

    /// Header names redacted (lower case).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Query parameter names redacted (lower case).
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// Whether `name` is redacted.
    pub fn covers(&self, name: &str) -> bool {
        self.covers_bytes(name.as_bytes())
    }

    fn covers_bytes(&self, name: &[u8]) -> bool {
        self.maybe(name)
            && self
                .names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether query parameter `name` (as sent: percent-encoded) is redacted.
    fn covers_param(&self, name: &str) -> bool {
        if self.params.is_empty() {
            return false;
        }
        if !name.contains('%') {
            return self.params.iter().any(|p| p.eq_ignore_ascii_case(name));
        }
        let decoded = crate::text::percent_decode(name.as_bytes());
        self.params
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(&decoded))
    }

    /// `value`'s keyed hash (64 bits), in 16 hex digits.
    fn hash_hex(&self, value: &str, out: &mut String) {
        use std::hash::Hasher;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut h = siphasher::sip::SipHasher24::new_with_key(&self.key);
        h.write(value.as_bytes());
        let h = h.finish();
        for shift in (0..16).rev() {
            out.push(char::from(HEX[((h >> (4 * shift)) & 15) as usize]));
        }
    }

    /// The marker that stands for `value`:
    /// `[REDACTED len=N hash=<first 8 bytes of the keyed hash, hex>]`.
    pub fn marker(&self, value: &str) -> String {
        let mut s = String::with_capacity(48);
        self.push_marker(value, &mut s);
        s
    }

    /// Append [`Redactor::marker`] of `value` to `out`.
    fn push_marker(&self, value: &str, out: &mut String) {
        // Built by hand: format! with sixteen `{:02x}` cost more than the
        // hash itself (callgrind: ~4,000 instructions per marker).
        out.push_str("[REDACTED len=");
        out.push_str(itoa::Buffer::new().format(value.len()));
        out.push_str(" hash=");
        self.hash_hex(value, out);
        out.push(']');
    }

    /// The URL-safe marker for a query value or userinfo:
    /// `REDACTED_len<N>_<hash>` (the same hash as [`Redactor::marker`]).
    pub fn url_marker(&self, value: &str) -> String {
        let mut s = String::with_capacity(40);
        s.push_str("REDACTED_len");
        s.push_str(itoa::Buffer::new().format(value.len()));
        s.push('_');
        self.hash_hex(value, &mut s);
        s
    }

    /// Append the marker for a secret header's value to `out`:
    /// Authorization and Proxy-Authorization keep a well-known scheme (and
    /// the whitespace after it) in front, with N and H of the credentials.
    fn push_header_marker(&self, name: &str, value: &str, out: &mut String) {
        let auth = name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("proxy-authorization");
        if auth && auth_scheme(value).is_some() {
            let lead = value.len() - value.trim_start().len();
            let after = value
                .get(lead..)
                .and_then(|v| v.find([' ', '\t']).map(|i| lead + i))
                .unwrap_or(value.len());
            let rest = value.get(after..).unwrap_or_default();
            let creds_at = after + (rest.len() - rest.trim_start().len());
            if let (Some(prefix), Some(creds)) = (value.get(..creds_at), value.get(creds_at..)) {
                out.push_str(prefix);
                self.push_marker(creds, out);
                return;
            }
        }
        self.push_marker(value, out);
    }

    /// `url` with the values of secret query (and fragment) parameters and
    /// any userinfo replaced by URL-safe markers; None when nothing was.
    /// Takes absolute URLs, `//authority` references and request targets
    /// alike.
    pub fn url(&self, url: &str) -> Option<String> {
        let mut out: Option<String> = None;
        // Userinfo: between `//` (at the start or after `scheme:`) and the
        // last `@` of the authority.
        let auth_start = if url.starts_with("//") {
            Some(2)
        } else {
            url.find("://")
                .filter(|&i| {
                    i > 0
                        && url
                            .bytes()
                            .take(i)
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                })
                .map(|i| i + 3)
        };
        let mut done = 0;
        if let Some(start) = auth_start {
            let rest = url.get(start..).unwrap_or_default();
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            if let Some(at) = rest.get(..end).and_then(|a| a.rfind('@')) {
                let info = rest.get(..at).unwrap_or_default();
                let o = out.get_or_insert_with(|| String::with_capacity(url.len() + 32));
                o.push_str(url.get(..start).unwrap_or_default());
                o.push_str(&self.url_marker(info));
                done = start + at;
            }
        }
        // Query and fragment parameters (OAuth's implicit flow puts tokens
        // in the fragment).
        if !self.params.is_empty() {
            if let Some(q) = url.get(done..).and_then(|r| r.find(['?', '#'])) {
                let qstart = done + q + 1;
                let mut pos = qstart;
                while pos <= url.len() {
                    let seg_end = url
                        .get(pos..)
                        .and_then(|r| r.find(['&', ';', '#']))
                        .map_or(url.len(), |i| pos + i);
                    let seg = url.get(pos..seg_end).unwrap_or_default();
                    if let Some(eq) = seg.find('=') {
                        let (name, value) = (
                            seg.get(..eq).unwrap_or_default(),
                            seg.get(eq + 1..).unwrap_or_default(),
                        );
                        if !value.is_empty() && self.covers_param(name) {
                            let o =
                                out.get_or_insert_with(|| String::with_capacity(url.len() + 32));
                            o.push_str(url.get(done..pos + eq + 1).unwrap_or_default());
                            o.push_str(&self.url_marker(value));
                            done = seg_end;
                        }
                    }
                    if seg_end >= url.len() {
                        break;
                    }
                    // Past the separator (a `#` starts the fragment's list).
                    pos = seg_end + 1;
                }
            }
        }
        let mut o = out?;
        o.push_str(url.get(done..).unwrap_or_default());
        Some(o)
    }

    /// A Host or `:authority` value with its userinfo replaced; None when
    /// it has none.
    fn host(&self, host: &str) -> Option<String> {
        // A byte loop: hosts are short, and str::rfind's setup cost more
        // than the search (callgrind).
        let at = host.bytes().rposition(|b| b == b'@')?;
        let mut o = self.url_marker(host.get(..at).unwrap_or_default());
        o.push_str(host.get(at..).unwrap_or_default());
        Some(o)
    }

    /// A request target with its secrets replaced; None when it has none
    /// (most targets: settled by one byte scan).
    fn target(&self, t: &str) -> Option<String> {
        url_special(t.as_bytes()).then(|| self.url(t)).flatten()
    }

    /// A host field (the request's Host, kept for metrics, or
    /// `:authority`): all of it when its header is redacted (`whole`), else
    /// its userinfo only. Returns how many values were replaced (0 or 1).
    fn host_field(&self, slot: &mut Option<CompactString>, whole: bool) -> usize {
        let Some(h) = slot.as_deref() else {
            return 0;
        };
        let new = if whole {
            Some(self.marker(h))
        } else {
            self.host(h)
        };
        match new {
            Some(new) => {
                *slot = Some(new.into());
                1
            }
            None => 0,
        }
    }

    /// Refresh's `url=` part redacted.
    fn refresh(&self, value: &str) -> Option<String> {
        let lower = value.to_ascii_lowercase();
        let i = lower.find("url=")? + 4;
        let url = value.get(i..)?;
        let (q, inner) = match url.as_bytes().first() {
            Some(&c @ (b'"' | b'\'')) => (Some(c), url.get(1..)?),
            _ => (None, url),
        };
        let inner = match q {
            Some(c) => inner.get(..inner.find(char::from(c)).unwrap_or(inner.len()))?,
            None => inner,
        };
        let red = self.url(inner)?;
        let start = i + usize::from(q.is_some());
        let mut o = String::with_capacity(value.len() + 32);
        o.push_str(value.get(..start)?);
        o.push_str(&red);
        o.push_str(value.get(start + inner.len()..)?);
        Some(o)
    }

    /// Whether a header might need a change (cheap: most records have none).
    fn header_needs(&self, name: &[u8], value: &[u8], m: u8) -> bool {
        (self.never_indexed && m & mark::NEVER_INDEXED != 0 && m & mark::VALUE_UNKNOWN == 0)
            || self.covers_bytes(name)
            || match url_kind(name) {
                UrlKind::None => false,
                UrlKind::Host => value.contains(&b'@'),
                UrlKind::Url | UrlKind::Refresh => url_special(value),
            }
    }

    /// The new value of one header line, if it changes, written to `out`
    /// (which the caller cleared): true when it was.
    fn header(&self, name: &str, value: &str, m: u8, out: &mut String) -> bool {
        if m & mark::VALUE_UNKNOWN != 0 {
            // Unknown stays unknown (HTTP/2 joined mid-stream).
            return false;
        }
        if (self.never_indexed && m & mark::NEVER_INDEXED != 0) || self.covers(name) {
            self.push_header_marker(name, value, out);
            return true;
        }
        let new = match url_kind(name.as_bytes()) {
            UrlKind::None => None,
            UrlKind::Host => self.host(value),
            UrlKind::Url => self.url(value),
            UrlKind::Refresh => self.refresh(value),
        };
        new.map(|new| out.push_str(&new)).is_some()
    }

    /// Redact `rec` in place: secret headers, secret query parameters and
    /// userinfo wherever a URL or host is written, and the fields derived
    /// from redacted headers. Returns how many values were replaced.
    pub fn apply(&self, rec: &mut HttpRecord) -> usize {
        let mut n = 0;
        // The usual record has no secret: one pass over the bytes that
        // changes nothing (header_needs is the cheap test; header writes
        // the new value), and the lines before the first secret are not
        // looked at again.
        let marked = rec.headers.any_marks();
        let first = rec
            .headers
            .iter_bytes()
            .enumerate()
            .position(|(i, (name, value))| {
                let m = if marked { rec.headers.marks(i) } else { 0 };
                self.header_needs(name, value, m)
            });
        if let Some(first) = first {
            n += rec
                .headers
                .replace_values_marked(first, |name, value, m, new| {
                    self.header_needs(name.as_bytes(), value.as_bytes(), m)
                        && self.header(name, value, m, new)
                });
        }
        if let Some(new) = rec.target.as_deref().and_then(|t| self.target(t)) {
            rec.target = Some(new.into());
            n += 1;
        }
        let host_secret = self.covers("host");
        if let Some(q) = rec.request.as_mut() {
            if let Some(new) = self.target(&q.target) {
                q.target = new.into();
                n += 1;
            }
            n += self.host_field(&mut q.host, host_secret);
        }
        if let Some(h2) = rec.h2.as_deref_mut() {
            let whole = host_secret || self.covers(":authority");
            n += self.host_field(&mut h2.authority, whole);
            if let Some(msg) = h2.grpc_message.as_deref() {
                if self.covers("grpc-message") {
                    h2.grpc_message = Some(self.marker(msg));
                    n += 1;
                }
            }
        }
        n
    }

    /// False when `name` is certainly not redacted (see `ends`).
    fn maybe(&self, name: &[u8]) -> bool {
        ends_match(&self.ends, name)
    }
}

/// A name's last byte as a bit: letters of either case alike (OR 0x20),
/// other bytes may share a bit with a letter (only a false "maybe").
const fn last_bit(b: u8) -> u64 {
    1u64 << ((b | 0x20) & 63)
}

/// False when no name of the table `ends` (see [`Redactor`]'s) can be `name`.
fn ends_match(ends: &[u64; 64], name: &[u8]) -> bool {
    let (Some(e), Some(&last)) = (ends.get(name.len().min(63)), name.last()) else {
        return false;
    };
    e & last_bit(last) != 0
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
                value.contains("[REDACTED len=") && value.ends_with(']'),
                "{name} not redacted: {value}"
            );
            assert!(!value.contains("secret"));
        }
        assert_eq!(rec.headers.get(6), Some(("Host", "example")));
        // A well-known scheme stays in front; N and H are the credentials'.
        let auth = rec.headers.get(0).unwrap().1;
        assert!(auth.starts_with("Bearer [REDACTED len=6 hash="), "{auth}");
        assert_eq!(original_len(auth), Some("Bearer secret".len()));
        assert!(rec
            .headers
            .get(5)
            .unwrap()
            .1
            .starts_with("Basic [REDACTED len=1 hash="));
        assert!(rec
            .headers
            .get(1)
            .unwrap()
            .1
            .starts_with("[REDACTED len=3 "));
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
    fn marker_is_length_and_the_siphash_in_hex() {
        // SipHash-2-4's reference vector (Aumasson and Bernstein, appendix
        // A): key 00..0f, message 00..0e, output a129ca6149be45e5.
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let r = Redactor::with_key(key, ["authorization"]);
        let value: String = (0u8..15).map(char::from).collect();
        assert_eq!(r.marker(&value), "[REDACTED len=15 hash=a129ca6149be45e5]");
        assert_eq!(r.url_marker(&value), "REDACTED_len15_a129ca6149be45e5");
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

    fn defaults() -> Redactor {
        Redactor::from_params(false, &[], &[], &[]).unwrap()
    }

    /// `s` with every URL-safe marker replaced by `R`.
    fn shape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("REDACTED_len") {
            out.push_str(&rest[..i]);
            out.push('R');
            let tail = &rest[i + "REDACTED_len".len()..];
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            rest = &tail[digits + 1 + 16..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn secret_query_parameters_in_targets() {
        let r = defaults();
        // Secrets with letters outside hex, so no keyed hash can contain them.
        let t = "/api?access_token=abq123&page=2&SIG=zz&X-Amz-Signature=fqq&empty=&code=";
        let red = r.url(t).unwrap();
        assert_eq!(
            shape(&red),
            "/api?access_token=R&page=2&SIG=R&X-Amz-Signature=R&empty=&code="
        );
        for secret in ["abq123", "zz", "fqq"] {
            assert!(!red.contains(secret), "{red}");
        }
        // URL-safe: nothing that needs escaping in a query.
        assert!(red
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/?&=_-".contains(&b)));
        // The same value gives the same marker, and says its length.
        let again = r.url("/x?token=abq123").unwrap();
        assert!(red.contains(&again["/x?token=".len()..]));
        assert!(again.ends_with(&r.url_marker("abq123")));
        assert!(r.url_marker("abq123").starts_with("REDACTED_len6_"));
        // Percent-encoded names, `;` separators and fragments.
        assert_eq!(
            shape(&r.url("/p?access%5Ftoken=x;key=y#id_token=z&v=1").unwrap()),
            "/p?access%5Ftoken=R;key=R#id_token=R&v=1"
        );
        // Nothing secret: nothing changes, no allocation.
        assert_eq!(r.url("/a?page=1&q=token"), None);
        assert_eq!(r.url("/plain"), None);
        // No parameter list (--no-redact): only userinfo.
        let off = Redactor::from_params(true, &[], &[], &[]).unwrap();
        assert_eq!(off.url("/a?token=1"), None);
    }

    #[test]
    fn param_list_can_grow_and_shrink() {
        let r = Redactor::from_params(false, &[], &["Ticket".to_string()], &["CODE".to_string()])
            .unwrap();
        assert_eq!(
            shape(&r.url("/?ticket=1&code=2").unwrap()),
            "/?ticket=R&code=2"
        );
        assert!(!r.params().contains(&"code".to_string()));
        // --no-redact --redact-param X: only X.
        let only = Redactor::from_params(true, &[], &["ticket".to_string()], &[]).unwrap();
        assert_eq!(
            shape(&only.url("/?ticket=1&token=2").unwrap()),
            "/?ticket=R&token=2"
        );
    }

    #[test]
    fn userinfo_in_urls_and_hosts() {
        let r = defaults();
        assert_eq!(
            shape(&r.url("https://user:pa55@svc.example/x?ok=1").unwrap()),
            "https://R@svc.example/x?ok=1"
        );
        assert_eq!(shape(&r.url("//u:p@h/").unwrap()), "//R@h/");
        // An `@` in the path is not userinfo.
        assert_eq!(r.url("https://h/a@b"), None);
        assert_eq!(shape(&r.host("user:pass@svc").unwrap()), "R@svc");
        assert_eq!(r.host("svc:8080"), None);
    }

    #[test]
    fn urls_in_headers_targets_and_derived_fields() {
        let r = defaults();
        let mut rec = record(&[
            ("Host", "user:pass@svc"),
            ("Referer", "https://app/?token=reftok"),
            ("Location", "https://app/cb?code=oauthcode&state=st"),
            ("Content-Location", "/c?key=ckey"),
            ("Refresh", "5; url=\"/r?sig=rsig\""),
            ("X-Other", "https://app/?token=kept"),
        ]);
        rec.target = Some("/api?access_token=tgt&x=1".into());
        rec.request = Some(crate::record::RequestRef {
            method: "GET".into(),
            target: "/api?access_token=tgt".into(),
            host: Some("user:pass@svc".into()),
        });
        let n = r.apply(&mut rec);
        assert_eq!(n, 8);
        let json = format!("{:?}", rec);
        for secret in ["pass", "reftok", "oauthcode", "ckey", "rsig", "tgt"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert!(json.contains("kept"), "a header that is not a URL header");
        assert_eq!(shape(rec.headers.get(0).unwrap().1), "R@svc");
        assert_eq!(shape(rec.headers.get(4).unwrap().1), "5; url=\"/r?sig=R\"");
        // --redact host: the host metrics are labelled with follows it.
        let r = Redactor::from_params(false, &["host".to_string()], &[], &[]).unwrap();
        let mut rec = record(&[("Host", "internal.example")]);
        rec.request = Some(crate::record::RequestRef {
            method: "GET".into(),
            target: "/".into(),
            host: Some("internal.example".into()),
        });
        rec.h2 = Some(Box::new(crate::record::H2Info {
            authority: Some("internal.example".into()),
            grpc_message: Some("m".into()),
            ..Default::default()
        }));
        assert_eq!(r.apply(&mut rec), 3);
        assert!(!format!("{rec:?}").contains("internal.example"));
        // --redact grpc-message: the decoded message too.
        let r = Redactor::from_params(false, &["grpc-message".to_string()], &[], &[]).unwrap();
        let mut rec = record(&[("grpc-message", "user%20secret")]);
        rec.h2 = Some(Box::new(crate::record::H2Info {
            grpc_message: Some("user secret".into()),
            ..Default::default()
        }));
        assert_eq!(r.apply(&mut rec), 2);
        assert!(!format!("{rec:?}").contains("secret"));
    }

    #[test]
    fn original_len_reads_markers_only() {
        let r = defaults();
        assert_eq!(original_len(&r.marker("abcd")), Some(4));
        assert_eq!(original_len("[REDACTED len=x hash=1]"), None);
        assert_eq!(original_len("plain]"), None);
        assert_eq!(
            auth_scheme("Bearer [REDACTED len=3 hash=00]"),
            Some("Bearer")
        );
        assert_eq!(auth_scheme("Bearer"), None, "a lone word is the secret");
    }

    #[test]
    fn debug_never_shows_key() {
        let r = Redactor::with_key([7u8; 16], ["cookie"]);
        assert!(!format!("{r:?}").contains("7, 7"));
    }
}

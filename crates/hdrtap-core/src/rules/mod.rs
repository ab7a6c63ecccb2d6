//! Security signals: rules over parsed HTTP records, each a pure function of
//! one [`HttpRecord`] (and the anomalies its parser saw), emitting
//! [`Alert`]s — JSON `{"kind":"alert", ...}` records that name the
//! offending record by its `id` (docs/SECURITY-RULES.md lists the rules).
//!
//! Rules run on the record *after* redaction ([`crate::redact`]), so an
//! alert can only quote what the record shows. The smuggling rules on
//! Content-Length and Transfer-Encoding read [`HttpRecord::framing`]: what
//! the parser itself read from every line, kept or redacted or not. What they need of a
//! redacted value the marker keeps: its length (`[REDACTED len=N ...]`, for
//! the size rules) and an Authorization scheme from a fixed list (kept in
//! front of the marker). A redacted User-Agent cannot name a scanner, and
//! a percent-encoded CR or LF inside a redacted value is not seen: what the
//! user asked to hide is hidden from the rules too. Details quote header
//! names, sizes, schemes, and (truncated) targets and User-Agents.
//!
//! ```
//! use hdrtap_core::rules::{Rules, RulesConfig};
//! # use hdrtap_core::record::*;
//! # let ep = Endpoint { ip: "127.0.0.1".parse().unwrap(), port: 80 };
//! # let mut rec = HttpRecord { kind: HttpKind::Request, id: 7, ts_unix_ns: 0, conn_id: 1, sock_cookie: 0,
//! #   process: Process { pid: 1, tid: 1, comm: "nginx".into(), cgroup_id: 0, workload: None },
//! #   local: ep, remote: ep, role: Role::Server, version: "HTTP/1.1",
//! #   method: Some("GET".into()), target: Some("/".into()), status: None, reason: None,
//! #   latency_ns: None, request: None, headers: Headers::default(), header_bytes: 0,
//! #   truncated: false, tls: false, tls_library: None, flags: vec![], anomalies: 0,
//! #   framing: Framing::default(), h2: None,
//! #   tcp_seq: None, packets: None, interface: None };
//! rec.target = Some("/static/..%2f..%2fetc/passwd".into());
//! let mut rules = Rules::new(RulesConfig::default());
//! let mut alerts = Vec::new();
//! rules.check(&rec, &mut alerts);
//! assert_eq!(alerts[0].rule, "path_traversal");
//! assert_eq!(alerts[0].record_id, 7);
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::collections::HashMap;

use crate::record::{anomaly, flag, Endpoint, H2Info, HttpKind, HttpRecord, Role};

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    /// `low`, `medium` or `high` (JSON `severity`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One rule's identity, for documentation, configuration and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable id: JSON `rule`, the `rule` label of `hdrtap_alerts_total`,
    /// and the name used in the configuration.
    pub id: &'static str,
    pub severity: Severity,
    /// Which records it looks at.
    pub applies_to: &'static str,
    /// One line: what fires it.
    pub summary: &'static str,
}

/// Declares every rule once: its constant in [`rule`] (the id), its index
/// (the order rules are checked in, for the on/off table) and its
/// [`RuleInfo`] in [`RULES`].
macro_rules! declare_rules {
    ($($name:ident = $id:literal, $sev:ident, $applies:literal, $summary:literal;)*) => {
        /// Rule ids.
        pub mod rule {
            $(pub const $name: &str = $id;)*
        }

        /// Indices into [`RULES`] (the order they are checked in).
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        enum Ix {
            $($name,)*
        }

        mod ix {
            $(pub const $name: usize = super::Ix::$name as usize;)*
        }

        /// Every rule, in the order they are checked.
        pub const RULES: &[RuleInfo] = &[
            $(RuleInfo {
                id: $id,
                severity: Severity::$sev,
                applies_to: $applies,
                summary: $summary,
            },)*
        ];
    };
}

declare_rules! {
    SCANNER_USER_AGENT = "scanner_user_agent", Medium, "requests",
        "User-Agent names a scanner or attack tool (sqlmap, nikto, nmap, masscan, zgrab, nuclei, ...)";
    OVERSIZED_HEADER_VALUE = "oversized_header_value", Medium, "requests and responses",
        "a header value longer than max_header_value_bytes (default 8192), or a header block cut at --max-header-bytes";
    TOO_MANY_HEADERS = "too_many_headers", Medium, "requests and responses",
        "more header lines than max_header_count (default 100)";
    SMUGGLING_CL_TE = "smuggling_cl_te", High, "requests and responses",
        "both Content-Length and Transfer-Encoding";
    SMUGGLING_CL_CONFLICT = "smuggling_cl_conflict", High, "requests and responses",
        "several Content-Length values that differ, or one that is not a number";
    SMUGGLING_TE_INVALID = "smuggling_te_invalid", High, "requests",
        "Transfer-Encoding that does not end in a clean `chunked` (e.g. `xchunked`, `chunked, identity`), repeated, or sent with HTTP/1.0";
    SMUGGLING_OBS_FOLD = "smuggling_obs_fold", Medium, "requests",
        "a header line folded onto the next line (obs-fold: a line starting with a space or tab)";
    SMUGGLING_INVALID_CHARS = "smuggling_invalid_chars", Medium, "requests and responses",
        "a header line with an invalid name (characters outside the token set, whitespace before the colon, no colon)";
    HEADER_CTL_CHARS = "header_ctl_chars", High, "requests and responses",
        "a raw CR, LF, NUL or other control character inside a header value";
    CRLF_INJECTION = "crlf_injection", High, "requests",
        "percent-encoded CR, LF or NUL (%0d, %0a, %00) in the request target or a header value";
    PATH_TRAVERSAL = "path_traversal", High, "requests",
        "a `..` path segment in the target, plain or encoded (%2e%2e, %252e, ..%2f, %c0%ae, backslashes)";
    CLEARTEXT_CREDENTIALS = "cleartext_credentials", Medium, "requests",
        "Authorization or Proxy-Authorization sent over plaintext HTTP (not TLS)";
    HTTP2_RAPID_RESET = "http2_rapid_reset", High, "HTTP/2 resets and the records that carry them",
        "the client opened and reset 100 or more streams within one second (CVE-2023-44487, Rapid Reset)";
    HTTP2_CONTINUATION_FLOOD = "http2_continuation_flood", High, "HTTP/2 requests and responses",
        "a header block (HEADERS + CONTINUATION) that grew past 256 KiB without END_HEADERS (the 2024 CONTINUATION flood family)";
    HTTP2_HPACK_BOMB = "http2_hpack_bomb", High, "HTTP/2 requests and responses",
        "a header list that decodes to hpack_bomb_min_bytes (64 KiB) or more and hpack_bomb_ratio (32) times its compressed size or more";
}

/// The rule with id `id`.
pub fn info(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

/// Scanner and attack-tool names looked for (lower case) in User-Agent.
pub const SCANNER_AGENTS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "wpscan",
    "skipfish",
    "arachni",
    "commix",
    "whatweb",
    "netsparker",
    "havij",
    "zmeu",
    "jaeles",
    "xsser",
    "fimap",
    "interactsh",
];

/// Thresholds and switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    /// Rule ids turned off.
    pub disabled: Vec<String>,
    /// `oversized_header_value` fires above this many bytes.
    pub max_header_value_bytes: usize,
    /// `too_many_headers` fires above this many header lines.
    pub max_header_count: usize,
    /// More User-Agent substrings for `scanner_user_agent` (matched
    /// case-insensitively).
    pub extra_scanner_agents: Vec<String>,
    /// `cleartext_credentials` also fires on loopback connections (on by
    /// default: plaintext is plaintext; turn off when a local TLS
    /// terminator forwards to a backend over 127.0.0.1).
    pub cleartext_on_loopback: bool,
    /// `http2_hpack_bomb` fires on header lists decoding to at least this
    /// many bytes (HPACK's count: name + value + 32 per field)...
    pub hpack_bomb_min_bytes: usize,
    /// ... and at least this many times their compressed size.
    pub hpack_bomb_ratio: usize,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            disabled: Vec::new(),
            max_header_value_bytes: 8192,
            max_header_count: 100,
            extra_scanner_agents: Vec::new(),
            cleartext_on_loopback: true,
            hpack_bomb_min_bytes: 64 * 1024,
            hpack_bomb_ratio: 32,
        }
    }
}

/// One security signal about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The alert's own per-run record id (0 until assigned).
    pub id: u64,
    pub rule: &'static str,
    pub severity: Severity,
    /// `id` of the record that fired the rule.
    pub record_id: u64,
    pub record_kind: HttpKind,
    /// The record's timestamp.
    pub ts_unix_ns: u64,
    pub conn_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub role: Role,
    pub tls: bool,
    /// Requests: method and target (the target cut at 256 bytes).
    pub method: Option<String>,
    pub target: Option<String>,
    /// What was seen. Never a secret value.
    pub detail: String,
}

/// The rules, ready to run (a small cache of User-Agent verdicts inside).
#[derive(Debug)]
pub struct Rules {
    cfg: RulesConfig,
    on: [bool; RULES.len()],
    agents: Vec<String>,
    /// User-Agent → matched scanner name (index into `agents`); real
    /// traffic repeats a handful of agents, so each is searched once.
    ua_cache: HashMap<Box<str>, Option<usize>>,
    /// The last User-Agent looked up and its verdict (most often the next
    /// one is the same: no hashing then).
    ua_last: (String, Option<usize>),
}

/// Cached User-Agent verdicts at most (the cache is emptied when full).
const UA_CACHE: usize = 1024;
/// Longest target or User-Agent quoted in an alert.
const QUOTE_MAX: usize = 256;

impl Rules {
    pub fn new(cfg: RulesConfig) -> Self {
        let mut on = [true; RULES.len()];
        for (slot, r) in on.iter_mut().zip(RULES) {
            *slot = !cfg.disabled.iter().any(|d| d == r.id);
        }
        let agents = SCANNER_AGENTS
            .iter()
            .map(|s| s.to_string())
            .chain(
                cfg.extra_scanner_agents
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .filter(|s| !s.is_empty()),
            )
            .collect();
        Rules {
            cfg,
            on,
            agents,
            ua_cache: HashMap::new(),
            ua_last: (String::new(), None),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RulesConfig {
        &self.cfg
    }

    /// Ids of the rules that are on.
    pub fn enabled(&self) -> impl Iterator<Item = &'static str> + '_ {
        RULES
            .iter()
            .zip(self.on)
            .filter(|(_, on)| *on)
            .map(|(r, _)| r.id)
    }

    fn is_on(&self, i: usize) -> bool {
        self.on.get(i).copied().unwrap_or(false)
    }

    /// Run every rule on `rec` (after redaction), appending alerts.
    pub fn check(&mut self, rec: &HttpRecord, out: &mut Vec<Alert>) {
        if let Some(h2) = rec.h2.as_deref() {
            self.check_h2(rec, h2, &mut |id, detail| {
                if let Some(info) = info(id) {
                    out.push(alert(rec, info, detail));
                }
            });
            if matches!(rec.kind, HttpKind::Trailers | HttpKind::Reset) {
                return;
            }
        }
        let request = rec.kind == HttpKind::Request;
        let mut seen = Seen::default();
        for (name, value) in rec.headers.iter_bytes() {
            seen.header(name, value, self.cfg.max_header_value_bytes, request);
        }
        let mut fire = |id: &'static str, detail: String| {
            if let Some(info) = info(id) {
                out.push(alert(rec, info, detail));
            }
        };

        if request && self.is_on(ix::SCANNER_USER_AGENT) {
            if let Some(ua) = seen.user_agent {
                if let Some(tool) = self.scanner(ua) {
                    fire(
                        rule::SCANNER_USER_AGENT,
                        format!("User-Agent names {tool}: {}", quote(ua)),
                    );
                }
            }
        }
        if self.is_on(ix::OVERSIZED_HEADER_VALUE) {
            if let Some((name, len)) = seen.oversized {
                fire(
                    rule::OVERSIZED_HEADER_VALUE,
                    format!(
                        "header {} has a {len}-byte value (limit {})",
                        quote(name),
                        self.cfg.max_header_value_bytes
                    ),
                );
            } else if rec.truncated && rec.headers.is_empty() && rec.h2.is_none() {
                // HTTP/1: no line break before the limit (a long-URL attack).
                fire(
                    rule::OVERSIZED_HEADER_VALUE,
                    format!(
                        "start line longer than the capture limit (header block of {} bytes or more)",
                        rec.header_bytes
                    ),
                );
            } else if rec.truncated {
                fire(
                    rule::OVERSIZED_HEADER_VALUE,
                    format!(
                        "header block of {} bytes or more, cut at the capture limit",
                        rec.header_bytes
                    ),
                );
            }
        }
        if self.is_on(ix::TOO_MANY_HEADERS) && rec.headers.len() > self.cfg.max_header_count {
            fire(
                rule::TOO_MANY_HEADERS,
                format!(
                    "{} header lines{} (limit {})",
                    rec.headers.len(),
                    if rec.truncated { " or more" } else { "" },
                    self.cfg.max_header_count
                ),
            );
        }
        // Framing as the parser read it: every line, before redaction.
        let fr = &rec.framing;
        if self.is_on(ix::SMUGGLING_CL_TE) && fr.content_lengths > 0 && fr.transfer_encodings > 0 {
            fire(
                rule::SMUGGLING_CL_TE,
                "both Content-Length and Transfer-Encoding".to_string(),
            );
        }
        if self.is_on(ix::SMUGGLING_CL_CONFLICT) && (fr.cl_conflict || fr.cl_invalid) {
            let what = if fr.cl_conflict {
                format!("{} Content-Length values that differ", fr.content_lengths)
            } else {
                "a Content-Length that is not a number".to_string()
            };
            fire(rule::SMUGGLING_CL_CONFLICT, what);
        }
        if request && self.is_on(ix::SMUGGLING_TE_INVALID) {
            let why = if fr.transfer_encodings > 1 {
                Some(format!(
                    "{} Transfer-Encoding headers",
                    fr.transfer_encodings
                ))
            } else if fr.te_unclean {
                Some(match rec.header("transfer-encoding") {
                    Some(v) => format!("Transfer-Encoding {} does not end in chunked", quote(v)),
                    None => "a Transfer-Encoding that does not end in chunked".to_string(),
                })
            } else if fr.transfer_encodings > 0 && rec.version == "HTTP/1.0" {
                Some("Transfer-Encoding in an HTTP/1.0 request".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                fire(rule::SMUGGLING_TE_INVALID, why);
            }
        }
        if request && rec.anomalies & anomaly::OBS_FOLD != 0 && self.is_on(ix::SMUGGLING_OBS_FOLD) {
            fire(
                rule::SMUGGLING_OBS_FOLD,
                "a header line continued on the next line (obs-fold)".to_string(),
            );
        }
        if rec.anomalies & anomaly::BAD_HEADER_NAME != 0 && self.is_on(ix::SMUGGLING_INVALID_CHARS)
        {
            fire(
                rule::SMUGGLING_INVALID_CHARS,
                "a header line with an invalid name (bad characters, whitespace before the colon, or no colon)".to_string(),
            );
        }
        if rec.anomalies & anomaly::CTL_IN_VALUE != 0 && self.is_on(ix::HEADER_CTL_CHARS) {
            fire(
                rule::HEADER_CTL_CHARS,
                "CR, LF, NUL or another control character inside a header value".to_string(),
            );
        }
        // One pass over the target says which target checks can matter:
        // most targets have neither `%` nor `\\`, many no `.` at all.
        let target = rec.target.as_deref().unwrap_or("");
        let tb = if request {
            target_bytes(target.as_bytes())
        } else {
            0
        };
        if request && self.is_on(ix::CRLF_INJECTION) {
            let in_target = tb & T_PERCENT != 0 && has_encoded_ctl(target);
            if in_target || seen.encoded_ctl.is_some() {
                let place = match (in_target, seen.encoded_ctl) {
                    (true, _) => "the request target".to_string(),
                    (false, Some(n)) => format!("header {}", quote(n)),
                    (false, None) => "a header".to_string(),
                };
                fire(
                    rule::CRLF_INJECTION,
                    format!("percent-encoded CR, LF or NUL in {place}"),
                );
            }
        }
        if request && tb & (T_DOT | T_PERCENT | T_BACKSLASH) != 0 && self.is_on(ix::PATH_TRAVERSAL)
        {
            if let Some(target) = rec.target.as_deref() {
                if let Some(encoded) = traversal(target, tb) {
                    fire(
                        rule::PATH_TRAVERSAL,
                        format!(
                            "{}`..` segment in the target {}",
                            if encoded { "encoded " } else { "" },
                            quote(target)
                        ),
                    );
                }
            }
        }
        if request && !rec.tls && self.is_on(ix::CLEARTEXT_CREDENTIALS) {
            let loopback = rec.local.ip.is_loopback() && rec.remote.ip.is_loopback();
            if let Some((name, value)) = seen.credentials {
                if self.cfg.cleartext_on_loopback || !loopback {
                    fire(
                        rule::CLEARTEXT_CREDENTIALS,
                        format!(
                            "{name} ({} scheme, {} bytes) sent over plaintext HTTP",
                            auth_scheme(value),
                            crate::redact::original_len(value).unwrap_or(value.len())
                        ),
                    );
                }
            }
        }
    }

    /// The HTTP/2 rules: signals the frames gave (the tracker flags them).
    fn check_h2(&self, rec: &HttpRecord, h2: &H2Info, fire: &mut impl FnMut(&'static str, String)) {
        if rec.flags.contains(&flag::RAPID_RESET) && self.is_on(ix::HTTP2_RAPID_RESET) {
            fire(
                rule::HTTP2_RAPID_RESET,
                format!(
                    "{} streams opened and reset by the client within one second (Rapid Reset, CVE-2023-44487)",
                    h2.rapid_resets
                ),
            );
        }
        if rec.flags.contains(&flag::HEADER_BLOCK_FLOOD) && self.is_on(ix::HTTP2_CONTINUATION_FLOOD)
        {
            fire(
                rule::HTTP2_CONTINUATION_FLOOD,
                format!(
                    "a header block of {} bytes without END_HEADERS in time (CONTINUATION flood)",
                    rec.header_bytes
                ),
            );
        }
        let (decoded, packed) = (h2.decoded_bytes, rec.header_bytes.max(1));
        if decoded >= self.cfg.hpack_bomb_min_bytes
            && decoded / packed >= self.cfg.hpack_bomb_ratio
            && self.is_on(ix::HTTP2_HPACK_BOMB)
        {
            fire(
                rule::HTTP2_HPACK_BOMB,
                format!(
                    "{packed} bytes of HPACK decode to a {decoded}-byte header list ({}x)",
                    decoded / packed
                ),
            );
        }
    }

    /// The scanner named in `ua`, if any.
    fn scanner(&mut self, ua: &str) -> Option<&str> {
        if self.ua_last.0 == ua {
            let v = self.ua_last.1;
            return v.and_then(|i| self.agents.get(i)).map(String::as_str);
        }
        let found = match self.ua_cache.get(ua) {
            Some(v) => *v,
            None => {
                let lower = ua.to_ascii_lowercase();
                let v = self.agents.iter().position(|a| lower.contains(a.as_str()));
                if self.ua_cache.len() >= UA_CACHE {
                    self.ua_cache.clear();
                }
                self.ua_cache.insert(ua.into(), v);
                v
            }
        };
        self.ua_last.0.clear();
        self.ua_last.0.push_str(ua);
        self.ua_last.1 = found;
        found.and_then(|i| self.agents.get(i)).map(String::as_str)
    }
}

/// What one pass over a record's headers found.
#[derive(Default)]
struct Seen<'a> {
    user_agent: Option<&'a str>,
    /// First oversized header: name and value length.
    oversized: Option<(&'a str, usize)>,
    /// Header whose value holds %0d, %0a or %00.
    encoded_ctl: Option<&'a str>,
    credentials: Option<(&'a str, &'a str)>,
}

impl<'a> Seen<'a> {
    /// One header line, as bytes (`Headers::iter_bytes`: most lines are
    /// settled by their length, and only the ones kept become text).
    fn header(&mut self, name: &'a [u8], value: &'a [u8], max_value: usize, request: bool) {
        // A redacted value's marker is short: its length says the
        // original's (the marker has no `%` either, so the encoded-CTL
        // check below passes it by).
        let len = if value.last() == Some(&b']') {
            crate::redact::original_len(text(value)).unwrap_or(value.len())
        } else {
            value.len()
        };
        if len > max_value && self.oversized.is_none() {
            self.oversized = Some((text(name), len));
        }
        // Header names of interest are 10 to 19 bytes long: most headers
        // are settled by their length.
        match name.len() {
            10 if request && name.eq_ignore_ascii_case(b"user-agent") => {
                self.user_agent.get_or_insert(text(value));
            }
            13 | 19
                if request
                    && (name.eq_ignore_ascii_case(b"authorization")
                        || name.eq_ignore_ascii_case(b"proxy-authorization")) =>
            {
                self.credentials.get_or_insert((text(name), text(value)));
            }
            _ => {}
        }
        // Raw control characters in a value are the parser's business
        // (`anomalies`, ctl_in_value); this looks for encoded ones.
        // Percent signs are rare: one vectorised pass decides.
        if request
            && self.encoded_ctl.is_none()
            && has_percent(value)
            && has_encoded_ctl(text(value))
        {
            self.encoded_ctl = Some(text(name));
        }
    }
}

/// Header text held as bytes (`Headers` keeps only UTF-8).
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

fn alert(rec: &HttpRecord, info: &RuleInfo, detail: String) -> Alert {
    Alert {
        id: 0,
        rule: info.id,
        severity: info.severity,
        record_id: rec.id,
        record_kind: rec.kind,
        ts_unix_ns: rec.ts_unix_ns,
        conn_id: rec.conn_id,
        pid: rec.process.pid,
        tid: rec.process.tid,
        comm: rec.process.comm.to_string(),
        local: rec.local,
        remote: rec.remote,
        role: rec.role,
        tls: rec.tls,
        method: rec.method.as_deref().map(str::to_owned),
        target: rec.target.as_deref().map(|t| cut(t, QUOTE_MAX).to_string()),
        detail,
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// `s` in double quotes, cut at [`QUOTE_MAX`] bytes (with `...`).
fn quote(s: &str) -> String {
    let c = cut(s, QUOTE_MAX);
    if c.len() < s.len() {
        format!("\"{c}...\"")
    } else {
        format!("\"{c}\"")
    }
}

/// Whether `b` holds a `%` (written without early exit per byte so the
/// compiler vectorises it).
fn has_percent(b: &[u8]) -> bool {
    b.iter().fold(false, |acc, &x| acc | (x == b'%'))
}

/// Bytes of a request target the target rules care about.
const T_DOT: u8 = 1;
const T_PERCENT: u8 = 2;
const T_BACKSLASH: u8 = 4;
const T_QUERY: u8 = 8;

/// Which of `.`, `%`, `\`, `?`/`#` occur in `b`, in one pass.
fn target_bytes(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |acc, &c| {
        acc | match c {
            b'.' => T_DOT,
            b'%' => T_PERCENT,
            b'\\' => T_BACKSLASH,
            b'?' | b'#' => T_QUERY,
            _ => 0,
        }
    })
}

/// `%0d`, `%0a` or `%00` (any case), also double-encoded (`%250d`).
fn has_encoded_ctl(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'%')) {
        let at = i + off;
        let rest = b.get(at + 1..).unwrap_or_default();
        let rest = match rest {
            [b'2', b'5', tail @ ..] => tail,
            r => r,
        };
        if let [b'0', d, ..] = rest {
            if matches!(d, b'0' | b'a' | b'A' | b'd' | b'D') {
                return true;
            }
        }
        i = at + 1;
    }
    false
}

/// Whether the path of `target` holds a `..` segment: Some(false) when it
/// is there as typed, Some(true) when only decoding (percent-encoding up
/// to twice, overlong UTF-8 dots, backslashes) reveals it.
fn traversal(target: &str, tb: u8) -> Option<bool> {
    // Only the path: the query may hold anything.
    let path = if tb & T_QUERY != 0 {
        target.split(['?', '#']).next().unwrap_or(target)
    } else {
        target
    };
    let b = path.as_bytes();
    if has_dotdot_segment(b, false) {
        return Some(false);
    }
    // Nothing to decode: settled (the common case: `/index.html`).
    if !b.contains(&b'%') && !b.contains(&b'\\') {
        return None;
    }
    let mut cur = b.to_vec();
    for _ in 0..2 {
        let next = percent_decode(&cur);
        if has_dotdot_segment(&next, true) {
            return Some(true);
        }
        if next == cur {
            break;
        }
        cur = next;
    }
    if has_dotdot_segment(&cur, true) {
        return Some(true);
    }
    None
}

/// A `..` segment, with `/` (and, if `backslash`, `\`) separating segments.
fn has_dotdot_segment(p: &[u8], backslash: bool) -> bool {
    p.split(|&c| c == b'/' || (backslash && c == b'\\'))
        .any(|seg| seg == b"..")
}

/// One round of percent-decoding; `%c0%ae` and `%e0%80%ae` (overlong
/// encodings of `.`) and `%u002e` become `.` as well.
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let lower: Vec<u8> = b
                .get(i..(i + 9).min(b.len()))
                .unwrap_or_default()
                .to_ascii_lowercase();
            if lower.starts_with(b"%c0%ae") {
                out.push(b'.');
                i += 6;
                continue;
            }
            if lower.starts_with(b"%e0%80%ae") {
                out.push(b'.');
                i += 9;
                continue;
            }
            if lower.starts_with(b"%u002e") {
                out.push(b'.');
                i += 6;
                continue;
            }
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The scheme of an Authorization value when it is a well-known one,
/// else "unknown" (a bare token must never be echoed).
fn auth_scheme(value: &str) -> &'static str {
    crate::redact::auth_scheme(value).unwrap_or("unknown")
}

#[cfg(test)]
mod tests;

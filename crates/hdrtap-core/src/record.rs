//! The records hdrtap emits. One [`HttpRecord`] per HTTP message; the JSON
//! shape is documented in docs/SCHEMA.md and produced by `output::json`.
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

pub use crate::headers::Headers;
/// Text kept inline up to 24 bytes, in its own allocation only when
/// longer: methods, targets, reason phrases, task names and hosts are
/// almost always that short. Allocation was about a tenth of hdrtap's CPU
/// under load (perf, nginx+wrk), and 18 of an exchange's 30 allocations
/// were such fields (callgrind, `examples/pipeline_count`).
pub use compact_str::CompactString;

/// A kernel event's NUL-padded task name, lossily as UTF-8, inline.
pub fn comm_text(comm: &[u8]) -> CompactString {
    CompactString::from_utf8_lossy(hdrtap_abi::comm_bytes(comm))
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// The traced process's role on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It sent the requests.
    Client,
    /// It received the requests.
    Server,
}

/// Request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HttpKind {
    #[serde(rename = "http_request")]
    Request,
    #[serde(rename = "http_response")]
    Response,
}

/// The request a response answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRef {
    pub method: CompactString,
    pub target: CompactString,
    /// The request's `Host` header, if any (for metrics by host; not part
    /// of the JSON `request` object).
    #[serde(skip)]
    pub host: Option<CompactString>,
}

/// Who moved the bytes: the process and thread whose syscall carried the
/// first byte of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub tid: u32,
    pub comm: CompactString,
    pub cgroup_id: u64,
}

/// Anomalies a record can carry (JSON `flags`, omitted when empty).
pub mod flag {
    /// The connection was opened before hdrtap started (or hdrtap lost its
    /// start): parsing began at the first message boundary it could find.
    pub const MIDSTREAM: &str = "midstream";
    /// Bytes of this message's header block were lost (ring buffer full,
    /// failed read, or per-call capture cap); headers may be incomplete.
    pub const GAP: &str = "gap";
    /// The header block was not valid HTTP/1.x; fields are best effort.
    pub const MALFORMED: &str = "malformed";
    /// A header name or value was not UTF-8; shown with U+FFFD.
    pub const NON_UTF8: &str = "non_utf8";
    /// A response with no outstanding request to pair with.
    pub const UNPAIRED: &str = "unpaired";
    /// The connection ended (closed) before the header block was complete.
    pub const INCOMPLETE: &str = "incomplete";
    /// A response paired with a request after responses on its connection
    /// went missing (lost events): paired with the last request sent before
    /// it, which is right unless requests were pipelined.
    pub const PAIRING_GUESSED: &str = "pairing_guessed";
}

/// What the parser saw in a header block that the record's headers cannot
/// show (the offending lines were skipped): bits of [`HttpRecord::anomalies`],
/// JSON `anomalies` (names, omitted when none). Looked for only in blocks
/// that failed strict parsing, so clean traffic costs nothing.
pub mod anomaly {
    /// A header line continued on the next line (obs-fold: a line starting
    /// with a space or tab), which RFC 9112 forbids in requests.
    pub const OBS_FOLD: u8 = 1 << 0;
    /// A header line with an invalid name: characters outside the token
    /// set, whitespace before the colon, or no colon at all.
    pub const BAD_HEADER_NAME: u8 = 1 << 1;
    /// A raw control character inside a header value: NUL, a CR not
    /// followed by LF, or another byte below 0x20 other than tab.
    pub const CTL_IN_VALUE: u8 = 1 << 2;

    /// Every anomaly with its JSON name.
    pub const ALL: [(u8, &str); 3] = [
        (OBS_FOLD, "obs_fold"),
        (BAD_HEADER_NAME, "bad_header_name"),
        (CTL_IN_VALUE, "ctl_in_value"),
    ];

    /// The names of the bits set in `bits`.
    pub fn names(bits: u8) -> impl Iterator<Item = &'static str> {
        ALL.into_iter()
            .filter(move |(b, _)| bits & b != 0)
            .map(|(_, n)| n)
    }

    /// Scan a raw header block (start line through the blank line) for
    /// the anomalies above.
    pub fn scan(block: &[u8]) -> u8 {
        let mut bits = 0;
        // Lines after the start line, up to the first empty one.
        let mut lines = block.split(|&b| b == b'\n').skip(1);
        for line in &mut lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if matches!(line.first(), Some(b' ' | b'\t')) {
                bits |= OBS_FOLD;
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => (
                    line.get(..i).unwrap_or_default(),
                    line.get(i + 1..).unwrap_or_default(),
                ),
                None => (line, &[][..]),
            };
            let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
            if name.is_empty() || !name.iter().all(token) || !line.contains(&b':') {
                bits |= BAD_HEADER_NAME;
            }
            if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                bits |= CTL_IN_VALUE;
            }
        }
        bits
    }
}

/// One HTTP/1.x request or response: start line and every header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRecord {
    pub kind: HttpKind,
    /// Per-run record id, assigned when the record leaves the capture
    /// (JSON `id`; 0 until then). Alerts name the record by it.
    pub id: u64,
    /// Wall-clock time of the syscall that carried the first byte,
    /// nanoseconds since the Unix epoch.
    pub ts_unix_ns: u64,
    /// Kernel connection id: equal on every record of one connection.
    pub conn_id: u64,
    pub process: Process,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub role: Role,
    /// "HTTP/1.0" or "HTTP/1.1": one of a few constants, so not allocated
    /// per record.
    pub version: &'static str,
    /// Requests: method and request-target as sent.
    pub method: Option<CompactString>,
    pub target: Option<CompactString>,
    /// Responses: status code and reason phrase.
    pub status: Option<u16>,
    pub reason: Option<CompactString>,
    /// Responses: time from the request's first byte to the response's first
    /// byte, as seen by this process.
    pub latency_ns: Option<u64>,
    /// Responses: the request this answers.
    pub request: Option<RequestRef>,
    /// Every header in wire order, original case, duplicates kept.
    pub headers: Headers,
    /// Bytes of the header block on the wire (start line through the blank line).
    pub header_bytes: usize,
    /// The header block was longer than the capture limit: `headers` holds
    /// the ones before the cut.
    pub truncated: bool,
    /// Captured from a TLS library (plaintext side) rather than the socket.
    pub tls: bool,
    /// With `tls`: the hooked library file the plaintext came from, e.g.
    /// `libssl.so.3`, or a statically linked program's name (JSON
    /// `tls_library`, present only on TLS records).
    pub tls_library: Option<Arc<str>>,
    /// Anomalies, see [`flag`].
    pub flags: Vec<&'static str>,
    /// What the parser saw that the headers do not show, see [`anomaly`].
    pub anomalies: u8,
}

/// A plain request record (`GET /` from 127.0.0.1:80 to itself, client
/// side) with `headers`, for unit tests; they change what they need with
/// struct update syntax.
#[cfg(test)]
pub(crate) fn test_request(headers: &[(&str, &str)]) -> HttpRecord {
    let ep = Endpoint {
        ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        port: 80,
    };
    HttpRecord {
        kind: HttpKind::Request,
        id: 0,
        ts_unix_ns: 0,
        conn_id: 1,
        process: Process {
            pid: 1,
            tid: 1,
            comm: "t".into(),
            cgroup_id: 0,
        },
        local: ep,
        remote: ep,
        role: Role::Client,
        version: "HTTP/1.1",
        method: Some("GET".into()),
        target: Some("/".into()),
        status: None,
        reason: None,
        latency_ns: None,
        request: None,
        headers: headers.iter().copied().collect(),
        header_bytes: 0,
        truncated: false,
        tls: false,
        tls_library: None,
        flags: vec![],
        anomalies: 0,
    }
}

impl HttpRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.first(name)
    }

    /// Add an anomaly flag once.
    pub fn add_flag(&mut self, f: &'static str) {
        if !self.flags.contains(&f) {
            self.flags.push(f);
        }
    }
}

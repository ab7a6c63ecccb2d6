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

/// What an HTTP record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HttpKind {
    #[serde(rename = "http_request")]
    Request,
    #[serde(rename = "http_response")]
    Response,
    /// HTTP/2: a header block after a stream's DATA (trailers, e.g. gRPC's
    /// status), with `request` naming the stream's request.
    #[serde(rename = "http_trailers")]
    Trailers,
    /// HTTP/2: a stream reset (RST_STREAM) that no later record of its
    /// stream carried: `error_code` and `request` say which and why.
    #[serde(rename = "http_reset")]
    Reset,
}

impl HttpKind {
    /// The JSON `kind`.
    pub fn name(self) -> &'static str {
        match self {
            HttpKind::Request => "http_request",
            HttpKind::Response => "http_response",
            HttpKind::Trailers => "http_trailers",
            HttpKind::Reset => "http_reset",
        }
    }

    /// Sent by the side that sends requests (requests; a client's reset is
    /// not known here: see [`HttpRecord::sent_by_process`]).
    pub fn from_client(self) -> bool {
        self == HttpKind::Request
    }
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
    /// The unit, container and pod the cgroup names (JSON `cgroup`,
    /// `unit`, `container_id`, `container_runtime`, `pod_uid`); `None`
    /// until looked up, or when the cgroup is gone.
    pub workload: Option<std::sync::Arc<crate::cgroup::Workload>>,
}

/// Anomalies a record can carry (JSON `flags`, omitted when empty).
pub mod flag {
    /// The connection was opened before hdrtap started (or hdrtap lost its
    /// start): parsing began at the first message boundary it could find.
    pub const MIDSTREAM: &str = "midstream";
    /// Bytes of this message's header block were lost (ring buffer full,
    /// failed read, or per-call capture cap); headers may be incomplete.
    pub const GAP: &str = "gap";
    /// From packets (`--source packets`): a retransmission of some of this
    /// message's bytes differed from their first copy, which is the one
    /// shown (a middlebox or an attacker rewrote them, or an evasion try).
    pub const CONFLICT: &str = "conflict";
    /// The header block was not valid HTTP/1.x (or its Content-Length or a
    /// request's transfer coding leaves its end unknown). HTTP/1: every
    /// line is still in `headers`, as sent and in wire order (a line with
    /// no colon as an empty name and the line as its value, an obs-fold
    /// line inside the previous value with its line break), and
    /// `anomalies` says what was wrong with them.
    pub const MALFORMED: &str = "malformed";
    /// Some wire text was not UTF-8. HTTP/1: every text of the record as
    /// sent (method, target, reason, header names and values) is escaped,
    /// each byte outside a valid UTF-8 sequence as `\xHH` and each `\` as
    /// `\x5c` ([`crate::text::unescape_wire`] gives the bytes back); a
    /// response's `request` fields are its request's, escaped if that
    /// request was. HTTP/2: the same, from the first field that is not
    /// UTF-8 (the fields before it are escaped too), and `grpc_message`.
    pub const NON_UTF8: &str = "non_utf8";
    /// A response with no outstanding request to pair with.
    pub const UNPAIRED: &str = "unpaired";
    /// The connection ended (closed) before the header block was complete.
    pub const INCOMPLETE: &str = "incomplete";
    /// HTTP/1: the record's last text — the target when the start line
    /// itself was cut, else the last header's value, or its name when the
    /// cut came before the colon (the value is then empty) — stops where
    /// the header block was cut: `--max-header-bytes` (with `truncated`), a
    /// gap (`gap`) or the connection's end (`incomplete`).
    pub const CUT: &str = "cut";
    /// HTTP/2: the stream was reset (RST_STREAM, `error_code` says why).
    pub const RESET: &str = "reset";
    /// HTTP/2: fields refer to HPACK dynamic-table entries hdrtap never saw
    /// (a connection joined mid-stream, or after lost bytes): their unknown
    /// parts are `null`, `undecoded_fields` counts them.
    pub const HPACK_PARTIAL: &str = "hpack_partial";
    /// HTTP/2: the header block could not be decoded past some field (bad
    /// HPACK); the fields before it are kept.
    pub const HPACK_ERROR: &str = "hpack_error";
    /// HTTP/2: a PUSH_PROMISE's request (sent by the server).
    pub const PUSH_PROMISE: &str = "push_promise";
    /// HTTP/2: the header block grew past the limit without END_HEADERS
    /// (CONTINUATION frames kept coming): it was not decoded.
    pub const HEADER_BLOCK_FLOOD: &str = "header_block_flood";
    /// HTTP/2: this stream's reset ended a run of streams the client
    /// opened and reset quickly (CVE-2023-44487, Rapid Reset).
    pub const RAPID_RESET: &str = "rapid_reset";
    /// A response paired with a request after responses on its connection
    /// went missing (lost events): paired with the last request sent before
    /// it, which is right unless requests were pipelined.
    pub const PAIRING_GUESSED: &str = "pairing_guessed";
}

/// What the parser found wrong with the lines of a header block (the lines
/// themselves are in the record's headers, as sent): bits of
/// [`HttpRecord::anomalies`], JSON `anomalies` (names, omitted when none).
/// Looked for only in blocks that failed strict parsing, so clean traffic
/// costs nothing.
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

/// What a message's Content-Length and Transfer-Encoding lines say about
/// where its body ends ([`HttpRecord::framing`]). The parser gathers it
/// once from every header line, kept or not and before redaction: HTTP/1
/// frames the body by it, and the smuggling rules judge it, so the two
/// can never disagree about what the headers said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framing {
    /// Content-Length lines (saturating at 255).
    pub content_lengths: u8,
    /// Transfer-Encoding lines (saturating at 255).
    pub transfer_encodings: u8,
    /// The first Content-Length value read (see [`Framing::length`]).
    first_length: u64,
    /// Content-Length values that differ (repeated lines or one list).
    pub cl_conflict: bool,
    /// A Content-Length that is not a decimal number or a list of them.
    pub cl_invalid: bool,
    /// The last Transfer-Encoding line's last coding is `chunked`.
    pub chunked: bool,
    /// A Transfer-Encoding value that is not a clean comma-separated list
    /// of tokens ending in `chunked` (`xchunked`, `chunked, identity`,
    /// `"chunked"`, an empty element).
    pub te_unclean: bool,
}

impl Framing {
    /// One header line (name compared case-insensitively). Most lines are
    /// settled by the length of their name.
    #[inline(always)]
    pub fn see(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => self.content_length(value),
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encodings = self.transfer_encodings.saturating_add(1);
                self.chunked = last_coding_is_chunked(value);
                self.te_unclean |= !clean_te(value);
            }
            _ => {}
        }
    }

    /// The framing of a list of header lines.
    pub fn of<'a>(lines: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Framing {
        let mut f = Framing::default();
        for (name, value) in lines {
            f.see(name, value);
        }
        f
    }

    /// The one length every Content-Length line gave, if they gave one.
    pub fn length(&self) -> Option<u64> {
        (self.content_lengths > 0 && !self.cl_conflict && !self.cl_invalid)
            .then_some(self.first_length)
    }

    /// A Content-Length value: decimal digits, or a comma-separated list
    /// of them that must all be equal, like repeated lines.
    fn content_length(&mut self, v: &[u8]) {
        let mut first = self.content_lengths == 0;
        self.content_lengths = self.content_lengths.saturating_add(1);
        for part in v.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = (!part.is_empty() && part.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                .flatten();
            match n {
                None => self.cl_invalid = true,
                Some(n) if first => {
                    self.first_length = n;
                    first = false;
                }
                Some(n) if n != self.first_length => self.cl_conflict = true,
                Some(_) => {}
            }
        }
    }
}

/// Whether the last coding in a Transfer-Encoding value is `chunked`.
fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .find(|c| !c.is_empty())
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// `b` without leading and trailing spaces and tabs (RFC 9110's OWS).
fn trim_ows(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => b.get(s..=e).unwrap_or_default(),
        _ => &[],
    }
}

/// A Transfer-Encoding value that is a comma-separated list of tokens
/// ending in `chunked`.
fn clean_te(v: &[u8]) -> bool {
    let mut last: &[u8] = b"";
    for part in v.split(|&b| b == b',') {
        let p = trim_ows(part);
        if p.is_empty()
            || !p
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        {
            return false;
        }
        last = p;
    }
    last.eq_ignore_ascii_case(b"chunked")
}

/// What an HTTP/2 record carries besides the HTTP/1 fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H2Info {
    /// The stream (a PUSH_PROMISE's request: the promised stream).
    pub stream_id: u32,
    /// Requests: `:authority` and `:scheme`.
    pub authority: Option<CompactString>,
    pub scheme: Option<CompactString>,
    /// With the `reset` flag: RST_STREAM's error code.
    pub error_code: Option<u32>,
    /// With `hpack_partial`: fields with an unknown name or value.
    pub undecoded_fields: u32,
    /// The header list's size as HPACK counts it (name + value + 32 per
    /// field), for the hpack_bomb rule (not in the JSON).
    pub decoded_bytes: usize,
    /// With `rapid_reset`: streams reset in the window that ended here.
    pub rapid_resets: u32,
    /// gRPC requests: service and method, from `:path`.
    pub grpc: Option<Grpc>,
    /// gRPC trailers (or a trailers-only response): `grpc-status` and the
    /// percent-decoded `grpc-message`.
    pub grpc_status: Option<i64>,
    pub grpc_message: Option<String>,
}

/// A gRPC call's name: `:path` is `/package.Service/Method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grpc {
    pub service: CompactString,
    pub method: CompactString,
}

/// One HTTP message: a request, response or (HTTP/2) trailers or reset,
/// with its start line (or pseudo-headers) and every header.
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
    /// The TCP socket's cookie, as packet records carry it (their
    /// `conn_id`); 0 when the socket had none (JSON: absent).
    pub sock_cookie: u64,
    pub process: Process,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub role: Role,
    /// "HTTP/1.0", "HTTP/1.1" or "HTTP/2" ("HTTP/1.x" for a request whose
    /// start line was cut before its version): one of a few constants, so
    /// not allocated per record.
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
    /// The header block was longer than the capture limit (or had more
    /// headers than kept): `headers` holds the ones before the cut, the
    /// last one cut if [`flag::CUT`] says so. HTTP/1: a start line with no
    /// line break within the limit gives the method and the target cut at
    /// the limit, no headers, version `HTTP/1.x`.
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
    /// What the Content-Length and Transfer-Encoding lines said, see
    /// [`Framing`] (internal: not in the JSON).
    pub framing: Framing,
    /// HTTP/2 only (boxed: HTTP/1 records stay small).
    pub h2: Option<Box<H2Info>>,
    /// Plain HTTP/1: where the message lies in its TCP stream.
    pub tcp_seq: Option<SeqRange>,
    /// `hdrtap http --with-packets`: the packet records that carried it
    /// (boxed: absent on almost every record).
    pub packets: Option<Box<PacketLink>>,
    /// `hdrtap http --source packets`: the interface whose packets the
    /// message was reassembled from (JSON `"source":"packet"` and
    /// `interface`); `None` for messages seen at the process's socket I/O.
    pub interface: Option<Arc<str>>,
}

/// The TCP sequence numbers of a message's first and last byte, as read
/// from the socket when the process moved them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub first: u32,
    pub last: u32,
    /// True when `last` is the body's last byte (no body, or a
    /// Content-Length one); false when only the header block's end was
    /// known when the record left (a chunked body, one that ends at close).
    pub whole: bool,
}

impl SeqRange {
    /// The range starting at sequence number `first`, `len` bytes long
    /// (at least 1).
    pub fn new(first: u32, len: u64, whole: bool) -> Self {
        SeqRange {
            first,
            last: first.wrapping_add((len.max(1) - 1) as u32),
            whole,
        }
    }

    /// Bytes in the range (up to 4 GiB: sequence numbers wrap).
    pub fn len(&self) -> u64 {
        u64::from(self.last.wrapping_sub(self.first)) + 1
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The offset of sequence number `seq` in the range, if it is inside.
    pub fn offset(&self, seq: u32) -> Option<u64> {
        let off = u64::from(seq.wrapping_sub(self.first));
        (off < self.len()).then_some(off)
    }
}

/// The packets of one message (`--with-packets`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PacketLink {
    /// Ids of the packet records, in capture order.
    pub ids: Vec<u64>,
    /// Every byte of the message's sequence range was in one of them.
    pub complete: bool,
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
        sock_cookie: 0,
        process: Process {
            pid: 1,
            tid: 1,
            comm: "t".into(),
            cgroup_id: 0,
            workload: None,
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
        framing: Framing::of(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))),
        h2: None,
        tcp_seq: None,
        packets: None,
        interface: None,
    }
}

/// A final response record of `role` to `method target` (Host `host`),
/// with `status` after `latency_ms`, for unit tests.
#[cfg(test)]
pub(crate) fn test_response(
    role: Role,
    (method, target, host): (&str, &str, Option<&str>),
    status: u16,
    latency_ms: u64,
) -> HttpRecord {
    HttpRecord {
        kind: HttpKind::Response,
        role,
        method: None,
        target: None,
        status: Some(status),
        latency_ns: Some(latency_ms * 1_000_000),
        request: Some(RequestRef {
            method: method.into(),
            target: target.into(),
            host: host.map(Into::into),
        }),
        ..test_request(&[])
    }
}

/// Status classes, by [`HttpRecord::final_status_class`]'s index.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

impl HttpRecord {
    /// A final response's status class, as an index into [`STATUS_CLASSES`]
    /// (a status outside 100..=599 is `other`); None for requests,
    /// trailers, resets and interim responses (1xx but 101), which
    /// complete no request.
    pub fn final_status_class(&self) -> Option<usize> {
        if self.kind != HttpKind::Response {
            return None;
        }
        match self.status.unwrap_or(0) {
            101 => Some(0),
            100..=199 => None,
            s @ 200..=599 => Some(usize::from(s / 100) - 1),
            _ => Some(5),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.first(name)
    }

    /// Whether the traced process sent this message (a request it made, a
    /// response it served), for the direction shown in readable output.
    pub fn sent_by_process(&self) -> bool {
        match self.kind {
            HttpKind::Request => self.role == Role::Client,
            HttpKind::Response | HttpKind::Trailers => self.role == Role::Server,
            // A reset's record stands for the stream: shown from the client.
            HttpKind::Reset => self.role == Role::Client,
        }
    }

    /// The HTTP/2 stream id, if any.
    pub fn stream_id(&self) -> Option<u32> {
        self.h2.as_ref().map(|h| h.stream_id)
    }

    /// Add an anomaly flag once.
    pub fn add_flag(&mut self, f: &'static str) {
        if !self.flags.contains(&f) {
            self.flags.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Framing;

    fn of(lines: &[(&str, &str)]) -> Framing {
        Framing::of(lines.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn final_status_classes() {
        use super::{test_response, HttpKind, Role};
        let class = |status| {
            test_response(Role::Server, ("GET", "/", None), status, 1).final_status_class()
        };
        assert_eq!(class(101), Some(0));
        assert_eq!(class(100), None);
        assert_eq!(class(103), None);
        assert_eq!(class(204), Some(1));
        assert_eq!(class(404), Some(3));
        assert_eq!(class(599), Some(4));
        assert_eq!(class(600), Some(5));
        assert_eq!(class(0), Some(5));
        let mut req = test_response(Role::Server, ("GET", "/", None), 200, 1);
        req.kind = HttpKind::Request;
        assert_eq!(req.final_status_class(), None);
    }

    #[test]
    fn framing_tells_a_conflict_from_a_bad_number() {
        let f = of(&[("Content-Length", "5"), ("content-length", "05")]);
        assert_eq!(
            (f.content_lengths, f.length(), f.cl_conflict),
            (2, Some(5), false)
        );
        let f = of(&[("Content-Length", "5, 6")]);
        assert!(
            f.cl_conflict && !f.cl_invalid && f.length().is_none(),
            "{f:?}"
        );
        let f = of(&[("Content-Length", "5"), ("Content-Length", "6")]);
        assert!(f.cl_conflict && f.length().is_none(), "{f:?}");
        for bad in ["", "-1", "5,", "0x10", "99999999999999999999999"] {
            let f = of(&[("Content-Length", bad)]);
            assert!(
                f.cl_invalid && !f.cl_conflict && f.length().is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn framing_keeps_how_the_body_is_framed_and_whether_it_is_clean() {
        let f = of(&[("Transfer-Encoding", "gzip, Chunked")]);
        assert!(f.chunked && !f.te_unclean, "{f:?}");
        // Framed as chunked (its last coding), but not a clean list.
        let f = of(&[("Transfer-Encoding", "chunked, ")]);
        assert!(f.chunked && f.te_unclean, "{f:?}");
        for unclean in [
            "xchunked",
            "chunked, identity",
            "\"chunked\"",
            "chunked\x0c",
        ] {
            assert!(
                of(&[("Transfer-Encoding", unclean)]).te_unclean,
                "{unclean:?}"
            );
        }
        // The last line decides the framing; every line is counted.
        let f = of(&[
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "identity"),
            ("Content-Length", "3"),
        ]);
        assert_eq!((f.transfer_encodings, f.chunked), (2, false));
        assert_eq!((f.content_lengths, f.length()), (1, Some(3)));
        assert_eq!(of(&[("Content-Lengthy", "x")]), Framing::default());
    }
}

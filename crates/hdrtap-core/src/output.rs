//! Writing records: one readable line per message, or NDJSON (docs/SCHEMA.md).
//!
//! The writer never panics on I/O: errors are returned to the caller, which
//! counts them (and stops on a closed pipe).
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, Local, Utc};

use crate::headers::mark;
use crate::record::{Endpoint, H2Info, HttpKind, HttpRecord, RequestRef, Role};

mod memo;
pub use memo::JsonMemo;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per message.
    Human,
    /// One JSON object per line.
    Json,
}

/// RFC 3339 UTC timestamp with nanoseconds, e.g. `2026-11-21T23:59:01.123456789Z`.
pub fn rfc3339_ns(unix_ns: u64) -> String {
    let mut out = Vec::with_capacity(30);
    push_rfc3339_ns(&mut out, unix_ns);
    String::from_utf8(out).unwrap_or_default()
}

thread_local! {
    /// The date-and-time part ("YYYY-MM-DDTHH:MM:SS") of the last second
    /// formatted: records come in time order, so it rarely changes.
    static TS_PREFIX: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// Append the RFC 3339 form of `unix_ns` (see [`rfc3339_ns`]).
pub fn push_rfc3339_ns(out: &mut Vec<u8>, unix_ns: u64) {
    let secs = unix_ns / 1_000_000_000;
    let nanos = (unix_ns % 1_000_000_000) as u32;
    let (cached, mut prefix) = TS_PREFIX.get();
    if cached != secs {
        // u64 nanoseconds end in the year 2554, so the text is always 19
        // bytes; the epoch stands in should chrono ever say otherwise.
        prefix = *b"1970-01-01T00:00:00";
        if let Some(t) = DateTime::<Utc>::from_timestamp(secs as i64, 0) {
            let text = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            if let Ok(p) = <[u8; 19]>::try_from(text.as_bytes()) {
                prefix = p;
            }
        }
        TS_PREFIX.set((secs, prefix));
    }
    out.extend_from_slice(&prefix);
    let mut digits = *b".000000000Z";
    let mut n = nanos;
    for d in digits[1..10].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Local wall-clock time of day with microseconds, like tcpdump.
pub fn time_of_day(unix_ns: u64) -> String {
    let secs = (unix_ns / 1_000_000_000) as i64;
    let nanos = (unix_ns % 1_000_000_000) as u32;
    match DateTime::<Utc>::from_timestamp(secs, nanos) {
        Some(t) => t.with_timezone(&Local).format("%H:%M:%S%.6f").to_string(),
        None => "??:??:??.??????".to_string(),
    }
}

/// Append `s` as a JSON string.
///
/// Written by hand for speed: serde_json escapes byte by byte, which was a
/// fifth of hdrtap's CPU time under load (perf, nginx+wrk), while header
/// text almost never needs escaping. A clean string is copied in one go;
/// any other goes through serde_json, so the escaping rules stay its own.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    push_json_text(out, s.as_bytes());
}

/// [`push_json_str`] of text held as bytes (header lines, see
/// [`crate::headers::Headers::iter_bytes`]). Bytes that are not UTF-8,
/// which header text never is, are written as `String::from_utf8_lossy`
/// makes them.
pub(crate) fn push_json_text(out: &mut Vec<u8>, b: &[u8]) {
    if !needs_escape(b) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b));
    }
}

/// Whether JSON needs any byte of `b` escaped (a control character, `"`
/// or `\\`). Eight bytes at a time with the classic "has a byte below n /
/// equal to n" word tricks, which are exact: the per-byte loop was the
/// largest single cost of writing a record (callgrind).
pub(crate) fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_less = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let needs = |x: u64| {
        has_less(x, 0x20)
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            != 0
    };
    // Words that overlap cover the bytes a short tail or a short string
    // leaves, with no loop per byte (most header names and values are
    // shorter than 16 bytes); a byte tested twice is harmless.
    if let Some(last) = b.last_chunk::<8>() {
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            if needs(u64::from_le_bytes(a)) {
                return true;
            }
        }
        return !words.remainder().is_empty() && needs(u64::from_le_bytes(*last));
    }
    if let (Some(first), Some(last)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        let half = |a: &[u8; 4]| u64::from(u32::from_le_bytes(*a));
        return needs(half(first) | half(last) << 32);
    }
    // 0-3 bytes: the first, middle and last cover them all; spaces pad.
    match (b.first(), b.get(b.len() / 2), b.last()) {
        (Some(&x), Some(&y), Some(&z)) => {
            needs(u64::from_le_bytes([x, y, z, b' ', b' ', b' ', b' ', b' ']))
        }
        _ => false,
    }
}

/// Append the decimal digits of `n`. A single digit is pushed as a byte:
/// most numbers of a packet record are single digits (versions, header
/// lengths, flags, zeros), and itoa hands out a slice whose copy is a
/// memcpy call.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
}

/// Per octet value: its decimal digits followed by a dot, and how many of
/// those bytes to keep.
const OCTET_TEXT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 4)
        } else if i >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 3)
        } else {
            ([b'0' + u, b'.', 0, 0], 2)
        };
        i += 1;
    }
    t
};

/// Append a dotted quad: built in a fixed buffer from [`OCTET_TEXT`] with
/// four fixed-size copies, then appended once.
pub(crate) fn push_ipv4(out: &mut Vec<u8>, octets: [u8; 4]) {
    let mut text = [0u8; 16];
    let mut n = 0;
    for o in octets {
        let (digits, len) = OCTET_TEXT[usize::from(o)];
        if let Some(w) = text.get_mut(n..n + 4) {
            w.copy_from_slice(&digits);
        }
        n += usize::from(len);
    }
    // Appended whole, then cut to the text without the last octet's dot:
    // a copy of fixed size is a few moves, a copy of the text's own length
    // a call to memcpy.
    let start = out.len();
    out.extend_from_slice(&text);
    out.truncate(start + n - 1);
}

pub(crate) fn push_endpoint(out: &mut Vec<u8>, ep: &Endpoint) {
    use std::io::Write as _;
    out.extend_from_slice(b"{\"ip\":\"");
    match ep.ip {
        // Formatting through fmt, and then an integer writer per octet,
        // were visible costs per record (two addresses each).
        std::net::IpAddr::V4(v4) => push_ipv4(out, v4.octets()),
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.extend_from_slice(b"\",\"port\":");
    push_u64(out, u64::from(ep.port));
    out.push(b'}');
}

/// The part of a record its connection decides: `,"conn_id":` through
/// `tls_library` (the same on every record of a connection and thread,
/// which [`JsonMemo`] uses). Every field read here must be in the memo's
/// key (`memo::ConnSlot`), or a hit would copy a stale value.
fn push_conn_part(out: &mut Vec<u8>, rec: &HttpRecord) {
    out.extend_from_slice(b",\"conn_id\":");
    push_u64(out, rec.conn_id);
    match &rec.interface {
        Some(ifname) => {
            out.extend_from_slice(b",\"source\":\"packet\",\"interface\":");
            push_json_str(out, ifname);
        }
        None if rec.tls => out.extend_from_slice(b",\"source\":\"tls\""),
        None => out.extend_from_slice(b",\"source\":\"syscall\""),
    }
    if rec.sock_cookie != 0 {
        out.extend_from_slice(b",\"sock_cookie\":");
        push_u64(out, rec.sock_cookie);
    }
    // From packets, a process only where the kernel knew the socket's owner.
    if rec.interface.is_none() || rec.process.pid != 0 {
        out.extend_from_slice(b",\"pid\":");
        push_u64(out, rec.process.pid.into());
        out.extend_from_slice(b",\"tid\":");
        push_u64(out, rec.process.tid.into());
        out.extend_from_slice(b",\"comm\":");
        push_json_str(out, &rec.process.comm);
        out.extend_from_slice(b",\"cgroup_id\":");
        push_u64(out, rec.process.cgroup_id);
        if let Some(w) = &rec.process.workload {
            push_workload(out, w);
        }
    }
    out.extend_from_slice(b",\"local\":");
    push_endpoint(out, &rec.local);
    out.extend_from_slice(b",\"remote\":");
    push_endpoint(out, &rec.remote);
    out.extend_from_slice(match rec.role {
        Role::Client => b",\"role\":\"client\"".as_slice(),
        Role::Server => b",\"role\":\"server\"".as_slice(),
    });
    out.extend_from_slice(if rec.tls {
        b",\"tls\":true".as_slice()
    } else {
        b",\"tls\":false".as_slice()
    });
    if let Some(lib) = rec.tls_library.as_deref() {
        out.extend_from_slice(b",\"tls_library\":");
        push_json_str(out, lib);
    }
}

/// One header line, `["name","value"]`, with `null` for what `m` marks unknown.
fn push_header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8], m: u8) {
    out.push(b'[');
    if m & mark::NAME_UNKNOWN != 0 {
        out.extend_from_slice(b"null");
    } else {
        push_json_text(out, name);
    }
    out.push(b',');
    if m & mark::VALUE_UNKNOWN != 0 {
        out.extend_from_slice(b"null");
    } else {
        push_json_text(out, value);
    }
    out.push(b']');
}

/// Append the JSON object of one record (no newline). Field order and
/// presence follow docs/SCHEMA.md.
pub fn push_record_json(out: &mut Vec<u8>, rec: &HttpRecord) {
    push_record(out, rec, None);
}

/// [`push_record_json`], copying what `memo` holds of the record's
/// connection part and header lines instead of writing them again: the
/// same bytes (see [`JsonMemo`]).
pub fn push_record_json_memo(out: &mut Vec<u8>, rec: &HttpRecord, memo: &mut JsonMemo) {
    push_record(out, rec, Some(memo));
}

fn push_record(out: &mut Vec<u8>, rec: &HttpRecord, mut memo: Option<&mut JsonMemo>) {
    out.extend_from_slice(b"{\"kind\":\"");
    out.extend_from_slice(rec.kind.name().as_bytes());
    out.extend_from_slice(b"\",\"id\":");
    push_u64(out, rec.id);
    out.extend_from_slice(b",\"ts\":\"");
    push_rfc3339_ns(out, rec.ts_unix_ns);
    out.push(b'"');
    match memo.as_deref_mut() {
        Some(m) => m.conn(out, rec),
        None => push_conn_part(out, rec),
    }
    out.extend_from_slice(b",\"version\":");
    push_json_str(out, rec.version);
    if let Some(h2) = &rec.h2 {
        out.extend_from_slice(b",\"stream_id\":");
        push_u64(out, h2.stream_id.into());
    }
    let push_request_ref = |out: &mut Vec<u8>| {
        out.extend_from_slice(b",\"request\":");
        match &rec.request {
            Some(RequestRef { method, target, .. }) => {
                out.extend_from_slice(b"{\"method\":");
                push_json_str(out, method);
                out.extend_from_slice(b",\"target\":");
                push_json_str(out, target);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
    };
    match rec.kind {
        HttpKind::Request => {
            if let Some(m) = &rec.method {
                out.extend_from_slice(b",\"method\":");
                push_json_str(out, m);
            }
            if let Some(t) = &rec.target {
                out.extend_from_slice(b",\"target\":");
                push_json_str(out, t);
            }
            if let Some(h2) = &rec.h2 {
                for (key, v) in [
                    (b",\"authority\":".as_slice(), &h2.authority),
                    (b",\"scheme\":".as_slice(), &h2.scheme),
                ] {
                    if let Some(v) = v {
                        out.extend_from_slice(key);
                        push_json_str(out, v);
                    }
                }
            }
        }
        HttpKind::Trailers | HttpKind::Reset => push_request_ref(out),
        HttpKind::Response => {
            if let Some(status) = rec.status {
                out.extend_from_slice(b",\"status\":");
                push_u64(out, status.into());
            }
            if let Some(r) = &rec.reason {
                out.extend_from_slice(b",\"reason\":");
                push_json_str(out, r);
            }
            out.extend_from_slice(b",\"latency_ns\":");
            match rec.latency_ns {
                Some(ns) => push_u64(out, ns),
                None => out.extend_from_slice(b"null"),
            }
            push_request_ref(out);
        }
    }
    out.extend_from_slice(b",\"headers\":[");
    let marked = rec.headers.any_marks();
    for (i, (name, value)) in rec.headers.iter_bytes().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let m = if marked { rec.headers.marks(i) } else { 0 };
        match memo.as_deref_mut() {
            // Marked lines (HTTP/2's unknown names and values) are rare.
            Some(memo) if m == 0 => memo.line(out, name, value),
            _ => push_header_line(out, name, value, m),
        }
    }
    out.extend_from_slice(b"],\"header_bytes\":");
    push_u64(out, rec.header_bytes as u64);
    out.extend_from_slice(if rec.truncated {
        b",\"truncated\":true".as_slice()
    } else {
        b",\"truncated\":false".as_slice()
    });
    if let Some(r) = &rec.tcp_seq {
        out.extend_from_slice(b",\"tcp_seq\":{\"first\":");
        push_u64(out, r.first.into());
        out.extend_from_slice(b",\"last\":");
        push_u64(out, r.last.into());
        out.extend_from_slice(if r.whole {
            b",\"whole\":true}".as_slice()
        } else {
            b",\"whole\":false}".as_slice()
        });
    }
    if !rec.flags.is_empty() {
        out.extend_from_slice(b",\"flags\":[");
        for (i, f) in rec.flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, f);
        }
        out.push(b']');
    }
    if rec.anomalies != 0 {
        out.extend_from_slice(b",\"anomalies\":[");
        for (i, name) in crate::record::anomaly::names(rec.anomalies).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, name);
        }
        out.push(b']');
    }
    if let Some(h2) = &rec.h2 {
        push_h2_extras(out, h2);
    }
    if let Some(link) = &rec.packets {
        out.extend_from_slice(b",\"packets\":[");
        for (i, id) in link.ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_u64(out, *id);
        }
        out.extend_from_slice(if link.complete {
            b"],\"packets_complete\":true".as_slice()
        } else {
            b"],\"packets_complete\":false".as_slice()
        });
    }
    out.push(b'}');
}

/// The HTTP/2 fields after `anomalies`, each only when it applies.
fn push_h2_extras(out: &mut Vec<u8>, h2: &H2Info) {
    if let Some(code) = h2.error_code {
        out.extend_from_slice(b",\"error_code\":");
        push_u64(out, code.into());
        out.extend_from_slice(b",\"error\":");
        push_json_str(out, h2_error_name(code));
    }
    if h2.undecoded_fields > 0 {
        out.extend_from_slice(b",\"undecoded_fields\":");
        push_u64(out, h2.undecoded_fields.into());
    }
    if h2.rapid_resets > 0 {
        out.extend_from_slice(b",\"rapid_resets\":");
        push_u64(out, h2.rapid_resets.into());
    }
    if let Some(g) = &h2.grpc {
        out.extend_from_slice(b",\"grpc\":{\"service\":");
        push_json_str(out, &g.service);
        out.extend_from_slice(b",\"method\":");
        push_json_str(out, &g.method);
        out.push(b'}');
    }
    if let Some(st) = h2.grpc_status {
        out.extend_from_slice(b",\"grpc_status\":");
        out.extend_from_slice(itoa::Buffer::new().format(st).as_bytes());
    }
    if let Some(m) = &h2.grpc_message {
        out.extend_from_slice(b",\"grpc_message\":");
        push_json_str(out, m);
    }
}

/// RFC 9113 §7 error code names (`error` next to `error_code`).
pub fn h2_error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "unknown",
    }
}

/// The JSON object of one record (without newline).
/// `"cgroup":…` and the unit, container and pod fields that apply, each
/// after a comma.
pub(crate) fn push_workload(out: &mut Vec<u8>, w: &crate::cgroup::Workload) {
    out.extend_from_slice(b",\"cgroup\":");
    push_json_str(out, &w.cgroup);
    for (name, v) in w.fields() {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        push_json_str(out, v);
    }
}

pub fn record_json(rec: &HttpRecord) -> String {
    let mut out = Vec::with_capacity(256 + rec.header_bytes);
    push_record_json(&mut out, rec);
    String::from_utf8(out).unwrap_or_default()
}

/// Keep a line a line: escape control characters of untrusted text.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// How much of a record the readable form shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// One line: the start line and every header (`| Name: value`): files
    /// of `format = "human"`, OTLP log bodies.
    #[default]
    Line,
    /// One line: the start line and the key headers ([`KEY_HEADERS`]), then
    /// how many more there are: the terminal's default.
    Compact,
    /// The start line, then every header on a line of its own, indented,
    /// as `curl -v` shows them (`-v`).
    Headers,
}

/// The headers a compact line keeps, in this order (case-insensitive).
pub const KEY_HEADERS: [&str; 6] = [
    "host",
    ":authority",
    "content-type",
    "content-length",
    "location",
    "user-agent",
];

/// How readable records are drawn: how much of each, and whether in
/// colour (ANSI: the status by class, dim headers, flags and alerts
/// highlighted). Text from the wire is escaped before any colour code is
/// added, so traffic can never draw on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    pub detail: Detail,
    pub color: bool,
}

/// ANSI SGR codes used by [`View::color`].
mod sgr {
    pub const RESET: &str = "\x1b[0m";
    pub const BOLD: &str = "\x1b[1m";
    pub const DIM: &str = "\x1b[2m";
    pub const RED: &str = "\x1b[31m";
    pub const GREEN: &str = "\x1b[32m";
    pub const YELLOW: &str = "\x1b[33m";
    pub const MAGENTA: &str = "\x1b[35m";
    pub const CYAN: &str = "\x1b[36m";
    pub const BOLD_RED: &str = "\x1b[1;31m";
}

impl View {
    /// `text` in `code` when in colour.
    fn paint(&self, out: &mut String, code: &str, text: &str) {
        if self.color {
            out.push_str(code);
            out.push_str(text);
            out.push_str(sgr::RESET);
        } else {
            out.push_str(text);
        }
    }

    /// Start colour `code` (no-op without colour); [`View::end`] ends it.
    fn begin(&self, out: &mut String, code: &str) {
        if self.color {
            out.push_str(code);
        }
    }

    fn end(&self, out: &mut String) {
        if self.color {
            out.push_str(sgr::RESET);
        }
    }
}

/// The colour of a status code: 2xx green, 3xx cyan, 4xx yellow, 5xx red.
fn status_color(status: u16) -> &'static str {
    match status {
        200..=299 => sgr::GREEN,
        300..=399 => sgr::CYAN,
        400..=499 => sgr::YELLOW,
        500..=599 => sgr::BOLD_RED,
        _ => sgr::MAGENTA,
    }
}

/// The readable line of one record (without newline), [`Detail::Line`]:
/// `TIME comm[pid] role SRC > DST: START-LINE [extras] | Name: value | ...`
/// SRC > DST is the direction the message travelled, as in tcpdump.
pub fn record_line(rec: &HttpRecord) -> String {
    record_text(rec, View::default())
}

/// The readable form of one record in `view` (no final newline; with
/// [`Detail::Headers`] one line per header after the first).
pub fn record_text(rec: &HttpRecord, view: View) -> String {
    let mut line = String::with_capacity(160 + rec.header_bytes);
    push_start(&mut line, rec, view);
    let header = |line: &mut String, i: usize, name: &str, value: &str| {
        let m = rec.headers.marks(i);
        if m & mark::NAME_UNKNOWN != 0 {
            line.push('?');
        } else {
            push_escaped(line, name);
        }
        line.push_str(": ");
        if m & mark::VALUE_UNKNOWN != 0 {
            line.push('?');
        } else {
            push_escaped(line, value);
        }
    };
    match view.detail {
        Detail::Line => {
            view.begin(&mut line, sgr::DIM);
            for (i, (name, value)) in rec.headers.iter().enumerate() {
                line.push_str(" | ");
                header(&mut line, i, name, value);
            }
            view.end(&mut line);
        }
        Detail::Compact => {
            view.begin(&mut line, sgr::DIM);
            let mut shown = 0;
            for key in KEY_HEADERS {
                for (i, (name, value)) in rec.headers.iter().enumerate() {
                    if name.eq_ignore_ascii_case(key) {
                        line.push_str(" | ");
                        header(&mut line, i, name, value);
                        shown += 1;
                    }
                }
            }
            match rec.headers.len() - shown {
                0 => {}
                1 => line.push_str(" | +1 header"),
                n => line.push_str(&format!(" | +{n} headers")),
            }
            view.end(&mut line);
        }
        Detail::Headers => {
            for (i, (name, value)) in rec.headers.iter().enumerate() {
                line.push_str("\n    ");
                view.begin(&mut line, sgr::DIM);
                header(&mut line, i, name, value);
                view.end(&mut line);
            }
        }
    }
    line
}

/// Everything of a readable record before its headers.
fn push_start(line: &mut String, rec: &HttpRecord, view: View) {
    let (src, dst) = if rec.sent_by_process() {
        (rec.local, rec.remote)
    } else {
        (rec.remote, rec.local)
    };
    let role = match rec.role {
        Role::Client => "client",
        Role::Server => "server",
    };
    line.push_str(&time_of_day(rec.ts_unix_ns));
    line.push(' ');
    // From packets: the interface, and a process only when one was known.
    if let Some(ifname) = &rec.interface {
        push_escaped(line, ifname);
        line.push(' ');
    }
    if rec.interface.is_none() || rec.process.pid != 0 {
        push_escaped(line, &rec.process.comm);
        line.push_str(&format!("[{}] ", rec.process.pid));
    }
    line.push_str(&format!("{role} {src} > {dst}: "));
    if rec.tls {
        line.push_str("TLS(");
        push_escaped(line, rec.tls_library.as_deref().unwrap_or("?"));
        line.push_str(") ");
    }
    // "HTTP/1.1", or "HTTP/2 stream N".
    let version = match rec.stream_id() {
        Some(id) => format!("{} stream {id}", rec.version),
        None => rec.version.to_string(),
    };
    let push_request = |line: &mut String| {
        if let Some(req) = &rec.request {
            push_escaped(line, &req.method);
            line.push(' ');
            push_escaped(line, &req.target);
        }
    };
    match rec.kind {
        HttpKind::Request => {
            view.begin(line, sgr::BOLD);
            push_escaped(line, rec.method.as_deref().unwrap_or("?"));
            view.end(line);
            line.push(' ');
            push_escaped(line, rec.target.as_deref().unwrap_or("?"));
            line.push(' ');
            line.push_str(&version);
        }
        HttpKind::Response => {
            line.push_str(&version);
            line.push(' ');
            let status = rec.status.unwrap_or(0);
            view.begin(line, status_color(status));
            line.push_str(itoa::Buffer::new().format(status));
            if let Some(r) = rec.reason.as_deref().filter(|r| !r.is_empty()) {
                line.push(' ');
                push_escaped(line, r);
            }
            view.end(line);
            if let Some(ns) = rec.latency_ns {
                line.push_str(&format!(" ({:.3} ms", ns as f64 / 1e6));
                if rec.request.is_some() {
                    line.push_str(", ");
                    push_request(line);
                }
                line.push(')');
            }
        }
        HttpKind::Trailers | HttpKind::Reset => {
            line.push_str(&version);
            if rec.kind == HttpKind::Trailers {
                line.push_str(" trailers");
            } else {
                line.push(' ');
                view.paint(line, sgr::MAGENTA, "RST_STREAM");
            }
            if rec.request.is_some() {
                line.push_str(" (");
                push_request(line);
                line.push(')');
            }
        }
    }
    if let Some(h2) = &rec.h2 {
        if let Some(code) = h2.error_code {
            line.push(' ');
            view.paint(line, sgr::MAGENTA, h2_error_name(code));
        }
        if let Some(g) = h2.grpc_status {
            let text = format!("grpc-status {g}");
            line.push(' ');
            view.paint(line, if g == 0 { sgr::GREEN } else { sgr::RED }, &text);
        }
    }
    if rec.truncated {
        line.push(' ');
        view.paint(line, sgr::MAGENTA, "[truncated]");
    }
    for f in &rec.flags {
        line.push(' ');
        view.begin(line, sgr::MAGENTA);
        line.push('[');
        line.push_str(f);
        line.push(']');
        view.end(line);
    }
}

/// Append the JSON object of one alert (no newline); docs/SCHEMA.md.
pub fn push_alert_json(out: &mut Vec<u8>, a: &crate::rules::Alert) {
    out.extend_from_slice(b"{\"kind\":\"alert\",\"id\":");
    push_u64(out, a.id);
    out.extend_from_slice(b",\"ts\":\"");
    push_rfc3339_ns(out, a.ts_unix_ns);
    out.extend_from_slice(b"\",\"rule\":");
    push_json_str(out, a.rule);
    out.extend_from_slice(b",\"severity\":");
    push_json_str(out, a.severity.name());
    out.extend_from_slice(b",\"record_id\":");
    push_u64(out, a.record_id);
    out.extend_from_slice(b",\"record_kind\":\"");
    out.extend_from_slice(a.record_kind.name().as_bytes());
    out.push(b'"');
    out.extend_from_slice(b",\"conn_id\":");
    push_u64(out, a.conn_id);
    out.extend_from_slice(b",\"pid\":");
    push_u64(out, a.pid.into());
    out.extend_from_slice(b",\"tid\":");
    push_u64(out, a.tid.into());
    out.extend_from_slice(b",\"comm\":");
    push_json_str(out, &a.comm);
    out.extend_from_slice(b",\"local\":");
    push_endpoint(out, &a.local);
    out.extend_from_slice(b",\"remote\":");
    push_endpoint(out, &a.remote);
    out.extend_from_slice(match a.role {
        Role::Client => b",\"role\":\"client\"".as_slice(),
        Role::Server => b",\"role\":\"server\"".as_slice(),
    });
    out.extend_from_slice(if a.tls {
        b",\"tls\":true".as_slice()
    } else {
        b",\"tls\":false".as_slice()
    });
    if let Some(m) = &a.method {
        out.extend_from_slice(b",\"method\":");
        push_json_str(out, m);
    }
    if let Some(t) = &a.target {
        out.extend_from_slice(b",\"target\":");
        push_json_str(out, t);
    }
    out.extend_from_slice(b",\"detail\":");
    push_json_str(out, &a.detail);
    out.push(b'}');
}

/// The readable line of one alert (without newline):
/// `TIME ALERT severity rule comm[pid] role SRC > DST: detail (record #id)`.
pub fn alert_line(a: &crate::rules::Alert) -> String {
    alert_text(a, View::default())
}

/// [`alert_line`] in `view` (in colour: `ALERT`, the severity and the rule
/// stand out).
pub fn alert_text(a: &crate::rules::Alert, view: View) -> String {
    let sent_by_process = matches!(
        (a.record_kind, a.role),
        (HttpKind::Request, Role::Client) | (HttpKind::Response, Role::Server)
    );
    let (src, dst) = if sent_by_process {
        (a.local, a.remote)
    } else {
        (a.remote, a.local)
    };
    let role = match a.role {
        Role::Client => "client",
        Role::Server => "server",
    };
    let mut line = String::with_capacity(160 + a.detail.len());
    line.push_str(&time_of_day(a.ts_unix_ns));
    line.push(' ');
    view.begin(&mut line, sgr::BOLD_RED);
    line.push_str("ALERT ");
    line.push_str(a.severity.name());
    line.push(' ');
    line.push_str(a.rule);
    view.end(&mut line);
    line.push(' ');
    push_escaped(&mut line, &a.comm);
    line.push_str(&format!("[{}] {role} {src} > {dst}: ", a.pid));
    push_escaped(&mut line, &a.detail);
    line.push_str(&format!(" (record #{})", a.record_id));
    line
}

impl OutputRecord for crate::rules::Alert {
    fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        push_alert_json(&mut out, self);
        String::from_utf8(out).unwrap_or_default()
    }
    fn to_line(&self) -> String {
        alert_line(self)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        push_alert_json(out, self);
    }
}

/// A record the [`Writer`] can write: HTTP messages, packets, ...
pub trait OutputRecord {
    /// The NDJSON object (one line, no newline).
    fn to_json(&self) -> String;
    /// The readable line (no newline).
    fn to_line(&self) -> String;
    /// Append the NDJSON object to `out`; override to skip the String.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_json().as_bytes());
    }
    /// Append the readable line to `out`.
    fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_line().as_bytes());
    }
}

impl OutputRecord for HttpRecord {
    fn to_json(&self) -> String {
        record_json(self)
    }
    fn to_line(&self) -> String {
        record_line(self)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        push_record_json(out, self);
    }
}

/// Write `data` (whole lines) to `w`, retrying short writes. Returns how
/// many leading bytes of `data` are whole lines written, and the error that
/// stopped the write, if any: the caller then cuts its file back to those
/// bytes ([`cut_back`]), so a file never holds a partial line (a full disk
/// otherwise leaves one that the next records are appended to). Shared by
/// [`Writer`] and the file sink.
pub(crate) fn write_lines(w: &mut impl Write, data: &[u8]) -> (usize, io::Result<()>) {
    let (done, res) = write_prefix(w, data);
    let whole = match res {
        Ok(()) => done,
        Err(_) => data
            .get(..done)
            .and_then(|w| w.iter().rposition(|&b| b == b'\n'))
            .map_or(0, |i| i + 1),
    };
    (whole, res)
}

/// Write `data` to `w`, retrying short writes: how many bytes went out,
/// and the error that stopped the rest.
fn write_prefix(w: &mut (impl Write + ?Sized), data: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    let res = loop {
        match data.get(done..) {
            None | Some([]) => break Ok(()),
            Some(rest) => match w.write(rest) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            },
        }
    };
    (done, res)
}

/// Cut `file` back to `len` bytes (after [`write_lines`] failed part-way).
pub(crate) fn cut_back(file: &std::fs::File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// A record writer to stdout or a file. Lines are assembled in one buffer
/// and handed to the kernel in large writes; a line is never split between
/// two of them.
pub struct Writer {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    format: Format,
    /// How readable lines are drawn.
    view: View,
    /// Write out after every record (stdout on a terminal).
    line_buffered: bool,
    /// A file output: a write that fails part-way (disk full) is cut back to
    /// the last whole line, so the file never holds a partial line.
    file: Option<std::fs::File>,
    /// Bytes of the output that are whole lines (file outputs).
    committed: u64,
    /// Lines lost by failed writes and not yet reported ([`Writer::take_dropped`]).
    dropped: u64,
    /// Writing pcapng blocks instead of lines ([`Writer::pcapng`]).
    pcap: Option<Box<PcapOut>>,
    /// A new file every so many bytes ([`Writer::rotate`]).
    rotation: Option<Box<Rotation>>,
    /// What records repeat, made at the first HTTP or packet record.
    memo: Option<Box<JsonMemo>>,
}

/// Where a rotating file output is ([`Writer::rotate`]).
#[derive(Debug)]
struct Rotation {
    base: std::path::PathBuf,
    limit: u64,
    count: Option<u32>,
    /// The file being written, as numbered by [`rotated_name`].
    index: u32,
}

/// A pcapng [`Writer`]'s state: the encoder, and where each block in the
/// buffer ends, since binary blocks have no newline to cut at.
#[derive(Debug)]
struct PcapOut {
    enc: crate::pcapng::Encoder,
    /// Per buffered block: its end in `buf`, the interface blocks encoded
    /// up to it, and whether it is a packet (a record, counted if lost).
    ends: Vec<(usize, usize, bool)>,
    /// Interface blocks already in the output.
    committed_ifaces: usize,
    /// The section header is in the output.
    header_out: bool,
}

/// Bytes gathered before a write.
const WRITE_CHUNK: usize = 256 * 1024;

/// The name of file `index` of a rotation on `base`, as tcpdump names
/// them: without a count, `base`, `base1`, `base2`, ...; with a count of N,
/// `base0` … `base{N-1}`, zero-padded to the width of N-1.
pub fn rotated_name(base: &Path, index: u32, count: Option<u32>) -> std::path::PathBuf {
    let mut name = base.as_os_str().to_os_string();
    match count {
        Some(n) => {
            let width = n.saturating_sub(1).max(1).to_string().len();
            name.push(format!("{index:0width$}"));
        }
        None if index == 0 => {}
        None => name.push(index.to_string()),
    }
    name.into()
}

/// Open `path` for writing as every output file is: created with mode 0600
/// (records may hold secrets if redaction is off) and truncated, a symbolic
/// link refused, an existing file set to 0600. Returns the file and a
/// second handle (to cut a failed write back).
fn open_output_file(path: &Path) -> io::Result<(std::fs::File, std::fs::File)> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                io::Error::other("it is a symbolic link, which hdrtap does not follow")
            } else {
                e
            }
        })?;
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let handle = f.try_clone()?;
    Ok((f, handle))
}

impl Writer {
    /// Write to standard output.
    pub fn stdout(format: Format, line_buffered: bool) -> Self {
        Writer::new(Box::new(io::stdout()), format, line_buffered)
    }

    /// Write to `path`, created with mode 0600 (records may hold secrets if
    /// redaction is off) and truncated, like `tcpdump -w`.
    /// A symbolic link is refused (O_NOFOLLOW: the records must not land
    /// wherever the link points), and an existing file is set to 0600 too.
    pub fn file(path: &Path, format: Format) -> io::Result<Self> {
        let (f, handle) = open_output_file(path)?;
        let mut w = Writer::new(Box::new(f), format, false);
        w.file = Some(handle);
        Ok(w)
    }

    /// With [`Writer::pcapng`] on a file: once the file holds more than
    /// `limit` bytes, the next packet starts a new file (tcpdump's `-C`),
    /// named by [`rotated_name`] from `base`; with `count`, after `count`
    /// files the first is written over again (`-W`). The writer must have
    /// been opened on `rotated_name(base, 0, count)`.
    pub fn rotate(mut self, base: &Path, limit: u64, count: Option<u32>) -> Self {
        self.rotation = Some(Box::new(Rotation {
            base: base.to_path_buf(),
            limit,
            count,
            index: 0,
        }));
        self
    }

    /// Close the current file and open the next of the rotation, starting
    /// a new pcapng section in it.
    fn rotate_now(&mut self) -> io::Result<()> {
        self.flush()?;
        let Some(r) = &mut self.rotation else {
            return Ok(());
        };
        r.index = match r.count {
            Some(n) => (r.index + 1) % n.max(1),
            None => r.index + 1,
        };
        let path = rotated_name(&r.base, r.index, r.count);
        let (f, handle) = open_output_file(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        self.out = Box::new(f);
        self.file = Some(handle);
        self.committed = 0;
        if let Some(p) = &mut self.pcap {
            let snaplen = p.enc.snaplen();
            **p = PcapOut::new(snaplen, &mut self.buf);
        }
        Ok(())
    }
    /// Write to any sink.
    pub fn new(out: Box<dyn Write + Send>, format: Format, line_buffered: bool) -> Self {
        Writer {
            out,
            buf: Vec::with_capacity(WRITE_CHUNK + 64 * 1024),
            format,
            view: View::default(),
            line_buffered,
            file: None,
            committed: 0,
            dropped: 0,
            pcap: None,
            rotation: None,
            memo: None,
        }
    }

    /// Write packets as pcapng to `out` (a file from [`Writer::file`] or
    /// stdout) instead of lines: packet records become blocks, other
    /// records are skipped. `snaplen` goes in each interface's block; the
    /// records must keep their bytes ([`crate::pipeline::PacketPipeline::keep_frames`]).
    pub fn pcapng(mut self, snaplen: u32) -> Self {
        self.pcap = Some(Box::new(PcapOut::new(snaplen, &mut self.buf)));
        self
    }

    /// The format in use.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Draw readable records in `view` (default: [`Detail::Line`], no colour).
    pub fn with_view(mut self, view: View) -> Self {
        self.view = view;
        self
    }

    /// Write one record of any kind as one line (stats records only in
    /// JSON format).
    pub fn write(&mut self, rec: &crate::sink::Record) -> io::Result<()> {
        if self.pcap.is_some() {
            return self.write_packet(rec);
        }
        let written = match self.format {
            Format::Json => rec.write_memo(Format::Json, &mut self.buf, &mut self.memo),
            Format::Human => rec.write_view(self.view, &mut self.buf),
        };
        if !written {
            return Ok(());
        }
        if self.line_buffered || self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// [`Writer::write`] in pcapng: a packet record becomes its blocks (in
    /// the next file of a rotation if this one is full), others nothing.
    fn write_packet(&mut self, rec: &crate::sink::Record) -> io::Result<()> {
        let crate::sink::Record::Packet(pkt) = rec else {
            return Ok(());
        };
        let full = self
            .rotation
            .as_ref()
            .is_some_and(|r| self.committed + self.buf.len() as u64 > r.limit);
        if full {
            self.rotate_now()?;
        }
        let Some(p) = &mut self.pcap else {
            return Ok(());
        };
        if !p.enc.packet(pkt) {
            return Ok(());
        }
        p.enc.take(&mut self.buf);
        p.ends.push((self.buf.len(), p.enc.interfaces(), true));
        if self.line_buffered || self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Write one line as given (no newline in it), e.g. an NDJSON line read
    /// back and kept as it was.
    pub fn write_raw_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        if self.line_buffered || self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Hand every buffered line to the kernel. On error the lines not
    /// written whole are dropped and counted ([`Writer::take_dropped`]); a
    /// file is cut back to its last whole line (a full disk used to leave a
    /// partial line that the next records were appended to).
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let (whole, res) = match &mut self.pcap {
                Some(p) => p.write(&mut self.out, &self.buf, &mut self.dropped),
                None => {
                    let (whole, res) = write_lines(&mut self.out, &self.buf);
                    let lost = self
                        .buf
                        .get(whole..)
                        .map_or(0, |r| r.iter().filter(|&&b| b == b'\n').count());
                    self.dropped += lost as u64;
                    (whole, res)
                }
            };
            if res.is_err() {
                if let Some(f) = &mut self.file {
                    use std::io::Seek;
                    let keep = self.committed + whole as u64;
                    let cut = cut_back(f, keep)
                        .and_then(|()| f.seek(io::SeekFrom::Start(keep)).map(|_| ()));
                    if let Err(e) = cut {
                        tracing::warn!("cannot cut a partial line from the output file: {e}");
                    }
                }
            }
            self.committed += whole as u64;
            self.buf.clear();
            if let Some(p) = &mut self.pcap {
                p.refill(&mut self.buf);
            }
            res?;
        }
        self.out.flush()
    }

    /// Lines lost to failed writes since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

impl PcapOut {
    /// A new section: its header goes into `buf` (empty: a new file).
    fn new(snaplen: u32, buf: &mut Vec<u8>) -> Self {
        let mut enc = crate::pcapng::Encoder::new(snaplen);
        enc.take(buf);
        PcapOut {
            enc,
            ends: vec![(buf.len(), 0, false)],
            committed_ifaces: 0,
            header_out: false,
        }
    }

    /// Write the buffered blocks; on an error, the blocks not written whole
    /// are lost (packets among them counted in `dropped`) and the encoder
    /// writes again the interface blocks (or section header) among them.
    /// Returns the bytes of whole blocks written, as [`write_lines`] does.
    fn write(
        &mut self,
        out: &mut dyn Write,
        buf: &[u8],
        dropped: &mut u64,
    ) -> (usize, io::Result<()>) {
        let (done, res) = write_prefix(out, buf);
        let kept = self.ends.iter().filter(|e| e.0 <= done).count();
        let (whole, ifaces) = match kept.checked_sub(1).and_then(|i| self.ends.get(i)) {
            Some(&(end, ifaces, _)) => (end, ifaces),
            None => (0, self.committed_ifaces),
        };
        if res.is_err() {
            *dropped += self.ends[kept..].iter().filter(|e| e.2).count() as u64;
            // A lost section header is encoded again ([`PcapOut::refill`]).
            self.enc.rewind(ifaces, !self.header_out && whole == 0);
        }
        self.header_out |= whole > 0;
        self.committed_ifaces = ifaces;
        self.ends.clear();
        (whole, res)
    }

    /// After a flush emptied `buf`: put back what must precede the next
    /// blocks (a section header lost to a failed write).
    fn refill(&mut self, buf: &mut Vec<u8>) {
        self.enc.take(buf);
        if !buf.is_empty() {
            self.ends.push((buf.len(), 0, false));
        }
    }
}

#[cfg(test)]
mod tests {

    /// A writer onto a disk with `.0` bytes left (then ENOSPC), keeping
    /// what was written in `.1`.
    struct Full(usize, std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            self.1.lock().unwrap().extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `-o`: a symbolic link is refused, whatever it points to; an existing
    /// file is truncated and made 0600.
    #[test]
    fn output_files_refuse_symlinks_and_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hdrtap-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Writer::file(&link, Format::Json)
            .err()
            .expect("a symlink was opened");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Writer::file(&target, Format::Json).unwrap());
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 0, "truncated");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// tcpdump's names for rotated files.
    #[test]
    fn rotated_names_are_tcpdumps() {
        let b = Path::new("/tmp/cap");
        let names = |count| {
            [0, 1, 2, 10]
                .map(|i| rotated_name(b, i, count).display().to_string())
                .to_vec()
        };
        assert_eq!(
            names(None),
            ["/tmp/cap", "/tmp/cap1", "/tmp/cap2", "/tmp/cap10"]
        );
        assert_eq!(
            names(Some(3)),
            ["/tmp/cap0", "/tmp/cap1", "/tmp/cap2", "/tmp/cap10"]
        );
        assert_eq!(
            rotated_name(b, 7, Some(12)).display().to_string(),
            "/tmp/cap07"
        );
    }

    /// pcapng with rotation: a new file once one holds more than the limit,
    /// each a whole capture (its own section and interface blocks), 0600,
    /// and with a count the first file written over again.
    #[test]
    fn pcapng_rotation_starts_whole_files_and_wraps() {
        use std::os::unix::fs::PermissionsExt;
        let rec = |n: u8| {
            crate::sink::Record::Packet(std::sync::Arc::new(crate::pcapng::test_packet(1, "lo", n)))
        };
        let dir = std::env::temp_dir().join(format!("hdrtap-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("cap");
        let mut w = Writer::file(&rotated_name(&base, 0, Some(3)), Format::Json)
            .unwrap()
            .pcapng(128)
            .rotate(&base, 400, Some(3));
        for n in 0..20 {
            w.write(&rec(n)).unwrap();
            // As the capture loop does after each batch.
            w.flush().unwrap();
        }
        w.flush().unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["cap0", "cap1", "cap2"]);
        let mut firsts = Vec::new();
        for f in &files {
            let path = dir.join(f);
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            let bytes = std::fs::read(&path).unwrap();
            let mut rd = pcap_file::pcapng::PcapNgReader::new(bytes.as_slice()).unwrap();
            let mut packets = Vec::new();
            while let Some(b) = rd.next_block() {
                if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.unwrap() {
                    assert_eq!(p.interface_id, 0);
                    packets.push(p.data[0]);
                }
            }
            assert!(!packets.is_empty(), "{f} holds no packet");
            // Over the limit by at most the packet that crossed it.
            assert!(meta.len() < 400 + 200, "{f}: {} bytes", meta.len());
            firsts.push(packets[0]);
        }
        // 20 packets of about 100 bytes, 3-4 a file: the files wrapped (no
        // file starts with packet 0), and the last packet was kept.
        assert!(
            files.iter().any(|f| {
                let b = std::fs::read(dir.join(f)).unwrap();
                b.windows(60).any(|w| w.iter().all(|&x| x == 19))
            }),
            "the last packet is in no file"
        );
        assert!(
            firsts.iter().all(|&n| n > 0),
            "the first file was not written over: {firsts:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// pcapng on a "full disk": blocks are never split, the packets lost
    /// are counted, and the interface block lost with them is written again
    /// before the next packet on that interface.
    #[test]
    fn pcapng_writes_whole_blocks_and_rewrites_lost_interfaces() {
        let rec = crate::sink::Record::Packet(std::sync::Arc::new(crate::pcapng::test_packet(
            1, "lo", 7,
        )));
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Room for the section header and a few bytes more: the interface
        // block and both packets are lost.
        let mut w =
            Writer::new(Box::new(Full(usize::MAX, got.clone())), Format::Json, false).pcapng(128);
        let shb_len = w.buf.len();
        w.out = Box::new(Full(shb_len + 10, got.clone()));
        w.write(&rec).unwrap();
        w.write(&rec).unwrap();
        assert!(w.flush().is_err());
        assert_eq!(w.take_dropped(), 2);
        assert_eq!(got.lock().unwrap().len(), shb_len + 10);
        // Room again: the interface block comes back before the packet.
        w.out = Box::new(Full(usize::MAX, got.clone()));
        w.write(&rec).unwrap();
        let pending = w.buf.clone();
        w.flush().unwrap();
        assert_eq!(
            u32::from_ne_bytes(pending[..4].try_into().unwrap()),
            1,
            "an IDB first"
        );
        assert_eq!(w.take_dropped(), 0);
    }

    /// Regression (tests/fault_sink.rs): a write that fails part-way (disk
    /// full) counts every line not written whole; a file is cut back to its
    /// last whole line and later lines follow it cleanly.
    #[test]
    fn failed_writes_count_lost_lines_and_leave_no_partial_line() {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut w = Writer::new(Box::new(Full(25, got.clone())), Format::Json, false);
        for s in ["0123456789", "abcdefghij", "ABCDEFGHIJ"] {
            w.buf.extend_from_slice(s.as_bytes());
            w.buf.push(b'\n');
        }
        assert!(w.flush().is_err());
        // 22 bytes = two whole lines were written, 3 of the third: lost.
        assert_eq!(w.take_dropped(), 1);
        assert_eq!(w.take_dropped(), 0);
        assert_eq!(got.lock().unwrap().len(), 25);

        // A real file on a "full disk": cut back to the whole lines.
        let dir = std::env::temp_dir().join(format!("hdrtap-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let mut w = Writer::file(&path, Format::Json).unwrap();
        w.buf.extend_from_slice(b"line one\nline two\n");
        w.flush().unwrap();
        // A partial line in the file (as a short write leaves it), then a
        // failing flush: the file is cut back to its whole lines.
        if let Some(f) = &mut w.file {
            use std::io::Write as _;
            f.write_all(b"half a li").unwrap();
        }
        w.buf.extend_from_slice(b"x\n");
        w.out = Box::new(Full(0, got.clone()));
        w.dropped = 0;
        assert!(w.flush().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"line one\nline two\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
    use super::*;
    use crate::record::*;
    use std::net::IpAddr;

    fn resp() -> HttpRecord {
        HttpRecord {
            kind: HttpKind::Response,
            id: 42,
            ts_unix_ns: 1_700_000_000_123_456_789,
            conn_id: 5,
            sock_cookie: 0,
            process: Process {
                pid: 10,
                tid: 11,
                comm: "nginx".into(),
                cgroup_id: 3,
                workload: None,
            },
            local: Endpoint {
                ip: "::1".parse::<IpAddr>().unwrap(),
                port: 8080,
            },
            remote: Endpoint {
                ip: "::1".parse::<IpAddr>().unwrap(),
                port: 50000,
            },
            role: Role::Server,
            version: "HTTP/1.1",
            method: None,
            target: None,
            status: Some(404),
            reason: Some("Not Found".into()),
            latency_ns: Some(1_500_000),
            request: Some(RequestRef {
                method: "GET".into(),
                target: "/x".into(),
                host: Some("example".into()),
            }),
            headers: [("Server", "nginx"), ("X-Evil", "a\nb")]
                .into_iter()
                .collect(),
            header_bytes: 60,
            truncated: false,
            tls: false,
            tls_library: None,
            flags: vec![],
            anomalies: 0,
            framing: Default::default(),
            h2: None,
            tcp_seq: None,
            packets: None,
            interface: None,
        }
    }

    #[test]
    fn id_comes_right_after_kind_and_anomalies_are_named() {
        let mut r = resp();
        let json = record_json(&r);
        assert!(
            json.starts_with(r#"{"kind":"http_response","id":42,"ts":""#),
            "{json}"
        );
        assert!(!json.contains("anomalies"), "{json}");
        assert!(
            !json.contains("host"),
            "the request's host is not in the JSON: {json}"
        );
        r.anomalies = crate::record::anomaly::OBS_FOLD | crate::record::anomaly::CTL_IN_VALUE;
        let v: serde_json::Value = serde_json::from_str(&record_json(&r)).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(
            v["anomalies"],
            serde_json::json!(["obs_fold", "ctl_in_value"])
        );
    }

    #[test]
    fn tls_records_name_their_library() {
        let mut r = resp();
        let v: serde_json::Value = serde_json::from_str(&record_json(&r)).unwrap();
        assert_eq!(v["tls"], false);
        assert!(
            v.get("tls_library").is_none(),
            "plaintext records carry no tls_library"
        );
        r.tls = true;
        r.tls_library = Some("libssl.so.3".into());
        let json = record_json(&r);
        assert!(
            json.contains(r#""tls":true,"tls_library":"libssl.so.3","version""#),
            "{json}"
        );
        let line = record_line(&r);
        assert!(line.contains(": TLS(libssl.so.3) HTTP/1.1 404"), "{line}");
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&record_json(&resp())).unwrap();
        assert_eq!(v["kind"], "http_response");
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(v["pid"], 10);
        assert_eq!(v["tid"], 11);
        assert_eq!(v["comm"], "nginx");
        assert_eq!(v["cgroup_id"], 3);
        assert_eq!(v["local"]["ip"], "::1");
        assert_eq!(v["local"]["port"], 8080);
        assert_eq!(v["role"], "server");
        assert_eq!(v["status"], 404);
        assert_eq!(v["reason"], "Not Found");
        assert_eq!(v["latency_ns"], 1_500_000);
        assert_eq!(v["request"]["target"], "/x");
        assert_eq!(v["headers"][0][0], "Server");
        assert_eq!(v["headers"][1][1], "a\nb");
        assert_eq!(v["truncated"], false);
        assert!(v.get("method").is_none());
        assert!(v.get("flags").is_none());
    }

    #[test]
    fn numbers_are_written_like_display_at_every_length() {
        let mut cases = vec![0, 1, 9, 10, 99, 100, 101, 999, u64::MAX, u64::MAX - 1];
        for p in 1..20 {
            let ten = 10u64.pow(p);
            cases.extend([ten - 1, ten, ten + 1, ten + ten / 2 + 7]);
        }
        for n in cases {
            let mut out = b"x".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes(), "{n}");
        }
    }

    #[test]
    fn ipv4_addresses_are_written_like_display_for_every_octet() {
        for v in 0..=255u8 {
            for octets in [[v, 0, 255, v], [0, v, 9, 10], [v, v, v, v]] {
                let mut out = b"x".to_vec();
                push_ipv4(&mut out, octets);
                let want = format!("x{}", std::net::Ipv4Addr::from(octets));
                assert_eq!(out, want.into_bytes(), "{octets:?}");
            }
        }
    }

    #[test]
    fn escape_check_is_exact_at_every_position() {
        for len in 0..20 {
            assert!(!needs_escape(&vec![b'a'; len]), "clean string of {len}");
            for pos in 0..len {
                for b in 0u8..=255 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let naive = v.iter().any(|&x| x < 0x20 || x == b'"' || x == b'\\');
                    assert_eq!(needs_escape(&v), naive, "byte {b:#x} at {pos} of {len}");
                }
            }
        }
    }

    #[test]
    fn json_escapes_exactly_like_serde_json() {
        let long = "x".repeat(40);
        for s in [
            "plain",
            "",
            "quote\"in",
            "back\\slash",
            "tab\there",
            "nul\0",
            "\u{7f}del",
            "é ünïcode ✓",
            &format!("{long}\"{long}"),
            &format!("{long}{long}\n"),
            &long,
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn ipv4_endpoints_and_timestamps() {
        let mut r = resp();
        r.local = Endpoint {
            ip: "10.0.255.1".parse().unwrap(),
            port: 80,
        };
        r.ts_unix_ns = 1_000_000_000 * 86_400 + 7; // 1970-01-02, 7 ns
        let v: serde_json::Value = serde_json::from_str(&record_json(&r)).unwrap();
        assert_eq!(v["local"]["ip"], "10.0.255.1");
        assert_eq!(v["ts"], "1970-01-02T00:00:00.000000007Z");
        assert_eq!(
            rfc3339_ns(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20.000000000Z"
        );
    }

    #[test]
    fn unpaired_response_has_null_request() {
        let mut r = resp();
        r.request = None;
        r.latency_ns = None;
        r.flags.push(flag::UNPAIRED);
        let v: serde_json::Value = serde_json::from_str(&record_json(&r)).unwrap();
        assert!(v["request"].is_null() && v.get("request").is_some());
        assert!(v["latency_ns"].is_null() && v.get("latency_ns").is_some());
        assert_eq!(v["flags"][0], "unpaired");
    }

    /// Compact: the key headers and how many more; -v: one header per
    /// line, indented; colour only when asked, and never from the wire.
    #[test]
    fn views_show_what_they_promise() {
        let mut r = resp();
        r.headers = [
            ("Server", "nginx"),
            ("Content-Type", "text/html"),
            ("X-Evil", "\x1b[31mred"),
            ("content-length", "5"),
        ]
        .into_iter()
        .collect();
        let compact = record_text(
            &r,
            View {
                detail: Detail::Compact,
                color: false,
            },
        );
        assert!(
            compact.ends_with("| Content-Type: text/html | content-length: 5 | +2 headers"),
            "{compact}"
        );
        assert!(
            !compact.contains("Server") && !compact.contains('\n'),
            "{compact}"
        );
        let full = record_text(
            &r,
            View {
                detail: Detail::Headers,
                color: false,
            },
        );
        let lines: Vec<&str> = full.lines().collect();
        assert_eq!(lines.len(), 5, "{full}");
        assert_eq!(lines[1], "    Server: nginx");
        assert_eq!(lines[3], "    X-Evil: \\x1b[31mred");
        assert!(
            lines[0].ends_with("404 Not Found (1.500 ms, GET /x)"),
            "{full}"
        );
        // Colour: the status by class, headers dim; the wire's ESC stays escaped.
        let colored = record_text(
            &r,
            View {
                detail: Detail::Line,
                color: true,
            },
        );
        assert!(
            colored.contains("\x1b[33m404 Not Found\x1b[0m"),
            "{colored:?}"
        );
        assert!(colored.contains("\x1b[2m | Server: nginx"), "{colored:?}");
        assert_eq!(colored.matches('\x1b').count(), 4, "{colored:?}");
        assert!(!record_line(&r).contains('\x1b'));
        for (status, code) in [(200, "32"), (302, "36"), (503, "1;31")] {
            r.status = Some(status);
            let t = record_text(
                &r,
                View {
                    detail: Detail::Line,
                    color: true,
                },
            );
            assert!(t.contains(&format!("\x1b[{code}m{status}")), "{t:?}");
        }
    }

    #[test]
    fn human_line_is_one_line_with_direction() {
        let line = record_line(&resp());
        assert!(!line.contains('\n'));
        assert!(line.contains("nginx[10] server [::1]:8080 > [::1]:50000: HTTP/1.1 404 Not Found (1.500 ms, GET /x)"), "{line}");
        assert!(line.contains("| X-Evil: a\\nb"), "{line}");
    }
}

//! The records hdrtap emits. One [`HttpRecord`] per HTTP message; the JSON
//! shape is documented in docs/SCHEMA.md and produced by `output::json`.
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

pub use crate::headers::Headers;

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
    pub method: String,
    pub target: String,
}

/// Who moved the bytes: the process and thread whose syscall carried the
/// first byte of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
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
}

/// One HTTP/1.x request or response: start line and every header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRecord {
    pub kind: HttpKind,
    /// Wall-clock time of the syscall that carried the first byte,
    /// nanoseconds since the Unix epoch.
    pub ts_unix_ns: u64,
    /// Kernel connection id: equal on every record of one connection.
    pub conn_id: u64,
    pub process: Process,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub role: Role,
    /// "HTTP/1.0" or "HTTP/1.1".
    pub version: String,
    /// Requests: method and request-target as sent.
    pub method: Option<String>,
    pub target: Option<String>,
    /// Responses: status code and reason phrase.
    pub status: Option<u16>,
    pub reason: Option<String>,
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

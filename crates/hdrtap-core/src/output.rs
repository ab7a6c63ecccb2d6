//! Writing records: one readable line per message, or NDJSON (docs/SCHEMA.md).
//!
//! The writer never panics on I/O: errors are returned to the caller, which
//! counts them (and stops on a closed pipe).
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, Local, SecondsFormat, Utc};
use serde::Serialize;

use crate::record::{Endpoint, HttpKind, HttpRecord, RequestRef, Role};
use crate::stats::Stats;

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
    let secs = (unix_ns / 1_000_000_000) as i64;
    let nanos = (unix_ns % 1_000_000_000) as u32;
    match DateTime::<Utc>::from_timestamp(secs, nanos) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        None => "1970-01-01T00:00:00.000000000Z".to_string(),
    }
}

/// Local wall-clock time of day with microseconds, like tcpdump.
fn time_of_day(unix_ns: u64) -> String {
    let secs = (unix_ns / 1_000_000_000) as i64;
    let nanos = (unix_ns % 1_000_000_000) as u32;
    match DateTime::<Utc>::from_timestamp(secs, nanos) {
        Some(t) => t.with_timezone(&Local).format("%H:%M:%S%.6f").to_string(),
        None => "??:??:??.??????".to_string(),
    }
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    kind: HttpKind,
    ts: String,
    conn_id: u64,
    pid: u32,
    tid: u32,
    comm: &'a str,
    cgroup_id: u64,
    local: Endpoint,
    remote: Endpoint,
    role: Role,
    tls: bool,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// Present on responses; null when unpaired.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ns: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Option<&'a RequestRef>>,
    headers: &'a [(String, String)],
    header_bytes: usize,
    truncated: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    flags: &'a [&'static str],
}

/// The JSON object of one record (without newline).
pub fn record_json(rec: &HttpRecord) -> String {
    let is_resp = rec.kind == HttpKind::Response;
    let j = JsonRecord {
        kind: rec.kind,
        ts: rfc3339_ns(rec.ts_unix_ns),
        conn_id: rec.conn_id,
        pid: rec.process.pid,
        tid: rec.process.tid,
        comm: &rec.process.comm,
        cgroup_id: rec.process.cgroup_id,
        local: rec.local,
        remote: rec.remote,
        role: rec.role,
        tls: rec.tls,
        version: &rec.version,
        method: rec.method.as_deref(),
        target: rec.target.as_deref(),
        status: rec.status,
        reason: rec.reason.as_deref(),
        latency_ns: is_resp.then_some(rec.latency_ns),
        request: is_resp.then_some(rec.request.as_ref()),
        headers: &rec.headers,
        header_bytes: rec.header_bytes,
        truncated: rec.truncated,
        flags: &rec.flags,
    };
    // Serializing plain data to a String cannot fail.
    serde_json::to_string(&j).unwrap_or_default()
}

/// Keep a line a line: escape control characters of untrusted text.
fn push_escaped(out: &mut String, s: &str) {
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

/// The readable line of one record (without newline):
/// `TIME comm[pid] role SRC > DST: START-LINE [extras] | Name: value | ...`
/// SRC > DST is the direction the message travelled, as in tcpdump.
pub fn record_line(rec: &HttpRecord) -> String {
    let sent_by_process = matches!(
        (rec.kind, rec.role),
        (HttpKind::Request, Role::Client) | (HttpKind::Response, Role::Server)
    );
    let (src, dst) = if sent_by_process { (rec.local, rec.remote) } else { (rec.remote, rec.local) };
    let role = match rec.role {
        Role::Client => "client",
        Role::Server => "server",
    };
    let mut line = String::with_capacity(160 + rec.header_bytes);
    line.push_str(&time_of_day(rec.ts_unix_ns));
    line.push(' ');
    push_escaped(&mut line, &rec.process.comm);
    line.push_str(&format!("[{}] {role} {src} > {dst}: ", rec.process.pid));
    if rec.tls {
        line.push_str("TLS ");
    }
    match rec.kind {
        HttpKind::Request => {
            push_escaped(&mut line, rec.method.as_deref().unwrap_or("?"));
            line.push(' ');
            push_escaped(&mut line, rec.target.as_deref().unwrap_or("?"));
            line.push(' ');
            line.push_str(&rec.version);
        }
        HttpKind::Response => {
            line.push_str(&rec.version);
            line.push_str(&format!(" {} ", rec.status.unwrap_or(0)));
            push_escaped(&mut line, rec.reason.as_deref().unwrap_or(""));
            if let Some(ns) = rec.latency_ns {
                line.push_str(&format!(" ({:.3} ms", ns as f64 / 1e6));
                if let Some(req) = &rec.request {
                    line.push_str(", ");
                    push_escaped(&mut line, &req.method);
                    line.push(' ');
                    push_escaped(&mut line, &req.target);
                }
                line.push(')');
            }
        }
    }
    if rec.truncated {
        line.push_str(" [truncated]");
    }
    for f in &rec.flags {
        line.push_str(" [");
        line.push_str(f);
        line.push(']');
    }
    for (name, value) in &rec.headers {
        line.push_str(" | ");
        push_escaped(&mut line, name);
        line.push_str(": ");
        push_escaped(&mut line, value);
    }
    line
}

/// A buffered record writer to stdout or a file.
pub struct Writer {
    out: BufWriter<Box<dyn Write + Send>>,
    format: Format,
    /// Flush after every record (stdout on a terminal).
    line_buffered: bool,
}

impl Writer {
    /// Write to standard output.
    pub fn stdout(format: Format, line_buffered: bool) -> Self {
        Writer {
            out: BufWriter::with_capacity(64 * 1024, Box::new(io::stdout())),
            format,
            line_buffered,
        }
    }

    /// Write to `path`, created with mode 0600 (records may hold secrets if
    /// redaction is off) and truncated, like `tcpdump -w`.
    pub fn file(path: &Path, format: Format) -> io::Result<Self> {
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        Ok(Writer {
            out: BufWriter::with_capacity(256 * 1024, Box::new(f)),
            format,
            line_buffered: false,
        })
    }

    /// The format in use.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Write one record as one line.
    pub fn record(&mut self, rec: &HttpRecord) -> io::Result<()> {
        let mut line = match self.format {
            Format::Json => record_json(rec),
            Format::Human => record_line(rec),
        };
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        if self.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Write a `{"kind":"stats"}` line (JSON format only; a no-op otherwise).
    pub fn stats(&mut self, stats: &Stats, now_unix_ns: u64) -> io::Result<()> {
        if self.format != Format::Json {
            return Ok(());
        }
        let mut line = stats.to_json(now_unix_ns);
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    /// Flush buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use std::net::IpAddr;

    fn resp() -> HttpRecord {
        HttpRecord {
            kind: HttpKind::Response,
            ts_unix_ns: 1_700_000_000_123_456_789,
            conn_id: 5,
            process: Process { pid: 10, tid: 11, comm: "nginx".into(), cgroup_id: 3 },
            local: Endpoint { ip: "::1".parse::<IpAddr>().unwrap(), port: 8080 },
            remote: Endpoint { ip: "::1".parse::<IpAddr>().unwrap(), port: 50000 },
            role: Role::Server,
            version: "HTTP/1.1".into(),
            method: None,
            target: None,
            status: Some(404),
            reason: Some("Not Found".into()),
            latency_ns: Some(1_500_000),
            request: Some(RequestRef { method: "GET".into(), target: "/x".into() }),
            headers: vec![("Server".into(), "nginx".into()), ("X-Evil".into(), "a\nb".into())],
            header_bytes: 60,
            truncated: false,
            tls: false,
            flags: vec![],
        }
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

    #[test]
    fn human_line_is_one_line_with_direction() {
        let line = record_line(&resp());
        assert!(!line.contains('\n'));
        assert!(line.contains("nginx[10] server [::1]:8080 > [::1]:50000: HTTP/1.1 404 Not Found (1.500 ms, GET /x)"), "{line}");
        assert!(line.contains("| X-Evil: a\\nb"), "{line}");
    }
}

//! Records read back from NDJSON (`hdrtap show FILE`, `hdrtap http -r`):
//! the objects [`crate::output`] writes (docs/SCHEMA.md), turned back into
//! the records they came from, so that the same filters and views apply.
//!
//! By hand over `serde_json::Value` rather than `#[derive(Deserialize)]`:
//! the records hold interned `&'static str`s (version, flags, rule ids) and
//! packed headers that a derive cannot fill, and the writer is hand-written
//! for speed, so a derive would be a second definition of the same shape.
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::headers::mark;
use crate::record::{
    anomaly, flag, Endpoint, Grpc, H2Info, Headers, HttpKind, HttpRecord, PacketLink, Process,
    RequestRef, Role, SeqRange,
};
use crate::rules::{Alert, Severity, RULES};

/// One line of an NDJSON file, read back.
#[derive(Debug)]
pub enum ReadRecord {
    Http(Box<HttpRecord>),
    Alert(Alert),
    /// A stats record, as written.
    Stats(Value),
    /// A packet record (counted, not rendered back).
    Packet,
}

/// Why a line is not a record: one line of text, with the field at fault.
pub type ReadError = String;

/// Parse one NDJSON line.
pub fn parse_line(line: &str) -> Result<ReadRecord, ReadError> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let kind = str_field(&v, "kind")?;
    Ok(match kind {
        "http_request" => ReadRecord::Http(Box::new(http(&v, HttpKind::Request)?)),
        "http_response" => ReadRecord::Http(Box::new(http(&v, HttpKind::Response)?)),
        "http_trailers" => ReadRecord::Http(Box::new(http(&v, HttpKind::Trailers)?)),
        "http_reset" => ReadRecord::Http(Box::new(http(&v, HttpKind::Reset)?)),
        "alert" => ReadRecord::Alert(alert(&v)?),
        "stats" => ReadRecord::Stats(v),
        "packet" => ReadRecord::Packet,
        other => return Err(format!("unknown kind {other:?}")),
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, ReadError> {
    v.get(name).ok_or_else(|| format!("no {name:?} field"))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ReadError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| format!("{name:?} is not a string"))
}

fn u64_field(v: &Value, name: &str) -> Result<u64, ReadError> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| format!("{name:?} is not a whole number"))
}

fn u32_field(v: &Value, name: &str) -> Result<u32, ReadError> {
    u32::try_from(u64_field(v, name)?).map_err(|_| format!("{name:?} is out of range"))
}

fn bool_field(v: &Value, name: &str) -> Result<bool, ReadError> {
    field(v, name)?
        .as_bool()
        .ok_or_else(|| format!("{name:?} is not true or false"))
}

/// An optional string field (absent or null: None).
fn opt_str<'a>(v: &'a Value, name: &str) -> Result<Option<&'a str>, ReadError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name:?} is not a string")),
    }
}

fn opt_u64(v: &Value, name: &str) -> Result<Option<u64>, ReadError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{name:?} is not a whole number")),
    }
}

/// RFC 3339 `ts` as nanoseconds since the epoch.
fn ts_field(v: &Value) -> Result<u64, ReadError> {
    let s = str_field(v, "ts")?;
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("\"ts\": {e}"))?;
    t.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| "\"ts\" is out of range".to_string())
}

fn endpoint(v: &Value, name: &str) -> Result<Endpoint, ReadError> {
    let e = field(v, name)?;
    let ip: IpAddr = str_field(e, "ip")?
        .parse()
        .map_err(|_| format!("\"{name}.ip\" is not an address"))?;
    let port = u16::try_from(u64_field(e, "port")?)
        .map_err(|_| format!("\"{name}.port\" is out of range"))?;
    Ok(Endpoint { ip, port })
}

fn role(v: &Value) -> Result<Role, ReadError> {
    match str_field(v, "role")? {
        "client" => Ok(Role::Client),
        "server" => Ok(Role::Server),
        r => Err(format!("\"role\" {r:?} is neither client nor server")),
    }
}

/// The `&'static str` for `s`: one of `known`, or `s` leaked once (a
/// name a newer hdrtap wrote; one allocation per distinct name, for the
/// life of the process).
fn intern(s: &str, known: impl IntoIterator<Item = &'static str>) -> &'static str {
    if let Some(k) = known.into_iter().find(|k| *k == s) {
        return k;
    }
    static OTHERS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = OTHERS.lock().unwrap_or_else(|p| p.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(k) = set.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(k);
    k
}

/// Every flag name [`crate::record::flag`] defines.
const FLAGS: [&str; 15] = [
    flag::MIDSTREAM,
    flag::GAP,
    flag::MALFORMED,
    flag::NON_UTF8,
    flag::UNPAIRED,
    flag::INCOMPLETE,
    flag::CUT,
    flag::RESET,
    flag::HPACK_PARTIAL,
    flag::HPACK_ERROR,
    flag::PUSH_PROMISE,
    flag::HEADER_BLOCK_FLOOD,
    flag::RAPID_RESET,
    flag::PAIRING_GUESSED,
    flag::CONFLICT,
];

const VERSIONS: [&str; 4] = ["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/1.x"];

fn strings<'a>(v: &'a Value, name: &str) -> Result<Vec<&'a str>, ReadError> {
    match v.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .ok_or_else(|| format!("{name:?} holds a non-string"))
            })
            .collect(),
        Some(_) => Err(format!("{name:?} is not a list")),
    }
}

fn headers(v: &Value) -> Result<Headers, ReadError> {
    let list = field(v, "headers")?
        .as_array()
        .ok_or("\"headers\" is not a list")?;
    let mut h = Headers::with_capacity(list.len(), 0);
    for pair in list {
        let (name, value) = match pair.as_array().map(Vec::as_slice) {
            Some([n, v]) => (n, v),
            _ => return Err("\"headers\" holds something other than [name, value]".into()),
        };
        fn text(x: &Value, unknown: u8) -> Result<(&str, u8), ReadError> {
            match x {
                Value::Null => Ok(("", unknown)),
                Value::String(s) => Ok((s.as_str(), 0)),
                _ => Err("a header name or value is not a string".to_string()),
            }
        }
        let (n, nm) = text(name, mark::NAME_UNKNOWN)?;
        let (val, vm) = text(value, mark::VALUE_UNKNOWN)?;
        if nm | vm == 0 {
            h.push(n, val);
        } else {
            h.push_marked(n, val, nm | vm);
        }
    }
    Ok(h)
}

fn http(v: &Value, kind: HttpKind) -> Result<HttpRecord, ReadError> {
    let request = match v.get("request") {
        None | Some(Value::Null) => None,
        Some(r) => Some(RequestRef {
            method: str_field(r, "method")?.into(),
            target: str_field(r, "target")?.into(),
            host: None,
        }),
    };
    let stream_id = opt_u64(v, "stream_id")?;
    let h2 = match stream_id {
        None => None,
        Some(id) => Some(Box::new(H2Info {
            stream_id: u32::try_from(id).map_err(|_| "\"stream_id\" is out of range")?,
            authority: opt_str(v, "authority")?.map(Into::into),
            scheme: opt_str(v, "scheme")?.map(Into::into),
            error_code: opt_u64(v, "error_code")?
                .map(|c| u32::try_from(c).map_err(|_| "\"error_code\" is out of range"))
                .transpose()?,
            undecoded_fields: opt_u64(v, "undecoded_fields")?.unwrap_or(0) as u32,
            decoded_bytes: 0,
            rapid_resets: opt_u64(v, "rapid_resets")?.unwrap_or(0) as u32,
            grpc: match v.get("grpc") {
                None | Some(Value::Null) => None,
                Some(g) => Some(Grpc {
                    service: str_field(g, "service")?.into(),
                    method: str_field(g, "method")?.into(),
                }),
            },
            grpc_status: v.get("grpc_status").and_then(Value::as_i64),
            grpc_message: opt_str(v, "grpc_message")?.map(str::to_string),
        })),
    };
    let mut anomalies = 0;
    for name in strings(v, "anomalies")? {
        anomalies |= anomaly::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map_or(0, |(b, _)| *b);
    }
    let id = u64_field(v, "id")?;
    let ts_unix_ns = ts_field(v)?;
    let conn_id = u64_field(v, "conn_id")?;
    // Records reassembled from packets name their interface, and a
    // process only when the kernel knew the socket's owner.
    let interface = match opt_str(v, "source")? {
        Some("packet") => Some(Arc::from(str_field(v, "interface")?)),
        _ => None,
    };
    let wire = interface.is_some();
    let (pid, tid, comm) = if wire && v.get("pid").is_none() {
        (0, 0, "")
    } else {
        (
            u32_field(v, "pid")?,
            u32_field(v, "tid")?,
            str_field(v, "comm")?,
        )
    };
    Ok(HttpRecord {
        kind,
        id,
        ts_unix_ns,
        conn_id,
        sock_cookie: opt_u64(v, "sock_cookie")?.unwrap_or(0),
        process: Process {
            pid,
            tid,
            comm: comm.into(),
            cgroup_id: opt_u64(v, "cgroup_id")?.unwrap_or(0),
            workload: match opt_str(v, "cgroup")? {
                None => None,
                Some(cgroup) => Some(std::sync::Arc::new(crate::cgroup::Workload {
                    cgroup: cgroup.into(),
                    unit: opt_str(v, "unit")?.map(Into::into),
                    container_id: opt_str(v, "container_id")?.map(Into::into),
                    container_runtime: opt_str(v, "container_runtime")?
                        .map(|r| intern(r, crate::cgroup::RUNTIMES)),
                    pod_uid: opt_str(v, "pod_uid")?.map(Into::into),
                })),
            },
        },
        local: endpoint(v, "local")?,
        remote: endpoint(v, "remote")?,
        role: role(v)?,
        version: intern(str_field(v, "version")?, VERSIONS),
        method: opt_str(v, "method")?.map(Into::into),
        target: opt_str(v, "target")?.map(Into::into),
        status: opt_u64(v, "status")?
            .map(|s| u16::try_from(s).map_err(|_| "\"status\" is out of range"))
            .transpose()?,
        reason: opt_str(v, "reason")?.map(Into::into),
        latency_ns: opt_u64(v, "latency_ns")?,
        request,
        headers: headers(v)?,
        header_bytes: opt_u64(v, "header_bytes")?.unwrap_or(0) as usize,
        truncated: bool_field(v, "truncated")?,
        tls: bool_field(v, "tls")?,
        tls_library: opt_str(v, "tls_library")?.map(Arc::from),
        flags: strings(v, "flags")?
            .into_iter()
            .map(|f| intern(f, FLAGS))
            .collect(),
        anomalies,
        framing: Default::default(),
        h2,
        tcp_seq: tcp_seq(v)?,
        packets: packets(v)?,
        interface,
    })
}

/// `tcp_seq`: {"first", "last", "whole"}, when present.
fn tcp_seq(v: &Value) -> Result<Option<SeqRange>, ReadError> {
    let Some(r) = v.get("tcp_seq") else {
        return Ok(None);
    };
    let seq = |name: &str| -> Result<u32, ReadError> {
        r.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("\"tcp_seq.{name}\" is not a sequence number"))
    };
    Ok(Some(SeqRange {
        first: seq("first")?,
        last: seq("last")?,
        whole: r.get("whole").and_then(Value::as_bool).unwrap_or(false),
    }))
}

/// `packets` and `packets_complete`, when present.
fn packets(v: &Value) -> Result<Option<Box<PacketLink>>, ReadError> {
    let Some(ids) = v.get("packets") else {
        return Ok(None);
    };
    let ids = ids
        .as_array()
        .ok_or("\"packets\" is not an array")?
        .iter()
        .map(|id| id.as_u64().ok_or("\"packets\" holds a non-id"))
        .collect::<Result<Vec<u64>, _>>()?;
    Ok(Some(Box::new(PacketLink {
        ids,
        complete: v
            .get("packets_complete")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })))
}

fn alert(v: &Value) -> Result<Alert, ReadError> {
    let severity = match str_field(v, "severity")? {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        s => return Err(format!("\"severity\" {s:?} is not low, medium or high")),
    };
    let record_kind = match str_field(v, "record_kind")? {
        "http_request" => HttpKind::Request,
        "http_response" => HttpKind::Response,
        "http_trailers" => HttpKind::Trailers,
        "http_reset" => HttpKind::Reset,
        k => return Err(format!("\"record_kind\" {k:?} is not an HTTP kind")),
    };
    Ok(Alert {
        id: u64_field(v, "id")?,
        rule: intern(str_field(v, "rule")?, RULES.iter().map(|r| r.id)),
        severity,
        record_id: u64_field(v, "record_id")?,
        record_kind,
        ts_unix_ns: ts_field(v)?,
        conn_id: u64_field(v, "conn_id")?,
        pid: u32_field(v, "pid")?,
        tid: u32_field(v, "tid")?,
        comm: str_field(v, "comm")?.to_string(),
        local: endpoint(v, "local")?,
        remote: endpoint(v, "remote")?,
        role: role(v)?,
        tls: bool_field(v, "tls")?,
        method: opt_str(v, "method")?.map(str::to_string),
        target: opt_str(v, "target")?.map(str::to_string),
        detail: str_field(v, "detail")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{alert_line, push_alert_json, record_json, record_line};
    use crate::record::{test_request, test_response};

    /// A record written and read back is the record, and reads as the
    /// same line (what `show` prints is what `http` printed).
    #[test]
    fn records_round_trip_through_ndjson() {
        let mut req = test_request(&[("Host", "example"), ("X-A", "1\n2")]);
        req.id = 7;
        req.flags = vec![flag::MIDSTREAM, flag::NON_UTF8];
        req.anomalies = anomaly::OBS_FOLD;
        req.sock_cookie = 4242;
        req.tcp_seq = Some(SeqRange::new(u32::MAX - 3, 100, true));
        req.packets = Some(Box::new(PacketLink {
            ids: vec![5, 6],
            complete: false,
        }));
        let json = record_json(&req);
        assert!(
            json.contains(r#""tcp_seq":{"first":4294967292,"last":95,"whole":true}"#),
            "{json}"
        );
        assert!(json.contains(r#""packets":[5,6],"packets_complete":false"#));
        let mut resp = test_response(Role::Server, ("GET", "/x?y=1", Some("h")), 503, 12);
        resp.id = 8;
        resp.h2 = Some(Box::new(H2Info {
            stream_id: 3,
            error_code: Some(8),
            grpc_status: Some(14),
            grpc_message: Some("down".into()),
            undecoded_fields: 2,
            ..Default::default()
        }));
        resp.headers.push_marked("", "v", mark::NAME_UNKNOWN);
        resp.process.workload = Some(std::sync::Arc::new(crate::cgroup::Workload::from_path(
            &format!(
                "/kubepods/burstable/pod{}/crio-{}",
                "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
                "ab".repeat(32)
            ),
        )));
        assert!(record_json(&resp).contains(r#""container_runtime":"cri-o""#));
        // From packets: an interface, and no process when none was known.
        let mut wire = test_request(&[("Host", "w")]);
        wire.interface = Some("eth1".into());
        wire.process.pid = 0;
        wire.process.tid = 0;
        wire.process.comm = "".into();
        wire.process.cgroup_id = 0;
        wire.flags = vec![flag::CONFLICT];
        let json = record_json(&wire);
        assert!(
            json.contains(r#""source":"packet","interface":"eth1""#),
            "{json}"
        );
        assert!(!json.contains(r#""pid""#), "{json}");
        for rec in [req, resp, wire] {
            let json = record_json(&rec);
            let back = match parse_line(&json).unwrap() {
                ReadRecord::Http(r) => r,
                other => panic!("{other:?}"),
            };
            assert_eq!(record_json(&back), json);
            assert_eq!(record_line(&back), record_line(&rec));
        }
    }

    #[test]
    fn alerts_round_trip_and_unknown_names_survive() {
        let a = Alert {
            id: 9,
            rule: RULES[0].id,
            severity: Severity::High,
            record_id: 7,
            record_kind: HttpKind::Request,
            ts_unix_ns: 1_700_000_000_000_000_001,
            conn_id: 1,
            pid: 2,
            tid: 3,
            comm: "curl".into(),
            local: Endpoint {
                ip: "127.0.0.1".parse().unwrap(),
                port: 1,
            },
            remote: Endpoint {
                ip: "::1".parse().unwrap(),
                port: 2,
            },
            role: Role::Client,
            tls: true,
            method: Some("GET".into()),
            target: None,
            detail: "seen".into(),
        };
        let mut json = Vec::new();
        push_alert_json(&mut json, &a);
        let json = String::from_utf8(json).unwrap();
        let back = match parse_line(&json).unwrap() {
            ReadRecord::Alert(b) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(alert_line(&back), alert_line(&a));
        // A rule a newer hdrtap knows is kept by name.
        let newer = json.replace(RULES[0].id, "rule_from_the_future");
        match parse_line(&newer).unwrap() {
            ReadRecord::Alert(b) => assert_eq!(b.rule, "rule_from_the_future"),
            other => panic!("{other:?}"),
        }
    }

    /// Every cut and every one-byte change of a real line: a record or an
    /// error, never a panic.
    #[test]
    fn damaged_lines_never_panic() {
        let mut rec = test_response(Role::Client, ("GET", "/a?b=c", Some("h")), 200, 3);
        rec.h2 = Some(Box::new(H2Info {
            stream_id: 1,
            grpc: Some(Grpc {
                service: "s".into(),
                method: "m".into(),
            }),
            ..Default::default()
        }));
        let line = record_json(&rec);
        let b = line.as_bytes();
        for i in 0..b.len() {
            let _ = parse_line(&String::from_utf8_lossy(&b[..i]));
            for x in [b'0', b'"', b'-', b'{', b'n', b'\\', 0xff] {
                let mut m = b.to_vec();
                m[i] = x;
                let _ = parse_line(&String::from_utf8_lossy(&m));
            }
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, want) in [
            ("", "not JSON"),
            ("{\"kind\":1}", "\"kind\" is not a string"),
            ("{\"kind\":\"nope\"}", "unknown kind"),
            ("{\"kind\":\"http_request\"}", "no \"id\" field"),
            ("[1,2]", "no \"kind\" field"),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
        let rec = record_json(&test_request(&[]));
        let bad_ts = rec.replacen("\"ts\":\"", "\"ts\":\"x", 1);
        assert!(parse_line(&bad_ts).unwrap_err().contains("\"ts\""));
        let bad_port = rec.replacen("\"port\":80", "\"port\":70000", 1);
        assert!(
            parse_line(&bad_port).unwrap_err().contains("port"),
            "{bad_port}"
        );
        assert!(matches!(
            parse_line("{\"kind\":\"packet\"}").unwrap(),
            ReadRecord::Packet
        ));
    }
}

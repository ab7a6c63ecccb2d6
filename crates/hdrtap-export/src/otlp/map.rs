//! Records → OpenTelemetry log records (the official OTLP protobuf types).
//!
//! One `LogRecord` per record: `time_unix_nano` is the record's time,
//! the body is the record's JSON line (or its readable line), and the
//! attributes follow OpenTelemetry's semantic conventions where they exist
//! (`http.request.method`, `url.path`, `http.response.status_code`,
//! `network.peer.address`, `process.pid`, ...), `hdrtap.*` otherwise. The
//! full table is in docs/DAEMON.md.
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

use hdrtap_core::output::Format;
use hdrtap_core::packet::{Dir, PacketRecord};
use hdrtap_core::record::{anomaly, Endpoint, HttpKind, HttpRecord, Role};
use hdrtap_core::rules::{Alert, Severity};
use hdrtap_core::sink::{Record, StatsSnapshot};

/// What goes into a log record's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// The record's NDJSON object (everything, machine-readable).
    Json,
    /// The record's readable one-line summary (stats stay JSON).
    Summary,
}

/// Methods OpenTelemetry knows; others are reported as `_OTHER` with
/// `http.request.method_original`.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn s(v: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

fn int(v: impl Into<i64>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(v.into())),
    }
}

fn uint(v: u64) -> AnyValue {
    int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn boolean(v: bool) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BoolValue(v)),
    }
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: v.into_iter().map(s).collect(),
        })),
    }
}

/// Attributes being built.
struct Attrs(Vec<KeyValue>);

impl Attrs {
    fn add(&mut self, key: impl Into<String>, value: AnyValue) {
        self.0.push(KeyValue {
            key: key.into(),
            value: Some(value),
            ..KeyValue::default()
        });
    }
}

fn network(a: &mut Attrs, local: &Endpoint, remote: &Endpoint) {
    a.add("network.transport", s("tcp"));
    a.add(
        "network.type",
        s(if remote.ip.is_ipv4() { "ipv4" } else { "ipv6" }),
    );
    a.add("network.local.address", s(local.ip.to_string()));
    a.add("network.local.port", int(local.port));
    a.add("network.peer.address", s(remote.ip.to_string()));
    a.add("network.peer.port", int(remote.port));
}

fn process(a: &mut Attrs, pid: u32, tid: u32, comm: &str) {
    a.add("process.pid", int(pid));
    a.add("thread.id", int(tid));
    a.add("process.executable.name", s(comm));
}

fn method(a: &mut Attrs, m: &str) {
    if KNOWN_METHODS.contains(&m) {
        a.add("http.request.method", s(m));
    } else {
        a.add("http.request.method", s("_OTHER"));
        a.add("http.request.method_original", s(m));
    }
}

fn url(a: &mut Attrs, target: &str) {
    match target.split_once('?') {
        Some((path, query)) => {
            a.add("url.path", s(path));
            a.add("url.query", s(query));
        }
        None => a.add("url.path", s(target)),
    }
}

/// A request's absolute URL: the target if it is one, else scheme,
/// `:authority` or Host, and the target.
fn full_url(r: &HttpRecord, scheme: &str) -> Option<String> {
    let target = r.target.as_deref()?;
    if target.contains("://") {
        return Some(target.to_string());
    }
    if !target.starts_with('/') {
        return None;
    }
    let host =
        r.h2.as_ref()
            .and_then(|h| h.authority.as_deref())
            .or_else(|| r.header("host"))?;
    Some(format!("{scheme}://{host}{target}"))
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Client => "client",
        Role::Server => "server",
    }
}

fn http_attrs(a: &mut Attrs, r: &HttpRecord) {
    a.add("hdrtap.conn_id", uint(r.conn_id));
    a.add("hdrtap.role", s(role_name(r.role)));
    a.add("network.protocol.name", s("http"));
    a.add(
        "network.protocol.version",
        s(r.version.trim_start_matches("HTTP/")),
    );
    network(a, &r.local, &r.remote);
    process(a, r.process.pid, r.process.tid, &r.process.comm);
    a.add("hdrtap.cgroup_id", uint(r.process.cgroup_id));
    if let Some(w) = &r.process.workload {
        // OpenTelemetry's container and k8s resource names, as attributes.
        a.add("hdrtap.cgroup", s(&w.cgroup));
        for (field, v) in w.fields() {
            let key = match field {
                "unit" => "hdrtap.unit",
                "container_id" => "container.id",
                "container_runtime" => "container.runtime",
                _ => "k8s.pod.uid",
            };
            a.add(key, s(v));
        }
    }
    a.add("hdrtap.tls", boolean(r.tls));
    if let Some(lib) = &r.tls_library {
        a.add("hdrtap.tls_library", s(&**lib));
    }
    match r.kind {
        HttpKind::Request => {
            if let Some(m) = &r.method {
                method(a, m);
            }
            if let Some(t) = &r.target {
                url(a, t);
            }
            let scheme = r.h2.as_ref().and_then(|h| h.scheme.as_deref());
            let scheme = scheme.unwrap_or(if r.tls { "https" } else { "http" });
            a.add("url.scheme", s(scheme));
            // Client spans carry the whole URL (the conventions require
            // it there), built from the redacted target and host.
            if r.role == Role::Client {
                if let Some(full) = full_url(r, scheme) {
                    a.add("url.full", s(&full));
                }
            }
            if let Some(auth) = r.h2.as_ref().and_then(|h| h.authority.as_deref()) {
                a.add("server.address", s(auth));
            }
            if let Some(ua) = r.header("user-agent") {
                a.add("user_agent.original", s(ua));
            }
        }
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            if let Some(st) = r.status {
                a.add("http.response.status_code", int(st));
            }
            if let Some(q) = &r.request {
                method(a, &q.method);
                url(a, &q.target);
            }
            if let Some(ns) = r.latency_ns {
                a.add("hdrtap.latency_ns", uint(ns));
            }
        }
    }
    if let Some(h2) = &r.h2 {
        a.add("hdrtap.http2.stream_id", uint(h2.stream_id.into()));
        a.add("hdrtap.record_kind", s(r.kind.name()));
        if let Some(code) = h2.error_code {
            a.add("hdrtap.http2.error_code", uint(code.into()));
        }
        if h2.undecoded_fields > 0 {
            a.add(
                "hdrtap.http2.undecoded_fields",
                uint(h2.undecoded_fields.into()),
            );
        }
        if let Some(g) = &h2.grpc {
            a.add("rpc.system", s("grpc"));
            a.add("rpc.service", s(g.service.as_str()));
            a.add("rpc.method", s(g.method.as_str()));
        }
        if let Some(st) = h2.grpc_status {
            a.add(
                "rpc.grpc.status_code",
                AnyValue {
                    value: Some(any_value::Value::IntValue(st)),
                },
            );
        }
    }
    // http.request.header.<name> / http.response.header.<name>: lower-case
    // names, every value of the name in order (trailers count as response
    // headers; a field whose name hdrtap could not decode is left out).
    let prefix = match r.kind {
        HttpKind::Request => "http.request.header.",
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => "http.response.header.",
    };
    let mut names: Vec<String> = Vec::new();
    let mut values: Vec<Vec<String>> = Vec::new();
    for (i, (n, v)) in r.headers.iter().enumerate() {
        if r.headers.marks(i) & hdrtap_core::headers::mark::NAME_UNKNOWN != 0 {
            continue;
        }
        let n = n.to_ascii_lowercase();
        match names.iter().position(|x| *x == n) {
            Some(i) => {
                if let Some(vs) = values.get_mut(i) {
                    vs.push(v.to_string());
                }
            }
            None => {
                names.push(n);
                values.push(vec![v.to_string()]);
            }
        }
    }
    for (n, vs) in names.into_iter().zip(values) {
        a.add(format!("{prefix}{n}"), strings(vs));
    }
    a.add("hdrtap.header_bytes", uint(r.header_bytes as u64));
    if r.truncated {
        a.add("hdrtap.truncated", boolean(true));
    }
    if !r.flags.is_empty() {
        a.add("hdrtap.flags", strings(r.flags.iter().copied()));
    }
    if r.anomalies != 0 {
        a.add("hdrtap.anomalies", strings(anomaly::names(r.anomalies)));
    }
}

fn packet_attrs(a: &mut Attrs, p: &PacketRecord) {
    a.add("network.interface.name", s(&*p.ifname));
    a.add("hdrtap.packet.hook", s(p.hook.name()));
    a.add(
        "network.io.direction",
        s(match p.dir {
            Dir::In => "receive",
            Dir::Out => "transmit",
        }),
    );
    a.add("hdrtap.packet.wire_len", int(p.wire_len));
    a.add("hdrtap.packet.cap_len", int(p.cap_len));
    let h = &p.headers;
    let (src, dst): (Option<String>, Option<String>) = if let Some(ip) = &h.ipv4 {
        a.add("network.type", s("ipv4"));
        (Some(ip.src.to_string()), Some(ip.dst.to_string()))
    } else if let Some(ip) = &h.ipv6 {
        a.add("network.type", s("ipv6"));
        (Some(ip.src.to_string()), Some(ip.dst.to_string()))
    } else {
        (None, None)
    };
    if let Some(v) = src {
        a.add("source.address", s(v));
    }
    if let Some(v) = dst {
        a.add("destination.address", s(v));
    }
    let ports = if let Some(t) = &h.tcp {
        a.add("network.transport", s("tcp"));
        a.add("hdrtap.tcp.flags", strings(t.flags.names()));
        Some((t.sport, t.dport))
    } else if let Some(u) = &h.udp {
        a.add("network.transport", s("udp"));
        Some((u.sport, u.dport))
    } else {
        if h.icmp.is_some() {
            a.add("network.transport", s("icmp"));
        } else if h.icmp6.is_some() {
            a.add("network.transport", s("icmp6"));
        } else if h.arp.is_some() {
            a.add("hdrtap.packet.protocol", s("arp"));
        }
        None
    };
    if let Some((sp, dp)) = ports {
        a.add("source.port", int(sp));
        a.add("destination.port", int(dp));
    }
    if let Some(o) = &p.owner {
        process(a, o.pid, o.tid, &o.comm);
    }
    if !h.flags.is_empty() {
        a.add("hdrtap.flags", strings(h.flags.iter().copied()));
    }
}

fn alert_attrs(a: &mut Attrs, al: &Alert) {
    a.add("hdrtap.alert.rule", s(al.rule));
    a.add("hdrtap.alert.severity", s(al.severity.name()));
    a.add("hdrtap.alert.record_id", uint(al.record_id));
    a.add("hdrtap.alert.record_kind", s(al.record_kind.name()));
    a.add("hdrtap.alert.detail", s(&al.detail));
    a.add("hdrtap.conn_id", uint(al.conn_id));
    a.add("hdrtap.role", s(role_name(al.role)));
    a.add("hdrtap.tls", boolean(al.tls));
    network(a, &al.local, &al.remote);
    process(a, al.pid, al.tid, &al.comm);
    if let Some(m) = &al.method {
        method(a, m);
    }
    if let Some(t) = &al.target {
        url(a, t);
    }
}

fn stats_attrs(a: &mut Attrs, st: &StatsSnapshot) {
    a.add("hdrtap.stats.source", s(st.source));
    for (k, v) in &st.fields {
        a.add(format!("hdrtap.stats.{k}"), uint(*v));
    }
}

/// The log record of one record, observed at `observed_ns`.
pub fn log_record(rec: &Record, body: BodyMode, observed_ns: u64) -> LogRecord {
    let mut a = Attrs(Vec::with_capacity(32));
    a.add("hdrtap.record.kind", s(rec.kind().name()));
    let (ts, severity, event) = match rec {
        Record::Http(r) => {
            a.add("hdrtap.record.id", uint(r.id));
            http_attrs(&mut a, r);
            (r.ts_unix_ns, SeverityNumber::Info, "hdrtap.http")
        }
        Record::Packet(p) => {
            a.add("hdrtap.record.id", uint(p.id));
            packet_attrs(&mut a, p);
            (p.ts_unix_ns, SeverityNumber::Info, "hdrtap.packet")
        }
        Record::Alert(al) => {
            a.add("hdrtap.record.id", uint(al.id));
            alert_attrs(&mut a, al);
            let sev = match al.severity {
                Severity::Low => SeverityNumber::Info,
                Severity::Medium => SeverityNumber::Warn,
                Severity::High => SeverityNumber::Error,
            };
            (al.ts_unix_ns, sev, "hdrtap.alert")
        }
        Record::Stats(st) => {
            stats_attrs(&mut a, st);
            (st.ts_unix_ns, SeverityNumber::Info, "hdrtap.stats")
        }
    };
    let mut text = Vec::with_capacity(512);
    let format = match body {
        BodyMode::Json => Format::Json,
        BodyMode::Summary => Format::Human,
    };
    if !rec.write(format, &mut text) {
        rec.write(Format::Json, &mut text);
    }
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    LogRecord {
        time_unix_nano: ts,
        observed_time_unix_nano: observed_ns,
        severity_number: severity as i32,
        severity_text: severity_text(severity).to_string(),
        body: Some(s(String::from_utf8_lossy(&text).into_owned())),
        attributes: a.0,
        event_name: event.to_string(),
        ..LogRecord::default()
    }
}

fn severity_text(s: SeverityNumber) -> &'static str {
    match s {
        SeverityNumber::Warn => "WARN",
        SeverityNumber::Error => "ERROR",
        _ => "INFO",
    }
}

/// Resource attributes: `service.name`, `service.version`, `host.name`,
/// then `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`), then `extra` (later wins).
pub fn resource(extra: &[(String, String)]) -> Resource {
    let mut attrs: Vec<(String, String)> = vec![
        ("service.name".into(), "hdrtap".into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("host.name".into(), host_name()),
        ("os.type".into(), "linux".into()),
    ];
    let mut set = |k: String, v: String| match attrs.iter_mut().find(|(x, _)| *x == k) {
        Some(slot) => slot.1 = v,
        None => attrs.push((k, v)),
    };
    if let Ok(env) = std::env::var("OTEL_RESOURCE_ATTRIBUTES") {
        for pair in env.split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                let (k, v) = (k.trim(), v.trim());
                if !k.is_empty() {
                    set(percent_decode(k), percent_decode(v));
                }
            }
        }
    }
    if let Ok(name) = std::env::var("OTEL_SERVICE_NAME") {
        if !name.is_empty() {
            set("service.name".into(), name);
        }
    }
    for (k, v) in extra {
        set(k.clone(), v.clone());
    }
    Resource {
        attributes: attrs
            .into_iter()
            .map(|(k, v)| KeyValue {
                key: k,
                value: Some(s(v)),
                ..KeyValue::default()
            })
            .collect(),
        ..Resource::default()
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES` values are percent-encoded (W3C baggage).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        if c == b'%' {
            if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One `ResourceLogs` holding `records`.
pub fn resource_logs(resource: &Resource, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(resource.clone()),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: "hdrtap".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..InstrumentationScope::default()
            }),
            log_records: records,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

//! Prometheus: a sink that turns records into traffic metrics, and a small
//! HTTP server answering `GET /metrics` with those plus hdrtap's own
//! counters (events, losses by reason, ring-buffer fill, per-sink records,
//! errors and drops). Metric names and labels: docs/DAEMON.md.
//!
//! Label values that come from the traffic (host, method, route) are
//! untrusted: methods outside the standard set become `_OTHER` (as
//! OpenTelemetry's semantic conventions do); routes are the path without
//! its query, identifier-like segments folded to `*` (a heuristic like
//! OBI's route harvesting, [`hdrtap_core::summary::route`]); at most
//! `max_hosts` distinct hosts and `max_routes` routes get series of their
//! own, later ones share `__overflow__`.
mod text;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hdrtap_core::packet::PacketRecord;
use hdrtap_core::record::{HttpRecord, Role, STATUS_CLASSES};
use hdrtap_core::rules::RULES;
use hdrtap_core::sink::{Record, Sink, SinkCounters, SinkInfo, StatusBoard};

pub use text::{Text, Type};

/// Label value shared by every host (or route) past its cap.
pub const OVERFLOW_HOST: &str = "__overflow__";
/// Methods that get their own `method` label value.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// `method` of a response with no known request.
const UNPAIRED: &str = "_UNPAIRED";
const OTHER_METHOD: &str = "_OTHER";
/// Latency histogram bounds, seconds.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const PROTOCOLS: [&str; 8] = [
    "tcp", "udp", "icmp", "icmp6", "arp", "ipv4", "ipv6", "other",
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; LATENCY_BOUNDS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += secs;
    }
}

/// (method index (METHODS, then _OTHER, _UNPAIRED), status class, role,
/// host index, route index).
type RequestKey = (u8, u8, u8, u32, u32);

/// A plain counter family: name, help, and per capture the stats field.
type CounterSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Label values taken from the traffic, capped: the first `max` distinct
/// values get an index each, later ones [`Labels::OVERFLOW`] (rendered
/// `__overflow__`), so that a flood of names cannot grow the series
/// without bound.
#[derive(Debug)]
struct Labels {
    max: usize,
    /// Values seen (and, for the fast path, their spellings as seen).
    index: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Labels {
    const OVERFLOW: u32 = u32::MAX;
    /// Longest label value kept, in bytes (cut at a character boundary).
    const MAX_LEN: usize = 255;

    fn new(max: usize) -> Labels {
        Labels {
            max,
            index: HashMap::new(),
            names: Vec::new(),
        }
    }

    /// The index of `value`, made canonical by `canon` (lower case hosts,
    /// folded routes) only when it is not known as seen.
    fn get(&mut self, value: &str, canon: impl Fn(&str) -> String) -> u32 {
        // Most values are already canonical: look up without allocating.
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let mut v = canon(value);
        if v.len() > Self::MAX_LEN {
            let mut end = Self::MAX_LEN;
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v.truncate(end);
        }
        if let Some(&i) = self.index.get(v.as_str()) {
            self.remember(value, i);
            return i;
        }
        if self.names.len() >= self.max {
            return Self::OVERFLOW;
        }
        let i = self.names.len() as u32;
        self.names.push(v.clone().into());
        self.index.insert(v.into(), i);
        self.remember(value, i);
        i
    }

    /// Also remember `value` as seen (another case of a host, a target of
    /// a route) for the fast path, up to a bound: targets are unbounded.
    fn remember(&mut self, value: &str, i: u32) {
        if self.index.len() < 4 * self.max.max(64) && !self.index.contains_key(value) {
            self.index.insert(value.into(), i);
        }
    }

    fn name(&self, i: u32) -> &str {
        if i == Self::OVERFLOW {
            OVERFLOW_HOST
        } else {
            self.names.get(i as usize).map_or("", |h| h)
        }
    }
}

/// Traffic metrics: what the records said.
#[derive(Debug)]
pub struct Traffic {
    /// Host label values (lower case).
    hosts: Labels,
    /// Route label values ([`hdrtap_core::summary::route`]).
    routes: Labels,
    /// Requests by [`RequestKey`].
    requests: HashMap<RequestKey, u64>,
    latency: [Histogram; 2],
    packets: [(u64, u64); PROTOCOLS.len()],
    alerts: HashMap<&'static str, u64>,
}

impl Traffic {
    /// At most `max_hosts` host and `max_routes` route label values.
    pub fn new(max_hosts: usize, max_routes: usize) -> Traffic {
        Traffic {
            hosts: Labels::new(max_hosts),
            routes: Labels::new(max_routes),
            requests: HashMap::new(),
            latency: Default::default(),
            packets: [(0, 0); PROTOCOLS.len()],
            alerts: RULES.iter().map(|r| (r.id, 0)).collect(),
        }
    }

    fn http(&mut self, r: &HttpRecord) {
        // Interim responses do not complete a request.
        let Some(class) = r.final_status_class() else {
            return;
        };
        let class = class as u8;
        let method = match &r.request {
            None => METHODS.len() as u8 + 1,
            Some(q) => METHODS
                .iter()
                .position(|m| *m == q.method)
                .unwrap_or(METHODS.len()) as u8,
        };
        let host = r.request.as_ref().and_then(|q| q.host.as_deref());
        let host = self
            .hosts
            .get(host.unwrap_or("").trim(), |h| h.to_ascii_lowercase());
        // No request, no route: "" (with method _UNPAIRED).
        let route = match &r.request {
            Some(q) => self.routes.get(&q.target, hdrtap_core::summary::route),
            None => self.routes.get("", |_| String::new()),
        };
        let role = match r.role {
            Role::Client => 0,
            Role::Server => 1,
        };
        *self
            .requests
            .entry((method, class, role, host, route))
            .or_insert(0) += 1;
        if let (Some(ns), Some(h)) = (r.latency_ns, self.latency.get_mut(role as usize)) {
            h.observe(ns as f64 / 1e9);
        }
    }

    fn packet(&mut self, p: &PacketRecord) {
        let h = &p.headers;
        let proto = if h.tcp.is_some() {
            0
        } else if h.udp.is_some() {
            1
        } else if h.icmp.is_some() {
            2
        } else if h.icmp6.is_some() {
            3
        } else if h.arp.is_some() {
            4
        } else if h.ipv4.is_some() {
            5
        } else if h.ipv6.is_some() {
            6
        } else {
            7
        };
        if let Some(slot) = self.packets.get_mut(proto) {
            slot.0 += 1;
            slot.1 += u64::from(p.wire_len);
        }
    }

    /// Count what one batch says.
    pub fn observe(&mut self, batch: &[Record]) {
        for rec in batch {
            match rec {
                Record::Http(r) => self.http(r),
                Record::Packet(p) => self.packet(p),
                Record::Alert(a) => *self.alerts.entry(a.rule).or_insert(0) += 1,
                Record::Stats(_) => {}
            }
        }
    }

    fn render(&self, t: &mut Text) {
        t.family(
            "hdrtap_http_requests_total",
            Type::Counter,
            "HTTP requests answered (counted at the final response), by method, status class, Host, route (the path without its query, identifiers folded to *; both capped: later values share __overflow__) and the traced process's role.",
        );
        let mut rows: Vec<(&RequestKey, &u64)> = self.requests.iter().collect();
        rows.sort();
        for ((m, c, role, host, route), n) in rows {
            let method = match METHODS.get(*m as usize) {
                Some(m) => m,
                None if *m as usize == METHODS.len() => OTHER_METHOD,
                None => UNPAIRED,
            };
            t.sample(
                "hdrtap_http_requests_total",
                &[
                    ("method", method),
                    (
                        "status_class",
                        STATUS_CLASSES.get(*c as usize).copied().unwrap_or("other"),
                    ),
                    ("host", self.hosts.name(*host)),
                    ("route", self.routes.name(*route)),
                    ("role", role_name(*role)),
                ],
                *n as f64,
            );
        }
        t.family(
            "hdrtap_http_request_duration_seconds",
            Type::Histogram,
            "Time from a request's first byte to its response's first byte, as seen by the traced process.",
        );
        for (role, h) in self.latency.iter().enumerate() {
            t.histogram(
                "hdrtap_http_request_duration_seconds",
                &[("role", role_name(role as u8))],
                &LATENCY_BOUNDS,
                &h.counts,
                h.sum,
            );
        }
        t.family(
            "hdrtap_packets_total",
            Type::Counter,
            "Packets logged, by protocol (the innermost header decoded).",
        );
        for (p, (n, _)) in PROTOCOLS.iter().zip(&self.packets) {
            t.sample("hdrtap_packets_total", &[("protocol", p)], *n as f64);
        }
        t.family(
            "hdrtap_packet_bytes_total",
            Type::Counter,
            "Bytes on the wire of the packets logged, by protocol.",
        );
        for (p, (_, b)) in PROTOCOLS.iter().zip(&self.packets) {
            t.sample("hdrtap_packet_bytes_total", &[("protocol", p)], *b as f64);
        }
        t.family(
            "hdrtap_alerts_total",
            Type::Counter,
            "Security alerts, by rule and severity (docs/SECURITY-RULES.md).",
        );
        for r in RULES {
            let n = self.alerts.get(r.id).copied().unwrap_or(0);
            t.sample(
                "hdrtap_alerts_total",
                &[("rule", r.id), ("severity", r.severity.name())],
                n as f64,
            );
        }
    }
}

fn role_name(r: u8) -> &'static str {
    if r == 0 {
        "client"
    } else {
        "server"
    }
}

/// The sink: records → [`Traffic`].
pub struct PromSink {
    traffic: Arc<Mutex<Traffic>>,
    counters: Arc<SinkCounters>,
}

impl PromSink {
    pub fn new(traffic: Arc<Mutex<Traffic>>, counters: Arc<SinkCounters>) -> PromSink {
        PromSink { traffic, counters }
    }
}

impl Sink for PromSink {
    fn write(&mut self, batch: &[Record]) {
        self.traffic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(batch);
        SinkCounters::add(&self.counters.records, batch.len() as u64);
    }

    fn close(&mut self) {}
}

/// What `/metrics` shows.
#[derive(Clone)]
pub struct Exposition {
    pub traffic: Arc<Mutex<Traffic>>,
    pub board: Arc<StatusBoard>,
    /// Every sink of the run (filled in once they are built).
    pub sinks: Arc<Mutex<Vec<SinkInfo>>>,
}

/// Counters of a capture's stats that become `hdrtap_events_lost_total`,
/// with their `reason` label.
const LOST: &[(&str, &str, &str)] = &[
    ("http", "lost_events", "ringbuf_full"),
    ("http", "read_failures", "read_failure"),
    ("http", "conn_map_full", "map_full"),
    ("http", "inflight_full", "map_full"),
    ("http", "tls_no_fd", "tls_no_fd"),
    ("http", "tls_busy", "tls_busy"),
    ("http", "decode_errors", "undecodable"),
    ("packets", "lost_events", "ringbuf_full"),
    ("packets", "load_failures", "read_failure"),
    ("packets", "decode_errors", "undecodable"),
];

/// Stats fields that are a current value, not a running count.
const GAUGE_FIELDS: &[&str] = &["conns_open", "tls_libraries", "tls_uncovered_processes"];

/// Plain counters: (metric, help, per source: stats field).
const COUNTERS: &[CounterSpec] = &[
    (
        "hdrtap_events_total",
        "Events the kernel wrote to the ring buffer (received by hdrtap).",
        &[("http", "kernel_events"), ("packets", "kernel_events")],
    ),
    (
        "hdrtap_records_total",
        "Records produced (HTTP messages or packets), before the sinks.",
        &[("http", "records"), ("packets", "records")],
    ),
    (
        "hdrtap_truncated_total",
        "Records cut short: header blocks past --max-header-bytes, packets past their snaplen-captured headers.",
        &[("http", "truncated_messages"), ("packets", "truncated")],
    ),
    (
        "hdrtap_parse_errors_total",
        "Header blocks that were not valid HTTP/1.x; packets with malformed headers.",
        &[("http", "parse_errors"), ("packets", "malformed")],
    ),
    (
        "hdrtap_stream_gaps_total",
        "Holes in connections' byte streams seen by the HTTP parser.",
        &[("http", "gaps")],
    ),
    (
        "hdrtap_lost_bytes_total",
        "Stream bytes the lost events stood for.",
        &[("http", "lost_bytes")],
    ),
    (
        "hdrtap_captured_bytes_total",
        "Bytes the kernel copied into the ring buffer.",
        &[("http", "captured_bytes"), ("packets", "captured_bytes")],
    ),
    (
        "hdrtap_body_bytes_not_copied_total",
        "Message-body bytes the kernel did not copy because the parser had already framed them (not a loss).",
        &[("http", "body_bytes_not_copied")],
    ),
    (
        "hdrtap_bodies_framed_in_kernel_total",
        "Response bodies the kernel framed itself from their Content-Length, so that it copied none of the rest (not a loss).",
        &[("http", "bodies_framed_in_kernel")],
    ),
    (
        "hdrtap_kernel_connections_total",
        "TCP connections the kernel side tracked.",
        &[("http", "conns_tracked")],
    ),
    (
        "hdrtap_output_errors_total",
        "Records a capture could not hand to its output.",
        &[("http", "output_errors"), ("packets", "output_errors")],
    ),
];

impl Exposition {
    /// The whole exposition text.
    pub fn render(&self) -> String {
        let mut t = Text::new();
        t.family(
            "hdrtap_build_info",
            Type::Gauge,
            "Always 1; the version of hdrtap in a label.",
        );
        t.sample(
            "hdrtap_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        let caps = self.board.snapshot();
        let get = |source: &str, field: &str| -> Option<u64> {
            caps.iter()
                .find(|c| c.stats.source == source)
                .and_then(|c| c.stats.get(field))
        };
        for (name, help, fields) in COUNTERS {
            t.family(name, Type::Counter, help);
            for (source, field) in fields.iter() {
                if let Some(v) = get(source, field) {
                    t.sample(name, &[("capture", source)], v as f64);
                }
            }
        }
        t.family(
            "hdrtap_events_lost_total",
            Type::Counter,
            "Events lost, by capture and reason: ringbuf_full (ring buffer full), read_failure (user or packet memory not readable), map_full (a kernel map full), tls_no_fd / tls_busy (SSL calls not tied to a socket / not copied), undecodable.",
        );
        let mut reasons: Vec<(&str, &str, u64)> = Vec::new();
        for (source, field, reason) in LOST {
            if let Some(v) = get(source, field) {
                match reasons
                    .iter_mut()
                    .find(|(s, r, _)| s == source && r == reason)
                {
                    Some(slot) => slot.2 += v,
                    None => reasons.push((source, reason, v)),
                }
            }
        }
        for (source, reason, v) in reasons {
            t.sample(
                "hdrtap_events_lost_total",
                &[("capture", source), ("reason", reason)],
                v as f64,
            );
        }
        t.family(
            "hdrtap_connections_tracked",
            Type::Gauge,
            "Connections with HTTP parser state now.",
        );
        if let Some(v) = get("http", "conns_open") {
            t.sample(
                "hdrtap_connections_tracked",
                &[("capture", "http")],
                v as f64,
            );
        }
        // Every counter of every capture, under its stats name: a field
        // with no curated metric above still has a series, and a renamed
        // field cannot lose its series unnoticed (tests check both).
        for (family, ty, help, gauges) in [
            (
                "hdrtap_stats_total",
                Type::Counter,
                "Every cumulative field of a capture's stats records, by its name there (docs/SCHEMA.md, stats).",
                false,
            ),
            (
                "hdrtap_stats_current",
                Type::Gauge,
                "Every current-value field of a capture's stats records, by its name there.",
                true,
            ),
        ] {
            t.family(family, ty, help);
            for c in &caps {
                for (field, v) in &c.stats.fields {
                    if GAUGE_FIELDS.contains(&field.as_str()) == gauges {
                        t.sample(
                            family,
                            &[("capture", c.stats.source), ("field", field)],
                            *v as f64,
                        );
                    }
                }
            }
        }
        t.family(
            "hdrtap_ring_buffer_fill_ratio",
            Type::Gauge,
            "Part of the ring buffer holding events not yet read (0 to 1).",
        );
        for c in &caps {
            if let Some((avail, size)) = c.ring_fill {
                let ratio = if size > 0 {
                    avail as f64 / size as f64
                } else {
                    0.0
                };
                t.sample(
                    "hdrtap_ring_buffer_fill_ratio",
                    &[("capture", c.stats.source)],
                    ratio,
                );
            }
        }
        t.family(
            "hdrtap_ring_buffer_size_bytes",
            Type::Gauge,
            "Size of the ring buffer.",
        );
        for c in &caps {
            if let Some((_, size)) = c.ring_fill {
                t.sample(
                    "hdrtap_ring_buffer_size_bytes",
                    &[("capture", c.stats.source)],
                    size as f64,
                );
            }
        }
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let snaps: Vec<_> = sinks.iter().map(|s| (s, s.counters.snapshot())).collect();
        t.family(
            "hdrtap_sink_records_total",
            Type::Counter,
            "Records a sink wrote or exported.",
        );
        for (s, c) in &snaps {
            t.sample(
                "hdrtap_sink_records_total",
                &[("sink", &s.name), ("type", s.sink_type)],
                c.records as f64,
            );
        }
        t.family(
            "hdrtap_sink_errors_total",
            Type::Counter,
            "Failed writes or export attempts of a sink.",
        );
        for (s, c) in &snaps {
            t.sample(
                "hdrtap_sink_errors_total",
                &[("sink", &s.name), ("type", s.sink_type)],
                c.errors as f64,
            );
        }
        t.family(
            "hdrtap_sink_dropped_records_total",
            Type::Counter,
            "Records a sink lost: reason queue_full (its queue was full: capture never waits) or failed (write error, or export failed after its retries).",
        );
        for (s, c) in &snaps {
            for (reason, v) in [
                ("queue_full", c.dropped_queue),
                ("failed", c.dropped_failed),
            ] {
                t.sample(
                    "hdrtap_sink_dropped_records_total",
                    &[("sink", &s.name), ("type", s.sink_type), ("reason", reason)],
                    v as f64,
                );
            }
        }
        t.family(
            "hdrtap_sink_queued_records",
            Type::Gauge,
            "Records waiting in a sink's queue.",
        );
        for (s, c) in &snaps {
            t.sample(
                "hdrtap_sink_queued_records",
                &[("sink", &s.name), ("type", s.sink_type)],
                c.queued as f64,
            );
        }
        self.traffic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(&mut t);
        t.finish()
    }
}

/// The HTTP server of `/metrics`, on its own thread.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Listen on `addr` now (so a taken port fails at start-up) and serve
    /// `GET /metrics` from a thread.
    pub fn start(addr: SocketAddr, exposition: Exposition) -> std::io::Result<MetricsServer> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| std::io::Error::other(format!("cannot listen on {addr}: {e}")))?;
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn({
                let server = Arc::clone(&server);
                move || serve(&server, &exposition)
            })?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn serve(server: &tiny_http::Server, exposition: &Exposition) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("").to_string();
        let get = matches!(
            req.method(),
            tiny_http::Method::Get | tiny_http::Method::Head
        );
        let (status, body, content_type) = if get && path == "/metrics" {
            (
                200,
                exposition.render(),
                "text/plain; version=0.0.4; charset=utf-8",
            )
        } else if get && path == "/" {
            (
                200,
                "hdrtap: metrics at /metrics\n".to_string(),
                "text/plain; charset=utf-8",
            )
        } else {
            (404, "not found\n".to_string(), "text/plain; charset=utf-8")
        };
        let mut response = tiny_http::Response::from_string(body).with_status_code(status);
        if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        {
            response.add_header(h);
        }
        let _ = req.respond(response);
    }
}

#[cfg(test)]
mod tests;

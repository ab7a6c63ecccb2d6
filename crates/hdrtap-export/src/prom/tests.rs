use super::*;
use hdrtap_core::record::{Endpoint, Headers, HttpKind, Process, RequestRef};
use hdrtap_core::sink::{CaptureStatus, StatsSnapshot};
use std::io::{Read, Write};

pub(crate) fn response(
    method: &str,
    host: Option<&str>,
    status: u16,
    latency_ms: u64,
    role: Role,
) -> Record {
    response_to("/", method, host, status, latency_ms, role)
}

/// [`response`] to a request for `target`.
fn response_to(
    target: &str,
    method: &str,
    host: Option<&str>,
    status: u16,
    latency_ms: u64,
    role: Role,
) -> Record {
    let ep = Endpoint {
        ip: "127.0.0.1".parse().unwrap(),
        port: 80,
    };
    Record::Http(Arc::new(HttpRecord {
        kind: HttpKind::Response,
        id: 1,
        ts_unix_ns: 0,
        conn_id: 1,
        sock_cookie: 0,
        process: Process {
            pid: 1,
            tid: 1,
            comm: "nginx".into(),
            cgroup_id: 0,
            workload: None,
        },
        local: ep,
        remote: ep,
        role,
        version: "HTTP/1.1",
        method: None,
        target: None,
        status: Some(status),
        reason: Some("OK".into()),
        latency_ns: Some(latency_ms * 1_000_000),
        request: (method != "-").then(|| RequestRef {
            method: method.into(),
            target: target.into(),
            host: host.map(Into::into),
        }),
        headers: Headers::default(),
        header_bytes: 0,
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
    }))
}

fn sample<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
}

/// Routes: the path without its query, identifiers folded (one series for
/// /users/42 and /users/7?x=1), capped like hosts.
#[test]
fn requests_by_route_fold_identifiers_with_a_cap() {
    let mut t = Traffic::new(10, 2);
    let r = |target: &str| response_to(target, "GET", Some("h"), 200, 1, Role::Server);
    t.observe(&[
        r("/users/42"),
        r("/users/7?x=1"),
        r("/users/7?x=1"),
        r("/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301/items"),
        r("/static/app.js"),
        r("/other"),
    ]);
    let mut text = Text::new();
    t.render(&mut text);
    let s = text.finish();
    let get = |route: &str| {
        let p = format!(
            r#"hdrtap_http_requests_total{{method="GET",status_class="2xx",host="h",route="{route}",role="server"}}"#
        );
        sample(&s, &p)
            .unwrap_or_else(|| panic!("no {p} in\n{s}"))
            .to_string()
    };
    assert_eq!(get("/users/*"), "3");
    assert_eq!(get("/orders/*/items"), "1");
    // The cap is 2 routes: the later ones share the overflow.
    assert_eq!(get("__overflow__"), "2");
    assert_eq!(s.matches("route=").count(), 3, "{s}");
}

#[test]
fn requests_by_method_class_host_role_with_a_cap() {
    let mut t = Traffic::new(2, 10);
    t.observe(&[
        response("GET", Some("A.example"), 200, 3, Role::Server),
        response("GET", Some("a.example"), 204, 3, Role::Server),
        response("BREW", Some("b.example"), 418, 700, Role::Server),
        response("POST", Some("c.example"), 503, 1, Role::Client),
        response("POST", Some("d.example"), 500, 1, Role::Client),
        response("-", None, 200, 1, Role::Client),
        response("GET", Some("a.example"), 100, 1, Role::Server),
    ]);
    let mut text = Text::new();
    t.render(&mut text);
    let s = text.finish();
    let get = |p: &str| sample(&s, p).unwrap_or_else(|| panic!("no {p} in\n{s}"));
    assert_eq!(
        get(
            r#"hdrtap_http_requests_total{method="GET",status_class="2xx",host="a.example",route="/",role="server"}"#
        ),
        "2"
    );
    assert_eq!(
        get(
            r#"hdrtap_http_requests_total{method="_OTHER",status_class="4xx",host="b.example",route="/",role="server"}"#
        ),
        "1"
    );
    // The cap is 2 hosts: c and d share the overflow.
    assert_eq!(
        get(
            r#"hdrtap_http_requests_total{method="POST",status_class="5xx",host="__overflow__",route="/",role="client"}"#
        ),
        "2"
    );
    assert_eq!(
        get(
            r#"hdrtap_http_requests_total{method="_UNPAIRED",status_class="2xx",host="__overflow__",route="",role="client"}"#
        ),
        "1"
    );
    assert!(
        !s.contains("1xx"),
        "interim responses are not requests:\n{s}"
    );
    assert_eq!(
        get(r#"hdrtap_http_request_duration_seconds_bucket{role="server",le="0.005"}"#),
        "2"
    );
    assert_eq!(
        get(r#"hdrtap_http_request_duration_seconds_bucket{role="server",le="+Inf"}"#),
        "3"
    );
    assert_eq!(
        get(r#"hdrtap_http_request_duration_seconds_count{role="client"}"#),
        "3"
    );
    assert_eq!(
        get(r#"hdrtap_alerts_total{rule="path_traversal",severity="high"}"#),
        "0"
    );
}

#[test]
fn exposition_has_self_metrics_and_is_served() {
    let board = Arc::new(StatusBoard::default());
    #[derive(serde::Serialize)]
    struct S {
        records: u64,
        kernel_events: u64,
        lost_events: u64,
        conn_map_full: u64,
        inflight_full: u64,
        conns_open: u64,
    }
    board.publish(CaptureStatus {
        stats: Arc::new(StatsSnapshot::new(
            "http",
            0,
            &S {
                records: 5,
                kernel_events: 9,
                lost_events: 2,
                conn_map_full: 1,
                inflight_full: 3,
                conns_open: 4,
            },
        )),
        ring_fill: Some((1024, 4096)),
    });
    let counters = Arc::new(SinkCounters::default());
    SinkCounters::add(&counters.dropped_queue, 7);
    let exp = Exposition {
        traffic: Arc::new(Mutex::new(Traffic::new(10, 10))),
        board,
        sinks: Arc::new(Mutex::new(vec![SinkInfo {
            name: "otlp".into(),
            sink_type: "otlp",
            counters,
        }])),
    };
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), exp).unwrap();
    let mut c = std::net::TcpStream::connect(server.addr()).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    server.stop();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("text/plain; version=0.0.4"), "{resp}");
    let get = |p: &str| sample(&resp, p).unwrap_or_else(|| panic!("no {p} in\n{resp}"));
    assert_eq!(get(r#"hdrtap_events_total{capture="http"}"#), "9");
    assert_eq!(
        get(r#"hdrtap_events_lost_total{capture="http",reason="ringbuf_full"}"#),
        "2"
    );
    assert_eq!(
        get(r#"hdrtap_events_lost_total{capture="http",reason="map_full"}"#),
        "4"
    );
    assert_eq!(
        get(r#"hdrtap_ring_buffer_fill_ratio{capture="http"}"#),
        "0.25"
    );
    assert_eq!(get(r#"hdrtap_connections_tracked{capture="http"}"#), "4");
    assert_eq!(
        get(r#"hdrtap_sink_dropped_records_total{sink="otlp",type="otlp",reason="queue_full"}"#),
        "7"
    );
    // Each family declared once, before its samples.
    let mut declared = std::collections::HashSet::new();
    for l in resp.lines().filter(|l| l.starts_with("# TYPE ")) {
        assert!(declared.insert(l.to_string()), "twice: {l}");
    }
}

#[test]
fn other_paths_are_404() {
    let exp = Exposition {
        traffic: Arc::new(Mutex::new(Traffic::new(10, 10))),
        board: Arc::default(),
        sinks: Arc::default(),
    };
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), exp).unwrap();
    let mut c = std::net::TcpStream::connect(server.addr()).unwrap();
    c.write_all(b"GET /nope HTTP/1.0\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    server.stop();
    assert!(
        resp.starts_with("HTTP/1.0 404") || resp.starts_with("HTTP/1.1 404"),
        "{resp}"
    );
}

/// The stats of both captures as hdrtap publishes them, every field set.
fn real_stats() -> Vec<StatsSnapshot> {
    vec![
        StatsSnapshot::new("http", 0, &hdrtap_core::stats::Stats::default()),
        StatsSnapshot::new("packets", 0, &hdrtap_core::stats::PacketStats::default()),
    ]
}

#[test]
fn every_stats_field_has_a_series_and_every_named_field_exists() {
    let board = Arc::new(StatusBoard::default());
    for snap in real_stats() {
        // The curated metrics name fields: each must exist (a renamed
        // field would otherwise lose its series silently).
        let named = COUNTERS
            .iter()
            .flat_map(|(_, _, f)| f.iter().copied())
            .chain(LOST.iter().map(|(s, f, _)| (*s, *f)))
            .chain(GAUGE_FIELDS.iter().map(|f| ("http", *f)))
            .filter(|(s, _)| *s == snap.source);
        for (_, field) in named {
            assert!(
                snap.fields.iter().any(|(f, _)| f == field),
                "{} stats have no field {field}, which /metrics reads",
                snap.source
            );
        }
        board.publish(CaptureStatus {
            stats: Arc::new(snap),
            ring_fill: None,
        });
    }
    let text = Exposition {
        traffic: Arc::new(Mutex::new(Traffic::new(10, 10))),
        board,
        sinks: Arc::new(Mutex::new(Vec::new())),
    }
    .render();
    // Every field of the real stats structs has a series.
    for snap in real_stats() {
        for (field, _) in &snap.fields {
            let family = if GAUGE_FIELDS.contains(&field.as_str()) {
                "hdrtap_stats_current"
            } else {
                "hdrtap_stats_total"
            };
            let series = format!(
                "{family}{{capture=\"{}\",field=\"{field}\"}} 0",
                snap.source
            );
            assert!(text.contains(&series), "no series {series}:\n{text}");
        }
    }
}

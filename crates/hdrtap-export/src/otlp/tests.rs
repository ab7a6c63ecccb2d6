use super::*;
use hdrtap_core::record::{Endpoint, Headers, HttpKind, HttpRecord, Process, RequestRef, Role};
use hdrtap_core::rules::{Alert, Severity};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::sync::Mutex;

fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port,
    }
}

fn request() -> HttpRecord {
    HttpRecord {
        kind: HttpKind::Request,
        id: 17,
        ts_unix_ns: 1_700_000_000_000_000_001,
        conn_id: 4,
        sock_cookie: 0,
        process: Process {
            pid: 100,
            tid: 101,
            comm: "curl".into(),
            cgroup_id: 9,
            workload: None,
        },
        local: ep("127.0.0.1", 40000),
        remote: ep("127.0.0.1", 8080),
        role: Role::Client,
        version: "HTTP/1.1",
        method: Some("GET".into()),
        target: Some("/a/b?x=1&y=2".into()),
        status: None,
        reason: None,
        latency_ns: None,
        request: None,
        headers: [
            ("Host", "127.0.0.1:8080"),
            ("User-Agent", "curl/7.88.1"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
        ]
        .into_iter()
        .collect::<Headers>(),
        header_bytes: 99,
        truncated: false,
        tls: false,
        tls_library: None,
        flags: vec!["midstream"],
        anomalies: 0,
        framing: Default::default(),
        h2: None,
        tcp_seq: None,
        packets: None,
        interface: None,
    }
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a Value> {
    r.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(r: &'a LogRecord, key: &str) -> &'a str {
    match attr(r, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{key}: {other:?}"),
    }
}

fn int_attr(r: &LogRecord, key: &str) -> i64 {
    match attr(r, key) {
        Some(Value::IntValue(n)) => *n,
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn request_maps_to_semantic_conventions() {
    let rec = Record::Http(Arc::new(request()));
    let l = map::log_record(&rec, BodyMode::Json, 5);
    assert_eq!(l.time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(l.observed_time_unix_nano, 5);
    assert_eq!(l.event_name, "hdrtap.http");
    assert_eq!(str_attr(&l, "hdrtap.record.kind"), "http_request");
    assert_eq!(int_attr(&l, "hdrtap.record.id"), 17);
    assert_eq!(int_attr(&l, "hdrtap.conn_id"), 4);
    assert_eq!(str_attr(&l, "http.request.method"), "GET");
    assert_eq!(str_attr(&l, "url.path"), "/a/b");
    assert_eq!(str_attr(&l, "url.query"), "x=1&y=2");
    assert_eq!(str_attr(&l, "url.scheme"), "http");
    assert_eq!(str_attr(&l, "network.peer.address"), "127.0.0.1");
    assert_eq!(int_attr(&l, "network.peer.port"), 8080);
    assert_eq!(int_attr(&l, "network.local.port"), 40000);
    assert_eq!(int_attr(&l, "process.pid"), 100);
    assert_eq!(int_attr(&l, "thread.id"), 101);
    assert_eq!(str_attr(&l, "process.executable.name"), "curl");
    assert_eq!(str_attr(&l, "user_agent.original"), "curl/7.88.1");
    assert_eq!(str_attr(&l, "network.protocol.version"), "1.1");
    match attr(&l, "http.request.header.x-dup") {
        Some(Value::ArrayValue(a)) => {
            let v: Vec<_> = a
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(Value::StringValue(s)) => s.as_str(),
                    _ => panic!(),
                })
                .collect();
            assert_eq!(v, ["1", "2"]);
        }
        other => panic!("{other:?}"),
    }
    match &l.body {
        Some(AnyValue {
            value: Some(Value::StringValue(body)),
        }) => {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["id"], 17);
        }
        other => panic!("{other:?}"),
    }
    let summary = map::log_record(&rec, BodyMode::Summary, 5);
    match &summary.body.unwrap().value {
        Some(Value::StringValue(b)) => assert!(b.contains("GET /a/b?x=1&y=2 HTTP/1.1"), "{b}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_alert_and_method_normalisation() {
    let mut r = request();
    r.kind = HttpKind::Response;
    r.method = None;
    r.target = None;
    r.status = Some(404);
    r.latency_ns = Some(1234);
    r.request = Some(RequestRef {
        method: "BREW".into(),
        target: "/pot".into(),
        host: None,
    });
    let l = map::log_record(&Record::Http(Arc::new(r.clone())), BodyMode::Json, 0);
    assert_eq!(int_attr(&l, "http.response.status_code"), 404);
    assert_eq!(str_attr(&l, "http.request.method"), "_OTHER");
    assert_eq!(str_attr(&l, "http.request.method_original"), "BREW");
    assert_eq!(str_attr(&l, "url.path"), "/pot");
    assert_eq!(int_attr(&l, "hdrtap.latency_ns"), 1234);
    assert!(attr(&l, "http.response.header.host").is_some());

    let a = Alert {
        id: 18,
        rule: "path_traversal",
        severity: Severity::High,
        record_id: 17,
        record_kind: HttpKind::Request,
        ts_unix_ns: 3,
        conn_id: 4,
        pid: 100,
        tid: 101,
        comm: "nginx".into(),
        local: r.local,
        remote: r.remote,
        role: Role::Server,
        tls: false,
        method: Some("GET".into()),
        target: Some("/../x".into()),
        detail: "`..` segment".into(),
    };
    let l = map::log_record(&Record::Alert(Arc::new(a)), BodyMode::Json, 0);
    assert_eq!(l.severity_number, SeverityNumber::Error as i32);
    assert_eq!(l.severity_text, "ERROR");
    assert_eq!(str_attr(&l, "hdrtap.alert.rule"), "path_traversal");
    assert_eq!(int_attr(&l, "hdrtap.alert.record_id"), 17);
    assert_eq!(int_attr(&l, "hdrtap.record.id"), 18);
}

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;

#[test]
fn logs_urls() {
    assert_eq!(http_logs_url("http://c:4318"), "http://c:4318/v1/logs");
    assert_eq!(http_logs_url("http://c:4318/"), "http://c:4318/v1/logs");
    assert_eq!(
        http_logs_url("http://c:4318/custom/logs"),
        "http://c:4318/custom/logs"
    );
}

/// A one-thread OTLP/HTTP receiver: answers each POST with `status`,
/// decodes bodies with the protobuf schema.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
}

fn receiver(statuses: Vec<u16>) -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<ExportLogsServiceRequest>>> = Arc::default();
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((s, _)) = l.accept() else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            let mut gzip = false;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("content-encoding: gzip") {
                    gzip = true;
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            if gzip {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                body = out;
            }
            if status == 200 {
                g.lock()
                    .unwrap()
                    .push(ExportLogsServiceRequest::decode(&body[..]).unwrap());
            }
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver { port, got }
}

fn opts(port: u16) -> OtlpOptions {
    OtlpOptions {
        endpoint: format!("http://127.0.0.1:{port}"),
        batch_size: 3,
        batch_timeout: Duration::from_millis(50),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(40),
        retry_max_elapsed: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        ..OtlpOptions::default()
    }
}

fn recs(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = request();
            r.id = i + 1;
            Record::Http(Arc::new(r))
        })
        .collect()
}

#[test]
fn batches_and_retries_over_http() {
    // 503 first: retried; then accepted.
    let rx = receiver(vec![503, 200, 200, 200]);
    let counters = Arc::new(SinkCounters::default());
    let mut o = opts(rx.port);
    o.gzip = true;
    o.headers = vec![("X-Api-Key".into(), "k".into())];
    let mut sink = OtlpSink::new(o, Arc::clone(&counters), Arc::default()).unwrap();
    sink.write(&recs(4)); // one full batch of 3 goes now
    std::thread::sleep(Duration::from_millis(80));
    sink.tick(); // the 4th after the batch timeout
    sink.close();
    let got = rx.got.lock().unwrap();
    let sizes: Vec<usize> = got
        .iter()
        .map(|r| r.resource_logs[0].scope_logs[0].log_records.len())
        .collect();
    assert_eq!(sizes, [3, 1]);
    let res = got[0].resource_logs[0].resource.as_ref().unwrap();
    assert!(res.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.as_ref().unwrap().value == Some(Value::StringValue("hdrtap".into()))));
    let s = counters.snapshot();
    assert_eq!((s.records, s.errors, s.dropped_failed), (4, 1, 0), "{s:?}");
}

#[test]
fn a_dead_collector_costs_counted_drops_then_export_resumes() {
    // Nothing listens: every attempt is refused, retries give up.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let counters = Arc::new(SinkCounters::default());
    let mut o = opts(port);
    o.retry_max_elapsed = Duration::from_millis(100);
    let mut sink = OtlpSink::new(o, Arc::clone(&counters), Arc::default()).unwrap();
    let t = Instant::now();
    sink.write(&recs(3));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let s = counters.snapshot();
    assert_eq!((s.records, s.dropped_failed), (0, 3), "{s:?}");
    assert!(s.errors >= 2, "retried: {s:?}");
    // A permanent error (400) drops at once, without retrying.
    let rx = receiver(vec![400, 200]);
    let c2 = Arc::new(SinkCounters::default());
    let mut sink = OtlpSink::new(opts(rx.port), Arc::clone(&c2), Arc::default()).unwrap();
    sink.write(&recs(3));
    sink.write(&recs(3));
    let s = c2.snapshot();
    assert_eq!((s.records, s.errors, s.dropped_failed), (3, 1, 3), "{s:?}");
}

#[test]
fn stopping_cuts_retries_short() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let counters = Arc::new(SinkCounters::default());
    let stopping = Arc::new(AtomicBool::new(true));
    let mut o = opts(port);
    o.retry_max_elapsed = Duration::from_secs(60);
    let mut sink = OtlpSink::new(o, Arc::clone(&counters), stopping).unwrap();
    let t = Instant::now();
    sink.write(&recs(3));
    sink.close();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(counters.snapshot().dropped_failed, 3);
}

//! The OTLP sink against a receiver that decodes with the official
//! OpenTelemetry protobuf schema (Python's opentelemetry-proto, grpcio):
//! records arrive complete with the expected attributes over OTLP/HTTP and
//! OTLP/gRPC; with the receiver down hdrtap keeps capturing and counts its
//! drops; when it comes back, export resumes. Root only; scripts/test.sh.
#![forbid(unsafe_code)]
use std::collections::HashMap;
use std::time::Duration;

use hdrtap_tests::*;

/// Log records by `hdrtap.record.id`.
fn by_id(records: &[Value]) -> HashMap<u64, &Value> {
    records
        .iter()
        .filter_map(|r| Some((r["attributes"]["hdrtap.record.id"].as_u64()?, r)))
        .collect()
}

fn export_and_compare(protocol: &str) {
    let _guard = setup();
    let nginx = Nginx::start();
    let rx = if protocol == "grpc" {
        OtlpReceiver::start(None, Some(0))
    } else {
        OtlpReceiver::start(Some(0), None)
    };
    let port = rx.grpc_port.or(rx.http_port).unwrap();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n\
         [[sinks]]\ntype = \"otlp\"\nprotocol = \"{protocol}\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
         batch_size = 4\nbatch_timeout_ms = 200\ncompression = \"gzip\"\nresource = {{ \"deployment.environment\" = \"test\" }}\n",
        nginx.port
    ));
    let id = unique_id(&format!("otlp-{protocol}"));
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/?q=1&r=two"), &id, 1)
            .header("X-Custom", "a")
            .header("X-Custom", "b")
            .header("Authorization", "Bearer otlp-secret-7"),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2),
    ]);
    let want = run.expected_records(2);
    rx.wait_for(Duration::from_secs(10), |r| {
        r.iter()
            .filter(|v| {
                v["attributes"]["http.request.header.x-test-id"][0] == id.as_str()
                    && v["attributes"]["hdrtap.record.kind"] == "http_request"
            })
            .count()
            >= 4
    });
    let exit = d.stop();
    let file = read_ndjson(&exit.dir().join("out.ndjson"));
    let got = rx.records();
    let index = by_id(&got);
    assert!(
        exit.stderr.contains("sink otlp (otlp): ") && exit.stderr.contains(" 0 dropped (failed)"),
        "{}",
        exit.stderr
    );

    // Every record of the file sink arrived once, its JSON as the body.
    let mut seen = 0;
    for rec in file.iter().filter(|v| kind(v) != "stats") {
        let rid = rec["id"].as_u64().unwrap();
        let l = index.get(&rid).unwrap_or_else(|| {
            panic!("record {rid} not exported: {rec}\nstderr:\n{}", exit.stderr)
        });
        assert_eq!(l["transport"], protocol);
        let body: Value = serde_json::from_str(l["body"].as_str().unwrap()).unwrap();
        assert_eq!(&body, rec, "body of record {rid}");
        let a = &l["attributes"];
        assert_eq!(a["hdrtap.record.kind"], rec["kind"]);
        assert_eq!(l["time_unix_nano"].as_u64().map(|t| t > 0), Some(true));
        seen += 1;
    }
    assert!(
        seen >= want,
        "{seen} records compared, want at least {want}"
    );
    assert_eq!(
        got.iter()
            .filter(|r| r["attributes"]["hdrtap.record.id"].is_u64())
            .count(),
        index.len(),
        "a record exported twice"
    );

    // The attributes of nginx's view of request 1 and of its response.
    let req = got
        .iter()
        .find(|r| {
            let a = &r["attributes"];
            a["hdrtap.record.kind"] == "http_request"
                && a["hdrtap.role"] == "server"
                && a["http.request.header.x-seq"][0] == "1"
                && a["http.request.header.x-test-id"][0] == id.as_str()
        })
        .unwrap_or_else(|| panic!("nginx's request 1 not exported"));
    let a = &req["attributes"];
    let ex = &run.exchanges[0];
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["url.path"], "/");
    assert_eq!(a["url.query"], "q=1&r=two");
    assert_eq!(a["url.scheme"], "http");
    assert_eq!(a["network.peer.address"], ex.local.ip.as_str());
    assert_eq!(a["network.peer.port"], ex.local.port);
    assert_eq!(a["network.local.port"], nginx.port);
    assert_eq!(a["process.pid"], nginx.pid());
    assert_eq!(a["process.executable.name"], "nginx");
    assert!(a["thread.id"].is_u64());
    assert_eq!(a["network.protocol.version"], "1.1");
    assert_eq!(a["http.request.header.x-custom"], json!(["a", "b"]));
    assert!(a["user_agent.original"]
        .as_str()
        .unwrap()
        .starts_with("curl/"));
    let auth = a["http.request.header.authorization"][0].as_str().unwrap();
    assert!(auth.starts_with("Bearer [REDACTED len="), "{auth}");
    assert_eq!(req["severity_text"], "INFO");
    assert_eq!(req["event_name"], "hdrtap.http");
    assert_eq!(req["resource"]["service.name"], "hdrtap");
    assert_eq!(req["resource"]["deployment.environment"], "test");
    assert!(req["resource"]["host.name"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert_eq!(req["scope"]["name"], "hdrtap");

    let resp = got
        .iter()
        .find(|r| {
            let a = &r["attributes"];
            a["hdrtap.record.kind"] == "http_response"
                && a["hdrtap.role"] == "server"
                && a["http.response.header.x-echo-seq"][0] == "2"
                && a["http.response.header.x-echo-test-id"][0] == id.as_str()
        })
        .expect("nginx's response 2 exported");
    assert_eq!(resp["attributes"]["http.response.status_code"], 404);
    assert_eq!(resp["attributes"]["url.path"], "/status/404");
    assert!(resp["attributes"]["hdrtap.latency_ns"].is_u64());

    // The cleartext Authorization alert went out as a WARN log record,
    // pointing at its record, without the secret.
    let alert = got
        .iter()
        .find(|r| r["attributes"]["hdrtap.alert.rule"] == "cleartext_credentials")
        .expect("alert exported");
    assert_eq!(alert["severity_text"], "WARN");
    assert!(index.contains_key(
        &alert["attributes"]["hdrtap.alert.record_id"]
            .as_u64()
            .unwrap()
    ));
    let everything = serde_json::to_string(&got).unwrap();
    assert!(!everything.contains("otlp-secret-7"), "secret exported");
}

#[test]
fn otlp_http_records_arrive_complete() {
    export_and_compare("http");
}

#[test]
fn otlp_grpc_records_arrive_complete() {
    export_and_compare("grpc");
}

#[test]
fn collector_down_drops_are_counted_and_export_resumes() {
    let _guard = setup();
    let nginx = Nginx::start();
    let mut rx = OtlpReceiver::start(Some(0), None);
    let otlp_port = rx.http_port.unwrap();
    let metrics_port = free_port();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\ntls = false\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n\
         [[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [[sinks]]\ntype = \"otlp\"\nprotocol = \"http\"\nendpoint = \"http://127.0.0.1:{otlp_port}\"\n\
         batch_size = 8\nbatch_timeout_ms = 100\nretry_initial_ms = 50\nretry_max_ms = 200\n\
         retry_max_elapsed_ms = 400\ntimeout_ms = 1000\nqueue_records = 64\nkinds = [\"http\"]\n",
        nginx.port
    ));
    let id = unique_id("down");
    let count = |recs: &[Value], phase: &str| {
        recs.iter()
            .filter(|r| {
                r["attributes"]["http.request.header.x-test-id"][0]
                    == format!("{id}-{phase}").as_str()
            })
            .count()
    };
    let traffic = |phase: &str, n: u32| {
        let tid = format!("{id}-{phase}");
        let reqs: Vec<CurlRequest> = (1..=n)
            .map(|s| CurlRequest::get(nginx.url_v4("/"), &tid, s))
            .collect();
        curl(&reqs)
    };

    // 1. Up: records arrive.
    traffic("up", 3);
    let got = rx.wait_for(Duration::from_secs(10), |r| count(r, "up") >= 6);
    assert_eq!(count(&got, "up"), 6, "3 requests, both sides");

    // 2. Down: capture goes on (the file sink has everything), the OTLP
    //    sink counts what it could not deliver.
    rx.stop();
    let run = traffic("down", 40);
    assert_eq!(run.exchanges.len(), 40);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut last_metrics;
    let (dropped, errors) = loop {
        let (_, m) = http_get(metrics_port, "/metrics").unwrap();
        last_metrics = m
            .lines()
            .filter(|l| l.contains("sink="))
            .collect::<Vec<_>>()
            .join("\n");
        let f = metric(
            &m,
            r#"hdrtap_sink_dropped_records_total{sink="otlp",type="otlp",reason="failed"}"#,
        )
        .unwrap_or(0.0);
        let q = metric(
            &m,
            r#"hdrtap_sink_dropped_records_total{sink="otlp",type="otlp",reason="queue_full"}"#,
        )
        .unwrap_or(0.0);
        let e = metric(&m, r#"hdrtap_sink_errors_total{sink="otlp",type="otlp"}"#).unwrap_or(0.0);
        // Every record of the 40 exchanges is accounted for as dropped,
        // and the failed exports as errors.
        if (f + q >= 160.0 && e >= 1.0) || std::time::Instant::now() > deadline {
            break (f + q, e);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        dropped >= 160.0,
        "dropped {dropped} of 160 records while down:\n{last_metrics}"
    );
    assert!(
        errors >= 1.0,
        "no export errors counted:\n{last_metrics}\n{}",
        d.stderr()
    );
    let file = read_ndjson(&d.dir().join("out.ndjson"));
    let down_in_file = file
        .iter()
        .filter(|v| kind(v) == "http_request")
        .filter(|v| header(v, "X-Test-Id").as_deref() == Some(format!("{id}-down").as_str()))
        .count();
    assert_eq!(
        down_in_file, 80,
        "capture went on while the collector was down"
    );

    // 3. Back: export resumes.
    rx.restart();
    assert_eq!(rx.http_port, Some(otlp_port));
    // Let a failing batch in flight finish its retries first.
    std::thread::sleep(Duration::from_millis(800));
    traffic("back", 3);
    let got = rx.wait_for(Duration::from_secs(15), |r| count(r, "back") >= 6);
    assert_eq!(count(&got, "back"), 6, "export did not resume");
    let exit = d.stop();
    assert!(exit.stderr.contains("sink otlp (otlp):"), "{}", exit.stderr);
}

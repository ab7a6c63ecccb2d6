//! Security rules against a real nginx: every rule fires on a crafted
//! request (sent byte for byte by this test over its own socket, whatever
//! nginx makes of it) and stays silent on clean traffic. Alerts name the
//! offending record by id and never carry a secret. Root only.
#![forbid(unsafe_code)]
use std::collections::BTreeSet;
use std::time::Duration;

use hdrtap_tests::*;

/// A crafted request and the rules it must fire (exactly these).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    rules: &'static [&'static str],
}

fn req(id: &str, seq: usize, line: &str, extra: &str, body: &str) -> Vec<u8> {
    format!("{line}\r\nHost: 127.0.0.1\r\nUser-Agent: hdrtap-rules-test\r\nX-Test-Id: {id}\r\nX-Seq: {seq}\r\n{extra}\r\n{body}")
        .into_bytes()
}

fn cases(id: &str) -> Vec<Case> {
    let big = "a".repeat(9000);
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut c = vec![
        (
            "scanner_user_agent",
            "GET / HTTP/1.1",
            "User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)\r\n".to_string(),
            "",
            &["scanner_user_agent"][..],
        ),
        (
            "oversized_header_value",
            "GET / HTTP/1.1",
            format!("X-Big: {big}\r\n"),
            "",
            &["oversized_header_value"],
        ),
        (
            "too_many_headers",
            "GET / HTTP/1.1",
            many,
            "",
            &["too_many_headers"],
        ),
        (
            "smuggling_cl_te",
            "POST / HTTP/1.1",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n".into(),
            "0\r\n\r\n",
            &["smuggling_cl_te"],
        ),
        (
            "smuggling_cl_conflict",
            "POST / HTTP/1.1",
            "Content-Length: 5\r\nContent-Length: 6\r\n".into(),
            "hello",
            &["smuggling_cl_conflict"],
        ),
        (
            "smuggling_te_invalid",
            "POST / HTTP/1.1",
            "Transfer-Encoding: xchunked\r\n".into(),
            "",
            &["smuggling_te_invalid"],
        ),
        (
            "smuggling_obs_fold",
            "GET / HTTP/1.1",
            "X-Folded: first\r\n  continued\r\n".into(),
            "",
            &["smuggling_obs_fold"],
        ),
        (
            "smuggling_invalid_chars",
            "GET / HTTP/1.1",
            "Transfer-Encoding : chunked\r\n".into(),
            "",
            &["smuggling_invalid_chars"],
        ),
        (
            "header_ctl_chars",
            "GET / HTTP/1.1",
            "X-Ctl: a\0b\r\n".into(),
            "",
            &["header_ctl_chars"],
        ),
        (
            "crlf_injection",
            "GET /redirect?to=%0d%0aSet-Cookie:%20evil=1 HTTP/1.1",
            String::new(),
            "",
            &["crlf_injection"],
        ),
        (
            "path_traversal (plain)",
            "GET /static/../../etc/passwd HTTP/1.1",
            String::new(),
            "",
            &["path_traversal"],
        ),
        (
            "path_traversal (encoded)",
            "GET /static/..%2f..%2f..%2fetc/passwd HTTP/1.1",
            String::new(),
            "",
            &["path_traversal"],
        ),
        (
            "cleartext_credentials",
            "GET / HTTP/1.1",
            "Authorization: Basic cnVsZXM6c2VjcmV0LXB3ZA==\r\n".into(),
            "",
            &["cleartext_credentials"],
        ),
    ];
    // The scanner request carries its own User-Agent: drop the default one.
    let mut out = Vec::new();
    for (i, (name, line, extra, body, rules)) in c.drain(..).enumerate() {
        let mut bytes = req(id, i + 1, line, &extra, body);
        if name == "scanner_user_agent" {
            let s = String::from_utf8(bytes).unwrap().replacen(
                "User-Agent: hdrtap-rules-test\r\n",
                "",
                1,
            );
            bytes = s.into_bytes();
        }
        out.push(Case { name, bytes, rules });
    }
    out
}

#[test]
fn every_rule_fires_on_its_crafted_request_and_names_the_record() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--no-tls"]);
    let id = unique_id("rules");
    let cases = cases(&id);
    for c in &cases {
        // Each on its own connection: nginx closes many of them.
        let _ = send_raw(nginx.port, &c.bytes, Duration::from_secs(2));
    }
    let n = cases.len();
    let cap = hd.stop_when(SETTLE_TIMEOUT * 2, |r| {
        r.iter()
            .filter(|v| kind(v) == "http_request" && v["role"] == "server")
            .filter(|v| header(v, "X-Test-Id").as_deref() == Some(id.as_str()))
            .count()
            >= n
    });
    for (i, c) in cases.iter().enumerate() {
        let seq = (i + 1).to_string();
        for role in ["client", "server"] {
            let rec = cap
                .records
                .iter()
                .find(|v| {
                    kind(v) == "http_request"
                        && v["role"] == role
                        && header(v, "X-Test-Id").as_deref() == Some(id.as_str())
                        && header(v, "X-Seq").as_deref() == Some(seq.as_str())
                })
                .unwrap_or_else(|| {
                    panic!("{}: no {role} request record\n{}", c.name, cap.dump_all())
                });
            let rid = rec["id"].as_u64().unwrap();
            let fired: BTreeSet<&str> = cap
                .records
                .iter()
                .filter(|v| kind(v) == "alert" && v["record_id"] == rid)
                .map(|v| v["rule"].as_str().unwrap())
                .collect();
            let want: BTreeSet<&str> = c.rules.iter().copied().collect();
            assert_eq!(fired, want, "{} ({role} record {rid}): {rec}", c.name);
            for a in cap
                .records
                .iter()
                .filter(|v| kind(v) == "alert" && v["record_id"] == rid)
            {
                assert_eq!(a["conn_id"], rec["conn_id"]);
                assert_eq!(a["pid"], rec["pid"]);
                assert_eq!(a["record_kind"], "http_request");
                assert!(["low", "medium", "high"].contains(&a["severity"].as_str().unwrap()));
                assert!(!a["detail"].as_str().unwrap().is_empty());
            }
        }
    }
    assert!(
        !cap.raw.contains("secret-pwd") && !cap.raw.contains("cnVsZXM6c2VjcmV0LXB3ZA"),
        "a secret reached the output"
    );
    let last = cap.records.last().unwrap();
    assert_eq!(kind(last), "stats");
    let alerts = cap.records.iter().filter(|v| kind(v) == "alert").count() as u64;
    assert_eq!(last["alerts"], alerts, "stats count the alerts");
}

#[test]
fn clean_traffic_raises_no_alert() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--no-tls"]);
    let id = unique_id("clean");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1).header("Accept-Language", "en-GB,en;q=0.8"),
        CurlRequest::get(nginx.url_v4("/big"), &id, 2),
        CurlRequest::get(nginx.url_v4("/chunked"), &id, 3),
        CurlRequest::get(nginx.url_v4("/status/404?a=1&b=..x"), &id, 4).header("Cookie", "a=%41b"),
        CurlRequest::get(nginx.url_v6("/setcookie"), &id, 5),
    ]);
    let raw = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &id)
            .paths("/,/big")
            .opt("--body-size", "100"),
    );
    let cap = hd.stop_when_http_count(run.expected_records(2) + raw.expected_records(2));
    let alerts: Vec<&Value> = cap.records.iter().filter(|v| kind(v) == "alert").collect();
    assert!(alerts.is_empty(), "alerts on clean traffic: {alerts:#?}");
    assert!(cap.http().count() >= run.expected_records(2));
}

#[test]
fn no_rules_turns_them_off() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--no-tls", "--no-rules"]);
    let id = unique_id("norules");
    let run =
        curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1).header("User-Agent", "sqlmap/1.7")]);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    assert!(
        cap.records.iter().all(|v| kind(v) != "alert"),
        "{}",
        cap.dump_all()
    );
    assert!(cap.stderr.contains("security rules off"), "{}", cap.stderr);
}

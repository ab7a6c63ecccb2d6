//! Redaction: secret header values, secret query parameters and userinfo
//! in every URL, on by default, in every output and sink; `--redact NAME`
//! adds headers, `--no-redact` turns the defaults off. Root only; run with
//! scripts/test.sh.
#![forbid(unsafe_code)]
use std::time::Duration;

use hdrtap_tests::*;

/// Secrets sent in the default-redacted headers; none may reach the output.
const SECRETS: &[&str] = &[
    "secret123",
    "othersecret456",
    "apikey-s3cr3t-1",
    "tok-s3cr3t-2",
    "cHJveHlzZWNyZXQ6cHc=",
    "topsecret456",
    "lowsecret789",
    "cookie-s3cr3t",
];

fn assert_absent(cap: &Capture, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !cap.raw.contains(s),
            "secret {s:?} appears in hdrtap's output:\n{}",
            cap.raw
                .lines()
                .filter(|l| l.contains(s))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !cap.stderr.contains(s),
            "secret {s:?} appears on hdrtap's stderr:\n{}",
            cap.stderr
        );
    }
}

/// The value of header `name` in the request record with X-Test-Id `id` and
/// X-Seq `seq` on `role`.
fn value_of(cap: &Capture, role: &str, id: &str, seq: u32, name: &str) -> String {
    let recs: Vec<&Value> = cap
        .http()
        .filter(|v| kind(v) == "http_request" && v["role"] == role)
        .filter(|v| {
            header(v, "X-Test-Id").as_deref() == Some(id)
                && header(v, "X-Seq") == Some(seq.to_string())
        })
        .collect();
    assert_eq!(
        recs.len(),
        1,
        "{role} {id}#{seq}: {recs:#?}\n{}",
        cap.dump_all()
    );
    header(recs[0], name).unwrap_or_else(|| panic!("{role} {id}#{seq} has no {name}: {}", recs[0]))
}

#[test]
fn default_redaction_hides_secrets_with_stable_markers() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("redact");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1)
            .header("Authorization", "Bearer secret123")
            .header("Cookie", "a=b")
            .header("X-Api-Key", "apikey-s3cr3t-1")
            .header("X-Auth-Token", "tok-s3cr3t-2")
            .header("Proxy-Authorization", "Basic cHJveHlzZWNyZXQ6cHc=")
            .header("X-Custom", "not secret"),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2)
            .header("Authorization", "Bearer secret123")
            .header("Cookie", "a=b"),
        CurlRequest::get(nginx.url_v4("/"), &id, 3)
            .header("Authorization", "Bearer othersecret456"),
        CurlRequest::get(nginx.url_v4("/setcookie"), &id, 4).header("Cookie", "cookie-s3cr3t=1"),
    ]);
    // Header names in other cases are the same headers.
    let raw_id = unique_id("redact-raw");
    let raw = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 2, &raw_id)
            .header("authorization: Bearer lowsecret789")
            .header("COOKIE: a=b"),
    );
    let resp4 = run.exchanges[3].response.as_ref().unwrap();
    assert!(
        resp4
            .headers
            .iter()
            .any(|(n, v)| n == "Set-Cookie" && v == SET_COOKIE_VALUE),
        "nginx did not send Set-Cookie: {resp4:?}"
    );
    let cap = hd.stop_when_http_count(run.expected_records(2) + raw.expected_records(2));
    let exp = Expect::new(&nginx); // default redaction list: markers with the right len
    check_both_sides(&cap, &run, &exp);
    check_both_sides(&cap, &raw, &exp);
    // nginx got the real values (so they were on the wire hdrtap traced).
    check_access_log(&nginx, &cap, &run, &exp);
    check_access_log(&nginx, &cap, &raw, &exp);
    assert_absent(&cap, SECRETS);

    // Equal values give equal markers, across requests and across the client
    // and server sides; different values give different markers.
    let auth = |role, seq| value_of(&cap, role, &id, seq, "Authorization");
    let marker = auth("client", 1);
    assert!(parse_marker(&marker).is_some(), "{marker}");
    for (role, seq) in [("server", 1), ("client", 2), ("server", 2)] {
        assert_eq!(
            auth(role, seq),
            marker,
            "Authorization marker of {role} #{seq} differs"
        );
    }
    assert_ne!(auth("client", 3), marker, "different secrets, same marker");
    assert_eq!(auth("client", 3), auth("server", 3));
    let cookie = value_of(&cap, "client", &id, 1, "Cookie");
    assert_eq!(value_of(&cap, "server", &id, 2, "Cookie"), cookie);
    assert_eq!(
        value_of(&cap, "client", &raw_id, 1, "COOKIE"),
        cookie,
        "COOKIE: a=b vs Cookie: a=b"
    );
    assert_ne!(cookie, marker);
    assert_eq!(value_of(&cap, "client", &id, 1, "X-Custom"), "not secret");
}

#[test]
fn no_redact_shows_values() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--no-redact"]);
    let id = unique_id("noredact");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1)
            .header("Authorization", "Bearer secret123")
            .header("Cookie", "a=b")
            .header("X-Api-Key", "apikey-s3cr3t-1"),
        CurlRequest::get(nginx.url_v4("/setcookie"), &id, 2)
            .header("Authorization", "Bearer secret123"),
    ]);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx).redacted(&[]); // every value exactly as on the wire
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
    assert_eq!(
        value_of(&cap, "client", &id, 1, "Authorization"),
        "Bearer secret123"
    );
    assert_eq!(value_of(&cap, "server", &id, 1, "Cookie"), "a=b");
    assert!(
        cap.raw.contains(SET_COOKIE_VALUE),
        "Set-Cookie value missing:\n{}",
        cap.dump_all()
    );
}

#[test]
fn redact_adds_headers_case_insensitively() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--redact",
        "x-custom",
        "--redact",
        "X-Other-Secret",
    ]);
    let id = unique_id("redactx");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)
        .header("X-Custom", "custom-s3cr3t-value")
        .header("X-Other-Secret", "other-s3cr3t-value")
        .header("Authorization", "Bearer secret123")
        .header("Accept-Language", "de")]);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let mut redacted: Vec<&str> = DEFAULT_REDACTED.to_vec();
    redacted.extend(["x-custom", "x-other-secret"]);
    let exp = Expect::new(&nginx).redacted(&redacted);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
    assert_absent(
        &cap,
        &["custom-s3cr3t-value", "other-s3cr3t-value", "secret123"],
    );
    assert_eq!(value_of(&cap, "server", &id, 1, "Accept-Language"), "de");
}

#[test]
fn redaction_key_is_random_per_run() {
    let _guard = setup();
    let nginx = Nginx::start();
    let mut markers = Vec::new();
    for run_no in 0..2 {
        let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
        let id = unique_id(&format!("key{run_no}"));
        let run =
            curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)
                .header("Authorization", "Bearer secret123")]);
        let cap = hd.stop_when_http_count(run.expected_records(2));
        check_both_sides(&cap, &run, &Expect::new(&nginx));
        markers.push(value_of(&cap, "client", &id, 1, "Authorization"));
    }
    let (a, b) = (
        parse_marker(&markers[0]).unwrap(),
        parse_marker(&markers[1]).unwrap(),
    );
    assert_eq!(a.0, b.0, "same value, different len");
    assert_ne!(
        a.1, b.1,
        "two runs hashed the same secret to the same value: the key is not random per run"
    );
}

/// Secrets sent in URLs, Host and the URL headers by [`send_url_secrets`]
/// (and by nginx's `/oauth-redirect`); none may reach any output.
const URL_SECRETS: &[&str] = &[
    "at-s3cr3t-1",
    "sig-s3cr3t-2",
    "amz-s3cr3t-3",
    "ref-s3cr3t-4",
    "hostpw-s3cr3t-5",
    "abspw-s3cr3t-6",
    "trav-s3cr3t-7",
    OAUTH_CODE,
    OAUTH_STATE,
    OAUTH_CONTENT_KEY,
    OAUTH_REFRESH_TOKEN,
];

/// Requests that carry [`URL_SECRETS`], with X-Test-Id `id`, X-Seq 1 to 4:
/// a target with secret query parameters and a Referer with a token (curl);
/// a 302 whose Location holds an OAuth code (curl); an absolute-form target
/// and a Host with userinfo; a path traversal (an alert quotes its target)
/// with a token (raw). Returns how many records the curl requests give.
fn send_url_secrets(nginx: &Nginx, id: &str) {
    let run = curl(&[
        CurlRequest::get(
            nginx.url_v4(
                "/api?access_token=at-s3cr3t-1&sig=sig-s3cr3t-2&X-Amz-Signature=amz-s3cr3t-3&page=2",
            ),
            id,
            1,
        )
        .header("Referer", "https://app.example/?token=ref-s3cr3t-4"),
        CurlRequest::get(nginx.url_v4("/oauth-redirect"), id, 2),
    ]);
    let raw = |target: &str, host: &str, seq: u32| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nX-Test-Id: {id}\r\nX-Seq: {seq}\r\nConnection: close\r\n\r\n"
        )
    };
    send_raw(
        nginx.port,
        raw(
            "http://user:abspw-s3cr3t-6@svc/x?page=1",
            "user:hostpw-s3cr3t-5@svc",
            3,
        )
        .as_bytes(),
        Duration::from_secs(2),
    );
    send_raw(
        nginx.port,
        raw("/static/../etc/passwd?token=trav-s3cr3t-7", "localhost", 4).as_bytes(),
        Duration::from_secs(2),
    );
    assert_eq!(run.exchanges.len(), 2);
}

/// The record of `kind` on `role` with X-Test-Id `id` and X-Seq `seq`.
fn record<'a>(cap: &'a [Value], kind_: &str, role: &str, id: &str, seq: u32) -> &'a Value {
    // Responses carry no X-Test-Id: find the request, then its response.
    let req = cap
        .iter()
        .find(|v| {
            kind(v) == "http_request"
                && v["role"] == role
                && header(v, "X-Test-Id").as_deref() == Some(id)
                && header(v, "X-Seq") == Some(seq.to_string())
        })
        .unwrap_or_else(|| panic!("no {role} request {id}#{seq}"));
    if kind_ == "http_request" {
        return req;
    }
    cap.iter()
        .find(|v| {
            kind(v) == kind_
                && v["role"] == role
                && v["conn_id"] == req["conn_id"]
                && v["request"]["target"] == req["target"]
        })
        .unwrap_or_else(|| panic!("no {role} {kind_} for {id}#{seq}"))
}

/// Every record of [`send_url_secrets`] is in: 4 requests and the 302 on
/// both sides, and the path-traversal alerts.
fn url_secrets_done(recs: &[Value], id: &str) -> bool {
    let reqs = recs
        .iter()
        .filter(|v| kind(v) == "http_request" && header(v, "X-Test-Id").as_deref() == Some(id))
        .count();
    let redirects = recs
        .iter()
        .filter(|v| kind(v) == "http_response" && v["status"] == 302)
        .count();
    let alerts = recs
        .iter()
        .filter(|v| kind(v) == "alert" && v["rule"] == "path_traversal")
        .count();
    reqs >= 8 && redirects >= 2 && alerts >= 2
}

/// What the records must show: markers where the secrets were, the rest
/// of each URL intact.
fn check_url_markers(recs: &[Value], id: &str) {
    for role in ["client", "server"] {
        let r1 = record(recs, "http_request", role, id, 1);
        let t = r1["target"].as_str().unwrap();
        assert!(
            t.starts_with("/api?access_token=REDACTED_len11_")
                && t.contains("&sig=REDACTED_len12_")
                && t.contains("&X-Amz-Signature=REDACTED_len12_")
                && t.ends_with("&page=2"),
            "{role}: {t}"
        );
        let referer = header(r1, "Referer").unwrap();
        assert!(
            referer.starts_with("https://app.example/?token=REDACTED_len12_"),
            "{referer}"
        );
        let resp = record(recs, "http_response", role, id, 2);
        assert_eq!(resp["status"], 302);
        let loc = header(resp, "Location").unwrap();
        assert!(
            loc.starts_with("http://127.0.0.1/cb?code=REDACTED_len")
                && loc.contains("&state=REDACTED_len"),
            "{loc}"
        );
        let refresh = header(resp, "Refresh").unwrap();
        assert!(
            refresh.starts_with("0; url=/next?token=REDACTED_len"),
            "{refresh}"
        );
        let r3 = record(recs, "http_request", role, id, 3);
        let t3 = r3["target"].as_str().unwrap();
        assert!(
            t3.starts_with("http://REDACTED_len") && t3.ends_with("@svc/x?page=1"),
            "{t3}"
        );
        let host = header(r3, "Host").unwrap();
        let (info, rest) = host.split_once('@').unwrap();
        assert_eq!(rest, "svc");
        assert_eq!(
            parse_url_marker(info).map(|m| m.0),
            Some("user:hostpw-s3cr3t-5".len())
        );
        // The alert quotes the redacted target.
        let r4 = record(recs, "http_request", role, id, 4);
        let alert = recs
            .iter()
            .find(|v| kind(v) == "alert" && v["record_id"] == r4["id"])
            .unwrap_or_else(|| panic!("no alert for {r4}"));
        assert_eq!(alert["rule"], "path_traversal");
        assert!(
            alert["target"]
                .as_str()
                .unwrap()
                .contains("token=REDACTED_len13_"),
            "{alert}"
        );
    }
}

#[test]
fn url_secrets_reach_no_output_of_hdrtap_http() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("urlsecret");
    send_url_secrets(&nginx, &id);
    let cap = hd.stop_when(SETTLE_TIMEOUT, |r| url_secrets_done(r, &id));
    assert_absent(&cap, URL_SECRETS);
    check_url_markers(&cap.records, &id);
    // nginx saw the real values: the secrets were on the wire hdrtap traced.
    let log = std::fs::read_to_string(nginx.dir().join("access.log")).unwrap();
    assert!(log.contains("at-s3cr3t-1"), "nginx never got the secret");
}

#[test]
fn url_secrets_reach_no_sink_of_the_daemon() {
    let _guard = setup();
    let nginx = Nginx::start();
    let mut rx = OtlpReceiver::start(Some(0), None);
    let otlp_port = rx.http_port.unwrap();
    let metrics_port = free_port();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n\
         [[sinks]]\ntype = \"file\"\nname = \"human\"\npath = \"{{dir}}/out.txt\"\nformat = \"human\"\n\
         [[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [[sinks]]\ntype = \"otlp\"\nprotocol = \"http\"\nendpoint = \"http://127.0.0.1:{otlp_port}\"\nbatch_timeout_ms = 200\n",
        nginx.port
    ));
    let id = unique_id("urlsink");
    send_url_secrets(&nginx, &id);
    let file = d.dir().join("out.ndjson");
    let done = || url_secrets_done(&read_ndjson(&file), &id);
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = http_get(metrics_port, "/metrics").expect("metrics").1;
    let otlp = rx.wait_for(Duration::from_secs(10), |r| {
        serde_json::to_string(r)
            .unwrap()
            .contains("?token=REDACTED_len13_")
    });
    let exit = d.stop();
    rx.stop();
    let records = read_ndjson(&exit.dir().join("out.ndjson"));
    check_url_markers(&records, &id);
    let human = std::fs::read_to_string(exit.dir().join("out.txt")).unwrap();
    assert!(human.contains("REDACTED_len11_"), "{human}");
    let otlp_text = serde_json::to_string(&otlp).unwrap();
    assert!(
        otlp_text.contains("access_token=REDACTED_len11_"),
        "url.query: {otlp_text}"
    );
    assert!(
        otlp_text.contains("\"url.full\""),
        "no url.full: {otlp_text}"
    );
    assert!(
        metrics.contains("@svc\""),
        "no host label for svc:\n{metrics}"
    );
    for (what, text) in [
        (
            "file",
            std::fs::read_to_string(exit.dir().join("out.ndjson")).unwrap(),
        ),
        ("human file", human),
        ("OTLP", otlp_text),
        ("metrics", metrics),
        ("stderr", exit.stderr.clone()),
    ] {
        for s in URL_SECRETS {
            assert!(!text.contains(s), "{s} in the {what} output:\n{text}");
        }
    }
}

/// `--redact host` and `--redact user-agent` reach what is derived from
/// those headers: the Prometheus host label, OTLP's user_agent.original,
/// and the rules (a redacted User-Agent names no scanner; no alert quotes it).
#[test]
fn redacted_headers_reach_no_derived_field() {
    let _guard = setup();
    let nginx = Nginx::start();
    let mut rx = OtlpReceiver::start(Some(0), None);
    let otlp_port = rx.http_port.unwrap();
    let metrics_port = free_port();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\n[redaction]\nheaders = [\"host\", \"user-agent\"]\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n\
         [[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [[sinks]]\ntype = \"otlp\"\nprotocol = \"http\"\nendpoint = \"http://127.0.0.1:{otlp_port}\"\nbatch_timeout_ms = 200\n",
        nginx.port
    ));
    let id = unique_id("derived");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)
        .header("Host", "internal-host-s3cr3t.example")
        .header("User-Agent", "sqlmap/1.7 ua-s3cr3t")
        .header("Authorization", "Bearer derived-s3cr3t")]);
    let want = run.expected_records(2);
    let file = d.dir().join("out.ndjson");
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    while read_ndjson(&file).iter().filter(|v| is_http(v)).count() < want
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = http_get(metrics_port, "/metrics").expect("metrics").1;
    let otlp = rx.wait_for(Duration::from_secs(10), |r| r.len() >= want);
    let exit = d.stop();
    rx.stop();
    let records = read_ndjson(&exit.dir().join("out.ndjson"));
    let req = record(&records, "http_request", "server", &id, 1);
    assert!(
        parse_marker(&header(req, "Host").unwrap()).is_some(),
        "{req}"
    );
    assert!(
        parse_marker(&header(req, "User-Agent").unwrap()).is_some(),
        "{req}"
    );
    let rules: Vec<&str> = records
        .iter()
        .filter(|v| kind(v) == "alert" && v["record_id"] == req["id"])
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    // cleartext_credentials still fires: the marker keeps the scheme and length.
    assert!(rules.contains(&"cleartext_credentials"), "{rules:?}");
    assert!(!rules.contains(&"scanner_user_agent"), "{rules:?}");
    let alert = records
        .iter()
        .find(|v| {
            kind(v) == "alert"
                && v["rule"] == "cleartext_credentials"
                && v["record_id"] == req["id"]
        })
        .unwrap();
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("Bearer scheme, 21 bytes"),
        "{alert}"
    );
    assert!(
        metrics.contains("host=\"[redacted len=28 hash="),
        "{metrics}"
    );
    let otlp_text = serde_json::to_string(&otlp).unwrap();
    for (what, text) in [
        (
            "file",
            std::fs::read_to_string(exit.dir().join("out.ndjson")).unwrap(),
        ),
        ("OTLP", otlp_text),
        ("metrics", metrics),
        ("stderr", exit.stderr.clone()),
    ] {
        for s in ["internal-host-s3cr3t", "ua-s3cr3t", "derived-s3cr3t"] {
            assert!(!text.contains(s), "{s} in the {what} output:\n{text}");
        }
    }
}

//! Redaction of secret header values: on by default, `--redact NAME` adds
//! headers, `--no-redact` turns it off. Root only; run with scripts/test.sh.
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

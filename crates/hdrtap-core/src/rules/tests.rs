use super::*;
use crate::record::{flag, H2Info, Process};
use std::net::IpAddr;

fn rec(kind: HttpKind, target: &str, headers: &[(&str, &str)]) -> HttpRecord {
    let ep = |ip: &str, port| Endpoint {
        ip: ip.parse::<IpAddr>().unwrap(),
        port,
    };
    HttpRecord {
        kind,
        id: 9,
        ts_unix_ns: 1,
        conn_id: 3,
        sock_cookie: 0,
        process: Process {
            pid: 10,
            tid: 11,
            comm: "nginx".into(),
            cgroup_id: 0,
            workload: None,
        },
        local: ep("10.0.0.1", 80),
        remote: ep("10.0.0.2", 5555),
        role: Role::Server,
        method: (kind == HttpKind::Request).then(|| "GET".into()),
        target: (kind == HttpKind::Request).then(|| target.into()),
        status: (kind == HttpKind::Response).then_some(200),
        header_bytes: 100,
        ..crate::record::test_request(headers)
    }
}

fn req(target: &str, headers: &[(&str, &str)]) -> HttpRecord {
    rec(HttpKind::Request, target, headers)
}

fn fired(r: &HttpRecord) -> Vec<&'static str> {
    fired_with(r, RulesConfig::default())
}

fn fired_with(r: &HttpRecord, cfg: RulesConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    Rules::new(cfg).check(r, &mut out);
    out.iter().map(|a| a.rule).collect()
}

const CLEAN: &[(&str, &str)] = &[
    ("Host", "example.com"),
    ("User-Agent", "curl/7.88.1"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Cookie", "a=%41b"),
];

#[test]
fn clean_traffic_is_silent() {
    for target in [
        "/",
        "/a/b.c/d..e/?x=../y",
        "/%41%42",
        "/file.tar.gz",
        "/...",
        "/.well-known/x",
    ] {
        assert!(fired(&req(target, CLEAN)).is_empty(), "{target}");
    }
    let resp = rec(
        HttpKind::Response,
        "",
        &[
            ("Content-Length", "12"),
            ("Transfer-Encoding", "chunked"),
            ("X", "%0d"),
        ],
    );
    // A response with both is a smuggling sign too; encoded CR in a
    // response header is not a request attack.
    assert_eq!(fired(&resp), vec![rule::SMUGGLING_CL_TE]);
    let ok = rec(
        HttpKind::Response,
        "",
        &[("Server", "nginx"), ("Transfer-Encoding", "chunked")],
    );
    assert!(fired(&ok).is_empty());
    let chunked_req = req(
        "/",
        &[("Host", "a"), ("Transfer-Encoding", "gzip, chunked")],
    );
    assert!(fired(&chunked_req).is_empty());
}

#[test]
fn scanner_agents() {
    for ua in [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "Mozilla/5.0 zgrab/0.x",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    ] {
        let r = req("/", &[("Host", "a"), ("User-Agent", ua)]);
        let mut out = Vec::new();
        let mut rules = Rules::new(RulesConfig::default());
        rules.check(&r, &mut out);
        assert_eq!(out.len(), 1, "{ua}");
        assert_eq!(out[0].rule, rule::SCANNER_USER_AGENT);
        assert_eq!(out[0].record_id, 9);
        assert!(out[0].detail.contains("User-Agent names"), "{}", out[0].detail);
        // Cached verdicts give the same answer.
        let mut again = Vec::new();
        rules.check(&r, &mut again);
        assert_eq!(again, out);
    }
    let mine = RulesConfig {
        extra_scanner_agents: vec!["MyScanner".into()],
        ..RulesConfig::default()
    };
    let r = req("/", &[("User-Agent", "myscanner/2")]);
    assert!(fired(&r).is_empty());
    assert_eq!(fired_with(&r, mine), vec![rule::SCANNER_USER_AGENT]);
}

#[test]
fn oversized_values_and_counts() {
    let big = "x".repeat(9000);
    let r = req("/", &[("Host", "a"), ("X-Big", &big)]);
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&r, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule, rule::OVERSIZED_HEADER_VALUE);
    assert!(
        out[0].detail.contains("\"X-Big\" has a 9000-byte value"),
        "{}",
        out[0].detail
    );
    assert!(
        !out[0].detail.contains("xxxx"),
        "the value itself is not quoted"
    );
    let tuned = RulesConfig {
        max_header_value_bytes: 10_000,
        ..RulesConfig::default()
    };
    assert!(fired_with(&r, tuned).is_empty());

    let many: Vec<(String, String)> = (0..101).map(|i| (format!("X-{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(fired(&req("/", &many)), vec![rule::TOO_MANY_HEADERS]);
    assert!(fired(&req("/", &many[..100])).is_empty());
    let mut cut = req("/", CLEAN);
    cut.truncated = true;
    assert_eq!(fired(&cut), vec![rule::OVERSIZED_HEADER_VALUE]);
    // A start line cut at the limit: no header at all.
    let mut long = req(&format!("/{}", "a".repeat(300)), &[]);
    long.truncated = true;
    long.header_bytes = 17_000;
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&long, &mut out);
    assert_eq!(out.len(), 1);
    assert!(
        out[0]
            .detail
            .starts_with("start line longer than the capture limit")
            && out[0].detail.contains("17000 bytes"),
        "{}",
        out[0].detail
    );
    // A redacted value's marker stands for its length.
    let marker = crate::redact::Redactor::new(["cookie"])
        .unwrap()
        .marker(&"c".repeat(9000));
    let r = req("/", &[("Host", "a"), ("Cookie", &marker)]);
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&r, &mut out);
    assert!(
        out.len() == 1 && out[0].detail.contains("\"Cookie\" has a 9000-byte value"),
        "{out:?}"
    );
}

#[test]
fn smuggling_signs() {
    let both = req(
        "/",
        &[
            ("Host", "a"),
            ("Content-Length", "5"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    assert_eq!(fired(&both), vec![rule::SMUGGLING_CL_TE]);
    let conflict = req("/", &[("Content-Length", "5"), ("Content-Length", "6")]);
    assert_eq!(fired(&conflict), vec![rule::SMUGGLING_CL_CONFLICT]);
    let list = req("/", &[("Content-Length", "5, 7")]);
    assert_eq!(fired(&list), vec![rule::SMUGGLING_CL_CONFLICT]);
    let same = req(
        "/",
        &[
            ("Content-Length", "5"),
            ("content-length", "05"),
            ("Content-Length", "5,5"),
        ],
    );
    assert!(fired(&same).is_empty());
    let junk = req("/", &[("Content-Length", "5x")]);
    assert_eq!(fired(&junk), vec![rule::SMUGGLING_CL_CONFLICT]);
    for te in ["xchunked", "chunked, identity", "chunked,", "\"chunked\""] {
        let r = req("/", &[("Transfer-Encoding", te)]);
        assert_eq!(fired(&r), vec![rule::SMUGGLING_TE_INVALID], "{te}");
    }
    let twice = req(
        "/",
        &[
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    assert_eq!(fired(&twice), vec![rule::SMUGGLING_TE_INVALID]);
    let mut old = req("/", &[("Transfer-Encoding", "chunked")]);
    old.version = "HTTP/1.0";
    assert_eq!(fired(&old), vec![rule::SMUGGLING_TE_INVALID]);

    let mut fold = req("/", CLEAN);
    fold.anomalies = anomaly::OBS_FOLD;
    assert_eq!(fired(&fold), vec![rule::SMUGGLING_OBS_FOLD]);
    let mut bad = req("/", CLEAN);
    bad.anomalies = anomaly::BAD_HEADER_NAME;
    assert_eq!(fired(&bad), vec![rule::SMUGGLING_INVALID_CHARS]);
    let mut ctl = req("/", CLEAN);
    ctl.anomalies = anomaly::CTL_IN_VALUE;
    assert_eq!(fired(&ctl), vec![rule::HEADER_CTL_CHARS]);
}

#[test]
fn anomaly_scan_of_raw_blocks() {
    use crate::record::anomaly::*;
    assert_eq!(scan(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_eq!(scan(b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), OBS_FOLD);
    assert_eq!(scan(b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), OBS_FOLD);
    assert_eq!(
        scan(b"GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"),
        BAD_HEADER_NAME
    );
    assert_eq!(
        scan(b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
        BAD_HEADER_NAME
    );
    assert_eq!(scan(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), CTL_IN_VALUE);
    assert_eq!(scan(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), CTL_IN_VALUE);
    // Only the header block: what follows the blank line is body.
    assert_eq!(scan(b"GET / HTTP/1.1\r\nX: a\r\n\r\n b\0"), 0);
    assert_eq!(scan(b""), 0);
    assert_eq!(
        names(OBS_FOLD | CTL_IN_VALUE).collect::<Vec<_>>(),
        ["obs_fold", "ctl_in_value"]
    );
}

#[test]
fn ctl_and_encoded_crlf() {
    // Raw control characters come as the parser's anomaly (see
    // crafted_requests_through_the_tracker for the real thing).
    let mut raw = req("/", CLEAN);
    raw.anomalies = anomaly::CTL_IN_VALUE;
    assert_eq!(fired(&raw), vec![rule::HEADER_CTL_CHARS]);
    for target in ["/a%0d%0aSet-Cookie:x", "/a%0A", "/x?q=%00", "/%250d%250a"] {
        let r = req(target, CLEAN);
        assert_eq!(fired(&r), vec![rule::CRLF_INJECTION], "{target}");
    }
    let hdr = req("/", &[("X-Forwarded-For", "1.2.3.4%0d%0aX-Injected: 1")]);
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&hdr, &mut out);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].detail.contains("X-Forwarded-For"),
        "{}",
        out[0].detail
    );
    assert!(fired(&req("/%0b%41", CLEAN)).is_empty());
}

#[test]
fn traversal_plain_and_encoded() {
    for (t, encoded) in [
        ("/../etc/passwd", false),
        ("/static/../../x", false),
        ("/a/..", false),
        ("/%2e%2e/etc/passwd", true),
        ("/%2E%2E%2Fetc", true),
        ("/..%2fetc", true),
        ("/%252e%252e%252fetc", true),
        ("/%c0%ae%c0%ae/etc", true),
        ("/..\\..\\windows", true),
        ("/..%5c..%5cwindows", true),
    ] {
        let mut out = Vec::new();
        Rules::new(RulesConfig::default()).check(&req(t, CLEAN), &mut out);
        assert_eq!(out.len(), 1, "{t}: {out:?}");
        assert_eq!(out[0].rule, rule::PATH_TRAVERSAL, "{t}");
        assert_eq!(
            out[0].detail.starts_with("encoded"),
            encoded,
            "{t}: {}",
            out[0].detail
        );
    }
    // In the query only: not a path traversal.
    assert!(fired(&req("/search?q=../../x", CLEAN)).is_empty());
    assert!(fired(&req("/a..b/c..", CLEAN)).is_empty());
}

#[test]
fn cleartext_credentials_never_leak() {
    let r = req(
        "/",
        &[("Host", "a"), ("Authorization", "Basic dXNlcjpzZWNyZXQ=")],
    );
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&r, &mut out);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.rule, rule::CLEARTEXT_CREDENTIALS);
    assert_eq!(a.severity, Severity::Medium);
    assert!(a.detail.contains("Basic scheme, 22 bytes"), "{}", a.detail);
    assert!(!a.detail.contains("dXNl"), "{}", a.detail);
    // A bare token is not echoed as a scheme.
    let bare = req("/", &[("Authorization", "s3cr3t-token")]);
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&bare, &mut out);
    assert!(
        out[0].detail.contains("unknown scheme"),
        "{}",
        out[0].detail
    );
    assert!(!out[0].detail.contains("s3cr3t"));
    // The rules run on the redacted record: the marker keeps the scheme
    // and the length.
    let mut red = r.clone();
    crate::redact::Redactor::from_options(false, &[])
        .unwrap()
        .apply(&mut red);
    assert!(red
        .header("Authorization")
        .unwrap()
        .starts_with("Basic [REDACTED"));
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&red, &mut out);
    assert!(
        out[0].detail.contains("Basic scheme, 22 bytes"),
        "{}",
        out[0].detail
    );
    // Over TLS: fine. Disabled: silent. Responses: not checked.
    let mut tls = r.clone();
    tls.tls = true;
    assert!(fired(&tls).is_empty());
    let off = RulesConfig {
        disabled: vec![rule::CLEARTEXT_CREDENTIALS.into()],
        ..RulesConfig::default()
    };
    assert!(fired_with(&r, off).is_empty());
    let mut lo = r.clone();
    lo.local.ip = "127.0.0.1".parse().unwrap();
    lo.remote.ip = "127.0.0.1".parse().unwrap();
    assert_eq!(fired(&lo), vec![rule::CLEARTEXT_CREDENTIALS]);
    let quiet_lo = RulesConfig {
        cleartext_on_loopback: false,
        ..RulesConfig::default()
    };
    assert!(fired_with(&lo, quiet_lo).is_empty());
}

#[test]
fn alert_carries_the_record_context() {
    let r = req("/../x", CLEAN);
    let mut out = Vec::new();
    Rules::new(RulesConfig::default()).check(&r, &mut out);
    let a = &out[0];
    assert_eq!((a.record_id, a.conn_id, a.pid, a.tid), (9, 3, 10, 11));
    assert_eq!(a.comm, "nginx");
    assert_eq!(a.method.as_deref(), Some("GET"));
    assert_eq!(a.target.as_deref(), Some("/../x"));
    assert_eq!(a.record_kind, HttpKind::Request);
    assert_eq!(a.role, Role::Server);
}

#[test]
fn rule_indices_follow_the_table() {
    for (i, id) in [
        (ix::SCANNER_USER_AGENT, rule::SCANNER_USER_AGENT),
        (ix::OVERSIZED_HEADER_VALUE, rule::OVERSIZED_HEADER_VALUE),
        (ix::TOO_MANY_HEADERS, rule::TOO_MANY_HEADERS),
        (ix::SMUGGLING_CL_TE, rule::SMUGGLING_CL_TE),
        (ix::SMUGGLING_CL_CONFLICT, rule::SMUGGLING_CL_CONFLICT),
        (ix::SMUGGLING_TE_INVALID, rule::SMUGGLING_TE_INVALID),
        (ix::SMUGGLING_OBS_FOLD, rule::SMUGGLING_OBS_FOLD),
        (ix::SMUGGLING_INVALID_CHARS, rule::SMUGGLING_INVALID_CHARS),
        (ix::HEADER_CTL_CHARS, rule::HEADER_CTL_CHARS),
        (ix::CRLF_INJECTION, rule::CRLF_INJECTION),
        (ix::PATH_TRAVERSAL, rule::PATH_TRAVERSAL),
        (ix::CLEARTEXT_CREDENTIALS, rule::CLEARTEXT_CREDENTIALS),
        (ix::HTTP2_RAPID_RESET, rule::HTTP2_RAPID_RESET),
        (ix::HTTP2_CONTINUATION_FLOOD, rule::HTTP2_CONTINUATION_FLOOD),
        (ix::HTTP2_HPACK_BOMB, rule::HTTP2_HPACK_BOMB),
    ] {
        assert_eq!(RULES[i].id, id);
    }
    assert_eq!(RULES.len(), 15);
}

#[test]
fn every_rule_is_documented_once() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len());
    let doc = include_str!("../../../../docs/SECURITY-RULES.md");
    for r in RULES {
        assert!(
            doc.contains(&format!("`{}`", r.id)),
            "{} missing from docs/SECURITY-RULES.md",
            r.id
        );
    }
}

#[test]
fn garbage_never_panics() {
    let mut rules = Rules::new(RulesConfig::default());
    let mut out = Vec::new();
    for t in [
        "%", "%%", "%2", "%c0", "%e0%80", "%u00", "\\", "..", "/..%", "%25", "é%é",
    ] {
        rules.check(
            &req(
                t,
                &[
                    ("Content-Length", ","),
                    ("Transfer-Encoding", ""),
                    ("Authorization", ""),
                ],
            ),
            &mut out,
        );
    }
}

/// The crafted requests of the integration test (tests/rules.rs), through
/// the real tracker: each yields a record and exactly its rule.
#[test]
fn crafted_requests_through_the_tracker() {
    use crate::http1::{Http1Tracker, TrackerConfig};
    use hdrtap_abi::build::{data_event, DataSpec};
    use hdrtap_abi::{decode, Direction, Event};
    let base = "Host: a\r\nUser-Agent: t\r\nX-Test-Id: x\r\n";
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(9000));
    for (i, (head, extra, body, want)) in [
        (
            "POST / HTTP/1.1",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\n",
            rule::SMUGGLING_CL_TE,
        ),
        (
            "POST / HTTP/1.1",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "hello",
            rule::SMUGGLING_CL_CONFLICT,
        ),
        (
            "POST / HTTP/1.1",
            "Transfer-Encoding: xchunked\r\n",
            "",
            rule::SMUGGLING_TE_INVALID,
        ),
        (
            "GET / HTTP/1.1",
            "X-Folded: first\r\n  continued\r\n",
            "",
            rule::SMUGGLING_OBS_FOLD,
        ),
        (
            "GET / HTTP/1.1",
            "Transfer-Encoding : chunked\r\n",
            "",
            rule::SMUGGLING_INVALID_CHARS,
        ),
        (
            "GET / HTTP/1.1",
            "X-Ctl: a\0b\r\n",
            "",
            rule::HEADER_CTL_CHARS,
        ),
        (
            "GET / HTTP/1.1",
            "X-Ctl: a\rb\r\n",
            "",
            rule::HEADER_CTL_CHARS,
        ),
        ("GET / HTTP/1.1", &many, "", rule::TOO_MANY_HEADERS),
        ("GET / HTTP/1.1", &big, "", rule::OVERSIZED_HEADER_VALUE),
        ("GET /a%0d%0aX:%20y HTTP/1.1", "", "", rule::CRLF_INJECTION),
        (
            "GET /s/..%2f..%2fetc/passwd HTTP/1.1",
            "",
            "",
            rule::PATH_TRAVERSAL,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = Http1Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        let msg = format!("{head}\r\n{base}{extra}\r\n{body}");
        let spec = DataSpec {
            conn_id: i as u64 + 1,
            dir: Direction::Egress,
            ..Default::default()
        };
        let raw = data_event(&spec, msg.as_bytes());
        let Ok(Event::Data(ev)) = decode(&raw) else {
            panic!()
        };
        t.on_data(&ev, &mut out);
        t.close_all(&mut out);
        let r = out
            .first()
            .unwrap_or_else(|| panic!("{want}: no record for {msg:?}"));
        assert_eq!(r.header("x-test-id"), Some("x"), "{want}: {r:?}");
        assert_eq!(fired(r), vec![want], "{msg:?} -> {r:?}");
    }
}

/// An HTTP/2 record of `kind` with `flags`, `h2` extras and `header_bytes`.
fn h2rec(kind: HttpKind, flags: &[&'static str], h2: H2Info, header_bytes: usize) -> HttpRecord {
    HttpRecord {
        version: "HTTP/2",
        flags: flags.to_vec(),
        header_bytes,
        h2: Some(Box::new(h2)),
        tcp_seq: None,
        packets: None,
        interface: None,
        ..rec(kind, "/", &[(":method", "GET"), (":path", "/")])
    }
}

#[test]
fn http2_rules_fire_on_their_signals_and_only_there() {
    let reset = h2rec(
        HttpKind::Reset,
        &[flag::RESET, flag::RAPID_RESET],
        H2Info {
            stream_id: 201,
            error_code: Some(8),
            rapid_resets: 100,
            ..H2Info::default()
        },
        0,
    );
    assert_eq!(fired(&reset), vec![rule::HTTP2_RAPID_RESET]);
    let flood = h2rec(
        HttpKind::Request,
        &[flag::HEADER_BLOCK_FLOOD],
        H2Info::default(),
        300_000,
    );
    assert_eq!(fired(&flood), vec![rule::HTTP2_CONTINUATION_FLOOD]);
    let bomb = h2rec(
        HttpKind::Request,
        &[],
        H2Info {
            decoded_bytes: 400_000,
            ..H2Info::default()
        },
        300,
    );
    assert_eq!(fired(&bomb), vec![rule::HTTP2_HPACK_BOMB]);
    // Clean: a plain reset, a big block that compressed little, a big list
    // that is big on the wire too.
    for clean in [
        h2rec(HttpKind::Reset, &[flag::RESET], H2Info::default(), 0),
        h2rec(
            HttpKind::Request,
            &[],
            H2Info {
                decoded_bytes: 70_000,
                ..H2Info::default()
            },
            60_000,
        ),
        h2rec(
            HttpKind::Response,
            &[],
            H2Info {
                decoded_bytes: 2_000,
                ..H2Info::default()
            },
            20,
        ),
    ] {
        assert!(fired(&clean).is_empty(), "{clean:?}: {:?}", fired(&clean));
    }
    // Off when disabled.
    let cfg = RulesConfig {
        disabled: vec![rule::HTTP2_HPACK_BOMB.into()],
        ..RulesConfig::default()
    };
    assert!(fired_with(&bomb, cfg).is_empty());
}

/// The smuggling rules judge the framing the parser read from every line:
/// lines past `max_headers` (not kept) and values the user had redacted
/// still count, as they did for the parser.
#[test]
fn smuggling_rules_read_the_parsers_framing_not_the_kept_lines() {
    use crate::http1::{Http1Tracker, TrackerConfig};
    use hdrtap_abi::build::{data_event, DataSpec};
    use hdrtap_abi::{decode, Direction, Event};
    let run = |cfg: TrackerConfig, msg: &str| {
        let mut t = Http1Tracker::new(cfg);
        let mut out = Vec::new();
        let raw = data_event(
            &DataSpec {
                conn_id: 1,
                dir: Direction::Egress,
                ..Default::default()
            },
            msg.as_bytes(),
        );
        let Ok(Event::Data(ev)) = decode(&raw) else {
            panic!()
        };
        t.on_data(&ev, &mut out);
        t.close_all(&mut out);
        (*out.remove(0)).clone()
    };
    let msg = "POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let cut = run(
        TrackerConfig {
            max_headers: 2,
            ..TrackerConfig::default()
        },
        msg,
    );
    assert!(
        cut.truncated && cut.header("content-length").is_none(),
        "{cut:?}"
    );
    assert!(fired(&cut).contains(&rule::SMUGGLING_CL_TE), "{cut:?}");

    let mut hidden = run(TrackerConfig::default(), msg);
    crate::redact::Redactor::with_key([7; 16], ["content-length", "transfer-encoding"])
        .apply(&mut hidden);
    assert!(
        hidden
            .header("transfer-encoding")
            .unwrap()
            .starts_with("[REDACTED"),
        "{hidden:?}"
    );
    assert_eq!(fired(&hidden), vec![rule::SMUGGLING_CL_TE], "{hidden:?}");
}

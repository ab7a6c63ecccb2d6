//! HTTP/2 and gRPC, both ends traced, against real peers: nginx (h2c with
//! prior knowledge, h2 over TLS), nghttp (whose `-v` trace is the oracle),
//! curl (ALPN, prior knowledge, the h2c upgrade), h2load, a frame-level
//! Python client (CONTINUATION, padding, Huffman off, table size updates,
//! never-indexed fields, resets, floods, bombs, a connection older than
//! hdrtap) and grpcio.
#![forbid(unsafe_code)]
use std::time::Duration;

use hdrtap_tests::*;

const WAIT: Duration = Duration::from_secs(30);

/// The records of side `role` among `recs`.
fn side<'a>(recs: &[&'a Value], role: &str) -> Vec<&'a Value> {
    recs.iter().copied().filter(|v| v["role"] == role).collect()
}

fn one<'a>(recs: &[&'a Value], kind: &str, what: &str) -> &'a Value {
    let m: Vec<&&Value> = recs.iter().filter(|v| v["kind"] == kind).collect();
    assert_eq!(m.len(), 1, "{what}: expected one {kind}, got {m:#?}");
    m[0]
}

fn pseudo(sent: &[(String, String)], name: &str) -> String {
    sent.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {sent:?}"))
        .1
        .clone()
}

/// nghttp → nginx: every field of both header lists, in order, on both
/// sides, pseudo-headers included; secrets redacted; paired by stream.
fn nghttp_every_header(tls: bool, v6: bool) {
    let _g = setup();
    let nginx = Nginx::start_h2(tls);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("nghttp");
    let url = if v6 {
        nginx.url_v6("/")
    } else {
        nginx.url_v4("/")
    };
    let run = nghttp(
        &url,
        &[
            ("x-test-id", &id),
            ("x-custom-req", "value one"),
            ("authorization", "Bearer h2-secret-token"),
        ],
    );
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 2
    });
    let recs = h2_records(&cap, &id);
    let mut exp = Expect::new(&nginx);
    exp.tls_library = tls.then(|| "libssl.so.3".to_string());
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        let what = format!("{role} side\n{}", cap.dump_all());
        let q = one(&mine, "http_request", &what);
        let s = one(&mine, "http_response", &what);
        if role == "server" {
            assert_eq!(q["pid"].as_u64(), Some(u64::from(nginx.pid())), "{what}");
        } else {
            assert_eq!(q["comm"], "nghttp", "{what}");
        }
        for r in [q, s] {
            assert_eq!(r["stream_id"].as_u64(), Some(u64::from(run.stream)), "{r}");
            assert_eq!(r["tls"], tls, "{r}");
            if tls {
                assert_eq!(r["tls_library"], "libssl.so.3", "{r}");
            }
            assert!(r.get("flags").is_none(), "{r}");
        }
        assert_eq!(q["method"], pseudo(&run.sent, ":method"));
        assert_eq!(q["target"], pseudo(&run.sent, ":path"));
        assert_eq!(q["authority"], pseudo(&run.sent, ":authority"));
        assert_eq!(q["scheme"], if tls { "https" } else { "http" });
        compare_headers(&headers_of(q), &run.sent, &exp)
            .unwrap_or_else(|e| panic!("{role} request: {e}\n{}", run.trace));
        assert_eq!(s["status"].as_u64(), Some(u64::from(run.status)));
        compare_headers(&headers_of(s), &run.received, &exp)
            .unwrap_or_else(|e| panic!("{role} response: {e}\n{}", run.trace));
        assert_eq!(s["request"]["target"], "/");
        assert!(s["latency_ns"].as_u64().unwrap_or(0) > 0, "{s}");
        assert!(
            run.received
                .iter()
                .any(|(n, v)| n == "x-h2-custom" && v == "custom value"),
            "nginx's add_header missing from the oracle: {:?}",
            run.received
        );
    }
    // The only rule this traffic may fire: the Authorization header over
    // plaintext (h2c), once per side. None of the HTTP/2 rules.
    let alerts: Vec<(String, String)> = cap
        .records
        .iter()
        .filter(|v| v["kind"] == "alert")
        .map(|v| {
            (
                v["rule"].as_str().unwrap().into(),
                v["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = if tls {
        vec![]
    } else {
        vec![
            ("cleartext_credentials".into(), "client".into()),
            ("cleartext_credentials".into(), "server".into()),
        ]
    };
    let mut got = alerts.clone();
    got.sort();
    assert_eq!(got, want, "{}", cap.dump(|v| v["kind"] == "alert"));
}

#[test]
fn nghttp_h2c_every_header_both_sides() {
    nghttp_every_header(false, false);
}

#[test]
fn nghttp_h2_over_tls_ipv6_every_header_both_sides() {
    nghttp_every_header(true, true);
}

/// curl: ALPN h2 over TLS, prior knowledge, and the h2c upgrade (stream 1
/// answers the HTTP/1.1 request that asked to upgrade).
#[test]
fn curl_http2_tls_prior_knowledge_and_upgrade() {
    let _g = setup();
    let tls = Nginx::start_h2(true);
    let plain = Nginx::start_h2(false);
    let up = PeerServer::start("h2peer.py");
    let hd = Hdrtap::start(&[
        "--port",
        &tls.port.to_string(),
        "--port",
        &plain.port.to_string(),
        "--port",
        &up.port.to_string(),
    ]);
    let id = unique_id("curl-h2");
    let curl = |args: &[&str], url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .args(["-H", &format!("x-test-id: {id}")])
            .args(args)
            .arg(url)
            .output()
            .expect("curl");
        let o = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "curl {url}: {o} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        o
    };
    assert_eq!(curl(&["-k", "--http2"], &tls.url_v4("/")), "2 200");
    assert_eq!(
        curl(&["--http2-prior-knowledge"], &plain.url_v4("/")),
        "2 200"
    );
    let up_url = format!("http://127.0.0.1:{}/upgrade-me", up.port);
    assert_eq!(curl(&["--http2"], &up_url), "2 200");
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 6
    });
    let dump = cap.dump_all();
    // TLS and prior knowledge: a request and a response per side each.
    for port in [tls.port, plain.port] {
        let recs: Vec<&Value> = cap
            .records
            .iter()
            .filter(|v| {
                v["version"] == "HTTP/2"
                    && (v["local"]["port"] == port || v["remote"]["port"] == port)
            })
            .collect();
        for role in ["client", "server"] {
            let mine = side(&recs, role);
            let q = one(&mine, "http_request", &dump);
            let s = one(&mine, "http_response", &dump);
            assert_eq!(header(q, "x-test-id").as_deref(), Some(id.as_str()));
            assert_eq!(s["status"], 200);
            assert_eq!(header(s, "x-h2-custom").as_deref(), Some("custom value"));
            assert_eq!(s["request"]["target"], "/", "{dump}");
            assert_eq!(q["tls"], port == tls.port);
        }
    }
    // The upgrade: HTTP/1.1 request and 101 on each side, then stream 1's
    // HTTP/2 response, paired with that request.
    let recs: Vec<&Value> = cap
        .records
        .iter()
        .filter(|v| v["local"]["port"] == up.port || v["remote"]["port"] == up.port)
        .collect();
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        let kinds: Vec<(String, String, Option<u64>)> = mine
            .iter()
            .map(|v| {
                (
                    v["kind"].as_str().unwrap().into(),
                    v["version"].as_str().unwrap().into(),
                    v["status"].as_u64(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("http_request".into(), "HTTP/1.1".into(), None),
                ("http_response".into(), "HTTP/1.1".into(), Some(101)),
                ("http_response".into(), "HTTP/2".into(), Some(200)),
            ],
            "{role}:\n{dump}"
        );
        assert_eq!(header(mine[0], "upgrade").as_deref(), Some("h2c"));
        let s1 = mine[2];
        assert_eq!(s1["stream_id"], 1);
        assert_eq!(s1["request"]["target"], "/upgrade-me");
        assert_eq!(header(s1, "x-echo-path").as_deref(), Some("/upgrade-me"));
        assert!(s1.get("flags").is_none(), "{s1}");
    }
}

/// h2load multiplexes 10 streams on each of 10 connections: every request
/// and response on each side, each response paired by its stream, and
/// (nothing lost) every finished stream forgotten: 2,000 streams per
/// connection, more than the 1,024 a connection may hold open.
#[test]
fn h2load_multiplexed_every_exchange_paired() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("h2load");
    let n = 20000u64;
    let out = std::process::Command::new("h2load")
        .args(["-n", &n.to_string(), "-c", "10", "-m", "10"])
        .args(["-H", &format!("x-test-id: {id}")])
        .arg(nginx.url_v4("/"))
        .output()
        .expect("h2load (nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("{n} succeeded")),
        "h2load did not succeed:\n{text}"
    );
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count() as u64
            >= 2 * n
    });
    let lost: u64 = cap
        .stats()
        .last()
        .and_then(|s| s["lost_events"].as_u64())
        .unwrap_or(0);
    let evicted = cap
        .stats()
        .last()
        .and_then(|s| s["streams_evicted"].as_u64());
    if lost == 0 {
        assert_eq!(evicted, Some(0), "finished streams must not pile up");
    }
    for role in ["client", "server"] {
        let count = |kind: &str| {
            cap.records
                .iter()
                .filter(|v| v["version"] == "HTTP/2" && v["kind"] == kind && v["role"] == role)
                .count() as u64
        };
        let (q, s) = (count("http_request"), count("http_response"));
        if lost == 0 {
            assert_eq!((q, s), (n, n), "{role}: requests, responses");
        } else {
            assert!(
                q + s + lost >= 2 * n,
                "{role}: {q} + {s} records, {lost} events lost"
            );
        }
        let unpaired = cap
            .records
            .iter()
            .filter(|v| v["role"] == role && v["request"].is_null() && v["kind"] == "http_response")
            .count();
        assert_eq!(unpaired, 0, "{role}: unpaired responses");
    }
}

/// What the frame-level client sent and got, against both sides' records.
fn check_h2peer(cap: &Capture, streams: &[Value], id: &str, exp: &Expect) {
    let recs = h2_records(cap, id);
    for st in streams {
        let sid = st["stream"].as_u64().unwrap();
        let sent = pairs(&st["sent"]);
        for role in ["client", "server"] {
            let mine: Vec<&Value> = side(&recs, role)
                .into_iter()
                .filter(|v| v["stream_id"].as_u64() == Some(sid))
                .collect();
            let what = format!("stream {sid} {role}: {st}\n{}", cap.dump_all());
            let q = one(&mine, "http_request", &what);
            compare_headers(&headers_of(q), &sent, exp).unwrap_or_else(|e| panic!("{e}\n{what}"));
            assert_eq!(q["header_bytes"], st["sent_block"], "{what}");
            if !st["status"].is_null() {
                let s = one(&mine, "http_response", &what);
                compare_headers(&headers_of(s), &pairs(&st["recv"]), exp)
                    .unwrap_or_else(|e| panic!("{e}\n{what}"));
            }
        }
    }
}

/// CONTINUATION, padding, Huffman off and on, dynamic table size updates,
/// and a never-indexed field (redacted by default, whatever its name).
#[test]
fn frame_level_client_continuation_padding_huffman_table_size_never_indexed() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--max-header-bytes",
        "65536",
    ]);
    let mut runs = Vec::new();
    for sc in [
        "continuation",
        "padding",
        "huffman-off",
        "table-size",
        "never-indexed",
    ] {
        let id = unique_id(sc);
        let streams = h2peer(nginx.port, sc, &id, &[]);
        assert!(!streams.is_empty(), "{sc}: no streams");
        runs.push((sc, id, streams));
    }
    let total: usize = runs.iter().map(|(_, _, s)| s.len()).sum();
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 2 * total
    });
    let mut exp = Expect::new(&nginx);
    for (sc, id, streams) in &runs {
        exp.redacted = DEFAULT_REDACTED.iter().map(|s| s.to_string()).collect();
        if *sc == "never-indexed" {
            exp.redacted.push("x-secret-token".into());
        }
        check_h2peer(&cap, streams, id, &exp);
    }
    // The CONTINUATION request was 24 KiB of headers: whole, not cut.
    let cont = h2_records(&cap, &runs[0].1);
    assert!(cont.iter().all(|v| v["truncated"] == false), "{cont:#?}");
    assert!(
        !cap.raw.contains("hunter2-secret"),
        "a never-indexed value leaked"
    );
    // Each run ended its connection with a GOAWAY, seen at least as sent.
    let goaways = cap
        .stats()
        .last()
        .and_then(|s| s["http2_goaways"].as_u64())
        .unwrap_or(0);
    assert!(goaways >= runs.len() as u64, "{goaways} GOAWAYs counted");
}

/// A storm of streams opened and reset at once: every reset is on a record
/// (the stream's response, or an http_reset of its own), the run is
/// flagged rapid_reset and fires its alert, on both sides.
#[test]
fn reset_storm_is_rapid_reset_on_both_sides() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("storm");
    let n = 150;
    let streams = h2peer(nginx.port, "reset-storm", &id, &["--n", &n.to_string()]);
    assert_eq!(streams.len(), n + 1);
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["kind"] == "alert" && v["rule"] == "http2_rapid_reset")
            .count()
            >= 2
    });
    let recs = h2_records(&cap, &id);
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        for st in streams.iter().take(n) {
            let sid = st["stream"].as_u64();
            let of_stream: Vec<&&Value> = mine
                .iter()
                .filter(|v| v["stream_id"].as_u64() == sid && v["kind"] != "http_request")
                .collect();
            assert!(
                of_stream.iter().any(|v| v["flags"]
                    .as_array()
                    .is_some_and(|f| f.contains(&json!("reset")))
                    && v["error_code"] == 8),
                "{role} stream {sid:?}: no record carries its reset: {of_stream:#?}"
            );
        }
        assert!(
            mine.iter().any(|v| v["flags"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("rapid_reset")))),
            "{role}: no rapid_reset flag"
        );
        assert!(
            !mine.iter().any(|v| v["flags"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("unpaired")))),
            "{role}: unpaired records"
        );
        assert!(
            cap.records.iter().any(|v| v["kind"] == "alert"
                && v["rule"] == "http2_rapid_reset"
                && v["role"] == role),
            "{role}: no http2_rapid_reset alert"
        );
    }
}

/// A CONTINUATION flood and an HPACK bomb each fire their rule, on both
/// sides; the nghttp tests above show clean traffic fires none. nginx reads
/// up to 256 KiB per call: the kernel copies it all with `--call-capture
/// 262144` (past the default 64 KiB, the flood's frame boundaries would be
/// in bytes not copied, and its record would only say `gap`).
///
/// nginx closes the connection once the block passes its own limit
/// (`large_client_header_buffers`). If nginx read past 256 KiB before it
/// closed, the server side fires too (its open block's record is
/// `incomplete` and `header_block_flood`); if it closed earlier, its side must
/// then say so: the stream's request record is `incomplete`, with the
/// bytes nginx did read (more than a header block of any size nginx
/// takes, less than the rule's 256 KiB).
#[test]
fn continuation_flood_and_hpack_bomb_fire_their_rules() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--call-capture",
        "262144",
    ]);
    h2peer(nginx.port, "flood", &unique_id("flood"), &[]);
    h2peer(nginx.port, "bomb", &unique_id("bomb"), &[]);
    let fired = |cap: &[Value], rule: &str| {
        cap.iter()
            .filter(|v| v["kind"] == "alert" && v["rule"] == rule)
            .map(|v| v["role"].as_str().unwrap_or("").to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let has_flag = |v: &Value, f: &str| {
        v["flags"]
            .as_array()
            .is_some_and(|fl| fl.contains(&json!(f)))
    };
    // The server's record of the flood's stream that nginx cut short.
    let server_cut = |cap: &[Value]| -> Option<Value> {
        cap.iter()
            .find(|v| {
                v["kind"] == "http_request"
                    && v["role"] == "server"
                    && has_flag(v, "incomplete")
                    && v["header_bytes"].as_u64().unwrap_or(0) > 0
            })
            .cloned()
    };
    let cap = hd.stop_when(WAIT, |recs| {
        let flood = fired(recs, "http2_continuation_flood");
        flood.contains("client")
            && (flood.contains("server") || server_cut(recs).is_some())
            && fired(recs, "http2_hpack_bomb").len() == 2
    });
    assert_eq!(
        fired(&cap.records, "http2_hpack_bomb"),
        ["client", "server"].map(String::from).into(),
        "http2_hpack_bomb:\n{}",
        cap.dump_all()
    );
    let flood = fired(&cap.records, "http2_continuation_flood");
    assert!(
        flood.contains("client"),
        "client side: no http2_continuation_flood:\n{}",
        cap.dump_all()
    );
    if !flood.contains("server") {
        let cut = server_cut(&cap.records).unwrap_or_else(|| {
            panic!(
                "server side: neither the alert nor an incomplete block:\n{}",
                cap.dump_all()
            )
        });
        let read = cut["header_bytes"].as_u64().unwrap_or(0);
        assert!(
            (16 * 1024..256 * 1024).contains(&read),
            "server side read {read} bytes of the flood without the alert: {cut}"
        );
    }
    for v in cap
        .records
        .iter()
        .filter(|v| has_flag(v, "header_block_flood"))
    {
        assert!(v["header_bytes"].as_u64().unwrap() > 256 * 1024, "{v}");
    }
    assert!(
        cap.records
            .iter()
            .any(|v| has_flag(v, "header_block_flood")),
        "no record flagged header_block_flood"
    );
}

/// gRPC over h2c: service and method from :path, metadata as headers,
/// status and (percent-decoded) message from the trailers, or from a
/// trailers-only response, on both sides.
#[test]
fn grpc_unary_ok_and_error_with_metadata() {
    let _g = setup();
    let server = PeerServer::start("grpc_peer.py");
    let hd = Hdrtap::start(&["--port", &server.port.to_string()]);
    let id = unique_id("grpc");
    let out = std::process::Command::new(venv_python())
        .arg(clients_dir().join("grpc_peer.py"))
        .args(["client", "--port", &server.port.to_string(), "--id", &id])
        .output()
        .expect("grpc client");
    let calls: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls.len(), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        (calls[0]["code"].as_u64(), calls[1]["code"].as_u64()),
        (Some(0), Some(5))
    );
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["grpc_status"].is_i64() || v["grpc_status"].is_u64())
            .count()
            >= 4
    });
    let recs = h2_records(&cap, &id);
    let dump = cap.dump_all();
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        for (method, status, message) in [
            ("Say", 0, ""),
            ("Fail", 5, calls[1]["details"].as_str().unwrap()),
        ] {
            let q = mine
                .iter()
                .find(|v| v["kind"] == "http_request" && v["grpc"]["method"] == method)
                .unwrap_or_else(|| panic!("{role} {method}: no request\n{dump}"));
            assert_eq!(q["grpc"]["service"], "hdrtap.test.Echo");
            assert_eq!(q["target"], format!("/hdrtap.test.Echo/{method}"));
            assert_eq!(header(q, "x-client-meta").as_deref(), Some("m1"));
            assert_eq!(
                header(q, "content-type").as_deref(),
                Some("application/grpc")
            );
            let status_rec = mine
                .iter()
                .find(|v| v["stream_id"] == q["stream_id"] && !v["grpc_status"].is_null())
                .unwrap_or_else(|| panic!("{role} {method}: no status\n{dump}"));
            assert_eq!(status_rec["grpc_status"], status, "{status_rec}");
            assert_eq!(status_rec["grpc_message"].as_str().unwrap_or(""), message);
            if method == "Say" {
                assert_eq!(status_rec["kind"], "http_trailers");
                assert_eq!(header(status_rec, "x-trailer").as_deref(), Some("t1"));
                assert_eq!(status_rec["request"]["target"], q["target"]);
            } else {
                // Trailers-only: the status comes with the response.
                assert_eq!(status_rec["kind"], "http_response");
            }
        }
    }
}

/// A connection opened (and its HPACK table filled) before hdrtap started:
/// later requests come out flagged, fields from the old table entries are
/// null, everything else exact, nothing invented.
#[test]
fn h2_connection_opened_before_hdrtap_started() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("go");
    let id = unique_id("h2-old");
    let mut client = std::process::Command::new(venv_python())
        .arg(clients_dir().join("h2peer.py"))
        .args([
            "client",
            "--port",
            &nginx.port.to_string(),
            "--scenario",
            "keepalive",
        ])
        .args(["--id", &id, "--n", "3", "--hold"])
        .arg(&hold)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first exchange happens before hdrtap starts.
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.contains("/ka/0"), "{first}");
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    std::fs::write(&hold, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(client.wait().unwrap().success());
    let streams: Vec<Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(streams.len(), 3);
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 6
    });
    let dump = cap.dump_all();
    let reqs: Vec<&Value> = cap
        .records
        .iter()
        .filter(|v| v["kind"] == "http_request" && v["version"] == "HTTP/2")
        .collect();
    assert_eq!(reqs.len(), 6, "{dump}");
    for q in reqs {
        let st = streams
            .iter()
            .find(|s| s["stream"] == q["stream_id"])
            .unwrap_or_else(|| panic!("{q}: no such stream in {streams:?}"));
        let sent = pairs(&st["sent"]);
        let got = q["headers"].as_array().unwrap();
        assert_eq!(got.len(), sent.len(), "{q}");
        let mut nulls = 0;
        for (g, (n, v)) in got.iter().zip(&sent) {
            // A part is either exact or null: never anything else.
            let (gn, gv) = (&g[0], &g[1]);
            assert!(gn.is_null() || gn == n.as_str(), "{g} vs {n}: {v}");
            assert!(gv.is_null() || gv == v.as_str(), "{g} vs {n}: {v}");
            nulls += usize::from(gn.is_null() || gv.is_null());
        }
        let flags = q["flags"].as_array().cloned().unwrap_or_default();
        assert!(flags.contains(&json!("midstream")), "{q}");
        if nulls > 0 {
            assert!(flags.contains(&json!("hpack_partial")), "{q}");
            assert_eq!(q["undecoded_fields"].as_u64(), Some(nulls as u64), "{q}");
        }
        // The field inserted before hdrtap joined is unknown; the fresh one
        // inserted after is exact.
        assert!(
            got.iter().any(|g| g[0].is_null() && g[1].is_null()),
            "x-long-lived should be unknown: {q}"
        );
        assert!(
            got.iter().any(|g| g[0] == "x-fresh"),
            "x-fresh should be known: {q}"
        );
    }
}

/// A 4 MiB download over HTTP/2 and a request after it on the same
/// connection: no header record is lost.
#[test]
fn download_4mib_over_h2_loses_no_header_record() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("h2-huge");
    let out = std::process::Command::new("nghttp")
        .args(["-n", "--no-dep", "-H", &format!("x-test-id: {id}")])
        .arg(nginx.url_v4("/huge-fast"))
        .arg(nginx.url_v4("/"))
        .output()
        .expect("nghttp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 4
    });
    let recs = h2_records(&cap, &id);
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        let targets: std::collections::BTreeSet<String> = mine
            .iter()
            .filter(|v| v["kind"] == "http_response")
            .map(|v| v["request"]["target"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            targets,
            ["/", "/huge-fast"].map(String::from).into(),
            "{role}:\n{}",
            cap.dump_all()
        );
    }
    let stats = cap.stats().last().cloned().unwrap_or_default();
    assert_eq!(stats["lost_events"], 0, "{stats}");
}

/// DATA frames of 1 MiB (the client allows them; nginx reads the file 1 MiB
/// at a time and slices bodies with `http2_chunk_size 1m`): once hdrtap has read a frame's header, the
/// kernel stops copying its payload on the client's side, which reads
/// 64 KiB at a time. Every header record still comes out, none flagged,
/// and the next request on the connection decodes.
#[test]
fn long_data_frames_are_not_copied_by_the_kernel() {
    let _g = setup();
    let nginx = Nginx::start_h2(false);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("h2-bigframes");
    let streams = h2peer(nginx.port, "bigframes", &id, &[]);
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!(streams[0]["status"], 200, "{streams:?}");
    assert_eq!(streams[0]["data"], HUGE_BYTES, "{streams:?}");
    assert_eq!(streams[1]["status"], 200, "{streams:?}");
    let cap = hd.stop_when(WAIT, |recs| {
        recs.iter()
            .filter(|v| v["version"] == "HTTP/2" && v["kind"] == "http_response")
            .count()
            >= 4
    });
    let recs = h2_records(&cap, &id);
    for role in ["client", "server"] {
        let mine = side(&recs, role);
        let targets: Vec<String> = mine
            .iter()
            .filter(|v| v["kind"] == "http_response")
            .map(|v| v["request"]["target"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            targets,
            ["/huge-frames", "/"],
            "{role}:\n{}",
            cap.dump_all()
        );
        for v in &mine {
            let flags = v["flags"].as_array().map_or(0, Vec::len);
            assert_eq!(flags, 0, "{role}: {v}");
        }
    }
    let stats = cap.stats().last().cloned().unwrap_or_default();
    assert_eq!(stats["lost_events"], 0, "{stats}");
    assert_eq!(stats["gaps"], 0, "{stats}");
    let skipped = stats["body_bytes_not_copied"].as_u64().unwrap_or(0);
    assert!(
        skipped >= 1 << 20,
        "the kernel should have skipped most of the 4 MiB on the client side: {stats}"
    );
}

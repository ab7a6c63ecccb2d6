//! HTTP/1.x capture against a real nginx: every request and response appears
//! on both the client and the server side with exactly the headers on the
//! wire. Root only; run with scripts/test.sh.
#![forbid(unsafe_code)]
use std::time::Duration;

use hdrtap_tests::*;

/// curl over one address family: several requests on one keep-alive
/// connection with custom headers, statuses 200 and 404, chunked and big bodies.
fn curl_family(v6: bool) {
    let _guard = setup();
    let nginx = Nginx::start();
    let port = nginx.port.to_string();
    let hd = Hdrtap::start(&["--port", &port]);

    let id = unique_id(if v6 { "curl6" } else { "curl4" });
    let url = |p: &str| if v6 { nginx.url_v6(p) } else { nginx.url_v4(p) };
    let reqs = [
        CurlRequest::get(url("/?q=1"), &id, 1)
            .header("X-Custom", "hello world, with: colons; and=equals")
            .header("Accept-Language", "en-GB,en;q=0.8"),
        CurlRequest::get(url("/status/404"), &id, 2).header("X-Custom", "second"),
        CurlRequest::get(url("/big"), &id, 3)
            .header("X-Custom", "")
            .header("X-Empty-Next", "v"),
        CurlRequest::get(url("/chunked"), &id, 4)
            .header("x-lower-case", "MiXeD Value")
            .header("X-Custom", "4"),
    ];
    let run = curl(&reqs);
    let want_ip = if v6 { "::1" } else { "127.0.0.1" };
    for ex in &run.exchanges {
        assert_eq!(ex.local.ip, want_ip, "curl's own view: {ex:?}");
        assert_eq!(ex.remote.port, nginx.port, "curl's own view: {ex:?}");
    }
    let statuses: Vec<u16> = run
        .exchanges
        .iter()
        .map(|e| e.response.as_ref().unwrap().status)
        .collect();
    assert_eq!(
        statuses,
        [200, 404, 200, 200],
        "nginx answered unexpectedly"
    );

    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx);
    check_port_filter(&cap, nginx.port);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
}

#[test]
fn curl_ipv4_headers_on_both_sides() {
    curl_family(false);
}

#[test]
fn curl_ipv6_headers_on_both_sides() {
    curl_family(true);
}

/// Python client, one keep-alive connection per family, mixed statuses and
/// body framings; every response paired with its request on both sides.
#[test]
fn raw_keepalive_v4_and_v6_requests_and_responses() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id4 = unique_id("keep4");
    let id6 = unique_id("keep6");
    let paths = "/,/status/404,/big,/chunked,/setcookie";
    let run4 = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 8, &id4)
            .paths(paths)
            .header("X-Custom: keep-alive v4")
            .header("X-Dup: one")
            .header("x-dup: two"),
    );
    let run6 = raw_client(
        &RawOpts::new("::1", nginx.port, "normal", 6, &id6)
            .paths(paths)
            .header("X-Custom: keep-alive v6"),
    );
    let want = run4.expected_records(2) + run6.expected_records(2);
    let cap = hd.stop_when_http_count(want);
    let exp = Expect::new(&nginx);
    check_port_filter(&cap, nginx.port);
    for run in [&run4, &run6] {
        let statuses: Vec<u16> = run
            .exchanges
            .iter()
            .map(|e| e.response.as_ref().unwrap().status)
            .collect();
        assert!(
            statuses.contains(&404) && statuses.contains(&200),
            "{statuses:?}"
        );
        check_both_sides(&cap, run, &exp);
        check_access_log(&nginx, &cap, run, &exp);
    }
    assert_eq!(run6.exchanges[0].local.ip, "::1");
}

/// Every request byte in its own send(): reassembly across many syscalls.
#[test]
fn raw_one_byte_writes() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("bytes");
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "bytewise", 3, &id)
            .paths("/,/status/404,/chunked")
            .header("X-Custom: sent one byte at a time"),
    );
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
}

/// 20 requests in ONE write; nginx answers them back to back.
#[test]
fn raw_pipelined_twenty_requests() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("pipe");
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "pipelined", 20, &id)
            .paths("/,/status/404,/chunked,/")
            .header("X-Custom: pipelined"),
    );
    assert_eq!(run.exchanges.len(), 20);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
    // X-Seq complete 1..=20 on each side (check_side checked exactness; this
    // states the property directly for the reader of a failure).
    for role in ["client", "server"] {
        let mut seqs: Vec<u32> = cap
            .http()
            .filter(|v| kind(v) == "http_request" && v["role"] == role)
            .filter(|v| header(v, "X-Test-Id").as_deref() == Some(id.as_str()))
            .filter_map(|v| header(v, "X-Seq")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "{role} side X-Seq");
    }
}

/// Several clients at once, each on its own connection.
#[test]
fn concurrent_connections() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let clients: Vec<RawClient> = (0..6)
        .map(|i| {
            let host = if i % 2 == 0 { "127.0.0.1" } else { "::1" };
            RawClient::spawn(
                &RawOpts::new(
                    host,
                    nginx.port,
                    "normal",
                    5,
                    &unique_id(&format!("conc{i}")),
                )
                .paths("/,/status/404")
                .header(&format!("X-Custom: client {i}")),
            )
        })
        .collect();
    let runs: Vec<ClientRun> = clients.into_iter().map(RawClient::finish).collect();
    let want: usize = runs.iter().map(|r| r.expected_records(2)).sum();
    let cap = hd.stop_when_http_count(want);
    let exp = Expect::new(&nginx);
    check_port_filter(&cap, nginx.port);
    for run in &runs {
        check_both_sides(&cap, run, &exp);
    }
    assert_eq!(
        cap.http().count(),
        want,
        "extra records:\n{}",
        cap.dump_all()
    );
}

/// A connection opened (and used) BEFORE hdrtap started: the requests sent
/// after start are captured with the right tuple on both sides.
#[test]
fn connection_opened_before_hdrtap_started() {
    let _guard = setup();
    let nginx = Nginx::start();
    let id = unique_id("pre");
    let mut client = RawClient::spawn(
        &RawOpts::new("127.0.0.1", nginx.port, "wait", 4, &id)
            .paths("/,/status/404")
            .header("X-Custom: pre-existing"),
    );
    client.wait_event("waiting");
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    client.go();
    let run = client.finish();
    let after = run.only_seqs(|s| s >= 2);
    assert_eq!(after.exchanges.len(), 3);
    let cap = hd.stop_when_http_count(after.expected_records(2));
    // The connection predates hdrtap: a "midstream" flag is honest, not an error.
    let exp = Expect::new(&nginx).allow_flags(&["midstream"]);
    check_both_sides(&cap, &after, &exp);
    check_access_log(&nginx, &cap, &after, &exp);
    // The exchange that finished before hdrtap started cannot have been seen.
    let seq1 = cap
        .http()
        .filter(|v| {
            header(v, "X-Seq").as_deref() == Some("1")
                || header(v, "X-Echo-Seq").as_deref() == Some("1")
        })
        .count();
    assert_eq!(
        seq1,
        0,
        "records of a request sent before hdrtap started:\n{}",
        cap.dump_all()
    );
}

/// Every way of moving bytes: sendmsg with 3, 4 and 9 iovecs (an empty one
/// among them: the kernel copies up to 4 unrolled, more with bpf_loop),
/// write(2), and on the receiving side recv, recv_into, read(2), readv(2).
#[test]
fn raw_syscall_variants() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let combos = [
        ("sendmsg", "recv_into"),
        ("write", "read"),
        ("send", "readv"),
        ("sendmsg", "readv"),
        ("sendmsg4", "recv"),
        ("sendmsg9", "read"),
    ];
    let runs: Vec<ClientRun> = combos
        .iter()
        .map(|(send, recv)| {
            raw_client(
                &RawOpts::new(
                    "127.0.0.1",
                    nginx.port,
                    "normal",
                    3,
                    &unique_id(&format!("{send}-{recv}")),
                )
                .paths("/,/big,/status/404")
                .header(&format!("X-Custom: {send}/{recv}"))
                .opt("--send-api", send)
                .opt("--recv-api", recv),
            )
        })
        .collect();
    let want: usize = runs.iter().map(|r| r.expected_records(2)).sum();
    let cap = hd.stop_when_http_count(want);
    let exp = Expect::new(&nginx);
    for run in &runs {
        check_both_sides(&cap, run, &exp);
    }
}

/// POST bodies that look like HTTP requests (carrying this test's id) are
/// bodies, not messages: no phantom records, the next request still found.
#[test]
fn post_bodies_are_skipped_not_parsed() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let keep = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 4, &unique_id("post"))
            .opt("--method", "POST")
            .opt("--body-size", "3000"),
    );
    let piped = raw_client(
        &RawOpts::new("::1", nginx.port, "pipelined", 6, &unique_id("postpipe"))
            .opt("--method", "POST")
            .opt("--body-size", "333"),
    );
    let want = keep.expected_records(2) + piped.expected_records(2);
    let cap = hd.stop_when_http_count(want);
    let exp = Expect::new(&nginx);
    for run in [&keep, &piped] {
        check_both_sides(&cap, run, &exp);
        check_access_log(&nginx, &cap, run, &exp);
    }
    let phantoms: Vec<&Value> = cap.http().filter(|v| v["target"] == "/phantom").collect();
    assert!(
        phantoms.is_empty(),
        "request bodies parsed as requests: {phantoms:#?}"
    );
    assert_eq!(
        cap.http().count(),
        want,
        "extra records:\n{}",
        cap.dump_all()
    );
}

/// A 12 000-byte header value (block under the 16 KiB default limit) is
/// captured whole on both sides.
#[test]
fn large_header_block_is_captured_whole() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &unique_id("bighdr"))
            .paths("/,/status/404")
            .opt("--big-header", "12000")
            .header("X-After: still here"),
    );
    assert!(run.exchanges[0].request.header_bytes > 12_000);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx));
}

/// Header blocks over the limit (20 000-byte X-Big after X-Seq, default
/// --max-header-bytes 16384): records say truncated, keep the complete lines
/// before the cut and X-Big's value cut at the limit (flag `cut`), report the
/// real header_bytes, and the connection's following messages (responses,
/// next requests) are still found.
#[test]
fn oversized_header_block_is_truncated_and_the_connection_recovers() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &unique_id("hugehdr"))
            .paths("/,/status/404")
            .opt("--big-header", "20000")
            .header("X-After: lost in the cut"),
    );
    let names: Vec<&str> = run.exchanges[0]
        .request
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        &names[..6],
        [
            "Host",
            "User-Agent",
            "Accept",
            "X-Test-Id",
            "X-Seq",
            "X-Big"
        ]
    );
    // Host, User-Agent, Accept, X-Test-Id, X-Seq fit; the X-Big line is cut
    // where the first 16384 bytes of the block end.
    let mut run = run;
    for ex in &mut run.exchanges {
        let rq = &mut ex.request;
        let mut before = format!("{} {} {}\r\n", rq.method, rq.target, rq.version).len();
        for (n, v) in &rq.headers[..5] {
            before += n.len() + v.len() + 4;
        }
        before += "X-Big: ".len();
        let big = &mut rq.headers[5].1;
        assert!(
            before < 16384 && big.len() > 16384,
            "{before} {}",
            big.len()
        );
        big.truncate(16384 - before);
    }
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(
        &cap,
        &run,
        &Expect::new(&nginx)
            .truncated_requests(6)
            .allow_flags(&["cut"]),
    );
    for v in cap.http().filter(|v| kind(v) == "http_request") {
        assert_eq!(v["flags"], json!(["cut"]), "{v}");
    }
    let stats = cap.stats().last().expect("no stats record");
    assert_eq!(
        stats["truncated_messages"],
        json!(2 * run.exchanges.len()),
        "{stats}"
    );
}

/// nginx on one dual-stack socket ([::]:port ipv6only=off): IPv4 clients
/// are shown as IPv4 on the server side too, IPv6 clients as IPv6.
#[test]
fn dual_stack_listener_shows_ipv4_peers_as_ipv4() {
    let _guard = setup();
    let nginx = Nginx::start_dual_stack();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run4 = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &unique_id("ds4"))
            .paths("/,/status/404"),
    );
    let run6 = raw_client(
        &RawOpts::new("::1", nginx.port, "normal", 3, &unique_id("ds6")).paths("/,/status/404"),
    );
    let cap = hd.stop_when_http_count(run4.expected_records(2) + run6.expected_records(2));
    let exp = Expect::new(&nginx);
    check_both_sides(&cap, &run4, &exp);
    check_both_sides(&cap, &run6, &exp);
}

/// Many requests on one connection: none lost, none duplicated, in order.
#[test]
fn raw_keepalive_300_requests() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 300, &unique_id("many"))
            .paths("/,/status/404,/chunked"),
    );
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx));
    let stats = cap.stats().last().expect("no stats record");
    assert_eq!(stats["lost_events"], 0, "{stats}");
}

/// Long bodies (4 MiB, written and read through plain calls on both ends)
/// are not copied once framed, and everything around them stays exact
/// (see `check_long_bodies_not_copied`).
#[test]
fn long_bodies_are_not_copied_and_later_messages_parse() {
    let _guard = setup();
    let nginx = Nginx::start();
    check_long_bodies_not_copied(&nginx, &Expect::new(&nginx));
}

/// At memory speed the kernel frames responses itself, and a HEAD's
/// Content-Length skips nothing (see `check_long_bodies_framed_in_kernel`).
#[test]
fn long_bodies_at_memory_speed_are_framed_in_the_kernel() {
    let _guard = setup();
    let nginx = Nginx::start();
    check_long_bodies_framed_in_kernel(&nginx, &Expect::new(&nginx));
}

/// Long uploads are skipped at userspace's request only (see
/// `check_long_uploads_not_copied`).
#[test]
fn long_uploads_are_not_copied() {
    let _guard = setup();
    let nginx = Nginx::start();
    check_long_uploads_not_copied(&nginx, &Expect::new(&nginx));
}

/// A response whose header block is the first of a call's two iovecs and
/// whose body is the second has that body announced, not copied, where
/// the second iovec holds no framing (`clients/iovpeer.py`: every response
/// one sendmsg of two buffers). Exactly the four plain bodies go uncopied;
/// chunked bodies (chunk sizes `1f4` and `000001f4`), a body that starts
/// like a chunk size, a 40-byte body and a HEAD's answer sent together
/// with the next response are copied. Every response is recorded on both
/// ends with the same TCP sequence range (so the uncopied bytes kept every
/// offset), nothing resynced, nothing flagged.
#[test]
fn small_bodies_in_their_own_iovec_are_not_copied() {
    let _guard = setup();
    let port = free_port();
    let id = unique_id("iov");
    let hd = Hdrtap::start(&["--port", &port.to_string()]);
    let script = clients_dir().join("iovpeer.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(&id)
        .output()
        .expect("run iovpeer.py");
    assert!(
        out.status.success(),
        "iovpeer.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("iovpeer.py printed JSON"))
        .collect();
    let got: Vec<&Value> = lines.iter().filter(|v| v["event"] == "response").collect();
    let skippable = lines.last().expect("iovpeer.py printed nothing")["skippable_bytes"]
        .as_u64()
        .expect("skippable_bytes");
    assert_eq!(got.len(), 10, "iovpeer.py read: {lines:?}");
    // Each exchange is one request and one response, on both ends.
    let cap = hd.stop_when_http_count(got.len() * 4);
    let stats = cap.stats().last().expect("no stats record").clone();
    let n = |f: &str| stats[f].as_u64().unwrap_or_else(|| panic!("{f}: {stats}"));
    assert_eq!(n("body_bytes_not_copied"), skippable, "{stats}");
    for field in [
        "lost_events",
        "gaps",
        "resyncs",
        "skipped_bytes",
        "parse_errors",
    ] {
        assert_eq!(n(field), 0, "{field}: {stats}");
    }
    let flagged: Vec<&Value> = cap.http().filter(|v| v.get("flags").is_some()).collect();
    assert!(flagged.is_empty(), "flagged records: {flagged:#?}");
    for role in ["server", "client"] {
        let responses: Vec<&Value> = cap
            .http()
            .filter(|v| kind(v) == "http_response" && v["role"] == role)
            .collect();
        let cases: Vec<Option<String>> = responses.iter().map(|v| header(v, "X-Case")).collect();
        let want: Vec<Option<String>> = got
            .iter()
            .map(|v| v["case"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(cases, want, "{role} side:\n{}", cap.dump_all());
    }
    // Both ends saw each response at the same sequence numbers; a plain
    // body's last byte is in the range (`whole`).
    let seqs = |role: &str| -> Vec<Value> {
        cap.http()
            .filter(|v| kind(v) == "http_response" && v["role"] == role)
            .map(|v| v["tcp_seq"].clone())
            .collect()
    };
    assert_eq!(seqs("server"), seqs("client"), "{}", cap.dump_all());
    for v in cap
        .http()
        .filter(|v| kind(v) == "http_response" && header(v, "X-Case").as_deref() == Some("/cl"))
    {
        let (first, last) = (
            v["tcp_seq"]["first"].as_u64().unwrap(),
            v["tcp_seq"]["last"].as_u64().unwrap(),
        );
        let len = last.wrapping_sub(first).wrapping_add(1) & 0xffff_ffff;
        let head = v["header_bytes"].as_u64().unwrap();
        assert_eq!(len, head + 1000, "whole response in the range: {v}");
        assert_eq!(v["tcp_seq"]["whole"], true, "{v}");
    }
}

/// cgroup_id is the cgroup v2 id (directory inode) of the traced process:
/// nginx is moved into a fresh cgroup, curl stays in ours.
#[test]
fn cgroup_id_is_the_process_cgroup() {
    let _guard = setup();
    let cgroup = Cgroup::create();
    let nginx = Nginx::start();
    cgroup.add(nginx.pid());
    assert_eq!(cgroup_id_of(nginx.pid()), cgroup.id);
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &unique_id("cg"), 1)]);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx));
    let ours = cgroup_id_of(std::process::id());
    assert_ne!(ours, cgroup.id);
    for v in cap.http() {
        let want = if v["role"] == "server" {
            cgroup.id
        } else {
            ours
        };
        assert_eq!(
            v["cgroup_id"],
            json!(want),
            "cgroup_id of a {} record: {v}",
            v["role"]
        );
    }
}

/// A client whose socket work happens in a named second thread: pid is the
/// process, tid and comm are that thread's.
#[test]
fn threaded_client_reports_thread_id_and_name() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &unique_id("thread"))
            .paths("/,/status/404")
            .opt("--in-thread", "")
            .header("X-Custom: from a thread"),
    );
    assert_eq!(run.comm, "rawhttp-worker");
    assert_ne!(
        run.tid,
        Some(run.pid),
        "the client did not use a second thread"
    );
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx));
}

/// A header value with a byte that is not UTF-8 (latin-1 "café"): shown
/// escaped (`caf\xe9`, which unescapes to the bytes sent) and flagged
/// non_utf8; every other header exact.
#[test]
fn non_utf8_header_value_is_escaped_and_flagged() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let mut run = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 2, &unique_id("latin1"))
            .header("X-Custom: caf\u{e9}"),
    );
    // What hdrtap should show for the bytes "caf\xe9".
    for ex in &mut run.exchanges {
        for (n, v) in &mut ex.request.headers {
            if n == "X-Custom" {
                assert_eq!(v, "caf\u{e9}");
                *v = "caf\\xe9".to_string();
            }
        }
    }
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx).allow_flags(&["non_utf8"]));
    for v in cap.http().filter(|v| kind(v) == "http_request") {
        assert_eq!(
            v["flags"],
            json!(["non_utf8"]),
            "request with a latin-1 byte: {v}"
        );
    }
    for v in cap.http().filter(|v| kind(v) == "http_response") {
        assert!(v["flags"].is_null(), "plain response flagged: {v}");
    }
}

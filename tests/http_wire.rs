//! `hdrtap http --source packets` on a router, against tshark's HTTP
//! dissector on the same interface.
//!
//! Four namespaces of the test's own in a line: a client C, the router R
//! hdrtap watches, a second router M and a server S (C `wc` 10.78.1.2 —
//! `rc` 10.78.1.1 R `rs` 10.78.2.1 — `mr` 10.78.2.2 M `ms` 10.78.3.1 —
//! `ws` 10.78.3.2 S). nginx runs in S, curl and a Python pipelining client
//! in C, hdrtap and tshark in R on `rs`, where no process sends or receives
//! the traffic: R only forwards it. Every link has MTU 576 and no GSO, so
//! header blocks and bodies span many segments.
//!
//! This kernel has no netem, so disorder comes from nftables in the two
//! routers' forward chains (deterministic counters; a drop in a sender's
//! own output only makes its TCP send again in order). A segment dropped
//! before it reaches `rs` (requests in R, responses in M) comes to `rs`
//! after the ones behind it once retransmitted; one dropped after `rs`
//! (requests in M, responses in R) comes to `rs` twice. The oracle is
//! tshark (`-Y http`, out-of-order reassembly on): every request and
//! status line and every header line, in order, each direction of each
//! connection.
#![forbid(unsafe_code)]

#[path = "netns/mod.rs"]
mod netns;
#[path = "packets_tshark.rs"]
mod tshark;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrtap_tests::*;
use netns::{Topology, IF_A, IP4_A, IP4_B};
use serde_json::Value;
use tshark::Tshark;

struct Router {
    c: String,
    r: String,
    m: String,
    s: String,
}

/// The server's address.
const SERVER: &str = "10.78.3.2";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Router {
    fn new() -> Router {
        let id = std::process::id();
        let t = Router {
            c: format!("hdtw-{id}-c"),
            r: format!("hdtw-{id}-r"),
            m: format!("hdtw-{id}-m"),
            s: format!("hdtw-{id}-s"),
        };
        for ns in [&t.c, &t.r, &t.m, &t.s] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        for (a, da, b, db) in [
            (&t.c, "wc", &t.r, "rc"),
            (&t.r, "rs", &t.m, "mr"),
            (&t.m, "ms", &t.s, "ws"),
        ] {
            ip(&[
                "link", "add", da, "netns", a, "type", "veth", "peer", "name", db, "netns", b,
            ]);
        }
        for (ns, dev, addr) in [
            (&t.c, "wc", "10.78.1.2/24"),
            (&t.r, "rc", "10.78.1.1/24"),
            (&t.r, "rs", "10.78.2.1/24"),
            (&t.m, "mr", "10.78.2.2/24"),
            (&t.m, "ms", "10.78.3.1/24"),
            (&t.s, "ws", "10.78.3.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            netns::small_segments(ns, dev);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&["-n", &t.c, "route", "add", "default", "via", "10.78.1.1"]);
        ip(&[
            "-n",
            &t.r,
            "route",
            "add",
            "10.78.3.0/24",
            "via",
            "10.78.2.2",
        ]);
        ip(&["-n", &t.m, "route", "add", "default", "via", "10.78.2.1"]);
        ip(&["-n", &t.s, "route", "add", "default", "via", "10.78.3.1"]);
        for ns in [&t.r, &t.m] {
            let out = t
                .cmd(ns, "sysctl")
                .args(["-qw", "net.ipv4.ip_forward=1"])
                .output()
                .unwrap();
            assert!(out.status.success(), "sysctl: {out:?}");
        }
        t
    }

    fn cmd(&self, ns: &str, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, prog]);
        c
    }

    fn nft(&self, ns: &str, rules: &str) {
        netns::nft(self.cmd(ns, "nft"), rules);
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        for ns in [&self.c, &self.r, &self.m, &self.s] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// One direction of one connection: its start lines and its header lines,
/// in stream order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Lines {
    starts: Vec<String>,
    headers: Vec<String>,
}

/// (client port, requests?) → lines.
type Streams = BTreeMap<(u16, bool), Lines>;

/// What tshark's HTTP dissector read from the capture file.
fn tshark_http(pcap: &std::path::Path) -> Streams {
    let fields = [
        "tcp.srcport",
        "tcp.dstport",
        "http.request.method",
        "http.request.uri",
        "http.request.version",
        "http.request.line",
        "http.response.version",
        "http.response.code",
        "http.response.phrase",
        "http.response.line",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args([
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-o",
        "tcp.desegment_tcp_streams:TRUE",
        "-o",
        "http.desegment_headers:TRUE",
        "-o",
        "http.desegment_body:TRUE",
        "-Y",
        "http",
        "-T",
        "json",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark -r");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    let mut streams = Streams::new();
    for p in v.as_array().into_iter().flatten() {
        let l = &p["_source"]["layers"];
        let list = |name: &str| -> Vec<String> {
            l[name]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        let port = |name: &str| {
            list(name)
                .first()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap()
        };
        let (sp, dp) = (port("tcp.srcport"), port("tcp.dstport"));
        let methods = list("http.request.method");
        if !methods.is_empty() {
            let e = streams.entry((sp, true)).or_default();
            let (uris, vers) = (list("http.request.uri"), list("http.request.version"));
            for (i, m) in methods.iter().enumerate() {
                e.starts.push(format!("{m} {} {}", uris[i], vers[i]));
            }
            e.headers.extend(
                list("http.request.line")
                    .iter()
                    .map(|h| h.trim_end().to_string()),
            );
        }
        let codes = list("http.response.code");
        if !codes.is_empty() {
            let e = streams.entry((dp, false)).or_default();
            let (vers, phrases) = (list("http.response.version"), list("http.response.phrase"));
            for (i, c) in codes.iter().enumerate() {
                e.starts.push(format!("{} {c} {}", vers[i], phrases[i]));
            }
            e.headers.extend(
                list("http.response.line")
                    .iter()
                    .map(|h| h.trim_end().to_string()),
            );
        }
    }
    streams
}

/// The same from hdrtap's records.
fn hdrtap_http(records: &[&Value]) -> Streams {
    let mut streams = Streams::new();
    for r in records {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let req = kind(r) == "http_request";
        let port = r["local"]["port"].as_u64().unwrap() as u16;
        let e = streams.entry((port, req)).or_default();
        e.starts.push(if req {
            format!("{} {} {}", s("method"), s("target"), s("version"))
        } else {
            format!("{} {} {}", s("version"), r["status"], s("reason"))
        });
        for h in r["headers"].as_array().unwrap() {
            e.headers.push(format!(
                "{}: {}",
                h[0].as_str().unwrap(),
                h[1].as_str().unwrap()
            ));
        }
    }
    streams
}

/// curl in C: `n` keep-alive connections of four requests each (a 2 KB
/// header, a 64 KiB body, a 404, a chunked body), then one Python client
/// pipelining four requests in one write.
fn traffic(t: &Router, n: usize) -> usize {
    let big = "b".repeat(2000);
    for i in 0..n {
        let out = t
            .cmd(&t.c, "curl")
            .args(["-sS", "--max-time", "60", "-H"])
            .arg(format!("X-Test-Id: wire-{i}"))
            .args(["-H", &format!("X-Big: {big}"), "-H", "Cookie: a=1; b=2"])
            .args(["/", "/big", "/status/404", "/chunked"].map(|p| format!("http://{SERVER}{p}")))
            .stdout(Stdio::null())
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl: {out:?}");
    }
    let script = r#"
import socket
s = socket.create_connection(("10.78.3.2", 80), timeout=30)
reqs = b"".join(b"GET /a/%d HTTP/1.1\r\nHost: pipe\r\nX-Seq: %d\r\n\r\n" % (i, i) for i in range(3))
s.sendall(reqs + b"GET /a/9 HTTP/1.1\r\nHost: pipe\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
assert data.count(b"HTTP/1.1 200") == 4, data
"#;
    let out = t
        .cmd(&t.c, "python3")
        .args(["-c", script])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "pipelining client: {out:?}");
    4 * n + 4
}

fn capture_and_compare(t: &Router, n: usize) -> Value {
    let _nginx = Nginx::start_in_netns(&t.s);
    let wrapper = ["ip", "netns", "exec", t.r.as_str()];
    let shark = Tshark::start(&wrapper, "rs", Some("tcp port 80"));
    let cap = Hdrtap::start_wrapped(
        &wrapper,
        &["http", "--json"],
        &[
            "--source",
            "packets",
            "-i",
            "rs",
            "--no-redact",
            "--stats-interval",
            "1",
            "port",
            "80",
        ],
    );
    let exchanges = traffic(t, n);
    let cap = cap.stop_when_http_count(2 * exchanges);
    // dumpcap reads its socket in its own time: let it catch up.
    std::thread::sleep(Duration::from_millis(1500));
    let theirs = shark.stop_then(|p| {
        let _ = std::fs::copy(p, "/tmp/wire-debug.pcapng");
        tshark_http(p)
    });
    let records: Vec<&Value> = cap.http().collect();
    assert_eq!(records.len(), 2 * exchanges, "{}", cap.dump_all());
    for r in &records {
        assert_eq!(r["source"], "packet", "{r}");
        assert_eq!(r["interface"], "rs", "{r}");
        assert_eq!(r["role"], "client", "{r}");
        assert_eq!(r["local"]["ip"], "10.78.1.2", "{r}");
        assert_eq!(r["remote"]["ip"], SERVER, "{r}");
        assert_eq!(r["remote"]["port"], 80, "{r}");
        // R only forwards: no local process owns these packets.
        assert!(r.get("pid").is_none(), "{r}");
        assert!(r.get("flags").is_none(), "no flag on a whole message: {r}");
        if kind(r) == "http_response" {
            assert!(r["request"].is_object(), "paired: {r}");
        }
    }
    let ours = hdrtap_http(&records);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "the same connections and directions"
    );
    for (k, lines) in &theirs {
        assert_eq!(
            Some(lines),
            ours.get(k),
            "connection {k:?}: tshark vs hdrtap"
        );
    }
    // Requests of a pipelined write, and the X-Big header lines, are there.
    let all: Vec<&String> = ours.values().flat_map(|l| &l.starts).collect();
    assert!(all.iter().any(|s| *s == "GET /a/9 HTTP/1.1"), "{all:?}");
    let stats = cap.stats().last().expect("a stats record").clone();
    assert_eq!(stats["wire_events_lost"], 0, "{stats}");
    assert_eq!(stats["wire_lost_bytes"], 0, "{stats}");
    assert_eq!(stats["wire_undecodable"], 0, "{stats}");
    stats
}

#[test]
fn a_router_logs_http_field_exact_against_tshark() {
    require_root();
    let t = Router::new();
    let stats = capture_and_compare(&t, 2);
    assert_eq!(stats["wire_conns"], 3, "{stats}");
    assert_eq!(stats["wire_gaps"], 0, "{stats}");
}

#[test]
fn reordered_lost_and_duplicated_segments_still_match_tshark() {
    require_root();
    let t = Router::new();
    // Requests dropped in R (before rs) and responses in M (before rs)
    // come to rs late; requests dropped in M and responses in R (after
    // rs) come to rs twice.
    let rules = |before: &str, after: &str| {
        format!(
            "table inet hdrtap_w {{\n chain forward_drop {{\n  type filter hook forward priority 0;\n  \
             {before} ip length > 300 numgen inc mod 5 == 2 counter drop\n  \
             {after} ip length > 300 numgen inc mod 7 == 3 counter drop\n }}\n}}\n"
        )
    };
    t.nft(&t.r, &rules("tcp dport 80", "tcp sport 80"));
    t.nft(&t.m, &rules("tcp sport 80", "tcp dport 80"));
    let stats = capture_and_compare(&t, 3);
    let n = |k: &str| stats[k].as_u64().unwrap();
    assert!(
        n("wire_out_of_order") > 0,
        "segments came out of order: {stats}"
    );
    assert!(
        n("wire_duplicate_bytes") > 0,
        "segments came twice: {stats}"
    );
    assert_eq!(n("wire_conflict_bytes"), 0, "{stats}");
    assert_eq!(n("wire_gaps"), 0, "every hole filled: {stats}");
}

/// `--source both` on the server's own machine (S, tc on its interface):
/// each message twice, once from nginx's syscalls and once from the
/// packets, with the same lines; the packet records name nginx where the
/// kernel knew its socket's owner (tc: egress by the packet's socket,
/// ingress by its tuple; the owner once nginx has used the socket).
#[test]
fn both_sources_on_the_server_give_each_message_from_each() {
    require_root();
    let t = Router::new();
    let nginx = Nginx::start_in_netns(&t.s);
    let wrapper = ["ip", "netns", "exec", t.s.as_str()];
    let cap = Hdrtap::start_wrapped(
        &wrapper,
        &["http", "--json"],
        &[
            "--source", "both", "-i", "ws", "--hook", "tc", "--no-tls", "--comm", "nginx", "port",
            "80",
        ],
    );
    let out = t
        .cmd(&t.c, "curl")
        .args(["-sS", "--max-time", "30", "-H", "X-Test-Id: both-1"])
        .args([
            format!("http://{SERVER}/"),
            format!("http://{SERVER}/status/404"),
        ])
        .stdout(Stdio::null())
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl: {out:?}");
    let cap = cap.stop_when_http_count(8);
    let records: Vec<&Value> = cap.http().collect();
    assert_eq!(records.len(), 8, "{}", cap.dump_all());
    let by = |source: &str| -> Vec<&Value> {
        records
            .iter()
            .copied()
            .filter(|r| r["source"] == source)
            .collect()
    };
    let (sys, wire) = (by("syscall"), by("packet"));
    assert_eq!((sys.len(), wire.len()), (4, 4), "{}", cap.dump_all());
    for r in &sys {
        assert_eq!(r["role"], "server", "{r}");
        assert!(r.get("interface").is_none(), "{r}");
    }
    for r in &wire {
        assert_eq!(r["interface"], "ws", "{r}");
        assert_eq!(r["local"]["ip"], "10.78.1.2", "the client's end: {r}");
        // The kernel knows a socket's owner from the owner's first call on
        // it: a connection's first request arrives before nginx read it.
        if kind(r) == "http_response" || r.get("pid").is_some() {
            assert_eq!(r["pid"], nginx.pid(), "the kernel knew nginx's socket: {r}");
            assert_eq!(r["comm"], "nginx", "{r}");
        }
    }
    assert!(
        wire.iter()
            .any(|r| kind(r) == "http_request" && r["pid"] == nginx.pid()),
        "the second request of the connection names nginx: {}",
        cap.dump_all()
    );
    // The same messages, line for line, from each source.
    let lines = |v: &[&Value]| {
        let mut l: Vec<String> = v
            .iter()
            .map(|r| format!("{} {} {}", kind(r), r["target"], r["headers"]))
            .collect();
        l.sort();
        l
    };
    assert_eq!(lines(&sys), lines(&wire));
}

/// Hand-built segments through an AF_PACKET socket (this kernel has no
/// netem): a request cut in five segments sent out of order, one twice,
/// and one rewritten (a conflicting overlap), then the response. Sent
/// from B to a MAC address nobody has, so that A's stack drops them
/// (no RST ends the connection) while A's socket filter still sees them.
#[test]
fn hand_built_out_of_order_and_conflicting_segments() {
    use hdrtap_core::packet::build::{build, FrameSpec, L4};

    require_root();
    let topo = Topology::new();
    let cap = Hdrtap::start_wrapped(
        &topo.wrapper_a(),
        &["http", "--json"],
        &[
            "--source",
            "packets",
            "-i",
            IF_A,
            "--no-redact",
            "--stats-interval",
            "1",
            "port",
            "8080",
        ],
    );
    let req = b"GET /inject?a=1 HTTP/1.1\r\nHost: injected\r\nX-Evasion: first-copy\r\n\r\n";
    let resp = b"HTTP/1.1 204 No Content\r\nServer: hand\r\n\r\n";
    let (c, s) = (IP4_B, IP4_A);
    let seg = |from_client: bool, seq: u32, flags: u8, payload: &[u8]| {
        let (src, dst, sp, dp) = if from_client {
            (c, s, 40404, 8080)
        } else {
            (s, c, 8080, 40404)
        };
        let mut f = FrameSpec::tcp4(src, dst, sp, dp, flags);
        f.dst = [2, 0, 0, 0, 0, 0x99];
        if let L4::Tcp { seq: q, .. } = &mut f.l4 {
            *q = seq;
        }
        f.payload = payload.to_vec();
        build(&f)
    };
    let (syn, ack, psh) = (0x02, 0x10, 0x08);
    let c0 = 7000u32; // client ISN
    let s0 = 9000u32; // server ISN
    let at = |i: usize| c0 + 1 + i as u32;
    // Cut points: [0,10) [10,30) [30,45) [45,60) [60,end)
    let cuts = [0, 10, 30, 45, 60, req.len()];
    let part = |k: usize| &req[cuts[k]..cuts[k + 1]];
    let mut evil = part(3).to_vec();
    evil[..5].copy_from_slice(b"XXXXX");
    let frames = vec![
        seg(true, c0, syn, b""),
        seg(false, s0, syn | ack, b""),
        seg(true, at(cuts[4]), ack | psh, part(4)),
        seg(true, at(cuts[1]), ack, part(1)),
        seg(true, at(cuts[3]), ack, part(3)),
        seg(true, at(cuts[3]), ack, &evil),
        seg(true, at(cuts[1]), ack, part(1)),
        seg(true, at(cuts[2]), ack, part(2)),
        seg(true, at(cuts[0]), ack, part(0)),
        seg(false, s0 + 1, ack | psh, resp),
    ];
    topo.inject(&frames);
    let cap = cap.stop_when_http_count(2);
    let recs: Vec<&Value> = cap.http().collect();
    assert_eq!(recs.len(), 2, "{}", cap.dump_all());
    let (q, r) = (recs[0], recs[1]);
    assert_eq!(q["target"], "/inject?a=1", "{q}");
    assert_eq!(
        q["headers"],
        serde_json::json!([["Host", "injected"], ["X-Evasion", "first-copy"]]),
        "the first copy of every byte: {q}"
    );
    assert_eq!(q["flags"], serde_json::json!(["conflict"]), "{q}");
    assert_eq!(q["local"]["port"], 40404, "{q}");
    assert_eq!(r["status"], 204, "{r}");
    assert_eq!(r["request"]["target"], "/inject?a=1", "{r}");
    assert!(r.get("flags").is_none(), "{r}");
    let stats = cap.stats().last().expect("a stats record").clone();
    let n = |k: &str| stats[k].as_u64().unwrap();
    assert_eq!(n("wire_conflict_bytes"), 15, "{stats}");
    assert!(n("wire_out_of_order") >= 3, "{stats}");
    assert_eq!(n("wire_duplicate_bytes"), 20, "part 1 twice: {stats}");
    assert_eq!(n("wire_lost_bytes"), 0, "{stats}");
}

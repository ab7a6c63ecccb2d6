//! Writes the fuzz seed corpora under `testdata/`:
//!
//! * `testdata/http/<name>.req`, `.resp`: HTTP/1.x transcripts, the bytes each
//!   direction of one connection carries (pipelining, chunked bodies with
//!   trailers, 1xx, Upgrade, CONNECT, HTTP/1.0 until close, bodies that look
//!   like requests, huge and non-UTF-8 headers, HTTP/2 preface, garbage);
//! * `testdata/fuzz/http1_stream/`: those transcripts as `http1_stream`
//!   scripts, cut into syscall-sized chunks in many ways, interleaved, with
//!   lost events, repeats, uncaptured tails and closes;
//! * `testdata/fuzz/abi_decode/`: raw ring-buffer records made with
//!   `hdrtap_abi::build` (data, close, packet and file events, truncated and
//!   lying ones);
//! * `testdata/fuzz/packet_decode/`: frames made with the packet builders
//!   (VLAN/QinQ, IPv6 extension chains, fragments, ARP, ICMP, TCP options,
//!   malformed headers), with the target's two selector bytes in front;
//! * `testdata/fuzz/filter_parse/`: filter expressions, valid and not;
//! * `testdata/fuzz/config_parse/`: `hdrtap run` configuration files (the
//!   packaged examples and small valid and invalid ones).
//!
//! Deterministic: running it again rewrites the same files.
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use hdrtap_abi::build::{close_event, data_event, file_event, packet_event, DataSpec, PacketSpec};
use hdrtap_abi::{self as abi, Direction, KernelRole, Tuple};
use hdrtap_core::packet::build::{build, fragment, pad_options, FrameSpec, L3, L4};
use hdrtap_fuzz::{encode_script, Op};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// (name, client → server bytes, server → client bytes)
fn transcripts() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut t: Vec<(&'static str, Vec<u8>, Vec<u8>)> = vec![
        (
            "get",
            b"GET /index.html?a=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nAuthorization: Bearer abc\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nSet-Cookie: a=b\r\n\r\nhello\n".to_vec(),
        ),
        (
            "pipelined",
            b"GET /1 HTTP/1.1\r\nHost: a\r\nX-Seq: 1\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX-Seq: 2\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: a\r\nX-Seq: 3\r\n\r\nPOST /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcdeGET /5 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n".to_vec(),
        ),
        (
            "chunked",
            b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "continue",
            b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz".to_vec(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        ),
        (
            "upgrade",
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello".to_vec(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi".to_vec(),
        ),
        (
            "upgrade_refused",
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "connect",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x00\x05hello".to_vec(),
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x02hi".to_vec(),
        ),
        (
            "http10_until_close",
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until the connection closes\r\nGET /not-a-request HTTP/1.1\r\n\r\n".to_vec(),
        ),
        (
            "body_looks_like_requests",
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 64\r\n\r\nGET /phantom HTTP/1.1\r\nX-Seq: 99\r\n\r\nGET /phantom HTTP/1.1\r\nX: y\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "non_utf8_and_obs_fold",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\nX-Ctl: a\x01b\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\nServer : spaced\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "bad_content_length",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcdGET /x HTTP/1.1\r\n\r\n".to_vec(),
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: -1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        ),
        (
            "h2_preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec(),
            b"\x00\x00\x00\x04\x01\x00\x00\x00\x00".to_vec(),
        ),
        (
            "garbage_then_request",
            b"\x00\x01\x02 garbage\r\nmore garbage without end GET / HTTP/1.1\r\nzz\nGET /found HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "bare_lf",
            b"GET /lf HTTP/1.1\nHost: a\n\n\r\n\r\nGET /again HTTP/1.1\nHost: a\n\n".to_vec(),
            b"HTTP/1.1 200 OK\nContent-Length: 1\n\nxHTTP/1.1 200 OK\nContent-Length: 0\n\n".to_vec(),
        ),
    ];
    // A header block longer than every limit, and many headers.
    let mut big = b"GET /big HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..400 {
        big.extend(format!("X-H{i}: {}\r\n", "v".repeat(i % 70)).as_bytes());
    }
    big.extend(b"Content-Length: 2\r\n\r\nokGET /small HTTP/1.1\r\n\r\n");
    t.push((
        "huge_header_block",
        big,
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
            .to_vec(),
    ));
    // A line that never ends.
    let mut endless = b"GET /".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 40_000));
    t.push(("endless_line", endless, Vec::new()));
    t
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn data(conn: u8, dir: Direction, bytes: &[u8]) -> Op {
    Op::Data {
        conn,
        dir,
        lost: 0,
        back: 0,
        uncaptured: 0,
        flags: 0,
        bytes: bytes.to_vec(),
    }
}

/// `req` and `resp` on connection `conn` as seen by the server (requests
/// read, responses written), cut at random points, directions interleaved.
fn interleave(conn: u8, req: &[u8], resp: &[u8], rng: &mut Rng, max_cut: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    let (mut a, mut b) = (0usize, 0usize);
    while a < req.len() || b < resp.len() {
        let take_req = b >= resp.len() || (a < req.len() && rng.below(2) == 0);
        if take_req {
            let n = (1 + rng.below(max_cut)) as usize;
            let e = (a + n).min(req.len());
            ops.push(data(conn, Direction::Ingress, &req[a..e]));
            a = e;
        } else {
            let n = (1 + rng.below(max_cut)) as usize;
            let e = (b + n).min(resp.len());
            ops.push(data(conn, Direction::Egress, &resp[b..e]));
            b = e;
        }
    }
    ops
}

fn http1_seeds(dir: &Path) {
    let http = root().join("testdata/http");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for (name, req, resp) in transcripts() {
        write(&http, &format!("{name}.req"), &req);
        write(&http, &format!("{name}.resp"), &resp);
        // Whole: one syscall per direction. Default limits (sel 0b1110_1011:
        // 16 KiB header blocks, 3 connections, 1000 headers, 1024 pending).
        let whole = vec![
            data(0, Direction::Ingress, &req),
            data(0, Direction::Egress, &resp),
            Op::Close { conn: 0 },
        ];
        write(dir, &format!("{name}-whole"), &encode_script(0xab, &whole));
        // Small limits: 256-byte blocks, one connection, 4 headers, 1 pending.
        write(
            dir,
            &format!("{name}-small-limits"),
            &encode_script(0x00, &whole),
        );
        // Client side: requests written, responses read.
        let client = vec![
            data(1, Direction::Egress, &req),
            data(1, Direction::Ingress, &resp),
        ];
        write(
            dir,
            &format!("{name}-client"),
            &encode_script(0xab, &client),
        );
        // Random cuts, interleaved.
        for (k, max_cut) in [(0, 7u64), (1, 40), (2, 300)] {
            let ops = interleave(2, &req, &resp, &mut rng, max_cut);
            if ops.len() < 4000 {
                write(dir, &format!("{name}-cut{k}"), &encode_script(0xab, &ops));
            }
        }
        // One byte per syscall (short transcripts only).
        if req.len() + resp.len() < 600 {
            let ops = interleave(3, &req, &resp, &mut rng, 1);
            write(dir, &format!("{name}-bytewise"), &encode_script(0xab, &ops));
        }
        // Lost events, a repeat and an uncaptured tail in the middle.
        let mid = req.len() / 2;
        let lossy = vec![
            data(0, Direction::Ingress, &req[..mid.min(10)]),
            Op::Data {
                conn: 0,
                dir: Direction::Ingress,
                lost: 13,
                back: 0,
                uncaptured: 0,
                flags: 0,
                bytes: req[mid..].to_vec(),
            },
            Op::Data {
                conn: 0,
                dir: Direction::Egress,
                lost: 0,
                back: 0,
                uncaptured: 128,
                flags: 0,
                bytes: resp[..resp.len() / 2].to_vec(),
            },
            Op::Data {
                conn: 0,
                dir: Direction::Egress,
                lost: 0,
                back: 5,
                uncaptured: 0,
                flags: 0,
                bytes: resp.to_vec(),
            },
            data(0, Direction::Ingress, &req),
        ];
        write(dir, &format!("{name}-lossy"), &encode_script(0x2b, &lossy));
        // Midstream and TLS flags, two connections sharing limits.
        let flagged = vec![
            Op::Data {
                conn: 1,
                dir: Direction::Ingress,
                lost: 0,
                back: 0,
                uncaptured: 0,
                flags: abi::HDRTAP_DF_MIDSTREAM as u16,
                bytes: req.clone(),
            },
            Op::Data {
                conn: 2,
                dir: Direction::Egress,
                lost: 0,
                back: 0,
                uncaptured: 0,
                flags: abi::HDRTAP_DF_TLS as u16,
                bytes: req.clone(),
            },
            Op::Data {
                conn: 2,
                dir: Direction::Ingress,
                lost: 0,
                back: 0,
                uncaptured: 0,
                flags: abi::HDRTAP_DF_TLS as u16,
                bytes: resp.clone(),
            },
            Op::Close { conn: 1 },
        ];
        write(
            dir,
            &format!("{name}-flags"),
            &encode_script(0x07, &flagged),
        );
    }
    // Many requests on four connections with only two tracked (eviction).
    let mut ops = Vec::new();
    for i in 0..40u8 {
        let req = format!("GET /{i} HTTP/1.1\r\nHost: a\r\nX-Seq: {i}\r\n\r\n");
        ops.push(data(i % 4, Direction::Ingress, req.as_bytes()));
        ops.push(data(
            i % 4,
            Direction::Egress,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ));
    }
    write(dir, "eviction", &encode_script(0x04, &ops));
}

fn tuple6() -> Tuple {
    Tuple {
        local_ip: "::1".parse().unwrap(),
        local_port: 8080,
        remote_ip: "::ffff:10.0.0.1".parse().unwrap(),
        remote_port: 40000,
    }
}

fn abi_seeds(dir: &Path) {
    let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let d = DataSpec::default();
    write(dir, "data-plain", &data_event(&d, get));
    let v6 = DataSpec {
        tuple: tuple6(),
        dir: Direction::Ingress,
        role: KernelRole::Server,
        flags: (abi::HDRTAP_DF_MIDSTREAM | abi::HDRTAP_DF_CLIPPED) as u16,
        orig_len: Some(70_000),
        call_len: Some(70_000),
        pos: 1 << 40,
        comm: "nginx".into(),
        ..Default::default()
    };
    write(dir, "data-v6-clipped", &data_event(&v6, get));
    let tls = DataSpec {
        flags: abi::HDRTAP_DF_TLS as u16,
        source: abi::HDRTAP_SRC_SSL_WRITE as u8,
        tls_lib: 3,
        ..Default::default()
    };
    write(dir, "data-tls", &data_event(&tls, get));
    let nopay = DataSpec {
        flags: abi::HDRTAP_DF_NO_PAYLOAD as u16,
        source: abi::HDRTAP_SRC_SENDFILE as u8,
        orig_len: Some(4096),
        ..Default::default()
    };
    write(dir, "data-sendfile", &data_event(&nopay, b""));
    write(
        dir,
        "data-full-chunk",
        &data_event(&d, &vec![b'x'; abi::HDRTAP_CHUNK_MAX as usize]),
    );
    let full = data_event(&d, get);
    write(dir, "data-truncated", &full[..full.len() - 3]);
    write(dir, "data-header-only", &full[..abi::DATA_EVENT_SIZE]);
    write(dir, "close", &close_event(7, 42, 5, 99, [1000, 2000]));
    write(dir, "file-exec", &file_event(true, 1, 8 << 20 | 1, 1234));
    write(dir, "file-mmap", &file_event(false, 2, 253 << 20, 99));
    let frame = build(&FrameSpec::tcp4(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        40000,
        80,
        0x18,
    ));
    let p = PacketSpec {
        tgid: 5,
        tid: 6,
        owner: abi::HDRTAP_OWNER_SKB_SK as u8,
        comm: "curl".into(),
        ..Default::default()
    };
    write(dir, "packet-tcp", &packet_event(&p, &frame));
    let p = PacketSpec {
        flags: (abi::HDRTAP_PKT_F_VLAN_ACCEL | abi::HDRTAP_PKT_F_SNAPPED) as u16,
        vlan_tci: 0x2064,
        vlan_proto: 0x8100,
        wire_len: Some(9000),
        hook: abi::HDRTAP_HOOK_XDP as u8,
        ..Default::default()
    };
    write(dir, "packet-vlan-accel", &packet_event(&p, &frame));
    write(dir, "empty", b"");
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let a4 = Ipv4Addr::new(10, 77, 0, 1);
    let b4 = Ipv4Addr::new(10, 77, 0, 2);
    let a6: Ipv6Addr = "fd77::1".parse().unwrap();
    let b6: Ipv6Addr = "fd77::2".parse().unwrap();
    let mut out = Vec::new();
    let mut syn = FrameSpec::tcp4(a4, b4, 40000, 80, 0x02);
    if let L4::Tcp { options, .. } = &mut syn.l4 {
        // MSS, SACK permitted, timestamps, NOP, window scale, SACK blocks.
        *options = vec![
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 5, 10, 0, 0, 0, 1, 0,
            0, 0, 9,
        ];
    }
    out.push(("tcp4-syn-options", build(&syn)));
    let mut data = FrameSpec::tcp4(a4, b4, 40000, 80, 0xff);
    data.payload = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    out.push(("tcp4-all-flags-payload", build(&data)));
    let mut vlan = FrameSpec::udp6(a6, b6, 5353, 53);
    vlan.vlans = vec![(0x88a8, 100), (0x8100, 200)];
    out.push(("udp6-qinq", build(&vlan)));
    let mut ext = FrameSpec::tcp4(a4, b4, 1, 2, 0x10);
    ext.l3 = L3::V6 {
        src: a6,
        dst: b6,
        hop_limit: 1,
        traffic_class: 0xb8,
        flow_label: 0xabcde,
        ext: vec![
            (0, pad_options(6)),
            (43, vec![0, 1, 0, 0, 0, 0]),
            (60, pad_options(14)),
            (44, fragment(0, true, 77)),
        ],
    };
    out.push(("tcp6-ext-chain", build(&ext)));
    let mut frag6 = ext.clone();
    if let L3::V6 { ext, .. } = &mut frag6.l3 {
        *ext = vec![(44, fragment(1480, false, 77))];
    }
    out.push(("ipv6-non-first-fragment", build(&frag6)));
    let mut frag4 = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    if let L3::V4 {
        frag_offset, mf, ..
    } = &mut frag4.l3
    {
        *frag_offset = 1480;
        *mf = true;
    }
    out.push(("ipv4-fragment", build(&frag4)));
    let mut opts = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    if let L3::V4 { options, .. } = &mut opts.l3 {
        *options = vec![0x94, 4, 0, 0, 1, 0];
    }
    out.push(("ipv4-options", build(&opts)));
    let mut ihl = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    if let L3::V4 { ihl: i, .. } = &mut ihl.l3 {
        *i = Some(3);
    }
    out.push(("ipv4-ihl-3", build(&ihl)));
    let mut long = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    if let L3::V4 { total_len, .. } = &mut long.l3 {
        *total_len = Some(9000);
    }
    out.push(("ipv4-total-len-past-end", build(&long)));
    let mut arp = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    arp.l3 = L3::Arp {
        op: 1,
        sha: [2, 0, 0, 0, 0, 1],
        spa: a4,
        tha: [0; 6],
        tpa: b4,
    };
    arp.l4 = L4::None;
    out.push(("arp-request", build(&arp)));
    let mut icmp = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    icmp.l4 = L4::Icmp {
        icmp_type: 8,
        code: 0,
        id: 7,
        seq: 1,
    };
    out.push(("icmp-echo", build(&icmp)));
    let mut icmp6 = FrameSpec::udp6(a6, b6, 1, 2);
    icmp6.l4 = L4::Icmp {
        icmp_type: 135,
        code: 0,
        id: 0,
        seq: 0,
    };
    out.push(("icmp6-ns", build(&icmp6)));
    let mut bad_tcp = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    if let L4::Tcp { options, .. } = &mut bad_tcp.l4 {
        *options = vec![2, 9, 5, 0xb4];
    }
    out.push(("tcp-bad-option-length", build(&bad_tcp)));
    let mut other = FrameSpec::tcp4(a4, b4, 1, 2, 0);
    other.l3 = L3::Other {
        ethertype: 0x88cc,
        body: vec![1; 30],
    };
    other.l4 = L4::None;
    out.push(("lldp", build(&other)));
    let t = build(&FrameSpec::tcp4(a4, b4, 1, 2, 0));
    out.push(("cut-in-ipv4", t[..20].to_vec()));
    out
}

fn packet_seeds(dir: &Path) {
    for (name, f) in frames() {
        // Ethernet, no offloaded tag, wire length = captured length.
        let mut s = vec![0u8, 0];
        s.extend(&f);
        write(dir, &format!("{name}-ether"), &s);
        // Offloaded 802.1Q tag, a longer wire length (snapped).
        let mut s = vec![0x52u8, 7];
        s.extend(&f);
        write(dir, &format!("{name}-accel"), &s);
        // Raw IP: the frame without its Ethernet header.
        if f.len() > 14 {
            let mut s = vec![0x01u8, 0];
            s.extend(&f[14..]);
            write(dir, &format!("{name}-rawip"), &s);
        }
    }
}

fn filter_seeds(dir: &Path) {
    let exprs = [
        "",
        "tcp",
        "tcp port 80",
        "tcp and (port 80 or port 443) and not src net 10.0.0.0/8",
        "host 10.0.0.1 or host ::1",
        "src host fd00::1 and dst net fd00::/8",
        "udp dst portrange 1000-2000",
        "ip proto 17 || ip6 proto 58",
        "vlan 100 and vlan and arp",
        "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
        "icmp[icmptype] == 8 or icmp6[icmp6type] != 135",
        "! ( icmp && ! udp )",
        "not not not tcp",
        "port 99999",
        "host 300.1.1.1",
        "net 10.0.0.0/33",
        "tcp and prot 80",
        "((((((((tcp))))))))",
        "tcp and",
        "portrange 9-1",
        "tcp[tcpflags] & tcp-bogus != 0",
        "host \u{e9}t\u{e9}",
    ];
    for (i, e) in exprs.iter().enumerate() {
        write(dir, &format!("expr-{i:02}"), e.as_bytes());
    }
    // Longer than the kernel takes.
    let long = vec!["port 1"; 40].join(" or ");
    write(dir, "too-long", long.as_bytes());
}

fn config_seeds(dir: &Path) {
    for f in ["hdrtap.example.toml", "hdrtap.container.toml"] {
        if let Ok(text) = fs::read(root().join("packaging").join(f)) {
            write(dir, f, &text);
        }
    }
    let configs = [
        ("min", "[http]\n[[sinks]]\ntype = \"stdout\"\n"),
        ("empty", ""),
        (
            "packets",
            "[packets]\nenabled = true\ninterfaces = [\"lo\"]\nfilter = \"tcp port 80\"\nsnaplen = 128\n[[sinks]]\ntype = \"file\"\npath = \"/tmp/x.ndjson\"\n",
        ),
        (
            "bad-type",
            "[http]\nmax_header_bytes = \"big\"\n[[sinks]]\ntype = \"stdout\"\n",
        ),
        ("unknown-key", "[http]\nbogus = 1\n"),
        ("bad-toml", "[http\nports = [80,\n"),
        (
            "otlp",
            "[http]\n[[sinks]]\ntype = \"otlp\"\nendpoint = \"http://127.0.0.1:4318\"\nprotocol = \"http\"\n",
        ),
        ("deep", "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"),
    ];
    for (name, text) in configs {
        write(dir, name, text.as_bytes());
    }
}

fn main() {
    let base = root().join("testdata/fuzz");
    config_seeds(&base.join("config_parse"));
    http1_seeds(&base.join("http1_stream"));
    abi_seeds(&base.join("abi_decode"));
    packet_seeds(&base.join("packet_decode"));
    filter_seeds(&base.join("filter_parse"));
    for t in [
        "http1_stream",
        "abi_decode",
        "packet_decode",
        "filter_parse",
        "config_parse",
    ] {
        let n = fs::read_dir(base.join(t)).map(|d| d.count()).unwrap_or(0);
        println!("testdata/fuzz/{t}: {n} seeds");
    }
}

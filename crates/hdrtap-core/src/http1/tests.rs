//! Unit tests of the tracker on hand-made byte streams, fed as real encoded
//! events (`hdrtap_abi::build`) so decode, positions and flags are exercised
//! as in production.

use hdrtap_abi::build::{close_event, data_event, DataSpec};
use hdrtap_abi::{
    decode, Event, HDRTAP_DF_CLIPPED, HDRTAP_DF_MIDSTREAM, HDRTAP_DF_NO_PAYLOAD, HDRTAP_DF_SKIPPED,
};

use super::*;

const EG: Direction = Direction::Egress;
const IN: Direction = Direction::Ingress;

/// The tracker's records as plain values, to compare and edit.
fn owned(v: Vec<Arc<HttpRecord>>) -> Vec<HttpRecord> {
    v.into_iter().map(Arc::unwrap_or_clone).collect()
}

/// One connection driven by hand: positions advance per direction, the
/// timestamp by 1000 ns per event.
struct H {
    t: Http1Tracker,
    out: Vec<Arc<HttpRecord>>,
    pos: [u64; 2],
    spec: DataSpec,
    /// Events say the TCP sequence number of their first byte: this plus
    /// their position.
    seq_base: Option<u32>,
}

impl H {
    fn new() -> Self {
        Self::with(TrackerConfig::default())
    }

    fn with(cfg: TrackerConfig) -> Self {
        H {
            t: Http1Tracker::new(cfg),
            out: Vec::new(),
            pos: [0, 0],
            spec: DataSpec {
                ts_ns: 1000,
                ..Default::default()
            },
            seq_base: None,
        }
    }

    /// Send an event covering `orig_len` stream bytes of which `data` is captured.
    fn raw(&mut self, dir: Direction, pos: u64, orig_len: u64, data: &[u8], flags: u16) {
        let seq = self.seq_base.map(|b| b.wrapping_add(pos as u32));
        let spec = DataSpec {
            dir,
            pos,
            orig_len: Some(orig_len),
            flags: self.spec.flags | flags | seq.map_or(0, |_| hdrtap_abi::HDRTAP_DF_SEQ as u16),
            tcp_seq: seq.unwrap_or(0),
            ..self.spec.clone()
        };
        let buf = data_event(&spec, data);
        let Ok(Event::Data(ev)) = decode(&buf) else {
            panic!("bad event")
        };
        self.t.on_data(&ev, &mut self.out);
        let d = dir.index();
        self.pos[d] = self.pos[d].max(pos + orig_len);
        self.spec.ts_ns += 1000;
    }

    /// One event with all of `data`.
    fn ev(&mut self, dir: Direction, data: &[u8]) {
        let pos = self.pos[dir.index()];
        self.raw(dir, pos, data.len() as u64, data, 0);
    }

    /// `data` in events of at most `size` bytes.
    fn split(&mut self, dir: Direction, data: &[u8], size: usize) {
        for c in data.chunks(size) {
            self.ev(dir, c);
        }
    }

    /// Lose `n` bytes (events dropped by the kernel).
    fn lose(&mut self, dir: Direction, n: u64) {
        self.pos[dir.index()] += n;
    }

    fn close(&mut self) {
        let buf = close_event(
            self.spec.conn_id,
            self.spec.tgid,
            self.spec.fd,
            self.spec.ts_ns,
            self.pos,
        );
        let Ok(Event::Close(c)) = decode(&buf) else {
            panic!("bad close")
        };
        self.t.on_close(&c, &mut self.out);
    }

    fn take(&mut self) -> Vec<HttpRecord> {
        owned(std::mem::take(&mut self.out))
    }

    fn stats(&self) -> TrackerStats {
        self.t.stats().clone()
    }

    fn state(&mut self, dir: Direction) -> &'static str {
        let id = self.spec.conn_id;
        self.t
            .table
            .get_mut(id)
            .map_or("none", |c| c.dirs[dir.index()].m.state_name())
    }
}

fn hv(r: &HttpRecord) -> Vec<(&str, &str)> {
    r.headers.iter().collect()
}

fn targets(rs: &[HttpRecord]) -> Vec<String> {
    rs.iter()
        .map(|r| match r.kind {
            HttpKind::Request => format!(
                "{} {}",
                r.method.as_deref().unwrap_or("?"),
                r.target.as_deref().unwrap_or("?")
            ),
            _ => format!("{}", r.status.unwrap_or(0)),
        })
        .collect()
}

const GET_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
const OK_5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

// 1. Reassembly of header blocks split over events.

#[test]
fn header_block_split_one_byte_per_event() {
    let mut h = H::new();
    for (i, b) in GET_A.iter().enumerate() {
        assert!(h.out.is_empty(), "record before byte {i}");
        if i == 0 {
            h.spec.tid = 7; // the first byte's thread
        } else {
            h.spec.tid = 8;
        }
        h.ev(EG, std::slice::from_ref(b));
    }
    let rs = h.take();
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(
        (r.method.as_deref(), r.target.as_deref()),
        (Some("GET"), Some("/a"))
    );
    assert_eq!(hv(r), vec![("Host", "example.com"), ("Accept", "*/*")]);
    assert_eq!(r.header_bytes, GET_A.len());
    assert_eq!(r.process.tid, 7);
    assert_eq!(r.ts_unix_ns, 1000, "timestamp of the first byte's event");
    h.split(IN, OK_5, 1);
    let rs = h.take();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, Some(200));
    assert_eq!(
        rs[0].request,
        Some(RequestRef {
            method: "GET".into(),
            target: "/a".into(),
            host: Some("example.com".into()),
        })
    );
    assert_eq!(h.stats().parse_errors, 0);
    assert_eq!(h.t.largest_buffer(), 0);
}

#[test]
fn header_block_split_at_every_point() {
    let msg = [GET_A, b"GET /b HTTP/1.1\r\n\r\n"].concat();
    for cut in 1..msg.len() {
        for cut2 in [cut, (cut + 7).min(msg.len())] {
            let mut h = H::new();
            h.ev(EG, &msg[..cut]);
            h.ev(EG, &msg[cut..cut2]);
            h.ev(EG, &msg[cut2..]);
            let rs = h.take();
            assert_eq!(targets(&rs), ["GET /a", "GET /b"], "cut {cut}/{cut2}");
            assert_eq!(hv(&rs[0]), vec![("Host", "example.com"), ("Accept", "*/*")]);
            assert_eq!(
                rs[1].ts_unix_ns,
                if cut2 <= GET_A.len() {
                    3000
                } else if cut <= GET_A.len() {
                    2000
                } else {
                    1000
                }
            );
        }
    }
}

// 2. Pipelining and keep-alive.

#[test]
fn pipelined_requests_in_one_event() {
    let mut h = H::new();
    let reqs = [
        &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
        b"\r\nGET /3 HTTP/1.1\r\n\r\n", // a stray CRLF between messages is tolerated
    ]
    .concat();
    h.ev(EG, &reqs);
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /1", "POST /2", "GET /3"]);
    assert_eq!(
        rs[1].header_bytes,
        b"POST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\n".len()
    );
    let resps = [
        OK_5,
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!",
    ]
    .concat();
    h.ev(IN, &resps);
    let rs = h.take();
    assert_eq!(targets(&rs), ["200", "201", "404"]);
    let paired: Vec<_> = rs
        .iter()
        .map(|r| r.request.as_ref().unwrap().target.clone())
        .collect();
    assert_eq!(paired, ["/1", "/2", "/3"]);
    assert_eq!(rs[2].reason.as_deref(), Some("Not Found"));
    assert!(rs.iter().all(|r| r.latency_ns == Some(1000)));
}

#[test]
fn keep_alive_many_messages() {
    let mut h = H::new();
    for i in 0..200 {
        h.ev(
            EG,
            format!("GET /item/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
        let body = "x".repeat(i);
        h.ev(
            IN,
            format!("HTTP/1.1 200 OK\r\nContent-Length: {i}\r\n\r\n{body}").as_bytes(),
        );
    }
    let rs = h.take();
    assert_eq!(rs.len(), 400);
    for (i, pair) in rs.chunks(2).enumerate() {
        assert_eq!(
            pair[0].target.as_deref(),
            Some(format!("/item/{i}").as_str())
        );
        assert_eq!(
            pair[1].request.as_ref().unwrap().target,
            format!("/item/{i}")
        );
        assert_eq!(pair[0].role, Role::Client);
        assert_eq!(pair[1].role, Role::Client);
    }
    assert_eq!(h.t.conns(), 1);
    let s = h.stats();
    assert_eq!(
        (
            s.requests,
            s.responses,
            s.parse_errors,
            s.unpaired_responses
        ),
        (200, 200, 0, 0)
    );
}

// 3. Large and oversized header blocks.

/// A request header block of exactly `size` bytes (with Content-Length 5).
fn big_request(size: usize, target: &str) -> Vec<u8> {
    let mut b = format!("POST {target} HTTP/1.1\r\nContent-Length: 5\r\n").into_bytes();
    let mut i = 0;
    while size - b.len() - 2 > 600 {
        b.extend_from_slice(format!("X-Pad-{i:03}: {}\r\n", "p".repeat(500)).as_bytes());
        i += 1;
    }
    let rest = size - b.len() - 2 - "X-Last: \r\n".len();
    b.extend_from_slice(format!("X-Last: {}\r\n\r\n", "q".repeat(rest)).as_bytes());
    assert_eq!(b.len(), size);
    b
}

#[test]
fn header_block_of_max_size_is_captured_whole() {
    let max = 16 * 1024;
    // One syscall: a small request, then a block of max bytes that
    // straddles the kernel's 16384-byte event split, body, next request.
    let block = big_request(max, "/big");
    let syscall = [
        &b"GET /small HTTP/1.1\r\n\r\n"[..],
        &block,
        b"hello",
        b"GET /after HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let mut h = H::new();
    h.split(EG, &syscall, 16384);
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /small", "POST /big", "GET /after"]);
    assert!(!rs[1].truncated);
    assert_eq!(rs[1].header_bytes, max);
    assert_eq!(rs[1].headers.last().unwrap().0, "X-Last");
    assert_eq!(h.stats().truncated, 0);
    // Exactly 16384 + rest.
    let mut h = H::new();
    h.split(EG, &[&block[..], b"hello"].concat(), 16384);
    assert_eq!(targets(&h.take()), ["POST /big"]);
    assert!(h.t.largest_buffer() <= max);
}

#[test]
fn oversized_header_block_is_truncated_and_body_skipped() {
    let block = big_request(20_000, "/huge");
    let stream = [&block[..], b"hello", b"GET /next HTTP/1.1\r\n\r\n"].concat();
    for size in [16384, 1000, 7] {
        let mut h = H::new();
        h.split(EG, &stream, size);
        let rs = h.take();
        assert_eq!(
            targets(&rs),
            ["POST /huge", "GET /next"],
            "events of {size}"
        );
        let r = &rs[0];
        assert!(r.truncated);
        assert_eq!(r.header_bytes, 20_000);
        assert_eq!(r.header("Content-Length"), Some("5"));
        assert!(r.header("X-Last").is_none());
        // Every header kept is complete but the last, cut at the limit.
        let n = r.headers.len();
        assert!(r
            .headers
            .iter()
            .take(n - 1)
            .skip(1)
            .all(|(_, v)| v.len() == 500));
        let (name, cut) = r.headers.last().unwrap();
        assert!(name.starts_with("X-Pad-"));
        assert!(!cut.is_empty() && cut.len() < 500 && cut.bytes().all(|b| b == b'p'));
        assert_eq!(r.flags, vec![flag::CUT]);
        let s = h.stats();
        assert_eq!((s.truncated, s.parse_errors, s.resyncs), (1, 0, 0));
        assert!(h.t.largest_buffer() <= 16 * 1024 + 16384);
    }
}

#[test]
fn oversized_header_block_without_framing_resyncs_at_its_end() {
    let mut b = b"GET /huge HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        b.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(800)).as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    let stream = [&b[..], b"GET /next HTTP/1.1\r\n\r\n"].concat();
    let mut h = H::new();
    h.split(EG, &stream, 4096);
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /huge", "GET /next"]);
    assert!(rs[0].truncated);
    assert_eq!(rs[0].header_bytes, b.len());
    assert_eq!(h.stats().skipped_bytes, 0);
}

#[test]
fn start_line_longer_than_the_limit_is_kept_cut() {
    let mut h = H::new();
    let target = "/".repeat(20_000);
    let block = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
    h.split(
        EG,
        format!("{block}GET /ok HTTP/1.1\r\n\r\n").as_bytes(),
        16384,
    );
    let rs = h.take();
    let cut = &target[..16 * 1024 - 4];
    assert_eq!(targets(&rs), [format!("GET {cut}"), "GET /ok".into()]);
    let r = &rs[0];
    assert!(r.truncated && r.headers.is_empty());
    assert_eq!((r.version, r.header_bytes), ("HTTP/1.x", block.len()));
    assert_eq!(r.flags, vec![flag::CUT]);
    let s = h.stats();
    assert_eq!((s.parse_errors, s.truncated, s.skipped_bytes), (0, 1, 0));
}

// 4. Bodies.

#[test]
fn content_length_body_is_skipped_even_if_it_looks_like_http() {
    let mut h = H::new();
    let body = b"GET /fake HTTP/1.1\r\n\r\n";
    let req = [
        format!("POST /p HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
        body,
        b"GET /real HTTP/1.1\r\n\r\n",
    ]
    .concat();
    for size in [1, 5, 1000] {
        h.split(EG, &req, size);
        assert_eq!(targets(&h.take()), ["POST /p", "GET /real"]);
    }
}

#[test]
fn chunked_bodies_are_walked() {
    let body = b"5;ext=1\r\nhello\r\n16\r\nGET /fake HTTP/1.1\r\n\r\n\r\n0\r\nTrailer: t\r\n\r\n";
    let req = [
        &b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        body,
        b"GET /next HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let resp = [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
        b"3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ]
    .concat();
    for size in [1, 2, 3, 10, 10_000] {
        let mut h = H::new();
        h.split(EG, &req, size);
        h.split(IN, &resp, size);
        assert_eq!(
            targets(&h.take()),
            ["POST /c", "GET /next", "200", "204"],
            "events of {size}"
        );
        assert_eq!(h.stats().parse_errors, 0);
        assert_eq!(h.state(EG), "idle");
        assert_eq!(h.state(IN), "idle");
    }
}

#[test]
fn uncaptured_chunk_data_is_skipped_by_position() {
    let mut h = H::new();
    h.ev(EG, b"GET /f HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    // A 100000-byte chunk of which the kernel captured only 10 bytes.
    let line = b"186a0\r\n";
    let pos = h.pos[1];
    h.raw(
        IN,
        pos,
        (line.len() + 100_000) as u64,
        &[&line[..], b"0123456789"].concat(),
        HDRTAP_DF_CLIPPED as u16,
    );
    h.ev(IN, b"\r\n0\r\n\r\n");
    h.ev(EG, b"GET /g HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 304 Not Modified\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /f", "200", "GET /g", "304"]);
    let s = h.stats();
    assert_eq!((s.parse_errors, s.resyncs, s.gaps), (0, 0, 0));
}

/// A long Content-Length body: once its header block is parsed the
/// tracker asks (once) for the rest to be skipped, up to the body's end;
/// the kernel's payload-less SKIPPED events are counted off the body and
/// the next messages parse with nothing lost or flagged.
#[test]
fn long_body_is_handed_to_the_kernel_to_skip() {
    let mut h = H::new();
    h.spec.conn_id = 7;
    h.ev(EG, b"GET /huge HTTP/1.1\r\n\r\n");
    assert_eq!(h.t.take_skips().count(), 0, "requests have no body here");
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
    let first = [&head[..], &[b'x'; 4000][..]].concat();
    h.ev(IN, &first);
    let skips: Vec<SkipRequest> = h.t.take_skips().collect();
    let body_end = (head.len() + 1_000_000) as u64;
    assert_eq!(
        skips,
        [SkipRequest {
            conn_id: 7,
            dir: IN,
            until: body_end
        }]
    );
    // More body, still copied (the request had not reached the kernel):
    // no second request for the same body.
    h.split(IN, &[b'x'; 30_000], 8192);
    assert_eq!(h.t.take_skips().count(), 0);
    // The kernel skips the rest in two calls.
    let pos = h.pos[1];
    let rest = body_end - pos;
    h.raw(IN, pos, rest / 2, b"", HDRTAP_DF_SKIPPED as u16);
    let pos = h.pos[1];
    h.raw(IN, pos, body_end - pos, b"", HDRTAP_DF_SKIPPED as u16);
    h.ev(EG, b"GET /next HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 204 No Content\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /huge", "200", "GET /next", "204"]);
    assert!(rs.iter().all(|r| r.flags.is_empty()), "{rs:#?}");
    let s = h.stats();
    assert_eq!(
        (s.parse_errors, s.resyncs, s.gaps, s.gap_bytes),
        (0, 0, 0, 0)
    );
}

/// The kernel's event for a header block in one iovec and its body in the
/// next: the block's bytes, the body announced (`HDRTAP_DF_SKIPPED`, orig_len
/// past cap_len). The response is recorded whole (its TCP range reaches the
/// body's last byte), and the next messages parse, with nothing counted as
/// lost.
#[test]
fn body_announced_after_its_block_in_one_event() {
    let mut h = H::new();
    h.seq_base = Some(1000);
    h.ev(EG, b"GET /page HTTP/1.1\r\n\r\n");
    let block = b"HTTP/1.1 200 OK\r\nContent-Length: 512\r\n\r\n";
    let pos = h.pos[1];
    h.raw(
        IN,
        pos,
        block.len() as u64 + 512,
        block,
        HDRTAP_DF_SKIPPED as u16,
    );
    h.ev(EG, b"GET /next HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 204 No Content\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /page", "200", "GET /next", "204"]);
    assert!(rs.iter().all(|r| r.flags.is_empty()), "{rs:#?}");
    let seq = rs[1].tcp_seq.expect("tcp_seq");
    assert_eq!(
        (seq.first, seq.last, seq.whole),
        (
            1000 + pos as u32,
            1000 + pos as u32 + block.len() as u32 + 511,
            true
        )
    );
    let s = h.stats();
    assert_eq!(
        (s.parse_errors, s.resyncs, s.gaps, s.skipped_bytes),
        (0, 0, 0, 0)
    );
}

/// Short bodies are copied (asking would cost more), chunked bodies are
/// skipped one large chunk at a time, up to the chunk's end only, and a
/// tracker configured with 0 never asks.
#[test]
fn skip_requests_only_for_long_bodies_and_whole_chunks() {
    let mut h = H::new();
    h.ev(EG, b"GET /a HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 65535\r\n\r\n");
    assert_eq!(h.t.take_skips().count(), 0, "below 64 KiB");
    h.split(IN, &[b'y'; 65535], 8192);
    h.ev(EG, b"GET /b HTTP/1.1\r\n\r\n");
    let line = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n";
    h.ev(IN, line);
    let chunk_end = h.pos[1] + 0x100000;
    let skips: Vec<SkipRequest> = h.t.take_skips().collect();
    assert_eq!(skips.len(), 1);
    assert_eq!(skips[0].until, chunk_end, "the chunk's data, not its CRLF");
    let pos = h.pos[1];
    h.raw(IN, pos, 0x100000, b"", HDRTAP_DF_SKIPPED as u16);
    h.ev(IN, b"\r\n0\r\n\r\n");
    h.ev(EG, b"GET /c HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(
        targets(&h.take()),
        ["GET /a", "200", "GET /b", "200", "GET /c", "204"]
    );
    assert_eq!(h.stats().gaps, 0);

    let mut off = H::with(TrackerConfig {
        skip_bodies_from: 0,
        ..TrackerConfig::default()
    });
    off.ev(EG, b"GET /a HTTP/1.1\r\n\r\n");
    off.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 9000000\r\n\r\n");
    assert_eq!(off.t.take_skips().count(), 0);
}

#[test]
fn sendfile_body_is_skipped_by_position() {
    let mut h = H::new();
    h.ev(EG, b"GET /file HTTP/1.1\r\n\r\nGET /file2 HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    let pos = h.pos[1];
    h.raw(IN, pos, 100_000, b"", HDRTAP_DF_NO_PAYLOAD as u16);
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
    let pos = h.pos[1];
    h.raw(IN, pos, 1, b"", HDRTAP_DF_NO_PAYLOAD as u16);
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /file", "GET /file2", "200", "200"]);
    assert_eq!(rs[3].request.as_ref().unwrap().target, "/file2");
    assert_eq!(h.state(IN), "idle");
}

#[test]
fn responses_without_a_body() {
    let mut h = H::new();
    h.ev(
        EG,
        b"HEAD /h HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    );
    h.ev(
        IN,
        &[
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"[..], // HEAD: no body despite CL
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        ]
        .concat(),
    );
    let rs = h.take();
    assert_eq!(
        targets(&rs),
        ["HEAD /h", "GET /a", "GET /b", "200", "204", "304"]
    );
    assert_eq!(rs[3].request.as_ref().unwrap().method, "HEAD");
    assert_eq!(h.state(IN), "idle");
}

#[test]
fn response_without_length_reads_until_close() {
    let mut h = H::new();
    h.ev(EG, b"GET / HTTP/1.0\r\n\r\n");
    h.ev(IN, b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n");
    h.ev(
        IN,
        b"HTTP/1.1 200 OK\r\n\r\nlooks like a response but is body",
    );
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /", "200"]);
    assert_eq!(rs[0].version, "HTTP/1.0");
    assert_eq!(h.state(IN), "until_close");
    // The request direction still parses.
    h.ev(EG, b"GET /more HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /more"]);
    assert_eq!(h.stats().parse_errors, 0);
}

#[test]
fn requests_without_length_have_no_body() {
    let mut h = H::new();
    h.ev(EG, b"DELETE /x HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["DELETE /x", "OPTIONS *"]);
}

// 5. 100 Continue.

#[test]
fn continue_pairs_and_keeps_the_request_outstanding() {
    let mut h = H::new();
    h.ev(
        EG,
        b"PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    h.ev(IN, b"HTTP/1.1 100 Continue\r\n\r\n");
    h.ev(EG, b"hello");
    h.ev(
        IN,
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    );
    let rs = h.take();
    assert_eq!(targets(&rs), ["PUT /u", "100", "102", "201"]);
    for r in &rs[1..] {
        assert_eq!(r.request.as_ref().unwrap().target, "/u");
        assert!(r.flags.is_empty());
    }
    assert_eq!(rs[1].latency_ns, Some(1000));
    assert_eq!(rs[3].latency_ns, Some(3000));
    assert_eq!(h.stats().unpaired_responses, 0);
    assert!(h.t.table.get_mut(1).unwrap().shared.pending.is_empty());
}

// 6. Upgrade and CONNECT.

#[test]
fn switching_protocols_stops_both_directions() {
    let mut h = H::new();
    h.ev(
        EG,
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    h.ev(
        IN,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    );
    h.ev(EG, b"\x81\x85abcdGET / HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /ws", "101"]);
    let s = h.stats();
    assert_eq!(
        (s.tunnels, s.parse_errors, s.resyncs, s.skipped_bytes),
        (1, 0, 0, 0)
    );
    assert_eq!(h.state(EG), "tunnel");
    assert_eq!(h.t.largest_buffer(), 0);
    h.close();
    assert_eq!(h.t.conns(), 0);
}

#[test]
fn connect_2xx_tunnels_and_refusal_keeps_parsing() {
    let mut h = H::new();
    h.ev(
        EG,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    h.ev(
        IN,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
    );
    h.ev(
        EG,
        b"CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic x\r\n\r\n",
    );
    h.ev(IN, b"HTTP/1.1 200 Connection established\r\n\r\n");
    h.ev(EG, b"\x16\x03\x01\x00\x05hello GET / HTTP/1.1\r\n\r\n");
    h.ev(IN, b"\x16\x03\x03\x00\x05world");
    let rs = h.take();
    assert_eq!(
        targets(&rs),
        [
            "CONNECT example.com:443",
            "407",
            "CONNECT example.com:443",
            "200"
        ]
    );
    assert_eq!(rs[3].request.as_ref().unwrap().method, "CONNECT");
    let s = h.stats();
    assert_eq!((s.tunnels, s.parse_errors), (1, 0));
}

#[test]
fn refused_upgrade_resumes_the_request_direction() {
    let mut h = H::new();
    // The client pipelines a request right after the Upgrade request; it is
    // held until the response says no tunnel, then parsed.
    h.ev(
        EG,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
    );
    assert_eq!(targets(&h.take()), ["GET /ws"]);
    assert_eq!(h.state(EG), "await_tunnel");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno");
    let rs = h.take();
    assert_eq!(targets(&rs), ["200", "GET /after"]);
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let rs = h.take();
    assert_eq!(rs[0].request.as_ref().unwrap().target, "/after");
    assert_eq!(h.stats().tunnels, 0);
}

#[test]
fn http2_prior_knowledge_is_left_alone() {
    let mut h = H::new();
    h.ev(
        EG,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
    );
    h.ev(IN, b"\x00\x00\x00\x04\x01\x00\x00\x00\x00");
    assert!(h.take().is_empty());
    let s = h.stats();
    assert_eq!((s.tunnels, s.parse_errors, s.skipped_bytes), (1, 0, 0));
}

// 7. Pairing.

#[test]
fn latency_is_first_byte_to_first_byte() {
    let mut h = H::new();
    h.spec.ts_ns = 1_000_000;
    h.ev(EG, b"GET /slow HTTP/1.1\r\n");
    h.spec.ts_ns = 2_000_000;
    h.ev(EG, b"\r\n");
    h.spec.ts_ns = 9_000_000;
    h.split(IN, OK_5, 3);
    let rs = h.take();
    assert_eq!(rs[0].ts_unix_ns, 1_000_000);
    assert_eq!(rs[1].latency_ns, Some(8_000_000));
    assert_eq!(rs[1].ts_unix_ns, 9_000_000);
}

#[test]
fn unpaired_response_is_flagged() {
    let mut h = H::new();
    h.ev(IN, OK_5);
    h.ev(EG, b"GET /x HTTP/1.1\r\n\r\n");
    h.ev(IN, OK_5);
    let rs = h.take();
    assert_eq!(targets(&rs), ["200", "GET /x", "200"]);
    assert_eq!(rs[0].flags, vec![flag::UNPAIRED]);
    assert_eq!((rs[0].request.as_ref(), rs[0].latency_ns), (None, None));
    assert_eq!(rs[2].request.as_ref().unwrap().target, "/x");
    assert_eq!(h.stats().unpaired_responses, 1);
    // The first message was a response the process read: it is the client.
    assert!(rs.iter().all(|r| r.role == Role::Client));
}

#[test]
fn pending_queue_is_bounded() {
    let mut h = H::with(TrackerConfig {
        max_pending: 4,
        ..Default::default()
    });
    for i in 0..6 {
        h.ev(EG, format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes());
    }
    for _ in 0..6 {
        h.ev(IN, b"HTTP/1.1 204 No Content\r\n\r\n");
    }
    let rs = h.take();
    let paired: Vec<_> = rs[6..]
        .iter()
        .map(|r| r.request.as_ref().map(|q| q.target.clone()))
        .collect();
    assert_eq!(
        paired,
        [
            Some("/2".into()),
            Some("/3".into()),
            Some("/4".into()),
            Some("/5".into()),
            None,
            None
        ]
    );
    let s = h.stats();
    assert_eq!((s.pending_overflow, s.unpaired_responses), (2, 2));
}

// 8. Role, endpoints, process, time.

#[test]
fn server_side_records() {
    let mut h = H::with(TrackerConfig {
        clock_offset_ns: 1_700_000_000_000_000_000,
        ..Default::default()
    });
    h.spec.role = KernelRole::Server;
    h.spec.tgid = 4242;
    h.spec.tid = 4243;
    h.spec.cgroup_id = 99;
    h.spec.comm = "nginx".into();
    h.spec.tuple.local_port = 8080;
    h.spec.tuple.remote_port = 51000;
    h.ev(IN, GET_A);
    h.spec.tid = 4244;
    h.ev(EG, OK_5);
    let rs = h.take();
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r.role, Role::Server);
        assert_eq!((r.local.port, r.remote.port), (8080, 51000));
        assert_eq!(r.local.ip.to_string(), "127.0.0.1");
        assert_eq!(
            (r.process.pid, r.process.comm.as_str(), r.process.cgroup_id),
            (4242, "nginx", 99)
        );
        assert!(!r.tls);
        assert_eq!(r.conn_id, 1);
    }
    assert_eq!(rs[0].process.tid, 4243);
    assert_eq!(rs[1].process.tid, 4244);
    assert_eq!(rs[0].ts_unix_ns, 1_700_000_000_000_001_000);
    assert_eq!(rs[1].latency_ns, Some(1000));
    assert_eq!(h.stats().role_conflicts, 0);
}

#[test]
fn role_follows_the_first_message_not_the_kernel_hint() {
    let mut h = H::new();
    h.spec.role = KernelRole::Client; // connect()ed, but serves HTTP (reverse tunnel)
    h.ev(IN, b"GET / HTTP/1.1\r\n\r\n");
    let rs = h.take();
    assert_eq!(rs[0].role, Role::Server);
    assert_eq!(h.stats().role_conflicts, 1);
}

// 9. Gaps.

#[test]
fn gap_inside_header_block_flags_the_record() {
    let mut h = H::new();
    h.ev(EG, b"GET /x HTTP/1.1\r\nHost: a\r\nX-Lo");
    h.lose(EG, 50);
    h.ev(EG, b"ng: b\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /x", "GET /y"]);
    assert_eq!(rs[0].flags, vec![flag::GAP, flag::CUT]);
    // The name cut before its colon is kept, with an empty value.
    assert_eq!(hv(&rs[0]), vec![("Host", "a"), ("X-Lo", "")]);
    assert!(rs[1].flags.is_empty());
    let s = h.stats();
    assert_eq!(
        (s.gaps, s.gap_bytes, s.header_gaps, s.parse_errors),
        (1, 50, 1, 0)
    );
    // The response still pairs with /x, then /y.
    h.ev(
        IN,
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    );
    let rs = h.take();
    assert_eq!(rs[0].request.as_ref().unwrap().target, "/x");
    assert_eq!(rs[1].request.as_ref().unwrap().target, "/y");
}

#[test]
fn gap_inside_start_line_keeps_what_came() {
    let mut h = H::new();
    h.ev(EG, b"GET /x HT");
    h.lose(EG, 50);
    h.ev(EG, b"X: y\r\n\r\n");
    h.ev(EG, b"GET /y HTTP/1.1\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /x", "GET /y"]);
    assert_eq!(rs[0].flags, vec![flag::GAP, flag::CUT]);
    assert_eq!(rs[0].version, "HTTP/1.x");
    let s = h.stats();
    assert_eq!((s.parse_errors, s.header_gaps), (0, 1));
    assert_eq!(s.skipped_bytes, 8);
    // Too little of a start line to tell: a parse error, as before.
    let mut h = H::new();
    h.ev(EG, b"GET ");
    h.lose(EG, 50);
    h.ev(EG, b"GET /y HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /y"]);
    assert_eq!(h.stats().parse_errors, 1);
}

#[test]
fn uncaptured_tail_inside_header_block_is_a_gap() {
    let mut h = H::new();
    // The capture cap cut the block: 30 bytes of the syscall not copied.
    let part = b"GET /c HTTP/1.1\r\nA: 1\r\nB: 2";
    h.raw(
        EG,
        0,
        part.len() as u64 + 30,
        part,
        HDRTAP_DF_CLIPPED as u16,
    );
    h.ev(EG, b"GET /d HTTP/1.1\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /c", "GET /d"]);
    assert_eq!(hv(&rs[0]), vec![("A", "1"), ("B", "2")]);
    assert_eq!(rs[0].flags, vec![flag::GAP, flag::CUT]);
    assert_eq!(h.stats().gaps, 0, "uncaptured bytes are not lost events");
}

#[test]
fn gap_in_body_is_harmless() {
    let mut h = H::new();
    h.ev(
        EG,
        b"POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789",
    );
    h.lose(EG, 50);
    h.ev(EG, &[&[b'z'; 40][..], b"GET /q HTTP/1.1\r\n\r\n"].concat());
    assert_eq!(targets(&h.take()), ["POST /p", "GET /q"]);
    let s = h.stats();
    assert_eq!(
        (s.gaps, s.parse_errors, s.resyncs, s.skipped_bytes),
        (1, 0, 0, 0)
    );
}

#[test]
fn gap_while_idle_moves_the_position() {
    let mut h = H::new();
    h.ev(EG, b"GET /1 HTTP/1.1\r\n\r\n");
    h.lose(EG, 1000); // whole requests lost
    h.ev(EG, b"GET /3 HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /1", "GET /3"]);
    let s = h.stats();
    assert_eq!((s.gaps, s.parse_errors, s.resyncs), (1, 0, 0));
    // A gap that swallowed a message start: the rest of it is skipped.
    h.lose(EG, 10);
    h.ev(EG, b"-Length: 3\r\n\r\nabc");
    h.ev(EG, b"GET /4 HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /4"]);
    assert_eq!(h.stats().resyncs, 1);
}

/// The request target each response was paired with ("-" when unpaired).
fn paired(rs: &[HttpRecord]) -> Vec<String> {
    rs.iter()
        .filter(|r| r.kind == HttpKind::Response)
        .map(|r| {
            r.request
                .as_ref()
                .map_or("-", |q| q.target.as_str())
                .to_string()
        })
        .collect()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn lost_response_does_not_shift_later_pairs() {
    // Keep-alive, one request at a time; the response to /1 is lost whole.
    let mut h = H::new();
    h.ev(EG, b"GET /1 HTTP/1.1\r\n\r\n");
    h.lose(IN, OK.len() as u64);
    h.ev(EG, b"GET /2 HTTP/1.1\r\n\r\n");
    h.ev(IN, OK);
    h.ev(EG, b"GET /3 HTTP/1.1\r\n\r\n");
    h.ev(IN, OK);
    let rs = h.take();
    assert_eq!(paired(&rs), ["/2", "/3"]);
    let resp: Vec<_> = rs.iter().filter(|r| r.kind == HttpKind::Response).collect();
    assert_eq!(resp[0].flags, vec![flag::PAIRING_GUESSED]);
    assert!(resp[1].flags.is_empty(), "{:?}", resp[1].flags);
    assert_eq!(resp[0].latency_ns, Some(1000));
    assert_eq!(h.stats().unanswered_requests, 1);
}

#[test]
fn lost_request_leaves_its_response_unpaired() {
    let mut h = H::new();
    h.ev(EG, b"GET /0 HTTP/1.1\r\n\r\n");
    h.ev(IN, OK);
    h.lose(EG, 40); // GET /1 lost whole
    h.ev(IN, OK);
    h.ev(EG, b"GET /2 HTTP/1.1\r\n\r\n");
    h.ev(IN, OK);
    let rs = h.take();
    assert_eq!(paired(&rs), ["/0", "-", "/2"]);
    assert_eq!(rs[2].flags, vec![flag::UNPAIRED]);
    assert_eq!(h.stats().unpaired_responses, 1);
}

#[test]
fn after_a_lost_request_a_later_request_is_not_taken() {
    // /1 is lost; /2 (sent at t=10000) reaches hdrtap before the response
    // to /1 (t=5000, another CPU's event): that response is unpaired and
    // /2 stays outstanding for its own response.
    let mut h = H::new();
    h.ev(EG, b"GET /0 HTTP/1.1\r\n\r\n");
    h.ev(IN, OK);
    h.lose(EG, 40);
    h.spec.ts_ns = 10_000;
    h.ev(EG, b"GET /2 HTTP/1.1\r\n\r\n");
    h.spec.ts_ns = 5_000;
    h.ev(IN, OK);
    h.spec.ts_ns = 20_000;
    h.ev(IN, OK);
    let rs = h.take();
    assert_eq!(paired(&rs), ["/0", "-", "/2"]);
    assert_eq!(rs[4].latency_ns, Some(10_000));
    let s = h.stats();
    assert_eq!((s.unpaired_responses, s.unanswered_requests), (1, 0));
}

#[test]
fn gap_inside_a_body_keeps_pairing_by_order() {
    // Pipelined requests; a gap inside the first response's body cannot
    // have held a response, so pairing stays by order, unflagged.
    let mut h = H::new();
    h.ev(EG, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123");
    h.lose(IN, 50);
    h.ev(IN, &[&[b'z'; 46][..], OK].concat());
    let rs = h.take();
    assert_eq!(paired(&rs), ["/1", "/2"]);
    assert!(rs.iter().all(|r| r.flags.is_empty()));
    assert_eq!(h.stats().unanswered_requests, 0);
}

#[test]
fn duplicate_and_overlapping_events_are_dropped() {
    let mut h = H::new();
    h.ev(EG, b"GET /1 HTTP/1.1\r\n\r\n");
    h.raw(EG, 0, 19, b"GET /1 HTTP/1.1\r\n\r\n", 0); // duplicate
    let two = b"GET /2 HTTP/1.1\r\n\r\n";
    h.raw(
        EG,
        10,
        9 + two.len() as u64,
        &[&b"TTP/1.1\r\n\r\n"[2..], two].concat(),
        0,
    ); // overlaps by 9
    assert_eq!(targets(&h.take()), ["GET /1", "GET /2"]);
    assert_eq!(h.stats().overlap_bytes, 19 + 9);
}

// 10. Resync and garbage.

#[test]
fn resync_after_garbage() {
    let mut h = H::new();
    let junk = b"\x00\x01garbage\r\nmore garbage\nGET /ok HTTP/1.1\r\n\r\n";
    h.ev(EG, junk);
    assert_eq!(targets(&h.take()), ["GET /ok"]);
    let s = h.stats();
    assert_eq!((s.parse_errors, s.resyncs, s.skipped_bytes), (1, 1, 24));
}

#[test]
fn random_garbage_is_bounded_and_silent() {
    let mut h = H::new();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut buf = vec![0u8; 1 << 20];
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for size in [16384, 1000, 13] {
        for c in buf.chunks(size) {
            h.ev(EG, c);
            h.ev(IN, c);
            assert!(h.t.largest_buffer() <= 16 * 1024 + 16384);
        }
    }
    assert!(h.take().is_empty());
    // A fresh message after the garbage is still found.
    h.ev(EG, b"GET /alive HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /alive"]);
    // Token-only garbage (no CR/LF, no spaces) sent byte by byte.
    let mut h = H::new();
    for _ in 0..40_000 {
        h.ev(EG, b"A");
    }
    assert!(h.take().is_empty());
    assert!(h.t.largest_buffer() <= 16 * 1024 + 16384);
}

// 11. Malformed header blocks.

#[test]
fn malformed_header_block_yields_a_flagged_record_then_resyncs() {
    let mut h = H::new();
    h.ev(
        EG,
        b"GET /m HTTP/1.1\r\nGood: 1\r\nBad Header\r\nX: 2\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    );
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /m", "GET /next"]);
    assert_eq!(rs[0].flags, vec![flag::MALFORMED]);
    // The invalid line is kept as sent: no colon, so no name.
    assert_eq!(
        hv(&rs[0]),
        vec![("Good", "1"), ("", "Bad Header"), ("X", "2")]
    );
    assert_eq!(rs[0].anomalies, crate::record::anomaly::BAD_HEADER_NAME);
    assert_eq!(h.stats().parse_errors, 1);
}

#[test]
fn invalid_start_line_yields_nothing() {
    let mut h = H::new();
    h.ev(EG, b"GET / HTTP/3.0\r\nHost: a\r\n\r\n");
    h.ev(EG, b"GET /ok HTTP/1.1\r\n\r\n");
    assert_eq!(targets(&h.take()), ["GET /ok"]);
    assert_eq!(h.stats().parse_errors, 1);
}

#[test]
fn bad_content_length_is_malformed() {
    let mut h = H::new();
    h.ev(
        EG,
        b"POST /b HTTP/1.1\r\nContent-Length: lots\r\n\r\nxxxx\r\nGET /ok HTTP/1.1\r\n\r\n",
    );
    let rs = h.take();
    assert_eq!(targets(&rs), ["POST /b", "GET /ok"]);
    assert_eq!(rs[0].flags, vec![flag::MALFORMED]);
    assert_eq!(h.stats().parse_errors, 1);
}

// 12. Mid-stream connections.

#[test]
fn midstream_connection_starts_at_the_first_message() {
    let mut h = H::new();
    h.spec.flags = HDRTAP_DF_MIDSTREAM as u16;
    h.spec.role = KernelRole::Unknown;
    h.ev(
        IN,
        b"ody bytes\r\nmore\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    h.ev(EG, b"GET /n HTTP/1.1\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 204 No Content\r\n\r\n");
    let rs = h.take();
    assert_eq!(targets(&rs), ["200", "GET /n", "204"]);
    assert_eq!(rs[0].flags, vec![flag::MIDSTREAM, flag::UNPAIRED]);
    assert_eq!(rs[1].flags, vec![flag::MIDSTREAM]);
    assert_eq!(rs[2].request.as_ref().unwrap().target, "/n");
    let s = h.stats();
    assert_eq!((s.resyncs, s.skipped_bytes, s.parse_errors), (1, 17, 0));
}

#[test]
fn midstream_false_start_resyncs() {
    let mut h = H::new();
    h.spec.flags = HDRTAP_DF_MIDSTREAM as u16;
    h.ev(EG, b"GET /not-really HTTP/1.1\r\n\x00\x01\x02binary\r\n\r\nPOST /real HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let rs = h.take();
    // A valid start line: its block is kept, malformed, then the
    // direction resyncs.
    assert_eq!(targets(&rs), ["GET /not-really", "POST /real"]);
    assert_eq!(rs[0].flags, vec![flag::MIDSTREAM, flag::MALFORMED]);
    assert_eq!(hv(&rs[0]), vec![("", "\x00\x01\x02binary")]);
    assert_eq!(rs[1].flags, vec![flag::MIDSTREAM]);
    assert_eq!(h.stats().parse_errors, 1);
}

// 13. Close and eviction.

#[test]
fn close_with_an_open_header_block() {
    let mut h = H::new();
    h.ev(EG, b"GET /x HTTP/1.1\r\nHost: a\r\nPart");
    h.close();
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /x"]);
    assert_eq!(rs[0].flags, vec![flag::INCOMPLETE, flag::CUT]);
    assert_eq!(hv(&rs[0]), vec![("Host", "a"), ("Part", "")]);
    let s = h.stats();
    assert_eq!(
        (
            s.incomplete,
            s.conns_open,
            s.conns_closed,
            s.unanswered_requests
        ),
        (1, 0, 1, 1)
    );
    assert_eq!(h.t.conns(), 0);
    // Only part of a start line: counted, no record.
    let mut h = H::new();
    h.ev(IN, b"HTTP/1.1 2");
    h.close();
    assert!(h.take().is_empty());
    assert_eq!(h.stats().incomplete, 1);
}

#[test]
fn close_while_skipping_a_truncated_block() {
    let mut h = H::new();
    let block = big_request(20_000, "/t");
    h.split(EG, &block[..17_000], 16384);
    h.close();
    let rs = h.take();
    assert_eq!(targets(&rs), ["POST /t"]);
    assert!(rs[0].truncated);
    assert_eq!(rs[0].flags, vec![flag::INCOMPLETE, flag::CUT]);
    assert_eq!(rs[0].header_bytes, 17_000);
}

#[test]
fn least_recently_used_connection_is_evicted() {
    let mut h = H::with(TrackerConfig {
        max_conns: 2,
        ..Default::default()
    });
    for id in [1, 2] {
        h.spec.conn_id = id;
        h.raw(EG, 0, 16, b"GET /x HTTP/1.1\r", 0);
    }
    h.spec.conn_id = 1;
    h.raw(EG, 16, 1, b"\n", 0); // touch 1
    h.spec.conn_id = 3;
    h.raw(EG, 0, 19, b"GET /3 HTTP/1.1\r\n\r\n", 0);
    assert_eq!(h.t.conns(), 2);
    assert_eq!(h.stats().conns_evicted, 1);
    // Conn 1 kept its state; conn 2 restarts late: its tail is no message
    // start, the next message is found and flagged mid-stream.
    h.spec.conn_id = 1;
    h.raw(EG, 17, 2, b"\r\n", 0);
    h.spec.conn_id = 2;
    h.raw(EG, 16, 3, b"\n\r\n", 0);
    h.raw(EG, 19, 19, b"GET /y HTTP/1.1\r\n\r\n", 0);
    let rs = h.take();
    assert_eq!(targets(&rs), ["GET /3", "GET /x", "GET /y"]);
    assert_eq!(rs[1].conn_id, 1);
    assert_eq!(
        (rs[2].conn_id, rs[2].flags.clone()),
        (2, vec![flag::MIDSTREAM])
    );
    assert!(h.t.conns() <= 2);
    assert_eq!(h.stats().gaps, 0);
}

#[test]
fn close_all_flushes_every_connection() {
    let mut h = H::new();
    for id in 1..=3 {
        h.spec.conn_id = id;
        h.raw(EG, 0, 18, b"GET / HTTP/1.1\r\nA:", 0);
    }
    let mut out = Vec::new();
    h.t.close_all(&mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(h.t.conns(), 0);
    assert_eq!(h.stats().conns_open, 0);
}

// 14. Header fidelity.

#[test]
fn headers_keep_order_case_duplicates_and_flag_non_utf8() {
    let mut h = H::new();
    let req = b"GET /h HTTP/1.0\r\nX-A: 1\r\nx-a: 2\r\nX-Bin: a\xff\xfeb\r\nEmpty:\r\n\r\n";
    h.ev(EG, req);
    let rs = h.take();
    let r = &rs[0];
    assert_eq!(
        hv(r),
        vec![
            ("X-A", "1"),
            ("x-a", "2"),
            ("X-Bin", "a\\xff\\xfeb"),
            ("Empty", "")
        ]
    );
    assert_eq!(r.flags, vec![flag::NON_UTF8]);
    assert_eq!(r.version, "HTTP/1.0");
    assert_eq!(r.header_bytes, req.len());
    assert!(!r.truncated && !r.tls);
    assert_eq!(r.kind, HttpKind::Request);
}

#[test]
fn too_many_headers_are_truncated_but_framing_holds() {
    let mut h = H::with(TrackerConfig {
        max_headers: 3,
        ..Default::default()
    });
    let mut req = b"POST /many HTTP/1.1\r\n".to_vec();
    for i in 0..10 {
        req.extend_from_slice(format!("H{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"Content-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\n\r\n");
    h.ev(EG, &req);
    let rs = h.take();
    assert_eq!(targets(&rs), ["POST /many", "GET /next"]);
    assert_eq!(rs[0].headers.len(), 3);
    assert!(rs[0].truncated);
    assert_eq!(h.stats().truncated, 1);
}

/// A TLS plaintext stream (flag HDRTAP_DF_TLS) is a connection like any
/// other; its records say `tls` and name the library by the event's id.
#[test]
fn tls_streams_carry_tls_and_library() {
    let mut h = H::new();
    h.t.set_tls_library(3, "libssl.so.3");
    h.spec.flags = hdrtap_abi::HDRTAP_DF_TLS as u16;
    h.spec.tls_lib = 3;
    h.spec.conn_id = 42;
    h.ev(EG, b"GET /secure HTTP/1.1\r\nHost: a\r\n\r\n");
    h.ev(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.out.len(), 2);
    for r in &h.out {
        assert!(r.tls);
        assert_eq!(r.tls_library.as_deref(), Some("libssl.so.3"));
        assert_eq!(r.conn_id, 42);
    }
    assert_eq!(
        h.out[1].request.as_ref().map(|r| r.target.as_str()),
        Some("/secure")
    );

    // An id nobody named still says which one it was; plaintext has none.
    let mut h = H::new();
    h.spec.flags = hdrtap_abi::HDRTAP_DF_TLS as u16;
    h.spec.tls_lib = 9;
    h.ev(EG, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.out[0].tls_library.as_deref(), Some("library #9"));
    let mut h = H::new();
    h.ev(EG, b"GET / HTTP/1.1\r\n\r\n");
    assert!(!h.out[0].tls && h.out[0].tls_library.is_none());
}

/// Hardening (issue 6): every connection leaving a header block unfinished
/// (a slow or hostile peer) is bounded per direction by max_header_bytes,
/// and all of them together by max_buffered_bytes: beyond it, the buffer
/// that grew is dropped, counted, and its direction resyncs — and a complete
/// message on it afterwards is still captured.
#[test]
fn global_buffer_budget_bounds_unfinished_header_blocks() {
    let mut t = Http1Tracker::new(TrackerConfig {
        max_buffered_bytes: 64 * 1024,
        ..TrackerConfig::default()
    });
    let mut out = Vec::new();
    let partial = format!("GET / HTTP/1.1\r\nX-Slow: {}", "a".repeat(3000));
    for conn in 1..=100u64 {
        let raw = data_event(
            &DataSpec {
                conn_id: conn,
                dir: Direction::Ingress,
                ..Default::default()
            },
            partial.as_bytes(),
        );
        if let Ok(Event::Data(ev)) = decode(&raw) {
            t.on_data(&ev, &mut out);
        }
        assert!(
            t.stats().buffered_bytes <= 64 * 1024 + 8192,
            "{} bytes buffered",
            t.stats().buffered_bytes
        );
    }
    assert!(out.is_empty());
    let s = t.stats();
    assert!(s.budget_drops > 0, "{s:?}");
    assert_eq!(s.buffered_bytes as usize, t.buffered_bytes_capacity());
    // A dropped connection still captures its next complete message.
    let last = data_event(
        &DataSpec {
            conn_id: 100,
            dir: Direction::Ingress,
            pos: partial.len() as u64,
            ..Default::default()
        },
        b"\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    if let Ok(Event::Data(ev)) = decode(&last) {
        t.on_data(&ev, &mut out);
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].target.as_deref(), Some("/next"));
    let mut rest = Vec::new();
    t.close_all(&mut rest);
    assert_eq!(t.stats().buffered_bytes, 0);
}

// 15. Hostile header blocks: nothing dropped, the same records however the
// bytes arrive and whichever end traced them.

/// The fields of a record that depend on the bytes alone: not on how they
/// were split into events, nor on which end of the connection traced them.
fn essence(r: &HttpRecord) -> String {
    format!(
        "{:?} {} {:?} {:?} {:?} {:?} {:?} {:?} truncated={} bytes={} anomalies={}",
        r.kind,
        r.version,
        r.method,
        r.target,
        r.status,
        r.reason,
        hv(r),
        r.flags,
        r.truncated,
        r.header_bytes,
        r.anomalies
    )
}

/// `stream` as the client wrote it (egress: in the kernel's 16384-byte
/// events, as one write is split, byte by byte, in 7- and 1000-byte
/// events) and as the
/// server read it (ingress: in 1024-byte then 4096-byte reads, like nginx),
/// then the connection closes if `close`. Every way gives the same records
/// (the client's role on egress, the server's on ingress); returns them.
fn every_split(stream: &[u8], close: bool) -> Vec<HttpRecord> {
    let run = |dir: Direction, sizes: &[usize]| {
        let mut h = H::new();
        let mut i = 0;
        for &n in sizes.iter().chain(std::iter::repeat(sizes.last().unwrap())) {
            if i >= stream.len() {
                break;
            }
            let end = (i + n).min(stream.len());
            h.ev(dir, &stream[i..end]);
            i = end;
        }
        if close {
            h.close();
        }
        let rs = h.take();
        let role = if dir == EG {
            Role::Client
        } else {
            Role::Server
        };
        assert!(rs.iter().all(|r| r.role == role));
        rs
    };
    let whole = run(EG, &[16384]);
    let want: Vec<String> = whole.iter().map(essence).collect();
    for (dir, sizes) in [
        (EG, &[1][..]),
        (EG, &[7]),
        (EG, &[1000]),
        (IN, &[1024, 4096]),
        (IN, &[1]),
    ] {
        let got: Vec<String> = run(dir, sizes).iter().map(essence).collect();
        assert_eq!(got, want, "{dir:?} in events of {sizes:?}");
    }
    whole
}

/// A header block: `start`, then `lines` each ending in CRLF, then CRLF.
fn block(start: &[u8], lines: &[&[u8]]) -> Vec<u8> {
    let mut b = start.to_vec();
    b.extend_from_slice(b"\r\n");
    for l in lines {
        b.extend_from_slice(l);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"\r\n");
    b
}

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn hostile_request_line_of_17_kb_is_kept_cut_at_the_limit() {
    let target = format!("/{}", "a".repeat(17 * 1024));
    let req = block(format!("GET {target} HTTP/1.1").as_bytes(), &[b"Host: x"]);
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(rs.len(), 2);
    let r = &rs[0];
    let want = &target[..16 * 1024 - "GET ".len()];
    assert_eq!(r.method.as_deref(), Some("GET"));
    assert_eq!(r.target.as_deref(), Some(want));
    assert_eq!((r.version, r.truncated), ("HTTP/1.x", true));
    assert!(r.headers.is_empty());
    assert_eq!(r.flags, vec![flag::CUT]);
    assert_eq!(r.header_bytes, req.len());
    assert_eq!(rs[1].target.as_deref(), Some("/next"));
    // A status line the same: status, reason cut at the limit.
    let reason = "r".repeat(17 * 1024);
    let resp = block(format!("HTTP/1.1 200 {reason}").as_bytes(), &[]);
    let mut h = H::new();
    h.split(IN, &[&resp[..], b"HTTP/1.1 204 No\r\n\r\n"].concat(), 4096);
    let rs = h.take();
    assert_eq!(targets(&rs), ["200", "204"]);
    assert_eq!(rs[0].reason.as_deref(), Some(&reason[..16 * 1024 - 13]));
    assert_eq!((rs[0].version, rs[0].truncated), ("HTTP/1.1", true));
    assert_eq!(rs[0].flags, vec![flag::CUT, flag::UNPAIRED]);
}

#[test]
fn header_value_cut_mid_line_at_the_limit() {
    let value = "v".repeat(20_000);
    let req = block(
        b"GET /big HTTP/1.1",
        &[
            b"Host: x",
            format!("X-Big: {value}").as_bytes(),
            b"X-After: 1",
        ],
    );
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(targets(&rs), ["GET /big", "GET /next"]);
    let r = &rs[0];
    let before = "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ".len();
    let kept = 16 * 1024 - before;
    assert_eq!(hv(r), vec![("Host", "x"), ("X-Big", &value[..kept])]);
    assert!(r.truncated);
    assert_eq!(r.flags, vec![flag::CUT]);
    assert_eq!(r.header_bytes, req.len());
    // Cut by the connection's end instead: the same, `incomplete`.
    let rs = every_split(&req[..5000], true);
    assert_eq!(hv(&rs[0]).last().unwrap().1.len(), 5000 - before);
    assert_eq!(rs[0].flags, vec![flag::INCOMPLETE, flag::CUT]);
    assert!(!rs[0].truncated);
}

#[test]
fn control_characters_in_values_are_kept() {
    use crate::record::anomaly::CTL_IN_VALUE;
    for value in [
        &b"a\0b"[..],
        b"a\rInjected: 1",
        b"\x01\x02\x1b[31m",
        b"del\x7f",
    ] {
        let req = block(
            b"GET /ctl HTTP/1.1",
            &[b"Host: x", &[b"X-Ctl: ", value].concat()],
        );
        let rs = every_split(&[&req[..], NEXT].concat(), false);
        assert_eq!(targets(&rs), ["GET /ctl", "GET /next"], "{value:?}");
        let r = &rs[0];
        let text = std::str::from_utf8(value).unwrap();
        assert_eq!(hv(r), vec![("Host", "x"), ("X-Ctl", text)]);
        assert_eq!(r.flags, vec![flag::MALFORMED]);
        assert_eq!(r.anomalies, CTL_IN_VALUE);
        assert_eq!(r.header_bytes, req.len());
    }
}

#[test]
fn obs_fold_is_kept_in_the_value() {
    use crate::record::anomaly::OBS_FOLD;
    let req = block(
        b"GET /fold HTTP/1.1",
        &[b"Host: x", b"X-Fold: a", b"  b", b"\tc", b"X-After: 1"],
    );
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(targets(&rs), ["GET /fold", "GET /next"]);
    let r = &rs[0];
    assert_eq!(
        hv(r),
        vec![
            ("Host", "x"),
            ("X-Fold", "a\r\n  b\r\n\tc"),
            ("X-After", "1")
        ]
    );
    assert_eq!(
        (r.flags.clone(), r.anomalies),
        (vec![flag::MALFORMED], OBS_FOLD)
    );
}

#[test]
fn lines_without_colon_and_bad_names_are_kept() {
    use crate::record::anomaly::BAD_HEADER_NAME;
    let req = block(
        b"GET /names HTTP/1.1",
        &[
            b"Host: x",
            b"no colon at all",
            b"Bad Name: 1",
            b"Space : 2",
            b"X[]: 3",
            b": 4",
        ],
    );
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(targets(&rs), ["GET /names", "GET /next"]);
    let r = &rs[0];
    assert_eq!(
        hv(r),
        vec![
            ("Host", "x"),
            ("", "no colon at all"),
            ("Bad Name", "1"),
            ("Space ", "2"),
            ("X[]", "3"),
            ("", "4"),
        ]
    );
    assert_eq!(
        (r.flags.clone(), r.anomalies),
        (vec![flag::MALFORMED], BAD_HEADER_NAME)
    );
}

#[test]
fn latin1_in_value_and_target_is_escaped_losslessly() {
    use crate::text::unescape_wire;
    // In a value: httparse takes it, the record is escaped throughout.
    let req = block(
        b"GET /a\\b HTTP/1.1",
        &[
            b"Host: x",
            b"X-Latin: caf\xe9 \\ d\xe9j\xe0",
            b"X-Back: \\x41",
        ],
    );
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(targets(&rs), ["GET /a\\x5cb", "GET /next"]);
    let r = &rs[0];
    assert_eq!(r.flags, vec![flag::NON_UTF8]);
    assert_eq!(
        hv(r),
        vec![
            ("Host", "x"),
            ("X-Latin", "caf\\xe9 \\x5c d\\xe9j\\xe0"),
            ("X-Back", "\\x5cx41")
        ]
    );
    assert_eq!(
        unescape_wire(r.header("X-Latin").unwrap()),
        b"caf\xe9 \\ d\xe9j\xe0"
    );
    assert_eq!(unescape_wire(r.header("X-Back").unwrap()), b"\\x41");
    assert_eq!(unescape_wire(r.target.as_deref().unwrap()), b"/a\\b");
    // The next record has no such bytes: not escaped.
    assert_eq!(hv(&rs[1]), vec![("Host", "x")]);
    assert!(rs[1].flags.is_empty());
    // In the target: httparse rejects it, the salvager keeps it.
    let req = block(b"GET /caf\xe9?q=\xff HTTP/1.1", &[b"Host: x", b"X-B: \\"]);
    let rs = every_split(&[&req[..], NEXT].concat(), false);
    assert_eq!(targets(&rs), ["GET /caf\\xe9?q=\\xff", "GET /next"]);
    let r = &rs[0];
    assert_eq!(r.flags, vec![flag::MALFORMED, flag::NON_UTF8]);
    assert_eq!(
        unescape_wire(r.target.as_deref().unwrap()),
        b"/caf\xe9?q=\xff"
    );
    assert_eq!(hv(r), vec![("Host", "x"), ("X-B", "\\x5c")]);
    // Its response names the request as its record does.
    let mut h = H::new();
    h.ev(EG, &req);
    h.ev(IN, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    let rs = h.take();
    assert_eq!(rs[1].request.as_ref().unwrap().target, "/caf\\xe9?q=\\xff");
    assert!(rs[1].flags.is_empty());
}

#[test]
fn hostile_requests_back_to_back_are_all_kept() {
    let reqs = [
        block(
            format!("GET /{} HTTP/1.1", "l".repeat(17_000)).as_bytes(),
            &[b"Host: x"],
        ),
        block(b"GET /1 HTTP/1.1", &[b"A: \0"]),
        block(b"GET /2 HTTP/1.1", &[b"A: 1", b" 2"]),
        block(b"GET /3\xe9 HTTP/1.1", &[b"A: 1"]),
        block(b"GET /4 HTTP/1.1", &[b"no colon"]),
        block(
            b"GET /5 HTTP/1.1",
            &[format!("X: {}", "v".repeat(20_000)).as_bytes()],
        ),
        block(b"GET /6 HTTP/1.1", &[b"A: \xe9"]),
        NEXT.to_vec(),
    ];
    let rs = every_split(&reqs.concat(), false);
    let got: Vec<String> = targets(&rs)
        .into_iter()
        .map(|t| t.chars().take(10).collect())
        .collect();
    assert_eq!(
        got,
        [
            "GET /lllll",
            "GET /1",
            "GET /2",
            "GET /3\\xe9",
            "GET /4",
            "GET /5",
            "GET /6",
            "GET /next"
        ]
    );
}

/// Each message's first and last byte in TCP sequence numbers, wherever
/// event boundaries fall and across the wrap at 2^32; a body whose length
/// the header block does not give leaves the range at the block's end.
#[test]
fn records_carry_their_tcp_sequence_range() {
    let mut h = H::new();
    let base = u32::MAX - 10;
    h.seq_base = Some(base);
    let r1: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let r2: &[u8] = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    h.split(EG, &[r1, r2].concat(), 7);
    let resp: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    h.split(IN, resp, 9);
    let recs = owned(std::mem::take(&mut h.out));
    let seqs: Vec<_> = recs.iter().map(|r| r.tcp_seq).collect();
    let at = |off: usize| base.wrapping_add(off as u32);
    let head = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        seqs,
        vec![
            Some(SeqRange::new(at(0), r1.len() as u64, true)),
            Some(SeqRange::new(at(r1.len()), r2.len() as u64, true)),
            Some(SeqRange::new(at(0), head as u64, false)),
        ]
    );
    assert_eq!(seqs[0].unwrap().last, at(r1.len() - 1));
    // Without sequence numbers from the kernel (TLS, HTTP/2): none.
    let mut h = H::new();
    h.ev(EG, r2);
    assert_eq!(owned(std::mem::take(&mut h.out))[0].tcp_seq, None);
}

//! Property tests of `hdrtap_core::http1::Http1Tracker`.
//!
//! 1. Round trip: random HTTP/1.x exchanges (methods, targets, headers,
//!    Content-Length and chunked bodies, 1xx interim responses, HEAD/204/304,
//!    pipelined batches), serialized and split at random points into events
//!    of both directions, come out as exactly the messages generated — same
//!    headers, in order, correctly paired, with first-byte timestamps.
//! 2. Robustness: arbitrary bytes (random, or a soup of HTTP fragments),
//!    split arbitrarily over a few connections with gaps, overlaps,
//!    uncaptured tails, flags and closes, never panic and keep the number of
//!    connections and every buffer bounded; bytes that never contain
//!    `HTTP/1.` never produce a record.

use hdrtap_abi::build::{close_event, data_event, DataSpec};
use hdrtap_abi::{decode, Direction, Event, KernelRole};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::record::{HttpKind, HttpRecord, RequestRef, Role};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Model of generated traffic.

#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    /// Chunks (non-empty), chunk extension on each, trailers.
    Chunked(Vec<Vec<u8>>, bool, Vec<(String, String)>),
}

#[derive(Debug, Clone)]
struct Msg {
    /// Request: method, target. Response: status, reason.
    method: String,
    target: String,
    status: u16,
    reason: String,
    minor: u8,
    headers: Vec<(String, String)>,
    /// Where the framing header goes among `headers`.
    framing_at: usize,
    lower_framing: bool,
    body: Body,
}

#[derive(Debug, Clone)]
struct Exchange {
    req: Msg,
    interim: Vec<Msg>,
    resp: Msg,
}

const FRAMING_NAMES: [&str; 3] = ["content-length", "transfer-encoding", "upgrade"];

fn header() -> impl Strategy<Value = (String, String)> {
    (
        "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("framing header", |n| {
            !FRAMING_NAMES.iter().any(|f| f.eq_ignore_ascii_case(n))
        }),
        "([!-~]([ -~]{0,30}[!-~])?)?",
    )
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(header(), 0..8)
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::None),
        3 => prop::collection::vec(any::<u8>(), 0..60).prop_map(Body::Length),
        2 => (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..4),
            any::<bool>(),
            prop::collection::vec(header(), 0..3),
        )
            .prop_map(|(c, e, t)| Body::Chunked(c, e, t)),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]).prop_map(str::to_owned),
        1 => "[A-Z][A-Z_-]{0,11}".prop_filter("special methods", |m| m != "CONNECT"),
    ]
}

fn msg_parts() -> impl Strategy<Value = (u8, Vec<(String, String)>, usize, bool, Body)> {
    (0u8..2, headers(), any::<usize>(), any::<bool>(), body())
}

fn request() -> impl Strategy<Value = Msg> {
    (method(), "/[A-Za-z0-9._~%/?=&+-]{0,30}", msg_parts()).prop_map(
        |(method, target, (minor, headers, at, lower, body))| Msg {
            method,
            target,
            status: 0,
            reason: String::new(),
            minor,
            framing_at: at % (headers.len() + 1),
            headers,
            lower_framing: lower,
            body,
        },
    )
}

fn response(status: impl Strategy<Value = u16>) -> impl Strategy<Value = Msg> {
    (status, "([A-Za-z]{1,10}( [A-Za-z]{1,10})?)?", msg_parts()).prop_map(
        |(status, reason, (minor, headers, at, lower, body))| Msg {
            method: String::new(),
            target: String::new(),
            status,
            reason,
            minor,
            framing_at: at % (headers.len() + 1),
            headers,
            lower_framing: lower,
            body,
        },
    )
}

fn exchange() -> impl Strategy<Value = Exchange> {
    let fin = prop_oneof![
        6 => 200u16..600,
        1 => Just(204u16),
        1 => Just(304u16),
    ];
    let interim =
        prop::collection::vec(response(prop::sample::select(vec![100u16, 102, 103])), 0..2);
    (request(), interim, response(fin)).prop_map(|(req, mut interim, mut resp)| {
        for m in &mut interim {
            m.body = Body::None;
        }
        if resp.status == 204 || resp.status == 304 {
            resp.body = Body::None;
        }
        Exchange { req, interim, resp }
    })
}

// ---------------------------------------------------------------------------
// Serialization and the records it must yield.

/// The header that frames `m`'s body. Responses that may have a body always
/// get one (else they would be read until close); a response to HEAD states
/// a length it does not send.
fn framing_header(m: &Msg, kind: HttpKind, head_response: bool) -> Option<(String, String)> {
    let (cl, te) = if m.lower_framing {
        ("content-length", "transfer-encoding")
    } else {
        ("Content-Length", "Transfer-Encoding")
    };
    let bodiless =
        kind == HttpKind::Response && (m.status < 200 || m.status == 204 || m.status == 304);
    match &m.body {
        _ if bodiless => None,
        Body::None if head_response => Some((cl.into(), "4321".into())),
        Body::None if kind == HttpKind::Response => Some((cl.into(), "0".into())),
        Body::None => None,
        Body::Length(b) => Some((cl.into(), b.len().to_string())),
        Body::Chunked(..) => Some((te.into(), "chunked".into())),
    }
}

/// The wire bytes of `m` and the headers its record must carry.
fn serialize(
    m: &Msg,
    kind: HttpKind,
    head_response: bool,
) -> (Vec<u8>, Vec<(String, String)>, usize) {
    let mut hs = m.headers.clone();
    if let Some(f) = framing_header(m, kind, head_response) {
        hs.insert(m.framing_at.min(hs.len()), f);
    }
    let mut out = match kind {
        HttpKind::Request => format!("{} {} HTTP/1.{}\r\n", m.method, m.target, m.minor),
        _ => format!("HTTP/1.{} {} {}\r\n", m.minor, m.status, m.reason),
    }
    .into_bytes();
    for (n, v) in &hs {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let header_bytes = out.len();
    if !head_response {
        match &m.body {
            Body::None => {}
            Body::Length(b) => out.extend_from_slice(b),
            Body::Chunked(chunks, ext, trailers) => {
                for c in chunks {
                    let e = if *ext { ";name=value" } else { "" };
                    out.extend_from_slice(format!("{:x}{e}\r\n", c.len()).as_bytes());
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                for (n, v) in trailers {
                    out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    (out, hs, header_bytes)
}

/// The fields of a record the generator predicts exactly.
#[derive(Debug, Clone, PartialEq)]
struct View {
    kind: HttpKind,
    method: Option<String>,
    target: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
    version: String,
    headers: Vec<(String, String)>,
    header_bytes: usize,
    request: Option<RequestRef>,
}

impl View {
    fn of(r: &HttpRecord) -> Self {
        View {
            kind: r.kind,
            method: r.method.as_deref().map(str::to_owned),
            target: r.target.as_deref().map(str::to_owned),
            status: r.status,
            reason: r.reason.as_deref().map(str::to_owned),
            version: r.version.to_string(),
            headers: r.headers.to_vec(),
            header_bytes: r.header_bytes,
            // The request's Host rides along for metrics; not compared here.
            request: r.request.clone().map(|q| RequestRef { host: None, ..q }),
        }
    }
}

/// A record the tracker must emit.
#[derive(Debug)]
struct Expect {
    view: View,
    /// Event sequence number carrying the message's first byte.
    first_event: u64,
    /// Responses: the same for their request.
    req_event: Option<u64>,
}

/// Feeds bytes of one connection as events split at pseudo-random points.
struct Feeder {
    t: Http1Tracker,
    out: Vec<std::sync::Arc<HttpRecord>>,
    pos: [u64; 2],
    /// Sequence number of the next event (its ts is seq * 1000, tid 1000 + seq).
    seq: u64,
    rng: u64,
    max_piece: usize,
}

impl Feeder {
    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Send `bytes`; returns the event sequence number carrying each of `offsets`.
    fn send(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        offsets: &[usize],
        role: KernelRole,
    ) -> Vec<u64> {
        let mut at = vec![0; offsets.len()];
        let mut off = 0;
        while off < bytes.len() {
            let n = 1 + (self.next_rand() as usize % self.max_piece);
            let end = (off + n).min(bytes.len());
            for (i, &o) in offsets.iter().enumerate() {
                if o >= off && o < end {
                    at[i] = self.seq;
                }
            }
            let spec = DataSpec {
                dir,
                pos: self.pos[dir.index()],
                ts_ns: self.seq * 1000,
                tid: 1000 + self.seq as u32,
                role,
                ..Default::default()
            };
            let raw = data_event(&spec, &bytes[off..end]);
            let Ok(Event::Data(ev)) = decode(&raw) else {
                panic!("encode/decode")
            };
            self.t.on_data(&ev, &mut self.out);
            self.pos[dir.index()] += (end - off) as u64;
            self.seq += 1;
            off = end;
        }
        at
    }
}

fn run_exchanges(
    rounds: &[Vec<Exchange>],
    server: bool,
    seed: u64,
    max_piece: usize,
) -> Result<(), TestCaseError> {
    let mut f = Feeder {
        t: Http1Tracker::new(TrackerConfig::default()),
        out: Vec::new(),
        pos: [0, 0],
        seq: 1,
        rng: seed | 1,
        max_piece,
    };
    let (req_dir, resp_dir, role, krole) = if server {
        (
            Direction::Ingress,
            Direction::Egress,
            Role::Server,
            KernelRole::Server,
        )
    } else {
        (
            Direction::Egress,
            Direction::Ingress,
            Role::Client,
            KernelRole::Client,
        )
    };
    let mut expected = Vec::new();
    for batch in rounds {
        // Requests of the batch, pipelined in one byte stream.
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        let mut exp = Vec::new();
        for x in batch {
            let (b, hs, hb) = serialize(&x.req, HttpKind::Request, false);
            offsets.push(bytes.len());
            bytes.extend_from_slice(&b);
            exp.push(Expect {
                view: View {
                    kind: HttpKind::Request,
                    method: Some(x.req.method.clone()),
                    target: Some(x.req.target.clone()),
                    status: None,
                    reason: None,
                    version: format!("HTTP/1.{}", x.req.minor),
                    headers: hs,
                    header_bytes: hb,
                    request: None,
                },
                first_event: 0,
                req_event: None,
            });
        }
        let at = f.send(req_dir, &bytes, &offsets, krole);
        for (e, s) in exp.iter_mut().zip(&at) {
            e.first_event = *s;
        }
        let req_events = at;
        expected.extend(exp);
        // Then their responses (1xx first), in order.
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        let mut exp = Vec::new();
        let mut which = Vec::new();
        for (i, x) in batch.iter().enumerate() {
            let head = x.req.method == "HEAD";
            let rref = RequestRef {
                method: x.req.method.as_str().into(),
                target: x.req.target.as_str().into(),
                host: None,
            };
            for m in x.interim.iter().chain(std::iter::once(&x.resp)) {
                let (b, hs, hb) = serialize(m, HttpKind::Response, head && m.status >= 200);
                offsets.push(bytes.len());
                bytes.extend_from_slice(&b);
                which.push(i);
                exp.push(Expect {
                    view: View {
                        kind: HttpKind::Response,
                        method: None,
                        target: None,
                        status: Some(m.status),
                        reason: Some(m.reason.clone()),
                        version: format!("HTTP/1.{}", m.minor),
                        headers: hs,
                        header_bytes: hb,
                        request: Some(rref.clone()),
                    },
                    first_event: 0,
                    req_event: None,
                });
            }
        }
        let at = f.send(resp_dir, &bytes, &offsets, krole);
        for ((e, s), i) in exp.iter_mut().zip(&at).zip(&which) {
            e.first_event = *s;
            e.req_event = req_events.get(*i).copied();
        }
        expected.extend(exp);
    }
    let got = &f.out;
    prop_assert_eq!(
        got.len(),
        expected.len(),
        "record count; got {:?}",
        got.iter()
            .map(|r| (r.method.clone(), r.status))
            .collect::<Vec<_>>()
    );
    for (i, (r, e)) in got.iter().zip(&expected).enumerate() {
        prop_assert_eq!(View::of(r), e.view.clone(), "record {}", i);
        prop_assert_eq!(r.role, role);
        prop_assert!(r.flags.is_empty(), "flags {:?} on record {}", r.flags, i);
        prop_assert!(!r.truncated);
        prop_assert_eq!(
            r.ts_unix_ns,
            e.first_event * 1000,
            "timestamp of record {}",
            i
        );
        prop_assert_eq!(r.process.tid, 1000 + e.first_event as u32);
        if let Some(q) = e.req_event {
            prop_assert_eq!(
                r.latency_ns,
                Some((e.first_event - q) * 1000),
                "latency of record {}",
                i
            );
        } else {
            prop_assert_eq!(r.latency_ns, None);
        }
    }
    let s = f.t.stats();
    prop_assert_eq!(
        (
            s.parse_errors,
            s.resyncs,
            s.skipped_bytes,
            s.unpaired_responses,
            s.gaps
        ),
        (0, 0, 0, 0, 0)
    );
    prop_assert_eq!(f.t.largest_buffer() <= 16 * 1024, true);
    Ok(())
}

// 256 cases each by default; PROPTEST_CASES=N for a longer run.
proptest! {
    #[test]
    fn exchanges_round_trip(
        rounds in prop::collection::vec(prop::collection::vec(exchange(), 1..4), 1..6),
        server in any::<bool>(),
        seed in any::<u64>(),
        max_piece in prop::sample::select(vec![1usize, 3, 16, 100, 4096]),
    ) {
        run_exchanges(&rounds, server, seed, max_piece)?;
    }
}

// ---------------------------------------------------------------------------
// Robustness on arbitrary input.

const SOUP: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"HEAD /h HTTP/1.0\r\n",
    b"CONNECT a:443 HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 101 Switching\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.0 204 \r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999\r\n",
    b"Content-Length: x\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Upgrade: websocket\r\n",
    b"Host: a\r\n",
    b"Bad Header\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"5\r\nhello\r\n",
    b"ffffffffffffffff\r\n",
    b"0\r\n\r\n",
    b"PRI * HTTP/2.0\r\n",
    b"\x00\xff\x80",
    b"hello",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(SOUP.to_vec()), 0..40)
        .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone)]
enum Op {
    Data {
        conn: u64,
        ingress: bool,
        skip: u8,
        extra: u16,
        flags: u16,
        back: u8,
        bytes: Vec<u8>,
    },
    Close {
        conn: u64,
    },
}

fn op(payload: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u64..5, any::<bool>(), any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>(), payload).prop_map(
            |(conn, ingress, skip, extra, flags, back, bytes)| Op::Data { conn, ingress, skip, extra, flags, back, bytes }
        ),
        1 => (0u64..5).prop_map(|conn| Op::Close { conn }),
    ]
}

/// Apply `ops`; returns the records and whether any payload held `HTTP/1.`.
fn run_ops(ops: &[Op], max_header_bytes: usize) -> Result<(Vec<HttpRecord>, bool), TestCaseError> {
    let cfg = TrackerConfig {
        max_conns: 3,
        max_header_bytes,
        max_headers: 8,
        max_pending: 4,
        ..Default::default()
    };
    let bound = max_header_bytes.max(256) + hdrtap_abi::HDRTAP_CHUNK_MAX as usize;
    let mut t = Http1Tracker::new(cfg);
    let mut out = Vec::new();
    let mut pos = [[0u64; 2]; 5];
    let mut saw_http = false;
    for (ts, o) in ops.iter().enumerate() {
        match o {
            Op::Data {
                conn,
                ingress,
                skip,
                extra,
                flags,
                back,
                bytes,
            } => {
                let d = usize::from(*ingress);
                let p = &mut pos[*conn as usize][d];
                // Mostly in order; sometimes a gap, an overlap, a clipped tail.
                let start = match skip % 8 {
                    0 => *p + u64::from(*skip),
                    1 => p.saturating_sub(u64::from(*back)),
                    _ => *p,
                };
                let orig = bytes.len() as u64 + if extra % 4 == 0 { u64::from(*extra) } else { 0 };
                let spec = DataSpec {
                    conn_id: *conn,
                    dir: if *ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    pos: start,
                    orig_len: Some(orig),
                    flags: *flags & 0x1f,
                    ts_ns: ts as u64,
                    ..Default::default()
                };
                let raw = data_event(&spec, bytes);
                let Ok(Event::Data(ev)) = decode(&raw) else {
                    panic!("encode/decode")
                };
                saw_http |= bytes.windows(7).any(|w| w == b"HTTP/1.");
                t.on_data(&ev, &mut out);
                *p = (*p).max(start + orig);
            }
            Op::Close { conn } => {
                let raw = close_event(*conn, 100, 3, ts as u64, [0, 0]);
                let Ok(Event::Close(c)) = decode(&raw) else {
                    panic!("encode/decode")
                };
                t.on_close(&c, &mut out);
                pos[*conn as usize] = [0, 0];
            }
        }
        prop_assert!(t.conns() <= 3);
        prop_assert!(
            t.largest_buffer() <= bound,
            "buffer {} > {}",
            t.largest_buffer(),
            bound
        );
        prop_assert_eq!(t.stats().conns_open as usize, t.conns());
    }
    t.close_all(&mut out);
    prop_assert_eq!(t.conns(), 0);
    for r in &out {
        prop_assert!(r.headers.len() <= 8);
        prop_assert!(matches!(r.version, "HTTP/1.0" | "HTTP/1.1" | "HTTP/1.x"));
    }
    Ok((
        out.into_iter()
            .map(std::sync::Arc::unwrap_or_clone)
            .collect(),
        saw_http,
    ))
}

// 256 cases each by default; PROPTEST_CASES=N for a longer run.
proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        ops in prop::collection::vec(op(prop::collection::vec(any::<u8>(), 0..3000).boxed()), 0..60),
        max_header_bytes in prop::sample::select(vec![0usize, 300, 16 * 1024]),
    ) {
        let (out, saw_http) = run_ops(&ops, max_header_bytes)?;
        if !saw_http {
            // Only a start line cut before its version makes a record
            // without one.
            prop_assert!(
                out.iter().all(|r| r.version == "HTTP/1.x" && r.flags.contains(&"cut")),
                "records from bytes without HTTP/1.: {:?}",
                out
            );
        }
    }

    #[test]
    fn http_fragment_soup_never_panics_and_stays_bounded(
        ops in prop::collection::vec(op(soup().boxed()), 0..80),
        max_header_bytes in prop::sample::select(vec![0usize, 300, 16 * 1024]),
    ) {
        run_ops(&ops, max_header_bytes)?;
    }
}

/// One large garbage stream through one connection in 16 KiB events.
#[test]
fn one_mebibyte_of_random_bytes() {
    let mut t = Http1Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for (i, c) in data.chunks(16384).enumerate() {
        for dir in [Direction::Egress, Direction::Ingress] {
            let spec = DataSpec {
                dir,
                pos: (i * 16384) as u64,
                flags: hdrtap_abi::HDRTAP_DF_MIDSTREAM as u16,
                ..Default::default()
            };
            let raw = data_event(&spec, c);
            let Ok(Event::Data(ev)) = decode(&raw) else {
                panic!()
            };
            t.on_data(&ev, &mut out);
        }
        assert!(t.largest_buffer() <= 32 * 1024);
    }
    assert!(out.is_empty());
    assert_eq!(t.conns(), 1);
}
